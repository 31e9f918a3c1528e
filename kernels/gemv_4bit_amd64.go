//go:build !noasm

package kernels

// Fused kernels of the skinny product against bitsandbytes 4-bit weights
// (gemv_4bit_amd64.s).
//
// fourBitSplitAVX512 and fourBitSplitAVX2 de-interleave n activations (n a positive multiple
// of 32) from src into dst, 32 at a time: the 16 even elements, then the
// 16 odd ones,
//
//	dst[32c+j], dst[32c+16+j] = src[32c+2j], src[32c+2j+1]   (j < 16)
//
// so that a byte's two codes (element 2j in the high nibble, 2j+1 in the
// low one) meet their activations in the same lane.
//
// fourBitDotAVX512 and fourBitDotAVX2 take ng groups of four weight rows, row r of group g
// at w + (4g+r)·ldw bytes with its absmax at absmax + (4g+r)·lds, each of
// nb segments of seg elements (seg a multiple of 32) scaled by one absmax
// each, and the activations a split by fourBitSplitAVX512 (nb·seg of
// them), and add to out[4g+r]
//
//	Σ_s absmax[s]·(Σ_j table[code_j]·a[seg·s+j])   (float32, 16 or 8 lanes)
//
// ldw and lds may be 0 (one row, four times). nb, ng ≥ 1.

//go:noescape
func fourBitSplitAVX512(dst, src *float32, n int)

//go:noescape
func fourBitDotAVX512(out *float32, w *byte, ldw, ng int, a, absmax *float32, lds, nb, seg int, table *[16]float32)

//go:noescape
func fourBitSplitAVX2(dst, src *float32, n int)

//go:noescape
func fourBitDotAVX2(out *float32, w *byte, ldw, ng int, a, absmax *float32, lds, nb, seg int, table *[16]float32)

// fourBitChunk is the columns of A split per pass over the rows: 8 KiB of
// stack, which stays in L1 while the rows stream past it.
const fourBitChunk = 2048

// fourBitDotRows computes out[t] += w_t·a for the rows w_t of len(a)
// elements (a multiple of bs) packed one after the other, t < len(out), at
// level lvl (fourBitDotRowsGeneric is the reference). A is split in
// chunks of fourBitChunk columns (bs and the chunk are powers of two, so a
// chunk holds whole blocks or lies inside one); each chunk meets every
// row, in groups of four, then the last rows one at a time.
func fourBitDotRows(out []float32, packed []byte, absmax []float32, table *[16]float32, a []float32, bs int, lvl feature) {
	n, k := len(out), len(a)
	if n == 0 || k == 0 {
		return
	}
	if lvl < featAVX2 {
		fourBitDotRowsGeneric(out, packed, absmax, table, a, bs)
		return
	}
	ldw, lds := k/2, k/bs
	_ = packed[n*ldw-1]
	_ = absmax[n*lds-1]
	seg := min(bs, fourBitChunk)
	var buf [fourBitChunk]float32
	var o [4]float32
	for c0 := 0; c0 < k; c0 += fourBitChunk {
		cw := min(fourBitChunk, k-c0)
		if lvl == featAVX512 {
			fourBitSplitAVX512(&buf[0], &a[c0], cw)
		} else {
			fourBitSplitAVX2(&buf[0], &a[c0], cw)
		}
		w0, s0, nb := c0/2, c0/bs, cw/seg
		for r := 0; r < n; {
			p, s := &packed[r*ldw+w0], &absmax[r*lds+s0]
			ldp, ldm, ng, dst := ldw, lds, (n-r)/4, out[r:]
			tail := ng == 0
			if tail {
				ldp, ldm, ng, dst = 0, 0, 1, o[:]
				o = [4]float32{}
			}
			if lvl == featAVX512 {
				fourBitDotAVX512(&dst[0], p, ldp, ng, &buf[0], s, ldm, nb, seg, table)
			} else {
				fourBitDotAVX2(&dst[0], p, ldp, ng, &buf[0], s, ldm, nb, seg, table)
			}
			if tail {
				out[r] += o[0]
				r++
			} else {
				r += 4 * ng
			}
		}
	}
}
