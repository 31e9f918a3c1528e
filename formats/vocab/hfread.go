package vocab

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// Hugging Face tokenizer file names.
const (
	fileModel        = "tokenizer.model"
	fileTokenizer    = "tokenizer.json"
	fileConfig       = "tokenizer_config.json"
	fileSpecialMap   = "special_tokens_map.json"
	fileModelConfig  = "config.json"
	fileAddedTokens  = "added_tokens.json"
	fileChatJinja    = "chat_template.jinja"
	fileChatTemplate = "chat_template.json"
)

// hfFolder holds the parsed files of one Hugging Face folder.
type hfFolder struct {
	dir        string
	config     obj            // config.json (nil if absent)
	tokConfig  obj            // tokenizer_config.json (nil if absent)
	specialMap obj            // special_tokens_map.json (nil if absent)
	tokJSON    *tokenizerJSON // tokenizer.json (nil if absent)
}

func (f *hfFolder) path(name string) string { return filepath.Join(f.dir, name) }

// FromHFFolder reads the tokenizer of a Hugging Face model folder: tokenizer.model
// and/or tokenizer.json, with tokenizer_config.json, special_tokens_map.json,
// added_tokens.json and config.json where present, and returns the vocabulary
// convert_hf_to_gguf.py would write for a llama-family model (see the package
// documentation for the paths taken and the deliberate differences).
func FromHFFolder(dir string) (*Vocab, error) {
	f := &hfFolder{dir: dir}
	var err error
	if f.config, err = readObject(dir, fileModelConfig); err != nil {
		return nil, err
	}
	if f.tokConfig, err = readObject(dir, fileConfig); err != nil {
		return nil, err
	}
	if f.specialMap, err = readObject(dir, fileSpecialMap); err != nil {
		return nil, err
	}
	tjBytes, err := readFile(dir, fileTokenizer)
	if err != nil {
		return nil, err
	}
	if tjBytes != nil {
		if f.tokJSON, err = parseTokenizerJSON(tjBytes, f.path(fileTokenizer)); err != nil {
			return nil, err
		}
	}
	spBytes, err := readFile(dir, fileModel)
	if err != nil {
		return nil, err
	}

	var v *Vocab
	switch {
	case spBytes != nil:
		v, err = f.fromSentencePiece(spBytes)
	case f.tokJSON != nil && f.tokJSON.isLlama():
		v, err = f.fromLlamaHF()
	case f.tokJSON != nil:
		v, err = f.fromGPT2()
	default:
		return nil, &formats.FormatError{File: dir, Offset: -1, Err: ErrNoTokenizer,
			Detail: "the folder has neither " + fileModel + " nor " + fileTokenizer}
	}
	if err != nil {
		return nil, err
	}
	nVocab := len(v.Tokens)
	if v.Model == ModelGPT2 {
		nVocab = -1 // the converter's SpecialVocab gets no n_vocab on this path
	}
	if err := f.specialVocab(v, nVocab); err != nil {
		return nil, err
	}
	// LlamaModel.set_vocab writes tokenizer_config.json's add_prefix_space.
	if b, ok := f.tokConfig.optBool("add_prefix_space"); ok {
		v.AddSpacePrefix = boolPtr(b)
	}
	return v, nil
}

// vocabSize is config.json's vocab_size (or text_config.vocab_size), 0 when
// absent. Values above MaxTokens are refused before anything is sized by
// them.
func (f *hfFolder) vocabSize() (int, error) {
	n, ok := f.config.optInt("vocab_size")
	if !ok {
		tc, err := f.config.object(f.path(fileModelConfig), "text_config")
		if err != nil {
			return 0, err
		}
		if n, ok = tc.optInt("vocab_size"); !ok {
			return 0, nil
		}
	}
	if n <= 0 {
		return 0, vocabErr(f.path(fileModelConfig), "vocab_size", "%d", n)
	}
	if n > MaxTokens {
		return 0, &formats.FormatError{File: f.path(fileModelConfig), Offset: -1, Key: "vocab_size", Err: ErrTooLarge,
			Detail: fmt.Sprintf("%d (limit %d)", n, MaxTokens)}
	}
	return int(n), nil
}

// fromSentencePiece is _create_vocab_sentencepiece.
func (f *hfFolder) fromSentencePiece(b []byte) (*Vocab, error) {
	file := f.path(fileModel)
	m, err := parseSentencePiece(b, file)
	if err != nil {
		return nil, err
	}
	if err := m.validate(file); err != nil {
		return nil, err
	}
	n, err := f.vocabSize()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		n = len(m.Pieces)
	}
	v := newVocab(ModelLlama)
	v.Pre = "default"
	v.Tokens = make([]string, n)
	v.Scores = make([]float32, n)
	v.Types = make([]int32, n)
	for i := range n {
		v.Tokens[i] = "[PAD" + strconv.Itoa(i) + "]"
		v.Scores[i] = -10000
		v.Types[i] = TypeUnused
	}
	for i, p := range m.Pieces {
		if i >= n {
			break
		}
		v.Tokens[i] = p.Piece
		v.Scores[i] = p.Score
		switch p.Type {
		case TypeUnknown, TypeControl, TypeUnused, TypeByte:
			v.Types[i] = p.Type
		default: // NORMAL and USER_DEFINED: sentencepiece's Is* tests say neither
			v.Types[i] = TypeNormal
		}
	}
	if !m.AddDummyPrefix {
		v.AddSpacePrefix = boolPtr(false)
	}

	// added_tokens.json: {"content": id}, USER_DEFINED with score -1000.
	added, err := readObject(f.dir, fileAddedTokens)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(added))
	for k := range added {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		id, ok := added.optInt(k)
		if !ok || id < 0 {
			return nil, vocabErr(f.path(fileAddedTokens), k, "id is not a non-negative integer")
		}
		if id >= int64(n) {
			continue // the converter warns and ignores it
		}
		v.Tokens[id], v.Scores[id], v.Types[id] = k, -1000, TypeUserDefined
	}

	// tokenizer_config.json's added_tokens_decoder.
	dec, err := f.addedTokensDecoder()
	if err != nil {
		return nil, err
	}
	for _, e := range dec {
		if e.id >= int64(n) {
			continue
		}
		tok := e.content
		if e.special || looksSpecial(tok) {
			v.Types[e.id] = TypeControl
		} else {
			tok = strings.ReplaceAll(tok, "\u2581", " ")
			v.Types[e.id] = TypeUserDefined
		}
		v.Scores[e.id] = -1000
		v.Tokens[e.id] = tok
	}
	return v, nil
}

// validate applies the checks sentencepiece makes when it loads a model
// (model_interface.cc InitializePieces), so that a file it would refuse is
// refused here too; and refuses WORD and CHAR models, which llama.cpp's
// SentencePiece tokenizer does not implement.
func (m *spModel) validate(file string) error {
	if len(m.Pieces) == 0 {
		return vocabErr(file, "pieces", "no pieces")
	}
	if m.ModelType != spUnigram && m.ModelType != spBPE {
		return &formats.FormatError{File: file, Offset: -1, Key: "trainer_spec.model_type", Err: ErrUnsupportedTokenizer,
			Detail: fmt.Sprintf("model type %d (only UNIGRAM 1 and BPE 2 convert)", m.ModelType)}
	}
	normal := make(map[string]int, len(m.Pieces))
	reserved := make(map[string]int)
	unk := -1
	var bytesSeen [256]bool
	for i, p := range m.Pieces {
		key := fmt.Sprintf("pieces[%d]", i)
		if p.Piece == "" {
			return vocabErr(file, key, "empty piece")
		}
		set := reserved
		if p.Type == TypeNormal || p.Type == TypeUserDefined || p.Type == TypeUnused {
			set = normal
		}
		if j, dup := set[p.Piece]; dup {
			return vocabErr(file, key, "piece %q already defined at %d", p.Piece, j)
		}
		set[p.Piece] = i
		switch p.Type {
		case TypeUnknown:
			if unk >= 0 {
				return vocabErr(file, key, "second unknown piece (first at %d)", unk)
			}
			unk = i
		case TypeByte:
			if !m.ByteFallback {
				return vocabErr(file, key, "byte piece %q although trainer_spec.byte_fallback is false", p.Piece)
			}
			c, ok := pieceByte(p.Piece)
			if !ok {
				return vocabErr(file, key, "invalid byte piece %q", p.Piece)
			}
			bytesSeen[c] = true
		}
	}
	if unk < 0 {
		return vocabErr(file, "pieces", "no unknown piece")
	}
	if m.ByteFallback {
		for c, ok := range bytesSeen {
			if !ok {
				return vocabErr(file, "pieces", "byte_fallback is true but <0x%02X> is missing", c)
			}
		}
	}
	return nil
}

// pieceByte parses sentencepiece's byte piece form "<0xNN>" (upper-case
// hex, as its ByteToPiece writes).
func pieceByte(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(s[3:5], 16, 8)
	if err != nil || strings.ToUpper(s[3:5]) != s[3:5] {
		return 0, false
	}
	return byte(v), true
}

// decoderEntry is one tokenizer_config.json added_tokens_decoder entry.
type decoderEntry struct {
	id      int64
	content string
	special bool
}

// addedTokensDecoder reads tokenizer_config.json's added_tokens_decoder,
// sorted by id (the entries are independent, so order does not matter).
func (f *hfFolder) addedTokensDecoder() ([]decoderEntry, error) {
	file := f.path(fileConfig)
	atd, err := f.tokConfig.object(file, "added_tokens_decoder")
	if err != nil {
		return nil, err
	}
	out := make([]decoderEntry, 0, len(atd))
	for k, raw := range atd {
		key := "added_tokens_decoder." + k
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil || id < 0 || id >= MaxTokens {
			return nil, vocabErr(file, key, "key is not a token id")
		}
		var e struct {
			Content *string `json:"content"`
			Special bool    `json:"special"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, jsonErr(file, key, err)
		}
		if e.Content == nil {
			return nil, vocabErr(file, key, "no content")
		}
		out = append(out, decoderEntry{id: id, content: *e.Content, special: e.Special})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}

// specialTokenStrings is what transformers' all_special_tokens holds: the
// bos/eos/unk/sep/pad/cls/mask tokens and additional_special_tokens of
// tokenizer_config.json, falling back to special_tokens_map.json.
func (f *hfFolder) specialTokenStrings() []string {
	var out []string
	for _, typ := range []string{"bos", "eos", "unk", "sep", "pad", "cls", "mask"} {
		if s, ok := f.configToken(typ + "_token"); ok {
			out = append(out, s)
		}
	}
	for _, src := range []obj{f.tokConfig, f.specialMap} {
		raw, ok := src["additional_special_tokens"]
		if !ok {
			continue
		}
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) == nil {
			for _, r := range list {
				if s, ok := tokenContent(r); ok {
					out = append(out, s)
				}
			}
			break
		}
	}
	return out
}

// configToken returns a special token's text from tokenizer_config.json,
// else from special_tokens_map.json.
func (f *hfFolder) configToken(key string) (string, bool) {
	for _, src := range []obj{f.tokConfig, f.specialMap} {
		if src.has(key) {
			return tokenContent(src[key])
		}
	}
	return "", false
}
