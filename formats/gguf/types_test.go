package gguf

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// ggmlTypes is every ggml type GGUF can hold, with its id, block size and
// block bytes from GGUF-LLAMACPP.md §3 (ggml.h / gguf-py GGML_QUANT_SIZES),
// written out here so the shared table in formats is checked against an
// independent copy.
var ggmlTypes = []struct {
	d          formats.DType
	id         uint32
	block, per int64
}{
	{formats.F32, 0, 1, 4}, {formats.F16, 1, 1, 2}, {formats.Q4_0, 2, 32, 18}, {formats.Q4_1, 3, 32, 20},
	{formats.Q5_0, 6, 32, 22}, {formats.Q5_1, 7, 32, 24}, {formats.Q8_0, 8, 32, 34}, {formats.Q8_1, 9, 32, 36},
	{formats.Q2_K, 10, 256, 84}, {formats.Q3_K, 11, 256, 110}, {formats.Q4_K, 12, 256, 144}, {formats.Q5_K, 13, 256, 176},
	{formats.Q6_K, 14, 256, 210}, {formats.Q8_K, 15, 256, 292}, {formats.IQ2_XXS, 16, 256, 66}, {formats.IQ2_XS, 17, 256, 74},
	{formats.IQ3_XXS, 18, 256, 98}, {formats.IQ1_S, 19, 256, 50}, {formats.IQ4_NL, 20, 32, 18}, {formats.IQ3_S, 21, 256, 110},
	{formats.IQ2_S, 22, 256, 82}, {formats.IQ4_XS, 23, 256, 136}, {formats.I8, 24, 1, 1}, {formats.I16, 25, 1, 2},
	{formats.I32, 26, 1, 4}, {formats.I64, 27, 1, 8}, {formats.F64, 28, 1, 8}, {formats.IQ1_M, 29, 256, 56},
	{formats.BF16, 30, 1, 2}, {formats.TQ1_0, 34, 256, 54}, {formats.TQ2_0, 35, 256, 66}, {formats.MXFP4, 39, 32, 17},
	{formats.NVFP4, 40, 64, 36}, {formats.Q1_0, 41, 128, 18}, {formats.Q2_0, 42, 64, 18},
}

func TestTypeTable(t *testing.T) {
	seen := map[formats.DType]bool{}
	for _, g := range ggmlTypes {
		seen[g.d] = true
		id, ok := g.d.GGMLType()
		back, ok2 := formats.DTypeFromGGML(g.id)
		if !ok || id != g.id || !ok2 || back != g.d || g.d.BlockSize() != g.block || g.d.BlockBytes() != g.per {
			t.Errorf("%v: id %d/%v back %v/%v block %d×%dB, want id %d block %d×%dB",
				g.d, id, ok, back, ok2, g.d.BlockSize(), g.d.BlockBytes(), g.id, g.block, g.per)
		}
	}
	for _, d := range formats.AllDTypes() {
		if _, ok := d.GGMLType(); ok != seen[d] {
			t.Errorf("%v: GGMLType ok=%v, but the table here says %v", d, ok, seen[d])
		}
	}
	for _, id := range []uint32{4, 5, 31, 32, 33, 36, 37, 38, 43, 99, 1 << 31} {
		if d, ok := formats.DTypeFromGGML(id); ok {
			t.Errorf("retired/unknown id %d maps to %v", id, d)
		}
	}
}

// TestEveryTypeRoundTrips writes a 2-row tensor of every ggml type (two
// blocks per row) and reads it back: type id, shape, size and bytes.
func TestEveryTypeRoundTrips(t *testing.T) {
	var ts []formats.Tensor
	for i, g := range ggmlTypes {
		shape := []int64{2, 2 * g.block}
		size := 2 * 2 * g.per
		data := bytes.Repeat([]byte{byte(i + 1)}, int(size))
		ts = append(ts, formats.Tensor{
			TensorInfo: formats.TensorInfo{Name: "t." + g.d.String(), DType: g.d, Shape: shape, Size: size},
			Data:       formats.BytesWriter(data),
		})
	}
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, nil, ts, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "types", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range ggmlTypes {
		ti := r.Tensors()[i]
		id, _ := r.GGMLType(ti.Name)
		b, _ := r.Bytes(ti.Name)
		if ti.DType != g.d || id != g.id || !equalShape(ti.Shape, ts[i].Shape) || ti.Size != 4*g.per ||
			!bytes.Equal(b, bytes.Repeat([]byte{byte(i + 1)}, int(4*g.per))) {
			t.Errorf("%v: read back %v id %d shape %v size %d", g.d, ti.DType, id, ti.Shape, ti.Size)
		}
	}
}

func TestRetiredTypeIDsRejected(t *testing.T) {
	for _, id := range []uint32{4, 5, 31, 36, 43} {
		s := validSpec()
		s.tensors[0].typ = id
		b, _, _ := s.build()
		_, err := NewReader(bytes.NewReader(b), int64(len(b)), "retired", Options{})
		if !errors.Is(err, ErrUnknownType) || !errors.Is(err, formats.ErrUnsupported) {
			t.Errorf("type %d: %v", id, err)
		}
	}
}
