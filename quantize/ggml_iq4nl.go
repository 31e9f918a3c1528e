package quantize

// IQ4_NL (GGUF-LLAMACPP.md §3, §3.1): 32-element blocks of 18 bytes, d fp16
// then 16 bytes of nibbles packed as Q4_0; x = d·K[q] with the fixed
// non-uniform codebook K. The quantizer is quantize_row_iq4_nl_impl with
// super-block = block = 32 and ntry = 7, as quantize_iq4_nl (what
// llama-quantize calls) runs it without an importance matrix.

// iq4nlValues is the IQ4_NL codebook K (kvalues_iq4nl).
var iq4nlValues = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// iq4nlF is K as float32, the form the search compares against.
var iq4nlF = func() (k [16]float32) {
	for i, v := range iq4nlValues {
		k[i] = float32(v)
	}
	return k
}()

// iq4nlNTry is the number of trial scales on each side of the first guess.
const iq4nlNTry = 7

// iq4nlUpper[f] is the number of codebook values ≤ f−128, clamped to
// [1, 15], for f in [0, 255]: for K[0] < x < K[15], ggml's bisection ends
// on the pair (K[hi−1], K[hi]) with hi = #{K[i] ≤ x} = #{K[i] ≤ floor(x)},
// the codebook being integers.
var iq4nlUpper = func() (t [256]uint8) {
	for f := range t {
		n := 0
		for _, k := range iq4nlValues {
			if int(k) <= f-128 {
				n++
			}
		}
		t[f] = uint8(min(15, max(1, n)))
	}
	return t
}()

// iq4nlBestIndex is ggml's best_index_int8 over K: 0 at or below K[0], 15
// at or above K[15] (and for NaN), else the nearer of the bracketing pair
// (K[hi−1], K[hi]), the upper one on ties, decided by the same float32
// comparison x − K[hi−1] < K[hi] − x as ggml's.
//
// The pair comes from iq4nlUpper[trunc(fl(x+128))] instead of the bisection.
// fl(x+128) can round x up to the next integer n+1 only when x > n+1−2⁻¹⁶;
// if n+1 = K[i] this names the pair (K[i], K[i+1]) instead of (K[i−1], K[i]),
// but both comparisons then pick i (x − K[i] < 0 < K[i+1] − x, and
// x − K[i−1] > 11 > K[i] − x), so the result is ggml's in every case
// (TestIQ4NLBestIndex checks it against the bisection).
func iq4nlBestIndex(x float32) int {
	if x <= -127 {
		return 0
	}
	if !(x < 113) {
		return 15
	}
	hi := int(iq4nlUpper[uint8(int32(x+128))])
	lo := hi - 1
	return hi - ggmlB2I(x-iq4nlF[lo&15] < iq4nlF[hi&15]-x)
}

// ggmlB2I is 1 for true, 0 for false, without a branch.
func ggmlB2I(b bool) int {
	var i int
	if b {
		i = 1
	}
	return i
}

// iq4nlSums returns Σ(w·K[L])·x and Σ(w·K[L])·K[L] for L = best_index(id·x),
// summed in element order in float32 as ggml does.
func iq4nlSums(x, w *[ggmlQK]float32, id float32) (sqx, sq2 float32) {
	for j, v := range x {
		q := iq4nlF[iq4nlBestIndex(float32(id*v))&15]
		wq := float32(w[j] * q)
		sqx += float32(wq * v)
		sq2 += float32(wq * q)
	}
	return sqx, sq2
}

// quantIQ4NL quantizes whole IQ4_NL blocks:
//
//	w = x²; max = signed absolute maximum (first on ties); amax < 1e-15 → d = 0
//	d = −max/K[0]; L = best_index(x·(1/d)); d = Σwqx/Σwq² (0 if Σwq² = 0); best = d·Σwqx
//	for t = −7..7: id = (t+K[0])/max; take d = Σwqx/Σwq² when Σwq² > 0 and Σwqx² > best·Σwq²
//	store fp16(d); L = best_index(x·(1/d)); pack as Q4_0
func quantIQ4NL(dst []byte, src []float32) {
	var w [ggmlQK]float32
	var l [ggmlQK]uint8
	for ; len(src) >= ggmlQK; src, dst = src[ggmlQK:], dst[18:] {
		x := (*[ggmlQK]float32)(src)
		y := (*[18]byte)(dst)
		for j, v := range x {
			w[j] = float32(v * v)
		}
		amax, maxv := ggmlAbsMax(x)
		var d float32
		if amax >= ggmlGroupMaxEps {
			sqx, sq2 := iq4nlSums(x, &w, 1/(-maxv/iq4nlF[0]))
			if sq2 > 0 {
				d = sqx / sq2
			}
			best := float32(d * sqx)
			for t := -iq4nlNTry; t <= iq4nlNTry; t++ {
				id := float32(t+int(iq4nlValues[0])) / maxv
				sqx, sq2 := iq4nlSums(x, &w, id)
				if sq2 > 0 && float32(sqx*sqx) > float32(best*sq2) {
					d = sqx / sq2
					best = float32(d * sqx)
				}
			}
		}
		ggmlPutF16(y[0:], d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		for j, v := range x {
			l[j] = uint8(iq4nlBestIndex(float32(id * v)))
		}
		for j := range 16 {
			y[2+j] = l[j] | l[j+16]<<4
		}
	}
}

func dequantIQ4NL(dst []float32, src []byte) {
	for ; len(dst) >= ggmlQK; src, dst = src[18:], dst[ggmlQK:] {
		y := (*[ggmlQK]float32)(dst)
		x := (*[18]byte)(src)
		d := ggmlF16(x[:])
		for j := range 16 {
			b := x[2+j]
			y[j] = d * iq4nlF[b&15]
			y[j+16] = d * iq4nlF[b>>4]
		}
	}
}
