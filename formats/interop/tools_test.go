package interop

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const (
	python     = "/usr/bin/python3"
	pyChecker  = "check_safetensors.py"
	nodeDir    = "node"
	nodeScript = "node/dump-gguf.mjs"
)

// missing skips the test outside CI and fails it in CI, where every
// reference client must be installed.
func missing(t *testing.T, what, fix string) {
	t.Helper()
	if os.Getenv("CI") == "" {
		t.Skipf("%s is not available (%s); skipping (set CI=1 to make this a failure)", what, fix)
	}
	t.Fatalf("%s is not available in CI (%s)", what, fix)
}

// requireNode checks for node and the installed @huggingface/gguf.
func requireNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		missing(t, "node", "install Node.js 20 or later")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "@huggingface", "gguf", "package.json")); err != nil {
		missing(t, "@huggingface/gguf", "run: npm ci --no-audit --no-fund --prefix formats/interop/node")
	}
}

// requirePython checks for Debian's Python 3.
func requirePython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		missing(t, python, "install python3")
	}
}

// runJSON runs a helper and decodes its stdout into v. A non-zero exit
// status is an error unless allowFail is set (the Python checker exits 1
// for an invalid file and still prints its findings).
func runJSON(t *testing.T, v any, allowFail bool, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil && !(allowFail && stdout.Len() > 0) {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.Bytes())
	}
	dec := json.NewDecoder(&stdout)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s %v: bad JSON output: %v\nstderr: %s", name, args, err, stderr.Bytes())
	}
}
