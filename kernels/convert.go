package kernels

import (
	"encoding/binary"
	"math"
)

// Bulk conversions between float32 and the 16-bit float formats stored in
// checkpoints: IEEE binary16 (f16) and bfloat16 (bf16). Widening is exact;
// narrowing rounds to nearest, ties to even, overflow gives ±Inf, and a NaN
// stays a quiet NaN with its payload truncated. The results are bit-for-bit
// those of quantize.F16ToF32, quantize.F32ToF16 and quantize.F32ToBF16 (the
// scalar reference, checked on all 65536 half values and on special and
// random float32 by the tests). On amd64 the work is done by AVX-512 or
// AVX2+F16C assembly chosen by Features; the pure-Go loops below are used
// elsewhere, under the noasm build tag and by SetFeatures("generic").
//
// The byte-slice variants read and write little-endian values, as
// safetensors and GGUF store them. Every function converts len(src) values
// (len(src)/2 for a byte source) and panics if dst is shorter.

// F16ToF32 widens IEEE binary16 bit patterns: dst[i] = float32(src[i]).
func F16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	f16ToF32(dst, src)
}

// F32ToF16 rounds float32 values to binary16 (nearest, ties to even; the
// rounding of VCVTPS2PH with immediate 0).
func F32ToF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	f32ToF16(dst, src)
}

// BF16ToF32 widens bfloat16 bit patterns: dst[i] = src[i] << 16 as float32.
func BF16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	bf16ToF32(dst, src)
}

// F32ToBF16 rounds float32 values to bfloat16 (nearest, ties to even); a
// NaN keeps its sign and top payload bits and gets the quiet bit.
func F32ToBF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	f32ToBF16(dst, src)
}

// F16BytesToF32 widens little-endian binary16 values: len(src) must be
// even, and len(src)/2 values are written.
func F16BytesToF32(dst []float32, src []byte) {
	n := evenBytes(src)
	f16BytesToF32(dst[:n], src)
}

// BF16BytesToF32 widens little-endian bfloat16 values (len(src) even).
func BF16BytesToF32(dst []float32, src []byte) {
	n := evenBytes(src)
	bf16BytesToF32(dst[:n], src)
}

// F32ToF16Bytes writes src as little-endian binary16, 2·len(src) bytes.
func F32ToF16Bytes(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	f32ToF16Bytes(dst, src)
}

// F32ToBF16Bytes writes src as little-endian bfloat16, 2·len(src) bytes.
func F32ToBF16Bytes(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	f32ToBF16Bytes(dst, src)
}

func evenBytes(src []byte) int {
	if len(src)&1 != 0 {
		panic("kernels: odd byte count for 16-bit values")
	}
	return len(src) / 2
}

// f16Bits widens one binary16 bit pattern to float32 bits. A NaN gets the
// quiet bit (as VCVTPH2PS does); subnormals are m·2⁻²⁴, exact in float32.
func f16Bits(h uint16) uint32 {
	s := uint32(h&0x8000) << 16
	e := uint32(h>>10) & 0x1f
	m := uint32(h & 0x3ff)
	switch e {
	case 0x1f:
		if m == 0 {
			return s | 0x7f800000
		}
		return s | 0x7fc00000 | m<<13
	case 0:
		return s | math.Float32bits(float32(m)*(1.0/(1<<24)))
	}
	return s | (e+(127-15))<<23 | m<<13
}

// halfMagic is 0.5: |x| + 0.5 for |x| < 2⁻¹⁴ leaves round(|x|·2²⁴), ties
// to even, in the low mantissa bits of the sum.
const halfMagic = float32(0.5)

// f16Round narrows float32 bits to binary16, round to nearest even.
func f16Round(u uint32) uint16 {
	s := uint16(u>>16) & 0x8000
	a := u &^ (1 << 31)
	switch {
	case a > 0x7f800000: // NaN: quiet bit, payload truncated
		return s | 0x7e00 | uint16(a>>13)&0x3ff
	case a >= 0x477ff000: // ≥ 65520 (and Inf) rounds to Inf
		return s | 0x7c00
	case a >= 0x38800000: // normal result: round at bit 13, carry may bump the exponent
		a += 0xfff + (a>>13)&1
		return s | uint16((a-(127-15)<<23)>>13)
	}
	// Subnormal or zero result: the addition rounds |x|·2²⁴ to an integer
	// (1024 is the smallest normal, which encodes as itself).
	r := math.Float32frombits(a) + halfMagic
	return s | uint16(math.Float32bits(r)-math.Float32bits(halfMagic))
}

// bf16Round narrows float32 bits to bfloat16 (quantize.F32ToBF16's rule).
func bf16Round(u uint32) uint16 {
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// f16ToF32Generic is the reference for f16ToF32.
//
//	for i, h := range src { dst[i] = math.Float32frombits(f16Bits(h)) }
func f16ToF32Generic(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = math.Float32frombits(f16Bits(h))
	}
}

// f32ToF16Generic is the reference for f32ToF16.
func f32ToF16Generic(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = f16Round(math.Float32bits(v))
	}
}

// bf16ToF32Generic is the reference for bf16ToF32.
func bf16ToF32Generic(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = math.Float32frombits(uint32(h) << 16)
	}
}

// f32ToBF16Generic is the reference for f32ToBF16.
func f32ToBF16Generic(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = bf16Round(math.Float32bits(v))
	}
}

func f16BytesToF32Generic(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(f16Bits(binary.LittleEndian.Uint16(src[2*i:])))
	}
}

func bf16BytesToF32Generic(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

func f32ToF16BytesGeneric(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], f16Round(math.Float32bits(v)))
	}
}

func f32ToBF16BytesGeneric(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], bf16Round(math.Float32bits(v)))
	}
}
