package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The bf16 dot-product path: MatMulT against a *BF16Matrix with more than
// skinnyM rows of A, on CPUs with AVX512-BF16 at the avx512 level, rounds A
// to bfloat16 while packing it and multiplies with VDPBF16PS, which takes
// pairs of bfloat16 products (k = 2p and 2p+1) and adds them to float32
// accumulators. B's stored bfloat16 pairs are packed without conversion.
//
// Numerics differ from the float32 path: each a[i,p] is rounded to
// bfloat16 (round to nearest even, as quantize.F32ToBF16; relative error at
// most 2^-9), and the exact pairwise products are added in float32 two at a
// time in k-pair order, with bfloat16 and float32 subnormals flushed to zero
// (VDPBF16PS ignores MXCSR). For odd K the last pair is padded with zero.
// The error bound the tests check is
//
//	|C - Σ a·b| ≤ 2^-8·Σ|a·b| + (K+2)·2^-24·Σ|a·b|
//
// As on the float32 path, every element of C is summed in one fixed order,
// so 1 and N threads give identical results. [SetBF16Dot] turns the path
// on or off (off, C matches the float32 path for the bf16-decoded B).

// bf16DotDefault is whether the path is on before any SetBF16Dot call. It
// is off for now: TestMatMulTWeights (gemv_test.go) holds every weight type,
// bf16 included, to the float32 path's error bound, which bf16-rounded A
// exceeds.
const bf16DotDefault = false

// bf16DotOn enables the path.
var bf16DotOn atomic.Bool

func init() { bf16DotOn.Store(bf16DotDefault) }

// SetBF16Dot enables or disables the AVX512-BF16 path of MatMulT for
// *BF16Matrix weights (disabled by default; when enabled it is used only
// where the CPU has AVX512-BF16 and the level in use is avx512) and returns
// a function that restores the previous setting. Disabled, bf16 weights are
// dequantized to float32 tile by tile and multiplied in float32, like the
// other types. Calls running concurrently with it may use either path.
func SetBF16Dot(enabled bool) (restore func()) {
	prev := bf16DotOn.Swap(enabled)
	return func() { bf16DotOn.Store(prev) }
}

// BF16Dot reports whether MatMulT would now multiply a *BF16Matrix with
// more than 16 rows of A on the AVX512-BF16 path.
func BF16Dot() bool { return bf16DotUsable() }

func bf16DotUsable() bool {
	return haveBF16Asm && hasAVX512BF16 && level() == featAVX512 && bf16DotOn.Load()
}

// Blocking of the bf16 path (k counted in pairs of bfloat16).
const (
	bf16MR = 14
	bf16NR = 32
	// bf16KP is the pairs in a depth block of kcBlock.
	bf16KP = kcBlock / 2
	// bf16AStride is the distance between packed A rows, in pairs; the
	// padding keeps the rows of a panel off the same cache sets. The
	// assembly has it built in (BSTR).
	bf16AStride = bf16KP + 8
	// bf16MC bounds the rows of C in an item.
	bf16MC = 672
	// bf16PackRows is the rows of A an item of the packing phase converts.
	bf16PackRows = 32
)

// bf16Kern is a micro-kernel (see bf16Kern14x32); bf16Kerns[r] covers
// panels of r valid rows.
type bf16Kern func(kp int, a, b []uint32, c []float32, ldc, mr, nc int, accum bool)

var bf16Kerns [bf16MR + 1]bf16Kern

// bf16Job is one product: first A is packed whole (items of bf16PackRows
// rows by one depth block), then items of C (mh rows by TileN columns) run
// over the whole depth.
type bf16Job struct {
	m, n, k int
	a       []float32
	lda     int
	b       *BF16Matrix
	bf      []float32 // B's pairs as 32-bit words, row stride k/2, when fast
	c       []float32
	ldc     int
	acc     bool

	// pa is packed A: depth block pc, row i at pa[(pc*mPad+i)*bf16AStride:],
	// kp pairs, rows m..mPad zero.
	pa       []uint32
	mPad, nk int

	packing        bool
	mh, nm, nn, ng int
	total          int64
	next           atomic.Int64
	wg             sync.WaitGroup
}

func (j *bf16Job) group() *sync.WaitGroup { return &j.wg }

var bf16JobPool = sync.Pool{New: func() any { return new(bf16Job) }}

// bf16Bufs holds workers' packed B tiles: TileN columns by bf16KP pairs.
var bf16Bufs = sync.Pool{New: func() any {
	s := make([]uint32, TileN*bf16KP+16)
	off := int(uintptr(unsafe.Pointer(&s[0]))%64) / 4
	if off != 0 {
		off = 16 - off
	}
	s = s[off : off+TileN*bf16KP : off+TileN*bf16KP]
	return &s
}}

// bf16MatMulT is MatMulT for a bf16 B on the VDPBF16PS kernels; the caller
// has checked the arguments and bf16DotUsable.
func bf16MatMulT(c []float32, ldc int, a []float32, lda int, m int, b *BF16Matrix, accumulate bool, threads int) {
	n, k := b.n, b.k
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !accumulate {
			for i := 0; i < m; i++ {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	if int64(m)*int64(n)*int64(k) < 1<<20 {
		threads = 1
	}
	j := bf16JobPool.Get().(*bf16Job)
	defer func() {
		j.a, j.b, j.bf, j.c = nil, nil, nil, nil
		bf16JobPool.Put(j)
	}()
	j.m, j.n, j.k = m, n, k
	j.a, j.lda, j.b, j.c, j.ldc, j.acc = a, lda, b, c, ldc, accumulate
	// B's rows start on 4-byte words when k is even; then its pairs can
	// be transposed as float32s.
	if k%2 == 0 && uintptr(unsafe.Pointer(&b.data[0]))%4 == 0 {
		j.bf = unsafe.Slice((*float32)(unsafe.Pointer(&b.data[0])), n*k/2)
	}
	j.mPad = gemmRoundUp(m, bf16MR)
	j.nk = gemmCeilDiv(k, kcBlock)
	if need := j.nk * j.mPad * bf16AStride; cap(j.pa) < need {
		j.pa = make([]uint32, need)
	} else {
		j.pa = j.pa[:need]
	}

	// Phase 1: pack A.
	j.packing = true
	j.ng = gemmCeilDiv(m, bf16PackRows)
	j.total = int64(j.nk * j.ng)
	j.next.Store(0)
	runParallel(j, int(min(int64(threads), j.total)))

	// Phase 2: the product.
	j.packing = false
	j.nn = gemmCeilDiv(n, TileN)
	nm := gemmCeilDiv(m, bf16MC)
	if want := 2 * threads; threads > 1 && nm*j.nn < want {
		nm = min(gemmCeilDiv(m, bf16MR), gemmCeilDiv(want, j.nn))
	}
	j.mh = gemmRoundUp(gemmCeilDiv(m, nm), bf16MR)
	j.nm = gemmCeilDiv(m, j.mh)
	j.total = int64(j.nm * j.nn)
	j.next.Store(0)
	runParallel(j, int(min(int64(threads), j.total)))
}

func (j *bf16Job) work() {
	if j.packing {
		j.workPack()
		return
	}
	bp := bf16Bufs.Get().(*[]uint32)
	for {
		s := j.next.Add(1) - 1
		if s >= j.total {
			break
		}
		im, in := int(s)%j.nm, int(s)/j.nm
		i0, n0 := im*j.mh, in*TileN
		j.item(*bp, i0, min(i0+j.mh, j.m), n0, min(n0+TileN, j.n))
	}
	bf16Bufs.Put(bp)
}

// workPack rounds rows of A to bfloat16 pairs in pa.
func (j *bf16Job) workPack() {
	for {
		s := j.next.Add(1) - 1
		if s >= j.total {
			return
		}
		pc, g := int(s)/j.ng, int(s)%j.ng
		p0 := pc * kcBlock
		kc := min(kcBlock, j.k-p0)
		kp := (kc + 1) / 2
		r0, r1 := g*bf16PackRows, min((g+1)*bf16PackRows, j.m)
		for i := r0; i < r1; i++ {
			row := j.pa[(pc*j.mPad+i)*bf16AStride:][:kp]
			h := unsafe.Slice((*uint16)(unsafe.Pointer(&row[0])), 2*kp)
			bf16RoundRow(h[:kc], j.a[i*j.lda+p0:i*j.lda+p0+kc])
			if kc%2 != 0 {
				h[kc] = 0
			}
		}
		if r1 == j.m {
			for i := j.m; i < j.mPad; i++ {
				clear(j.pa[(pc*j.mPad+i)*bf16AStride:][:kp])
			}
		}
	}
}

// item computes C[i0:i1, n0:n1] over the whole depth: per depth block it
// packs the B tile and runs the kernels over its panels (kept in L1) and,
// inside, the A panels.
func (j *bf16Job) item(bp []uint32, i0, i1, n0, n1 int) {
	for pc := 0; pc < j.nk; pc++ {
		p0 := pc * kcBlock
		kc := min(kcBlock, j.k-p0)
		kp := (kc + 1) / 2
		j.packB(bp, n0, n1, p0, kc)
		accum := j.acc || pc > 0
		pa := j.pa[pc*j.mPad*bf16AStride:]
		for jn := n0; jn < n1; jn += bf16NR {
			nc := min(bf16NR, n1-jn)
			bpan := bp[(jn-n0)*kp:]
			for ii := i0; ii < i1; ii += bf16MR {
				rows := min(bf16MR, i1-ii)
				bf16Kerns[rows](kp, pa[ii*bf16AStride:], bpan, j.c[ii*j.ldc+jn:], j.ldc, rows, nc, accum)
			}
		}
	}
}

// packB packs rows n0..n1 of B over depth p0..p0+kc into dst as panels of
// bf16NR columns: pair p of column jn+c (B(jn+c, p0+2p) in the low half,
// B(jn+c, p0+2p+1) or zero past kc in the high half) at
// dst[(jn-n0)*kp + p*bf16NR + c]. Columns past n1 in the last panel are
// zeroed.
func (j *bf16Job) packB(dst []uint32, n0, n1, p0, kc int) {
	kp := (kc + 1) / 2
	if j.bf != nil {
		lv := levels[level()]
		ld := j.k / 2
		df := unsafe.Slice((*float32)(unsafe.Pointer(&dst[0])), len(dst))
		for jn := n0; jn < n1; jn += bf16NR {
			nc := min(bf16NR, n1-jn)
			lv.transpose(df[(jn-n0)*kp:], bf16NR, j.bf[jn*ld+p0/2:], ld, nc, kp)
		}
	} else {
		d, k := j.b.data, j.k
		for jn := n0; jn < n1; jn += bf16NR {
			nc := min(bf16NR, n1-jn)
			pd := dst[(jn-n0)*kp:]
			for c := range nc {
				row := d[2*((jn+c)*k+p0):]
				for p := range kp {
					w := uint32(row[4*p]) | uint32(row[4*p+1])<<8
					if 2*p+1 < kc {
						w |= uint32(row[4*p+2])<<16 | uint32(row[4*p+3])<<24
					}
					pd[p*bf16NR+c] = w
				}
			}
		}
	}
	if rem := (n1 - n0) % bf16NR; rem != 0 {
		pd := dst[(n1-n0-rem)*kp:]
		for p := range kp {
			clear(pd[p*bf16NR+rem : p*bf16NR+bf16NR])
		}
	}
}
