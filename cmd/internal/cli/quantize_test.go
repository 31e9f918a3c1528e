package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
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
	quantHFFixture = filepath.Join("..", "..", "..", "fixtures", "stories260K-hf")
	planGoldens    = filepath.Join("..", "..", "..", "quantize", "testdata", "ggml")
)

func TestQuantizeFlagsBindOptions(t *testing.T) {
	cases := []struct {
		argv []string
		want QuantizeOptions
	}{
		{[]string{"m.gguf", "-o", "q.gguf", "--type", "q8_0"}, QuantizeOptions{In: "m.gguf", Out: "q.gguf", Type: "q8_0"}},
		{[]string{"./hf", "-o", "out", "-t", "nf4", "--block", "128", "--double-quant", "--keep", "mlp", "--keep", `^lm_head\.`,
			"--type-for", "v_proj=f16", "--leave-output-tensor", "--token-embedding-type", "f16", "--format", "safetensors",
			"--threads", "3", "--stats", "--force"},
			QuantizeOptions{In: "./hf", Out: "out", Type: "nf4", Block: 128, DoubleQuant: true, Keep: []string{"mlp", `^lm_head\.`},
				TypeFor: []string{"v_proj=f16"}, LeaveOutput: true, TokenEmbeddingType: "f16", Format: "safetensors", Threads: 3, Stats: true, Force: true}},
	}
	for _, c := range cases {
		io, _, _, _ := Test()
		var got *QuantizeOptions
		cmd := newQuantizeCmd(&Factory{IO: io}, func(_ context.Context, o *QuantizeOptions) error { got = o; return nil })
		cmd.SetArgs(c.argv)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v", c.argv, err)
		}
		got.IO = nil
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%v:\n got %+v\nwant %+v", c.argv, *got, c.want)
		}
		cfg, err := got.config()
		if err != nil || cfg.Type.String() != c.want.Type || len(cfg.Keep) != len(c.want.Keep) || len(cfg.TypeFor) != len(c.want.TypeFor) {
			t.Errorf("%v: config %+v %v", c.argv, cfg, err)
		}
	}
	io, _, _, _ := Test()
	var got *DequantizeOptions
	cmd := newDequantizeCmd(&Factory{IO: io}, func(_ context.Context, o *DequantizeOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"q.gguf", "-o", "-", "--dtype", "bf16", "--threads", "2", "-f"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	got.IO = nil
	if want := (DequantizeOptions{In: "q.gguf", Out: "-", DType: "bf16", Threads: 2, Force: true}); !reflect.DeepEqual(*got, want) {
		t.Errorf("dequantize: got %+v want %+v", *got, want)
	}
}

func TestResolveOutput(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		out, format string
		want        string // kind, or "error"
	}{
		{"x.gguf", "", "gguf"},
		{"x.GGUF", "gguf", "gguf"},
		{"x.safetensors", "", "safetensors"},
		{filepath.Join(dir, "folder"), "", "hf-folder"},
		{dir, "", "hf-folder"},
		{"-", "", "gguf"}, // the input's
		{"-", "safetensors", "safetensors"},
		{"x.bin", "", "error"},
		{"x.bin", "gguf", "gguf"},
		{"x.gguf", "safetensors", "error"},
		{filepath.Join(dir, "folder"), "gguf", "error"},
	}
	for _, c := range cases {
		got, err := resolveOutput(c.out, c.format, "gguf")
		kind := got.kind()
		if err != nil {
			kind = "error"
		}
		if kind != c.want {
			t.Errorf("%q --format %q: %s (%v), want %s", c.out, c.format, kind, err, c.want)
		}
	}
}

// summaryJSON runs a command with --json and decodes its summary.
func summaryJSON(t *testing.T, args ...string) planSummary {
	t.Helper()
	code, out, errOut := run(t, append(args, "--json")...)
	if code != ExitOK {
		t.Fatalf("%v: exit %d: %s", args, code, errOut)
	}
	var s planSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return s
}

// quantize → inspect → dequantize on the bundled GGUF; the Q8_0 file is
// llama-quantize's byte for byte, on disk and on stdout.
func TestQuantizeGGUFEndToEnd(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q8_0.gguf")
	s := summaryJSON(t, "quantize", stories, "-o", q, "--type", "q8_0", "--stats", "--threads", "2")
	want, err := os.ReadFile(filepath.Join(planGoldens, "stories260K-Q8_0-pure.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(q); !bytes.Equal(got, want) {
		t.Fatal("quantize --type q8_0 differs from llama-quantize's output")
	}
	if s.Totals.Tensors != 48 || s.Totals.Fallbacks != 5 || s.OutputFormat != "gguf" || s.Type != "q8_0" || len(s.Tensors) != 48 {
		t.Errorf("summary: %+v", s.Totals)
	}
	for _, ts := range s.Tensors {
		switch {
		case strings.HasSuffix(ts.Name, "ffn_down.weight"):
			if ts.To != "F16" || ts.Fallback == "" || ts.RMSE == nil {
				t.Errorf("%s: %+v", ts.Name, ts)
			}
		case strings.HasSuffix(ts.Name, "norm.weight"):
			if ts.To != "F32" || ts.RMSE != nil || ts.Kept == "" {
				t.Errorf("%s: %+v", ts.Name, ts)
			}
		default:
			if ts.To != "Q8_0" || ts.RMSE == nil || *ts.RMSE <= 0 || *ts.MaxAbsErr < *ts.RMSE || ts.BitsPerParam != 8.5 {
				t.Errorf("%s: %+v", ts.Name, ts)
			}
		}
	}
	code, out, errOut := run(t, "quantize", stories, "-o", "-", "--type", "q4_0")
	want4, _ := os.ReadFile(filepath.Join(planGoldens, "stories260K-Q4_0-pure.gguf"))
	if code != ExitOK || out != string(want4) || !strings.Contains(errOut, "fallback") {
		t.Errorf("-o - q4_0: exit %d, identical %v, stderr %q", code, out == string(want4), errOut)
	}
	if code, _, errOut := run(t, "inspect", q); code != ExitOK {
		t.Fatalf("inspect: %s", errOut)
	}
	f32 := filepath.Join(dir, "f32.gguf")
	d := summaryJSON(t, "dequantize", q, "-o", f32, "--dtype", "f32")
	if d.Totals.Converted != 32 || d.Totals.Quantized != 0 || d.DType != "f32" {
		t.Errorf("dequantize summary %+v", d.Totals)
	}
	r, err := gguf.Open(f32)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if ft, _ := r.Meta().Uint("general.file_type"); ft != 0 || r.Meta().Has("general.quantization_version") {
		t.Errorf("file_type %d, quantization_version present %v", ft, r.Meta().Has("general.quantization_version"))
	}
	orig, _ := gguf.Open(stories)
	defer orig.Close()
	a, _ := orig.Bytes("blk.0.attn_q.weight")
	b, _ := r.Bytes("blk.0.attn_q.weight")
	if maxDiff(a, b) > 0.01 {
		t.Errorf("attn_q after q8_0 round trip: max error %g", maxDiff(a, b))
	}
}

// maxDiff compares two F32 tensors.
func maxDiff(a, b []byte) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var m float64
	for i := 0; i < len(a); i += 4 {
		x := math.Float32frombits(uint32(a[i]) | uint32(a[i+1])<<8 | uint32(a[i+2])<<16 | uint32(a[i+3])<<24)
		y := math.Float32frombits(uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24)
		m = max(m, math.Abs(float64(x-y)))
	}
	return m
}

// quantize → inspect → dequantize on the bundled Hugging Face folder.
func TestQuantizeHFEndToEnd(t *testing.T) {
	dir := t.TempDir()
	nf4 := filepath.Join(dir, "nf4")
	s := summaryJSON(t, "quantize", quantHFFixture, "-o", nf4, "--type", "nf4", "--double-quant", "--stats", "--keep", `layers\.4\.`,
		"--type-for", `layers\.3\.self_attn\.v_proj=f16`)
	if s.OutputFormat != "hf-folder" || s.Totals.Quantized != 27 || s.Totals.Converted != 28 {
		t.Errorf("summary %+v", s.Totals)
	}
	cfg, _ := os.ReadFile(filepath.Join(nf4, "config.json"))
	var doc map[string]any
	if err := json.Unmarshal(cfg, &doc); err != nil {
		t.Fatal(err)
	}
	qc, _ := doc["quantization_config"].(map[string]any)
	if qc["quant_method"] != "bitsandbytes" || qc["bnb_4bit_quant_type"] != "nf4" || qc["bnb_4bit_use_double_quant"] != true {
		t.Errorf("quantization_config %v", qc)
	}
	if skip, _ := qc["llm_int8_skip_modules"].([]any); len(skip) != 9 { // lm_head, layer 4's seven Linear layers, layer 3's v_proj
		t.Errorf("llm_int8_skip_modules %v", skip)
	}
	for _, c := range []string{"tokenizer.model", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"} {
		x, _ := os.ReadFile(filepath.Join(quantHFFixture, c))
		y, err := os.ReadFile(filepath.Join(nf4, c))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("companion %s not copied", c)
		}
	}
	f, err := safetensors.OpenFolder(nf4)
	if err != nil {
		t.Fatal(err)
	}
	ti, ok := formats.Lookup(f, "model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4")
	f.Close()
	if !ok || ti.DType != formats.U8 {
		t.Errorf("quant_state: %+v %v", ti, ok)
	}
	if code, _, errOut := run(t, "inspect", nf4); code != ExitOK {
		t.Fatalf("inspect: %s", errOut)
	}
	bf16 := filepath.Join(dir, "bf16")
	d := summaryJSON(t, "dequantize", nf4, "-o", bf16, "--dtype", "bf16")
	if d.Totals.Converted != 27 || d.Totals.Tensors != 48 {
		t.Errorf("dequantize totals %+v", d.Totals)
	}
	back, _ := os.ReadFile(filepath.Join(bf16, "config.json"))
	orig, _ := os.ReadFile(filepath.Join(quantHFFixture, "config.json"))
	if !bytes.Equal(back, orig) {
		t.Errorf("config.json after dequantize:\n%s", back)
	}
	g, err := safetensors.OpenFolder(bf16)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if n := len(g.Tensors()); n != 48 {
		t.Errorf("%d tensors after dequantize", n)
	}
	if ti, _ := formats.Lookup(g, "model.layers.0.mlp.down_proj.weight"); ti.DType != formats.BF16 || len(ti.Shape) != 2 || ti.Shape[1] != 172 {
		t.Errorf("down_proj after dequantize: %+v", ti)
	}
	if ti, _ := formats.Lookup(g, "model.layers.4.mlp.down_proj.weight"); ti.DType != formats.F32 {
		t.Errorf("kept layer 4 changed: %+v", ti)
	}
	// int8 to a single file, and back.
	i8 := filepath.Join(dir, "int8.safetensors")
	if code, _, errOut := run(t, "quantize", filepath.Join(quantHFFixture, "model.safetensors"), "-o", i8, "--type", "int8"); code != ExitOK {
		t.Fatalf("int8: %s", errOut)
	}
	if code, _, errOut := run(t, "dequantize", i8, "-o", filepath.Join(dir, "f16.safetensors"), "--dtype", "f16"); code != ExitOK {
		t.Fatalf("dequantize int8: %s", errOut)
	}
}

func TestQuantizeExitCodes(t *testing.T) {
	dir := t.TempDir()
	nan := filepath.Join(dir, "nan.gguf")
	vals := make([]byte, 4*32*64)
	vals[4*100+2], vals[4*100+3] = 0xc0, 0x7f // a NaN
	meta := formats.NewMeta()
	meta.Set("general.architecture", formats.ValString("llama"))
	ts := []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "blk.0.attn_q.weight", DType: formats.F32, Shape: []int64{32, 64}, Size: int64(len(vals))}, Data: formats.BytesWriter(vals)}}
	if err := gguf.WriteFile(context.Background(), nan, meta, ts, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "exists.gguf")
	os.WriteFile(existing, []byte("keep"), 0o644)
	out := filepath.Join(dir, "out.gguf")
	cases := []struct {
		name string
		args []string
		want ExitCode
		msg  string
	}{
		{"nf4 to gguf", []string{"quantize", stories, "-o", out, "--type", "nf4"}, ExitUnsupported, "iq4_nl"},
		{"q8_0 to safetensors", []string{"quantize", quantHFFixture, "-o", filepath.Join(dir, "x.safetensors"), "--type", "q8_0"}, ExitUnsupported, "GGUF"},
		{"gguf to safetensors", []string{"quantize", stories, "-o", filepath.Join(dir, "x.safetensors"), "--type", "nf4"}, ExitUnsupported, "convert"},
		{"bad type", []string{"quantize", stories, "-o", out, "--type", "q3_x"}, ExitUsage, "unknown type"},
		{"missing type", []string{"quantize", stories, "-o", out}, ExitUsage, "--type"},
		{"missing -o", []string{"quantize", stories, "--type", "q8_0"}, ExitUsage, "-o"},
		{"bad regexp", []string{"quantize", stories, "-o", out, "--type", "q8_0", "--keep", "(["}, ExitUsage, "--keep"},
		{"bad rule", []string{"quantize", stories, "-o", out, "--type", "q8_0", "--type-for", "attn"}, ExitUsage, "REGEX=TYPE"},
		{"block for q8_0", []string{"quantize", stories, "-o", out, "--type", "q8_0", "--block", "64"}, ExitUsage, "--block"},
		{"bad format", []string{"quantize", stories, "-o", out, "--type", "q8_0", "--format", "onnx"}, ExitUsage, "--format"},
		{"json to stdout twice", []string{"quantize", stories, "-o", "-", "--type", "q8_0", "--json"}, ExitUsage, "stdout"},
		{"NaN", []string{"quantize", nan, "-o", out, "--type", "q8_0"}, ExitBadInput, "blk.0.attn_q.weight"},
		{"missing input", []string{"quantize", filepath.Join(dir, "nope.gguf"), "-o", out, "--type", "q8_0"}, ExitBadInput, "nope.gguf"},
		{"output exists", []string{"quantize", stories, "-o", existing, "--type", "q8_0"}, ExitFailure, "exists"},
		{"dequantize bad dtype", []string{"dequantize", stories, "-o", out, "--dtype", "q8_0"}, ExitUsage, "--dtype"},
		{"dequantize cross format", []string{"dequantize", stories, "-o", filepath.Join(dir, "y.safetensors"), "--dtype", "f16"}, ExitUnsupported, "convert"},
	}
	for _, c := range cases {
		code, _, errOut := run(t, c.args...)
		if code != c.want || !strings.Contains(errOut, c.msg) {
			t.Errorf("%s: exit %d (want %d): %s", c.name, code, c.want, errOut)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed run left its output behind")
	}
	if es, _ := os.ReadDir(dir); len(es) != 2 {
		t.Errorf("left behind: %v", es)
	}
}
