//go:build !noasm

package kernels

// Fused kernels of the skinny product against K-quant weights
// (gemv_kquant_amd64.s). Each takes ng ≥ 1 groups of four rows, row r of
// group g at w + (4g+r)·ldw bytes, each of nb ≥ 1 blocks, and the
// activations a (nb·256 of them), and adds to out[4g+r]
//
//	Σ_k a[k]·x[k]   (float32, 16 lanes, summed at the end of the group)
//
// with x the values of q4KBlocksGeneric, q5KBlocksGeneric or
// q6KBlocksGeneric bit for bit. ldw may be 0 (one row, four times).

//go:noescape
func q4KDotAVX512(out *float32, w *byte, ldw, ng int, a *float32, nb int)

//go:noescape
func q5KDotAVX512(out *float32, w *byte, ldw, ng int, a *float32, nb int)

//go:noescape
func q6KDotAVX512(out *float32, w *byte, ldw, ng int, a *float32, nb int)

// The K-quant types, for kDotRows.
const (
	kTypeQ4K = iota
	kTypeQ5K
	kTypeQ6K
)

func q4KDotRows(out []float32, w []byte, a []float32, lvl feature) {
	if lvl != featAVX512 {
		q4KDotRowsGeneric(out, w, a)
		return
	}
	kDotRows(kTypeQ4K, q4KBytes, out, w, a)
}

func q5KDotRows(out []float32, w []byte, a []float32, lvl feature) {
	if lvl != featAVX512 {
		q5KDotRowsGeneric(out, w, a)
		return
	}
	kDotRows(kTypeQ5K, q5KBytes, out, w, a)
}

func q6KDotRows(out []float32, w []byte, a []float32, lvl feature) {
	if lvl != featAVX512 {
		q6KDotRowsGeneric(out, w, a)
		return
	}
	kDotRows(kTypeQ6K, q6KBytes, out, w, a)
}

// kDotRows computes out[t] += w_t·a with the AVX-512 kernel of type typ
// (blocks of bb bytes) for the len(out) rows w_t of len(a)/256 blocks
// stored one after the other in w: the rows in groups of four, then the
// last ones one at a time.
func kDotRows(typ, bb int, out []float32, w []byte, a []float32) {
	n, nb := len(out), len(a)/kQK
	if n == 0 || nb == 0 {
		return
	}
	ldw := nb * bb
	_ = w[n*ldw-1]
	if ng := n / 4; ng > 0 {
		kDotCall(typ, &out[0], &w[0], ldw, ng, &a[0], nb)
	}
	for r := n &^ 3; r < n; r++ {
		var o [4]float32
		kDotCall(typ, &o[0], &w[r*ldw], 0, 1, &a[0], nb)
		out[r] += o[0]
	}
}

// kDotCall calls typ's kernel (directly, so that no pointer escapes).
func kDotCall(typ int, out *float32, w *byte, ldw, ng int, a *float32, nb int) {
	switch typ {
	case kTypeQ4K:
		q4KDotAVX512(out, w, ldw, ng, a, nb)
	case kTypeQ5K:
		q5KDotAVX512(out, w, ldw, ng, a, nb)
	default:
		q6KDotAVX512(out, w, ldw, ng, a, nb)
	}
}
