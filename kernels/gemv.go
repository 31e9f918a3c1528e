package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The skinny product (generation: a handful of activation rows) against a
// stored weight is bound by the bandwidth of reading the weight once, so it
// does not go through MatMulT's packed tiles: each worker takes a range of
// B's rows, decodes gemvRB of them at a time, gemvKC columns at a time,
// into an L1-resident buffer straight from the stored blocks, and
// multiplies them with up to gemvMB activation rows in a register-blocked
// dot kernel (4×4 accumulators in zmm, 2×4 in ymm). Q8_0 and Q4_0 weights
// against at most qFusedRows activation rows skip the buffer: their kernels
// multiply the codes in registers (gemv_q8.go). So do the weight types that
// implement fusedDotter, for the rows of A they accept (generation's one).

const (
	gemvRB = 4    // weight rows decoded together
	gemvKC = 1024 // columns decoded at a time (4·1024 float32 = 16 KiB)
	gemvMB = 16   // activation rows per pass over the weight

	// gemvPrefetchHead is how many bytes of each of the next group's
	// rows prefetchRows asks for. On the 2-core dev VM (1×16384×4096,
	// two threads, medians of 30 interleaved runs) the first two lines
	// gave f16 +4–6% (22.1 → 23.1–23.4 GB/s), the whole 2 KiB span −8%
	// (it crowds out the hardware streams); NF4 (512 stored bytes per
	// chunk) was unchanged either way, being bound by its decoder.
	gemvPrefetchHead = 128

	// gemvMinWork is the least number of weights worth a goroutine.
	gemvMinWork = 1 << 16
)

// fusedDotter is a weight type with fused skinny kernels: they widen the
// stored values in registers and multiply them there, reading each stored
// byte once and never writing a decoded row.
type fusedDotter interface {
	// fusedRows reports whether the fused kernels serve a product with m
	// rows of A at level lvl.
	fusedRows(m int, lvl feature) bool
	// fusedDot adds Σ_k a[k]·B[r+t, k] to out[t] for t < len(out), where
	// len(a) is K, computed in float32.
	fusedDot(out []float32, r int, a []float32, lvl feature)
}

// fusedOff sends the fusedDotter types through the decoding path (for
// benchmarks and tests that compare the two: export_test.go).
var fusedOff atomic.Bool

var gemvPool = sync.Pool{New: func() any { return new([gemvRB * gemvKC]float32) }}

// GemvT computes C = A·Bᵀ for a skinny A: c is m×N and a is m×K, both
// packed (row strides N and K), and C is overwritten. It reports false,
// doing nothing, when b has no fused path (this package's weight types and
// F32Matrix have one). See MatVecT.
func GemvT(c []float32, a []float32, m int, b BMatrix, threads int) bool {
	return MatVecT(c, max(b.Rows(), 1), a, max(b.Cols(), 1), m, b, false, threads)
}

// MatVecT is GemvT with MatMulT's arguments: C[i, n] (+)= Σ_k A[i, k]·B[n, k]
// for i < m, with row strides ldc and lda; accumulate adds to C instead of
// overwriting it. It is meant for m ≤ 16 (any m works; B is decoded once
// per 16 rows of A). threads ≤ 0 means GOMAXPROCS; the work is split by
// rows of B, and the result does not depend on the number of threads. It
// reports false, doing nothing, when b has no fused path.
//
// Reference (the kernels accumulate in float32 vectors, the tests in
// float64):
//
//	for i := range m { for n := range N { C[i*ldc+n] = Σ_k A[i*lda+k] * B[n,k] } }
func MatVecT(c []float32, ldc int, a []float32, lda int, m int, b BMatrix, accumulate bool, threads int) bool {
	var (
		d     rowDecoder
		f32   []float32
		f32ld int
		q     *ggmlMatrix
		q8    bool
		fd    fusedDotter
	)
	lvl := level()
	if f, ok := b.(fusedDotter); ok && !fusedOff.Load() && f.fusedRows(m, lvl) {
		fd = f
	}
	switch bm := b.(type) {
	case *Q8_0Matrix:
		if m <= qFusedRows {
			q, q8 = &bm.ggmlMatrix, true
		} else {
			d = bm
		}
	case *Q4_0Matrix:
		if m <= qFusedRows {
			q = &bm.ggmlMatrix
		} else {
			d = bm
		}
	case rowDecoder:
		if fd == nil {
			d = bm
		}
	case *F32Matrix:
		gemmCheckF32(bm)
		f32, f32ld = bm.Data, bm.stride()
	case F32Matrix:
		gemmCheckF32(&bm)
		f32, f32ld = bm.Data, bm.stride()
	default:
		return false
	}
	j := gemvJobPool.Get().(*gemvJob)
	defer j.release()
	j.d, j.f32, j.f32ld, j.fd = d, f32, f32ld, fd
	switch d.(type) {
	case *F16Matrix, *BF16Matrix:
		j.sp = d.(rowSpanner)
	}
	j.c, j.ldc, j.a, j.lda, j.m, j.acc = c, ldc, a, lda, m, accumulate
	j.n, j.k = b.Rows(), b.Cols()
	if m < 0 {
		panic("kernels: negative dimension")
	}
	gemmCheckMat("A", a, m, j.k, lda)
	gemmCheckMat("C", c, m, j.n, ldc)
	if m == 0 || j.n == 0 {
		return true
	}
	if j.k == 0 {
		if !accumulate {
			for i := range m {
				clear(c[i*ldc : i*ldc+j.n])
			}
		}
		return true
	}
	j.lvl = lvl
	if j.q, j.q8 = q, q8; q != nil && int8DotOn.Load() && (!q8 || q8Int8Level(j.lvl)) {
		buf := q8Pool.Get().(*q8Buf)
		defer q8Pool.Put(buf)
		if q8 {
			j.acts = buf.quantize(a, lda, m, j.k, q8CorrOffset, false)
		} else {
			j.acts = buf.quantize(a, lda, m, j.k, q4CorrOffset(j.lvl), q4PairLayout(j.lvl))
		}
	}
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	// Items of whole row groups, a few per thread, none below
	// gemvMinWork weights.
	groups := (j.n + gemvRB - 1) / gemvRB
	per := max((groups+4*threads-1)/(4*threads), (gemvMinWork/j.k+gemvRB-1)/gemvRB, 1)
	j.rows = per * gemvRB
	j.items = (groups + per - 1) / per
	if threads <= 1 || j.items == 1 {
		j.work()
		return true
	}
	runParallel(j, min(threads, j.items))
	return true
}

var gemvJobPool = sync.Pool{New: func() any { return new(gemvJob) }}

func (j *gemvJob) release() {
	*j = gemvJob{}
	gemvJobPool.Put(j)
}

// gemvJob is one skinny product, split into items of j.rows rows of B.
type gemvJob struct {
	d       rowDecoder
	sp      rowSpanner // j.d's stored rows when prefetching them, or nil
	f32     []float32  // B itself when it is an F32Matrix
	f32ld   int
	q       *ggmlMatrix // B on the fused Q8_0/Q4_0 path (gemv_q8.go), with
	q8      bool        // its type (Q8_0, else Q4_0)
	acts    []q8Act     // and A quantized (on the int8 paths), or nil
	fd      fusedDotter // B on a fused path of its own, or nil
	c       []float32
	ldc     int
	a       []float32
	lda     int
	m, n, k int
	acc     bool
	lvl     feature

	rows, items int
	next        atomic.Int64
	wg          sync.WaitGroup
}

func (j *gemvJob) group() *sync.WaitGroup { return &j.wg }

// work takes items until none are left.
func (j *gemvJob) work() {
	bp := gemvPool.Get().(*[gemvRB * gemvKC]float32)
	defer gemvPool.Put(bp)
	for {
		it := int(j.next.Add(1) - 1)
		if it >= j.items {
			return
		}
		r0 := it * j.rows
		r1 := min(j.n, r0+j.rows)
		if j.q != nil || j.fd != nil {
			// The pooled buffer holds the fused kernels' outputs: an
			// array on the stack would escape through the interface call.
			j.rangeRowsFused(bp[:qChunk], r0, r1)
		} else {
			j.rangeRows(bp[:], r0, r1)
		}
	}
}

// rangeRows computes the columns [r0, r1) of C, gemvRB rows of B at a time.
func (j *gemvJob) rangeRows(buf []float32, r0, r1 int) {
	k, lda := j.k, j.lda
	for r := r0; r < r1; r += gemvRB {
		nr := min(gemvRB, r1-r)
		for i0 := 0; i0 < j.m; i0 += gemvMB {
			mb := min(gemvMB, j.m-i0)
			var acc [gemvMB * gemvRB]float32
			for k0 := 0; k0 < k; k0 += gemvKC {
				k1 := min(k, k0+gemvKC)
				if i0 == 0 && j.sp != nil {
					j.prefetchRows(r+gemvRB, r1, k0, k1)
				}
				b, ldb := j.rowsAt(buf, r, nr, k0, k1)
				dotRows(acc[:], j.a[i0*lda+k0:], lda, mb, b, ldb, k1-k0, j.lvl)
			}
			for i := range mb {
				o := (i0+i)*j.ldc + r
				cr := j.c[o : o+nr]
				if j.acc {
					for t := range cr {
						cr[t] += acc[i*gemvRB+t]
					}
				} else {
					for t := range cr {
						cr[t] = acc[i*gemvRB+t]
					}
				}
			}
		}
	}
}

// rangeRowsFused computes the columns [r0, r1) of C on a fused path (the
// Q8_0/Q4_0 kernels, or j.fd's): qChunk rows of B per call with one row of
// A, else gemvRB rows (kept in L1) against every row of A; out holds
// qChunk outputs.
func (j *gemvJob) rangeRowsFused(out []float32, r0, r1 int) {
	step := gemvRB
	if j.m == 1 {
		step = qChunk
	}
	for r := r0; r < r1; r += step {
		nr := min(step, r1-r)
		for i := range j.m {
			o := out[:nr]
			if j.q != nil {
				j.dotRowsQ(o, r, i)
			} else {
				clear(o)
				j.fd.fusedDot(o, r, j.a[i*j.lda:i*j.lda+j.k], j.lvl)
			}
			cr := j.c[i*j.ldc+r : i*j.ldc+r+nr]
			if j.acc {
				for t := range cr {
					cr[t] += o[t]
				}
			} else {
				copy(cr, o)
			}
		}
	}
}

// prefetchRows asks for the first gemvPrefetchHead stored bytes of each of
// B[r:r+gemvRB, k0:k1] (rows below r1 only) while the current group is
// decoded: the next group is rows away, a jump the hardware prefetchers
// do not predict, and once a row's first lines are in flight they stream
// the rest. Only the 16-bit types use it (see gemvPrefetchHead).
func (j *gemvJob) prefetchRows(r, r1, k0, k1 int) {
	for t := r; t < min(r+gemvRB, r1); t++ {
		sp := j.sp.rowSpan(t, k0, k1)
		prefetch(sp[:min(len(sp), gemvPrefetchHead)])
	}
}

// rowsAt returns B[r:r+gemvRB, k0:k1] as gemvRB rows of stride ldb: in
// place for a float32 B with all four rows present, else decoded into buf
// (rows nr.. of buf then hold stale values, whose dots are dropped).
func (j *gemvJob) rowsAt(buf []float32, r, nr, k0, k1 int) (b []float32, ldb int) {
	if j.f32 != nil {
		ld := j.f32ld
		if nr == gemvRB {
			return j.f32[r*ld+k0:], ld
		}
		for t := range nr {
			copy(buf[t*gemvKC:t*gemvKC+k1-k0], j.f32[(r+t)*ld+k0:(r+t)*ld+k1])
		}
		return buf, gemvKC
	}
	for t := range nr {
		j.d.decodeRow(buf[t*gemvKC:t*gemvKC+k1-k0], r+t, k0, k1, j.lvl)
	}
	return buf, gemvKC
}

// dotRowsGeneric is the reference of dotRows over the columns [k0, k1):
//
//	out[i*4+j] += Σ_{k0≤t<k1} a[i*lda+t] * b[j*ldb+t]   for i < mb, j < 4
func dotRowsGeneric(out []float32, a []float32, lda, mb int, b []float32, ldb, k0, k1 int) {
	if k0 >= k1 {
		return
	}
	for i := range mb {
		ai := a[i*lda+k0 : i*lda+k1]
		for j := range gemvRB {
			bj := b[j*ldb+k0 : j*ldb+k1]
			var s0, s1, s2, s3 float32
			t := 0
			for ; t+4 <= len(ai); t += 4 {
				s0 += ai[t] * bj[t]
				s1 += ai[t+1] * bj[t+1]
				s2 += ai[t+2] * bj[t+2]
				s3 += ai[t+3] * bj[t+3]
			}
			for ; t < len(ai); t++ {
				s0 += ai[t] * bj[t]
			}
			out[i*gemvRB+j] += (s0 + s1) + (s2 + s3)
		}
	}
}
