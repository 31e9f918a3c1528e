package kernels

import (
	"math"
	"sync"
	"sync/atomic"
)

// The fused skinny product against Q8_0 and Q4_0 weights (MatVecT, and so
// MatMulT, with one or two rows of A: token generation): the weight bytes
// are read once, in place, and no weight is ever decoded to a float32
// buffer. Each block's
// codes are widened to float32 in registers, multiplied with the float32
// activations and the block's sum scaled by its fp16 scale
// (qDotRowsGeneric). The numerics are the float32 path's: the same bound as
// for the other types holds.
//
// [SetInt8Dot] turns on llama.cpp's numerics for these types, off by
// default: each row of A is quantized to int8 per 32-block (scale
// da = max|x|/127, codes rounded half to even; quantizeRowQ8) and the
// weight codes are multiplied with the activation codes in integers, each
// block's exact integer sum then scaled by d·da in float32. Q4_0 takes it
// in the fused skinny products (VPDPBUSD on AVX512-VNNI,
// VPMADDUBSW/VPMADDWD on AVX2; q4DotRowsGeneric), and both types in the
// prompt-sized ones (m > 16) on AVX512-VNNI, through the int8 GEMM
// (gemm_int8.go), which multiplies 64 code pairs per instruction against
// the float32 FMA's 16 — about twice the prompt rate. Q8_0 takes it in the
// fused skinny products on AVX512-VNNI only (two blocks per VPDPBUSD, the
// codes offset by 128; q8DotRowsInt8Generic), and keeps float32
// activations elsewhere, as do the products in between (3 to 16 rows).
// The rounding of A adds |qa·da − a| ≤ da/2 per element, so
//
//	|C − A·Bᵀ| ≤ Σ_k |B[n,k]|·da(i, k/32)/2 + (float32 summation error)
//
// which is what the tests check. llama.cpp rounds activations this way (its
// blocks hold da in fp16; here it stays float32). It is off by default
// because it makes a product a step function of A: finite-difference
// gradients through it (train's checks) are meaningless, and on llama's
// stories260K Q8_0 golden the same rounding moved the log-probs 25 times
// further from f32 than the weights' own rounding. A block of A holding a
// NaN or ±Inf gives NaN in every column of its row.

// int8DotOn enables the int8 paths.
var int8DotOn atomic.Bool

// SetInt8Dot enables or disables the int8 activations of MatMulT and
// MatVecT for *Q4_0Matrix weights (one or two rows of A, and more than 16
// on AVX512-VNNI) and *Q8_0Matrix weights (one or two rows of A and more
// than 16, on AVX512-VNNI), and returns a function that restores the previous setting. Off (the default), both take float32
// activations. It is a process-wide switch for programs that only run
// inference, not training (and for tests and benchmarks): calls running
// concurrently with it may use either path.
func SetInt8Dot(enabled bool) (restore func()) {
	prev := int8DotOn.Swap(enabled)
	return func() { int8DotOn.Store(prev) }
}

// Int8Dot reports whether the int8 activations are enabled.
func Int8Dot() bool { return int8DotOn.Load() }

// q8Act is one row of A quantized to int8 per 32-block.
type q8Act struct {
	qa   []int8    // K codes, |qa| ≤ 127
	da   []float32 // K/32 block scales
	corr []int32   // K/4: −off·(sum of each 4 consecutive codes), see q4CorrOffset

	// The same codes laid out for the AVX512-VNNI Q4_0 kernel that takes
	// two blocks per step (q4PairLayout; empty otherwise): per pair p of
	// blocks b = 2p and b+1, the 64 bytes
	//
	//	pqa[64p:] = qa_b[0:16] ‖ qa_b+1[0:16] ‖ qa_b[16:32] ‖ qa_b+1[16:32]
	//
	// (the order in which the kernel lays out a pair's nibbles), the lane
	// corrections pcorr[16p+l] = −off·Σ pqa[64p+4l : 64p+4l+4], and each
	// lane's scale dap[16p:] = da_b ×4 ‖ da_b+1 ×4 ‖ da_b ×4 ‖ da_b+1 ×4.
	// A last, odd block keeps only the plain layout.
	pqa   []int8
	pcorr []int32
	dap   []float32
}

// layPairs fills a's pair layout from its plain codes into the given
// buffers (K, K/4 and K/4 long for K codes).
func (a *q8Act) layPairs(pqa []int8, pcorr []int32, dap []float32, off int32) {
	np := len(a.da) / 2
	a.pqa, a.pcorr, a.dap = pqa[:64*np], pcorr[:16*np], dap[:16*np]
	for p := range np {
		q := a.pqa[64*p : 64*p+64]
		b0, b1 := a.qa[64*p:64*p+32], a.qa[64*p+32:64*p+64]
		copy(q[0:16], b0[0:16])
		copy(q[16:32], b1[0:16])
		copy(q[32:48], b0[16:32])
		copy(q[48:64], b1[16:32])
		for l := range 16 {
			a.pcorr[16*p+l] = -off * (int32(q[4*l]) + int32(q[4*l+1]) + int32(q[4*l+2]) + int32(q[4*l+3]))
			a.dap[16*p+l] = a.da[2*p+(l/4)%2]
		}
	}
}

// q8Buf holds the quantized rows of one MatVecT call.
type q8Buf struct {
	qa    []int8
	da    []float32
	corr  []int32
	pqa   []int8
	pcorr []int32
	dap   []float32
	acts  []q8Act
}

var q8Pool = sync.Pool{New: func() any { return new(q8Buf) }}

// quantize fills b with the m rows of a (stride lda, K columns, K a
// multiple of 32) and returns them, with their pair layout when pairs.
func (b *q8Buf) quantize(a []float32, lda, m, k int, off int32, pairs bool) []q8Act {
	nb := k / ggmlQK
	b.qa = growSlice(b.qa, m*k)
	b.da = growSlice(b.da, m*nb)
	b.corr = growSlice(b.corr, m*k/4)
	b.acts = growSlice(b.acts, m)
	if pairs {
		b.pqa = growSlice(b.pqa, m*k)
		b.pcorr = growSlice(b.pcorr, m*k/4)
		b.dap = growSlice(b.dap, m*k/4)
	}
	for i := range m {
		act := q8Act{qa: b.qa[i*k : (i+1)*k], da: b.da[i*nb : (i+1)*nb], corr: b.corr[i*k/4 : (i+1)*k/4]}
		quantizeRowQ8(&act, a[i*lda:i*lda+k], off)
		if pairs {
			act.layPairs(b.pqa[i*k:(i+1)*k], b.pcorr[i*k/4:(i+1)*k/4], b.dap[i*k/4:(i+1)*k/4], off)
		}
		b.acts[i] = act
	}
	return b.acts[:m]
}

func growSlice[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// quantizeRowQ8 quantizes x (a whole number of 32-blocks) into a:
//
//	amax = max|x| over the block; da = amax/127; qa[j] = roundHalfEven(x[j]·127/amax)
//
// (all-zero blocks: da = 0, qa = 0; a NaN or ±Inf: da = NaN, qa = 0), and,
// with off ≠ 0, corr[l] = −off·(qa[4l]+qa[4l+1]+qa[4l+2]+qa[4l+3]).
func quantizeRowQ8(a *q8Act, x []float32, off int32) {
	for b := range len(x) / ggmlQK {
		xb := (*[ggmlQK]float32)(x[ggmlQK*b:])
		qb := (*[ggmlQK]int8)(a.qa[ggmlQK*b:])
		var amax uint32
		for _, v := range xb {
			amax = max(amax, math.Float32bits(v)&0x7fffffff)
		}
		switch {
		case amax >= 0x7f800000:
			*qb = [ggmlQK]int8{}
			a.da[b] = float32(math.NaN())
		case amax == 0:
			*qb = [ggmlQK]int8{}
			a.da[b] = 0
		default:
			m := float64(math.Float32frombits(amax))
			id := 127 / m
			for j, v := range xb {
				qb[j] = int8(math.RoundToEven(float64(v) * id))
			}
			a.da[b] = float32(m / 127)
		}
		if off != 0 {
			cb := (*[ggmlQK / 4]int32)(a.corr[ggmlQK/4*b:])
			for l := range cb {
				cb[l] = -off * (int32(qb[4*l]) + int32(qb[4*l+1]) + int32(qb[4*l+2]) + int32(qb[4*l+3]))
			}
		}
	}
}

// qDotRowsGeneric is the reference of the fused float32 kernels: for the
// rows w_r = w[r·ldw:], r < len(out), of len(a)/32 blocks (Q8_0 when q8,
// else Q4_0) with codes q (Q4_0: nibble − 8) and scale d,
//
//	out[r] += Σ_b d_b·(Σ_j float32(q_j)·a[32b+j])
//
// in float32, in block order.
func qDotRowsGeneric(out []float32, w []byte, ldw int, a []float32, q8 bool) {
	nb := len(a) / ggmlQK
	for r := range out {
		row := w[r*ldw:]
		var acc float32
		for b := range nb {
			ab := (*[ggmlQK]float32)(a[ggmlQK*b:])
			var s0, s1 float32
			var d float32
			if q8 {
				blk := (*[q8_0Bytes]byte)(row[q8_0Bytes*b:])
				d = ggmlScale(blk[:])
				for j := 0; j < ggmlQK; j += 2 {
					s0 += float32(int8(blk[2+j])) * ab[j]
					s1 += float32(int8(blk[3+j])) * ab[j+1]
				}
			} else {
				blk := (*[q4_0Bytes]byte)(row[q4_0Bytes*b:])
				d = ggmlScale(blk[:])
				for j := range 16 {
					c := blk[2+j]
					s0 += float32(int32(c&15)-8) * ab[j]
					s1 += float32(int32(c>>4)-8) * ab[j+16]
				}
			}
			acc += d * (s0 + s1)
		}
		out[r] += acc
	}
}

// q4DotRowsGeneric is the reference of the Q4_0 int8 kernels: for the
// rows w_r = w[r·ldw:], r < len(out), of len(a.da) blocks, against the
// quantized activation row a,
//
//	out[r] += Σ_b float32(Σ_j code(r, b, j)·qa[32b+j]) · (d(r, b)·da[b])
//
// the integer sums exact, the float32 sum in block order. corr is unused.
func q4DotRowsGeneric(out []float32, w []byte, ldw int, a *q8Act) {
	nb := len(a.da)
	for r := range out {
		row := w[r*ldw:]
		var acc float32
		for b := range nb {
			qa := (*[ggmlQK]int8)(a.qa[ggmlQK*b:])
			blk := (*[q4_0Bytes]byte)(row[q4_0Bytes*b:])
			var s int32
			for j := range 16 {
				c := blk[2+j]
				s += (int32(c&15)-8)*int32(qa[j]) + (int32(c>>4)-8)*int32(qa[j+16])
			}
			acc += float32(s) * (ggmlScale(blk[:]) * a.da[b])
		}
		out[r] += acc
	}
}

// q8DotRowsInt8Generic is the reference of the Q8_0 int8 kernels: for
// the rows w_r = w[r·ldw:], r < len(out), of len(a.da) blocks, against the
// quantized activation row a,
//
//	out[r] += Σ_b float32(Σ_j code(r, b, j)·qa[32b+j]) · (d(r, b)·da[b])
//
// the integer sums exact, the float32 sum in block order. corr is unused.
func q8DotRowsInt8Generic(out []float32, w []byte, ldw int, a *q8Act) {
	for r := range out {
		row := w[r*ldw:]
		var acc float32
		for b := range a.da {
			acc += q8BlockInt8(row[q8_0Bytes*b:], a, b)
		}
		out[r] += acc
	}
}

// q8BlockInt8 is block b of a Q8_0 row (blk) against block b of a:
// float32(Σ_j code_j·qa_j)·(d·da).
func q8BlockInt8(blk []byte, a *q8Act, b int) float32 {
	qa := (*[ggmlQK]int8)(a.qa[ggmlQK*b:])
	codes := (*[q8_0Bytes]byte)(blk)
	var s int32
	for j := range ggmlQK {
		s += int32(int8(codes[2+j])) * int32(qa[j])
	}
	return float32(s) * (ggmlScale(codes[:]) * a.da[b])
}

// dotRowsQ computes out[t] = B[r+t]·A[i] for t < len(out) on the fused
// Q8_0/Q4_0 path (out is cleared first).
func (j *gemvJob) dotRowsQ(out []float32, r, i int) {
	g := j.q
	w := g.data[r*g.rowBytes : (r+len(out))*g.rowBytes]
	clear(out)
	switch {
	case j.acts != nil && j.q8:
		q8DotRowsInt8(out, w, g.rowBytes, &j.acts[i], j.lvl)
	case j.acts != nil:
		q4DotRows(out, w, g.rowBytes, &j.acts[i], j.lvl)
	default:
		qDotRows(out, w, g.rowBytes, j.a[i*j.lda:i*j.lda+j.k], j.q8, j.lvl)
	}
}

// qChunk is the rows of B per kernel call with one row of A.
const qChunk = 64

// qFusedRows is the most rows of A MatVecT multiplies with the fused Q8_0
// and Q4_0 kernels. They redo a block's widening and scaling for every row
// of A, while the decoding path does it once and shares it between four
// rows in its register-blocked kernel: past two rows that is faster.
const qFusedRows = 2
