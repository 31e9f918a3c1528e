package quantize

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
)

// The llama.cpp check runs node-llama-cpp's prebuilt CPU binary through
// ../convert/testdata/node/llama.mjs, the helper of convert's llama.cpp
// test (its header describes the JOBS.json protocol). It needs the pinned
// packages installed:
//
//	npm install --ignore-scripts --no-audit --no-fund --omit=optional --prefix convert/testdata/node
var llamaNodeDir = filepath.Join("..", "convert", "testdata", "node")

// llamaJob is one entry of JOBS.json.
type llamaJob struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
	N      int    `json:"n"`
}

// llamaResult is llama.mjs's answer for one job.
type llamaResult struct {
	Model     string `json:"model"`
	Error     string `json:"error"`
	Prompt    []int  `json:"prompt_ids"`
	Generated []int  `json:"generated_ids"`
	Text      string `json:"generated_text"`
}

// requireNodeLlama skips when node or node-llama-cpp is missing and CI is
// unset, and fails when CI is set.
func requireNodeLlama(t *testing.T) {
	t.Helper()
	why := ""
	if _, err := exec.LookPath("node"); err != nil {
		why = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(llamaNodeDir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
		why = "node-llama-cpp is not installed in convert/testdata/node (npm install --ignore-scripts --no-audit --no-fund --omit=optional --prefix convert/testdata/node)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "" {
		t.Skipf("llama.cpp check skipped: %s; set CI=1 to make this a failure", why)
	}
	t.Fatalf("llama.cpp check cannot run in CI: %s", why)
}

// runNodeLlama runs every job in one node process.
func runNodeLlama(t *testing.T, jobs []llamaJob) []llamaResult {
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
	var out []llamaResult
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != len(jobs) {
		t.Fatalf("llama.mjs output: %v\n%s\n%s", err, stdout.Bytes(), stderr.Bytes())
	}
	return out
}

// llama.cpp loads qtool's Q8_0, Q4_0 and IQ4_NL quantizations of
// stories260K (with llama-quantize's mix, as the CLI writes them by
// default) and generates 24 tokens from each; Q8_0's greedy continuation
// is the F32 model's.
func TestLlamaCppRunsQuantized(t *testing.T) {
	if testing.Short() {
		t.Skip("runs llama.cpp through node; -short")
	}
	requireNodeLlama(t)
	dir := t.TempDir()
	types := []Type{TypeQ8_0, TypeQ4_0, TypeIQ4NL}
	jobs := []llamaJob{{Model: storiesGGUF, Prompt: "Once upon a time", N: 24}}
	for _, typ := range types {
		src, err := gguf.Open(storiesGGUF)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Plan(src, Config{Type: typ, Mix: true})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "stories260K-"+typ.String()+".gguf")
		err = gguf.WriteFile(context.Background(), path, out.Meta, out.Tensors, gguf.WriteOptions{}, false)
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, llamaJob{Model: path, Prompt: "Once upon a time", N: 24})
	}
	res := runNodeLlama(t, jobs)
	names := []string{"F32"}
	for _, typ := range types {
		names = append(names, typ.String())
	}
	for i, r := range res {
		if r.Error != "" {
			t.Errorf("%s: llama.cpp refused it: %s", names[i], r.Error)
			continue
		}
		if len(r.Generated) != 24 {
			t.Errorf("%s: generated %d tokens, want 24", names[i], len(r.Generated))
		}
		t.Logf("%s: %q", names[i], r.Text)
	}
	if t.Failed() {
		return
	}
	if !reflect.DeepEqual(res[1].Prompt, res[0].Prompt) || !reflect.DeepEqual(res[1].Generated, res[0].Generated) {
		t.Errorf("Q8_0 continues %q, the F32 model %q", res[1].Text, res[0].Text)
	}
}
