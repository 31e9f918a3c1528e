package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

var (
	loraGoldens = filepath.Join("..", "..", "..", "lora", "testdata")
	peftGolden  = filepath.Join(loraGoldens, "stories260K-lora-peft")
	ggufGolden  = filepath.Join(loraGoldens, "stories260K-lora-f32.gguf")
	storiesHF   = filepath.Join("..", "..", "..", "fixtures", "stories260K-hf")
)

func TestConvertAdapterFlagsBindOptions(t *testing.T) {
	cases := []struct {
		argv []string
		want ConvertAdapterOptions
	}{
		{[]string{"a", "-o", "b.gguf", "--base", "m"}, ConvertAdapterOptions{In: "a", Out: "b.gguf", Base: "m"}},
		{[]string{"a", "-o", "b", "--to", "mlx", "--force"}, ConvertAdapterOptions{In: "a", Out: "b", To: "mlx", Force: true}},
	}
	for _, c := range cases {
		io, _, _, _ := Test()
		var got *ConvertAdapterOptions
		cmd := newConvertAdapterCmd(&Factory{IO: io}, func(_ context.Context, o *ConvertAdapterOptions) error { got = o; return nil })
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

// tensorsOf reads every tensor's bytes, in file order.
func tensorsOf(t *testing.T, src formats.Source) []string {
	t.Helper()
	defer src.Close()
	var out []string
	for _, ti := range src.Tensors() {
		sec, err := src.Section(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(sec)
		out = append(out, ti.Name+":"+string(b))
	}
	return out
}

// TestConvertAdapterGoldens: PEFT → GGUF gives llama.cpp's tensors byte
// for byte, and GGUF → PEFT gives the PEFT golden back.
func TestConvertAdapterGoldens(t *testing.T) {
	dir := t.TempDir()
	g := filepath.Join(dir, "a.gguf")
	code, out, errOut := run(t, "convert-adapter", peftGolden, "-o", g, "--base", storiesHF, "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		Pairs  int      `json:"pairs"`
		Alpha  float64  `json:"alpha"`
		Folded []string `json:"folded"`
		Lint   struct {
			Errors  int `json:"errors"`
			Matched int `json:"matched"`
		} `json:"lint"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Pairs != 35 || doc.Alpha != 8 || len(doc.Folded) != 0 || doc.Lint.Matched != 35 {
		t.Fatalf("doc %+v (%v): %s", doc, err, out)
	}
	got, err := gguf.Open(g)
	if err != nil {
		t.Fatal(err)
	}
	want, err := gguf.Open(ggufGolden)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(tensorsOf(t, got), tensorsOf(t, want)) {
		t.Error("GGUF tensors differ from llama.cpp's")
	}

	p := filepath.Join(dir, "peft")
	if code, _, errOut := run(t, "convert-adapter", ggufGolden, "-o", p, "--base", stories); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	a, _ := os.ReadFile(filepath.Join(p, "adapter_model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(peftGolden, "adapter_model.safetensors"))
	if !bytes.Equal(a, b) {
		t.Error("GGUF → PEFT differs from the PEFT golden")
	}

	m := filepath.Join(dir, "mlx")
	if code, _, errOut := run(t, "convert-adapter", p, "-o", m, "--to", "mlx"); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	st, err := safetensors.Open(filepath.Join(m, "adapters.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(st.Tensors()); n != 70 {
		t.Errorf("MLX: %d tensors", n)
	}
	st.Close()
}

func TestLintAdapter(t *testing.T) {
	code, out, errOut := run(t, "lint-adapter", "--model", stories, "--adapter", ggufGolden)
	if code != ExitOK || !strings.Contains(out, "0 errors, 0 warnings; ok") {
		t.Fatalf("golden: exit %d\n%s%s", code, out, errOut)
	}

	// A zeroed lora_B is a warning (exit 0); a wrong-shape pair an error
	// (exit 3), listed, in one JSON document with --json.
	dir := t.TempDir()
	zero := copyAdapter(t, dir, "zero", func(name string, shape []int64, b []byte) []byte {
		if strings.Contains(name, "layers.0.self_attn.q_proj.lora_B") {
			return make([]byte, len(b))
		}
		return b
	})
	code, out, _ = run(t, "lint-adapter", "--model", storiesHF, "--adapter", zero)
	if code != ExitOK || !strings.Contains(out, "warning model.layers.0.self_attn.q_proj.weight: no-op") {
		t.Errorf("zero B: exit %d\n%s", code, out)
	}
	badCfg := copyAdapter(t, dir, "rank", nil)
	cfg, _ := os.ReadFile(filepath.Join(badCfg, "adapter_config.json"))
	os.WriteFile(filepath.Join(badCfg, "adapter_config.json"), bytes.Replace(cfg, []byte(`"r": 4`), []byte(`"r": 8`), 1), 0o644)
	code, out, errOut = run(t, "lint-adapter", "--model", storiesHF, "--adapter", badCfg, "--json")
	var doc struct {
		OK       bool `json:"ok"`
		Errors   int  `json:"errors"`
		ExitCode int  `json:"exit_code"`
		Problems []struct {
			Severity, Target, Message string
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, out)
	}
	if code != ExitBadInput || doc.OK || doc.Errors != 35 || doc.ExitCode != int(ExitBadInput) || !strings.Contains(doc.Problems[0].Message, "rank mismatch") || !strings.HasPrefix(errOut, "qtool: ") {
		t.Errorf("rank mismatch: exit %d doc %+v stderr %s", code, doc, errOut)
	}

	// convert-adapter lints first when --base is given, and refuses.
	code, _, errOut = run(t, "convert-adapter", badCfg, "-o", filepath.Join(dir, "x.gguf"), "--base", storiesHF)
	if code != ExitBadInput || !strings.Contains(errOut, "rank mismatch") {
		t.Errorf("convert of a bad adapter: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.gguf")); err == nil {
		t.Error("output written despite lint errors")
	}
}

// copyAdapter copies the PEFT golden, editing tensor bytes on the way.
func copyAdapter(t *testing.T, dir, name string, edit func(string, []int64, []byte) []byte) string {
	t.Helper()
	src, err := safetensors.Open(filepath.Join(peftGolden, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var ts []formats.Tensor
	for _, ti := range src.Tensors() {
		sec, _ := src.Section(ti.Name)
		b, _ := io.ReadAll(sec)
		if edit != nil {
			b = edit(ti.Name, ti.Shape, b)
		}
		ts = append(ts, formats.Tensor{TensorInfo: ti, Data: formats.BytesWriter(b)})
	}
	out := filepath.Join(dir, name)
	os.MkdirAll(out, 0o755)
	f, err := os.Create(filepath.Join(out, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(context.Background(), f, map[string]string{"format": "pt"}, ts); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg, _ := os.ReadFile(filepath.Join(peftGolden, "adapter_config.json"))
	os.WriteFile(filepath.Join(out, "adapter_config.json"), cfg, 0o644)
	return out
}

func TestAdapterExitCodes(t *testing.T) {
	dir := t.TempDir()
	dora := copyAdapter(t, dir, "dora", nil)
	cfg, _ := os.ReadFile(filepath.Join(dora, "adapter_config.json"))
	os.WriteFile(filepath.Join(dora, "adapter_config.json"), bytes.Replace(cfg, []byte(`"use_dora": false`), []byte(`"use_dora": true`), 1), 0o644)
	halfPair := copyAdapter(t, dir, "half", nil)
	{
		src, _ := safetensors.Open(filepath.Join(halfPair, "adapter_model.safetensors"))
		var ts []formats.Tensor
		for _, ti := range src.Tensors()[1:] {
			sec, _ := src.Section(ti.Name)
			b, _ := io.ReadAll(sec)
			ts = append(ts, formats.Tensor{TensorInfo: ti, Data: formats.BytesWriter(b)})
		}
		src.Close()
		f, _ := os.Create(filepath.Join(halfPair, "adapter_model.safetensors"))
		safetensors.Write(context.Background(), f, nil, ts)
		f.Close()
	}
	existing := filepath.Join(dir, "exists.gguf")
	os.WriteFile(existing, []byte("keep"), 0o644)

	cases := []struct {
		name string
		args []string
		want ExitCode
	}{
		{"no -o", []string{"convert-adapter", peftGolden}, ExitUsage},
		{"bad --to", []string{"convert-adapter", peftGolden, "-o", filepath.Join(dir, "o"), "--to", "onnx"}, ExitUsage},
		{"--to peft with .gguf", []string{"convert-adapter", peftGolden, "-o", filepath.Join(dir, "o.gguf"), "--to", "peft"}, ExitUsage},
		{"gguf out without --base", []string{"convert-adapter", peftGolden, "-o", filepath.Join(dir, "o.gguf")}, ExitUsage},
		{"gguf in without --base", []string{"convert-adapter", ggufGolden, "-o", filepath.Join(dir, "o")}, ExitUsage},
		{"missing input", []string{"convert-adapter", filepath.Join(dir, "nope"), "-o", filepath.Join(dir, "o")}, ExitBadInput},
		{"not an adapter", []string{"convert-adapter", t.TempDir(), "-o", filepath.Join(dir, "o")}, ExitBadInput},
		{"half pair", []string{"convert-adapter", halfPair, "-o", filepath.Join(dir, "o")}, ExitBadInput},
		{"dora", []string{"convert-adapter", dora, "-o", filepath.Join(dir, "o")}, ExitUnsupported},
		{"output exists", []string{"convert-adapter", peftGolden, "-o", existing, "--base", stories}, ExitFailure},
		{"lint without --model", []string{"lint-adapter", "--adapter", peftGolden}, ExitUsage},
		{"lint missing model", []string{"lint-adapter", "--model", filepath.Join(dir, "nope.gguf"), "--adapter", peftGolden}, ExitBadInput},
		{"lint dora", []string{"lint-adapter", "--model", stories, "--adapter", dora}, ExitUnsupported},
		{"lint ok", []string{"lint-adapter", "--model", stories, "--adapter", peftGolden}, ExitOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := run(t, c.args...)
			if code != c.want {
				t.Errorf("exit %d, want %d; stderr: %s", code, c.want, errOut)
			}
			if code != ExitOK && !strings.HasPrefix(errOut, "qtool: ") && !strings.Contains(errOut, "\nqtool: ") {
				t.Errorf("no error message on stderr: %q", errOut)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep" {
		t.Error("existing output was clobbered")
	}
}
