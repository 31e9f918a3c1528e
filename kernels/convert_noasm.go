//go:build !amd64 || noasm

package kernels

// Without assembly every conversion is the pure-Go reference loop.

func f16ToF32(dst []float32, src []uint16)     { f16ToF32Generic(dst, src) }
func f32ToF16(dst []uint16, src []float32)     { f32ToF16Generic(dst, src) }
func bf16ToF32(dst []float32, src []uint16)    { bf16ToF32Generic(dst, src) }
func f32ToBF16(dst []uint16, src []float32)    { f32ToBF16Generic(dst, src) }
func f16BytesToF32(dst []float32, src []byte)  { f16BytesToF32Generic(dst, src) }
func bf16BytesToF32(dst []float32, src []byte) { bf16BytesToF32Generic(dst, src) }
func f32ToF16Bytes(dst []byte, src []float32)  { f32ToF16BytesGeneric(dst, src) }
func f32ToBF16Bytes(dst []byte, src []float32) { f32ToBF16BytesGeneric(dst, src) }

func f16BytesToF32At(dst []float32, src []byte, _ feature)  { f16BytesToF32Generic(dst, src) }
func bf16BytesToF32At(dst []float32, src []byte, _ feature) { bf16BytesToF32Generic(dst, src) }
