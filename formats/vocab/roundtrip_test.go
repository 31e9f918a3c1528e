package vocab

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
)

// spmTexts encode alike with the original tok512/OpenLLaMA models and the
// rebuilt ones. They have no leading, trailing or repeated spaces: the
// originals collapse those (remove_extra_whitespaces), which GGUF does not
// record and llama.cpp does not do, so the rebuilt models do not either.
var spmTexts = []string{
	"Once upon a time, there was a little girl named Lily.",
	"She loved to play outside in the park.",
	"Hello world",
	"日本語と中文 and 한국어",
	"emoji 🦙🦙 and ✅",
	"numbers 12345 and 3.14",
	"tabs\tand\nnewlines\r\nhere",
	"<s>literal</s> <unk> <0x41>",
	"ünïcödé çafé naïve",
	"",
}

func loadMeta(t *testing.T, path string) *formats.Meta {
	t.Helper()
	r, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.Meta()
}

// sameVocab compares everything a GGUF records, with llama's unset
// add_bos/add_eos counted as llama.cpp's defaults.
func sameVocab(t *testing.T, what string, a, b *Vocab) {
	t.Helper()
	eq := func(field string, x, y any) {
		t.Helper()
		if !reflect.DeepEqual(x, y) {
			t.Errorf("%s: %s differs:\n%v\n%v", what, field, short(x), short(y))
		}
	}
	eq("Model", a.Model, b.Model)
	eq("Pre", a.Pre, b.Pre)
	eq("Tokens", a.Tokens, b.Tokens)
	eq("Types", a.Types, b.Types)
	eq("Merges", a.Merges, b.Merges)
	if len(a.Scores) != len(b.Scores) {
		t.Errorf("%s: %d vs %d scores", what, len(a.Scores), len(b.Scores))
	}
	for i := range min(len(a.Scores), len(b.Scores)) {
		if math.Float32bits(a.Scores[i]) != math.Float32bits(b.Scores[i]) {
			t.Errorf("%s: score %d: %v vs %v", what, i, a.Scores[i], b.Scores[i])
			break
		}
	}
	eq("ids", []int64{a.BOS, a.EOS, a.UNK, a.PAD, a.EOT}, []int64{b.BOS, b.EOS, b.UNK, b.PAD, b.EOT})
	flag := func(p *bool, def *bool) *bool {
		if p == nil {
			return def
		}
		return p
	}
	var defBOS, defEOS *bool
	if a.Model == ModelLlama {
		defBOS, defEOS = boolPtr(true), boolPtr(false)
	}
	eq("AddBOS", flag(a.AddBOS, defBOS), flag(b.AddBOS, defBOS))
	eq("AddEOS", flag(a.AddEOS, defEOS), flag(b.AddEOS, defEOS))
	eq("AddSpacePrefix", a.AddSpacePrefix, b.AddSpacePrefix)
	eq("ChatTemplate", a.ChatTemplate, b.ChatTemplate)
}

func short(x any) any {
	switch s := x.(type) {
	case []string:
		if len(s) > 8 {
			return s[:8]
		}
	case []int32:
		if len(s) > 8 {
			return s[:8]
		}
	}
	return x
}

func readSP(t *testing.T, path string) *spModel {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseSentencePiece(b, path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// stories260K.gguf (made by llama.cpp's convert-llama2c) → HF folder →
// vocabulary: the same tokens, scores, types and ids, and a tokenizer.model
// whose pieces equal tok512.model's and that sentencepiece encodes with
// exactly as with the original.
func TestRoundTripStories260KGGUF(t *testing.T) {
	v, err := FromMeta(loadMeta(t, "../gguf/testdata/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Tokens) != 512 || v.UNK != 0 || v.BOS != 1 || v.EOS != 2 || v.PAD != -1 {
		t.Fatalf("FromMeta: %d tokens, unk %d bos %d eos %d pad %d", len(v.Tokens), v.UNK, v.BOS, v.EOS, v.PAD)
	}
	dir := t.TempDir()
	names, err := v.WriteHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fileTokenizer, fileConfig, fileSpecialMap, fileModel}
	if !slices.Equal(names, want) {
		t.Fatalf("WriteHF wrote %v, want %v", names, want)
	}
	back, err := FromHFFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	v.Pre = "default" // absent from the llama2c-made GGUF; the converter always writes it
	sameVocab(t, "GGUF→HF→vocab", v, back)

	orig := readSP(t, "testdata/tok512.model")
	rebuilt := readSP(t, filepath.Join(dir, fileModel))
	if !reflect.DeepEqual(orig.Pieces, rebuilt.Pieces) {
		t.Errorf("rebuilt tokenizer.model pieces differ from tok512.model")
	}
	if !rebuilt.ByteFallback || rebuilt.ModelType != spBPE || !rebuilt.AddDummyPrefix {
		t.Errorf("rebuilt model: byte_fallback %v, type %d, add_dummy_prefix %v", rebuilt.ByteFallback, rebuilt.ModelType, rebuilt.AddDummyPrefix)
	}
	// The rebuilt file parses and re-encodes to the same bytes.
	raw, _ := os.ReadFile(filepath.Join(dir, fileModel))
	if again := rebuilt.encode(); string(again) != string(raw) {
		t.Errorf("rebuilt tokenizer.model does not re-encode identically")
	}

	ids := encodeSPM(t, spmTexts, "testdata/tok512.model", filepath.Join(dir, fileModel))
	for i, text := range spmTexts {
		if !slices.Equal(ids[0][i], ids[1][i]) {
			t.Errorf("sentencepiece %q: original %v, rebuilt %v", text, ids[0][i], ids[1][i])
		}
	}
}

// HF → GGUF keys → vocab → HF → GGUF keys gives the same keys: what the
// converter wrote survives a trip through an HF folder written by WriteHF.
func TestRoundTripHFGGUFHF(t *testing.T) {
	for _, src := range []string{"../../fixtures/stories260K-hf", "testdata/openllama"} {
		v, err := FromHFFolder(src)
		if err != nil {
			t.Fatal(err)
		}
		m1 := formats.NewMeta()
		v.ToMeta(m1)
		w, err := FromMeta(m1)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if _, err := w.WriteHF(dir); err != nil {
			t.Fatal(err)
		}
		back, err := FromHFFolder(dir)
		if err != nil {
			t.Fatal(err)
		}
		sameVocab(t, src, v, back)
		m2 := formats.NewMeta()
		back.ToMeta(m2)
		r1, r2 := tokenizerRecords(t, m1), tokenizerRecords(t, m2)
		if !reflect.DeepEqual(r1, r2) {
			t.Errorf("%s: GGUF keys differ after HF round trip:\n%v\n%v", src, r1, r2)
		}
	}
}

// The OpenLLaMA tokenizer.model rebuilt from the converted vocabulary
// encodes like the original (32,000 pieces).
func TestRebuiltOpenLLaMAEncodes(t *testing.T) {
	v, err := FromHFFolder("testdata/openllama")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := v.WriteHF(dir); err != nil {
		t.Fatal(err)
	}
	orig := readSP(t, "testdata/openllama/tokenizer.model")
	rebuilt := readSP(t, filepath.Join(dir, fileModel))
	if !reflect.DeepEqual(orig.Pieces, rebuilt.Pieces) {
		t.Errorf("rebuilt pieces differ from the original's")
	}
	ids := encodeSPM(t, spmTexts, "testdata/openllama/tokenizer.model", filepath.Join(dir, fileModel))
	for i, text := range spmTexts {
		if !slices.Equal(ids[0][i], ids[1][i]) {
			t.Errorf("sentencepiece %q: original %v, rebuilt %v", text, ids[0][i], ids[1][i])
		}
	}
}

// ToMeta replaces whatever tokenizer keys a Meta had (here the llama2c
// GGUF's, including seperator_token_id) and keeps the other keys in place.
func TestToMetaReplacesTokenizerKeys(t *testing.T) {
	m := loadMeta(t, "../gguf/testdata/stories260K.gguf").Clone()
	v, err := FromHFFolder("../../fixtures/stories260K-hf")
	if err != nil {
		t.Fatal(err)
	}
	v.ToMeta(m)
	if m.Has("tokenizer.ggml.seperator_token_id") || m.Has("tokenizer.ggml.unknown_token_id") {
		t.Errorf("old tokenizer keys survived ToMeta")
	}
	if k := m.KVs()[0].Key; k != "general.architecture" {
		t.Errorf("first key %q, want general.architecture (non-tokenizer keys keep their order)", k)
	}
	fresh := formats.NewMeta()
	v.ToMeta(fresh)
	if !reflect.DeepEqual(tokenizerRecords(t, m), tokenizerRecords(t, fresh)) {
		t.Errorf("ToMeta on a used Meta differs from ToMeta on a fresh one")
	}
	for _, kv := range fresh.KVs() {
		want := map[string]formats.ValueType{
			KeyModel: formats.TypeString, KeyPre: formats.TypeString, KeyTokens: formats.TypeArray,
			KeyScores: formats.TypeArray, KeyTokenType: formats.TypeArray,
			"tokenizer.ggml.bos_token_id": formats.TypeUint32, "tokenizer.ggml.eos_token_id": formats.TypeUint32,
			"tokenizer.ggml.add_bos_token": formats.TypeBool, "tokenizer.ggml.add_eos_token": formats.TypeBool,
		}[kv.Key]
		if kv.Value.Type != want {
			t.Errorf("%s: type %s, want %s", kv.Key, kv.Value.Type, want)
		}
	}
}
