// Package bin holds the low-level helpers every qtool parser shares: checked
// size arithmetic and a bounded little-endian cursor over an io.ReaderAt that
// never allocates more than the bytes that remain in the input.
package bin

import (
	"math"
	"math/bits"
)

// MulU64 returns a·b and false when the product overflows 64 bits.
func MulU64(a, b uint64) (uint64, bool) {
	hi, lo := bits.Mul64(a, b)
	return lo, hi == 0
}

// AddU64 returns a+b and false when the sum overflows 64 bits.
func AddU64(a, b uint64) (uint64, bool) {
	s, c := bits.Add64(a, b, 0)
	return s, c == 0
}

// MulI64 returns a·b for non-negative a and b, false when either is negative
// or the product exceeds math.MaxInt64.
func MulI64(a, b int64) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	p, ok := MulU64(uint64(a), uint64(b))
	if !ok || p > math.MaxInt64 {
		return 0, false
	}
	return int64(p), true
}

// AddI64 returns a+b for non-negative a and b, false on a negative operand
// or an overflow past math.MaxInt64.
func AddI64(a, b int64) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	s, ok := AddU64(uint64(a), uint64(b))
	if !ok || s > math.MaxInt64 {
		return 0, false
	}
	return int64(s), true
}

// ToInt64 converts v to int64, false when v exceeds math.MaxInt64.
func ToInt64(v uint64) (int64, bool) {
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// ToInt converts v to int, false when v does not fit (32-bit platforms).
func ToInt(v uint64) (int, bool) {
	if v > uint64(math.MaxInt) {
		return 0, false
	}
	return int(v), true
}

// AlignUp rounds v up to a multiple of align (a power of two or any
// positive value), false on overflow or a non-positive alignment.
func AlignUp(v, align int64) (int64, bool) {
	if align <= 0 || v < 0 {
		return 0, false
	}
	r := v % align
	if r == 0 {
		return v, true
	}
	return AddI64(v, align-r)
}

// Product multiplies dims with overflow checks; an empty list gives 1 (a
// scalar). Negative dims fail.
func Product(dims []int64) (int64, bool) {
	p := int64(1)
	for _, d := range dims {
		var ok bool
		if p, ok = MulI64(p, d); !ok {
			return 0, false
		}
	}
	return p, true
}
