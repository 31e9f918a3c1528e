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
// in place. Every element of C is computed by one kernel in a fixed order
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
