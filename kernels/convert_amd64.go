//go:build !noasm

package kernels

import "unsafe"

// Assembly entry points (convert_amd64.s). They trust their arguments: n
// values are read and written, n > 0.

//go:noescape
func f16ToF32AVX512(dst *float32, src *uint16, n int)

//go:noescape
func f16ToF32AVX2(dst *float32, src *uint16, n int)

//go:noescape
func f32ToF16AVX512(dst *uint16, src *float32, n int)

//go:noescape
func f32ToF16AVX2(dst *uint16, src *float32, n int)

//go:noescape
func bf16ToF32AVX512(dst *float32, src *uint16, n int)

//go:noescape
func bf16ToF32AVX2(dst *float32, src *uint16, n int)

//go:noescape
func f32ToBF16AVX512(dst *uint16, src *float32, n int)

//go:noescape
func f32ToBF16AVX2(dst *uint16, src *float32, n int)

// u16 views little-endian bytes as uint16 values (amd64 is little-endian
// and tolerates unaligned loads).
func u16(b []byte) []uint16 {
	if len(b) < 2 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}

func f16ToF32(dst []float32, src []uint16) { f16ToF32At(dst, src, level()) }

func f16ToF32At(dst []float32, src []uint16, lvl feature) {
	n := len(src)
	if n == 0 {
		return
	}
	switch lvl {
	case featAVX512:
		f16ToF32AVX512(&dst[0], &src[0], n)
	case featAVX2:
		m := n &^ 7
		if m > 0 {
			f16ToF32AVX2(&dst[0], &src[0], m)
		}
		f16ToF32Generic(dst[m:n], src[m:])
	default:
		f16ToF32Generic(dst, src)
	}
}

func f32ToF16(dst []uint16, src []float32) { f32ToF16At(dst, src, level()) }

func f32ToF16At(dst []uint16, src []float32, lvl feature) {
	n := len(src)
	if n == 0 {
		return
	}
	switch lvl {
	case featAVX512:
		f32ToF16AVX512(&dst[0], &src[0], n)
	case featAVX2:
		m := n &^ 7
		if m > 0 {
			f32ToF16AVX2(&dst[0], &src[0], m)
		}
		f32ToF16Generic(dst[m:n], src[m:])
	default:
		f32ToF16Generic(dst, src)
	}
}

func bf16ToF32(dst []float32, src []uint16) { bf16ToF32At(dst, src, level()) }

func bf16ToF32At(dst []float32, src []uint16, lvl feature) {
	n := len(src)
	if n == 0 {
		return
	}
	switch lvl {
	case featAVX512:
		bf16ToF32AVX512(&dst[0], &src[0], n)
	case featAVX2:
		m := n &^ 7
		if m > 0 {
			bf16ToF32AVX2(&dst[0], &src[0], m)
		}
		bf16ToF32Generic(dst[m:n], src[m:])
	default:
		bf16ToF32Generic(dst, src)
	}
}

func f32ToBF16(dst []uint16, src []float32) { f32ToBF16At(dst, src, level()) }

func f32ToBF16At(dst []uint16, src []float32, lvl feature) {
	n := len(src)
	if n == 0 {
		return
	}
	switch lvl {
	case featAVX512:
		f32ToBF16AVX512(&dst[0], &src[0], n)
	case featAVX2:
		m := n &^ 15
		if m > 0 {
			f32ToBF16AVX2(&dst[0], &src[0], m)
		}
		f32ToBF16Generic(dst[m:n], src[m:])
	default:
		f32ToBF16Generic(dst, src)
	}
}

func f16BytesToF32(dst []float32, src []byte)  { f16ToF32(dst, u16(src)) }
func bf16BytesToF32(dst []float32, src []byte) { bf16ToF32(dst, u16(src)) }
func f32ToF16Bytes(dst []byte, src []float32)  { f32ToF16(u16(dst), src) }
func f32ToBF16Bytes(dst []byte, src []float32) { f32ToBF16(u16(dst), src) }

func f16BytesToF32At(dst []float32, src []byte, lvl feature)  { f16ToF32At(dst, u16(src), lvl) }
func bf16BytesToF32At(dst []float32, src []byte, lvl feature) { bf16ToF32At(dst, u16(src), lvl) }
