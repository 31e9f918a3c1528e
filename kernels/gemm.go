package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Blocking of the matrix products.
const (
	// TileN and TileK bound the tiles BMatrix.Tile is asked for: at most
	// TileN rows (n) by TileK columns (k). k0 is always a multiple of
	// TileK (so a tile never splits a quantization block of 32, 64 or
	// 256), n0 a multiple of 32, and a tile never reaches past Rows or
	// Cols.
	TileN = 128
	TileK = 256

	// kcBlock is the depth of a packed panel.
	kcBlock = TileK
	// aStride is the distance between the rows of a packed A panel; the
	// padding past kcBlock keeps the 14 rows off the same cache sets. The
	// assembly has it built in (ASTR).
	aStride = kcBlock + 16
	// mcMax bounds the rows of A packed at once (mcMax·aStride float32s,
	// 731 KiB, stay in L2); a multiple of every level's mr (14, 6, 4).
	mcMax = 672
	// nAlign is the alignment of the column ranges split among workers, a
	// multiple of every level's nr.
	nAlign = 32
)

// BMatrix is a weight matrix B with N rows and K columns (an HF Linear
// weight [out, in], row-major), in any storage type. Tile writes
// B[n0:n1, k0:k1] as float32 row-major (n1-n0 rows of k1-k0) into dst; it is
// called with tiles of at most TileN×TileK (see TileN for the alignment) so
// dequantization stays in L1/L2, and from several goroutines at once.
type BMatrix interface {
	Rows() int
	Cols() int
	Tile(dst []float32, n0, n1, k0, k1 int)
}

// F32Matrix is a row-major float32 BMatrix: element (n, k) is
// Data[n*Stride+k], with Stride = K when Stride is 0. MatMulT reads it in
// place, without Tile; pass a *F32Matrix to avoid boxing it.
type F32Matrix struct {
	Data   []float32
	N, K   int
	Stride int
}

// Rows returns N.
func (m F32Matrix) Rows() int { return m.N }

// Cols returns K.
func (m F32Matrix) Cols() int { return m.K }

func (m F32Matrix) stride() int {
	if m.Stride != 0 {
		return m.Stride
	}
	return m.K
}

// Tile copies B[n0:n1, k0:k1] into dst, row-major.
func (m F32Matrix) Tile(dst []float32, n0, n1, k0, k1 int) {
	w, s := k1-k0, m.stride()
	for n := n0; n < n1; n++ {
		copy(dst[(n-n0)*w:(n-n0+1)*w], m.Data[n*s+k0:n*s+k1])
	}
}

// MatMulT computes C[m×N] = A[m×K] · Bᵀ (+ C when accumulate), where B is
// N×K (b.Rows() × b.Cols()), A is row-major with stride lda and C with
// stride ldc. threads ≤ 0 means runtime.GOMAXPROCS(0). The reference:
//
//	for i := 0; i < m; i++ {
//		for j := 0; j < N; j++ {
//			var s float32
//			for p := 0; p < K; p++ {
//				s += a[i*lda+p] * B(j, p)
//			}
//			c[i*ldc+j] = s // or += s when accumulate
//		}
//	}
//
// The sums run in k order whatever threads is, so the result does not
// depend on it. With [SetBF16Dot](true), a *BF16Matrix with m > 16 on a CPU
// with AVX512-BF16 takes a dot-product path that rounds A to bfloat16; with
// [SetInt8Dot](true), *Q4_0Matrix and *Q8_0Matrix weights with m > 16 on a
// CPU with AVX512-VNNI take an int8 GEMM that rounds A to int8 per 32-block
// (gemm_int8.go; and Q4_0 with m ≤ 2 the skinny int8 path, gemv_q8.go).
func MatMulT(c []float32, ldc int, a []float32, lda int, m int, b BMatrix, accumulate bool, threads int) {
	n, k := b.Rows(), b.Cols()
	gemmCheckDims(m, n, k)
	gemmCheckMat("A", a, m, k, lda)
	gemmCheckMat("C", c, m, n, ldc)
	if m > skinnyM && amxUsable(b) {
		amxMatMulT(c, ldc, a, lda, m, b, accumulate, threads) // gemm_amx.go
		return
	}
	if bm, ok := b.(*BF16Matrix); ok && m > skinnyM && bf16DotUsable() {
		bf16MatMulT(c, ldc, a, lda, m, bm, accumulate, threads) // bf16dot.go
		return
	}
	if m > skinnyM && k > 0 && int8GemmUsable() {
		switch bm := b.(type) {
		case *Q4_0Matrix:
			int8MatMulT(c, ldc, a, lda, m, &bm.ggmlMatrix, false, accumulate, threads) // gemm_int8.go
			return
		case *Q8_0Matrix:
			int8MatMulT(c, ldc, a, lda, m, &bm.ggmlMatrix, true, accumulate, threads)
			return
		}
	}
	j := newJob(m, n, k, a, lda, false, c, ldc, accumulate)
	switch bm := b.(type) {
	case *F32Matrix:
		gemmCheckF32(bm)
		j.b, j.ldb, j.bl = bm.Data, bm.stride(), bRowsNK
	case F32Matrix:
		gemmCheckF32(&bm)
		j.b, j.ldb, j.bl = bm.Data, bm.stride(), bRowsNK
	default:
		// Generation-shaped products against stored weights read B once,
		// dequantizing rows into L1 (gemv.go); MatVecT declines types it
		// has no row decoder for.
		if m <= skinnyM && MatVecT(c, ldc, a, lda, m, b, accumulate, threads) {
			return
		}
		j.bm, j.bl = b, bTiled
	}
	j.start(threads)
}

// skinnyM is the largest m sent to the fused row-decoding path.
const skinnyM = 16

// SgemmNT computes C = A·Bᵀ (+ C when accumulate) with A m×k (stride lda),
// B n×k (stride ldb) and C m×n (stride ldc), all row-major:
// C[i][j] = Σ_p a[i*lda+p]·b[j*ldb+p]. threads as in MatMulT.
func SgemmNT(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool, threads int) {
	gemmCheckDims(m, n, k)
	gemmCheckMat("A", a, m, k, lda)
	gemmCheckMat("B", b, n, k, ldb)
	gemmCheckMat("C", c, m, n, ldc)
	j := newJob(m, n, k, a, lda, false, c, ldc, accumulate)
	j.b, j.ldb, j.bl = b, ldb, bRowsNK
	j.start(threads)
}

// SgemmNN computes C = A·B (+ C when accumulate) with A m×k (stride lda),
// B k×n (stride ldb) and C m×n (stride ldc), all row-major:
// C[i][j] = Σ_p a[i*lda+p]·b[p*ldb+j]. threads as in MatMulT.
func SgemmNN(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool, threads int) {
	gemmCheckDims(m, n, k)
	gemmCheckMat("A", a, m, k, lda)
	gemmCheckMat("B", b, k, n, ldb)
	gemmCheckMat("C", c, m, n, ldc)
	j := newJob(m, n, k, a, lda, false, c, ldc, accumulate)
	j.b, j.ldb, j.bl = b, ldb, bRowsKN
	j.start(threads)
}

// SgemmTN computes C = Aᵀ·B (+ C when accumulate) with A k×m (stride lda),
// B k×n (stride ldb) and C m×n (stride ldc), all row-major:
// C[i][j] = Σ_p a[p*lda+i]·b[p*ldb+j]. threads as in MatMulT.
func SgemmTN(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool, threads int) {
	gemmCheckDims(m, n, k)
	gemmCheckMat("A", a, k, m, lda)
	gemmCheckMat("B", b, k, n, ldb)
	gemmCheckMat("C", c, m, n, ldc)
	j := newJob(m, n, k, a, lda, true, c, ldc, accumulate)
	j.b, j.ldb, j.bl = b, ldb, bRowsKN
	j.start(threads)
}

func gemmCheckDims(m, n, k int) {
	if m < 0 || n < 0 || k < 0 {
		panic("kernels: negative dimension")
	}
}

// gemmCheckMat checks that x holds a rows×cols row-major matrix with stride ld.
func gemmCheckMat(name string, x []float32, rows, cols, ld int) {
	if ld < max(cols, 1) {
		panic("kernels: stride of " + name + " below its width")
	}
	if rows > 0 && cols > 0 && len(x) < (rows-1)*ld+cols {
		panic("kernels: " + name + " too short")
	}
}

func gemmCheckF32(b *F32Matrix) {
	if b.Stride < 0 {
		panic("kernels: negative F32Matrix stride")
	}
	gemmCheckMat("B", b.Data, b.N, b.K, b.stride())
}

// bLayout says where B's elements come from.
type bLayout uint8

const (
	bRowsNK bLayout = iota // float32, element (n, p) at b[n*ldb+p]
	bRowsKN                // float32, element (n, p) at b[p*ldb+n]
	bTiled                 // BMatrix.Tile
)

// gemmKern is a micro-kernel (see sgemmKern14x32).
type gemmKern func(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)

// gemmLevel is one implementation of the engine.
type gemmLevel struct {
	name string
	// mr×nr is the micro-kernel's tile of C; tb the largest block trBlock
	// transposes.
	mr, nr, tb int
	// kern[r] is the kernel for a panel of r valid rows, 1 ≤ r ≤ mr: the
	// shortest variant that covers them (all compute the same sums).
	kern     [16]gemmKern
	variants []kernVariant
	// dot[m], where not nil, computes C = A·Bᵀ for an A of m rows and a
	// float32 B read in place: the skinny path, which skips packing.
	dot     [gemmDotRows + 1]gemmDot
	trBlock func(dst []float32, ldd int, src []float32, lds int, rows, cols int)
}

// gemmDot is a dot-product kernel of the skinny path (see sgemmDot8x3).
type gemmDot func(k int, a []float32, lda int, b0, b1, b2 []float32, c []float32, ldc, nc int, accum bool)

// gemmDotRows bounds the rows of A that take the skinny path, and
// gemmDotChunk is the rows of B (columns of C) in one of its items.
const (
	gemmDotRows  = 8
	gemmDotChunk = 48
)

// kernVariant is a micro-kernel for panels of at most rows rows.
type kernVariant struct {
	rows int
	kern gemmKern
}

// newGemmLevel builds a level from its kernel variants, tallest first.
func newGemmLevel(name string, nr, tb int, tr func([]float32, int, []float32, int, int, int), vs ...kernVariant) *gemmLevel {
	lv := &gemmLevel{name: name, mr: vs[0].rows, nr: nr, tb: tb, trBlock: tr, variants: vs}
	for r := 1; r <= lv.mr; r++ {
		for _, v := range vs {
			if v.rows >= r {
				lv.kern[r] = v.kern
			}
		}
	}
	return lv
}

// gemmJob is one product, split into items of C (row chunks × column
// chunks) that workers take in turn.
type gemmJob struct {
	lv      *gemmLevel
	m, n, k int
	a       []float32
	lda     int
	aT      bool // A stored k×m
	b       []float32
	ldb     int
	bl      bLayout
	bm      BMatrix
	c       []float32
	ldc     int
	acc     bool
	dot     gemmDot // the skinny path's kernel, or nil

	// The schedule (see plan): C is cut into chunks of mh rows by nw
	// columns, nm×nn of them, and the depth into nk blocks of kcBlock. An
	// item is one chunk over one depth block.
	mh, nw, nm, nn, nk int
	// Chunks are taken in groups of gsz; within a group the items run
	// depth block by depth block, so that each worker packs its rows of A
	// once per depth block, not once per item.
	gsz   int
	total int64 // items
	next  atomic.Int64
	// done[p] counts the depth blocks finished for the chunk in slot p of
	// its group, over all groups so far (group g, block pc is number
	// g·nk+pc): an item waits until its chunk's previous block is in C.
	done [maxGroup]atomic.Int64
	wg   sync.WaitGroup
}

// maxGroup bounds the chunks in flight at once.
const maxGroup = 64

var gemmJobPool = sync.Pool{New: func() any { return new(gemmJob) }}

func newJob(m, n, k int, a []float32, lda int, aT bool, c []float32, ldc int, acc bool) *gemmJob {
	j := gemmJobPool.Get().(*gemmJob)
	j.lv = levels[level()]
	j.m, j.n, j.k = m, n, k
	j.a, j.lda, j.aT = a, lda, aT
	j.c, j.ldc, j.acc = c, ldc, acc
	return j
}

// start runs the job on up to threads goroutines (the caller's included)
// and returns it to the pool.
func (j *gemmJob) start(threads int) {
	defer j.release()
	if j.m == 0 || j.n == 0 {
		return
	}
	if j.k == 0 {
		if !j.acc {
			for i := 0; i < j.m; i++ {
				clear(j.c[i*j.ldc : i*j.ldc+j.n])
			}
		}
		return
	}
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	// Below about a million multiply-adds the hand-off costs more than
	// it saves.
	if int64(j.m)*int64(j.n)*int64(j.k) < 1<<20 {
		threads = 1
	}
	if j.bl == bRowsNK && j.m <= gemmDotRows {
		j.dot = j.lv.dot[j.m]
	}
	if j.dot != nil {
		j.nw = gemmDotChunk
		j.total = int64(gemmCeilDiv(j.n, gemmDotChunk))
	} else {
		j.plan(threads)
	}
	j.next.Store(0)
	for p := range j.gsz {
		j.done[p].Store(0)
	}
	runParallel(j, int(min(int64(threads), j.total)))
}

func (j *gemmJob) release() {
	j.a, j.b, j.c, j.bm, j.lv, j.dot = nil, nil, nil, nil, nil, nil
	gemmJobPool.Put(j)
}

// plan chooses the chunks: rows by at most mcMax (a multiple of mr), the
// columns by TileN (one packed block of B per item), wider only to keep
// the chunks of a row range within maxGroup; and rows cut finer when there
// are too few column chunks to keep the threads busy.
func (j *gemmJob) plan(threads int) {
	mr := j.lv.mr
	nm := gemmCeilDiv(j.m, mcMax)
	j.mh = gemmRoundUp(gemmCeilDiv(j.m, nm), mr)
	j.nm = gemmCeilDiv(j.m, j.mh)
	j.nw = max(TileN, gemmRoundUp(gemmCeilDiv(j.n, maxGroup), TileN))
	j.nn = gemmCeilDiv(j.n, j.nw)
	if want := 2 * threads; threads > 1 && j.nm*j.nn < want && j.m > mr {
		nm = min(gemmCeilDiv(j.m, mr), gemmCeilDiv(want, j.nn))
		j.mh = gemmRoundUp(gemmCeilDiv(j.m, nm), mr)
		j.nm = gemmCeilDiv(j.m, j.mh)
	}
	j.nk = gemmCeilDiv(j.k, kcBlock)
	j.gsz = min(j.nm*j.nn, maxGroup)
	j.total = int64(j.nm) * int64(j.nn) * int64(j.nk)
}

// work takes items until none are left.
func (j *gemmJob) work() {
	if j.dot != nil {
		j.workDot()
		return
	}
	buf := gemmBufs.Get().(*gemmBuf)
	curM, curK := -1, -1 // the rows and depth block packed in buf.a
	pairs := j.nm * j.nn
	for {
		s := j.next.Add(1) - 1
		if s >= j.total {
			break
		}
		g := int(s / int64(j.gsz*j.nk))
		r := int(s % int64(j.gsz*j.nk))
		gs := min(j.gsz, pairs-g*j.gsz)
		pc, slot := r/gs, r%gs
		pair := g*j.gsz + slot
		im, in := pair/j.nn, pair%j.nn
		i0, n0, p0 := im*j.mh, in*j.nw, pc*kcBlock
		i1, kc := min(i0+j.mh, j.m), min(kcBlock, j.k-p0)
		if im != curM || pc != curK {
			j.packA(buf.a, i0, i1, p0, kc)
			curM, curK = im, pc
		}
		// Wait for the chunk's previous depth block, taken earlier by
		// some worker and almost always finished by now.
		phase := int64(g*j.nk + pc)
		for spins := 0; j.done[slot].Load() < phase; spins++ {
			switch {
			case spins > 200:
				// Its worker lost its CPU: do not compete for one.
				time.Sleep(20 * time.Microsecond)
			case spins > 64:
				runtime.Gosched()
			}
		}
		j.item(buf, i0, i1, n0, min(n0+j.nw, j.n), p0, kc)
		j.done[slot].Store(phase + 1)
	}
	gemmBufs.Put(buf)
}

// workDot takes items of the skinny path: gemmDotChunk columns of C each, by
// three at a time, over the whole depth.
func (j *gemmJob) workDot() {
	for {
		s := j.next.Add(1) - 1
		if s >= j.total {
			return
		}
		n0 := int(s) * j.nw
		n1 := min(n0+j.nw, j.n)
		for n := n0; n < n1; n += 3 {
			nc := min(3, n1-n)
			b0 := j.b[n*j.ldb:]
			b1 := j.b[(n+min(1, nc-1))*j.ldb:]
			b2 := j.b[(n+min(2, nc-1))*j.ldb:]
			j.dot(j.k, j.a, j.lda, b0, b1, b2, j.c[n:], j.ldc, nc, j.acc)
		}
	}
}

// item adds A[i0:i1, p0:p0+kc]·B[p0:p0+kc, n0:n1] to C (or stores it, for
// the first depth block without accumulate), with A already packed: for
// each TileN columns it packs B and runs the micro-kernel over the B panels
// (kept in L1) and, inside, the A panels (streamed from L2).
func (j *gemmJob) item(buf *gemmBuf, i0, i1, n0, n1, p0, kc int) {
	lv := j.lv
	mr, nr := lv.mr, lv.nr
	accum := j.acc || p0 > 0
	for nb0 := n0; nb0 < n1; nb0 += TileN {
		nb1 := min(nb0+TileN, n1)
		j.packB(buf, nb0, nb1, p0, kc)
		for jn := nb0; jn < nb1; jn += nr {
			nc := min(nr, nb1-jn)
			bp := buf.b[(jn-nb0)*kc:]
			for ii := i0; ii < i1; ii += mr {
				rows := min(mr, i1-ii)
				lv.kern[rows](kc, buf.a[(ii-i0)*aStride:], bp, j.c[ii*j.ldc+jn:], j.ldc, rows, nc, accum)
			}
		}
	}
}

func gemmCeilDiv(a, b int) int { return (a + b - 1) / b }

func gemmRoundUp(a, b int) int { return gemmCeilDiv(a, b) * b }
