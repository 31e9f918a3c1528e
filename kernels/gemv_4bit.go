package kernels

// The fused skinny product against bitsandbytes 4-bit weights (MatVecT,
// and so MatMulT, with one or two rows of A, fourBitFusedRows: token
// generation). The codes are read once, in place, and no weight row is
// ever decoded to a float32 buffer: each block's codes index the 16-entry table in registers, the
// table values are multiplied with the activations and summed, and the
// block's sum is scaled by its absmax (fourBitDotRowsGeneric). That is
// bitsandbytes' value table[c]·absmax up to the reassociation of float32
// products, which the float32 path's bound covers.
//
// An absmax that is NaN makes its row's output NaN; one that is ±Inf makes
// it ±Inf or NaN (NaN where the block's sum is zero), as the decoding path
// does, whose values table[c]·±Inf are themselves ±Inf or NaN.
//
// The fused kernels serve only a K that is a multiple of the block size,
// where every row starts a block; otherwise (blocks straddling rows) the
// decoding path runs.

// fourBitFusedRows is the most rows of A MatVecT multiplies with the fused
// kernels at level lvl. Like Q8_0's and Q4_0's (qFusedRows), they redo the
// table lookups for every row of A, which the decoding path does once for
// four rows (BenchmarkFourBitFused, one goroutine, NF4 4096×4096): with
// AVX-512 and in pure Go the fused path is still as fast or faster at two
// rows; the AVX2 lookup (two VPERMPS and a blend per 8 codes) is
// slower than decoding there (1.4 against 2.1 GB/s), so AVX2 fuses one row.
func fourBitFusedRows(lvl feature) int {
	if lvl == featAVX2 {
		return 1
	}
	return 2
}

// fusedRows reports whether the fused kernels serve m rows of A at level
// lvl: at most fourBitFusedRows(lvl), and K a multiple of the block size.
func (m *FourBitMatrix) fusedRows(rows int, lvl feature) bool {
	return rows <= fourBitFusedRows(lvl) && m.k%m.bs == 0
}

// fusedDot adds Σ_k a[k]·B[r+t, k] to out[t] for t < len(out); len(a) is
// K, which fusedRows has checked to be a multiple of the block size.
func (m *FourBitMatrix) fusedDot(out []float32, r int, a []float32, lvl feature) {
	n := len(out)
	if n == 0 {
		return
	}
	ldw, lds := m.k/2, m.k/m.bs
	fourBitDotRows(out, m.packed[r*ldw:(r+n)*ldw], m.absmax[r*lds:(r+n)*lds], m.table, a[:m.k], m.bs, lvl)
}

// fourBitDotRowsGeneric is the reference of the fused kernels: for the
// rows w_t of len(a) elements (len(a) a multiple of bs), t < len(out),
// packed one after the other (two codes per byte, element 2j in the high
// nibble) with one absmax per bs elements,
//
//	out[t] += Σ_b absmax_b·(Σ_j table[code_j]·a[bs·b+j])
//
// in float32, in block order.
func fourBitDotRowsGeneric(out []float32, packed []byte, absmax []float32, table *[16]float32, a []float32, bs int) {
	k := len(a)
	ldw, lds := k/2, k/bs
	for t := range out {
		row := packed[t*ldw : (t+1)*ldw]
		var acc float32
		for b, s := range absmax[t*lds : (t+1)*lds] {
			ab := a[b*bs : (b+1)*bs]
			var s0, s1 float32
			for j, c := range row[b*bs/2 : (b+1)*bs/2] {
				s0 += table[c>>4] * ab[2*j]
				s1 += table[c&15] * ab[2*j+1]
			}
			acc += s * (s0 + s1)
		}
		out[t] += acc
	}
}
