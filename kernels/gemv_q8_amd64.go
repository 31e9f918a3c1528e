//go:build !noasm

package kernels

import "unsafe"

// Fused kernels of the skinny product against Q8_0 and Q4_0 weights
// (gemv_q8_amd64.s). Each takes ng groups of four weight rows, row r of
// group g at w + (4g+r)·ldw, with nb blocks each, and one activation row,
// and adds every row's dot product to out[4g+r]. nb, ng ≥ 1; ldw may be 0.
//
// q8_0DotAVX512, q8_0DotAVX2 (Q8_0 rows, 34-byte blocks) and
// q4_0DotF32AVX512, q4_0DotF32AVX2 (Q4_0 rows, 18-byte blocks) read float32
// activations a (32·nb of them); with q_j the codes (Q4_0: nibble − 8) and
// d the scale of block b,
//
//	out[4g+r] += Σ_b d_b·(Σ_j float32(q_j)·a[32b+j])   (float32, lanes as in the .s file)
//
// q4_0DotVNNI and q4_0DotAVX2 read Q4_0 rows (18-byte blocks) against an
// activation row quantized by quantizeRowQ8 (codes qa, scales da, lane
// corrections corr = −8·(sum of each 4 codes)); with u the nibbles (code+8),
//
//	out[4g+r] += Σ_b Σ_lane float32(corr[8b+lane] + Σ_{t<4} u_{4·lane+t}·qa[32b+4·lane+t]) · (d_b·da[b])
//
// the integer sums exact (Σ (u−8)·qa), then scaled and added in float32.

//go:noescape
func q8_0DotAVX512(out *float32, w *byte, ldw, ng int, a *float32, nb int)

//go:noescape
func q8_0DotAVX2(out *float32, w *byte, ldw, ng int, a *float32, nb int)

//go:noescape
func q4_0DotF32AVX512(out *float32, w *byte, ldw, ng int, a *float32, nb int)

//go:noescape
func q4_0DotF32AVX2(out *float32, w *byte, ldw, ng int, a *float32, nb int)

//go:noescape
func q4_0DotVNNI(out *float32, w *byte, ldw, ng int, qa *byte, da *float32, corr *int32, nb int)

//go:noescape
func q4_0DotAVX2(out *float32, w *byte, ldw, ng int, qa *byte, da *float32, corr *int32, nb int)

// q4_0DotVNNIPairs is q4_0DotVNNI two blocks per step, over nb pairs of
// blocks, against the pair layout of the activation row (qa, da, corr are
// q8Act's pqa, dap, pcorr): the two blocks' nibbles fill one zmm, whose 16
// int32 lanes (VPDPBUSD) are scaled by da times the fp16 weight scale of
// their block.
//
//go:noescape
func q4_0DotVNNIPairs(out *float32, w *byte, ldw, ng int, qa *byte, da *float32, corr *int32, nb int)

// q8_0DotVNNIPairs multiplies Q8_0 rows (34-byte blocks) with an
// activation row quantized by quantizeRowQ8 with offset q8CorrOffset, two
// blocks per step over nb pairs: the 64 codes of blocks b and b+1 (plain
// layout, as the activations) offset by 128 to unsigned bytes fill one
// zmm, VPDPBUSD sums code+128 times qa in 16 int32 lanes (8 per block),
// corr removes 128·Σqa, and each lane is scaled by d·da of its block:
//
//	out[4g+r] += Σ_b Σ_lane float32(corr + Σ_{t<4} (code+128)·qa) · (d_b·da[b])
//
//go:noescape
func q8_0DotVNNIPairs(out *float32, w *byte, ldw, ng int, qa *byte, da *float32, corr *int32, nb int)

// q8CorrOffset is the offset the Q8_0 int8 kernels add to a code.
const q8CorrOffset = 128

// q8Int8Level reports whether MatVecT's skinny Q8_0 products take int8
// activations at level lvl (when SetInt8Dot is on).
func q8Int8Level(lvl feature) bool { return lvl == featAVX512 && hasAVX512VNNI }

// q8DotRowsInt8 computes out[r] += w_r·x for the Q8_0 rows w_r = w[r·ldw:]
// of nb = len(a.da) blocks, r < len(out), against x quantized in a with
// offset q8CorrOffset, at a level where q8Int8Level holds
// (q8DotRowsInt8Generic is the reference): pairs of blocks in the kernel,
// a last odd block in Go.
func q8DotRowsInt8(out []float32, w []byte, ldw int, a *q8Act, lvl feature) {
	nb, n := len(a.da), len(out)
	if nb == 0 || n == 0 {
		return
	}
	if !q8Int8Level(lvl) {
		q8DotRowsInt8Generic(out, w, ldw, a)
		return
	}
	_ = w[(n-1)*ldw+nb*q8_0Bytes-1]
	_ = a.qa[ggmlQK*nb-1]
	_ = a.corr[8*nb-1]
	if np := nb / 2; np > 0 {
		qa, da, corr := (*byte)(unsafe.Pointer(&a.qa[0])), &a.da[0], &a.corr[0]
		var o [4]float32
		for r := 0; r < n; {
			p, ld, ng, dst := &w[r*ldw], ldw, (n-r)/4, &out[r]
			tail := ng == 0
			if tail {
				o = [4]float32{}
				ld, ng, dst = 0, 1, &o[0]
			}
			q8_0DotVNNIPairs(dst, p, ld, ng, qa, da, corr, np)
			if tail {
				out[r] += o[0]
				r++
			} else {
				r += 4 * ng
			}
		}
	}
	if nb%2 == 1 {
		for r := range out {
			out[r] += q8BlockInt8(w[r*ldw+(nb-1)*q8_0Bytes:], a, nb-1)
		}
	}
}

// q4PairLayout reports whether q4DotRows at level lvl wants the pair
// layout of the activations (q8Act.layPairs).
func q4PairLayout(lvl feature) bool { return lvl == featAVX512 && hasAVX512VNNI }

// qDotRows computes out[r] += w_r·a for the rows w_r = w[r·ldw:] of
// nb = len(a)/32 blocks (Q8_0 when q8, else Q4_0), r < len(out), at level
// lvl (qDotRowsGeneric is the reference).
func qDotRows(out []float32, w []byte, ldw int, a []float32, q8 bool, lvl feature) {
	nb, n := len(a)/ggmlQK, len(out)
	if nb == 0 || n == 0 {
		return
	}
	if lvl < featAVX2 {
		qDotRowsGeneric(out, w, ldw, a, q8)
		return
	}
	bb := q4_0Bytes
	if q8 {
		bb = q8_0Bytes
	}
	_ = w[(n-1)*ldw+nb*bb-1]
	// Groups of four rows, then the last rows one at a time (the four rows
	// of the group are that row).
	var o [4]float32
	for r := 0; r < n; {
		p, ld, ng, dst := &w[r*ldw], ldw, (n-r)/4, out[r:]
		tail := ng == 0
		if tail {
			ld, ng, dst = 0, 1, o[:]
			o = [4]float32{}
		}
		switch {
		case q8 && lvl == featAVX512:
			q8_0DotAVX512(&dst[0], p, ld, ng, &a[0], nb)
		case q8:
			q8_0DotAVX2(&dst[0], p, ld, ng, &a[0], nb)
		case lvl == featAVX512:
			q4_0DotF32AVX512(&dst[0], p, ld, ng, &a[0], nb)
		default:
			q4_0DotF32AVX2(&dst[0], p, ld, ng, &a[0], nb)
		}
		if tail {
			out[r] += o[0]
			r++
		} else {
			r += 4 * ng
		}
	}
}

// q4DotRows computes out[r] += w_r·x for the Q4_0 rows w_r = w[r·ldw:] of
// nb = len(a.da) blocks, r < len(out), against x quantized in a, at level
// lvl (q4DotRowsGeneric is the reference).
func q4DotRows(out []float32, w []byte, ldw int, a *q8Act, lvl feature) {
	nb, n := len(a.da), len(out)
	if nb == 0 || n == 0 {
		return
	}
	if lvl < featAVX2 {
		q4DotRowsGeneric(out, w, ldw, a)
		return
	}
	_ = w[(n-1)*ldw+nb*q4_0Bytes-1]
	_ = a.qa[ggmlQK*nb-1]
	_ = a.corr[8*nb-1]
	qa, da, corr := (*byte)(unsafe.Pointer(&a.qa[0])), &a.da[0], &a.corr[0]
	vnni := lvl == featAVX512 && hasAVX512VNNI
	// With the pair layout, the pairs of blocks and then a last odd block
	// (its plain codes, at block nb−1).
	np := len(a.dap) / 16
	pairs := vnni && np > 0
	var pqa *byte
	var dap *float32
	var pcorr *int32
	if pairs {
		_ = a.pqa[64*np-1]
		_ = a.pcorr[16*np-1]
		pqa, dap, pcorr = (*byte)(unsafe.Pointer(&a.pqa[0])), &a.dap[0], &a.pcorr[0]
	}
	last := nb - 1
	var o [4]float32
	for r := 0; r < n; {
		p, ld, ng, dst := &w[r*ldw], ldw, (n-r)/4, out[r:]
		tail := ng == 0
		if tail {
			ld, ng, dst = 0, 1, o[:]
			o = [4]float32{}
		}
		switch {
		case pairs:
			q4_0DotVNNIPairs(&dst[0], p, ld, ng, pqa, dap, pcorr, np)
			if nb%2 == 1 {
				q4_0DotVNNI(&dst[0], &w[r*ldw+last*q4_0Bytes], ld, ng,
					(*byte)(unsafe.Pointer(&a.qa[last*ggmlQK])), &a.da[last], &a.corr[8*last], 1)
			}
		case vnni:
			q4_0DotVNNI(&dst[0], p, ld, ng, qa, da, corr, nb)
		default:
			q4_0DotAVX2(&dst[0], p, ld, ng, qa, da, corr, nb)
		}
		if tail {
			out[r] += o[0]
			r++
		} else {
			r += 4 * ng
		}
	}
}

// q4CorrOffset is the offset the kernels at level lvl add to a Q4_0 code
// (the nibble is code+8), which quantizeRowQ8's corr removes; the generic
// kernel needs none.
func q4CorrOffset(lvl feature) int32 {
	if lvl >= featAVX2 {
		return 8
	}
	return 0
}

// prefetchLines asks for the n bytes at p (n ≥ 1) into L1, one PREFETCHT0
// per 64-byte line; it never faults.
//
//go:noescape
func prefetchLines(p *byte, n int)

// prefetch asks for the cache lines of b.
func prefetch(b []byte) {
	if len(b) > 0 {
		prefetchLines(&b[0], len(b))
	}
}
