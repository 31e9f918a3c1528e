package lora

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/quantize"
)

// The llama.cpp check runs node-llama-cpp's prebuilt CPU binary (llama.cpp
// 0.5.0, the release the goldens were made with) through the convert
// package's helper, ../convert/testdata/node/llama.mjs. It needs the
// pinned packages installed:
//
//	npm install --ignore-scripts --no-audit --no-fund --omit=optional --prefix convert/testdata/node
var llamaNodeDir = filepath.Join("..", "convert", "testdata", "node")

// requireLlamaCppNode skips outside CI when node or node-llama-cpp is
// missing, and fails in CI.
func requireLlamaCppNode(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("llama.cpp check skipped in -short mode")
	}
	why := ""
	if _, err := exec.LookPath("node"); err != nil {
		why = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(llamaNodeDir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
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

// llamaGen is one job of llama.mjs and its result.
type llamaGen struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
	N      int    `json:"n"`
}

type llamaGenResult struct {
	Model     string `json:"model"`
	Error     string `json:"error"`
	Prompt    []int  `json:"prompt_ids"`
	Generated []int  `json:"generated_ids"`
	Text      string `json:"generated_text"`
}

// runLlamaMJS runs every job in one node process.
func runLlamaMJS(t *testing.T, jobs []llamaGen) []llamaGenResult {
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
	cmd.Dir = llamaNodeDir
	cmd.Env = append(os.Environ(), "NODE_LLAMA_CPP_SKIP_DOWNLOAD=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node llama.mjs: %v\n%s", err, stderr.Bytes())
	}
	var out []llamaGenResult
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != len(jobs) {
		t.Fatalf("llama.mjs output: %v\n%s\n%s", err, stdout.Bytes(), stderr.Bytes())
	}
	return out
}

// referenceRuns reads the generated ids of reference_outputs.json.
func referenceRuns(t *testing.T) (prompt []int, runs map[string]map[string][]int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "merge", "reference_outputs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		PromptIDs []int `json:"prompt_ids"`
		Configs   map[string]struct {
			Runs map[string]struct {
				Generated []int `json:"generated_ids"`
			} `json:"runs"`
		} `json:"configs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	runs = map[string]map[string][]int{}
	for cfg, c := range doc.Configs {
		runs[cfg] = map[string][]int{}
		for run, r := range c.Runs {
			runs[cfg][run] = r.Generated
		}
	}
	return doc.PromptIDs, runs
}

// llama.cpp greedy-generates from qtool's merged stories260K the 32 tokens
// it generates from llama-export-lora's merge and from the base with the
// adapter applied at run time (reference_outputs.json), and the golden
// merge, loaded in the same process, reproduces its reference too. A merge
// re-quantized into a Q8_0 base loads and generates.
func TestLlamaCppMergedGeneration(t *testing.T) {
	requireLlamaCppNode(t)
	base := mergeOpenGGUF(t, mergeStoriesGGUF)
	out, err := Merge(base, MergeConfig{Adapters: []*Adapter{storiesAdapter(t, base)}})
	if err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(t.TempDir(), "stories260K-qtool-merged.gguf")
	if err := gguf.WriteFile(context.Background(), merged, out.Meta, out.Tensors, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	// And a re-quantized merge into a Q8_0 base, which llama.cpp must load
	// (its text may differ: Q8_0 rounds the weights).
	q8 := quantizedGGUF(t, quantize.TypeQ8_0)
	outQ, err := Merge(q8, MergeConfig{Adapters: []*Adapter{storiesAdapter(t, q8)}, Requantize: true})
	if err != nil {
		t.Fatal(err)
	}
	mergedQ := filepath.Join(t.TempDir(), "stories260K-qtool-merged-q8_0.gguf")
	if err := gguf.WriteFile(context.Background(), mergedQ, outQ.Meta, outQ.Tensors, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	const prompt = "Once upon a time"
	res := runLlamaMJS(t, []llamaGen{{Model: merged, Prompt: prompt, N: 32}, {Model: mergeGolden, Prompt: prompt, N: 32}, {Model: mergedQ, Prompt: prompt, N: 32}})
	if r := res[2]; r.Error != "" || len(r.Generated) != 32 {
		t.Errorf("llama.cpp on the re-quantized Q8_0 merge: %q, %d tokens", r.Error, len(r.Generated))
	} else {
		t.Logf("Q8_0 merge: %q", r.Text)
	}
	res = res[:2]
	wantPrompt, runs := referenceRuns(t)
	for _, cfg := range []string{"precise", "default"} {
		if !reflect.DeepEqual(runs[cfg]["merged"], runs[cfg]["base_plus_runtime_lora"]) || len(runs[cfg]["merged"]) != 32 {
			t.Fatalf("reference_outputs.json: %s merged and runtime-LoRA ids differ", cfg)
		}
	}
	want := runs["default"]["merged"]
	for i, r := range res {
		if r.Error != "" {
			t.Fatalf("llama.cpp refused %s: %s", r.Model, r.Error)
		}
		if !reflect.DeepEqual(r.Prompt, wantPrompt) {
			t.Errorf("%s: prompt ids %v, want %v", r.Model, r.Prompt, wantPrompt)
		}
		if !reflect.DeepEqual(r.Generated, want) {
			t.Errorf("job %d (%s): llama.cpp generated %v (%q), want %v", i, filepath.Base(r.Model), r.Generated, r.Text, want)
		}
	}
	t.Logf("qtool merge: %q", res[0].Text)
}
