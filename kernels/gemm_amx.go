package kernels

import "sync/atomic"

// The AMX path: MatMulT against a *FourBitMatrix (NF4/FP4), a *BF16Matrix
// or a K-quant matrix (Q4_K, Q5_K, Q6_K) with more than skinnyM rows of A
// (a prompt), when enabled
// with [SetAMX] on a CPU with AMX-BF16 whose kernel grants the tile state
// (Sapphire Rapids and later). A is rounded to bfloat16 and packed into
// 16×32 tiles once; B is decoded 32 rows at a time as on the float32 path
// (Tile), rounded to bfloat16 and packed into the pair-interleaved layout
// TDPBF16PS reads; one instruction then adds a 16×32 by 32×16 product into
// a 16×16 float32 tile — 8192 multiply-adds, against the float32 FMA's 16.
//
// Numerics: each a[i,k] and each decoded b[n,k] is rounded to bfloat16
// (round to nearest even, relative error at most 2^-9 each), the exact
// products are added in float32 in the instruction's order, with
// subnormal inputs and results flushed to zero. So
//
//	|C − Σ a·b| ≤ (2^-8 + 2^-16)·Σ|a·b| + (float32 summation error)
//
// For 4- to 6-bit weights the rounding of b is far below the quantization
// error; for bf16 weights b is exact. Every element of C is summed in one
// fixed order, so 1 and N threads agree bit for bit. It is off by default
// (finite-difference gradients and the float32 goldens need the float32
// path); `qtool generate` turns it on.

// amxOn enables the path.
var amxOn atomic.Bool

// SetAMX enables or disables the AMX-BF16 path of MatMulT (prompt-sized
// products against *FourBitMatrix, *BF16Matrix and K-quant weights; used only where
// the CPU and the OS support it and the level in use is avx512) and
// returns a function that restores the previous setting. It is a
// process-wide switch for programs that only run inference: calls running
// concurrently with it may use either path.
func SetAMX(enabled bool) (restore func()) {
	prev := amxOn.Swap(enabled)
	return func() { amxOn.Store(prev) }
}

// AMX reports whether MatMulT would now take the AMX path for a
// prompt-sized product against 4-bit or bf16 weights.
func AMX() bool { return amxOn.Load() && level() == featAVX512 && amxAvailable() }

// amxUsable reports whether MatMulT takes the AMX path for b: the types
// whose stored values lose nothing that matters when rounded to bfloat16
// (bf16 itself; 4-, 5- and 6-bit codes, whose quantization steps are 8 to
// 64 times the rounding's 2^-9). f32 and f16 weights keep the float32
// tiles; Q8_0 and Q4_0 have their int8 GEMM.
func amxUsable(b BMatrix) bool {
	switch b.(type) {
	case *FourBitMatrix, *BF16Matrix, *Q4_KMatrix, *Q5_KMatrix, *Q6_KMatrix:
		return AMX()
	}
	return false
}
