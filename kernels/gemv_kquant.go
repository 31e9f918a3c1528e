package kernels

// The fused skinny products against ggml's K-quant weights (MatVecT with
// one row of A, Q4_K two: token generation). The stored blocks are read once,
// in place, and no weight row is decoded to a float32 buffer: each code is
// turned into its value in registers and multiplied with the activation
// there. The values are those of the decoders (weights_kquant.go), bit for
// bit, so the fused sums differ from the decoding path only in the order
// of their float32 additions:
//
//   - Q4_K and Q5_K: a sub-block's 16 (Q5_K: 32) possible values
//     float32(d·sc_j·q) − dmin·m_j are computed once into a register, and
//     the codes index it (a lookup instead of a conversion, a product and a
//     subtraction per value);
//   - Q6_K: the codes minus 32 are converted and multiplied by their
//     group's d·scales[g], as the decoder does.
//
// Only AVX-512 is fused, and only one row of A (Q4_K: up to two;
// kFusedRows): elsewhere the decoding path runs.

// The most rows of A the fused kernels serve. The kernels convert the
// codes again for each row of A, which the decoding path does once per 16
// rows, so two rows take twice one row's time. On the dev VM
// (BenchmarkKQuantFused, one goroutine, 4096×4096, medians of 5 on a
// shared machine) one row is 1.7–2 times faster fused than decoded for all
// three types; at two rows Q4_K fused is still as fast or faster (3.5
// against 2.2–3.3 GB/s in two runs) but Q5_K and Q6_K are slower (2.5
// against 3.8, 4.0 against 4.7 GB/s).
const (
	q4KFusedRows = 2
	q5KFusedRows = 1
	q6KFusedRows = 1
)

// kFusedAll makes the fused kernels serve two rows of A for every type
// (BenchmarkKQuantFused times the choice).
var kFusedAll = false

// kFusedRows reports whether the fused K-quant kernels serve m rows of A
// at level lvl, for a type that fuses up to most rows.
func kFusedRows(m, most int, lvl feature) bool {
	if kFusedAll {
		most = 2
	}
	return m <= most && lvl == featAVX512
}

// fusedRows reports whether the fused kernels serve m rows of A at level lvl.
func (m *Q4_KMatrix) fusedRows(rows int, lvl feature) bool {
	return kFusedRows(rows, q4KFusedRows, lvl)
}

// fusedRows reports whether the fused kernels serve m rows of A at level lvl.
func (m *Q5_KMatrix) fusedRows(rows int, lvl feature) bool {
	return kFusedRows(rows, q5KFusedRows, lvl)
}

// fusedRows reports whether the fused kernels serve m rows of A at level lvl.
func (m *Q6_KMatrix) fusedRows(rows int, lvl feature) bool {
	return kFusedRows(rows, q6KFusedRows, lvl)
}

// fusedDot adds Σ_k a[k]·B[r+t, k] to out[t] for t < len(out); len(a) is K.
func (m *Q4_KMatrix) fusedDot(out []float32, r int, a []float32, lvl feature) {
	if n := len(out); n > 0 {
		q4KDotRows(out, m.data[r*m.rowBytes:(r+n)*m.rowBytes], a[:m.k], lvl)
	}
}

// fusedDot adds Σ_k a[k]·B[r+t, k] to out[t] for t < len(out); len(a) is K.
func (m *Q5_KMatrix) fusedDot(out []float32, r int, a []float32, lvl feature) {
	if n := len(out); n > 0 {
		q5KDotRows(out, m.data[r*m.rowBytes:(r+n)*m.rowBytes], a[:m.k], lvl)
	}
}

// fusedDot adds Σ_k a[k]·B[r+t, k] to out[t] for t < len(out); len(a) is K.
func (m *Q6_KMatrix) fusedDot(out []float32, r int, a []float32, lvl feature) {
	if n := len(out); n > 0 {
		q6KDotRows(out, m.data[r*m.rowBytes:(r+n)*m.rowBytes], a[:m.k], lvl)
	}
}

// q4KDotRowsGeneric is the reference of the fused Q4_K kernels: for the
// len(out) rows of len(a)/256 blocks stored one after the other in w,
//
//	out[t] += Σ_k a[k]·x_t[k],   x = float32(d·sc_j·q) − dmin·m_j
//
// in float32 (q4KBlocksGeneric's values), summed per 32 values (a
// sub-block) and then across them, which keeps the rounding error within
// the kernels' (a few K/32 roundings).
func q4KDotRowsGeneric(out []float32, w []byte, a []float32) {
	nb := len(a) / kQK
	for t := range out {
		var acc float32
		for b := range nb {
			blk := (*[q4KBytes]byte)(w[(t*nb+b)*q4KBytes:])
			ds, dm := kScales(blk[:])
			ab := a[b*kQK : (b+1)*kQK]
			for g := range 4 {
				qs := blk[16+32*g : 48+32*g]
				lo, hi := ab[64*g:64*g+32], ab[64*g+32:64*g+64]
				d0, m0, d1, m1 := ds[2*g], dm[2*g], ds[2*g+1], dm[2*g+1]
				var s0, s1 float32
				for l, c := range qs {
					s0 += lo[l] * (float32(d0*kLevel[c&15]) - m0)
					s1 += hi[l] * (float32(d1*kLevel[c>>4]) - m1)
				}
				acc += s0 + s1
			}
		}
		out[t] += acc
	}
}

// q5KDotRowsGeneric is the reference of the fused Q5_K kernels
// (q4KDotRowsGeneric with q5KBlocksGeneric's codes and values).
func q5KDotRowsGeneric(out []float32, w []byte, a []float32) {
	nb := len(a) / kQK
	for t := range out {
		var acc float32
		for b := range nb {
			blk := (*[q5KBytes]byte)(w[(t*nb+b)*q5KBytes:])
			ds, dm := kScales(blk[:])
			qh := blk[16:48]
			ab := a[b*kQK : (b+1)*kQK]
			for g := range 4 {
				qs := blk[48+32*g : 80+32*g]
				lo, hi := ab[64*g:64*g+32], ab[64*g+32:64*g+64]
				d0, m0, d1, m1 := ds[2*g], dm[2*g], ds[2*g+1], dm[2*g+1]
				var s0, s1 float32
				for l, c := range qs {
					h := qh[l] >> (2 * g)
					s0 += lo[l] * (float32(d0*kLevel[c&15|h&1<<4]) - m0)
					s1 += hi[l] * (float32(d1*kLevel[c>>4|h>>1&1<<4]) - m1)
				}
				acc += s0 + s1
			}
		}
		out[t] += acc
	}
}

// q6KDotRowsGeneric is the reference of the fused Q6_K kernels: as
// q4KDotRowsGeneric with q6KBlocksGeneric's values d·scales[g]·(q − 32).
func q6KDotRowsGeneric(out []float32, w []byte, a []float32) {
	nb := len(a) / kQK
	for t := range out {
		var acc float32
		for b := range nb {
			blk := (*[q6KBytes]byte)(w[(t*nb+b)*q6KBytes:])
			d := ggmlScale(blk[208:])
			ab := a[b*kQK : (b+1)*kQK]
			for h := range 2 {
				ql := blk[64*h : 64*h+64]
				qh := blk[128+32*h : 160+32*h]
				for c := range 4 {
					ah := ab[128*h+32*c : 128*h+32*c+32]
					var s float32
					for l := range 32 {
						q := ql[32*(c&1)+l]>>(4*(c>>1))&15 | qh[l]>>(2*c)&3<<4
						ds := d * float32(int8(blk[192+8*h+2*c+l/16]))
						s += ah[l] * float32(ds*kLevel6[q])
					}
					acc += s
				}
			}
		}
		out[t] += acc
	}
}
