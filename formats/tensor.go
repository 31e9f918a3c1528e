package formats

import (
	"io"

	"github.com/qtool-dev/qtool/formats/internal/bin"
)

// TensorInfo describes one stored tensor.
//
// Shape is in row-major (numpy / safetensors / PyTorch) order, outermost
// axis first: an HF Linear weight is [out_features, in_features]. GGUF
// stores dims innermost-first (ne[0] first); the GGUF reader reverses them,
// and keeps the stored rank (a GGUF [4,1] tensor is Shape [1,4]). A rank-0
// tensor (Shape empty) is a scalar with one element.
type TensorInfo struct {
	Name   string
	DType  DType
	Shape  []int64
	Offset int64 // absolute byte offset of the data in its file
	Size   int64 // bytes of data, padding excluded
	// File is the file holding the data, relative to the source's root
	// (the shard name in a sharded folder; the file name otherwise).
	File string
}

// NumElements is the product of Shape, false on overflow or negative dims.
func (t TensorInfo) NumElements() (int64, bool) { return bin.Product(t.Shape) }

// NumBytes is the storage size implied by Shape and DType, false on
// overflow or when the element count is not a whole number of blocks.
func (t TensorInfo) NumBytes() (int64, bool) { return DataSize(t.DType, t.Shape) }

// DataSize is the number of bytes a tensor of dtype d and shape holds: for
// block types the innermost dimension must be a multiple of the block size.
func DataSize(d DType, shape []int64) (int64, bool) {
	if !d.Valid() {
		return 0, false
	}
	n, ok := bin.Product(shape)
	if !ok {
		return 0, false
	}
	bs := d.BlockSize()
	if bs > 1 {
		inner := int64(1)
		if len(shape) > 0 {
			inner = shape[len(shape)-1]
		}
		if inner%bs != 0 {
			return 0, false
		}
	}
	return bin.MulI64(n/bs, d.BlockBytes())
}

// Tensor is a tensor to be written: its description and a lazy producer of
// exactly Size bytes. Casting, quantizing and merging happen inside
// Data.WriteTo, so a writer holds one tensor (or one block) at a time.
// Offset and File are ignored by writers, which plan their own layout.
type Tensor struct {
	TensorInfo
	Data io.WriterTo
}

// Source is a read-only collection of tensors and metadata: a safetensors
// file, a sharded Hugging Face folder, a GGUF file, or a test double.
// Everything it returns was validated when it was opened.
type Source interface {
	// Tensors lists the tensors in file order (shard order, then file
	// order, for sharded folders). The slice must not be modified.
	Tensors() []TensorInfo
	// Meta is the file's metadata (GGUF KVs; safetensors __metadata__ as
	// strings).
	Meta() *Meta
	// Section returns a private reader over one tensor's bytes.
	Section(name string) (*io.SectionReader, error)
	// Close releases what Open acquired.
	Close() error
}

// ByteSource is implemented by memory-mapped sources: Bytes returns a
// tensor's bytes without copying. The slice is valid until Close and must
// not be written to.
type ByteSource interface {
	Bytes(name string) ([]byte, error)
}

// Lookup finds a tensor by name in a source's list.
func Lookup(src Source, name string) (TensorInfo, bool) {
	for _, t := range src.Tensors() {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// SectionWriter adapts a section of a source into a Tensor's Data: it copies
// the bytes unchanged, for a straight copy between formats.
type SectionWriter struct{ R *io.SectionReader }

// WriteTo copies the whole section to w.
func (s SectionWriter) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, io.NewSectionReader(s.R, 0, s.R.Size()))
}

// BytesWriter is a Tensor Data over bytes already in memory.
type BytesWriter []byte

// WriteTo writes the bytes to w.
func (b BytesWriter) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}
