package vocab

import (
	"fmt"
	"math"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// GGUF tokenizer keys (GGUF-LLAMACPP.md §2).
const (
	KeyModel          = "tokenizer.ggml.model"
	KeyPre            = "tokenizer.ggml.pre"
	KeyTokens         = "tokenizer.ggml.tokens"
	KeyScores         = "tokenizer.ggml.scores"
	KeyTokenType      = "tokenizer.ggml.token_type"
	KeyMerges         = "tokenizer.ggml.merges"
	KeyAddSpacePrefix = "tokenizer.ggml.add_space_prefix"
	KeyChatTemplate   = "tokenizer.chat_template"
)

// idKey and addKey name the special-id and add-flag keys.
func idKey(name string) string {
	if name == "unk" {
		return "tokenizer.ggml.unknown_token_id"
	}
	if name == "pad" {
		return "tokenizer.ggml.padding_token_id"
	}
	return "tokenizer.ggml." + name + "_token_id"
}

func addKey(name string) string { return "tokenizer.ggml.add_" + name + "_token" }

func metaErr(key, format string, args ...any) error {
	return &formats.FormatError{Offset: -1, Key: key, Err: ErrMeta, Detail: fmt.Sprintf(format, args...)}
}

// FromMeta reads the tokenizer.ggml.* and tokenizer.chat_template keys of
// a GGUF's metadata. tokenizer.ggml.model must be "llama" or "gpt2" and
// tokenizer.ggml.tokens present; gpt2 needs merges. Scores may be FLOAT32
// or INT32 (llama.cpp accepts both). A special id outside the token list
// (convert-llama2c writes 0xFFFFFFFF for "none") reads as absent (-1), as
// llama.cpp ignores it.
func FromMeta(m *formats.Meta) (*Vocab, error) {
	mv, ok := m.Get(KeyModel)
	if !ok {
		return nil, metaErr(KeyModel, "missing")
	}
	model, ok := mv.V.(string)
	if !ok || mv.Type != formats.TypeString {
		return nil, metaErr(KeyModel, "type %s, want STRING", mv.Type)
	}
	if model != ModelLlama && model != ModelGPT2 {
		return nil, &formats.FormatError{Offset: -1, Key: KeyModel, Err: ErrUnsupportedTokenizer,
			Detail: fmt.Sprintf("tokenizer model %q (qtool converts llama and gpt2)", model)}
	}
	v := newVocab(model)
	var err error
	if v.Pre, _, err = metaString(m, KeyPre); err != nil {
		return nil, err
	}
	toks, ok, err := metaArray[string](m, KeyTokens, formats.TypeString)
	if err != nil {
		return nil, err
	}
	if !ok || len(toks) == 0 {
		return nil, metaErr(KeyTokens, "missing or empty")
	}
	if len(toks) > MaxTokens {
		return nil, &formats.FormatError{Offset: -1, Key: KeyTokens, Err: ErrTooLarge, Detail: fmt.Sprintf("%d tokens (limit %d)", len(toks), MaxTokens)}
	}
	v.Tokens = append([]string(nil), toks...)
	n := len(v.Tokens)

	if sv, ok := m.Get(KeyScores); ok {
		switch s := sv.V.(type) {
		case []float32:
			v.Scores = append([]float32(nil), s...)
		case []int32:
			v.Scores = make([]float32, len(s))
			for i, x := range s {
				v.Scores[i] = float32(x)
			}
		default:
			return nil, metaErr(KeyScores, "type %s[%s], want ARRAY[FLOAT32]", sv.Type, sv.Elem)
		}
		if len(v.Scores) != n {
			return nil, metaErr(KeyScores, "%d scores for %d tokens", len(v.Scores), n)
		}
	}
	types, ok, err := metaArray[int32](m, KeyTokenType, formats.TypeInt32)
	if err != nil {
		return nil, err
	}
	if ok {
		if len(types) != n {
			return nil, metaErr(KeyTokenType, "%d token types for %d tokens", len(types), n)
		}
		v.Types = append([]int32(nil), types...)
	}
	merges, ok, err := metaArray[string](m, KeyMerges, formats.TypeString)
	if err != nil {
		return nil, err
	}
	if ok {
		v.Merges = append([]string(nil), merges...)
	} else if model == ModelGPT2 {
		return nil, metaErr(KeyMerges, "missing (required for gpt2)")
	}

	for _, name := range idNames {
		val, ok := m.Get(idKey(name))
		if !ok {
			continue
		}
		switch val.Type {
		case formats.TypeUint8, formats.TypeInt8, formats.TypeUint16, formats.TypeInt16,
			formats.TypeUint32, formats.TypeInt32, formats.TypeUint64, formats.TypeInt64:
		default:
			return nil, metaErr(idKey(name), "type %s, want UINT32", val.Type)
		}
		if id, fits := val.AsInt(); fits && id >= 0 && id < int64(n) {
			*v.idPtr(name) = id
		}
	}
	for _, name := range []string{"bos", "sep", "eos"} {
		b, ok, err := metaBool(m, addKey(name))
		if err != nil {
			return nil, err
		}
		if ok {
			*v.addPtr(name) = boolPtr(b)
		}
	}
	b, ok, err := metaBool(m, KeyAddSpacePrefix)
	if err != nil {
		return nil, err
	}
	if ok {
		v.AddSpacePrefix = boolPtr(b)
	}
	if v.ChatTemplate, _, err = metaString(m, KeyChatTemplate); err != nil {
		return nil, err
	}
	return v, nil
}

func metaString(m *formats.Meta, key string) (string, bool, error) {
	val, ok := m.Get(key)
	if !ok {
		return "", false, nil
	}
	s, isStr := val.V.(string)
	if !isStr || val.Type != formats.TypeString {
		return "", false, metaErr(key, "type %s, want STRING", val.Type)
	}
	return s, true, nil
}

func metaBool(m *formats.Meta, key string) (bool, bool, error) {
	val, ok := m.Get(key)
	if !ok {
		return false, false, nil
	}
	b, isBool := val.V.(bool)
	if !isBool {
		return false, false, metaErr(key, "type %s, want BOOL", val.Type)
	}
	return b, true, nil
}

func metaArray[T any](m *formats.Meta, key string, elem formats.ValueType) ([]T, bool, error) {
	val, ok := m.Get(key)
	if !ok {
		return nil, false, nil
	}
	s, isT := val.V.([]T)
	if val.Type != formats.TypeArray || !isT {
		return nil, false, metaErr(key, "type %s[%s], want ARRAY[%s]", val.Type, val.Elem, elem)
	}
	return s, true, nil
}

// isTokenizerKey reports whether ToMeta owns key.
func isTokenizerKey(key string) bool {
	return strings.HasPrefix(key, "tokenizer.ggml.") || key == KeyChatTemplate ||
		strings.HasPrefix(key, KeyChatTemplate+".") || key == "tokenizer.chat_templates"
}

// ToMeta sets the tokenizer keys on m with the exact GGUF types llama.cpp
// checks, in the order convert_hf_to_gguf.py writes them:
//
//	tokenizer.ggml.add_space_prefix  BOOL          (LlamaModel.set_vocab, from add_prefix_space)
//	tokenizer.ggml.model             STRING
//	tokenizer.ggml.pre               STRING
//	tokenizer.ggml.tokens            ARRAY[STRING]
//	tokenizer.ggml.scores            ARRAY[FLOAT32]
//	tokenizer.ggml.token_type        ARRAY[INT32]
//	tokenizer.ggml.merges            ARRAY[STRING]
//	tokenizer.ggml.<x>_token_id      UINT32        (in the order SpecialVocab set them)
//	tokenizer.ggml.add_<x>_token     BOOL          (likewise)
//	tokenizer.chat_template          STRING
//
// Absent parts (nil scores, ids of -1, nil flags, empty strings) are not
// written. Any tokenizer.* keys m already has are removed first, so the
// result does not depend on m's previous content.
func (v *Vocab) ToMeta(m *formats.Meta) {
	var old []string
	for _, kv := range m.KVs() {
		if isTokenizerKey(kv.Key) {
			old = append(old, kv.Key)
		}
	}
	for _, k := range old {
		m.Delete(k)
	}
	if v.AddSpacePrefix != nil {
		m.Set(KeyAddSpacePrefix, formats.ValBool(*v.AddSpacePrefix))
	}
	m.Set(KeyModel, formats.ValString(v.Model))
	if v.Pre != "" {
		m.Set(KeyPre, formats.ValString(v.Pre))
	}
	m.Set(KeyTokens, formats.ValArray(append([]string(nil), v.Tokens...)))
	if v.Scores != nil {
		m.Set(KeyScores, formats.ValArray(append([]float32(nil), v.Scores...)))
	}
	if v.Types != nil {
		m.Set(KeyTokenType, formats.ValArray(append([]int32(nil), v.Types...)))
	}
	if len(v.Merges) > 0 {
		m.Set(KeyMerges, formats.ValArray(append([]string(nil), v.Merges...)))
	}
	for _, name := range orderNames(v.idOrder, idNames) {
		if id := *v.idPtr(name); id >= 0 && id <= math.MaxUint32 {
			m.Set(idKey(name), formats.ValUint32(uint32(id)))
		}
	}
	for _, name := range orderNames(v.addOrder, []string{"bos", "sep", "eos"}) {
		if b := *v.addPtr(name); b != nil {
			m.Set(addKey(name), formats.ValBool(*b))
		}
	}
	if v.ChatTemplate != "" {
		m.Set(KeyChatTemplate, formats.ValString(v.ChatTemplate))
	}
}

// orderNames is recorded followed by the names of all not in it.
func orderNames(recorded, all []string) []string {
	out := append([]string(nil), recorded...)
	for _, n := range all {
		found := false
		for _, r := range recorded {
			found = found || r == n
		}
		if !found {
			out = append(out, n)
		}
	}
	return out
}
