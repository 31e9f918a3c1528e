package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sync/atomic"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/internal/bin"
	"github.com/qtool-dev/qtool/formats/mmap"
)

// Options configure a reader. The zero value uses formats.DefaultLimits.
type Options struct {
	// Limits bound the header: MaxHeaderBytes (N), MaxTensors and MaxDims
	// apply; zero fields take their defaults.
	Limits formats.Limits
}

// Reader is a validated safetensors file. A *Reader that exists passed
// every check of PARSER-SAFETY §1; its accessors never report layout
// errors. It is safe for concurrent use: every Section is a private reader.
type Reader struct {
	r      io.ReaderAt
	size   int64
	name   string     // as given to Open or NewReader, used in errors
	mm     *mmap.File // set when Open mapped the file; owned by the Reader
	closed atomic.Bool

	headerLen int64 // N, the JSON header length
	tensors   []formats.TensorInfo
	index     map[string]int
	meta      *formats.Meta
	metaKeys  []string
	metaVals  []string
	keyOrder  []string
}

var (
	_ formats.Source     = (*Reader)(nil)
	_ formats.ByteSource = (*Reader)(nil)
)

// Open memory-maps path read-only and validates it completely. Close
// unmaps it. Bytes then returns zero-copy slices of the mapping.
func Open(path string) (*Reader, error) { return OpenWith(path, Options{}) }

// OpenWith is Open with explicit options.
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
	r.mm = m
	return r, nil
}

// NewReader validates the safetensors file of size bytes readable from r.
// name labels errors and gives TensorInfo.File its base name. The Reader
// does not own r: Close does not close it, and Bytes copies (r is not a
// mapping).
func NewReader(r io.ReaderAt, size int64, name string, opts Options) (*Reader, error) {
	lim := opts.Limits.WithDefaults()
	if size < 0 {
		return nil, fmt.Errorf("safetensors: %s: negative size %d", name, size)
	}
	if size < 8 {
		return nil, fail(name, 0, "", "", ErrHeaderTooSmall, fmt.Sprintf("file size %d", size))
	}
	var prefix [8]byte
	if m, err := r.ReadAt(prefix[:], 0); m < len(prefix) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("safetensors: %s: read header length: %w", name, err)
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	// §1.2 before §1.3, as the reference does: the limit is checked on the
	// raw value, so no arithmetic or allocation ever sees a huge N.
	if n > math.MaxInt64 || int64(n) > lim.MaxHeaderBytes {
		return nil, fail(name, 0, "", "", ErrHeaderTooLarge,
			fmt.Sprintf("N = %d, limit %d", n, lim.MaxHeaderBytes))
	}
	dataStart, ok := bin.AddI64(8, int64(n))
	if !ok || dataStart > size {
		return nil, fail(name, 0, "", "", ErrInvalidHeaderLength,
			fmt.Sprintf("8 + N = 8 + %d, file size %d", n, size))
	}
	hdr, err := bin.ReadDataAt(r, n, 8)
	if err != nil {
		if errors.Is(err, bin.ErrShort) {
			return nil, fail(name, 8, "", "", ErrTruncated, "header shorter than N")
		}
		return nil, fmt.Errorf("safetensors: %s: read header: %w", name, err)
	}
	h, err := parseHeader(hdr, name, lim)
	if err != nil {
		return nil, err
	}
	lay, err := validateLayout(h, dataStart, size, name, filepath.Base(name))
	if err != nil {
		return nil, err
	}
	meta := formats.NewMeta()
	for i, k := range h.metaKeys {
		meta.Set(k, formats.ValString(h.metaVals[i]))
	}
	return &Reader{
		r:         r,
		size:      size,
		name:      name,
		headerLen: int64(n),
		tensors:   lay.tensors,
		index:     lay.index,
		meta:      meta,
		metaKeys:  h.metaKeys,
		metaVals:  h.metaVals,
		keyOrder:  h.keyOrder,
	}, nil
}

// Name is the path or name the reader was opened with.
func (r *Reader) Name() string { return r.name }

// Size is the file size in bytes.
func (r *Reader) Size() int64 { return r.size }

// HeaderLen is N, the byte length of the JSON header (padding included).
func (r *Reader) HeaderLen() int64 { return r.headerLen }

// DataStart is the absolute offset of the data section, 8 + N.
func (r *Reader) DataStart() int64 { return 8 + r.headerLen }

// Mapped reports whether the reader serves Bytes from a memory mapping
// (true after Open) rather than by reading (NewReader).
func (r *Reader) Mapped() bool { return r.mm != nil }

// Tensors lists the tensors in data-offset order (zero-size tensors sharing
// an offset in header order). Offset is absolute, File the base name of the
// file. The slice must not be modified.
func (r *Reader) Tensors() []formats.TensorInfo { return r.tensors }

// Tensor returns the description of one tensor.
func (r *Reader) Tensor(name string) (formats.TensorInfo, bool) {
	i, ok := r.index[name]
	if !ok {
		return formats.TensorInfo{}, false
	}
	return r.tensors[i], true
}

// Meta returns __metadata__ as string values in header order. The result
// is a copy the caller may change.
func (r *Reader) Meta() *formats.Meta { return r.meta.Clone() }

// Metadata returns __metadata__ as a new map (empty, not nil, when the file
// has none).
func (r *Reader) Metadata() map[string]string {
	m := make(map[string]string, len(r.metaKeys))
	for i, k := range r.metaKeys {
		m[k] = r.metaVals[i]
	}
	return m
}

// HeaderKeyOrder lists the header's top-level keys as they appear in the
// file, "__metadata__" included where present.
func (r *Reader) HeaderKeyOrder() []string { return append([]string(nil), r.keyOrder...) }

// Section returns a private reader over one tensor's bytes.
func (r *Reader) Section(name string) (*io.SectionReader, error) {
	t, ok := r.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: %q: %w", r.name, name, ErrNotFound)
	}
	return io.NewSectionReader(r.r, t.Offset, t.Size), nil
}

// Bytes returns one tensor's bytes. After Open they are a zero-copy,
// read-only slice of the mapping, valid until Close; the data are not
// aligned to their element size in general (the format does not promise
// it). Touching the slice after the file was truncated underneath can
// fault; Section is the fault-safe path. After NewReader, Bytes reads a
// fresh copy.
func (r *Reader) Bytes(name string) ([]byte, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	t, ok := r.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: %q: %w", r.name, name, ErrNotFound)
	}
	if r.mm != nil {
		b := r.mm.Bytes()
		if t.Offset+t.Size > int64(len(b)) { // validated at open; a guard only
			return nil, fmt.Errorf("%s: %q: %w", r.name, name, mmap.ErrFault)
		}
		return b[t.Offset : t.Offset+t.Size : t.Offset+t.Size], nil
	}
	b, err := bin.ReadDataAt(r.r, uint64(t.Size), t.Offset)
	if err != nil {
		return nil, fmt.Errorf("%s: read %q: %w", r.name, name, err)
	}
	return b, nil
}

// Mapping is the file mapping Open made, nil for a Reader from NewReader.
func (r *Reader) Mapping() *mmap.File { return r.mm }

// Close releases the mapping made by Open; it does nothing for a reader
// made by NewReader. It is safe to call more than once.
func (r *Reader) Close() error {
	if r.closed.Swap(true) || r.mm == nil {
		return nil
	}
	return r.mm.Close()
}
