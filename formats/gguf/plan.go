package gguf

import (
	"fmt"
	"math"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/internal/bin"
)

// WriteOptions control Write and Plan.
type WriteOptions struct {
	// Alignment of the data section and of every tensor: a power of two
	// that fits a UINT32. 0 takes general.alignment from the metadata when
	// present, else 32. When it differs from the metadata's
	// general.alignment, that value is replaced in place; when the
	// metadata has none and the alignment is not 32, general.alignment is
	// appended (PARSER-SAFETY.md §2.16).
	Alignment int64
	// AllowNestedArrays permits arrays of arrays, which ggml cannot read;
	// by default they fail with ErrNestedArray.
	AllowNestedArrays bool
}

// Layout is where a planned file puts its parts.
type Layout struct {
	// Alignment is the alignment actually used.
	Alignment int64
	// TensorInfoEnd is the header's length: magic through the last
	// tensor info.
	TensorInfoEnd int64
	// DataStart is TensorInfoEnd rounded up to Alignment; the writer
	// always pads, even with no tensors.
	DataStart int64
	// Offsets holds each tensor's offset relative to DataStart, in order:
	// the running sum of the previous sizes, each padded to Alignment.
	Offsets []int64
	// Size is the whole file's size, the padding after the last tensor
	// included.
	Size int64
}

// Plan validates what Write would write and returns its layout, writing
// nothing and calling no tensor's Data.
func Plan(meta *formats.Meta, ts []formats.Tensor, opts WriteOptions) (*Layout, error) {
	lay, _, err := plan(meta, ts, opts)
	return lay, err
}

// plan checks every KV and tensor, computes the layout and encodes the
// header (magic through the last tensor info).
func plan(meta *formats.Meta, ts []formats.Tensor, opts WriteOptions) (*Layout, []byte, error) {
	align, kvs, err := alignment(meta, opts)
	if err != nil {
		return nil, nil, err
	}
	e := &encoder{allowNested: opts.AllowNestedArrays, maxNesting: formats.DefaultLimits.MaxNesting}
	e.b = append(e.b, magic...)
	e.u32(WriteVersion)
	e.u64(uint64(len(ts)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		if err := e.kv(kv.Key, kv.Value); err != nil {
			return nil, nil, err
		}
	}
	lay := &Layout{Alignment: align, Offsets: make([]int64, len(ts))}
	seen := make(map[string]struct{}, len(ts))
	var next int64
	for i, t := range ts {
		if _, dup := seen[t.Name]; dup {
			return nil, nil, writeErr(ErrDuplicateTensor, "", t.Name, "name given twice")
		}
		seen[t.Name] = struct{}{}
		id, err := checkTensor(t)
		if err != nil {
			return nil, nil, err
		}
		lay.Offsets[i] = next
		end, ok := bin.AddI64(next, t.Size)
		if ok {
			next, ok = bin.AlignUp(end, align)
		}
		if !ok {
			return nil, nil, writeErr(ErrOverflow, "", t.Name, "data section size overflows int64")
		}
		e.str(t.Name)
		e.u32(uint32(max(len(t.Shape), 1)))
		for j := len(t.Shape) - 1; j >= 0; j-- {
			e.u64(uint64(t.Shape[j]))
		}
		if len(t.Shape) == 0 {
			e.u64(1)
		}
		e.u32(id)
		e.u64(uint64(lay.Offsets[i]))
	}
	lay.TensorInfoEnd = int64(len(e.b))
	ds, ok := bin.AlignUp(lay.TensorInfoEnd, align)
	if ok {
		lay.Size, ok = bin.AddI64(ds, next)
	}
	if !ok {
		return nil, nil, writeErr(ErrOverflow, "", "", "file size overflows int64")
	}
	lay.DataStart = ds
	return lay, e.b, nil
}

// alignment resolves the alignment to write and the KV list that records
// it (see WriteOptions.Alignment).
func alignment(meta *formats.Meta, opts WriteOptions) (int64, []formats.KV, error) {
	kvs := meta.KVs()
	pos, metaAlign := -1, int64(0)
	for i, kv := range kvs {
		if kv.Key != keyAlignment {
			continue
		}
		a, ok := kv.Value.V.(uint32)
		if kv.Value.Type != formats.TypeUint32 || !ok {
			return 0, nil, writeErr(ErrBadAlignment, kv.Key, "", fmt.Sprintf("type %v holding %T, want UINT32", kv.Value.Type, kv.Value.V))
		}
		if !powerOfTwo(int64(a)) {
			return 0, nil, writeErr(ErrBadAlignment, kv.Key, "", fmt.Sprintf("%d is not a power of two", a))
		}
		pos, metaAlign = i, int64(a)
	}
	align := opts.Alignment
	if align == 0 {
		align = defaultAlignment
		if pos >= 0 {
			align = metaAlign
		}
	}
	if !powerOfTwo(align) || align > math.MaxUint32 {
		return 0, nil, writeErr(ErrBadAlignment, "", "", fmt.Sprintf("WriteOptions.Alignment %d is not a power of two that fits a UINT32", align))
	}
	switch {
	case pos >= 0 && align != metaAlign:
		kvs = append([]formats.KV(nil), kvs...)
		kvs[pos].Value = formats.ValUint32(uint32(align))
	case pos < 0 && align != defaultAlignment:
		kvs = append(append([]formats.KV(nil), kvs...), formats.KV{Key: keyAlignment, Value: formats.ValUint32(uint32(align))})
	}
	return align, kvs, nil
}

func powerOfTwo(a int64) bool { return a > 0 && a&(a-1) == 0 }

// checkTensor validates one tensor to be written and returns its ggml type
// id: a storable dtype, a name under 64 bytes, at most 4 non-negative dims
// with ne[0] a whole number of blocks, and a Size matching dtype and shape.
func checkTensor(t formats.Tensor) (uint32, error) {
	fail := func(rule error, format string, args ...any) (uint32, error) {
		return 0, writeErr(rule, "", t.Name, fmt.Sprintf(format, args...))
	}
	if len(t.Name) >= maxNameLen {
		return fail(ErrNameTooLong, "%d bytes, must be under %d", len(t.Name), maxNameLen)
	}
	id, ok := t.DType.GGMLType()
	if !ok {
		return fail(ErrNotStorable, "dtype %v", t.DType)
	}
	if len(t.Shape) > maxDims {
		return fail(ErrTooManyDims, "rank %d, at most %d", len(t.Shape), maxDims)
	}
	for _, d := range t.Shape {
		if d < 0 {
			return fail(ErrBadDim, "shape %v", t.Shape)
		}
	}
	if bs := t.DType.BlockSize(); len(t.Shape) > 0 && t.Shape[len(t.Shape)-1]%bs != 0 || len(t.Shape) == 0 && bs > 1 {
		return fail(ErrBlockMisaligned, "shape %v: innermost dimension not a multiple of the %v block size %d", t.Shape, t.DType, bs)
	}
	size, ok := formats.DataSize(t.DType, t.Shape)
	if !ok {
		return fail(ErrOverflow, "byte size of %v%v overflows int64", t.DType, t.Shape)
	}
	if size != t.Size {
		return fail(ErrSizeMismatch, "Size %d, %v%v holds %d bytes", t.Size, t.DType, t.Shape, size)
	}
	if t.Data == nil && size > 0 {
		return 0, fmt.Errorf("gguf: tensor %q: no Data for %d bytes: %w", t.Name, size, ErrDataSize)
	}
	return id, nil
}
