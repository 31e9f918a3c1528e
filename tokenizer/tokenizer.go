package tokenizer

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/vocab"
)

// ErrTokenizer: a vocabulary or tokenizer.json that the encoder cannot use
// (no tokens, a gpt2 vocabulary without merges, a merge naming strings the
// vocabulary lacks, special ids out of range). It wraps formats.ErrFormat.
var ErrTokenizer = formats.NewRule("tokenizer: unusable vocabulary", formats.ErrFormat)

// ErrUnsupported: a well-formed tokenizer whose behaviour is not
// implemented (an unknown pre-tokenizer name, a normalizer or pre-tokenizer
// of tokenizer.json other than those listed in the package documentation,
// BPE dropout, a Unigram or WordPiece model). It wraps
// formats.ErrUnsupported.
var ErrUnsupported = formats.NewRule("tokenizer: unsupported tokenizer", formats.ErrUnsupported)

// Token types, as vocab.Vocab.Types holds them.
const (
	typeNormal      = vocab.TypeNormal
	typeUnknown     = vocab.TypeUnknown
	typeControl     = vocab.TypeControl
	typeUserDefined = vocab.TypeUserDefined
	typeUnused      = vocab.TypeUnused
	typeByte        = vocab.TypeByte
)

// Tokenizer encodes text to token ids and decodes ids to text. It is
// immutable after construction and safe for concurrent use.
type Tokenizer struct {
	model  string // vocab.ModelLlama or vocab.ModelGPT2
	tokens []string
	types  []int32
	scores []float32

	// ids maps token text to id. For llama.cpp's behaviour it is
	// llama.cpp's token_to_id (every token; the last of equal texts wins);
	// for a tokenizer.json it is the model vocabulary (special added tokens
	// and padding placeholders left out).
	ids map[string]int32

	bos, eos, unk  int32 // -1 when absent
	addBOS, addEOS bool  // defaults of EncodeOptions
	addSpacePrefix bool  // SPM: "▁" before the text (and dropped when decoding)
	ignoreMerges   bool  // a word that is a token is not merged (Llama 3)
	byteLevel      bool  // GPT-2 byte-to-unicode alphabet
	prefix, suffix []int32
	specials       []int32 // llama.cpp's special-token cache, longest first
	byteTok        [256]int32
	splitters      []splitter
	bpe            *bpeModel
	hf             *hfPipeline // nil: llama.cpp's behaviour (GGUF vocabularies)
	chunks         bool        // SentencePiece-style text may be cut before each "▁" run
	cache          wordCache
	pool           sync.Pool // *encodeState
}

// EncodeOptions controls Encode.
type EncodeOptions struct {
	// AddBOS and AddEOS override whether the BOS (or the tokenizer.json
	// post-processor's leading special tokens) and EOS (trailing special
	// tokens) are added; nil takes the vocabulary's default (add_bos_token,
	// add_eos_token, or what the tokenizer.json post-processor adds).
	AddBOS, AddEOS *bool
	// ParseSpecial makes the text of CONTROL and UNKNOWN tokens (<s>,
	// <|eot_id|>, …; the special added tokens of a tokenizer.json) encode
	// as those tokens. USER_DEFINED (non-special added) tokens are always
	// recognised, as in llama.cpp and tokenizers.
	ParseSpecial bool
}

// New returns a tokenizer with llama.cpp's behaviour for the vocabulary (a
// GGUF vocabulary, or one converted from a Hugging Face folder):
//
//   - "llama": llama.cpp's SentencePiece-style BPE (merges by token score,
//     byte fallback); spaces become "▁" and one "▁" is prepended to each
//     text fragment that follows the start or a special token
//     (add_space_prefix, default true). The normalizer spec of the
//     sentencepiece model is not applied, as llama.cpp does not apply it.
//   - "gpt2": byte-level BPE with merge ranks, after the pre-tokenizer that
//     v.Pre names: "llama-bpe" (also "llama3", "llama-v3"), "qwen2",
//     "gpt-2", "smollm", or "default" (also when empty).
//
// Special tokens: the texts "<|eot_id|>", "<|im_end|>", "<|endoftext|>" and
// the other end-of-generation and fill-in-the-middle texts llama.cpp
// recognises count as CONTROL tokens whatever their type, as in llama.cpp.
func New(v *vocab.Vocab) (*Tokenizer, error) {
	t, err := newBase(v)
	if err != nil {
		return nil, err
	}
	for id, tok := range t.tokens {
		if llamaCppControl[tok] {
			t.types[id] = typeControl
		}
	}
	t.specials = specialCache(t.tokens, t.types)
	t.ids = make(map[string]int32, len(t.tokens))
	for id, tok := range t.tokens {
		t.ids[tok] = int32(id)
	}
	switch t.model {
	case vocab.ModelLlama:
		t.addSpacePrefix = flag(v.AddSpacePrefix, true)
		t.addBOS = flag(v.AddBOS, true)
		t.addEOS = flag(v.AddEOS, false)
		t.chunks = chunkable(t.tokens)
		for _, d := range []struct {
			p   *int32
			def int32
		}{{&t.bos, 1}, {&t.eos, 2}, {&t.unk, 0}} {
			if *d.p < 0 && int(d.def) < len(t.tokens) {
				*d.p = d.def // llama.cpp's SPM defaults
			}
		}
	case vocab.ModelGPT2:
		var ok bool
		if t.splitters, ok = preSplitters(v.Pre); !ok {
			return nil, &formats.FormatError{Offset: -1, Key: "tokenizer.ggml.pre", Err: ErrUnsupported,
				Detail: fmt.Sprintf("pre-tokenizer %q (known: llama-bpe, qwen2, gpt-2, smollm, default)", v.Pre)}
		}
		llama3 := v.Pre == "llama-bpe" || v.Pre == "llama3" || v.Pre == "llama-v3"
		t.ignoreMerges = llama3
		t.byteLevel = true
		t.addBOS = flag(v.AddBOS, llama3)
		t.addEOS = flag(v.AddEOS, false)
		t.addSpacePrefix = flag(v.AddSpacePrefix, false) // only Decode reads it for BPE
		merges, err := parseMerges(v.Merges)
		if err != nil {
			return nil, err
		}
		if t.bpe, err = t.newBPE(merges, false); err != nil {
			return nil, err
		}
	}
	t.setByteTokens()
	t.prefix, t.suffix = single(t.bos), single(t.eos)
	return t, nil
}

// llamaCppControl are token texts llama.cpp makes CONTROL when it loads a
// vocabulary (its end-of-generation and fill-in-the-middle detection; it
// skips the fill-in-the-middle texts of a kind whose id the file names,
// which this package, not reading those ids, does not).
var llamaCppControl = map[string]bool{
	"<|eot_id|>": true, "<|im_end|>": true, "<|end|>": true, "<end_of_turn>": true,
	"<|endoftext|>": true, "<|end_of_text|>": true, "<EOT>": true, "_<EOT>": true,
	"<|eom_id|>": true, "<end_of_utterance>": true,
	"<|fim_prefix|>": true, "<fim-prefix>": true, "<fim_prefix>": true, "<PRE>": true,
	"<|fim_suffix|>": true, "<fim-suffix>": true, "<fim_suffix>": true, "<SUF>": true,
	"<|fim_middle|>": true, "<fim-middle>": true, "<fim_middle>": true, "<MID>": true,
	"<|fim_pad|>": true, "<fim-pad>": true, "<fim_pad>": true, "<PAD>": true,
	"<|fim_repo|>": true, "<|repo_name|>": true, "<fim-repo>": true, "<REPO>": true,
	"<|file_sep|>": true,
}

// newBase copies what every tokenizer needs from v and checks it.
func newBase(v *vocab.Vocab) (*Tokenizer, error) {
	bad := func(key, format string, args ...any) error {
		return &formats.FormatError{Offset: -1, Key: key, Err: ErrTokenizer, Detail: fmt.Sprintf(format, args...)}
	}
	if v == nil {
		return nil, bad("", "no vocabulary")
	}
	if v.Model != vocab.ModelLlama && v.Model != vocab.ModelGPT2 {
		return nil, &formats.FormatError{Offset: -1, Key: "tokenizer.ggml.model", Err: ErrUnsupported,
			Detail: fmt.Sprintf("tokenizer model %q (want llama or gpt2)", v.Model)}
	}
	n := len(v.Tokens)
	if n == 0 || n > vocab.MaxTokens {
		return nil, bad("tokenizer.ggml.tokens", "%d tokens", n)
	}
	if v.Scores != nil && len(v.Scores) != n {
		return nil, bad("tokenizer.ggml.scores", "%d scores for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, bad("tokenizer.ggml.token_type", "%d types for %d tokens", len(v.Types), n)
	}
	t := &Tokenizer{model: v.Model, tokens: slices.Clone(v.Tokens), scores: slices.Clone(v.Scores), bos: -1, eos: -1, unk: -1}
	t.types = make([]int32, n)
	for i := range t.types {
		t.types[i] = typeNormal
		if v.Types != nil {
			t.types[i] = v.Types[i]
		}
	}
	for _, s := range []struct {
		p   *int32
		id  int64
		key string
	}{{&t.bos, v.BOS, "bos"}, {&t.eos, v.EOS, "eos"}, {&t.unk, v.UNK, "unk"}} {
		if s.id >= int64(n) || s.id < -1 {
			return nil, bad("tokenizer.ggml."+s.key+"_token_id", "%d outside the %d tokens", s.id, n)
		}
		*s.p = int32(s.id)
	}
	if v.Model == vocab.ModelGPT2 && len(v.Merges) == 0 {
		return nil, bad("tokenizer.ggml.merges", "a gpt2 vocabulary needs merges")
	}
	return t, nil
}

func parseMerges(ms []string) ([][2]string, error) {
	out := make([][2]string, len(ms))
	for i, m := range ms {
		a, b, ok := splitMerge(m)
		if !ok {
			return nil, &formats.FormatError{Offset: -1, Key: "tokenizer.ggml.merges", Err: ErrTokenizer,
				Detail: fmt.Sprintf("merge %d is %q, not \"left right\"", i, m)}
		}
		out[i] = [2]string{a, b}
	}
	return out, nil
}

// setByteTokens fills byteTok: the <0xNN> token of each byte (llama.cpp's
// byte_to_token for SPM, falling back to the one-byte token), -1 if none.
func (t *Tokenizer) setByteTokens() {
	for b := range 256 {
		t.byteTok[b] = -1
		if id, ok := t.ids[fmt.Sprintf("<0x%02X>", b)]; ok {
			t.byteTok[b] = id
		} else if id, ok := t.ids[string([]byte{byte(b)})]; ok && t.model == vocab.ModelLlama {
			t.byteTok[b] = id
		}
	}
}

func flag(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func single(id int32) []int32 {
	if id < 0 {
		return nil
	}
	return []int32{id}
}

// encodeState is the scratch space of one Encode call.
type encodeState struct {
	frags, frags2 []fragment
	spans, spans2 []span
	word          []byte
	text          []byte
	spmSyms       []spmSym
	spmQueue      []spmBigram
	bpeSyms       []bpeSym
	bpeQueue      []bpeBigram
}

// Encode returns the token ids of text.
func (t *Tokenizer) Encode(text string, opts EncodeOptions) []int32 {
	st, _ := t.pool.Get().(*encodeState)
	if st == nil {
		st = &encodeState{}
	}
	defer t.pool.Put(st)
	var out []int32
	if flag(opts.AddBOS, t.addBOS) {
		out = append(out, t.prefix...)
	}
	if t.hf != nil {
		out = t.encodeHF(st, text, opts.ParseSpecial, out)
	} else {
		out = t.encodeLlama(st, text, opts.ParseSpecial, out)
	}
	if flag(opts.AddEOS, t.addEOS) {
		out = append(out, t.suffix...)
	}
	return out
}

// encodeLlama is llama_vocab::impl::tokenize after the BOS.
func (t *Tokenizer) encodeLlama(st *encodeState, text string, parseSpecial bool, out []int32) []int32 {
	prevSpecial := true
	for _, f := range t.partitionLlama(st, text, parseSpecial) {
		if f.id >= 0 {
			out = append(out, f.id)
			prevSpecial = true
			continue
		}
		frag := text[f.start:f.end]
		if t.model == vocab.ModelLlama {
			b := st.text[:0]
			if t.addSpacePrefix && prevSpecial {
				b = append(b, "\u2581"...)
			}
			b = appendEscaped(b, frag)
			st.text = b
			out = t.spmText(st, string(b), out)
		} else {
			out = t.bpeText(st, frag, out)
		}
		prevSpecial = false
	}
	return out
}

// appendEscaped appends s with each space replaced by "▁"
// (llama_escape_whitespace).
func appendEscaped(dst []byte, s string) []byte {
	for {
		k := strings.IndexByte(s, ' ')
		if k < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:k]...)
		dst = append(dst, "\u2581"...)
		s = s[k+1:]
	}
}

// bpeText pre-tokenizes text and appends the BPE tokens of each word.
func (t *Tokenizer) bpeText(st *encodeState, text string, out []int32) []int32 {
	for _, sp := range st.preTokenize(text, t.splitters) {
		out = t.bpeWordRaw(st, text[sp.start:sp.end], out)
	}
	return out
}

// bpeWordRaw appends the tokens of a word given in plain text.
func (t *Tokenizer) bpeWordRaw(st *encodeState, word string, out []int32) []int32 {
	if ids, ok := t.cache.get(word); ok {
		return append(out, ids...)
	}
	n := len(out)
	if t.byteLevel {
		st.word = appendByteLevel(st.word[:0], word)
		out = t.bpeWord(st, string(st.word), out)
	} else {
		out = t.bpeWord(st, word, out)
	}
	t.cache.put(word, out[n:])
	return out
}

// spmText appends the SentencePiece-style tokens of escaped text, piece by
// piece when the vocabulary allows (see chunkable).
func (t *Tokenizer) spmText(st *encodeState, text string, out []int32) []int32 {
	if !t.chunks {
		return t.spmTokenize(st, text, out)
	}
	for _, sp := range st.preTokenize(text, spmChunker) {
		chunk := text[sp.start:sp.end]
		if ids, ok := t.cache.get(chunk); ok {
			out = append(out, ids...)
			continue
		}
		n := len(out)
		out = t.spmTokenize(st, chunk, out)
		t.cache.put(chunk, out[n:])
	}
	return out
}

var spmChunker = []splitter{splitBeforeRuns("\u2581")}

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS is the beginning-of-sequence id, -1 if none.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS is the end-of-sequence id, -1 if none.
func (t *Tokenizer) EOS() int32 { return t.eos }

// IsSpecial reports whether id is a CONTROL or UNKNOWN token (<s>, </s>,
// <unk>, <|eot_id|>, …): the tokens Decode leaves out.
func (t *Tokenizer) IsSpecial(id int32) bool {
	if id < 0 || int(id) >= len(t.types) {
		return false
	}
	ty := t.types[id]
	return ty == typeControl || ty == typeUnknown
}

func (t *Tokenizer) score(id int32) float32 {
	if t.scores == nil {
		return 0
	}
	return t.scores[id]
}
