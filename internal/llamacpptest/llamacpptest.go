// Package llamacpptest drives llama.cpp (node-llama-cpp's prebuilt CPU
// binary, llama.cpp 0.5.0-dev) from Go tests through the helper scripts in
// convert/testdata/node. Tests in several packages compare qtool's files
// with what llama.cpp itself does with them; this is their one bridge.
//
// The pinned packages must be installed (make deps does it):
//
//	npm install --ignore-scripts --no-audit --no-fund --omit=optional --prefix convert/testdata/node
package llamacpptest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
)

// NodeDir is the folder holding the node helper scripts and node_modules.
var NodeDir = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "convert", "testdata", "node")
}()

// Require skips the test when node or node-llama-cpp is missing and the
// CI variable is unset, and fails it when CI is set.
func Require(t testing.TB) {
	t.Helper()
	why := ""
	if _, err := exec.LookPath("node"); err != nil {
		why = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(NodeDir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
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

// Job is one entry of llama.mjs's JOBS.json: load Model, tokenize Texts,
// greedy-generate N tokens from Prompt.
type Job struct {
	Model  string   `json:"model"`
	Prompt string   `json:"prompt"`
	N      int      `json:"n"`
	Texts  []string `json:"texts,omitempty"`
}

// Result is llama.mjs's answer for one job.
type Result struct {
	Model     string           `json:"model"`
	Error     string           `json:"error"`
	Tokens    map[string][]int `json:"tokens"`
	Prompt    []int            `json:"prompt_ids"`
	Generated []int            `json:"generated_ids"`
	Text      string           `json:"generated_text"`
}

// Run runs every job through llama.mjs in one node process (model paths
// are made absolute first).
func Run(t testing.TB, jobs []Job) []Result {
	t.Helper()
	for i := range jobs {
		abs, err := filepath.Abs(jobs[i].Model)
		if err != nil {
			t.Fatal(err)
		}
		jobs[i].Model = abs
	}
	var out []Result
	RunScript(t, "llama.mjs", jobs, &out)
	return out
}

// RunScript writes jobs as JSON, runs `node SCRIPT JOBS.json` in NodeDir
// offline, and decodes its stdout into out, which must be a pointer to a
// slice with one entry per job.
func RunScript(t testing.TB, script string, jobs, out any) {
	t.Helper()
	b, err := json.Marshal(jobs)
	if err != nil {
		t.Fatal(err)
	}
	jf := filepath.Join(t.TempDir(), "jobs.json")
	if err := os.WriteFile(jf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script, jf)
	cmd.Dir = NodeDir
	cmd.Env = append(os.Environ(), "NODE_LLAMA_CPP_SKIP_DOWNLOAD=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.Bytes())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("%s output: %v\n%s\n%s", script, err, stdout.Bytes(), stderr.Bytes())
	}
	if n, want := reflect.ValueOf(out).Elem().Len(), reflect.ValueOf(jobs).Len(); n != want {
		t.Fatalf("%s answered %d jobs, want %d\n%s", script, n, want, stderr.Bytes())
	}
}
