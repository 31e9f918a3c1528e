package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/fixtures"
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
		{[]string{"m.gguf", "-o", "q.gguf", "--type", "q8_0"}, QuantizeOptions{In: "m.gguf", Out: "q.gguf", Type: "q8_0", MaxMemory: "512MiB"}},
		{[]string{"m.gguf", "-o", "q.gguf", "--type", "q4_k_m", "--pure", "--max-memory", "64MiB"},
			QuantizeOptions{In: "m.gguf", Out: "q.gguf", Type: "q4_k_m", Pure: true, MaxMemory: "64MiB"}},
		{[]string{"./hf", "-o", "out", "-t", "nf4", "--block", "128", "--double-quant", "--keep", "mlp", "--keep", `^lm_head\.`,
			"--type-for", "v_proj=f16", "--leave-output-tensor", "--token-embedding-type", "f16", "--format", "safetensors",
			"--threads", "3", "--stats", "--force", "--max-shard-size", "2GB"},
			QuantizeOptions{In: "./hf", Out: "out", Type: "nf4", Block: 128, DoubleQuant: true, Keep: []string{"mlp", `^lm_head\.`},
				TypeFor: []string{"v_proj=f16"}, LeaveOutput: true, TokenEmbeddingType: "f16", Format: "safetensors", Threads: 3, Stats: true, Force: true,
				MaxMemory: "512MiB", MaxShardSize: "2GB"}},
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
		if err != nil || !strings.HasPrefix(c.want.Type, cfg.Type.String()) || len(cfg.Keep) != len(c.want.Keep) || len(cfg.TypeFor) != len(c.want.TypeFor) {
			t.Errorf("%v: config %+v %v", c.argv, cfg, err)
		}
	}
	io, _, _, _ := Test()
	var got *DequantizeOptions
	cmd := newDequantizeCmd(&Factory{IO: io}, func(_ context.Context, o *DequantizeOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"q.gguf", "-o", "-", "--dtype", "bf16", "--threads", "2", "-f", "--max-memory", "1GiB"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	got.IO = nil
	if want := (DequantizeOptions{In: "q.gguf", Out: "-", DType: "bf16", Threads: 2, Force: true, MaxMemory: "1GiB"}); !reflect.DeepEqual(*got, want) {
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
	code, out, errOut := run(t, "quantize", stories, "-o", "-", "--type", "q4_0", "--pure")
	want4, _ := os.ReadFile(filepath.Join(planGoldens, "stories260K-Q4_0-pure.gguf"))
	if code != ExitOK || out != string(want4) || !strings.Contains(errOut, "fallback") {
		t.Errorf("-o - q4_0 --pure: exit %d, identical %v, stderr %q", code, out == string(want4), errOut)
	}
	// Without --pure, llama-quantize's mix: the 64-wide output matrix
	// becomes Q8_0.
	mix := summaryJSON(t, "quantize", stories, "-o", filepath.Join(dir, "q4_0.gguf"), "--type", "q4_0")
	for _, ts := range mix.Tensors {
		if want := "Q4_0"; ts.Name == "output.weight" && (ts.To != "Q8_0" || ts.Rule == "") || ts.Name == "blk.0.attn_v.weight" && ts.To != want {
			t.Errorf("q4_0 mix: %s → %s (%s)", ts.Name, ts.To, ts.Rule)
		}
	}
	if !mix.Mix {
		t.Error("summary does not say the mix was applied")
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
		{"q4_k_s", []string{"quantize", stories, "-o", out, "--type", "q4_k_s"}, ExitUsage, "not implemented"},
		{"pure for bitsandbytes", []string{"quantize", quantHFFixture, "-o", filepath.Join(dir, "p"), "--type", "nf4", "--pure"}, ExitUsage, "--pure"},
		{"bad memory", []string{"quantize", stories, "-o", out, "--type", "q8_0", "--max-memory", "lots"}, ExitUsage, "--max-memory"},
		{"zero memory", []string{"quantize", stories, "-o", out, "--type", "q8_0", "--max-memory", "0"}, ExitUsage, "--max-memory"},
		{"memory too small", []string{"quantize", stories, "-o", out, "--type", "q8_0", "--max-memory", "2KB"}, ExitUsage, `"blk.0.ffn_down.weight" needs at least 2924 bytes`},
		{"dequantize memory too small", []string{"dequantize", filepath.Join(planGoldens, "stories260K-Q8_0-pure.gguf"), "-o", out, "--dtype", "f16", "--max-memory", "100B"}, ExitUsage, "needs at least 1088 bytes"},
		{"shards for a file", []string{"quantize", stories, "-o", out, "--type", "q8_0", "--max-shard-size", "1MB"}, ExitUsage, "--max-shard-size"},
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

// --type q4_k_m is llama-quantize's Q4_K_M byte for byte, with the working
// memory bounded far below one tensor; --pure gives llama-quantize --pure.
func TestQuantizeQ4KMMatchesLlamaQuantize(t *testing.T) {
	dir := t.TempDir()
	synth := filepath.Join(planGoldens, "synth-e256-ff768-f16.gguf")
	check := func(golden string, args ...string) {
		t.Helper()
		out := filepath.Join(dir, golden)
		if code, _, errOut := run(t, append([]string{"quantize", synth, "-o", out}, args...)...); code != ExitOK {
			t.Fatalf("%v: %s", args, errOut)
		}
		got, _ := os.ReadFile(out)
		want, err := os.ReadFile(filepath.Join(planGoldens, golden))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%v: differs from %s", args, golden)
		}
	}
	// The widest rows (ffn_down, 768) need 768·17 bytes per chunk.
	check("synth-e256-ff768-Q4_K_M.gguf", "--type", "q4_k_m", "--max-memory", "16KiB", "--threads", "2")
	if testing.Short() {
		return
	}
	check("synth-e256-ff768-Q4_K-pure.gguf", "--type", "Q4_K_M", "--pure")
	s := summaryJSON(t, "quantize", synth, "-o", filepath.Join(dir, "q5.gguf"), "--type", "q5_k_m", "-f")
	six := 0
	for _, ts := range s.Tensors {
		if ts.To == "Q6_K" {
			six++
		}
	}
	if six != 3 || !s.Mix {
		t.Errorf("q5_k_m: %d Q6_K tensors, mix %v", six, s.Mix)
	}
}

// A small --max-memory changes chunk sizes only: bitsandbytes output and
// dequantization are byte-identical to the default's.
func TestQuantizeMaxMemoryIdentical(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(quantHFFixture, "model.safetensors")
	for i, mem := range []string{"512MiB", "6KB"} {
		args := []string{"quantize", model, "-o", filepath.Join(dir, fmt.Sprintf("nf4-%d.safetensors", i)), "--type", "nf4", "--double-quant", "--max-memory", mem}
		if code, _, errOut := run(t, args...); code != ExitOK {
			t.Fatalf("%v: %s", args, errOut)
		}
		args = []string{"dequantize", filepath.Join(dir, fmt.Sprintf("nf4-%d.safetensors", i)), "-o", filepath.Join(dir, fmt.Sprintf("f16-%d.safetensors", i)), "--dtype", "f16", "--max-memory", mem}
		if code, _, errOut := run(t, args...); code != ExitOK {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	for _, name := range []string{"nf4", "f16"} {
		a, _ := os.ReadFile(filepath.Join(dir, name+"-0.safetensors"))
		b, _ := os.ReadFile(filepath.Join(dir, name+"-1.safetensors"))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s: a 6 KB bound changes the output", name)
		}
	}
}

// --max-shard-size splits a bitsandbytes folder without separating any
// weight from its companions; it reads back, inspects and dequantizes to
// the same tensors as the unsharded folder.
func TestQuantizeShardedFolder(t *testing.T) {
	dir := t.TempDir()
	one, many := filepath.Join(dir, "one"), filepath.Join(dir, "many")
	for _, c := range []struct{ out, shard string }{{one, ""}, {many, "60KB"}} {
		args := []string{"quantize", quantHFFixture, "-o", c.out, "--type", "nf4", "--double-quant"}
		if c.shard != "" {
			args = append(args, "--max-shard-size", c.shard)
		}
		if code, _, errOut := run(t, args...); code != ExitOK {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	idx, err := os.ReadFile(filepath.Join(many, safetensors.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Metadata struct {
			TotalSize int64 `json:"total_size"`
		} `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(idx, &index); err != nil || !bytes.HasPrefix(idx, []byte("{\n  \"metadata\": {\n    \"total_size\": ")) {
		t.Fatalf("index: %v\n%s", err, idx)
	}
	shards := map[string]bool{}
	for name, file := range index.WeightMap {
		shards[file] = true
		if w, _, ok := strings.Cut(name, ".weight."); ok && index.WeightMap[w+".weight"] != file {
			t.Errorf("%s in %s, its weight in %s", name, file, index.WeightMap[w+".weight"])
		}
	}
	if len(shards) < 3 {
		t.Errorf("%d shards", len(shards))
	}
	f, err := safetensors.OpenFolder(many)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, ti := range f.Tensors() {
		total += ti.Size
	}
	f.Close()
	if total != index.Metadata.TotalSize || len(index.WeightMap) != 48+35*5 {
		t.Errorf("total_size %d, tensors sum to %d; %d entries", index.Metadata.TotalSize, total, len(index.WeightMap))
	}
	var rep struct {
		Totals struct {
			ByDType []struct {
				DType   string `json:"dtype"`
				Tensors int    `json:"tensors"`
			} `json:"by_dtype"`
		} `json:"totals"`
	}
	code, out, errOut := run(t, "inspect", many, "--json")
	if code != ExitOK || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("inspect: %s", errOut)
	}
	for _, d := range rep.Totals.ByDType {
		if d.DType == "NF4" && d.Tensors != 35 {
			t.Errorf("inspect: %d NF4 tensors, want 35", d.Tensors)
		}
	}
	for _, in := range []string{one, many} {
		if code, _, errOut := run(t, "dequantize", in, "-o", in+"-f16", "--dtype", "f16", "--max-shard-size", "100KB"); code != ExitOK {
			t.Fatalf("dequantize %s: %s", in, errOut)
		}
	}
	a, err := safetensors.OpenFolder(one + "-f16")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := safetensors.OpenFolder(many + "-f16")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(a.Tensors()) != 48 || len(b.Tensors()) != 48 {
		t.Fatalf("%d and %d tensors", len(a.Tensors()), len(b.Tensors()))
	}
	for _, ti := range a.Tensors() {
		x, err1 := a.Bytes(ti.Name)
		y, err2 := b.Bytes(ti.Name)
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs after dequantizing the sharded folder (%v %v)", ti.Name, err1, err2)
		}
	}
}

// The QLoRA paper's figure, printed by qtool inspect: NF4 with double
// quantization at blocksize 64 costs 4 bits per code, 8 bits of absmax
// code per 64 weights, and 32 bits of fp32 second-level scale per 64·256
// weights: 4 + 8/64 + 32/(64·256) = 4.12695… ≈ 4.127. inspect counts every
// member of a group, so each layer also pays its constant tables
// (quant_map 64 B, nested_quant_map 1 KiB, the quant_state JSON): about
// 1.3 KB, 0.0004 bits per parameter at 2048×11264 = 23M weights, which is
// why the layers must be large for the figure to round to 4.127 (at
// 1024×2816 it would be 4.130). Attention is kept as it is, so only the
// three large MLP matrices are NF4.
func TestInspectNF4BitsPerParam(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and quantizes a 170 MB model; -short")
	}
	cfg, _ := fixtures.Preset("tiny")
	cfg.Embd, cfg.FF, cfg.Layers, cfg.DType = 2048, 11264, 1, formats.F16
	dir := t.TempDir()
	hf, nf4 := filepath.Join(dir, "hf"), filepath.Join(dir, "nf4")
	if _, err := fixtures.WriteHFFolder(context.Background(), hf, cfg, 0, false); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, "quantize", hf, "-o", nf4, "--type", "nf4", "--double-quant", "--keep", "self_attn"); code != ExitOK {
		t.Fatalf("quantize: %s", errOut)
	}
	os.RemoveAll(hf)
	code, out, errOut := run(t, "inspect", nf4, "--json")
	if code != ExitOK {
		t.Fatalf("inspect: %s", errOut)
	}
	var rep struct {
		Totals struct {
			ByDType []struct {
				DType        string  `json:"dtype"`
				Tensors      int     `json:"tensors"`
				Params       int64   `json:"parameters"`
				BitsPerParam float64 `json:"bits_per_param"`
			} `json:"by_dtype"`
		} `json:"totals"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range rep.Totals.ByDType {
		if d.DType != "NF4" {
			continue
		}
		found = true
		t.Logf("NF4: %d tensors, %d parameters, %.6f bits per parameter", d.Tensors, d.Params, d.BitsPerParam)
		if d.Tensors != 3 || d.Params != 3*2048*11264 || math.Round(d.BitsPerParam*1000)/1000 != 4.127 {
			t.Errorf("NF4 %+v: want 3 tensors of 2048×11264 at 4.127 bits per parameter", d)
		}
	}
	if !found {
		t.Errorf("inspect lists no NF4 tensors: %+v", rep.Totals.ByDType)
	}
}
