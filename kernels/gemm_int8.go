package kernels

import (
	"encoding/binary"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// The int8 GEMM: MatMulT against a *Q4_0Matrix or *Q8_0Matrix with more
// than skinnyM rows of A (a prompt), with the int8 path on ([SetInt8Dot])
// on a CPU with AVX512-VNNI at the avx512 level. Each row of A is quantized
// to int8 per 32-block as on the skinny int8 path (quantizeRowQ8) and
// packed 8 rows at a time (packInt8Rows); the weight is packed 16 rows at a
// time into the layout VPDPBUSD wants (pack*PanelVNNI: the codes as
// unsigned bytes, nibble or code+128, the offset removed by corr), and an
// 8×16 kernel sums the products of the codes and the activation codes in
// int32 — 64 per instruction, four times the float32 FMA's 16 — scaling
// each block's integer sum by the weight's scale times the activation
// block's in float32. The numerics (and the bound the tests check) are the
// skinny int8 path's: every C[i, n] is Σ_b float32(Σ_j code·qa)·(d·da)
// accumulated over the blocks in order, so 1 and N threads agree bit for
// bit. Elsewhere (the switch off, no VNNI) MatMulT takes the float32
// tiles.

// Packed layouts: an activation panel block is 8×32 codes, 8 da, 8 corr;
// a weight panel block is 8 groups of 16×4 codes and 16 scales.
const (
	i8ABlock = 8*ggmlQK + 8*4 + 8*4
	i8BBlock = 8*64 + 16*4
)

// int8GemmUsable reports whether MatMulT takes the int8 GEMM.
func int8GemmUsable() bool {
	return haveInt8Gemm && hasAVX512VNNI && level() == featAVX512 && int8DotOn.Load()
}

// packInt8Rows quantizes rows i0 … i0+7 of A (those below m; the rest
// zero) per 32-block and writes them to dst in the kernel's layout: per
// block b, at dst[b·i8ABlock:], the codes qa[r][32], then da[r] float32,
// then corr[r] = −off·Σ qa[r] (the kernel multiplies code+off: Q4_0's
// nibbles, off 8, or Q8_0's codes + 128).
func packInt8Rows(dst []byte, a []float32, lda, i0, m, k int, off int32, tmp *q8Act) {
	nb := k / ggmlQK
	for r := range 8 {
		i := i0 + r
		if i >= m {
			for b := range nb {
				blk := dst[b*i8ABlock:]
				clear(blk[ggmlQK*r : ggmlQK*(r+1)])
				binary.LittleEndian.PutUint32(blk[256+4*r:], 0)
				binary.LittleEndian.PutUint32(blk[288+4*r:], 0)
			}
			continue
		}
		quantizeRowQ8(tmp, a[i*lda:i*lda+k], off)
		for b := range nb {
			blk := dst[b*i8ABlock:]
			q := blk[ggmlQK*r : ggmlQK*(r+1)]
			for j, v := range tmp.qa[ggmlQK*b : ggmlQK*(b+1)] {
				q[j] = byte(v)
			}
			var s int32
			for _, c := range tmp.corr[8*b : 8*b+8] {
				s += c
			}
			binary.LittleEndian.PutUint32(blk[256+4*r:], math.Float32bits(tmp.da[b]))
			binary.LittleEndian.PutUint32(blk[288+4*r:], uint32(s))
		}
	}
}

// int8Job is one int8 GEMM: first the activation panels are packed
// (phase 0, items of one panel), then the weight panels of 16 rows are
// multiplied with all of them (phase 1).
type int8Job struct {
	c     []float32
	ldc   int
	a     []float32
	lda   int
	m, k  int
	b     *ggmlMatrix
	q8    bool // B is Q8_0, else Q4_0
	acc   bool
	apack []byte
	pad   []byte // the last weight panel's rows, zero-padded to 16
	phase int
	items int
	next  atomic.Int64
	wg    sync.WaitGroup
	bufs  *sync.Pool
}

func (j *int8Job) group() *sync.WaitGroup { return &j.wg }

func (j *int8Job) work() {
	nb := j.k / ggmlQK
	if j.phase == 0 {
		tmp := q8Act{qa: make([]int8, j.k), da: make([]float32, nb), corr: make([]int32, j.k/4)}
		for {
			p := int(j.next.Add(1) - 1)
			if p >= j.items {
				return
			}
			packInt8Rows(j.apack[p*nb*i8ABlock:(p+1)*nb*i8ABlock], j.a, j.lda, 8*p, j.m, j.k, j.off(), &tmp)
		}
	}
	bp := j.bufs.Get().(*[]byte)
	if cap(*bp) < nb*i8BBlock {
		*bp = make([]byte, nb*i8BBlock)
	}
	bbuf := (*bp)[:nb*i8BBlock]
	mp := (j.m + 7) / 8
	for {
		it := int(j.next.Add(1) - 1)
		if it >= j.items {
			break
		}
		n0 := 16 * it
		cols := min(16, j.b.n-n0)
		src, ldb := j.b.data[n0*j.b.rowBytes:], j.b.rowBytes
		if cols < 16 {
			// The last panel: its rows, then zero rows (scale 0).
			pad := j.pad[:16*ldb]
			clear(pad[copy(pad, src[:cols*ldb]):])
			src = pad
		}
		_ = src[16*ldb-1]
		var offs [16]int32
		for c := range offs {
			offs[c] = int32(c * ldb)
		}
		if j.q8 {
			packQ8_0PanelVNNI(&bbuf[0], &src[0], ldb, nb, &offs)
		} else {
			packQ4_0PanelVNNI(&bbuf[0], &src[0], ldb, nb, &offs)
		}
		mask := uint16(1)<<cols - 1
		if cols == 16 {
			mask = 0xffff
		}
		for p := range mp {
			rows := min(8, j.m-8*p)
			_ = j.c[(8*p+rows-1)*j.ldc+n0+cols-1]
			int8Kern8x16VNNI(&j.c[8*p*j.ldc+n0], j.ldc, &j.apack[p*nb*i8ABlock], &bbuf[0], nb, rows, mask, j.acc)
		}
	}
	j.bufs.Put(bp)
}

// off is the offset the packed weight codes carry.
func (j *int8Job) off() int32 {
	if j.q8 {
		return 128
	}
	return 8
}

var (
	int8APool = sync.Pool{New: func() any { return new([]byte) }}
	int8BPool = sync.Pool{New: func() any { return new([]byte) }}
)

// int8MatMulT is MatMulT for a Q8_0 (q8) or Q4_0 B on the int8 GEMM
// (int8GemmUsable); the arguments are checked.
func int8MatMulT(c []float32, ldc int, a []float32, lda, m int, b *ggmlMatrix, q8 bool, accumulate bool, threads int) {
	if m == 0 || b.n == 0 {
		return
	}
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	nb := b.k / ggmlQK
	mp := (m + 7) / 8
	ap := int8APool.Get().(*[]byte)
	defer int8APool.Put(ap)
	if cap(*ap) < mp*nb*i8ABlock {
		*ap = make([]byte, mp*nb*i8ABlock)
	}
	j := &int8Job{c: c, ldc: ldc, a: a, lda: lda, m: m, k: b.k, b: b, q8: q8, acc: accumulate, apack: (*ap)[:mp*nb*i8ABlock], bufs: &int8BPool}
	if b.n%16 != 0 {
		j.pad = make([]byte, 16*b.rowBytes)
	}
	j.items = mp
	runParallel(j, min(threads, j.items))
	j.phase, j.items = 1, (b.n+15)/16
	j.next.Store(0)
	runParallel(j, min(threads, j.items))
}
