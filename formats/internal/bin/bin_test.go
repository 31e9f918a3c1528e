package bin

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestChecked(t *testing.T) {
	if _, ok := MulU64(1<<32, 1<<32); ok {
		t.Error("MulU64 overflow not detected")
	}
	if v, ok := MulU64(1<<31, 1<<32); !ok || v != 1<<63 {
		t.Error("MulU64")
	}
	if _, ok := AddU64(math.MaxUint64, 1); ok {
		t.Error("AddU64 overflow")
	}
	if _, ok := MulI64(1<<32, 1<<31); ok {
		t.Error("MulI64 past MaxInt64")
	}
	if _, ok := MulI64(-1, 2); ok {
		t.Error("MulI64 negative")
	}
	if _, ok := ToInt64(1 << 63); ok {
		t.Error("ToInt64")
	}
	if v, ok := AlignUp(33, 32); !ok || v != 64 {
		t.Error("AlignUp")
	}
	if _, ok := AlignUp(math.MaxInt64-1, 32); ok {
		t.Error("AlignUp overflow")
	}
	if v, ok := Product(nil); !ok || v != 1 {
		t.Error("Product of no dims is 1")
	}
}

func TestCursorBounds(t *testing.T) {
	data := []byte{1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 'h', 'i'}
	c := NewCursor(bytes.NewReader(data), int64(len(data)), 0)
	if v, _ := c.U16(); v != 1 {
		t.Fatal("U16")
	}
	if v, _ := c.U32(); v != 2 {
		t.Fatal("U32")
	}
	if v, _ := c.U64(); v != 3 {
		t.Fatal("U64")
	}
	if _, err := c.Bytes(3); !errors.Is(err, ErrShort) {
		t.Fatal("Bytes past end must fail before allocating")
	}
	if b, _ := c.Bytes(2); string(b) != "hi" {
		t.Fatal("Bytes")
	}
	if _, err := c.U8(); !errors.Is(err, ErrShort) {
		t.Fatal("U8 at end")
	}
	// A lying length far beyond the input fails without allocating it.
	c = NewCursor(bytes.NewReader(data), int64(len(data)), 0)
	if _, err := c.Bytes(1 << 62); !errors.Is(err, ErrShort) {
		t.Fatal("huge Bytes")
	}
}

// A reader that claims a larger size than it holds: ReadDataAt must grow
// chunk by chunk and fail with ErrShort, never allocate the claimed size.
func TestReadDataAtGrowsWithInput(t *testing.T) {
	r := bytes.NewReader(make([]byte, 3*chunk/2))
	if _, err := ReadDataAt(r, 1<<40, 0); !errors.Is(err, ErrShort) {
		t.Fatalf("err = %v", err)
	}
	b, err := ReadDataAt(r, 3*chunk/2, 0)
	if err != nil || len(b) != 3*chunk/2 {
		t.Fatal("full read")
	}
}
