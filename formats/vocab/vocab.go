package vocab

import (
	"fmt"

	"github.com/qtool-dev/qtool/formats"
)

// Tokenizer kinds (tokenizer.ggml.model).
const (
	ModelLlama = "llama" // SentencePiece-style BPE with scores
	ModelGPT2  = "gpt2"  // byte-level BPE with merges
)

// Token types (tokenizer.ggml.token_type, llama_token_type; the same numbers
// as SentencePiece's ModelProto.SentencePiece.Type).
const (
	TypeUndefined   int32 = 0
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3
	TypeUserDefined int32 = 4
	TypeUnused      int32 = 5
	TypeByte        int32 = 6
)

// Limits of the readers. A vocabulary larger than MaxTokens (or a
// config.json vocab_size above it) is refused with ErrTooLarge before
// anything is allocated for it; so is a tokenizer file above MaxFileBytes.
// The largest vocabularies in use have about 262,000 tokens.
const (
	MaxTokens    = 1 << 20
	MaxFileBytes = 256 << 20
)

// Rule sentinels. Each wraps its class, so errors.Is(err, ErrJSON) and
// errors.Is(err, formats.ErrFormat) both hold for a malformed tokenizer.json.
var (
	// ErrNoTokenizer: a folder has neither tokenizer.model nor
	// tokenizer.json.
	ErrNoTokenizer = formats.NewRule("vocab: no tokenizer.model or tokenizer.json", formats.ErrFormat)
	// ErrProtobuf: tokenizer.model is not a well-formed protobuf message
	// (truncated field, length past the end, bad varint, bad wire type).
	ErrProtobuf = formats.NewRule("vocab: malformed SentencePiece model", formats.ErrFormat)
	// ErrJSON: a JSON file does not parse, or a field has the wrong JSON
	// type.
	ErrJSON = formats.NewRule("vocab: malformed JSON", formats.ErrFormat)
	// ErrVocab: the files parse but the vocabulary is inconsistent (an id
	// used twice, an id beyond vocab_size, lengths that disagree, a token
	// missing, a merge that is not two tokens).
	ErrVocab = formats.NewRule("vocab: inconsistent vocabulary", formats.ErrFormat)
	// ErrMeta: a tokenizer.* metadata key is missing where required or has
	// the wrong GGUF type.
	ErrMeta = formats.NewRule("vocab: bad tokenizer metadata", formats.ErrFormat)
	// ErrUnsupportedTokenizer: a well-formed tokenizer qtool does not
	// convert (a Unigram or WordPiece tokenizer.json, an unknown
	// pre-tokenizer, a tokenizer.ggml.model other than llama or gpt2).
	ErrUnsupportedTokenizer = formats.NewRule("vocab: unsupported tokenizer", formats.ErrUnsupported)
	// ErrTooLarge: a file above MaxFileBytes or a vocabulary above
	// MaxTokens.
	ErrTooLarge = formats.NewRule("vocab: input too large", formats.ErrLimit)
)

// Vocab is one tokenizer vocabulary as GGUF stores it.
type Vocab struct {
	Model  string    // "llama" (SentencePiece-style) or "gpt2" (byte-level BPE)
	Pre    string    // tokenizer.ggml.pre ("default", "llama-bpe", "qwen2", "smollm", …)
	Tokens []string  // token text by id
	Scores []float32 // nil when absent
	Types  []int32   // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte; nil when absent
	Merges []string  // "left right", gpt2 only

	BOS, EOS, UNK, PAD, EOT int64 // -1 when absent

	AddBOS, AddEOS, AddSpacePrefix *bool // nil when unspecified

	ChatTemplate string

	// What FromHFFolder saw beyond the exported fields, so that ToMeta
	// writes the keys in the converter's order: the special-id and add-flag
	// names in the order gguf-py's SpecialVocab set them, and add_sep_token
	// (set from a TemplateProcessing pair template).
	idOrder  []string
	addOrder []string
	addSEP   *bool
}

// newVocab returns a Vocab with every special id absent.
func newVocab(model string) *Vocab {
	return &Vocab{Model: model, BOS: -1, EOS: -1, UNK: -1, PAD: -1, EOT: -1}
}

// tokenType is the type of token id, NORMAL when Types is nil.
func (v *Vocab) tokenType(id int) int32 {
	if v.Types == nil {
		return TypeNormal
	}
	return v.Types[id]
}

// score is the score of token id, 0 when Scores is nil.
func (v *Vocab) score(id int) float32 {
	if v.Scores == nil {
		return 0
	}
	return v.Scores[id]
}

// idPtr returns the field of a special-id name ("bos", "eos", "unk", "pad",
// "eot"), nil for names Vocab does not keep (sep, cls, mask).
func (v *Vocab) idPtr(name string) *int64 {
	switch name {
	case "bos":
		return &v.BOS
	case "eos":
		return &v.EOS
	case "unk":
		return &v.UNK
	case "pad":
		return &v.PAD
	case "eot":
		return &v.EOT
	}
	return nil
}

// addPtr returns the field of an add-flag name ("bos", "eos", "sep").
func (v *Vocab) addPtr(name string) **bool {
	switch name {
	case "bos":
		return &v.AddBOS
	case "eos":
		return &v.AddEOS
	case "sep":
		return &v.addSEP
	}
	return nil
}

// check validates the invariants that WriteHF relies on.
func (v *Vocab) check() error {
	bad := func(key, format string, args ...any) error {
		return &formats.FormatError{Offset: -1, Key: key, Err: ErrVocab, Detail: fmt.Sprintf(format, args...)}
	}
	if v.Model != ModelLlama && v.Model != ModelGPT2 {
		return &formats.FormatError{Offset: -1, Key: "Model", Err: ErrUnsupportedTokenizer,
			Detail: fmt.Sprintf("tokenizer model %q (want llama or gpt2)", v.Model)}
	}
	n := len(v.Tokens)
	if n == 0 {
		return bad("Tokens", "no tokens")
	}
	if n > MaxTokens {
		return &formats.FormatError{Offset: -1, Key: "Tokens", Err: ErrTooLarge, Detail: fmt.Sprintf("%d tokens (limit %d)", n, MaxTokens)}
	}
	if v.Scores != nil && len(v.Scores) != n {
		return bad("Scores", "%d scores for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) != n {
		return bad("Types", "%d types for %d tokens", len(v.Types), n)
	}
	for _, name := range idNames {
		if id := *v.idPtr(name); id < -1 || id >= int64(n) {
			return bad(name, "special id %d outside the %d tokens", id, n)
		}
	}
	return nil
}

// idNames are the special ids Vocab keeps, in the order ToMeta writes them
// when FromHFFolder recorded no order.
var idNames = []string{"bos", "eos", "unk", "pad", "eot"}

func boolPtr(b bool) *bool { return &b }

// looksSpecial is convert_hf_to_gguf.py's does_token_look_special: added
// tokens some models forget to mark special.
func looksSpecial(t string) bool {
	switch t {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return hasAffixes(t, "<|", "|>") || hasAffixes(t, "<｜", "｜>") || hasAffixes(t, "<unused", ">")
}

func hasAffixes(s, prefix, suffix string) bool {
	return len(s) >= len(prefix) && len(s) >= len(suffix) &&
		s[:len(prefix)] == prefix && s[len(s)-len(suffix):] == suffix
}

// isByteToken reports whether t has the form <0xNN> (either hex case, as
// LlamaHfVocab's regex accepts).
func isByteToken(t string) bool {
	if len(t) != 6 || t[:3] != "<0x" || t[5] != '>' {
		return false
	}
	return isHex(t[3]) && isHex(t[4])
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
