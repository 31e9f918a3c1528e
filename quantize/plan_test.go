package quantize

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
)

var storiesGGUF = filepath.Join("..", "fixtures", "stories260K", "stories260K.gguf")

// memSource is an in-memory formats.Source without ByteSource, so plans
// over it take the Section path.
type memSource struct {
	infos []formats.TensorInfo
	data  map[string][]byte
	meta  *formats.Meta
}

func (m *memSource) Tensors() []formats.TensorInfo { return m.infos }
func (m *memSource) Meta() *formats.Meta           { return m.meta }
func (m *memSource) Close() error                  { return nil }
func (m *memSource) Section(name string) (*io.SectionReader, error) {
	b, ok := m.data[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %q", name)
	}
	return io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b))), nil
}

// addF32 adds a tensor of dtype d (F32, F16 or BF16) holding vals.
func (m *memSource) add(name string, d formats.DType, shape []int64, vals []float32) {
	b := make([]byte, len(vals)*d.Bits()/8)
	if err := FromFloat32(b, vals, d); err != nil {
		panic(err)
	}
	if m.data == nil {
		m.data = map[string][]byte{}
		m.meta = formats.NewMeta()
	}
	m.data[name] = b
	m.infos = append(m.infos, formats.TensorInfo{Name: name, DType: d, Shape: shape, Size: int64(len(b))})
}

// planRand returns n normal values of scale s from a fixed seed.
func planRand(seed uint64, n int, s float32) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64()) * s
	}
	return v
}

func mustType(t *testing.T, s string) Type {
	t.Helper()
	ty, err := ParseType(s)
	if err != nil {
		t.Fatal(err)
	}
	return ty
}

func TestParseType(t *testing.T) {
	for _, name := range QuantTypeNames() {
		ty, err := ParseType(strings.ToUpper(name))
		if err != nil || ty.String() != name || !ty.Quantized() {
			t.Errorf("ParseType(%q) = %v, %v", name, ty, err)
		}
	}
	for _, bad := range []string{"", "q4_k_m", "nf8", "q8"} {
		if _, err := ParseType(bad); err == nil {
			t.Errorf("ParseType(%q) accepted", bad)
		}
	}
	if ty := mustType(t, "f16"); !ty.Float() || ty.Quantized() || ty.DType() != formats.F16 {
		t.Errorf("f16: %v", ty)
	}
	r, err := ParseTypeRule(`attn_(q|k)=q8_0`)
	if err != nil || r.Type != TypeQ8_0 || !r.Pattern.MatchString("blk.0.attn_k.weight") {
		t.Errorf("ParseTypeRule: %+v %v", r, err)
	}
	for _, bad := range []string{"noequals", "=q8_0", "x=", "([=q8_0", "x=nf5"} {
		if _, err := ParseTypeRule(bad); err == nil {
			t.Errorf("ParseTypeRule(%q) accepted", bad)
		}
	}
}

// The policy table: which tensors quantize to what, for both containers.
func TestPolicy(t *testing.T) {
	f32 := formats.F32
	mat := func(name string, rows, cols int64) formats.TensorInfo {
		return formats.TensorInfo{Name: name, DType: f32, Shape: []int64{rows, cols}}
	}
	vec := formats.TensorInfo{Name: "blk.0.attn_norm.weight", DType: f32, Shape: []int64{64}}
	cases := []struct {
		name     string
		f        Container
		cfg      Config
		ti       formats.TensorInfo
		want     Type
		fallback bool
		kept     string // substring of the reason, when kept
	}{
		{"gguf matrix", GGUF, Config{Type: TypeQ8_0}, mat("blk.0.attn_q.weight", 64, 64), TypeQ8_0, false, ""},
		{"gguf norm", GGUF, Config{Type: TypeQ8_0}, vec, TypeNone, false, "norm"},
		{"gguf 1-D", GGUF, Config{Type: TypeQ8_0}, formats.TensorInfo{Name: "x.weight", DType: f32, Shape: []int64{1, 64}}, TypeNone, false, "1-D"},
		{"gguf bias", GGUF, Config{Type: TypeQ8_0}, formats.TensorInfo{Name: "blk.0.attn_q.bias", DType: f32, Shape: []int64{4, 64}}, TypeNone, false, "not a weight"},
		{"gguf int", GGUF, Config{Type: TypeQ8_0}, formats.TensorInfo{Name: "ids.weight", DType: formats.I32, Shape: []int64{4, 64}}, TypeNone, false, "dtype"},
		{"gguf router", GGUF, Config{Type: TypeQ8_0}, mat("blk.0.ffn_gate_inp.weight", 8, 64), TypeNone, false, "llama-quantize"},
		{"gguf output", GGUF, Config{Type: TypeQ4_0}, mat("output.weight", 512, 64), TypeQ4_0, false, ""},
		{"gguf leave output", GGUF, Config{Type: TypeQ4_0, LeaveOutput: true}, mat("output.weight", 512, 64), TypeNone, false, "--leave-output-tensor"},
		{"gguf embedding", GGUF, Config{Type: TypeQ4_0, TokenEmbeddingType: TypeQ8_0}, mat("token_embd.weight", 512, 64), TypeQ8_0, false, ""},
		{"gguf embedding f16", GGUF, Config{Type: TypeQ4_0, TokenEmbeddingType: TypeF16}, mat("token_embd.weight", 512, 64), TypeF16, false, ""},
		{"gguf keep", GGUF, Config{Type: TypeQ4_0, Keep: []*regexp.Regexp{regexp.MustCompile(`attn_v`)}}, mat("blk.0.attn_v.weight", 32, 64), TypeNone, false, "--keep"},
		{"gguf keep beats type-for", GGUF, Config{Type: TypeQ4_0, Keep: []*regexp.Regexp{regexp.MustCompile(`attn_v`)},
			TypeFor: []TypeRule{{regexp.MustCompile(`attn`), TypeQ8_0}}}, mat("blk.0.attn_v.weight", 32, 64), TypeNone, false, "--keep"},
		{"gguf type-for", GGUF, Config{Type: TypeQ4_0, TypeFor: []TypeRule{{regexp.MustCompile(`ffn_up`), TypeQ8_0}, {regexp.MustCompile(`ffn`), TypeQ5_0}}},
			mat("blk.1.ffn_up.weight", 172, 64), TypeQ8_0, false, ""},
		{"gguf type-for f32 is a no-op", GGUF, Config{Type: TypeQ4_0, TypeFor: []TypeRule{{regexp.MustCompile(`.`), TypeF32}}},
			mat("blk.1.ffn_up.weight", 172, 64), TypeNone, false, "already F32"},
		{"gguf 32-block fallback", GGUF, Config{Type: TypeQ4_0}, mat("blk.0.ffn_down.weight", 64, 172), TypeF16, true, ""},
		{"gguf q4_k → q5_0", GGUF, Config{Type: TypeQ4K}, mat("blk.0.attn_q.weight", 64, 64), TypeQ5_0, true, ""},
		{"gguf q5_k → q5_1", GGUF, Config{Type: TypeQ5K}, mat("blk.0.attn_q.weight", 64, 64), TypeQ5_1, true, ""},
		{"gguf q6_k → q8_0", GGUF, Config{Type: TypeQ6K}, mat("blk.0.attn_q.weight", 64, 64), TypeQ8_0, true, ""},
		{"gguf q6_k → f16", GGUF, Config{Type: TypeQ6K}, mat("blk.0.ffn_down.weight", 64, 172), TypeF16, true, ""},
		{"gguf q4_k fits", GGUF, Config{Type: TypeQ4K}, mat("blk.0.attn_q.weight", 256, 512), TypeQ4K, false, ""},
		{"gguf already q8_0", GGUF, Config{Type: TypeQ8_0}, formats.TensorInfo{Name: "a.weight", DType: formats.Q8_0, Shape: []int64{4, 64}}, TypeNone, false, "already"},
		{"gguf requantize", GGUF, Config{Type: TypeQ4_0}, formats.TensorInfo{Name: "a.weight", DType: formats.Q8_0, Shape: []int64{4, 64}}, TypeQ4_0, false, ""},
		{"bnb linear", Safetensors, Config{Type: TypeNF4}, mat("model.layers.0.mlp.down_proj.weight", 64, 172), TypeNF4, false, ""},
		{"bnb no fallback", Safetensors, Config{Type: TypeInt8}, mat("model.layers.0.mlp.down_proj.weight", 64, 172), TypeInt8, false, ""},
		{"bnb lm_head", Safetensors, Config{Type: TypeNF4}, mat("lm_head.weight", 512, 64), TypeNone, false, "lm_head"},
		{"bnb lm_head by rule", Safetensors, Config{Type: TypeNF4, TypeFor: []TypeRule{{regexp.MustCompile(`lm_head`), TypeNF4}}}, mat("lm_head.weight", 512, 64), TypeNF4, false, ""},
		{"bnb embedding", Safetensors, Config{Type: TypeNF4}, mat("model.embed_tokens.weight", 512, 64), TypeNone, false, "embedding"},
		{"bnb norm", Safetensors, Config{Type: TypeNF4}, formats.TensorInfo{Name: "model.norm.weight", DType: f32, Shape: []int64{64}}, TypeNone, false, "norm"},
		{"bnb layernorm", Safetensors, Config{Type: TypeNF4}, formats.TensorInfo{Name: "model.layers.0.input_layernorm.weight", DType: f32, Shape: []int64{64}}, TypeNone, false, "norm"},
		{"bnb bias", Safetensors, Config{Type: TypeNF4}, formats.TensorInfo{Name: "model.layers.0.mlp.up_proj.bias", DType: f32, Shape: []int64{172}}, TypeNone, false, "not a weight"},
		{"bnb conv", Safetensors, Config{Type: TypeNF4}, formats.TensorInfo{Name: "conv.weight", DType: f32, Shape: []int64{8, 4, 3, 3}}, TypeNone, false, "2-D"},
		{"bnb f64", Safetensors, Config{Type: TypeNF4}, formats.TensorInfo{Name: "a.weight", DType: formats.F64, Shape: []int64{8, 64}}, TypeNone, false, "F64"},
	}
	for _, c := range cases {
		ch := c.cfg.decide(c.ti, c.f)
		if ch.typ != c.want || (ch.fallback != "") != c.fallback || !strings.Contains(ch.kept, c.kept) || (c.want == TypeNone) != (ch.kept != "") {
			t.Errorf("%s: got %+v, want type %v fallback %v kept %q", c.name, ch, c.want, c.fallback, c.kept)
		}
	}
}

func TestConfigRefusals(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want error
	}{
		{"nf4 to gguf", Config{Type: TypeNF4, Format: GGUF}, ErrTypeNotStorable},
		{"int8 to gguf", Config{Type: TypeInt8, Format: GGUF}, ErrTypeNotStorable},
		{"q8_0 to safetensors", Config{Type: TypeQ8_0, Format: Safetensors}, ErrTypeNotStorable},
		{"type-for nf4 in gguf", Config{Type: TypeQ8_0, TypeFor: []TypeRule{{regexp.MustCompile(`x`), TypeNF4}}}, ErrTypeNotStorable},
		{"mixed bnb types", Config{Type: TypeNF4, TypeFor: []TypeRule{{regexp.MustCompile(`x`), TypeInt8}}}, ErrBadConfig},
		{"bnb quantized embedding", Config{Type: TypeNF4, TokenEmbeddingType: TypeNF4}, ErrBadConfig},
		{"block for q8_0", Config{Type: TypeQ8_0, Block: 64}, ErrBadConfig},
		{"block 48", Config{Type: TypeNF4, Block: 48}, ErrBadConfig},
		{"block 32 for int8-block", Config{Type: TypeInt8Block, Block: 32}, ErrBadConfig},
		{"dq for int8", Config{Type: TypeInt8, DoubleQuant: true}, ErrBadConfig},
		{"no type", Config{}, ErrBadConfig},
		{"cast as type", Config{Type: TypeF16}, ErrBadConfig},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if !errors.Is(err, c.want) || !errors.Is(err, formats.ErrUnsupported) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	err := Config{Type: TypeNF4, Format: GGUF}.Validate()
	if !strings.Contains(err.Error(), "iq4_nl") || !strings.Contains(err.Error(), "q4_k") {
		t.Errorf("NF4 → GGUF refusal proposes no alternative: %v", err)
	}
	for _, ok := range []Config{{Type: TypeNF4, Block: 4096, DoubleQuant: true}, {Type: TypeInt8Block, Block: 64}, {Type: TypeQ4K, TokenEmbeddingType: TypeQ8_0}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

func TestLlamaQuantizeOrder(t *testing.T) {
	var in []formats.TensorInfo
	for _, n := range []string{"token_embd.weight", "blk.10.a", "blk.2.b", "output.weight", "blk.2.a", "blk.x.y", "output_norm.weight"} {
		in = append(in, formats.TensorInfo{Name: n})
	}
	var got []string
	for _, ti := range llamaQuantizeOrder(in) {
		got = append(got, ti.Name)
	}
	want := "blk.x.y output.weight output_norm.weight token_embd.weight blk.2.a blk.2.b blk.10.a"
	if strings.Join(got, " ") != want {
		t.Errorf("order %v\nwant %s", got, want)
	}
}

// planGGUF quantizes the bundled model and returns the file's bytes.
func planGGUF(t *testing.T, cfg Config) ([]byte, *Output) {
	t.Helper()
	src, err := gguf.Open(storiesGGUF)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	out, err := Plan(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := gguf.Write(context.Background(), &buf, out.Meta, out.Tensors, gguf.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), out
}

// TestPlanMatchesLlamaQuantize: qtool's Q8_0 and Q4_0 of stories260K are
// byte for byte llama-quantize's (testdata/ggml/README.md).
func TestPlanMatchesLlamaQuantize(t *testing.T) {
	for _, c := range []struct {
		typ    Type
		golden string
	}{
		{TypeQ8_0, "stories260K-Q8_0-pure.gguf"},
		{TypeQ4_0, "stories260K-Q4_0-pure.gguf"},
	} {
		t.Run(c.typ.String(), func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", "ggml", c.golden))
			if err != nil {
				t.Fatal(err)
			}
			got, out := planGGUF(t, Config{Type: c.typ, Workers: 2})
			if !bytes.Equal(got, want) {
				t.Fatalf("differs from %s: %s", c.golden, firstDifference(t, got, want))
			}
			tot := out.Totals()
			if tot.Tensors != 48 || tot.Quantized != 32 || tot.Converted != 37 || tot.Fallbacks != 5 || tot.BytesIn != 1171200 {
				t.Errorf("totals %+v", tot)
			}
		})
	}
}

// firstDifference names the first KV or tensor where two GGUF files differ.
func firstDifference(t *testing.T, got, want []byte) string {
	a, err := gguf.NewReader(bytes.NewReader(got), int64(len(got)), "got", gguf.Options{})
	if err != nil {
		return err.Error()
	}
	b, err := gguf.NewReader(bytes.NewReader(want), int64(len(want)), "want", gguf.Options{})
	if err != nil {
		return err.Error()
	}
	ka, kb := a.Meta().KVs(), b.Meta().KVs()
	for i := range min(len(ka), len(kb)) {
		if ka[i].Key != kb[i].Key || fmt.Sprint(ka[i].Value) != fmt.Sprint(kb[i].Value) {
			return fmt.Sprintf("KV %d: %s=%v, want %s=%v", i, ka[i].Key, ka[i].Value, kb[i].Key, kb[i].Value)
		}
	}
	ta, tb := a.Tensors(), b.Tensors()
	for i := range min(len(ta), len(tb)) {
		x, _ := a.Bytes(ta[i].Name)
		y, _ := b.Bytes(tb[i].Name)
		if ta[i].Name != tb[i].Name || ta[i].DType != tb[i].DType || !bytes.Equal(x, y) {
			return fmt.Sprintf("tensor %d: %s %v, want %s %v (bytes equal %v)", i, ta[i].Name, ta[i].DType, tb[i].Name, tb[i].DType, bytes.Equal(x, y))
		}
	}
	return fmt.Sprintf("%d vs %d bytes, %d vs %d KVs, %d vs %d tensors", len(got), len(want), len(ka), len(kb), len(ta), len(tb))
}

// TestPlanInMemory runs a plan over a source without ByteSource and
// checks decisions, statistics, progress and thread-independence.
func TestPlanInMemory(t *testing.T) {
	src := &memSource{}
	src.add("token_embd.weight", formats.F16, []int64{32, 64}, planRand(1, 32*64, 1))
	src.add("blk.0.attn_norm.weight", formats.F32, []int64{64}, planRand(2, 64, 1))
	src.add("blk.0.ffn_down.weight", formats.BF16, []int64{64, 96}, planRand(3, 64*96, 0.02))
	src.add("blk.0.ffn_up.weight", formats.F32, []int64{96, 256}, planRand(4, 96*256, 0.02))
	src.meta.Set("general.file_type", formats.ValUint32(0))
	src.meta.Set("general.architecture", formats.ValString("llama"))
	var files [][]byte
	for _, workers := range []int{1, 3} {
		var calls int
		var last, total int64
		out, err := Plan(src, Config{Type: TypeQ4K, Stats: true, Workers: workers, Progress: func(d, tt int64) { calls++; last, total = d, tt }})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := gguf.Write(context.Background(), &buf, out.Meta, out.Tensors, gguf.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		files = append(files, buf.Bytes())
		if calls == 0 || last != total || total != out.TotalBytes() {
			t.Errorf("progress: %d calls, last %d of %d (plan total %d)", calls, last, total, out.TotalBytes())
		}
		got := map[string]Decision{}
		for _, d := range out.Decisions() {
			got[d.Name] = d
		}
		if d := got["blk.0.ffn_down.weight"]; d.To != "Q5_0" || d.Fallback == "" || d.From != "BF16" || !d.Measured || d.RMSE <= 0 || d.RMSE > 0.002 || d.MaxAbsErr < d.RMSE {
			t.Errorf("ffn_down: %+v", d)
		}
		if d := got["blk.0.ffn_up.weight"]; d.To != "Q4_K" || d.Fallback != "" || d.BytesOut != 96*144 || d.BitsPerParam() != 4.5 || d.RMSE > 0.002 {
			t.Errorf("ffn_up: %+v", d)
		}
		if d := got["blk.0.attn_norm.weight"]; d.To != "F32" || d.Kept != "norm" || d.Measured {
			t.Errorf("norm: %+v", d)
		}
		kv := out.Meta.KVs()
		if len(kv) != 3 || kv[0].Key != "general.architecture" || kv[1].Key != keyQuantVersion || kv[2].Key != keyFileType || kv[2].Value.V != uint32(15) {
			t.Errorf("KVs %v", kv)
		}
		if out.Tensors[0].Name != "token_embd.weight" || out.Tensors[1].Name != "blk.0.attn_norm.weight" {
			t.Errorf("order: %s, %s", out.Tensors[0].Name, out.Tensors[1].Name)
		}
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Error("1 and 3 workers give different files")
	}
}

// A NaN is refused with the tensor's name and a bad-input class.
func TestPlanRefusesNaN(t *testing.T) {
	for _, typ := range []Type{TypeQ8_0, TypeNF4, TypeInt8, TypeInt8Block} {
		vals := planRand(5, 64*64, 1)
		vals[1000] = float32(math.NaN())
		src := &memSource{}
		src.add("model.layers.0.self_attn.q_proj.weight", formats.F16, []int64{64, 64}, vals)
		out, err := Plan(src, Config{Type: typ, DoubleQuant: typ == TypeNF4})
		if err == nil {
			var buf bytes.Buffer
			for _, ts := range out.Tensors {
				if _, err = ts.Data.WriteTo(&buf); err != nil {
					break
				}
			}
		}
		var fe *formats.FormatError
		if !errors.Is(err, formats.ErrFormat) || !errors.As(err, &fe) || fe.Tensor != "model.layers.0.self_attn.q_proj.weight" {
			t.Errorf("%v: %v", typ, err)
		}
	}
}

// Dequant of a Q8_0 GGUF restores F32 tensors within Q8_0's error, drops
// quantization_version and sets file_type.
func TestDequantGGUF(t *testing.T) {
	q, _ := planGGUF(t, Config{Type: TypeQ8_0})
	qsrc, err := gguf.NewReader(bytes.NewReader(q), int64(len(q)), "q8_0", gguf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []formats.DType{formats.F32, formats.BF16} {
		out, err := Dequant(qsrc, DequantConfig{DType: d, Format: GGUF})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := gguf.Write(context.Background(), &buf, out.Meta, out.Tensors, gguf.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		back, err := gguf.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "back", gguf.Options{})
		if err != nil {
			t.Fatal(err)
		}
		kvs := back.Meta().KVs()
		if back.Meta().Has(keyQuantVersion) || kvs[len(kvs)-1].Key != keyFileType || kvs[len(kvs)-1].Value.V != typeOfDType(d).FileType() {
			t.Errorf("%v: KVs end with %v", d, kvs[len(kvs)-1])
		}
		orig, _ := gguf.Open(storiesGGUF)
		defer orig.Close()
		counts := map[formats.DType]int{}
		for _, ti := range back.Tensors() {
			counts[ti.DType]++
			if ti.Name != "output.weight" {
				continue
			}
			a, _ := orig.Bytes(ti.Name)
			b, _ := back.Bytes(ti.Name)
			x, y := make([]float32, 512*64), make([]float32, 512*64)
			ToFloat32(x, a, formats.F32)
			ToFloat32(y, b, d)
			var st errorStats
			st.add(x, y)
			if st.maxAbs > 0.02 || st.rmse() > 0.005 {
				t.Errorf("%v: output.weight error rmse %g max %g", d, st.rmse(), st.maxAbs)
			}
		}
		if d == formats.F32 && (counts[formats.F32] != 43 || counts[formats.F16] != 5) {
			t.Errorf("dtypes after dequant: %v", counts)
		}
	}
}

func TestPyFloat(t *testing.T) {
	for v, want := range map[float64]string{
		2.529632568359375: "2.529632568359375", 5293.576171875: "5293.576171875", 1e-05: "1e-05",
		0.0001: "0.0001", 6: "6.0", 1e16: "1e+16", 1.5e15: "1500000000000000.0", -0.25: "-0.25", 0: "0.0",
		float64(float32(0.051328033)): "0.051328033208847046",
	} {
		if got := pyFloat(v); got != want {
			t.Errorf("pyFloat(%v) = %s, want %s", v, got, want)
		}
	}
}

func TestSetTopLevelKey(t *testing.T) {
	doc := []byte("{\n  \"a\": 1,\n  \"z\": [\n    1,\n    2\n  ]\n}\n")
	got, err := setTopLevelKey(doc, "q", []byte("true"))
	if err != nil || string(got) != "{\n  \"a\": 1,\n  \"q\": true,\n  \"z\": [\n    1,\n    2\n  ]\n}\n" {
		t.Errorf("insert: %q %v", got, err)
	}
	back, err := setTopLevelKey(got, "q", nil)
	if err != nil || !bytes.Equal(back, doc) {
		t.Errorf("remove: %q %v", back, err)
	}
	if got, _ := setTopLevelKey([]byte(`{"z":1,"a":2}`), "q", []byte("1")); string(got) != "{\n  \"z\": 1,\n  \"a\": 2,\n  \"q\": 1\n}" {
		t.Errorf("unsorted: %q", got)
	}
	if got, _ := setTopLevelKey([]byte(`{}`), "q", nil); string(got) != "{}" {
		t.Errorf("empty: %q", got)
	}
	for _, bad := range []string{"[]", "{", `{"a":}`, "nope"} {
		if _, err := setTopLevelKey([]byte(bad), "q", nil); !errors.Is(err, formats.ErrFormat) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestRawAbsmax(t *testing.T) {
	vals := planRand(9, 300, 3)
	vals[17] = -40
	for _, d := range []formats.DType{formats.F32, formats.F16, formats.BF16} {
		raw := make([]byte, len(vals)*d.Bits()/8)
		FromFloat32(raw, vals, d)
		x := make([]float32, len(vals))
		ToFloat32(x, raw, d)
		got := make([]float32, 5)
		if bad := rawAbsmax(got, raw, d, 64); bad != -1 {
			t.Fatalf("%v: bad %d", d, bad)
		}
		for b := range got {
			var m float32
			for _, v := range x[b*64 : min(b*64+64, len(x))] {
				m = max(m, float32(math.Abs(float64(v))))
			}
			if got[b] != m {
				t.Errorf("%v block %d: %g, want %g", d, b, got[b], m)
			}
		}
		switch d {
		case formats.F32:
			binary.LittleEndian.PutUint32(raw[4*200:], 0x7fc00000)
		case formats.F16:
			binary.LittleEndian.PutUint16(raw[2*200:], 0xfc00) // -Inf
		case formats.BF16:
			binary.LittleEndian.PutUint16(raw[2*200:], 0x7fc0)
		}
		if bad := rawAbsmax(got, raw, d, 64); bad != 200 {
			t.Errorf("%v: NaN at %d reported at %d", d, 200, bad)
		}
	}
}

// TestPlanMatchesKernelGoldens extends the byte-identity check to every
// --pure llama-quantize output the kernels' tests keep in testdata/ggml
// (all 32-element types on stories260K, the K-quants on a synthetic F16
// model); it skips when they are absent.
func TestPlanMatchesKernelGoldens(t *testing.T) {
	goldens, _ := filepath.Glob(filepath.Join("testdata", "ggml", "*-pure.gguf"))
	if len(goldens) == 0 {
		t.Skip("no testdata/ggml goldens")
	}
	for _, g := range goldens {
		base := filepath.Base(g)
		src := storiesGGUF
		if strings.HasPrefix(base, "synth-") {
			src = filepath.Join("testdata", "ggml", "synth-e256-ff768-f16.gguf")
		}
		name := strings.TrimSuffix(base[strings.IndexByte(base, '-')+1:], "-pure.gguf")
		name = name[strings.LastIndexByte(name, '-')+1:]
		t.Run(base, func(t *testing.T) {
			if testing.Short() && src != storiesGGUF {
				t.Skip("K-quant goldens take seconds; -short")
			}
			typ := mustType(t, name)
			r, err := gguf.Open(src)
			if err != nil {
				t.Skip(err)
			}
			defer r.Close()
			out, err := Plan(r, Config{Type: typ})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := gguf.Write(context.Background(), &buf, out.Meta, out.Tensors, gguf.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(g)
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("differs: %s", firstDifference(t, buf.Bytes(), want))
			}
		})
	}
}
