// Package kernels holds qtool's compute kernels: matrix products against
// weights in any storage type, element-wise model kernels and bulk
// conversions, each with a pure-Go reference and, on amd64, Go assembly for
// AVX2+FMA and AVX-512 selected at run time.
//
// # Conventions
//
// Kernels take slices in and write slices out, destination first; they
// never allocate in steady state and never do I/O. The exported wrappers
// validate their arguments and panic with a message starting "kernels: " on
// a programmer error (a short slice, a stride below the width); the
// unexported kernels behind them trust their arguments. Every assembly
// routine documents, in its Go declaration, the plain Go loop it computes.
//
// # Matrix products
//
// [MatMulT] computes C = A·Bᵀ where A holds float32 activations and B is a
// weight matrix in any storage type behind the [BMatrix] interface (an HF
// Linear weight [out, in]). [SgemmNT], [SgemmNN] and [SgemmTN] are the plain
// float32 products the backward pass and LoRA need. All of them pack A and B
// into cache-sized panels (B through BMatrix.Tile, at most TileN×TileK at a
// time, unless it is float32), run a register-blocked micro-kernel (14×32 on
// AVX-512, 6×16 on AVX2, 4×4 in Go; shorter variants for the last rows) and
// split the work over goroutines by columns of C, and rows too when M is
// large or N small. A float32 C = A·Bᵀ with at most 8 rows of A (token
// generation) skips packing on AVX-512: dot-product kernels stream B's rows
// in place. With at most 16 rows of A and a stored B, [MatVecT] reads B
// once: Q8_0 and Q4_0 blocks against one or two rows are multiplied
// straight from their codes (gemv_q8.go), the other types (f16, bf16, the K-quants Q4_K, Q5_K and
// Q6_K, NF4/FP4, int8, and any [RowMatrix] another package decodes) are
// decoded a few rows at a time into L1. [SetInt8Dot] switches Q4_0 and
// Q8_0 to llama.cpp's numerics, activations rounded to int8 per 32-block,
// for inference programs: twice the prompt rate on AVX512-VNNI. Every element of C is computed by one kernel in a fixed order
// whatever the thread count and the split, so 1 and N threads give
// bit-identical results; the levels (avx512, avx2, generic) agree with each
// other and with the float64 reference within the tolerance the tests state.
//
// # CPU features
//
// [Features] reports the level in use and [SetFeatures] forces a lower one
// (tests, benchmarks). Building with the noasm tag, or on another
// architecture, leaves only the generic level.
package kernels
