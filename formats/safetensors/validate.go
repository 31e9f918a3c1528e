package safetensors

import (
	"fmt"
	"sort"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/internal/bin"
)

// layout is the outcome of validating a header against the file: tensors in
// data order with absolute offsets, and a name index into them.
type layout struct {
	tensors []formats.TensorInfo
	index   map[string]int
}

// validateLayout applies the data rules of PARSER-SAFETY §1.8–§1.10 to the
// decoded entries, in the reference reader's order:
//
//   - sorted by (begin, end), each tensor starts exactly where the previous
//     one ended, the first at 0 (ErrOffsetGap, ErrOffsetOverlap);
//   - elements = product of shape and bytes = elements × dtype size, both
//     with checked multiplication (ErrOverflow);
//   - end − begin = bytes (ErrSizeMismatch);
//   - dataStart + last end = file size exactly (ErrTrailingBytes,
//     ErrTruncated).
//
// Every safetensors dtype is a whole number of bytes, so the sub-byte
// alignment rule (reference MisalignedSlice) cannot fire and has no
// sentinel. base is the file's base name, stored in TensorInfo.File.
func validateLayout(h *header, dataStart, size int64, file, base string) (*layout, error) {
	ents := h.entries
	order := make([]int, len(ents))
	for i := range order {
		order[i] = i
	}
	// Stable, so zero-size tensors sharing an offset keep header order.
	sort.SliceStable(order, func(a, b int) bool {
		x, y := &ents[order[a]], &ents[order[b]]
		if x.begin != y.begin {
			return x.begin < y.begin
		}
		return x.end < y.end
	})

	lay := &layout{
		tensors: make([]formats.TensorInfo, 0, len(ents)),
		index:   make(map[string]int, len(ents)),
	}
	var next int64 // where the next tensor must begin, relative to dataStart
	for _, i := range order {
		e := &ents[i]
		abs, ok := bin.AddI64(dataStart, e.begin)
		if !ok {
			return nil, fail(file, 8+int64(e.pos), e.name, "", ErrOverflow,
				fmt.Sprintf("data start %d + begin %d", dataStart, e.begin))
		}
		switch {
		case e.begin > next:
			return nil, fail(file, abs, e.name, "", ErrOffsetGap,
				fmt.Sprintf("begins at %d, previous data ends at %d", e.begin, next))
		case e.begin < next:
			return nil, fail(file, abs, e.name, "", ErrOffsetOverlap,
				fmt.Sprintf("begins at %d, previous data ends at %d", e.begin, next))
		}
		n, ok := bin.Product(e.shape)
		if !ok {
			return nil, fail(file, abs, e.name, "", ErrOverflow, fmt.Sprintf("element count of shape %v", e.shape))
		}
		nbytes, ok := bin.MulI64(n, e.dtype.BlockBytes())
		if !ok {
			return nil, fail(file, abs, e.name, "", ErrOverflow,
				fmt.Sprintf("%d elements of %v", n, e.dtype))
		}
		if got := e.end - e.begin; got != nbytes {
			return nil, fail(file, abs, e.name, "", ErrSizeMismatch,
				fmt.Sprintf("data_offsets [%d, %d] hold %d bytes, %v%v needs %d", e.begin, e.end, got, e.dtype, e.shape, nbytes))
		}
		next = e.end
		lay.index[e.name] = len(lay.tensors)
		lay.tensors = append(lay.tensors, formats.TensorInfo{
			Name:   e.name,
			DType:  e.dtype,
			Shape:  e.shape,
			Offset: abs,
			Size:   nbytes,
			File:   base,
		})
	}
	end, ok := bin.AddI64(dataStart, next)
	switch {
	case !ok || end > size:
		return nil, fail(file, size, "", "", ErrTruncated,
			fmt.Sprintf("data section of %d bytes from offset %d passes file size %d", next, dataStart, size))
	case end < size:
		return nil, fail(file, end, "", "", ErrTrailingBytes,
			fmt.Sprintf("%d extra bytes, file size %d", size-end, size))
	}
	return lay, nil
}
