package quantize

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

// layoutGoldens opens the bitsandbytes goldens (testdata/bnb/README.md
// of the kernels; shared/goldens/nf4 upstream), skipping when absent.
func layoutGoldens(t *testing.T) *safetensors.Reader {
	t.Helper()
	r, err := safetensors.Open(filepath.Join("testdata", "bnb", "bnb_goldens.safetensors"))
	if err != nil {
		t.Skipf("bitsandbytes goldens: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func goldenBytes(t *testing.T, r *safetensors.Reader, name string) []byte {
	t.Helper()
	b, err := r.Bytes(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layoutInputs are the golden inputs as F16 weights (they are fp16
// values), under Linear-like names.
var layoutInputs = []string{"A", "B", "C", "D", "E"}

func layoutName(x string) string { return "layers." + x + ".proj.weight" }

func layoutSource(t *testing.T, g *safetensors.Reader) *memSource {
	src := &memSource{}
	for _, x := range layoutInputs {
		ti, _ := g.Tensor(x + ".input")
		vals := make([]float32, ti.Size/4)
		ToFloat32(vals, goldenBytes(t, g, x+".input"), formats.F32)
		src.add(layoutName(x), formats.F16, ti.Shape, vals)
	}
	src.add("layers.A.norm.weight", formats.F16, []int64{4}, []float32{1, 2, 3, 4})
	return src
}

// writeST plans with cfg and reads the written safetensors file back.
func writeST(t *testing.T, src formats.Source, out *Output) *safetensors.Reader {
	t.Helper()
	var buf bytes.Buffer
	if err := safetensors.WriteMeta(context.Background(), &buf, out.Meta, out.Tensors); err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "out", safetensors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func planST(t *testing.T, src formats.Source, cfg Config) (*safetensors.Reader, *Output) {
	t.Helper()
	out, err := Plan(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return writeST(t, src, out), out
}

// expectTensor checks one output tensor's dtype, shape and bytes.
func expectTensor(t *testing.T, r *safetensors.Reader, name string, d formats.DType, shape []int64, want []byte) {
	t.Helper()
	ti, ok := r.Tensor(name)
	if !ok {
		t.Errorf("missing %s", name)
		return
	}
	if ti.DType != d || !equalShape(ti.Shape, shape) {
		t.Errorf("%s: %v %v, want %v %v", name, ti.DType, ti.Shape, d, shape)
	}
	if got := goldenBytes(t, r, name); want != nil && !bytes.Equal(got, want) {
		t.Errorf("%s: bytes differ from the golden (%d vs %d bytes)", name, len(got), len(want))
	}
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// groupNames lists the output tensors of one weight.
func groupNames(r *safetensors.Reader, prefix string) []string {
	var out []string
	for _, ti := range r.Tensors() {
		if strings.HasPrefix(ti.Name, prefix) {
			out = append(out, ti.Name)
		}
	}
	sort.Strings(out)
	return out
}

// TestBNBLayoutGoldens: the tensors Plan writes for nf4 (± double
// quantization), fp4, int8 and int8-block hold the bitsandbytes goldens'
// bytes under bitsandbytes' names, dtypes and shapes, and Dequant turns
// them back into the goldens' dequantized values.
func TestBNBLayoutGoldens(t *testing.T) {
	g := layoutGoldens(t)
	src := layoutSource(t, g)
	table := func(name string) []byte { return goldenBytes(t, g, name) }
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"nf4", Config{Type: TypeNF4}},
		{"nf4+dq", Config{Type: TypeNF4, DoubleQuant: true}},
		{"fp4", Config{Type: TypeFP4}},
		{"int8", Config{Type: TypeInt8}},
		{"int8-block", Config{Type: TypeInt8Block, Block: 256}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Stats = true
			r, out := planST(t, src, c.cfg)
			if f, _ := r.Meta().String("format"); f != "pt" {
				t.Errorf("__metadata__ format %q", f)
			}
			for _, x := range layoutInputs {
				ti, _ := g.Tensor(x + ".input")
				n := ti.Size / 4
				w := layoutName(x)
				nb := (n + 63) / 64
				var want []string
				switch c.cfg.Type {
				case TypeNF4, TypeFP4:
					kind := c.cfg.Type.String()
					packed := x + "." + kind + ".packed"
					if x == "C" && kind == "nf4" {
						packed = "C.nf4.packed_zero7" // qtool writes exact zero blocks
					}
					expectTensor(t, r, w, formats.U8, []int64{(n + 1) / 2, 1}, table(packed))
					expectTensor(t, r, w+".quant_map", formats.F32, []int64{16}, table("table."+kind))
					state := w + ".quant_state.bitsandbytes__" + kind
					want = []string{w, w + ".absmax", w + ".quant_map", state}
					if c.cfg.DoubleQuant {
						expectTensor(t, r, w+".absmax", formats.U8, []int64{nb}, table(x+".nf4dq.absmax_q"))
						expectTensor(t, r, w+".nested_absmax", formats.F32, []int64{(nb + 255) / 256}, table(x+".nf4dq.nested_absmax"))
						expectTensor(t, r, w+".nested_quant_map", formats.F32, []int64{256}, table("table.dynamic"))
						expectTensor(t, r, state, formats.U8, []int64{int64(len(table(x + ".nf4dq.quant_state")))}, table(x+".nf4dq.quant_state"))
						want = append(want, w+".nested_absmax", w+".nested_quant_map")
					} else {
						expectTensor(t, r, w+".absmax", formats.F32, []int64{nb}, table(x+".nf4.absmax"))
						qs := table(x + ".nf4.quant_state")
						if kind == "fp4" {
							qs = bytes.Replace(qs, []byte(`"nf4"`), []byte(`"fp4"`), 1)
						}
						expectTensor(t, r, state, formats.U8, []int64{int64(len(qs))}, qs)
					}
				case TypeInt8:
					p := strings.TrimSuffix(w, "weight")
					expectTensor(t, r, w, formats.I8, ti.Shape, table(x+".int8.CB"))
					expectTensor(t, r, p+"SCB", formats.F32, []int64{ti.Shape[0]}, table(x+".int8.SCB"))
					expectTensor(t, r, p+"weight_format", formats.U8, []int64{}, []byte{0})
					want = []string{p + "SCB", w, p + "weight_format"}
				case TypeInt8Block:
					expectTensor(t, r, w, formats.U8, ti.Shape, table(x+".q8.codes"))
					expectTensor(t, r, w+".absmax", formats.F32, []int64{(n + 255) / 256}, table(x+".q8.absmax"))
					expectTensor(t, r, w+".quant_map", formats.F32, []int64{256}, table("table.dynamic"))
					want = []string{w, w + ".absmax", w + ".quant_map", w + ".quant_state.qtool__int8_block"}
				}
				sort.Strings(want)
				if got := groupNames(r, strings.TrimSuffix(w, "weight")); strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("%s: tensors %v, want %v", x, got, want)
				}
			}
			for _, d := range out.Decisions() {
				if d.Type != TypeNone && (!d.Measured || d.RMSE <= 0) {
					t.Errorf("%s: no statistics: %+v", d.Name, d)
				}
			}
			checkDequantGoldens(t, g, r, c.cfg, out)
		})
	}
}

// checkDequantGoldens dequantizes a written bitsandbytes file and compares
// with the goldens' dequantized values, and the plan's statistics with the
// error of the file's values.
func checkDequantGoldens(t *testing.T, g, r *safetensors.Reader, cfg Config, planned *Output) {
	to := formats.F16
	if cfg.Type == TypeInt8 || cfg.Type == TypeInt8Block {
		to = formats.F32
	}
	out, err := Dequant(r, DequantConfig{DType: to, Format: Safetensors})
	if err != nil {
		t.Fatal(err)
	}
	back := writeST(t, r, out)
	if n := len(back.Tensors()); n != len(layoutInputs)+1 {
		t.Errorf("%d tensors after dequantization, want %d", n, len(layoutInputs)+1)
	}
	stats := map[string]Decision{}
	for _, d := range planned.Decisions() {
		stats[d.Name] = d
	}
	for _, x := range layoutInputs {
		in, _ := g.Tensor(x + ".input")
		var want string
		switch {
		case cfg.Type == TypeInt8:
			want = x + ".int8.dequant_f32"
		case cfg.Type == TypeInt8Block:
			want = x + ".q8.dequant_f32"
		case cfg.Type == TypeFP4:
			want = x + ".fp4.dequant_f16"
		case cfg.DoubleQuant && x == "C":
			want = "C.nf4dq.dequant_f16_zero7"
		case cfg.DoubleQuant:
			want = x + ".nf4dq.dequant_f16"
		case x == "C":
			want = "" // the golden's GPU zero block gives -0.0, qtool's exact codes +0.0
		default:
			want = x + ".nf4.dequant_f16"
		}
		var wb []byte
		if want != "" {
			wb = goldenBytes(t, g, want)
		}
		expectTensor(t, back, layoutName(x), to, in.Shape, wb)
		if to != formats.F32 {
			continue
		}
		// With F32 output the file holds exactly what the statistics saw.
		n := int(in.Size / 4)
		xs, ys := make([]float32, n), make([]float32, n)
		ToFloat32(xs, goldenBytes(t, g, x+".input"), formats.F32)
		ToFloat32(ys, goldenBytes(t, back, layoutName(x)), formats.F32)
		var st errorStats
		st.add(xs, ys)
		d := stats[layoutName(x)]
		if math.Abs(st.rmse()-d.RMSE) > 1e-9*st.rmse() || st.maxAbs != d.MaxAbsErr {
			t.Errorf("%s: plan statistics rmse %g max %g, file %g %g", x, d.RMSE, d.MaxAbsErr, st.rmse(), st.maxAbs)
		}
	}
}

// TestBNBRoundTripBounds bounds each type's error on normal weights, and
// checks that Dequant reproduces the plan's reconstruction exactly.
func TestBNBRoundTripBounds(t *testing.T) {
	src := &memSource{}
	vals := planRand(11, 96*320, 0.02)
	src.add("model.layers.0.mlp.up_proj.weight", formats.BF16, []int64{96, 320}, vals)
	bf := make([]byte, 2*len(vals))
	FromFloat32(bf, vals, formats.BF16)
	ToFloat32(vals, bf, formats.BF16) // the values the source holds
	for _, c := range []struct {
		cfg   Config
		bound float64 // RMSE / std
	}{
		{Config{Type: TypeNF4}, 0.11},
		{Config{Type: TypeNF4, DoubleQuant: true, Block: 128}, 0.12},
		{Config{Type: TypeFP4, DoubleQuant: true}, 0.16},
		{Config{Type: TypeInt8}, 0.012},
		{Config{Type: TypeInt8Block, Block: 64}, 0.02},
	} {
		c.cfg.Stats = true
		r, out := planST(t, src, c.cfg)
		d := out.Decisions()[0]
		if rel := d.RMSE / 0.02; rel > c.bound || rel == 0 {
			t.Errorf("%v: relative RMSE %.4f above %.3f", c.cfg.Type, rel, c.bound)
		}
		deq, err := Dequant(r, DequantConfig{DType: formats.F32})
		if err != nil {
			t.Fatal(err)
		}
		back := writeST(t, r, deq)
		ys := make([]float32, len(vals))
		ToFloat32(ys, goldenBytes(t, back, "model.layers.0.mlp.up_proj.weight"), formats.F32)
		var st errorStats
		st.add(vals, ys)
		if st.maxAbs != d.MaxAbsErr || math.Abs(st.rmse()-d.RMSE) > 1e-9*d.RMSE {
			t.Errorf("%v: file error %g/%g, plan statistics %g/%g", c.cfg.Type, st.rmse(), st.maxAbs, d.RMSE, d.MaxAbsErr)
		}
		if deq.Decisions()[0].From != d.To {
			t.Errorf("dequant From %q, quantized To %q", deq.Decisions()[0].From, d.To)
		}
	}
}

// TestQuantizationConfig checks config.json's quantization_config for
// each bitsandbytes type and its removal by Dequant.
func TestQuantizationConfig(t *testing.T) {
	config, err := os.ReadFile(filepath.Join("..", "fixtures", "stories260K-hf", "config.json"))
	if err != nil {
		t.Skip(err)
	}
	src := &memSource{}
	src.add("model.layers.0.self_attn.q_proj.weight", formats.F16, []int64{64, 64}, planRand(3, 64*64, 1))
	src.add("lm_head.weight", formats.F16, []int64{8, 64}, planRand(4, 8*64, 1))
	for _, c := range []struct {
		cfg  Config
		want map[string]any
	}{
		{Config{Type: TypeNF4, DoubleQuant: true}, map[string]any{
			"_load_in_4bit": true, "_load_in_8bit": false, "bnb_4bit_compute_dtype": "float16",
			"bnb_4bit_quant_storage": "uint8", "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": true,
			"llm_int8_enable_fp32_cpu_offload": false, "llm_int8_has_fp16_weight": false,
			"llm_int8_skip_modules": []any{"lm_head"}, "llm_int8_threshold": 6.0,
			"load_in_4bit": true, "load_in_8bit": false, "quant_method": "bitsandbytes"}},
		{Config{Type: TypeInt8}, map[string]any{
			"_load_in_4bit": false, "_load_in_8bit": true, "bnb_4bit_compute_dtype": "float32",
			"bnb_4bit_quant_storage": "uint8", "bnb_4bit_quant_type": "fp4", "bnb_4bit_use_double_quant": false,
			"llm_int8_enable_fp32_cpu_offload": false, "llm_int8_has_fp16_weight": false,
			"llm_int8_skip_modules": []any{"lm_head"}, "llm_int8_threshold": 6.0,
			"load_in_4bit": false, "load_in_8bit": true, "quant_method": "bitsandbytes"}},
		{Config{Type: TypeInt8Block}, map[string]any{
			"blocksize": 4096.0, "modules_to_not_convert": []any{"lm_head"}, "quant_method": "qtool", "quant_type": "int8-block"}},
	} {
		out, err := Plan(src, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := out.RewriteConfig(config)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(got, &doc); err != nil {
			t.Fatalf("%v: %v\n%s", c.cfg.Type, err, got)
		}
		qc, _ := json.Marshal(doc["quantization_config"])
		want, _ := json.Marshal(c.want)
		if !bytes.Equal(qc, want) || doc["hidden_size"] != 64.0 {
			t.Errorf("%v: quantization_config %s\nwant %s", c.cfg.Type, qc, want)
		}
		if !strings.Contains(string(got), "\n  \"quantization_config\": {\n    \"") || !strings.Contains(string(got), "\"rms_norm_eps\": 1e-05,") {
			t.Errorf("%v: layout:\n%s", c.cfg.Type, got)
		}
		r := writeST(t, src, out)
		deq, err := Dequant(r, DequantConfig{DType: formats.F16})
		if err != nil {
			t.Fatal(err)
		}
		if back, err := deq.RewriteConfig(got); err != nil || !bytes.Equal(back, config) {
			t.Errorf("%v: dequantized config.json differs from the original: %v\n%s", c.cfg.Type, err, back)
		}
	}
	out, _ := Plan(src, Config{Type: TypeNF4})
	if b, err := out.RewriteConfig(nil); b != nil || err != nil {
		t.Errorf("nil config: %q %v", b, err)
	}
}

// TestBNBRefusals: an already-quantized input, and malformed groups.
func TestBNBRefusals(t *testing.T) {
	src := &memSource{}
	src.add("a.weight", formats.F16, []int64{64, 64}, planRand(3, 64*64, 1))
	r, _ := planST(t, src, Config{Type: TypeNF4, DoubleQuant: true})
	if _, err := Plan(r, Config{Type: TypeNF4}); !errors.Is(err, ErrAlreadyQuantized) {
		t.Errorf("requantizing a bitsandbytes model: %v", err)
	}
	// Break one companion at a time.
	for _, c := range []struct {
		name, tensor string
		edit         func([]byte) []byte
		dtype        formats.DType
	}{
		{"bad JSON", "a.weight.quant_state.bitsandbytes__nf4", func(b []byte) []byte { return b[:len(b)-1] }, formats.U8},
		{"wrong type", "a.weight.quant_state.bitsandbytes__nf4", func(b []byte) []byte { return bytes.Replace(b, []byte(`"nf4"`), []byte(`"fp4"`), 1) }, formats.U8},
		{"short absmax", "a.weight.absmax", func(b []byte) []byte { return b[:len(b)-1] }, formats.U8},
		{"nested as U8", "a.weight.nested_absmax", func(b []byte) []byte { return b }, formats.U8},
	} {
		bad := &memSource{meta: formats.NewMeta(), data: map[string][]byte{}}
		for _, ti := range r.Tensors() {
			b := append([]byte(nil), goldenBytes(t, r, ti.Name)...)
			if ti.Name == c.tensor {
				b = c.edit(b)
				ti.DType = c.dtype
				ti.Shape = []int64{int64(len(b))}
			}
			bad.data[ti.Name] = b
			ti.Size = int64(len(b))
			bad.infos = append(bad.infos, ti)
		}
		if _, err := Dequant(bad, DequantConfig{DType: formats.F16, Format: Safetensors}); !errors.Is(err, ErrBadQuantState) || !errors.Is(err, formats.ErrFormat) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
