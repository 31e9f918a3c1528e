package formats

import "testing"

// The ggml type sizes below are ggml's type_traits (ggml 0.25.1), as
// gguf-py's GGML_QUANT_SIZES lists them: (id, block elements, block bytes).
func TestGGMLTypeTable(t *testing.T) {
	want := []struct {
		d          DType
		id         uint32
		block, bsz int64
	}{
		{F32, 0, 1, 4}, {F16, 1, 1, 2}, {Q4_0, 2, 32, 18}, {Q4_1, 3, 32, 20},
		{Q5_0, 6, 32, 22}, {Q5_1, 7, 32, 24}, {Q8_0, 8, 32, 34}, {Q8_1, 9, 32, 36},
		{Q2_K, 10, 256, 84}, {Q3_K, 11, 256, 110}, {Q4_K, 12, 256, 144}, {Q5_K, 13, 256, 176},
		{Q6_K, 14, 256, 210}, {Q8_K, 15, 256, 292}, {IQ2_XXS, 16, 256, 66}, {IQ2_XS, 17, 256, 74},
		{IQ3_XXS, 18, 256, 98}, {IQ1_S, 19, 256, 50}, {IQ4_NL, 20, 32, 18}, {IQ3_S, 21, 256, 110},
		{IQ2_S, 22, 256, 82}, {IQ4_XS, 23, 256, 136}, {I8, 24, 1, 1}, {I16, 25, 1, 2},
		{I32, 26, 1, 4}, {I64, 27, 1, 8}, {F64, 28, 1, 8}, {IQ1_M, 29, 256, 56},
		{BF16, 30, 1, 2}, {TQ1_0, 34, 256, 54}, {TQ2_0, 35, 256, 66}, {MXFP4, 39, 32, 17},
		{NVFP4, 40, 64, 36}, {Q1_0, 41, 128, 18}, {Q2_0, 42, 64, 18},
	}
	seen := map[DType]bool{}
	for _, w := range want {
		id, ok := w.d.GGMLType()
		if !ok || id != w.id {
			t.Errorf("%v.GGMLType() = %d, %v; want %d", w.d, id, ok, w.id)
		}
		if d, ok := DTypeFromGGML(w.id); !ok || d != w.d {
			t.Errorf("DTypeFromGGML(%d) = %v, %v; want %v", w.id, d, ok, w.d)
		}
		if w.d.BlockSize() != w.block || w.d.BlockBytes() != w.bsz {
			t.Errorf("%v: block %d×%dB, want %d×%dB", w.d, w.d.BlockSize(), w.d.BlockBytes(), w.block, w.bsz)
		}
		seen[w.d] = true
	}
	for _, d := range AllDTypes() {
		if _, ok := d.GGMLType(); ok && !seen[d] {
			t.Errorf("%v has a ggml id but is not in the expected table", d)
		}
	}
	for _, retired := range []uint32{4, 5, 31, 32, 33, 36, 37, 38, 43, 1 << 31} {
		if d, ok := DTypeFromGGML(retired); ok {
			t.Errorf("DTypeFromGGML(%d) = %v, want unknown", retired, d)
		}
	}
}

func TestSafetensorsNames(t *testing.T) {
	names := []string{"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"}
	for _, n := range names {
		d, ok := DTypeFromSafetensors(n)
		if !ok {
			t.Fatalf("DTypeFromSafetensors(%q) unknown", n)
		}
		if s, _ := d.SafetensorsName(); s != n || d.String() != n {
			t.Errorf("%q → %v → %q", n, d, s)
		}
	}
	if _, ok := Q4_0.SafetensorsName(); ok {
		t.Error("Q4_0 must not have a safetensors name")
	}
	if d, ok := ParseDType("q4_k"); !ok || d != Q4_K {
		t.Errorf("ParseDType(q4_k) = %v %v", d, ok)
	}
}

func TestDataSize(t *testing.T) {
	cases := []struct {
		d     DType
		shape []int64
		want  int64
		ok    bool
	}{
		{F32, []int64{}, 4, true},
		{F32, []int64{0, 4}, 0, true},
		{F16, []int64{5, 13}, 130, true},
		{Q4_0, []int64{2, 3, 32}, 108, true},
		{Q4_0, []int64{3, 33}, 0, false},
		{Q4_K, []int64{4096, 4096}, 4096 * 16 * 144, true},
		{F32, []int64{1 << 40, 1 << 40}, 0, false},
		{F32, []int64{-1}, 0, false},
		{Invalid, []int64{1}, 0, false},
	}
	for _, c := range cases {
		got, ok := DataSize(c.d, c.shape)
		if got != c.want || ok != c.ok {
			t.Errorf("DataSize(%v, %v) = %d, %v; want %d, %v", c.d, c.shape, got, ok, c.want, c.ok)
		}
	}
	if b := Q4_0.BitsPerElement(); b != 4.5 {
		t.Errorf("Q4_0 bits/element %v", b)
	}
}
