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
