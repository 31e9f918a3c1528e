package gguf

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/internal/bin"
	"github.com/qtool-dev/qtool/formats/mmap"
)

// Options control how strictly a file is read. The zero value is the
// default: DefaultLimits, nested arrays refused, ggml's leniency on keys
// and bools.
type Options struct {
	// Limits bound counts and lengths; zero fields take
	// formats.DefaultLimits.
	Limits formats.Limits
	// AllowNestedArrays reads arrays of arrays as []formats.Value (nested
	// no deeper than Limits.MaxNesting) instead of failing with
	// ErrNestedArray as ggml does. An inspector sets it.
	AllowNestedArrays bool
	// Strict also enforces the spec's recommendations that ggml does not:
	// keys in lower_snake_case dotted form (ErrBadKey) and bools stored as
	// 0 or 1 (ErrBadBool).
	Strict bool
}

// ErrNoTensor is returned by Section, Bytes and the per-tensor accessors
// for a name the file does not hold.
var ErrNoTensor = errors.New("gguf: no such tensor")

// Reader is an opened, fully validated GGUF file. It implements
// formats.Source and formats.ByteSource. All methods but Close are safe for
// concurrent use; each Section is a private reader.
type Reader struct {
	name string
	r    io.ReaderAt
	size int64
	mm   *mmap.File // the mapping Open made, nil from NewReader
	data []byte     // the mapped bytes, nil when not mapped
	h    *header
	idx  map[string]int
}

var (
	_ formats.Source     = (*Reader)(nil)
	_ formats.ByteSource = (*Reader)(nil)
)

// Open maps the file at path read-only and validates it with default
// Options.
func Open(path string) (*Reader, error) { return OpenWith(path, Options{}) }

// OpenWith maps the file at path read-only and validates it with opts.
// Close releases the mapping.
func OpenWith(path string, opts Options) (*Reader, error) {
	m, err := mmap.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(m, m.Len(), path, opts)
	if err != nil {
		m.Close()
		return nil, err
	}
	r.mm, r.data = m, m.Bytes()
	return r, nil
}

// NewReader validates the GGUF file of size bytes readable through r. name
// identifies it in errors; its base name becomes each tensor's File. The
// Reader does not own r: Close does not close it.
func NewReader(r io.ReaderAt, size int64, name string, opts Options) (*Reader, error) {
	base := ""
	if name != "" {
		base = filepath.Base(name)
	}
	h, err := parse(r, size, name, base, opts)
	if err != nil {
		return nil, err
	}
	idx := make(map[string]int, len(h.tensors))
	for i, t := range h.tensors {
		idx[t.Name] = i
	}
	return &Reader{name: name, r: r, size: size, h: h, idx: idx}, nil
}

// Close releases the mapping made by Open; it does nothing for a Reader
// made by NewReader. Slices returned by Bytes are invalid after Close.
func (r *Reader) Close() error {
	if r.mm == nil {
		return nil
	}
	err := r.mm.Close()
	r.mm, r.data = nil, nil
	return err
}

// Name is the path or name the Reader was opened with.
func (r *Reader) Name() string { return r.name }

// Size is the file size in bytes.
func (r *Reader) Size() int64 { return r.size }

// Version is the GGUF version, 2 or 3.
func (r *Reader) Version() uint32 { return r.h.version }

// Alignment is the data alignment: general.alignment, or 32.
func (r *Reader) Alignment() int64 { return r.h.alignment }

// TensorInfoEnd is the offset of the byte after the last tensor info (the
// end of the header proper).
func (r *Reader) TensorInfoEnd() int64 { return r.h.tensorInfoEnd }

// DataStart is the offset of the data section: TensorInfoEnd rounded up to
// the alignment. With no tensors it may equal the file size, or exceed it
// when the writer left out the final padding.
func (r *Reader) DataStart() int64 { return r.h.dataStart }

// Tensors lists the tensors in tensor-info order: Shape in numpy order (ne
// reversed, stored rank kept), Offset absolute in the file. The slice must
// not be modified.
func (r *Reader) Tensors() []formats.TensorInfo { return r.h.tensors }

// Meta is every metadata pair in file order with its exact type. It must
// not be modified; Clone it to edit.
func (r *Reader) Meta() *formats.Meta { return r.h.meta }

// Tensor returns the description of the named tensor.
func (r *Reader) Tensor(name string) (formats.TensorInfo, bool) {
	i, ok := r.idx[name]
	if !ok {
		return formats.TensorInfo{}, false
	}
	return r.h.tensors[i], true
}

// GGMLType is the ggml type id stored for the named tensor.
func (r *Reader) GGMLType(name string) (uint32, bool) {
	i, ok := r.idx[name]
	if !ok {
		return 0, false
	}
	return r.h.ggml[i], true
}

// Mapping is the file mapping Open made, nil for a Reader from NewReader.
func (r *Reader) Mapping() *mmap.File { return r.mm }

// RawOffset is the named tensor's offset as stored, relative to DataStart.
func (r *Reader) RawOffset(name string) (int64, bool) {
	i, ok := r.idx[name]
	if !ok {
		return 0, false
	}
	return r.h.rawOffsets[i], true
}

func (r *Reader) lookup(name string) (formats.TensorInfo, error) {
	t, ok := r.Tensor(name)
	if !ok {
		return t, fmt.Errorf("%s: %w: %q", r.name, ErrNoTensor, name)
	}
	return t, nil
}

// Section returns a private reader over the named tensor's bytes (padding
// excluded).
func (r *Reader) Section(name string) (*io.SectionReader, error) {
	t, err := r.lookup(name)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(r.r, t.Offset, t.Size), nil
}

// Bytes returns the named tensor's bytes. For a Reader made by Open it is
// a zero-copy slice of the read-only mapping, valid until Close, that must
// not be written to; otherwise the bytes are read into a new slice.
func (r *Reader) Bytes(name string) ([]byte, error) {
	t, err := r.lookup(name)
	if err != nil {
		return nil, err
	}
	if r.data != nil {
		end := t.Offset + t.Size
		return r.data[t.Offset:end:end], nil
	}
	b, err := bin.ReadDataAt(r.r, uint64(t.Size), t.Offset)
	if err != nil {
		return nil, fmt.Errorf("%s: read tensor %q: %w", r.name, name, err)
	}
	return b, nil
}
