//go:build !noasm

package kernels

// Fused 16-bit kernels (gemv_half_amd64.s). Each takes ng ≥ 1 groups of
// four weight rows, row r of group g at w + (4g+r)·ldw (ldw may be 0), k
// columns (a positive multiple of 32) of binary16 (f16DotAVX512) or
// bfloat16 (bf16DotAVX512) values each, and one float32 activation row a,
// and adds every row's dot product to out[4g+r].

//go:noescape
func f16DotAVX512(out *float32, w *byte, ldw, ng int, a *float32, k int)

//go:noescape
func bf16DotAVX512(out *float32, w *byte, ldw, ng int, a *float32, k int)

// f16DotAVX2 and bf16DotAVX2 are the AVX2 kernels: k a positive multiple
// of 16.
//
//go:noescape
func f16DotAVX2(out *float32, w *byte, ldw, ng int, a *float32, k int)

//go:noescape
func bf16DotAVX2(out *float32, w *byte, ldw, ng int, a *float32, k int)

// halfFusedLevel reports whether lvl has fused 16-bit kernels.
func halfFusedLevel(lvl feature) bool { return lvl >= featAVX2 }

// halfDotRows computes out[r] += w_r·a for the rows w_r = w[r·ldw:] of
// len(a) 16-bit values (bfloat16 when bf, else binary16), r < len(out), at
// level lvl (halfDotRowsGeneric is the reference): the kernels take the
// columns up to the last multiple of 32 (AVX2: 16), the reference the rest.
func halfDotRows(out []float32, w []byte, ldw int, a []float32, bf bool, lvl feature) {
	n, k := len(out), len(a)
	step := 32 // columns per kernel step
	if lvl == featAVX2 {
		step = 16
	}
	k32 := k / step * step
	if n == 0 || k == 0 {
		return
	}
	if lvl < featAVX2 || k32 == 0 {
		halfDotRowsGeneric(out, w, ldw, a, 0, bf)
		return
	}
	_ = w[(n-1)*ldw+2*k-1]
	// Groups of four rows, then the last rows one at a time (the four rows
	// of the group are that row). The kernels are called directly: through
	// a func value o would escape to the heap.
	var o [4]float32
	for r := 0; r < n; {
		p, ld, ng, dst := &w[r*ldw], ldw, (n-r)/4, &out[r]
		tail := ng == 0
		if tail {
			o = [4]float32{}
			ld, ng, dst = 0, 1, &o[0]
		}
		switch {
		case lvl == featAVX512 && bf:
			bf16DotAVX512(dst, p, ld, ng, &a[0], k32)
		case lvl == featAVX512:
			f16DotAVX512(dst, p, ld, ng, &a[0], k32)
		case bf:
			bf16DotAVX2(dst, p, ld, ng, &a[0], k32)
		default:
			f16DotAVX2(dst, p, ld, ng, &a[0], k32)
		}
		if tail {
			out[r] += o[0]
			r++
		} else {
			r += 4 * ng
		}
	}
	if k32 < k {
		halfDotRowsGeneric(out, w, ldw, a, k32, bf)
	}
}
