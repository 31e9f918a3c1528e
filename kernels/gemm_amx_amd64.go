//go:build !noasm

package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// amxAvailable reports whether the CPU has AMX-BF16 and the OS granted this
// process the tile state; it asks once.
var amxAvailable = sync.OnceValue(func() bool {
	return cpu.X86.HasAMXTile && cpu.X86.HasAMXBF16 && detected == featAVX512 && amxRequestPerm()
})

// amxKern32x32 multiplies two A panels (a0, a1: nkb tiles each, 1 KiB
// apart) with a packed B (bp: per block, two tiles) and stores the 32×32
// float32 product to c (row stride 32), with the tile configuration cfg
// (amxCfg). nkb ≥ 1. See gemm_amx_amd64.s.
//
//go:noescape
func amxKern32x32(cfg *byte, a0, a1, bp *byte, nkb int, c *float32)

// Tiles: 16 rows of 64 bytes (32 bfloat16 of A; 16 pairs of B for 16
// columns; 16 float32 of C).
const (
	amxTileBytes = 1024
	amxKC        = 512 // B columns decoded at a time (a multiple of 32)
)

// amxCfg is the tile configuration (palette 1): tiles 0–3 hold C, 4–5 A,
// 6–7 B, each 16 rows of 64 bytes.
var amxCfg = func() (c [64]byte) {
	c[0] = 1
	for t := range 8 {
		c[16+2*t] = 64
		c[48+t] = 16
	}
	return c
}()

// amxJob is one AMX product: first A is packed (phase 0, items of 16
// rows), then B is packed 32 rows at a time and multiplied with all of A
// (phase 1).
type amxJob struct {
	c     []float32
	ldc   int
	a     []float32
	lda   int
	m, k  int
	nkb   int // 32-column blocks of K
	b     BMatrix
	acc   bool
	apack []byte // per 16-row panel p, per block kb: the tile at (p·nkb+kb)·1 KiB
	phase int
	items int
	next  atomic.Int64
	wg    sync.WaitGroup
}

func (j *amxJob) group() *sync.WaitGroup { return &j.wg }

// amxBuf is a worker's scratch.
type amxBuf struct {
	row   []uint16  // one row of A in bfloat16, K padded to 32
	f     []float32 // 32 decoded rows of B, amxKC columns
	h     []uint16  // the same in bfloat16
	bpack []byte    // B packed: per block kb, its two tiles at (2kb+t)·1 KiB
	ctile [32 * 32]float32
}

var amxBufPool = sync.Pool{New: func() any { return new(amxBuf) }}

func (j *amxJob) work() {
	buf := amxBufPool.Get().(*amxBuf)
	defer amxBufPool.Put(buf)
	kp := 32 * j.nkb
	if j.phase == 0 {
		buf.row = growSlice(buf.row, kp)
		for {
			p := int(j.next.Add(1) - 1)
			if p >= j.items {
				return
			}
			j.packA(buf.row, p)
		}
	}
	buf.f = growSlice(buf.f, 32*amxKC)
	buf.h = growSlice(buf.h, 32*amxKC)
	buf.bpack = growSlice(buf.bpack, 2*j.nkb*amxTileBytes)
	n := j.b.Rows()
	mq := (j.m + 31) / 32
	for {
		it := int(j.next.Add(1) - 1)
		if it >= j.items {
			return
		}
		n0 := 32 * it
		cols := min(32, n-n0)
		j.packB(buf, n0, cols)
		for q := range mq {
			a0 := j.apack[2*q*j.nkb*amxTileBytes:]
			a1 := j.apack[(2*q+1)*j.nkb*amxTileBytes:]
			amxKern32x32(&amxCfg[0], &a0[0], &a1[0], &buf.bpack[0], j.nkb, &buf.ctile[0])
			rows := min(32, j.m-32*q)
			for i := range rows {
				cr := j.c[(32*q+i)*j.ldc+n0 : (32*q+i)*j.ldc+n0+cols]
				src := buf.ctile[32*i : 32*i+cols]
				if j.acc {
					for t, v := range src {
						cr[t] += v
					}
				} else {
					copy(cr, src)
				}
			}
		}
	}
}

// packA writes the rows 16p … 16p+15 of A (zero past m and past K) as
// bfloat16 into panel p's tiles.
func (j *amxJob) packA(row []uint16, p int) {
	dst := j.apack[p*j.nkb*amxTileBytes : (p+1)*j.nkb*amxTileBytes]
	for r := range 16 {
		i := 16*p + r
		if i >= j.m {
			for kb := range j.nkb {
				clear(dst[kb*amxTileBytes+64*r : kb*amxTileBytes+64*r+64])
			}
			continue
		}
		f32ToBF16(row[:j.k], j.a[i*j.lda:i*j.lda+j.k])
		clear(row[j.k:])
		for kb := range j.nkb {
			copy(dst[kb*amxTileBytes+64*r:kb*amxTileBytes+64*r+64], u16Bytes(row[32*kb:32*kb+32]))
		}
	}
}

// packB decodes the rows n0 … n0+cols−1 of B (zero past them and past K),
// rounds them to bfloat16 and packs them into buf.bpack: tile t of block
// kb holds, in its row p, the pairs (b[n0+16t+c, 32kb+2p], b[…, 32kb+2p+1])
// for c < 16 — a 16×16 transpose of the rows' 32-bit pairs.
func (j *amxJob) packB(buf *amxBuf, n0, cols int) {
	for k0 := 0; k0 < j.k; k0 += amxKC {
		k1 := min(j.k, k0+amxKC)
		w := k1 - k0
		wp := (w + 31) &^ 31
		j.b.Tile(buf.f[:cols*w], n0, n0+cols, k0, k1)
		for r := range 32 {
			h := buf.h[r*wp : (r+1)*wp]
			if r < cols {
				f32ToBF16(h[:w], buf.f[r*w:(r+1)*w])
				clear(h[w:])
			} else {
				clear(h)
			}
		}
		pairs := unsafe.Slice((*float32)(unsafe.Pointer(&buf.h[0])), 32*wp/2)
		for kb := range wp / 32 {
			for t := range 2 {
				o := (2*(k0/32+kb) + t) * amxTileBytes
				tile := unsafe.Slice((*float32)(unsafe.Pointer(&buf.bpack[o])), 256)
				transposeAVX512(tile, 16, pairs[16*t*wp/2+16*kb:], wp/2, 16, 16)
			}
		}
	}
}

// u16Bytes views uint16 values as their little-endian bytes.
func u16Bytes(h []uint16) []byte {
	if len(h) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&h[0])), 2*len(h))
}

var amxAPool = sync.Pool{New: func() any { return new([]byte) }}

// amxMatMulT is MatMulT on the AMX path (amxUsable); the arguments are
// checked.
func amxMatMulT(c []float32, ldc int, a []float32, lda, m int, b BMatrix, accumulate bool, threads int) {
	n, k := b.Rows(), b.Cols()
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !accumulate {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	nkb := (k + 31) / 32
	panels := 2 * ((m + 31) / 32)
	ap := amxAPool.Get().(*[]byte)
	defer amxAPool.Put(ap)
	*ap = growSlice(*ap, panels*nkb*amxTileBytes)
	j := &amxJob{c: c, ldc: ldc, a: a, lda: lda, m: m, k: k, nkb: nkb, b: b, acc: accumulate, apack: *ap}
	j.items = panels
	runParallel(j, min(threads, j.items))
	j.phase, j.items = 1, (n+31)/32
	j.next.Store(0)
	runParallel(j, min(threads, j.items))
}
