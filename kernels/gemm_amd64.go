//go:build !noasm

package kernels

const haveAsm = true

// sgemmKern14x32 is the 14×32 AVX-512 micro-kernel. a is a packed A panel
// (rows aStride apart, row r at a[r*aStride:]), b a packed B panel (32
// float32s per k), c the top-left corner of the C tile. For r < mr and
// j < nc it computes, the sum taken in k order by fused multiply-adds:
//
//	var s float32
//	for k := 0; k < kc; k++ {
//		s += a[r*aStride+k] * b[k*32+j]
//	}
//	if accum {
//		c[r*ldc+j] += s
//	} else {
//		c[r*ldc+j] = s
//	}
//
// It requires 1 ≤ kc, 1 ≤ mr ≤ 14 and 1 ≤ nc ≤ 32, and reads all 14 rows of
// the A panel and all 32 columns of the B panel.
//
//go:noescape
func sgemmKern14x32(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)

// sgemmKern8x32, 4x32, 2x32 and 1x32 are sgemmKern14x32 for panels of at
// most 8, 4, 2 and 1 rows (the last rows of A, or a skinny A); they compute
// the same sums in the same order.
//
//go:noescape
func sgemmKern8x32(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)

//go:noescape
func sgemmKern4x32(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)

//go:noescape
func sgemmKern2x32(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)

//go:noescape
func sgemmKern1x32(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)

// sgemmKern6x16 is the 6×16 AVX2+FMA micro-kernel: what sgemmKern14x32
// computes, with 6 rows and 16 columns (b holds 16 float32s per k), for
// 1 ≤ mr ≤ 6 and 1 ≤ nc ≤ 16; 4x16, 2x16 and 1x16 are its shorter
// variants.
//
//go:noescape
func sgemmKern6x16(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)

//go:noescape
func sgemmKern4x16(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)

//go:noescape
func sgemmKern2x16(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)

//go:noescape
func sgemmKern1x16(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)

// sgemmDot8x3 is the AVX-512 dot-product kernel of the skinny path: for
// r < 8 and j < nc it computes, from A and B in place, with no packing,
//
//	var s float32 // 16 lanes of fused multiply-adds over k, then halves
//	for p := 0; p < k; p++ {
//		s += a[r*lda+p] * bj[p] // bj is b0, b1, b2 for j = 0, 1, 2
//	}
//	if accum {
//		c[r*ldc+j] += s
//	} else {
//		c[r*ldc+j] = s
//	}
//
// where lane l of the vector sum takes the p ≡ l (mod 16) terms in order
// and the lanes are then added by halves (8+8, 4+4, 2+2, 1+1). It needs
// k ≥ 1 and 1 ≤ nc ≤ 3; b0, b1, b2 may be the same row (for nc < 3).
// sgemmDot1x3 … sgemmDot7x3 do the same for 1 to 7 rows.
//
//go:noescape
func sgemmDot8x3(k int, a []float32, lda int, b0, b1, b2 []float32, c []float32, ldc, nc int, accum bool)

//go:noescape
func sgemmDot7x3(k int, a []float32, lda int, b0, b1, b2 []float32, c []float32, ldc, nc int, accum bool)

//go:noescape
func sgemmDot6x3(k int, a []float32, lda int, b0, b1, b2 []float32, c []float32, ldc, nc int, accum bool)

//go:noescape
func sgemmDot5x3(k int, a []float32, lda int, b0, b1, b2 []float32, c []float32, ldc, nc int, accum bool)

//go:noescape
func sgemmDot4x3(k int, a []float32, lda int, b0, b1, b2 []float32, c []float32, ldc, nc int, accum bool)

//go:noescape
func sgemmDot3x3(k int, a []float32, lda int, b0, b1, b2 []float32, c []float32, ldc, nc int, accum bool)

//go:noescape
func sgemmDot2x3(k int, a []float32, lda int, b0, b1, b2 []float32, c []float32, ldc, nc int, accum bool)

//go:noescape
func sgemmDot1x3(k int, a []float32, lda int, b0, b1, b2 []float32, c []float32, ldc, nc int, accum bool)

// sgemmAStride returns the A panel row stride the assembly was built with.
func sgemmAStride() int

// transposeAVX512 transposes a block of at most 16×16:
//
//	for i := 0; i < rows; i++ {
//		for j := 0; j < cols; j++ {
//			dst[j*ldd+i] = src[i*lds+j]
//		}
//	}
//
// for 1 ≤ rows, cols ≤ 16.
//
//go:noescape
func transposeAVX512(dst []float32, ldd int, src []float32, lds int, rows, cols int)

// transposeAVX2 is transposeAVX512 for blocks of at most 8×8.
//
//go:noescape
func transposeAVX2(dst []float32, ldd int, src []float32, lds int, rows, cols int)

// levels lists the implementations, indexed by feature.
var levels = [...]*gemmLevel{
	featGeneric: &genericLevel,
	featAVX2: newGemmLevel("avx2", 16, 8, transposeAVX2,
		kernVariant{6, sgemmKern6x16}, kernVariant{4, sgemmKern4x16},
		kernVariant{2, sgemmKern2x16}, kernVariant{1, sgemmKern1x16}),
	featAVX512: newGemmLevel("avx512", 32, 16, transposeAVX512,
		kernVariant{14, sgemmKern14x32}, kernVariant{8, sgemmKern8x32}, kernVariant{4, sgemmKern4x32},
		kernVariant{2, sgemmKern2x32}, kernVariant{1, sgemmKern1x32}),
}

func init() {
	levels[featAVX512].dot = [...]gemmDot{nil, sgemmDot1x3, sgemmDot2x3, sgemmDot3x3,
		sgemmDot4x3, sgemmDot5x3, sgemmDot6x3, sgemmDot7x3, sgemmDot8x3}
}
