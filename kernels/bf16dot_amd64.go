//go:build !noasm

package kernels

// haveBF16Asm reports that this build has the VDPBF16PS kernels.
const haveBF16Asm = true

// bf16Kern14x32 is the 14×32 AVX512-BF16 micro-kernel. a is a packed bf16
// A panel (row r at a[r*bf16AStride:], kp pairs of bfloat16 per row, the
// lower half holding the even k), b a packed B panel (32 pairs per k pair,
// pair c of k pair p at b[p*32+c]), c the top-left corner of the C tile.
// For r < mr and j < nc it computes
//
//	var s float32 // 16-lane VDPBF16PS accumulation, one lane per column
//	for p := 0; p < kp; p++ {
//		s = vdpbf16(s, a[r*bf16AStride+p], b[p*32+j]) // see bf16DotEmul
//	}
//	if accum {
//		c[r*ldc+j] += s
//	} else {
//		c[r*ldc+j] = s
//	}
//
// It requires 1 ≤ kp, 1 ≤ mr ≤ 14 and 1 ≤ nc ≤ 32, and reads all 14 rows of
// the A panel and all 32 columns of the B panel.
//
//go:noescape
func bf16Kern14x32(kp int, a, b []uint32, c []float32, ldc, mr, nc int, accum bool)

// bf16Kern8x32, 4x32, 2x32 and 1x32 are bf16Kern14x32 for panels of at most
// 8, 4, 2 and 1 rows; they compute the same sums in the same order.
//
//go:noescape
func bf16Kern8x32(kp int, a, b []uint32, c []float32, ldc, mr, nc int, accum bool)

//go:noescape
func bf16Kern4x32(kp int, a, b []uint32, c []float32, ldc, mr, nc int, accum bool)

//go:noescape
func bf16Kern2x32(kp int, a, b []uint32, c []float32, ldc, mr, nc int, accum bool)

//go:noescape
func bf16Kern1x32(kp int, a, b []uint32, c []float32, ldc, mr, nc int, accum bool)

// bf16AStrideBytes returns the packed A row distance the assembly was built
// with, in bytes.
func bf16AStrideBytes() int

func init() {
	for r := 1; r <= bf16MR; r++ {
		switch {
		case r == 1:
			bf16Kerns[r] = bf16Kern1x32
		case r == 2:
			bf16Kerns[r] = bf16Kern2x32
		case r <= 4:
			bf16Kerns[r] = bf16Kern4x32
		case r <= 8:
			bf16Kerns[r] = bf16Kern8x32
		default:
			bf16Kerns[r] = bf16Kern14x32
		}
	}
}

// bf16RoundRow rounds src to bfloat16 in dst (quantize.F32ToBF16's rule)
// with the AVX-512 conversion.
func bf16RoundRow(dst []uint16, src []float32) { f32ToBF16At(dst, src, featAVX512) }
