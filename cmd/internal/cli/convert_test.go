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

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

var convertStoriesHF = filepath.Join("..", "..", "..", "fixtures", "stories260K-hf")

func TestConvertFlagsBindOptions(t *testing.T) {
	cases := []struct {
		argv []string
		want ConvertOptions
	}{
		{[]string{"m", "-o", "x.gguf"}, ConvertOptions{In: "m", Out: "x.gguf", DType: "auto"}},
		{[]string{"m.gguf", "-o", "dir", "--dtype", "bf16", "--max-shard-size", "2GB", "--force"},
			ConvertOptions{In: "m.gguf", Out: "dir", DType: "bf16", MaxShardSize: "2GB", Force: true}},
		{[]string{"m", "-o", "x.gguf", "--dtype", "F16", "--name", "My Model"}, ConvertOptions{In: "m", Out: "x.gguf", DType: "F16", Name: "My Model"}},
	}
	for _, c := range cases {
		io, _, _, _ := Test()
		var got *ConvertOptions
		cmd := newConvertCmd(&Factory{IO: io}, func(_ context.Context, o *ConvertOptions) error { got = o; return nil })
		cmd.SetArgs(c.argv)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v", c.argv, err)
		}
		got.IO = nil
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%v: got %+v want %+v", c.argv, *got, c.want)
		}
	}
}

func TestConvertExitCodes(t *testing.T) {
	dir := t.TempDir()
	noTok := filepath.Join(dir, "no-tokenizer")
	os.Mkdir(noTok, 0o755)
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, _ := os.ReadFile(filepath.Join(convertStoriesHF, f))
		os.WriteFile(filepath.Join(noTok, f), b, 0o644)
	}
	gemma := filepath.Join(dir, "gemma")
	os.Mkdir(gemma, 0o755)
	for _, f := range []string{"model.safetensors", "tokenizer.model", "tokenizer_config.json"} {
		b, _ := os.ReadFile(filepath.Join(convertStoriesHF, f))
		os.WriteFile(filepath.Join(gemma, f), b, 0o644)
	}
	cfg, _ := os.ReadFile(filepath.Join(convertStoriesHF, "config.json"))
	cfg = bytes.Replace(cfg, []byte("LlamaForCausalLM"), []byte("GemmaForCausalLM"), 1)
	cfg = bytes.Replace(cfg, []byte(`"model_type": "llama"`), []byte(`"model_type": "gemma"`), 1)
	os.WriteFile(filepath.Join(gemma, "config.json"), cfg, 0o644)

	cases := []struct {
		name string
		args []string
		want ExitCode
		msg  string
	}{
		{"no output", []string{"convert", stories}, ExitUsage, "-o"},
		{"bad dtype", []string{"convert", stories, "-o", filepath.Join(dir, "a"), "--dtype", "q4"}, ExitUsage, "dtype"},
		{"bad shard size", []string{"convert", stories, "-o", filepath.Join(dir, "b"), "--max-shard-size", "lots"}, ExitUsage, "max-shard-size"},
		{"missing input", []string{"convert", filepath.Join(dir, "nope"), "-o", filepath.Join(dir, "c.gguf")}, ExitBadInput, ""},
		{"gguf to gguf", []string{"convert", stories, "-o", filepath.Join(dir, "d.gguf")}, ExitUnsupported, "qtool copy"},
		{"gguf to file", []string{"convert", stories, "-o", filepath.Join(dir, "d.safetensors")}, ExitUnsupported, "folder"},
		{"folder to folder", []string{"convert", convertStoriesHF, "-o", filepath.Join(dir, "e")}, ExitUnsupported, ".gguf"},
		{"no tokenizer", []string{"convert", noTok, "-o", filepath.Join(dir, "f.gguf")}, ExitBadInput, "tokenizer"},
		{"unknown architecture", []string{"convert", gemma, "-o", filepath.Join(dir, "g.gguf")}, ExitUnsupported, "GemmaForCausalLM"},
	}
	for _, c := range cases {
		code, _, errOut := run(t, c.args...)
		if code != c.want || !strings.Contains(errOut, c.msg) {
			t.Errorf("%s: exit %d (%q), want %d mentioning %q", c.name, code, errOut, c.want, c.msg)
		}
	}
	for _, p := range []string{"a", "b", "c.gguf", "d.gguf", "e", "f.gguf", "g.gguf"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s was created by a failed conversion", p)
		}
	}
}

// GGUF → sharded HF folder → GGUF through the command line: every tensor
// byte-identical to the original, --json summaries, --force.
func TestConvertRoundTripCLI(t *testing.T) {
	dir := t.TempDir()
	hf := filepath.Join(dir, "stories-hf")
	code, out, errOut := run(t, "--json", "convert", stories, "-o", hf, "--max-shard-size", "300KB")
	if code != ExitOK {
		t.Fatalf("to HF: exit %d: %s", code, errOut)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if sum["direction"] != "gguf-to-hf" || sum["architecture"] != "llama" || sum["tensors"] != 48.0 || sum["permuted"] != 10.0 {
		t.Errorf("summary %v", sum)
	}
	folder, err := safetensors.OpenFolder(hf)
	if err != nil {
		t.Fatal(err)
	}
	defer folder.Close()
	if len(folder.Shards()) < 3 {
		t.Errorf("%d shards at 300KB", len(folder.Shards()))
	}
	for _, f := range []string{"config.json", "generation_config.json"} {
		if _, err := os.Stat(filepath.Join(hf, f)); err != nil {
			t.Error(err)
		}
	}

	back := filepath.Join(dir, "back.gguf")
	if code, _, errOut := run(t, "convert", hf, "-o", back); code != ExitOK {
		t.Fatalf("to GGUF: exit %d: %s", code, errOut)
	}
	a, err := gguf.Open(stories)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := gguf.Open(back)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, ti := range a.Tensors() {
		x, _ := a.Bytes(ti.Name)
		y, err := b.Bytes(ti.Name)
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s not byte-identical after GGUF → HF → GGUF", ti.Name)
		}
	}
	if code, _, _ := run(t, "convert", hf, "-o", back); code != ExitFailure {
		t.Errorf("existing output without --force: exit %d", code)
	}
	code, out, errOut = run(t, "--json", "convert", hf, "-o", back, "--force", "--dtype", "f16")
	if code != ExitOK {
		t.Fatalf("--force --dtype f16: exit %d: %s", code, errOut)
	}
	json.Unmarshal([]byte(out), &sum)
	if sum["file_type"] != 1.0 || sum["direction"] != "hf-to-gguf" {
		t.Errorf("summary %v", sum)
	}
	c, err := gguf.Open(back)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ti, _ := c.Tensor("blk.0.attn_q.weight"); ti.DType != formats.F16 {
		t.Errorf("attn_q is %v after --dtype f16", ti.DType)
	}
}
