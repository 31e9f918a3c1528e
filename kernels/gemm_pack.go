package kernels

import (
	"sync"
	"unsafe"
)

// gemmBuf is one worker's packing space, sized by the blocking, not by the
// problem: a (mcMax rows of A, aStride apart), b (TileN columns of B as
// panels of kcBlock×nr) and t (a TileN×TileK tile from BMatrix.Tile).
type gemmBuf struct {
	a, b, t []float32
}

var gemmBufs = sync.Pool{New: func() any {
	return &gemmBuf{
		a: gemmAligned(mcMax * aStride),
		b: gemmAligned(TileN * kcBlock),
	}
}}

// gemmAligned returns n zeroed float32s starting on a 64-byte boundary,
// so that vector loads of packed panels never split a cache line.
func gemmAligned(n int) []float32 {
	s := make([]float32, n+16)
	off := int(uintptr(unsafe.Pointer(&s[0]))%64) / 4
	if off != 0 {
		off = 16 - off
	}
	return s[off : off+n : off+n]
}

// packA copies rows i0..i1 and columns p0..p0+kc of A into dst as panels of
// mr rows: row r of the panel starting at row ii is at dst[(ii-i0+r)*aStride:]
// (kc float32s). Rows past i1 in the last panel are zeroed.
func (j *gemmJob) packA(dst []float32, i0, i1, p0, kc int) {
	mr := j.lv.mr
	if j.aT {
		// A is k×m: a row of the panel is a column of A.
		j.lv.transpose(dst, aStride, j.a[p0*j.lda+i0:], j.lda, kc, i1-i0)
	} else {
		for i := i0; i < i1; i++ {
			copy(dst[(i-i0)*aStride:(i-i0)*aStride+kc], j.a[i*j.lda+p0:i*j.lda+p0+kc])
		}
	}
	for i := i1; i < gemmRoundUp(i1-i0, mr)+i0; i++ {
		clear(dst[(i-i0)*aStride : (i-i0)*aStride+kc])
	}
}

// packB packs columns nb0..nb1 of C's B (rows nb0..nb1 of the N×K matrix)
// over depth p0..p0+kc into buf.b as panels of nr columns: the panel of
// column jn holds B(jn+c, p0+p) at buf.b[(jn-nb0)*kc + p*nr + c]. Columns
// past nb1 in the last panel are zeroed.
func (j *gemmJob) packB(buf *gemmBuf, nb0, nb1, p0, kc int) {
	lv := j.lv
	nr := lv.nr
	dst := buf.b
	switch j.bl {
	case bRowsNK:
		for jn := nb0; jn < nb1; jn += nr {
			nc := min(nr, nb1-jn)
			lv.transpose(dst[(jn-nb0)*kc:], nr, j.b[jn*j.ldb+p0:], j.ldb, nc, kc)
		}
	case bTiled:
		if buf.t == nil {
			buf.t = gemmAligned(TileN * TileK)
		}
		j.bm.Tile(buf.t[:(nb1-nb0)*kc], nb0, nb1, p0, p0+kc)
		for jn := nb0; jn < nb1; jn += nr {
			nc := min(nr, nb1-jn)
			lv.transpose(dst[(jn-nb0)*kc:], nr, buf.t[(jn-nb0)*kc:], kc, nc, kc)
		}
	case bRowsKN:
		for jn := nb0; jn < nb1; jn += nr {
			nc := min(nr, nb1-jn)
			pd := dst[(jn-nb0)*kc:]
			src := j.b[p0*j.ldb+jn:]
			switch {
			case nc == 32 && nr == 32:
				for p := range kc {
					*(*[32]float32)(pd[p*32:]) = *(*[32]float32)(src[p*j.ldb:])
				}
			case nc == 16 && nr == 16:
				for p := range kc {
					*(*[16]float32)(pd[p*16:]) = *(*[16]float32)(src[p*j.ldb:])
				}
			case nc == 4 && nr == 4:
				for p := range kc {
					*(*[4]float32)(pd[p*4:]) = *(*[4]float32)(src[p*j.ldb:])
				}
			default:
				for p := range kc {
					copy(pd[p*nr:p*nr+nc], src[p*j.ldb:p*j.ldb+nc])
				}
			}
		}
	}
	// Zero the columns of the last panel past nb1.
	if rem := (nb1 - nb0) % nr; rem != 0 {
		pd := dst[(nb1-nb0-rem)*kc:]
		for p := range kc {
			clear(pd[p*nr+rem : p*nr+nr])
		}
	}
}

// transpose writes dst[c*ldd+r] = src[r*lds+c] for r < rows, c < cols,
// by blocks of the level's trBlock.
func (lv *gemmLevel) transpose(dst []float32, ldd int, src []float32, lds int, rows, cols int) {
	tb := lv.tb
	for r := 0; r < rows; r += tb {
		rb := min(tb, rows-r)
		for c := 0; c < cols; c += tb {
			lv.trBlock(dst[c*ldd+r:], ldd, src[r*lds+c:], lds, rb, min(tb, cols-c))
		}
	}
}
