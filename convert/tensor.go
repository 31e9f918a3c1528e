package convert

import (
	"fmt"
	"io"
	"sync"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/quantize"
)

// chunkElems is the number of elements one step of a tensor's WriteTo
// reads, converts and writes (1 MiB as float32): the whole working memory of
// a conversion, whatever the tensor's size (a single row longer than this is
// done in one step).
const chunkElems = 1 << 18

// rowTensor is the lazy Data of one converted tensor: rows of the source
// tensor, in the order rowMap gives, decoded from one dtype and encoded in
// another. A tensor without rowMap is processed as a flat run of blocks.
type rowTensor struct {
	src    formats.Source
	name   string // the source tensor
	from   formats.DType
	to     formats.DType
	rows   int64
	cols   int64 // elements per row: a whole number of from's blocks
	rowMap func(out int64) int64
}

var _ io.WriterTo = (*rowTensor)(nil)

// newRowTensor plans a tensor of shape with rows permuted by rowMap (nil:
// kept) and cast from → to. For a permuted 1-D tensor (a bias) each row is
// one element.
func newRowTensor(src formats.Source, ti formats.TensorInfo, to formats.DType, rowMap func(int64) int64) (*rowTensor, error) {
	n, ok := ti.NumElements()
	if !ok {
		return nil, fmt.Errorf("convert: tensor %q: bad shape %v: %w", ti.Name, ti.Shape, formats.ErrFormat)
	}
	t := &rowTensor{src: src, name: ti.Name, from: ti.DType, to: to, rowMap: rowMap}
	bs := ti.DType.BlockSize()
	switch {
	case rowMap == nil:
		t.rows, t.cols = n/bs, bs
	case len(ti.Shape) == 1:
		t.rows, t.cols = n, 1
	default:
		t.cols = ti.Shape[len(ti.Shape)-1]
		if t.cols > 0 {
			t.rows = n / t.cols
		}
	}
	if t.cols%bs != 0 {
		return nil, fmt.Errorf("convert: tensor %q: rows of %d elements are not whole %v blocks: %w", ti.Name, t.cols, ti.DType, formats.ErrFormat)
	}
	return t, nil
}

// rowBytes is the size of one row of cols elements in dtype d.
func rowBytes(d formats.DType, cols int64) int64 { return cols / d.BlockSize() * d.BlockBytes() }

type buffers struct {
	src, dst []byte
	vals     []float32
}

var bufPool = sync.Pool{New: func() any { return &buffers{} }}

func grow[T any](b []T, n int64) []T {
	if int64(cap(b)) < n {
		return make([]T, n)
	}
	return b[:n]
}

// WriteTo streams the converted tensor into w, a chunk of rows at a time.
func (t *rowTensor) WriteTo(w io.Writer) (int64, error) {
	sec, err := t.src.Section(t.name)
	if err != nil {
		return 0, err
	}
	var mapped []byte
	if bs, ok := t.src.(formats.ByteSource); ok {
		if b, err := bs.Bytes(t.name); err == nil {
			mapped = b
		}
	}
	if mapped != nil && t.rowMap == nil && t.from == t.to {
		return writeSlices(w, mapped)
	}
	srcRow, dstRow := rowBytes(t.from, t.cols), rowBytes(t.to, t.cols)
	per := max(1, chunkElems/max(t.cols, 1))
	buf := bufPool.Get().(*buffers)
	defer bufPool.Put(buf)
	var written int64
	for r0 := int64(0); r0 < t.rows; r0 += per {
		nr := min(per, t.rows-r0)
		in, err := t.gather(buf, sec, mapped, r0, nr, srcRow)
		if err != nil {
			return written, err
		}
		out := in
		if t.from != t.to {
			buf.vals = grow(buf.vals, nr*t.cols)
			if t.from.Quantized() {
				err = quantize.DequantizeGGML(t.from, buf.vals, in)
			} else {
				err = quantize.ToFloat32(buf.vals, in, t.from)
			}
			if err != nil {
				return written, fmt.Errorf("convert: tensor %q: %w", t.name, err)
			}
			buf.dst = grow(buf.dst, nr*dstRow)
			if err := quantize.FromFloat32(buf.dst, buf.vals, t.to); err != nil {
				return written, fmt.Errorf("convert: tensor %q: %w", t.name, err)
			}
			out = buf.dst
		}
		n, err := w.Write(out)
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// gather returns the source bytes of output rows r0 … r0+nr-1: a slice of
// the mapping when the rows are contiguous there, else a copy in buf.src.
func (t *rowTensor) gather(buf *buffers, sec *io.SectionReader, mapped []byte, r0, nr, srcRow int64) ([]byte, error) {
	if t.rowMap == nil {
		if mapped != nil {
			return mapped[r0*srcRow : (r0+nr)*srcRow], nil
		}
		buf.src = grow(buf.src, nr*srcRow)
		if _, err := sec.ReadAt(buf.src, r0*srcRow); err != nil {
			return nil, fmt.Errorf("convert: read tensor %q: %w", t.name, err)
		}
		return buf.src, nil
	}
	buf.src = grow(buf.src, nr*srcRow)
	for i := int64(0); i < nr; i++ {
		from := t.rowMap(r0+i) * srcRow
		dst := buf.src[i*srcRow : (i+1)*srcRow]
		if mapped != nil {
			copy(dst, mapped[from:from+srcRow])
		} else if _, err := sec.ReadAt(dst, from); err != nil {
			return nil, fmt.Errorf("convert: read tensor %q: %w", t.name, err)
		}
	}
	return buf.src, nil
}

// directSlice is how much of a mapped tensor one Write passes on when no
// conversion is needed: large enough that buffered writers pass it straight
// to the file, small enough for progress reports.
const directSlice = 16 << 20

// writeSlices writes mapped bytes unchanged, without an intermediate copy.
func writeSlices(w io.Writer, b []byte) (int64, error) {
	var written int64
	for len(b) > 0 {
		k := min(len(b), directSlice)
		n, err := w.Write(b[:k])
		written += int64(n)
		if err != nil {
			return written, err
		}
		b = b[k:]
	}
	return written, nil
}

// plannedTensor is one output tensor of a conversion: ti's data cast to
// `to`, with its rows reordered by the Q/K permutation perm (head counts
// nHead, nHeadKV) when it has one; row maps output rows to input rows
// (QKRows.GGUFRow for GGUF → HF, QKRows.HFRow for HF → GGUF).
func plannedTensor(src formats.Source, ti formats.TensorInfo, name string, to formats.DType, perm arch.Permutation, nHead, nHeadKV int64, row func(arch.QKRows, int64) int64) (formats.Tensor, error) {
	var rowMap func(int64) int64
	if perm != arch.NoPermutation {
		if len(ti.Shape) == 0 || len(ti.Shape) > 2 {
			return formats.Tensor{}, fmt.Errorf("convert: tensor %q: cannot permute shape %v: %w", ti.Name, ti.Shape, formats.ErrFormat)
		}
		q, err := arch.NewQKRows(ti.Shape[0], perm.Heads(nHead, nHeadKV))
		if err != nil {
			return formats.Tensor{}, fmt.Errorf("convert: tensor %q: %v: %w", ti.Name, err, formats.ErrFormat)
		}
		rowMap = func(r int64) int64 { return row(q, r) }
	}
	rt, err := newRowTensor(src, ti, to, rowMap)
	if err != nil {
		return formats.Tensor{}, err
	}
	size, ok := formats.DataSize(to, ti.Shape)
	if !ok {
		return formats.Tensor{}, fmt.Errorf("convert: tensor %q: bad shape %v: %w", ti.Name, ti.Shape, formats.ErrFormat)
	}
	return formats.Tensor{
		TensorInfo: formats.TensorInfo{Name: name, DType: to, Shape: append([]int64(nil), ti.Shape...), Size: size},
		Data:       rt,
	}, nil
}
