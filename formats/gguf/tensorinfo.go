package gguf

import (
	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/internal/bin"
)

// offsetField is a tensor's stored offset and where it sits in the file;
// the layout pass checks it once all infos are read.
type offsetField struct {
	raw uint64
	at  int64
}

// tensorInfos reads n tensor infos into h (PARSER-SAFETY.md §2.10–2.12).
// The count was bounded by the remaining bytes before the KV pairs; it is
// bounded again here, by what remains after them.
func (d *decoder) tensorInfos(h *header, n int64, base string) ([]offsetField, error) {
	if need, ok := bin.MulI64(n, minTensorInfoBytes); !ok || need > d.c.Remaining() {
		return nil, d.fail(d.c.Offset(), ErrCountTooLarge, "%d tensor infos need at least %d bytes each, %d remain", n, minTensorInfoBytes, d.c.Remaining())
	}
	if _, ok := bin.ToInt(uint64(n)); !ok {
		return nil, d.fail(d.c.Offset(), ErrTooManyTensors, "%d tensors do not fit this platform's int", n)
	}
	h.tensors = make([]formats.TensorInfo, 0, n)
	h.ggml = make([]uint32, 0, n)
	fields := make([]offsetField, 0, n)
	seen := make(map[string]struct{}, n)
	for range n {
		ti, id, f, err := d.tensorInfo(base)
		if err != nil {
			return nil, annotate(err, "", ti.Name)
		}
		if _, dup := seen[ti.Name]; dup {
			return nil, annotate(d.fail(f.nameAt, ErrDuplicateTensor, "name listed twice"), "", ti.Name)
		}
		seen[ti.Name] = struct{}{}
		h.tensors = append(h.tensors, ti)
		h.ggml = append(h.ggml, id)
		fields = append(fields, f.offset)
	}
	return fields, nil
}

// infoFields locates the fields of one tensor info for later errors.
type infoFields struct {
	nameAt int64
	offset offsetField
}

// tensorInfo reads one tensor info: name, n_dims, ne[n_dims], ggml type,
// offset. It returns the name even on error so the caller can report it.
func (d *decoder) tensorInfo(base string) (formats.TensorInfo, uint32, infoFields, error) {
	var ti formats.TensorInfo
	var f infoFields
	name, nameAt, err := d.str("tensor name")
	if err != nil {
		return ti, 0, f, err
	}
	ti.Name, ti.File, f.nameAt = name, base, nameAt
	if len(name) >= maxNameLen {
		return ti, 0, f, d.fail(nameAt, ErrNameTooLong, "%d bytes, must be under %d", len(name), maxNameLen)
	}
	nd, ndAt, err := d.u32("n_dims")
	if err != nil {
		return ti, 0, f, err
	}
	if nd > maxDims {
		return ti, 0, f, d.fail(ndAt, ErrTooManyDims, "n_dims %d, at most %d", nd, maxDims)
	}
	if int(nd) > d.lim.MaxDims {
		return ti, 0, f, d.fail(ndAt, ErrDimsLimit, "n_dims %d, limit %d", nd, d.lim.MaxDims)
	}
	var ne [maxDims]int64
	for j := range int(nd) {
		v, at, err := d.u64("dimension")
		if err != nil {
			return ti, 0, f, err
		}
		x, ok := bin.ToInt64(v)
		if !ok {
			return ti, 0, f, d.fail(at, ErrBadDim, "ne[%d] = %d", j, int64(v))
		}
		ne[j] = x
	}
	id, idAt, err := d.u32("ggml type")
	if err != nil {
		return ti, 0, f, err
	}
	dt, ok := formats.DTypeFromGGML(id)
	if !ok {
		return ti, 0, f, d.fail(idAt, ErrUnknownType, "type id %d", id)
	}
	ti.DType = dt
	ti.Shape = make([]int64, nd)
	for j := range int(nd) {
		ti.Shape[int(nd)-1-j] = ne[j]
	}
	if ti.Size, err = d.dataSize(dt, ne[:nd], ndAt); err != nil {
		return ti, 0, f, err
	}
	raw, at, err := d.u64("offset")
	if err != nil {
		return ti, 0, f, err
	}
	f.offset = offsetField{raw: raw, at: at}
	return ti, id, f, nil
}

// dataSize is the byte size of a tensor of type dt with dims ne (ggml
// order), failing when ne[0] is not a whole number of blocks or a product
// overflows int64 (PARSER-SAFETY.md §2.11–2.12).
func (d *decoder) dataSize(dt formats.DType, ne []int64, ndAt int64) (int64, error) {
	n, ok := bin.Product(ne)
	if !ok {
		return 0, d.fail(ndAt, ErrOverflow, "element count of %v overflows int64", ne)
	}
	ne0 := int64(1)
	if len(ne) > 0 {
		ne0 = ne[0]
	}
	bs := dt.BlockSize()
	if ne0%bs != 0 {
		return 0, d.fail(ndAt+4, ErrBlockMisaligned, "ne[0] = %d, %v blocks hold %d", ne0, dt, bs)
	}
	size, ok := bin.MulI64(n/bs, dt.BlockBytes())
	if !ok {
		return 0, d.fail(ndAt, ErrOverflow, "byte size of %d %v elements overflows int64", n, dt)
	}
	return size, nil
}
