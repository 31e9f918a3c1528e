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

var (
	mergeAdapterPEFT = filepath.Join("..", "..", "..", "lora", "testdata", "stories260K-lora-peft")
	mergeGolden      = filepath.Join("..", "..", "..", "lora", "testdata", "merge", "stories260K-merged-f32.gguf")
)

func TestMergeAdapterFlagsBindOptions(t *testing.T) {
	cases := []struct {
		argv []string
		want MergeAdapterOptions
	}{
		{[]string{"--model", "m.gguf", "--adapter", "a", "-o", "out.gguf"},
			MergeAdapterOptions{Model: "m.gguf", Adapters: []string{"a"}, Out: "out.gguf"}},
		{[]string{"-m", "./hf", "-a", "a", "--adapter", "b.gguf", "--scale", "1", "--scale", "0.5", "-o", "out", "--dtype", "bf16", "--threads", "3", "-f"},
			MergeAdapterOptions{Model: "./hf", Adapters: []string{"a", "b.gguf"}, Scales: []float64{1, 0.5}, Out: "out", DType: "bf16", Threads: 3, Force: true}},
		{[]string{"--model", "m.gguf", "--adapter", "a", "-o", "q.gguf", "--quantize", "q4_k"},
			MergeAdapterOptions{Model: "m.gguf", Adapters: []string{"a"}, Out: "q.gguf", Quantize: "q4_k"}},
		{[]string{"--model", "./nf4", "--adapter", "a", "-o", "out", "--requantize"},
			MergeAdapterOptions{Model: "./nf4", Adapters: []string{"a"}, Out: "out", Requantize: true}},
	}
	for _, c := range cases {
		io, _, _, _ := Test()
		var got *MergeAdapterOptions
		cmd := newMergeAdapterCmd(&Factory{IO: io}, func(_ context.Context, o *MergeAdapterOptions) error { got = o; return nil })
		cmd.SetArgs(c.argv)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v", c.argv, err)
		}
		got.IO = nil
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%v:\n got %+v\nwant %+v", c.argv, *got, c.want)
		}
	}
}

func TestMergeAdapterExitCodes(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	tiny := filepath.Join(ggufGoldens, "tiny_llama.gguf")
	exists := filepath.Join(dir, "exists.gguf")
	os.WriteFile(exists, []byte("x"), 0o644)
	base := []string{"merge-adapter", "--model", stories, "--adapter", mergeAdapterPEFT}
	cases := []struct {
		name string
		args []string
		want ExitCode
	}{
		{"no model", []string{"merge-adapter", "--adapter", mergeAdapterPEFT, "-o", out}, ExitUsage},
		{"no adapter", []string{"merge-adapter", "--model", stories, "-o", out}, ExitUsage},
		{"no output", base, ExitUsage},
		{"stdout", append(base, "-o", "-"), ExitUsage},
		{"positional", append(base, "-o", out, "extra"), ExitUsage},
		{"scales", append(base, "-o", out, "--scale", "1", "--scale", "2"), ExitUsage},
		{"dtype", append(base, "-o", out, "--dtype", "q8_0"), ExitUsage},
		{"quantize and dtype", append(base, "-o", out, "--quantize", "q8_0", "--dtype", "f16"), ExitUsage},
		{"quantize type", append(base, "-o", out, "--quantize", "q9_9"), ExitUsage},
		{"output kind", append(base, "-o", filepath.Join(dir, "out.bin")), ExitUsage},
		{"requantize f32", append(base, "-o", out, "--requantize"), ExitUsage},
		{"nf4 into gguf", append(base, "-o", out, "--quantize", "nf4"), ExitUsage},
		{"missing model", []string{"merge-adapter", "--model", filepath.Join(dir, "none.gguf"), "--adapter", mergeAdapterPEFT, "-o", out}, ExitBadInput},
		{"missing adapter", []string{"merge-adapter", "--model", stories, "--adapter", filepath.Join(dir, "none"), "-o", out}, ExitBadInput},
		{"adapter of another model", []string{"merge-adapter", "--model", tiny, "--adapter", mergeAdapterPEFT, "-o", out}, ExitBadInput},
		{"requantize across formats", append(base, "-o", filepath.Join(dir, "hf"), "--quantize", "q8_0"), ExitUnsupported},
		{"exists", append(base, "-o", exists), ExitFailure},
	}
	for _, c := range cases {
		code, _, errOut := run(t, c.args...)
		if code != c.want {
			t.Errorf("%s: exit %d, want %d (%s)", c.name, code, c.want, strings.TrimSpace(errOut))
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed merge left an output behind")
	}
	if b, _ := os.ReadFile(exists); string(b) != "x" {
		t.Error("an existing output was replaced without --force")
	}
}

// mergeSummaryJSON runs merge-adapter with --json and decodes its summary.
func mergeSummaryJSON(t *testing.T, args ...string) mergeSummary {
	t.Helper()
	code, out, errOut := run(t, append(append([]string{"merge-adapter"}, args...), "--json")...)
	if code != ExitOK {
		t.Fatalf("%v: exit %d: %s", args, code, errOut)
	}
	var s mergeSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return s
}

// sameTensors checks that a GGUF file holds the golden's tensors, by name.
func sameTensors(t *testing.T, path string, inOrder bool) {
	t.Helper()
	got, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	want, err := gguf.Open(mergeGolden)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if len(got.Tensors()) != len(want.Tensors()) {
		t.Fatalf("%s: %d tensors, want %d", path, len(got.Tensors()), len(want.Tensors()))
	}
	for i, w := range want.Tensors() {
		g, ok := got.Tensor(w.Name)
		if !ok || g.DType != w.DType || !reflect.DeepEqual(g.Shape, w.Shape) || (inOrder && got.Tensors()[i].Name != w.Name) {
			t.Fatalf("%s: tensor %s: %+v", path, w.Name, g)
		}
		gb, _ := got.Bytes(w.Name)
		wb, _ := want.Bytes(w.Name)
		if !bytes.Equal(gb, wb) {
			t.Errorf("%s: %s differs from llama-export-lora's", path, w.Name)
		}
	}
}

// The merge of the golden adapter, from the GGUF or through the HF folder
// converted on the way, is llama-export-lora's; the summary reports it.
func TestMergeAdapterEndToEnd(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "merged.gguf")
	s := mergeSummaryJSON(t, "--model", stories, "--adapter", mergeAdapterPEFT, "-o", out)
	sameTensors(t, out, true)
	if s.Report.Merged != 35 || s.Report.Measured != 35 || s.Report.Warnings != 0 || s.Tensors != 48 || s.OutputFormat != "gguf" ||
		len(s.Adapters) != 1 || s.Adapters[0].Format != "peft" || s.Adapters[0].Pairs != 35 || s.Adapters[0].Lint.Matched != 35 || s.Mode != "keep" {
		t.Errorf("summary: %+v", s)
	}
	for _, r := range s.Report.Tensors {
		if r.Survived == nil || *r.Survived < 0.999 || r.Relative <= 0 || r.From != "f32" || r.To != "f32" {
			t.Errorf("report row %+v", r)
		}
	}

	viaHF := filepath.Join(dir, "via-hf.gguf")
	mergeSummaryJSON(t, "--model", quantHFFixture, "--adapter", mergeAdapterPEFT, "-o", viaHF)
	sameTensors(t, viaHF, false)

	// Text summary: a table and a closing line on stdout.
	code, text, errOut := run(t, "merge-adapter", "--model", stories, "--adapter", mergeAdapterPEFT, "-o", out, "--force", "--dtype", "f16")
	if code != ExitOK || !strings.Contains(text, "blk.0.attn_q.weight") || !strings.Contains(text, "35 merged") {
		t.Errorf("text summary: exit %d\n%s\n%s", code, text, errOut)
	}

	// GGUF base → Hugging Face folder.
	hf := filepath.Join(dir, "merged-hf")
	mergeSummaryJSON(t, "--model", stories, "--adapter", mergeAdapterPEFT, "-o", hf)
	f, err := safetensors.OpenFolder(hf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Config()) == 0 || len(f.Tensors()) != 48 {
		t.Errorf("HF output: %d tensors, config %d bytes", len(f.Tensors()), len(f.Config()))
	}
}

// An NF4 Hugging Face base: quantized with qtool quantize, merged with
// --requantize into a folder that stays NF4 (config.json keeps its
// quantization_config), or dequantized without it.
func TestMergeAdapterNF4Folder(t *testing.T) {
	dir := t.TempDir()
	nf4 := filepath.Join(dir, "nf4")
	if code, _, errOut := run(t, "quantize", quantHFFixture, "-o", nf4, "--type", "nf4", "--double-quant"); code != ExitOK {
		t.Fatalf("quantize: %s", errOut)
	}
	req := filepath.Join(dir, "merged-nf4")
	s := mergeSummaryJSON(t, "--model", nf4, "--adapter", mergeAdapterPEFT, "-o", req, "--requantize")
	if s.Report.Merged != 35 || s.Mode != "requantize" {
		t.Errorf("summary %+v", s)
	}
	for _, r := range s.Report.Tensors {
		if r.From != "nf4+dq" || r.To != "nf4+dq" || r.Survived == nil || *r.Survived <= 0 {
			t.Errorf("report row %+v", r)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(req, "config.json"))
	if err != nil || !bytes.Contains(cfg, []byte(`"bnb_4bit_quant_type": "nf4"`)) {
		t.Errorf("re-quantized config.json: %v\n%s", err, cfg)
	}
	if _, err := os.Stat(filepath.Join(req, "tokenizer.model")); err != nil {
		t.Errorf("tokenizer not carried over: %v", err)
	}

	deq := filepath.Join(dir, "merged-f16")
	s = mergeSummaryJSON(t, "--model", nf4, "--adapter", mergeAdapterPEFT, "-o", deq, "--dtype", "f16")
	if len(s.Notes) == 0 {
		t.Error("no note that the bitsandbytes base comes out dequantized")
	}
	f, err := safetensors.OpenFolder(deq)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if bytes.Contains(f.Config(), []byte("quantization_config")) {
		t.Error("dequantized output keeps quantization_config")
	}
	for _, ti := range f.Tensors() {
		if strings.Contains(ti.Name, "quant") || (strings.Contains(ti.Name, "_proj") && ti.DType != formats.F16) {
			t.Errorf("dequantized output: %s %v", ti.Name, ti.DType)
		}
	}
}
