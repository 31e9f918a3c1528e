package convert

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// The llama.cpp check runs node-llama-cpp's prebuilt CPU binary (llama.cpp
// 0.5.0-dev, the version GGUF-LLAMACPP.md was read from) through
// testdata/node/llama.mjs. It needs the pinned packages installed:
//
//	npm install --ignore-scripts --no-audit --no-fund --omit=optional --prefix convert/testdata/node
const nodeDir = "testdata/node"

// requireLlamaCpp skips outside CI when node or the package is missing,
// and fails in CI.
func requireLlamaCpp(t *testing.T) {
	t.Helper()
	why := ""
	if _, err := exec.LookPath("node"); err != nil {
		why = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
		why = "node-llama-cpp is not installed (npm install --ignore-scripts --no-audit --no-fund --omit=optional --prefix convert/testdata/node)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "" {
		t.Skipf("llama.cpp check skipped: %s; set CI=1 to make this a failure", why)
	}
	t.Fatalf("llama.cpp check cannot run in CI: %s", why)
}

type llamaJob struct {
	Model  string   `json:"model"`
	Prompt string   `json:"prompt"`
	N      int      `json:"n"`
	Texts  []string `json:"texts"`
}

type llamaResult struct {
	Model     string           `json:"model"`
	Error     string           `json:"error"`
	Tokens    map[string][]int `json:"tokens"`
	Prompt    []int            `json:"prompt_ids"`
	Generated []int            `json:"generated_ids"`
	Text      string           `json:"generated_text"`
}

// runLlamaCpp runs every job in one node process.
func runLlamaCpp(t *testing.T, jobs []llamaJob) []llamaResult {
	t.Helper()
	for i := range jobs {
		abs, err := filepath.Abs(jobs[i].Model)
		if err != nil {
			t.Fatal(err)
		}
		jobs[i].Model = abs
	}
	b, _ := json.Marshal(jobs)
	jf := filepath.Join(t.TempDir(), "jobs.json")
	if err := os.WriteFile(jf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "llama.mjs", jf)
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(), "NODE_LLAMA_CPP_SKIP_DOWNLOAD=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node llama.mjs: %v\n%s", err, stderr.Bytes())
	}
	var out []llamaResult
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != len(jobs) {
		t.Fatalf("llama.mjs output: %v\n%s\n%s", err, stdout.Bytes(), stderr.Bytes())
	}
	return out
}

// llama.cpp loads every converted fixture, tokenizes like the original and,
// from "Once upon a time", greedy-generates the original's 32 tokens.
func TestLlamaCppLoadsConversions(t *testing.T) {
	requireLlamaCpp(t)
	texts := []string{"Once upon a time", "Hello world", "The cat sat on the mat.", "héllo ✓ 42", "  two  spaces"}
	story := func(model string) llamaJob {
		return llamaJob{Model: model, Prompt: "Once upon a time", N: 32, Texts: texts}
	}

	// stories260K: HF → GGUF (f32, f16), and GGUF → HF → GGUF.
	hf := openHF(t, storiesHF)
	f32, _ := hfToGGUFFile(t, hf, Options{DType: formats.F32})
	f16, _ := hfToGGUFFile(t, hf, Options{DType: formats.F16})
	rtDir, _ := ggufToHFFolder(t, openGGUF(t, storiesGGUF), Options{}, "stories-rt", 0)
	rt, _ := hfToGGUFFile(t, openHF(t, rtDir), Options{})

	// Synthetic: the fixtures' GGUF, its GGUF → HF → GGUF, the other
	// shapes from HF, Qwen2 with biases, Llama 3 rope scaling.
	cfgs := syntheticConfigs(t)
	tinyRef := syntheticGGUF(t, cfgs[0])
	tinyDir, _ := ggufToHFFolder(t, openGGUF(t, tinyRef), Options{}, "tiny-rt", 0)
	tinyRT, _ := hfToGGUFFile(t, openHF(t, tinyDir), Options{})
	odd, _ := hfToGGUFFile(t, openHF(t, syntheticHF(t, cfgs[1], 0)), Options{})
	tied, _ := hfToGGUFFile(t, openHF(t, syntheticHF(t, cfgs[2], 0)), Options{DType: formats.F16})
	qwenDir, _ := qwen2Folder(t)
	qwen, _ := hfToGGUFFile(t, openHF(t, qwenDir), Options{})
	l3 := llama3Model(t)

	jobs := []llamaJob{story(storiesGGUF), story(f32), story(f16), story(rt),
		{Model: tinyRef, Prompt: "the cat", N: 8, Texts: texts}, {Model: tinyRT, Prompt: "the cat", N: 8, Texts: texts},
		{Model: odd, Prompt: "the cat", N: 4, Texts: texts}, {Model: tied, Prompt: "the cat", N: 4, Texts: texts},
		{Model: qwen, Prompt: "the cat", N: 4, Texts: texts}, {Model: l3, Prompt: "the cat", N: 4, Texts: texts}}
	names := []string{"stories260K.gguf", "HF → GGUF f32", "HF → GGUF f16", "GGUF → HF → GGUF",
		"tiny (fixtures)", "tiny GGUF → HF → GGUF", "odd-f16 HF → GGUF", "tied-bf16 HF → GGUF f16", "qwen2 HF → GGUF", "llama3 rope HF → GGUF"}
	res := runLlamaCpp(t, jobs)
	for i, r := range res {
		if r.Error != "" {
			t.Errorf("%s: llama.cpp refused it: %s", names[i], r.Error)
			continue
		}
		if len(r.Generated) != jobs[i].N {
			t.Errorf("%s: generated %d tokens, want %d", names[i], len(r.Generated), jobs[i].N)
		}
		for _, s := range texts {
			if len(r.Tokens[s]) == 0 {
				t.Errorf("%s: %q tokenized to nothing", names[i], s)
			}
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("stories260K.gguf: %q", res[0].Text)
	for _, i := range []int{1, 2, 3} {
		if !reflect.DeepEqual(res[i].Generated, res[0].Generated) || !reflect.DeepEqual(res[i].Prompt, res[0].Prompt) {
			t.Errorf("%s: generates %q, the original %q", names[i], res[i].Text, res[0].Text)
		}
		if !reflect.DeepEqual(res[i].Tokens, res[0].Tokens) {
			t.Errorf("%s: tokenizes %v, the original %v", names[i], res[i].Tokens, res[0].Tokens)
		}
	}
	if !reflect.DeepEqual(res[5].Generated, res[4].Generated) || !reflect.DeepEqual(res[5].Tokens, res[4].Tokens) {
		t.Errorf("tiny round trip: %v %v, reference %v %v", res[5].Generated, res[5].Tokens, res[4].Generated, res[4].Tokens)
	}
}

// llama3Model is the Llama 3 rope-scaling fixture of TestLlama3RopeFreqs as
// a GGUF file.
func llama3Model(t *testing.T) string {
	dir := llama3Folder(t)
	p, rep := hfToGGUFFile(t, openHF(t, dir), Options{})
	if len(rep.Generated) != 1 {
		t.Fatal("no rope_freqs generated")
	}
	return p
}
