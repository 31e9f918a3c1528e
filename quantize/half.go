package quantize

import (
	"math"

	"github.com/x448/float16"
)

// F16ToF32 widens IEEE binary16 bits exactly.
func F16ToF32(h uint16) float32 { return float16.Frombits(h).Float32() }

// F32ToF16 rounds to the nearest binary16, ties to even (as numpy, ggml's
// GGML_FP32_TO_FP16 and PyTorch do); NaN stays NaN, overflow becomes ±Inf.
func F32ToF16(f float32) uint16 { return float16.Fromfloat32(f).Bits() }

// BF16ToF32 widens bfloat16 bits exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 rounds to the nearest bfloat16, ties to even; NaN is kept a
// quiet NaN (as PyTorch and ggml_fp32_to_bf16 do).
func F32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}
