package vocab

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// miniSP is a small valid SentencePiece model: unk, bos, eos, two pieces.
func miniSP() *spModel {
	m := newSPModel()
	m.ModelType = spBPE
	m.Pieces = []spPiece{
		{"<unk>", 0, TypeUnknown}, {"<s>", 0, TypeControl}, {"</s>", 0, TypeControl},
		{"\u2581a", -1, TypeNormal}, {"a", -2, TypeNormal},
	}
	return m
}

// folder writes files into a fresh directory.
func folder(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// gpt2JSON is a minimal byte-level BPE tokenizer.json with the given
// pieces spliced in.
func gpt2JSON(vocab, merges, pre string) []byte {
	return []byte(`{"added_tokens": [], "pre_tokenizer": ` + pre + `,
		"model": {"type": "BPE", "vocab": ` + vocab + `, "merges": ` + merges + `}}`)
}

const byteLevelPre = `{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}`

// noPanic runs f, failing the test instead of crashing on a panic.
func noPanic(t *testing.T, f func() error) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panic: %v", r)
		}
	}()
	return f()
}

func checkErr(t *testing.T, err error, rule error, file string) {
	t.Helper()
	if !errors.Is(err, rule) {
		t.Fatalf("error %v, want %v", err, rule)
	}
	var r *formats.Rule
	if !errors.As(rule, &r) || !errors.Is(err, r.Unwrap()) {
		t.Fatalf("error %v does not wrap its class", err)
	}
	if !formats.IsInputError(err) {
		t.Fatalf("error %v is not an input error", err)
	}
	var fe *formats.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *formats.FormatError", err)
	}
	if file != "" && filepath.Base(fe.File) != file {
		t.Fatalf("error names file %q, want %q (%v)", fe.File, file, err)
	}
}

func TestMalformedFolders(t *testing.T) {
	tok512, err := os.ReadFile("testdata/tok512.model")
	if err != nil {
		t.Fatal(err)
	}
	sp := func(edit func(m *spModel)) []byte {
		m := miniSP()
		edit(m)
		return m.encode()
	}
	cases := []struct {
		name  string
		files map[string][]byte
		rule  error
		file  string // base name the error must name; "" to skip
	}{
		{"empty folder", nil, ErrNoTokenizer, ""},
		{"model truncated", map[string][]byte{fileModel: tok512[:100]}, ErrProtobuf, fileModel},
		{"model cut inside a varint", map[string][]byte{fileModel: {0x0a, 0x80}}, ErrProtobuf, fileModel},
		{"model length absurd", map[string][]byte{fileModel: {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f}}, ErrProtobuf, fileModel},
		{"model varint overflow", map[string][]byte{fileModel: {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}}, ErrProtobuf, fileModel},
		{"model group wire type", map[string][]byte{fileModel: {0x0b}}, ErrProtobuf, fileModel},
		{"model field number 0", map[string][]byte{fileModel: {0x02, 0x00}}, ErrProtobuf, fileModel},
		{"piece length past its message", map[string][]byte{fileModel: {0x0a, 0x02, 0x0a, 0x05}}, ErrProtobuf, fileModel},
		{"model not protobuf (JSON)", map[string][]byte{fileModel: []byte(`{"pieces": []}`)}, ErrProtobuf, fileModel},
		{"model without pieces", map[string][]byte{fileModel: {}}, ErrVocab, fileModel},
		{"model without unknown piece", map[string][]byte{fileModel: sp(func(m *spModel) { m.Pieces[0].Type = TypeControl })}, ErrVocab, fileModel},
		{"model with two unknown pieces", map[string][]byte{fileModel: sp(func(m *spModel) { m.Pieces[1].Type = TypeUnknown })}, ErrVocab, fileModel},
		{"model with empty piece", map[string][]byte{fileModel: sp(func(m *spModel) { m.Pieces[3].Piece = "" })}, ErrVocab, fileModel},
		{"model with duplicate piece", map[string][]byte{fileModel: sp(func(m *spModel) { m.Pieces[4].Piece = "\u2581a" })}, ErrVocab, fileModel},
		{"byte piece without byte_fallback", map[string][]byte{fileModel: sp(func(m *spModel) {
			m.Pieces = append(m.Pieces, spPiece{"<0x41>", 0, TypeByte})
		})}, ErrVocab, fileModel},
		{"byte_fallback without the 256 bytes", map[string][]byte{fileModel: sp(func(m *spModel) { m.ByteFallback = true })}, ErrVocab, fileModel},
		{"WORD model", map[string][]byte{fileModel: sp(func(m *spModel) { m.ModelType = spWord })}, ErrUnsupportedTokenizer, fileModel},
		{"config.json bad JSON", map[string][]byte{fileModel: tok512, fileModelConfig: []byte(`{"vocab_size": 512,`)}, ErrJSON, fileModelConfig},
		{"config.json trailing data", map[string][]byte{fileModel: tok512, fileModelConfig: []byte(`{} {}`)}, ErrJSON, fileModelConfig},
		{"config.json not an object", map[string][]byte{fileModel: tok512, fileModelConfig: []byte(`[1, 2]`)}, ErrJSON, fileModelConfig},
		{"vocab_size absurd", map[string][]byte{fileModel: tok512, fileModelConfig: []byte(`{"vocab_size": 1000000000000}`)}, ErrTooLarge, fileModelConfig},
		{"vocab_size negative", map[string][]byte{fileModel: tok512, fileModelConfig: []byte(`{"vocab_size": -5}`)}, ErrVocab, fileModelConfig},
		{"added_tokens_decoder key not an id", map[string][]byte{fileModel: tok512,
			fileConfig: []byte(`{"added_tokens_decoder": {"abc": {"content": "x"}}}`)}, ErrVocab, fileConfig},
		{"added_tokens_decoder entry not an object", map[string][]byte{fileModel: tok512,
			fileConfig: []byte(`{"added_tokens_decoder": {"3": "x"}}`)}, ErrJSON, fileConfig},
		{"added_tokens_decoder without content", map[string][]byte{fileModel: tok512,
			fileConfig: []byte(`{"added_tokens_decoder": {"3": {"special": true}}}`)}, ErrVocab, fileConfig},
		{"added_tokens.json id not a number", map[string][]byte{fileModel: tok512, fileAddedTokens: []byte(`{"<x>": "7"}`)}, ErrVocab, fileAddedTokens},
		{"tokenizer.json truncated", map[string][]byte{fileTokenizer: []byte(`{"model": {"type": "BPE", "vocab": {"a": 0`)}, ErrJSON, fileTokenizer},
		{"tokenizer.json added_tokens not a list", map[string][]byte{fileTokenizer: []byte(`{"added_tokens": "x", "model": {"type": "BPE", "vocab": {}}}`)}, ErrJSON, fileTokenizer},
		{"tokenizer.json Unigram", map[string][]byte{fileTokenizer: []byte(`{"model": {"type": "Unigram", "vocab": [["a", 0]]}}`)}, ErrUnsupportedTokenizer, fileTokenizer},
		{"tokenizer.json without vocab", map[string][]byte{fileTokenizer: []byte(`{"model": {"type": "BPE", "merges": []}}`)}, ErrVocab, fileTokenizer},
		{"tokenizer.json duplicate id", map[string][]byte{fileTokenizer: gpt2JSON(`{"a": 0, "b": 0}`, `[]`, byteLevelPre)}, ErrVocab, fileTokenizer},
		{"tokenizer.json negative id", map[string][]byte{fileTokenizer: gpt2JSON(`{"a": -1}`, `[]`, byteLevelPre)}, ErrVocab, fileTokenizer},
		{"tokenizer.json id absurd", map[string][]byte{fileTokenizer: gpt2JSON(`{"a": 99999999999}`, `[]`, byteLevelPre)}, ErrVocab, fileTokenizer},
		{"tokenizer.json id not an integer", map[string][]byte{fileTokenizer: gpt2JSON(`{"a": 1.5}`, `[]`, byteLevelPre)}, ErrJSON, fileTokenizer},
		{"merge of three parts", map[string][]byte{fileTokenizer: gpt2JSON(`{"a": 0, "b": 1, "ab": 2}`, `[["a", "b", "c"]]`, byteLevelPre)}, ErrVocab, fileTokenizer},
		{"merges mixing forms", map[string][]byte{fileTokenizer: gpt2JSON(`{"a": 0, "b": 1, "ab": 2}`, `["a b", ["a", "b"]]`, byteLevelPre)}, ErrVocab, fileTokenizer},
		{"merge neither string nor pair", map[string][]byte{fileTokenizer: gpt2JSON(`{"a": 0}`, `[7]`, byteLevelPre)}, ErrVocab, fileTokenizer},
		{"unknown pre-tokenizer", map[string][]byte{fileTokenizer: gpt2JSON(`{"a": 0}`, `[]`, `{"type": "Whitespace"}`)}, ErrUnsupportedTokenizer, fileTokenizer},
		{"added token clashing with vocab", map[string][]byte{fileTokenizer: []byte(`{"added_tokens": [{"id": 0, "content": "<x>"}],
			"pre_tokenizer": ` + byteLevelPre + `, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}`)}, ErrVocab, fileTokenizer},
		{"vocab_size below the ids", map[string][]byte{fileTokenizer: gpt2JSON(`{"a": 0, "b": 5}`, `[]`, byteLevelPre),
			fileModelConfig: []byte(`{"vocab_size": 3}`)}, ErrVocab, fileModelConfig},
		{"llama tokenizer.json with a hole", map[string][]byte{fileTokenizer: []byte(`{"model": {"type": "BPE", "byte_fallback": true,
			"vocab": {"<unk>": 0, "a": 2}, "merges": []}}`)}, ErrVocab, fileTokenizer},
		{"llama added token out of sequence", map[string][]byte{fileTokenizer: []byte(`{"added_tokens": [{"id": 9, "content": "<x>"}],
			"model": {"type": "BPE", "byte_fallback": true, "vocab": {"<unk>": 0, "a": 1}, "merges": []}}`)}, ErrVocab, fileTokenizer},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := folder(t, c.files)
			err := noPanic(t, func() error { _, err := FromHFFolder(dir); return err })
			checkErr(t, err, c.rule, c.file)
		})
	}
}

// A tokenizer file above MaxFileBytes is refused before it is read.
func TestTooLargeFile(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, fileTokenizer))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileBytes + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	_, err = FromHFFolder(dir)
	checkErr(t, err, ErrTooLarge, fileTokenizer)
	if !errors.Is(err, formats.ErrLimit) {
		t.Fatalf("%v does not wrap formats.ErrLimit", err)
	}
}

func TestMalformedMeta(t *testing.T) {
	good := func() *formats.Meta {
		m := formats.NewMeta()
		m.Set(KeyModel, formats.ValString("llama"))
		m.Set(KeyTokens, formats.ValArray([]string{"<unk>", "<s>", "</s>"}))
		m.Set(KeyScores, formats.ValArray([]float32{0, 0, 0}))
		m.Set(KeyTokenType, formats.ValArray([]int32{2, 3, 3}))
		return m
	}
	if _, err := FromMeta(good()); err != nil {
		t.Fatalf("good meta: %v", err)
	}
	cases := []struct {
		name string
		edit func(m *formats.Meta)
		rule error
		key  string
	}{
		{"no model", func(m *formats.Meta) { m.Delete(KeyModel) }, ErrMeta, KeyModel},
		{"model not a string", func(m *formats.Meta) { m.Set(KeyModel, formats.ValUint32(1)) }, ErrMeta, KeyModel},
		{"model bert", func(m *formats.Meta) { m.Set(KeyModel, formats.ValString("bert")) }, ErrUnsupportedTokenizer, KeyModel},
		{"no tokens", func(m *formats.Meta) { m.Delete(KeyTokens) }, ErrMeta, KeyTokens},
		{"empty tokens", func(m *formats.Meta) { m.Set(KeyTokens, formats.ValArray([]string{})) }, ErrMeta, KeyTokens},
		{"tokens not strings", func(m *formats.Meta) { m.Set(KeyTokens, formats.ValArray([]int32{1})) }, ErrMeta, KeyTokens},
		{"scores short", func(m *formats.Meta) { m.Set(KeyScores, formats.ValArray([]float32{0})) }, ErrMeta, KeyScores},
		{"scores of strings", func(m *formats.Meta) { m.Set(KeyScores, formats.ValArray([]string{"a", "b", "c"})) }, ErrMeta, KeyScores},
		{"token types as floats", func(m *formats.Meta) { m.Set(KeyTokenType, formats.ValArray([]float32{1, 1, 1})) }, ErrMeta, KeyTokenType},
		{"token types long", func(m *formats.Meta) { m.Set(KeyTokenType, formats.ValArray([]int32{1, 1, 1, 1})) }, ErrMeta, KeyTokenType},
		{"gpt2 without merges", func(m *formats.Meta) { m.Set(KeyModel, formats.ValString("gpt2")) }, ErrMeta, KeyMerges},
		{"pre not a string", func(m *formats.Meta) { m.Set(KeyPre, formats.ValBool(true)) }, ErrMeta, KeyPre},
		{"bos id a float", func(m *formats.Meta) { m.Set(idKey("bos"), formats.ValFloat32(1)) }, ErrMeta, idKey("bos")},
		{"add_bos a byte", func(m *formats.Meta) { m.Set(addKey("bos"), formats.ValUint8(1)) }, ErrMeta, addKey("bos")},
		{"chat template an array", func(m *formats.Meta) { m.Set(KeyChatTemplate, formats.ValArray([]string{"x"})) }, ErrMeta, KeyChatTemplate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := good()
			c.edit(m)
			err := noPanic(t, func() error { _, err := FromMeta(m); return err })
			checkErr(t, err, c.rule, "")
			var fe *formats.FormatError
			errors.As(err, &fe)
			if fe.Key != c.key {
				t.Errorf("error names key %q, want %q", fe.Key, c.key)
			}
		})
	}
	// Out-of-range ids (convert-llama2c's 0xFFFFFFFF) read as absent.
	m := good()
	m.Set(idKey("pad"), formats.ValUint32(0xFFFFFFFF))
	m.Set(idKey("eos"), formats.ValInt32(-1))
	v, err := FromMeta(m)
	if err != nil || v.PAD != -1 || v.EOS != -1 {
		t.Fatalf("pad %d eos %d err %v, want -1 -1 nil", v.PAD, v.EOS, err)
	}
}

func TestWriteHFRefuses(t *testing.T) {
	base := func() *Vocab {
		v := newVocab(ModelLlama)
		v.Tokens = []string{"<unk>", "<s>", "</s>", "\u2581a"}
		v.Scores = []float32{0, 0, 0, -1}
		v.Types = []int32{2, 3, 3, 1}
		return v
	}
	cases := []struct {
		name string
		edit func(v *Vocab)
		rule error
	}{
		{"duplicate tokens", func(v *Vocab) { v.Tokens[3] = "<s>" }, ErrUnsupportedTokenizer},
		{"invalid UTF-8", func(v *Vocab) { v.Tokens[3] = "\xff" }, ErrUnsupportedTokenizer},
		{"unknown model", func(v *Vocab) { v.Model = "bert" }, ErrUnsupportedTokenizer},
		{"no tokens", func(v *Vocab) { v.Tokens, v.Scores, v.Types = nil, nil, nil }, ErrVocab},
		{"scores short", func(v *Vocab) { v.Scores = v.Scores[:2] }, ErrVocab},
		{"types long", func(v *Vocab) { v.Types = append(v.Types, 1) }, ErrVocab},
		{"bos out of range", func(v *Vocab) { v.BOS = 4 }, ErrVocab},
		{"NaN score", func(v *Vocab) { v.Scores[3] = float32(nan()) }, ErrUnsupportedTokenizer},
		{"gpt2 unknown pre", func(v *Vocab) { v.Model, v.Pre = ModelGPT2, "falcon" }, ErrUnsupportedTokenizer},
		{"gpt2 merge without space", func(v *Vocab) { v.Model, v.Pre, v.Merges = ModelGPT2, PreGPT2, []string{"ab"} }, ErrVocab},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := base()
			c.edit(v)
			dir := t.TempDir()
			var names []string
			err := noPanic(t, func() error { var err error; names, err = v.WriteHF(dir); return err })
			checkErr(t, err, c.rule, "")
			if len(names) != 0 {
				t.Errorf("wrote %v before failing", names)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("left %d files behind", len(ents))
			}
		})
	}
	// A vocabulary sentencepiece could not load (no unknown token) still
	// gets tokenizer.json, just no tokenizer.model.
	v := base()
	v.Tokens[0], v.Types[0] = "<x>", TypeControl
	names, err := v.WriteHF(t.TempDir())
	if err != nil || strings.Join(names, ",") != "tokenizer.json,tokenizer_config.json,special_tokens_map.json" {
		t.Fatalf("names %v, err %v", names, err)
	}
}

func nan() float64 { var z float64; return z / z }
