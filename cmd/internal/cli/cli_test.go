package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Paths of golden files the format packages keep in their testdata.
var (
	ggufGoldens = filepath.Join("..", "..", "..", "formats", "gguf", "testdata")
	stGoldens   = filepath.Join("..", "..", "..", "formats", "safetensors", "testdata")
	stories     = filepath.Join("..", "..", "..", "fixtures", "stories260K", "stories260K.gguf")
)

func run(t *testing.T, args ...string) (ExitCode, string, string) {
	t.Helper()
	io, _, out, errOut := Test()
	code := Run(context.Background(), args, io, false)
	return code, out.String(), errOut.String()
}

func TestInspectFlagsBindOptions(t *testing.T) {
	cases := []struct {
		argv []string
		want InspectOptions
	}{
		{[]string{"inspect", "m.gguf"}, InspectOptions{Path: "m.gguf", MaxText: 80}},
		{[]string{"inspect", "m.gguf", "--tensors", "blk.*", "--no-metadata", "--max-text", "0"}, InspectOptions{Path: "m.gguf", Tensors: "blk.*", NoMeta: true}},
	}
	for _, c := range cases {
		io, _, _, _ := Test()
		f := &Factory{IO: io}
		var got *InspectOptions
		cmd := newInspectCmd(f, func(_ context.Context, o *InspectOptions) error { got = o; return nil })
		cmd.SetArgs(c.argv[1:])
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v", c.argv, err)
		}
		got.IO = nil
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%v: got %+v want %+v", c.argv, *got, c.want)
		}
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.bin")
	os.WriteFile(garbage, []byte("this is not a model file at all"), 0o644)
	truncated := filepath.Join(dir, "truncated.gguf")
	whole, err := os.ReadFile(filepath.Join(ggufGoldens, "tiny_llama.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(truncated, whole[:1000], 0o644)
	bigEndian := filepath.Join(dir, "be.gguf")
	be := append([]byte("GGUF\x00\x00\x00\x03"), make([]byte, 16)...)
	os.WriteFile(bigEndian, be, 0o644)
	existing := filepath.Join(dir, "exists.gguf")
	os.WriteFile(existing, []byte("keep"), 0o644)

	cases := []struct {
		name string
		args []string
		want ExitCode
	}{
		{"ok", []string{"inspect", stories}, ExitOK},
		{"no args", []string{"inspect"}, ExitUsage},
		{"unknown flag", []string{"inspect", "--bogus", stories}, ExitUsage},
		{"unknown command", []string{"frobnicate"}, ExitUsage},
		{"bad pattern", []string{"inspect", stories, "--tensors", "(["}, ExitUsage},
		{"missing input", []string{"inspect", filepath.Join(dir, "nope.gguf")}, ExitBadInput},
		{"truncated", []string{"inspect", truncated}, ExitBadInput},
		{"not a model", []string{"inspect", garbage}, ExitUnsupported},
		{"big-endian", []string{"inspect", bigEndian}, ExitUnsupported},
		{"output exists", []string{"copy", stories, "-o", existing}, ExitFailure},
		{"copy without -o", []string{"copy", stories}, ExitUsage},
		{"version", []string{"version"}, ExitOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := run(t, c.args...)
			if code != c.want {
				t.Errorf("exit %d, want %d; stderr: %s", code, c.want, errOut)
			}
			if code != ExitOK && !strings.HasPrefix(errOut, "qtool: ") {
				t.Errorf("no error message on stderr: %q", errOut)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep" {
		t.Error("existing output was clobbered")
	}
}

func TestJSONErrorDocument(t *testing.T) {
	code, out, _ := run(t, "inspect", "--json", filepath.Join(t.TempDir(), "missing.gguf"))
	var doc struct {
		Error    string `json:"error"`
		ExitCode int    `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
	}
	if doc.ExitCode != int(code) || code != ExitBadInput || !strings.Contains(doc.Error, "missing.gguf") {
		t.Errorf("doc %+v, code %d", doc, code)
	}
}

func TestVersionJSON(t *testing.T) {
	code, out, _ := run(t, "version", "--json")
	var v versionInfo
	if code != ExitOK || json.Unmarshal([]byte(out), &v) != nil || v.GoVersion == "" {
		t.Fatalf("version --json: %d %s", code, out)
	}
}

func TestCompletion(t *testing.T) {
	code, out, _ := run(t, "completion", "bash")
	if code != ExitOK || !strings.Contains(out, "qtool") {
		t.Fatalf("completion bash: %d", code)
	}
}

func TestHelpHasExamples(t *testing.T) {
	io, _, _, _ := Test()
	root := newRootCmd(&Factory{IO: io})
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("command %q has no examples in --help", c.Name())
		}
	}
}

func TestTextInspectSummarisesLongArrays(t *testing.T) {
	code, out, _ := run(t, "inspect", stories)
	if code != ExitOK {
		t.Fatal(code)
	}
	if !strings.Contains(out, "(512 total)") {
		t.Errorf("token array not summarised:\n%s", out[:min(len(out), 2000)])
	}
	if strings.Count(out, "\n") > 200 {
		t.Errorf("text output too long: %d lines", strings.Count(out, "\n"))
	}
	for _, want := range []string{"format:  gguf", "token_embd.weight", "bits/param"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
}

func TestStdoutIsCleanForPipes(t *testing.T) {
	code, out, errOut := run(t, "copy", stories, "-o", "-")
	want, _ := os.ReadFile(stories)
	if code != ExitOK || !bytes.Equal([]byte(out), want) {
		t.Fatalf("copy -o - of stories260K.gguf: exit %d, %d bytes, identical=%v; stderr %s", code, len(out), bytes.Equal([]byte(out), want), errOut)
	}
}
