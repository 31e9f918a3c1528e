//go:build !amd64 || noasm

package kernels

// haveBF16Asm reports that this build has no VDPBF16PS kernels: MatMulT
// always takes the float32 path for bf16 weights.
const haveBF16Asm = false

func bf16AStrideBytes() int { return 4 * bf16AStride }

func bf16RoundRow(dst []uint16, src []float32) { f32ToBF16Generic(dst, src) }
