package kernels

// The fused skinny product against f16 and bf16 weights (MatVecT with one
// row of A: token generation). Each stored row is read once, in place:
// the kernels widen 32 values at a time to float32 in registers and
// multiply them with the activations there, instead of decoding four rows
// into a buffer and reading it back (the decoding path, which stays for
// the products with more rows of A, where the decoded rows are shared).

// halfFusedRows is the most rows of A the fused 16-bit kernels take; past
// one the decoding path shares each decoded row between them.
const halfFusedRows = 1

func (m *F16Matrix) fusedRows(rows int, lvl feature) bool {
	return rows <= halfFusedRows && halfFusedLevel(lvl)
}

func (m *F16Matrix) fusedDot(out []float32, r int, a []float32, lvl feature) {
	halfDotRows(out, m.data[2*r*m.k:], 2*m.k, a, false, lvl)
}

func (m *BF16Matrix) fusedRows(rows int, lvl feature) bool {
	return rows <= halfFusedRows && halfFusedLevel(lvl)
}

func (m *BF16Matrix) fusedDot(out []float32, r int, a []float32, lvl feature) {
	halfDotRows(out, m.data[2*r*m.k:], 2*m.k, a, true, lvl)
}

// halfDotRowsGeneric is the reference of the fused 16-bit kernels over the
// columns [k0, len(a)) of the rows w_r = w[r·ldw:], r < len(out) (bfloat16
// when bf, else binary16):
//
//	out[r] += Σ_{k0≤k<len(a)} float32(w_r[k])·a[k]   (in float32)
func halfDotRowsGeneric(out []float32, w []byte, ldw int, a []float32, k0 int, bf bool) {
	if k0 >= len(a) {
		return
	}
	var vals [4]float32
	for r := range out {
		row := w[r*ldw:]
		var s [4]float32
		for k := k0; k < len(a); k += 4 {
			n := min(4, len(a)-k)
			src := row[2*k : 2*(k+n)]
			if bf {
				bf16BytesToF32Generic(vals[:n], src)
			} else {
				f16BytesToF32Generic(vals[:n], src)
			}
			for t := range n {
				s[t] += vals[t] * a[k+t]
			}
		}
		out[r] += (s[0] + s[1]) + (s[2] + s[3])
	}
}
