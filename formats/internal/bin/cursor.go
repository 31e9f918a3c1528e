package bin

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
)

// ErrShort is returned when a read would pass the end of the input.
var ErrShort = errors.New("unexpected end of data")

// chunk is the largest allocation made ahead of reading; longer reads grow
// their buffer as the bytes arrive, so a lying length costs at most the
// bytes that really exist.
const chunk = 10 << 20

// Cursor reads little-endian values sequentially from an io.ReaderAt of
// known size. Every read first checks the bytes that remain, so no
// allocation is ever sized by an unchecked length. A Cursor buffers its
// input in small windows; it is not safe for concurrent use.
type Cursor struct {
	r       io.ReaderAt
	size    int64
	off     int64
	buf     []byte // window of input starting at bufOff
	bufOff  int64
	scratch [8]byte
}

// NewCursor returns a cursor at offset off of r, which holds size bytes.
func NewCursor(r io.ReaderAt, size, off int64) *Cursor {
	return &Cursor{r: r, size: size, off: off, bufOff: -1}
}

// Offset is the position of the next byte to be read.
func (c *Cursor) Offset() int64 { return c.off }

// Size is the total input size.
func (c *Cursor) Size() int64 { return c.size }

// Remaining is the number of unread bytes.
func (c *Cursor) Remaining() int64 {
	if c.off >= c.size {
		return 0
	}
	return c.size - c.off
}

const window = 64 << 10

// peek returns the next n (≤ window) bytes without advancing.
func (c *Cursor) peek(n int) ([]byte, error) {
	if int64(n) > c.Remaining() {
		return nil, ErrShort
	}
	if c.bufOff >= 0 && c.off >= c.bufOff && c.off+int64(n) <= c.bufOff+int64(len(c.buf)) {
		s := c.off - c.bufOff
		return c.buf[s : s+int64(n)], nil
	}
	w := int64(window)
	if w > c.Remaining() {
		w = c.Remaining()
	}
	if cap(c.buf) < int(w) {
		c.buf = make([]byte, w)
	}
	c.buf = c.buf[:w]
	m, err := c.r.ReadAt(c.buf, c.off)
	if m < int(w) {
		if err == nil || err == io.EOF {
			err = ErrShort
		}
		c.bufOff = -1
		return nil, err
	}
	c.bufOff = c.off
	return c.buf[:n], nil
}

func (c *Cursor) fixed(n int) ([]byte, error) {
	b, err := c.peek(n)
	if err != nil {
		return nil, err
	}
	c.off += int64(n)
	return b, nil
}

// U8 reads one byte.
func (c *Cursor) U8() (uint8, error) {
	b, err := c.fixed(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// U16 reads a little-endian uint16.
func (c *Cursor) U16() (uint16, error) {
	b, err := c.fixed(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

// U32 reads a little-endian uint32.
func (c *Cursor) U32() (uint32, error) {
	b, err := c.fixed(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// U64 reads a little-endian uint64.
func (c *Cursor) U64() (uint64, error) {
	b, err := c.fixed(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// F32 reads a little-endian IEEE float32.
func (c *Cursor) F32() (float32, error) {
	v, err := c.U32()
	return math.Float32frombits(v), err
}

// F64 reads a little-endian IEEE float64.
func (c *Cursor) F64() (float64, error) {
	v, err := c.U64()
	return math.Float64frombits(v), err
}

// Skip advances n bytes, failing if fewer remain.
func (c *Cursor) Skip(n int64) error {
	if n < 0 || n > c.Remaining() {
		return ErrShort
	}
	c.off += n
	return nil
}

// Bytes reads n bytes into a new slice. n is checked against the remaining
// input before anything is allocated, and reads above a chunk grow the
// buffer as they go.
func (c *Cursor) Bytes(n uint64) ([]byte, error) {
	if n > uint64(c.Remaining()) {
		return nil, ErrShort
	}
	if n <= window {
		b, err := c.fixed(int(n))
		if err != nil {
			return nil, err
		}
		out := make([]byte, n)
		copy(out, b)
		return out, nil
	}
	out, err := ReadDataAt(c.r, n, c.off)
	if err != nil {
		return nil, err
	}
	c.off += int64(n)
	return out, nil
}

// ReadDataAt reads n bytes at off from r. Up to one chunk is allocated up
// front; beyond that the buffer grows as data arrives, so a bogus n fails
// with ErrShort after reading what exists instead of allocating n bytes.
func ReadDataAt(r io.ReaderAt, n uint64, off int64) ([]byte, error) {
	if int64(n) < 0 || off < 0 {
		return nil, ErrShort
	}
	if n <= chunk {
		buf := make([]byte, n)
		m, err := r.ReadAt(buf, off)
		if uint64(m) < n {
			if err == nil || err == io.EOF {
				err = ErrShort
			}
			return nil, err
		}
		return buf, nil
	}
	var out []byte
	for read := uint64(0); read < n; {
		k := n - read
		if k > chunk {
			k = chunk
		}
		start := len(out)
		out = append(out, make([]byte, k)...)
		m, err := r.ReadAt(out[start:], off+int64(read))
		if uint64(m) < k {
			if err == nil || err == io.EOF {
				err = ErrShort
			}
			return nil, err
		}
		read += k
	}
	return out, nil
}
