package gguf

import (
	"errors"
	"fmt"
	"io"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/internal/bin"
)

// decoder reads the GGUF header fields through a bounded cursor and turns
// every failure into a located *formats.FormatError. Each read first checks
// the bytes that remain (PARSER-SAFETY.md §2.4); nothing is allocated from a
// length that has not passed the limits and the remaining-bytes check.
type decoder struct {
	c    *bin.Cursor
	file string
	opts Options
	lim  formats.Limits
}

func newDecoder(r io.ReaderAt, size int64, file string, opts Options) *decoder {
	return &decoder{
		c:    bin.NewCursor(r, size, 0),
		file: file,
		opts: opts,
		lim:  opts.Limits.WithDefaults(),
	}
}

// fail returns a located error for rule at byte offset off.
func (d *decoder) fail(off int64, rule error, format string, args ...any) *formats.FormatError {
	return errAt(d.file, off, rule, fmt.Sprintf(format, args...))
}

// readErr turns a cursor error while reading what at off into ErrTruncated,
// or keeps an I/O error (a fault of a mapped file, a failing disk) as the
// cause.
func (d *decoder) readErr(off int64, err error, what string) error {
	if errors.Is(err, bin.ErrShort) {
		return d.fail(off, ErrTruncated, "%s: need more bytes than the %d that remain", what, d.remainingAt(off))
	}
	return &formats.FormatError{File: d.file, Offset: off, Detail: "read " + what, Err: err}
}

func (d *decoder) remainingAt(off int64) int64 {
	if off >= d.c.Size() {
		return 0
	}
	return d.c.Size() - off
}

func (d *decoder) u8(what string) (uint8, int64, error) {
	off := d.c.Offset()
	v, err := d.c.U8()
	if err != nil {
		return 0, off, d.readErr(off, err, what)
	}
	return v, off, nil
}

func (d *decoder) u16(what string) (uint16, int64, error) {
	off := d.c.Offset()
	v, err := d.c.U16()
	if err != nil {
		return 0, off, d.readErr(off, err, what)
	}
	return v, off, nil
}

func (d *decoder) u32(what string) (uint32, int64, error) {
	off := d.c.Offset()
	v, err := d.c.U32()
	if err != nil {
		return 0, off, d.readErr(off, err, what)
	}
	return v, off, nil
}

func (d *decoder) u64(what string) (uint64, int64, error) {
	off := d.c.Offset()
	v, err := d.c.U64()
	if err != nil {
		return 0, off, d.readErr(off, err, what)
	}
	return v, off, nil
}

// bytes reads n bytes whose count has already been checked against the
// limits; the cursor checks it against the remaining input.
func (d *decoder) bytes(n uint64, what string) ([]byte, error) {
	off := d.c.Offset()
	b, err := d.c.Bytes(n)
	if err != nil {
		return nil, d.readErr(off, err, what)
	}
	return b, nil
}

// str reads a GGUF string (u64 length, bytes) and returns it with the
// offset of its length field. The length is checked against
// Limits.MaxStringLen and then against the remaining bytes before anything
// is allocated (PARSER-SAFETY.md §2.5). The bytes are kept as they are.
func (d *decoder) str(what string) (string, int64, error) {
	off := d.c.Offset()
	n, err := d.c.U64()
	if err != nil {
		return "", off, d.readErr(off, err, what+" length")
	}
	if n > uint64(d.lim.MaxStringLen) {
		return "", off, d.fail(off, ErrStringTooLong, "%s of %d bytes, limit %d", what, n, d.lim.MaxStringLen)
	}
	if n > uint64(d.c.Remaining()) {
		return "", off, d.fail(off, ErrTruncated, "%s of %d bytes, %d remain", what, n, d.c.Remaining())
	}
	if n == 0 {
		return "", off, nil
	}
	b, err := d.bytes(n, what)
	if err != nil {
		return "", off, err
	}
	return string(b), off, nil
}

// annotate fills in the key or tensor of a located error that lacks one.
func annotate(err error, key, tensor string) error {
	var fe *formats.FormatError
	if errors.As(err, &fe) {
		if fe.Key == "" {
			fe.Key = key
		}
		if fe.Tensor == "" {
			fe.Tensor = tensor
		}
	}
	return err
}
