package summary

import (
	"encoding/json"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// memSource is a header-only test double.
type memSource struct {
	ts   []formats.TensorInfo
	meta *formats.Meta
}

func (m memSource) Tensors() []formats.TensorInfo { return m.ts }
func (m memSource) Meta() *formats.Meta           { return m.meta }
func (m memSource) Section(string) (*io.SectionReader, error) {
	return nil, io.EOF
}
func (m memSource) Close() error { return nil }

func TestTotalsAndFilter(t *testing.T) {
	meta := formats.NewMeta()
	meta.Set("f", formats.ValFloat32(float32(math.Inf(1))))
	meta.Set("arr", formats.ValArray([]float32{0.1, float32(math.NaN())}))
	meta.Set("bytes", formats.ValArray([]uint8{1, 2}))
	src := memSource{meta: meta, ts: []formats.TensorInfo{
		{Name: "blk.0.attn_q.weight", DType: formats.Q4_0, Shape: []int64{64, 64}, Size: 64 * 2 * 18},
		{Name: "blk.0.attn_norm.weight", DType: formats.F32, Shape: []int64{64}, Size: 256},
		{Name: "blk.1.attn_q.weight", DType: formats.Q4_0, Shape: []int64{64, 64}, Size: 64 * 2 * 18},
	}}
	r := Build(src, "x", "gguf", nil, nil)
	if r.Totals.Params != 64*64*2+64 || r.Totals.Bytes != 2*2304+256 || r.Totals.Tensors != 3 {
		t.Fatalf("totals %+v", r.Totals)
	}
	if q := r.Totals.ByDType[0]; q.DType != "Q4_0" || q.BitsPerParam != 4.5 {
		t.Errorf("by dtype %+v", q)
	}
	f, _ := ParseFilter("blk.0.*")
	if r := Build(src, "x", "gguf", nil, f); r.Totals.Tensors != 2 {
		t.Errorf("glob kept %d", r.Totals.Tensors)
	}
	f, _ = ParseFilter(`^blk\.\d\.attn_q`)
	if r := Build(src, "x", "gguf", nil, f); r.Totals.Tensors != 2 {
		t.Errorf("regexp kept %d", r.Totals.Tensors)
	}
	if _, err := ParseFilter("(["); err == nil {
		t.Error("bad regexp accepted")
	}
	out, err := json.Marshal(r.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"value":"inf"`, `"value":[0.1,"nan"]`, `"value":[1,2]`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("JSON lacks %s: %s", want, out)
		}
	}
}

func TestTextSummarises(t *testing.T) {
	long := make([]string, 1000)
	v := formats.ValArray(long)
	if s := Text(v, 80); !strings.Contains(s, "(1000 total)") {
		t.Errorf("array text %q", s)
	}
	s := Text(formats.ValString(strings.Repeat("x", 500)), 80)
	if !strings.Contains(s, "… (500 bytes)") || len(s) > 120 {
		t.Errorf("string text %q", s)
	}
}

// dataSource is a test double whose Section serves bytes.
type dataSource struct {
	memSource
	data map[string][]byte
}

func (d dataSource) Section(name string) (*io.SectionReader, error) {
	b, ok := d.data[name]
	if !ok {
		return nil, io.ErrUnexpectedEOF
	}
	return io.NewSectionReader(strings.NewReader(string(b)), 0, int64(len(b))), nil
}

// bitsandbytes groups are one logical tensor each, with the bytes of all
// their members; a group whose quant_state does not check out is listed
// tensor by tensor.
func TestBitsandbytesGroups(t *testing.T) {
	state := `{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [128, 256], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.01}`
	bad := `{"quant_type": "fp4", "blocksize": 64, "dtype": "float16", "shape": [3, 5]}` // 15 elements need 8 bytes, not 16
	u8 := func(name string, n int64) formats.TensorInfo {
		return formats.TensorInfo{Name: name, DType: formats.U8, Shape: []int64{n}, Size: n}
	}
	f32 := func(name string, n int64) formats.TensorInfo {
		return formats.TensorInfo{Name: name, DType: formats.F32, Shape: []int64{n}, Size: 4 * n}
	}
	q := "model.layers.0.self_attn.q_proj."
	o := "model.layers.0.self_attn.o_proj."
	ts := []formats.TensorInfo{
		{Name: "model.embed_tokens.weight", DType: formats.F16, Shape: []int64{320, 256}, Size: 320 * 256 * 2},
		{Name: q + "weight", DType: formats.U8, Shape: []int64{128 * 256 / 2, 1}, Size: 128 * 256 / 2},
		u8(q+"weight.absmax", 512), f32(q+"weight.quant_map", 16), f32(q+"weight.nested_absmax", 2), f32(q+"weight.nested_quant_map", 256),
		u8(q+"weight.quant_state.bitsandbytes__nf4", int64(len(state))),
		{Name: "model.layers.0.mlp.up_proj.weight", DType: formats.I8, Shape: []int64{512, 256}, Size: 512 * 256},
		f32("model.layers.0.mlp.up_proj.SCB", 512),
		{Name: "model.layers.0.mlp.up_proj.weight_format", DType: formats.U8, Shape: []int64{}, Size: 1},
		u8(o+"weight", 16), f32(o+"weight.absmax", 1), f32(o+"weight.quant_map", 16), u8(o+"weight.quant_state.bitsandbytes__fp4", int64(len(bad))),
	}
	src := dataSource{memSource{ts: ts, meta: formats.NewMeta()}, map[string][]byte{
		q + "weight.quant_state.bitsandbytes__nf4": []byte(state),
		o + "weight.quant_state.bitsandbytes__fp4": []byte(bad),
	}}
	r := Build(src, "x", "safetensors", nil, nil)
	rows := map[string]Tensor{}
	for _, x := range r.Tensors {
		rows[x.Name] = x
	}
	nf4 := rows[q+"weight"]
	wantBytes := int64(128*256/2 + 512 + 64 + 8 + 1024 + len(state))
	if nf4.DType != "NF4" || nf4.Params != 128*256 || nf4.Bytes != wantBytes || len(nf4.Shape) != 2 || nf4.Shape[1] != 256 || len(nf4.Parts) != 5 {
		t.Errorf("nf4 row %+v, want %d bytes", nf4, wantBytes)
	}
	if i8 := rows["model.layers.0.mlp.up_proj.weight"]; i8.DType != "INT8" || i8.Params != 512*256 || i8.Bytes != 512*256+4*512+1 {
		t.Errorf("int8 row %+v", i8)
	}
	for _, gone := range []string{q + "weight.absmax", "model.layers.0.mlp.up_proj.SCB"} {
		if _, ok := rows[gone]; ok {
			t.Errorf("%s listed on its own", gone)
		}
	}
	if x := rows[o+"weight"]; x.DType != "U8" {
		t.Errorf("a bad quant_state still grouped: %+v", x)
	}
	if len(r.Tensors) != 7 { // embedding, nf4, int8, four o_proj tensors
		t.Errorf("%d rows, want 7", len(r.Tensors))
	}
	var got *DTypeTotal
	for i := range r.Totals.ByDType {
		if r.Totals.ByDType[i].DType == "NF4" {
			got = &r.Totals.ByDType[i]
		}
	}
	if got == nil || got.BitsPerParam != float64(wantBytes)*8/(128*256) {
		t.Errorf("NF4 total %+v", got)
	}
	// Without readable data (a header-only source) only int8, which
	// needs no quant_state, is grouped.
	if r := Build(src.memSource, "x", "safetensors", nil, nil); len(r.Tensors) != len(ts)-2 {
		t.Errorf("header-only: %d rows", len(r.Tensors))
	}
}
