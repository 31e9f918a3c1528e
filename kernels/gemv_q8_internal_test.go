package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// q8RandRows draws n weight rows of nb random blocks (Q8_0 when q8, else
// Q4_0), ldw bytes apart, with finite fp16 scales over a wide range, zero
// included.
func q8RandRows(r *rand.Rand, n, nb, ldw int, q8 bool) []byte {
	bb := q4_0Bytes
	if q8 {
		bb = q8_0Bytes
	}
	w := make([]byte, (n-1)*ldw+nb*bb)
	for j := range w {
		w[j] = byte(r.Uint32())
	}
	for i := range n {
		for b := range nb {
			h := uint16(r.IntN(0x7c00)) | uint16(r.IntN(2))<<15 // finite, either sign
			if r.IntN(10) == 0 {
				h = 0
			}
			binary.LittleEndian.PutUint16(w[i*ldw+b*bb:], h)
		}
	}
	return w
}

// qExact is what the kernels compute for row w in float64: Σ_b d_b·Σ_j
// code_j·x_j with x the activations a (int8 false) or their codes times the
// block scale (quant: the Q4_0 int8 path, from act), and the sum of the
// magnitudes of every product (which bounds every partial sum the kernels
// round, lanes included). Codes are Q8_0's int8, or Q4_0's nibble − 8.
func qExact(w []byte, q8 bool, a []float32, act *q8Act, quant bool) (exact, mag float64) {
	for b := range len(a) / ggmlQK {
		var s, sa float64
		d := ggmlScale(w[q4_0Bytes*b:])
		if q8 {
			d = ggmlScale(w[q8_0Bytes*b:])
		}
		for j := range ggmlQK {
			var c float64
			if q8 {
				c = float64(int8(w[q8_0Bytes*b+2+j]))
			} else {
				v := w[q4_0Bytes*b+2+j%16]
				if j >= 16 {
					v >>= 4
				}
				c = float64(v&15) - 8
			}
			x := float64(a[ggmlQK*b+j])
			if quant {
				x = float64(act.qa[ggmlQK*b+j])
			}
			s += c * x
			sa += math.Abs(c * x)
		}
		dd := float64(d)
		if quant {
			dd *= float64(act.da[b])
		}
		exact += s * dd
		mag += sa * math.Abs(dd)
	}
	return exact, mag
}

// TestQDotRowsLevels checks every Q8_0 and Q4_0 kernel this machine runs
// (the float32 ones, and the Q4_0 int8 ones against the same integer
// codes) against the float64 sum of the same products, for row counts
// around the groups of four and padded row strides: only the float32
// rounding may differ, |got − exact| ≤ (nb+40)·2⁻²³·Σ|products|. out starts
// nonzero (the kernels add to it), and nothing past it is written.
func TestQDotRowsLevels(t *testing.T) {
	r := gemmRand(t)
	forLevels(t, func(t *testing.T) {
		for _, mode := range []struct{ q8, int8, pairs bool }{{true, false, false}, {false, false, false}, {false, true, false}, {false, true, true}, {true, true, false}} {
			if mode.pairs && !q4PairLayout(level()) {
				continue
			}
			off := q4CorrOffset(level())
			if mode.q8 && mode.int8 {
				off = q8CorrOffset
			}
			bb := q4_0Bytes
			if mode.q8 {
				bb = q8_0Bytes
			}
			for _, nb := range []int{1, 2, 3, 7, 64, 257} {
				for _, n := range []int{1, 3, 4, 5, 8, 11, 64, 70} {
					ldw := nb*bb + r.IntN(2)*(1+r.IntN(40))
					w := q8RandRows(r, n, nb, ldw, mode.q8)
					x := randSlice(r, nb*ggmlQK)
					for i := range x {
						x[i] *= float32(math.Ldexp(1, r.IntN(20)-10))
					}
					a := q8Act{qa: make([]int8, nb*ggmlQK), da: make([]float32, nb), corr: make([]int32, nb*8)}
					quantizeRowQ8(&a, x, off)
					if mode.pairs {
						a.layPairs(make([]int8, nb*ggmlQK), make([]int32, nb*8), make([]float32, nb*16), off)
					}
					out := make([]float32, n+2)
					for i := range out {
						out[i] = float32(i + 1)
					}
					switch {
					case mode.int8 && mode.q8:
						q8DotRowsInt8(out[:n], w, ldw, &a, level())
					case mode.int8:
						q4DotRows(out[:n], w, ldw, &a, level())
					default:
						qDotRows(out[:n], w, ldw, x, mode.q8, level())
					}
					for i := range n {
						exact, mag := qExact(w[i*ldw:], mode.q8, x, &a, mode.int8)
						want := exact + float64(i+1)
						tol := float64(nb+40)*0x1p-23*(mag+float64(i+1)) + 1e-37
						if err := math.Abs(float64(out[i]) - want); !(err <= tol) {
							t.Fatalf("%+v nb=%d n=%d row %d: got %v, want %v (error %.3g > %.3g)", mode, nb, n, i, out[i], want, err, tol)
						}
					}
					if out[n] != float32(n+1) || out[n+1] != float32(n+2) {
						t.Fatalf("%+v nb=%d n=%d: wrote past out", mode, nb, n)
					}
				}
			}
		}
	})
}

// TestQuantizeRowQ8 checks the activation rounding: |qa| ≤ 127, the
// block's largest magnitude maps to ±127, |qa·da − x| ≤ da/2 (plus the
// float32 rounding of da), and the lane corrections.
func TestQuantizeRowQ8(t *testing.T) {
	r := gemmRand(t)
	const nb = 40
	x := randSlice(r, nb*ggmlQK)
	for b := range nb {
		s := float32(math.Ldexp(1, r.IntN(200)-140))
		switch b % 8 {
		case 3:
			clear(x[32*b : 32*b+32])
			continue
		case 5:
			s = 1e-44 // subnormal inputs
		}
		for j := range 32 {
			x[32*b+j] *= s
		}
	}
	x[32*7+3] = float32(math.Inf(-1))
	x[32*9+30] = float32(math.NaN())
	a := q8Act{qa: make([]int8, nb*ggmlQK), da: make([]float32, nb), corr: make([]int32, nb*8)}
	quantizeRowQ8(&a, x, 128)
	for b := range nb {
		xb, qb := x[32*b:32*b+32], a.qa[32*b:32*b+32]
		var amax float64
		finite := true
		for _, v := range xb {
			amax = max(amax, math.Abs(float64(v)))
			finite = finite && !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
		}
		da := float64(a.da[b])
		switch {
		case !finite:
			if !math.IsNaN(da) {
				t.Fatalf("block %d holds a non-finite value: da = %v, want NaN", b, da)
			}
		case amax == 0:
			if da != 0 {
				t.Fatalf("zero block %d: da = %v", b, da)
			}
		default:
			if math.Abs(da-amax/127) > amax/127*0x1p-23 && math.Abs(da-amax/127) > 0x1p-149 {
				t.Fatalf("block %d: da = %v, want %v", b, da, amax/127)
			}
			top := false
			for j, v := range xb {
				q := int(qb[j])
				if q < -127 || q > 127 {
					t.Fatalf("block %d: code %d", b, q)
				}
				top = top || (q == 127 || q == -127) && math.Abs(float64(v)) == amax
				if err := math.Abs(float64(q)*amax/127 - float64(v)); err > amax/254*(1+1e-9) {
					t.Fatalf("block %d element %d: %v → %d (step %v), error %v", b, j, v, q, amax/127, err)
				}
			}
			if !top {
				t.Fatalf("block %d: the largest magnitude does not map to ±127", b)
			}
		}
		for l := range 8 {
			s := int32(qb[4*l]) + int32(qb[4*l+1]) + int32(qb[4*l+2]) + int32(qb[4*l+3])
			if a.corr[8*b+l] != -128*s {
				t.Fatalf("block %d lane %d: corr %d, want %d", b, l, a.corr[8*b+l], -128*s)
			}
		}
	}
}

// TestInt8Gemm checks the VNNI GEMM (packers and 8×16 kernel) against the
// float64 sums of the same integer products, |C − exact| ≤
// (nb+40)·2⁻²³·Σ|products|, for Q8_0 and Q4_0 with m, n off the 8×16
// panels, random scales (zero included), accumulation onto C, and C rows
// and columns outside the product untouched.
func TestInt8Gemm(t *testing.T) {
	if !haveInt8Gemm || !hasAVX512VNNI || detected != featAVX512 {
		t.Skip("no AVX512-VNNI here")
	}
	r := gemmRand(t)
	for _, q8 := range []bool{false, true} {
		bb := q4_0Bytes
		if q8 {
			bb = q8_0Bytes
		}
		for _, sh := range [][3]int{{17, 16, 32}, {33, 37, 256}, {130, 100, 1024}, {24, 1, 64}} {
			m, n, k := sh[0], sh[1], sh[2]
			nb := k / 32
			w := q8RandRows(r, n, nb, nb*bb, q8)
			g, err := newGGMLMatrix("test", w, n, k, bb)
			if err != nil {
				t.Fatal(err)
			}
			a := randSlice(r, m*k)
			ldc := n + 3
			c := make([]float32, m*ldc)
			for i := range c {
				c[i] = float32(i%7) - 3
			}
			c0 := append([]float32(nil), c...)
			int8MatMulT(c, ldc, a, k, m, &g, q8, true, 2)
			act := q8Act{qa: make([]int8, k), da: make([]float32, nb), corr: make([]int32, k/4)}
			for i := range m {
				quantizeRowQ8(&act, a[i*k:(i+1)*k], 0)
				for j := range ldc {
					got := c[i*ldc+j]
					if j >= n {
						if got != c0[i*ldc+j] {
							t.Fatalf("q8=%v %v: C[%d,%d] past n written", q8, sh, i, j)
						}
						continue
					}
					ex, mag := qExact(w[j*nb*bb:], q8, a[i*k:(i+1)*k], &act, true)
					ex += float64(c0[i*ldc+j])
					if d := math.Abs(float64(got) - ex); !(d <= float64(nb+40)*0x1p-23*(mag+3)) {
						t.Fatalf("q8=%v %v: C[%d,%d] = %v, want %v", q8, sh, i, j, got, ex)
					}
				}
			}
		}
	}
}
