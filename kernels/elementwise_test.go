package kernels

import (
	"flag"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// Tests of the element-wise kernels (elementwise.go, rope.go, adamw.go).
// Every kernel is checked at every level this machine offers (avx512, avx2,
// generic) against its reference loop and against a float64 computation,
// with the tolerances stated next to each check, on odd lengths, with
// canaries on both sides of every slice (a signalling-NaN pattern: a kernel
// that writes past its slice changes a canary, one that reads past it turns
// a reduction into NaN). Backward kernels are checked against central
// differences in float64.

var ewSeed = flag.Uint64("elementwise.seed", 1, "seed of the element-wise kernel tests' random inputs")

const (
	ewU       = 1.0 / (1 << 24) // unit roundoff of float32
	ewGuard   = 16              // canary elements on each side of a slice
	ewMinNorm = 0x1p-126        // smallest normal float32
)

var (
	ewSizes  = []int{1, 7, 15, 16, 17, 33, 64, 100, 1000, 4097}
	ewCanary = math.Float32frombits(0x7fa5a5a5)
)

func ewRand(t testing.TB) *rand.Rand {
	if *ewSeed != 1 {
		t.Logf("seed %d", *ewSeed)
	}
	return rand.New(rand.NewPCG(*ewSeed, 0x656c656d))
}

// ewForLevels runs f once per instruction-set level available here.
func ewForLevels(t *testing.T, f func(t *testing.T)) {
	for _, l := range []string{"avx512", "avx2", "generic"} {
		t.Run(l, func(t *testing.T) {
			restore := SetFeatures(l)
			defer restore()
			if Features() != l {
				t.Skipf("level %s not available here (%s)", l, Features())
			}
			f(t)
		})
	}
}

// ewBuf is a slice with canaries on both sides.
type ewBuf struct{ full, s []float32 }

func newEWBuf(n int) ewBuf {
	full := make([]float32, n+2*ewGuard)
	for i := range full {
		full[i] = ewCanary
	}
	return ewBuf{full, full[ewGuard : ewGuard+n : ewGuard+n]}
}

func ewRandBuf(r *rand.Rand, n int, scale float64) ewBuf {
	b := newEWBuf(n)
	for i := range b.s {
		b.s[i] = float32(r.NormFloat64() * scale)
	}
	return b
}

func (b ewBuf) check(t *testing.T, name string) {
	t.Helper()
	n := len(b.s)
	for i, v := range b.full {
		if (i < ewGuard || i >= ewGuard+n) && math.Float32bits(v) != math.Float32bits(ewCanary) {
			t.Fatalf("%s: canary %d (len %d) overwritten with %v", name, i-ewGuard, n, v)
		}
	}
}

func ewClone(x []float32) []float32 { return append([]float32(nil), x...) }

// ulp32 is the spacing of float32 numbers at |x| (2⁻¹⁴⁹ below 2⁻¹²⁶).
func ewULP(x float64) float64 {
	x = math.Abs(x)
	if x < ewMinNorm {
		return 0x1p-149
	}
	_, e := math.Frexp(x)
	return math.Ldexp(1, e-24)
}

// gamma is the classical bound on the relative error of any order of
// summation of n float32 terms: n·u/(1 − n·u).
func ewGamma(n int) float64 { return float64(n) * ewU / (1 - float64(n)*ewU) }

func ewSame(a, b float32) bool {
	return a == b && math.Signbit(float64(a)) == math.Signbit(float64(b)) || a != a && b != b
}

func ewMustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if s, ok := r.(string); !ok || !strings.HasPrefix(s, "kernels: ") {
			t.Errorf("%s: recovered %v, want a \"kernels: \" panic", name, r)
		}
	}()
	f()
}

// ---------------------------------------------------------------- helpers

func TestDotAxpyElementwiseHelpers(t *testing.T) {
	ewForLevels(t, func(t *testing.T) {
		r := ewRand(t)
		for _, n := range append([]int{0}, ewSizes...) {
			a, b := ewRandBuf(r, n, 1), ewRandBuf(r, n, 1)
			// Dot: any summation order is within γ_n·Σ|aᵢbᵢ| of the exact sum.
			var exact, mag float64
			for i := range a.s {
				p := float64(a.s[i]) * float64(b.s[i])
				exact += p
				mag += math.Abs(p)
			}
			tol := ewGamma(n)*mag + 1e-30
			if got := Dot(a.s, b.s); math.Abs(float64(got)-exact) > tol {
				t.Errorf("Dot n=%d: %v, float64 %v (tol %g)", n, got, exact, tol)
			}
			if got, ref := Dot(a.s, b.s), dotRef(a.s, b.s); math.Abs(float64(got-ref)) > 2*tol {
				t.Errorf("Dot n=%d: %v, reference %v", n, got, ref)
			}

			// Axpy: one rounding with FMA, two without: ≤ 2u·(|y|+|αx|).
			alpha := float32(r.NormFloat64())
			y := ewRandBuf(r, n, 1)
			y0 := ewClone(y.s)
			Axpy(y.s, alpha, a.s)
			y.check(t, "Axpy")
			ref := ewClone(y0)
			axpyRef(ref, alpha, a.s)
			for i := range y.s {
				want := float64(y0[i]) + float64(alpha)*float64(a.s[i])
				tol := 2 * ewU * (math.Abs(float64(y0[i])) + math.Abs(float64(alpha)*float64(a.s[i])))
				if math.Abs(float64(y.s[i])-want) > tol || math.Abs(float64(y.s[i]-ref[i])) > 2*tol {
					t.Fatalf("Axpy n=%d [%d]: %v, float64 %v, reference %v", n, i, y.s[i], want, ref[i])
				}
			}

			// Scale and Add round once: bit-identical to the reference.
			x := ewRandBuf(r, n, 3)
			want := ewClone(x.s)
			scaleRef(want, alpha)
			Scale(x.s, alpha)
			x.check(t, "Scale")
			for i := range want {
				if !ewSame(x.s[i], want[i]) {
					t.Fatalf("Scale n=%d [%d]: %v, reference %v", n, i, x.s[i], want[i])
				}
			}
			dst := newEWBuf(n)
			Add(dst.s, a.s, b.s)
			dst.check(t, "Add")
			addRef(want, a.s, b.s)
			for i := range want {
				if !ewSame(dst.s[i], want[i]) {
					t.Fatalf("Add n=%d [%d]: %v, reference %v", n, i, dst.s[i], want[i])
				}
			}
			Add(a.s, a.s, b.s) // dst may be a
			for i := range want {
				if !ewSame(a.s[i], want[i]) {
					t.Fatalf("Add in place n=%d [%d]: %v, reference %v", n, i, a.s[i], want[i])
				}
			}
			a.check(t, "Add in place")
		}
	})
}

// ---------------------------------------------------------------- exp

// TestElementwiseExp checks the vectorised exp on a dense sweep of [−104, 0]:
// ≤ 2 ulp where the result is a normal float32, ≤ 2⁻¹²⁶ absolute below.
func TestElementwiseExp(t *testing.T) {
	const n = 1 << 18
	x := make([]float32, 0, n+4096+16)
	for i := range n {
		x = append(x, float32(-104*float64(i)/n))
	}
	for i := range 4096 { // log-spaced from −2⁻⁴⁰ to −104
		x = append(x, float32(-math.Exp2(-40+46.7*float64(i)/4096)))
	}
	x = append(x, 0, float32(math.Copysign(0, -1)), -87.33, -87.3366, -87.3365, -103.97, -103.28,
		float32(math.Inf(-1)), float32(math.NaN()), -1e-30, -0x1p-149, -0.34657, -0.34658)
	ewForLevels(t, func(t *testing.T) {
		y := ewClone(x)
		sum := vexpSub(y, 0)
		var worst float64
		var sum64 float64
		for i, v := range x {
			want := math.Exp(float64(v))
			got := float64(y[i])
			if v != v {
				if got == got {
					t.Errorf("exp(NaN) = %v", got)
				}
				continue
			}
			sum64 += got
			if want < ewMinNorm {
				if math.Abs(got-want) > ewMinNorm || got < 0 {
					t.Errorf("exp(%v) = %v, want %v", v, got, want)
				}
				continue
			}
			e := math.Abs(got-want) / ewULP(want)
			worst = max(worst, e)
			if e > 2 {
				t.Errorf("exp(%v) = %v, want %v (%.2f ulp)", v, got, want, e)
			}
		}
		if sum == sum {
			t.Errorf("sum with a NaN element = %v, want NaN", sum)
		}
		t.Logf("largest error %.3f ulp", worst)
	})
}

// ---------------------------------------------------------------- RMSNorm

func ewRMSNorm64(x, w []float32, eps float64) (y []float64, inv float64) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	inv = 1 / math.Sqrt(ss/float64(len(x))+eps)
	y = make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v) * inv * float64(w[i])
	}
	return y, inv
}

func TestRMSNorm(t *testing.T) {
	ewForLevels(t, func(t *testing.T) {
		r := ewRand(t)
		for _, n := range ewSizes {
			for _, scale := range []float64{1e-3, 1, 30} {
				x, w := ewRandBuf(r, n, scale), ewRandBuf(r, n, 1)
				const eps = 1e-5
				want, inv64 := ewRMSNorm64(x.s, w.s, float64(float32(eps)))
				dst := newEWBuf(n)
				inv := RMSNorm(dst.s, x.s, w.s, eps)
				dst.check(t, "RMSNorm")
				// float32 sum of squares: relative error ≤ γ_n, halved by
				// the square root; then the rounding of 1/rms and of two
				// products.
				rel := ewGamma(n)/2 + 4*ewU
				if math.Abs(float64(inv)-inv64) > (ewGamma(n)/2+ewU)*inv64 {
					t.Errorf("n=%d: invRMS %v, float64 %v", n, inv, inv64)
				}
				ref := newEWBuf(n)
				restore := SetFeatures("generic")
				invRef := RMSNorm(ref.s, x.s, w.s, eps)
				restore()
				if math.Abs(float64(inv-invRef)) > 2*(ewGamma(n)/2+ewU)*inv64 {
					t.Errorf("n=%d: invRMS %v, reference %v", n, inv, invRef)
				}
				for i := range want {
					tol := rel*math.Abs(want[i]) + 1e-37
					if math.Abs(float64(dst.s[i])-want[i]) > tol || math.Abs(float64(dst.s[i]-ref.s[i])) > 2*tol {
						t.Fatalf("n=%d scale=%g [%d]: %v, float64 %v, reference %v", n, scale, i, dst.s[i], want[i], ref.s[i])
					}
				}
				// dst may be x.
				RMSNorm(x.s, x.s, w.s, eps)
				x.check(t, "RMSNorm in place")
				for i := range x.s {
					if !ewSame(x.s[i], dst.s[i]) {
						t.Fatalf("n=%d: in place [%d] %v, want %v", n, i, x.s[i], dst.s[i])
					}
				}
			}
		}
	})
}

// TestRMSNormBackward checks dx and dweight against central differences of
// L = Σ dy ⊙ RMSNorm(x; w) in float64 (step 1e-6 relative: truncation and
// cancellation errors ~1e-9), to 1e-5 of the largest gradient.
func TestRMSNormBackward(t *testing.T) {
	ewForLevels(t, func(t *testing.T) {
		r := ewRand(t)
		// Against the float64 formula (at the float32 invRMS) and the
		// reference loops: the sum within γ_n·Σ|w·dy·x|, each element
		// within a few roundings.
		for _, n := range ewSizes {
			x, w, dy := ewRandBuf(r, n, 2), ewRandBuf(r, n, 1), ewRandBuf(r, n, 1)
			inv := RMSNorm(make([]float32, n), x.s, w.s, 1e-5)
			dx, dw := newEWBuf(n), newEWBuf(n)
			for i := range dw.s {
				dw.s[i] = float32(i)
			}
			RMSNormBackward(dx.s, dw.s, dy.s, x.s, w.s, inv)
			dx.check(t, "dx")
			dw.check(t, "dweight")
			rdx, rdw := make([]float32, n), make([]float32, n)
			for i := range rdw {
				rdw[i] = float32(i)
			}
			r64 := float64(inv)
			kRef := float32(r64 * r64 * r64 * float64(dot3Ref(w.s, dy.s, x.s)) / float64(n))
			mulAccRef(rdw, x.s, dy.s, inv)
			rmsBackRef(rdx, dy.s, x.s, w.s, inv, kRef)
			var s, mag float64
			for i := range x.s {
				p := float64(w.s[i]) * float64(dy.s[i]) * float64(x.s[i])
				s += p
				mag += math.Abs(p)
			}
			k := r64 * r64 * r64 / float64(n)
			for i := range x.s {
				xi, a := float64(x.s[i]), float64(w.s[i])*float64(dy.s[i])*r64
				want := a - k*s*xi
				tol := 4*ewU*(math.Abs(a)+math.Abs(k*s*xi)) + k*ewGamma(n)*mag*math.Abs(xi) + 1e-37
				if math.Abs(float64(dx.s[i])-want) > tol || math.Abs(float64(dx.s[i]-rdx[i])) > 2*tol {
					t.Fatalf("n=%d: dx[%d] = %v, float64 %v, reference %v", n, i, dx.s[i], want, rdx[i])
				}
				wantW := float64(i) + xi*r64*float64(dy.s[i])
				tolW := 3 * ewU * (float64(i) + math.Abs(wantW))
				if math.Abs(float64(dw.s[i])-wantW) > tolW || math.Abs(float64(dw.s[i]-rdw[i])) > 2*tolW {
					t.Fatalf("n=%d: dweight[%d] = %v, float64 %v, reference %v", n, i, dw.s[i], wantW, rdw[i])
				}
			}
		}
		// Against central differences.
		for _, n := range []int{1, 2, 7, 17, 33} {
			x, w, dy := ewRandBuf(r, n, 1), ewRandBuf(r, n, 1), ewRandBuf(r, n, 1)
			const eps = 1e-6
			loss := func(x, w []float32) float64 {
				y, _ := ewRMSNorm64(x, w, float64(float32(eps)))
				var l float64
				for i := range y {
					l += y[i] * float64(dy.s[i])
				}
				return l
			}
			// The step is a float32 perturbation whose exact size (hp, hm)
			// enters the quotient; for x it is small against the scale of
			// the curvature, rms(x) (which eps dominates when x is tiny).
			fd := func(v []float32, i int, h float32) float64 {
				old := v[i]
				v[i] = old + h
				hp := float64(v[i]) - float64(old)
				lp := loss(x.s, w.s)
				v[i] = old - h
				hm := float64(old) - float64(v[i])
				lm := loss(x.s, w.s)
				v[i] = old
				return (lp - lm) / (hp + hm)
			}
			_, inv64 := ewRMSNorm64(x.s, w.s, float64(float32(eps)))
			hx := float32(1e-3 / inv64)
			inv := RMSNorm(make([]float32, n), x.s, w.s, eps)
			dx, dw := newEWBuf(n), newEWBuf(n)
			for i := range dw.s {
				dw.s[i] = 0.5
			}
			RMSNormBackward(dx.s, dw.s, dy.s, x.s, w.s, inv)
			dx.check(t, "dx")
			dw.check(t, "dweight")
			var scale float64
			gx, gw := make([]float64, n), make([]float64, n)
			for i := range n {
				gx[i], gw[i] = fd(x.s, i, hx), fd(w.s, i, 1e-3)
				// dx is a difference of terms of size r·|w·dy|: cancellation is relative to them
				scale = max(scale, math.Abs(gx[i]), math.Abs(gw[i]), float64(inv)*math.Abs(float64(w.s[i]*dy.s[i])))
			}
			tol := 2e-5 * max(scale, 1e-3)
			for i := range n {
				if math.Abs(float64(dx.s[i])-gx[i]) > tol {
					t.Errorf("n=%d: dx[%d] = %v, finite difference %v", n, i, dx.s[i], gx[i])
				}
				if math.Abs(float64(dw.s[i])-0.5-gw[i]) > tol {
					t.Errorf("n=%d: dweight[%d] = 0.5 + %v, finite difference %v", n, i, dw.s[i]-0.5, gw[i])
				}
			}
			// nil dweight; dx may be dy.
			d := ewClone(dy.s)
			RMSNormBackward(d, nil, d, x.s, w.s, inv)
			for i := range d {
				if math.Abs(float64(d[i]-dx.s[i])) > 4*ewU*math.Abs(float64(dx.s[i]))+1e-30 {
					t.Errorf("n=%d: dx in place [%d] %v, want %v", n, i, d[i], dx.s[i])
				}
			}
		}
	})
}

// ---------------------------------------------------------------- SiLU·mul

// ewSiLUInputs returns gate values drawn at scale 4 with extremes injected.
func ewSiLUInputs(r *rand.Rand, n int) ewBuf {
	g := ewRandBuf(r, n, 4)
	special := []float32{0, float32(math.Copysign(0, -1)), 20, -20, 88, -88, 100, -100, -87.4, 1e-30, -1e-30,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e30, -1e30, -1.2785}
	for i := range g.s {
		if r.IntN(8) == 0 {
			g.s[i] = special[r.IntN(len(special))]
		}
	}
	return g
}

// Tolerances of SiLUMul against float64: the exp (≤ 2 ulp), 1+e, the
// division and two products give ≤ 6 ulp; measured 2.8.
const ewSiLUULP = 6

func TestSiLUMul(t *testing.T) {
	ewForLevels(t, func(t *testing.T) {
		r := ewRand(t)
		var worst float64
		for _, n := range ewSizes {
			g, up := ewSiLUInputs(r, n), ewRandBuf(r, n, 1)
			dst := newEWBuf(n)
			SiLUMul(dst.s, g.s, up.s)
			dst.check(t, "SiLUMul")
			ref := make([]float32, n)
			siluMulRef(ref, g.s, up.s)
			for i, gi := range g.s {
				g64, u := float64(gi), float64(up.s[i])
				want := g64 * sigmoid64(g64) * u
				got := float64(dst.s[i])
				if want != want || math.IsInf(want, 0) || got != got || math.IsInf(got, 0) {
					if !ewSame(dst.s[i], ref[i]) {
						t.Errorf("n=%d: silu(%v)·%v = %v, reference %v", n, gi, up.s[i], dst.s[i], ref[i])
					}
					continue
				}
				floor := ewMinNorm * (1 + math.Abs(g64*u))
				e := math.Abs(got-want) / ewULP(want)
				if math.Abs(got-want) > floor {
					worst = max(worst, e)
				}
				if math.Abs(got-want) > ewSiLUULP*ewULP(want)+floor || math.Abs(float64(dst.s[i]-ref[i])) > (ewSiLUULP+1)*ewULP(want)+floor {
					t.Errorf("n=%d: silu(%v)·%v = %v, float64 %v (%.1f ulp), reference %v", n, gi, up.s[i], got, want, e, ref[i])
				}
			}
			// dst may be gate.
			SiLUMul(g.s, g.s, up.s)
			g.check(t, "SiLUMul in place")
			for i := range g.s {
				if !ewSame(g.s[i], dst.s[i]) {
					t.Fatalf("n=%d: in place [%d] %v, want %v", n, i, g.s[i], dst.s[i])
				}
			}
		}
		t.Logf("largest error %.2f ulp", worst)
	})
}

func TestSiLUMulBackward(t *testing.T) {
	ewForLevels(t, func(t *testing.T) {
		r := ewRand(t)
		// Against the float64 formula, everywhere: 1 − s loses up to
		// ulp(s)/2 absolutely, which g multiplies, hence the (1+|g|).
		for _, n := range ewSizes {
			g, up, dy := ewSiLUInputs(r, n), ewRandBuf(r, n, 1), ewRandBuf(r, n, 1)
			dg, du := newEWBuf(n), newEWBuf(n)
			SiLUMulBackward(dg.s, du.s, dy.s, g.s, up.s)
			dg.check(t, "dgate")
			du.check(t, "dup")
			rg, ru := make([]float32, n), make([]float32, n)
			siluMulBackwardRef(rg, ru, dy.s, g.s, up.s)
			for i, gi := range g.s {
				g64, u, d := float64(gi), float64(up.s[i]), float64(dy.s[i])
				s := sigmoid64(g64)
				wg, wu := d*u*s*(1+g64*(1-s)), d*g64*s
				check := func(name string, got, ref float32, want, tol float64) {
					if want != want || math.IsInf(want, 0) || got != got || math.IsInf(float64(got), 0) {
						if !ewSame(got, ref) {
							t.Errorf("n=%d g=%v: %s %v, reference %v", n, gi, name, got, ref)
						}
						return
					}
					if math.Abs(float64(got)-want) > tol || math.Abs(float64(got-ref)) > 2*tol {
						t.Errorf("n=%d g=%v up=%v dy=%v: %s %v, float64 %v, reference %v", n, gi, up.s[i], dy.s[i], name, got, want, ref)
					}
				}
				// below 2⁻¹²⁶ σ may be flushed to 0 (see TestElementwiseExp)
				check("dgate", dg.s[i], rg[i], wg, 8*ewU*math.Abs(d*u)*s*(1+math.Abs(g64))+ewMinNorm*(1+math.Abs(d*u)*(1+math.Abs(g64))))
				check("dup", du.s[i], ru[i], wu, ewSiLUULP*ewULP(wu)+ewMinNorm*(1+math.Abs(g64*d)))
			}
		}
		// dgate and dup may be any of the inputs.
		for _, n := range []int{1, 17, 100} {
			g, up, dy := ewSiLUInputs(r, n).s, ewRandBuf(r, n, 1).s, ewRandBuf(r, n, 1).s
			wg, wu := make([]float32, n), make([]float32, n)
			SiLUMulBackward(wg, wu, dy, g, up)
			g2, up2, dy2 := ewClone(g), ewClone(up), ewClone(dy)
			SiLUMulBackward(g2, up2, dy, g2, up2)
			SiLUMulBackward(dy2, g, dy2, g, up) // dup over gate last: gate is read first
			for i := range n {
				if !ewSame(g2[i], wg[i]) || !ewSame(up2[i], wu[i]) || !ewSame(dy2[i], wg[i]) || !ewSame(g[i], wu[i]) {
					t.Fatalf("n=%d [%d]: in place results differ", n, i)
				}
			}
		}
		// Against central differences of L = Σ dy ⊙ silu(g) ⊙ up.
		for _, n := range []int{1, 7, 17, 33} {
			g, up, dy := ewRandBuf(r, n, 3), ewRandBuf(r, n, 1), ewRandBuf(r, n, 1)
			dg, du := make([]float32, n), make([]float32, n)
			SiLUMulBackward(dg, du, dy.s, g.s, up.s)
			f := func(g, u float64) float64 { return g * sigmoid64(g) * u }
			for i := range n {
				g64, u, d := float64(g.s[i]), float64(up.s[i]), float64(dy.s[i])
				const h = 1e-6
				fg := d * (f(g64+h, u) - f(g64-h, u)) / (2 * h)
				fu := d * (f(g64, u+h) - f(g64, u-h)) / (2 * h)
				if math.Abs(float64(dg[i])-fg) > 1e-5*(1+math.Abs(fg)) || math.Abs(float64(du[i])-fu) > 1e-5*(1+math.Abs(fu)) {
					t.Errorf("n=%d [%d]: dgate %v dup %v, finite differences %v %v", n, i, dg[i], du[i], fg, fu)
				}
			}
		}
	})
}

// ---------------------------------------------------------------- softmax

func TestSoftmax(t *testing.T) {
	ewForLevels(t, func(t *testing.T) {
		r := ewRand(t)
		for _, n := range ewSizes {
			for _, scale := range []float64{0.1, 3, 30} {
				x := ewRandBuf(r, n, scale)
				if n > 3 {
					x.s[1] = float32(math.Inf(-1)) // a masked score
				}
				m := float64(maxRef(x.s))
				var s float64
				for _, v := range x.s {
					s += math.Exp(float64(v) - m)
				}
				y := newEWBuf(n)
				copy(y.s, x.s)
				Softmax(y.s)
				y.check(t, "Softmax")
				ref := ewClone(x.s)
				restore := SetFeatures("generic")
				Softmax(ref)
				restore()
				var total float64
				for i, v := range x.s {
					want := math.Exp(float64(v)-m) / s
					// x−m is rounded in float32 (u·|x−m| relative in the
					// exp), the exp is within 2 ulp, the sum within γ_n,
					// the reciprocal and the product round once each.
					tol := want*(ewU*math.Abs(float64(v)-m)+8*ewU+ewGamma(n)) + ewMinNorm
					got := float64(y.s[i])
					total += got
					if math.Abs(got-want) > tol || math.Abs(float64(y.s[i]-ref[i])) > 2*tol {
						t.Fatalf("n=%d scale=%g [%d]: %v, float64 %v, reference %v", n, scale, i, got, want, ref[i])
					}
				}
				if math.Abs(total-1) > 2*ewGamma(n)+1e-6 {
					t.Errorf("n=%d: outputs sum to %v", n, total)
				}
			}
		}
		// Stability, ties, masked rows, NaN.
		x := []float32{1000, 999, -1000, 1000}
		Softmax(x)
		e := math.Exp(-1)
		want := []float64{1 / (2 + e), e / (2 + e), 0, 1 / (2 + e)}
		for i := range x {
			if math.Abs(float64(x[i])-want[i]) > 4*ewU {
				t.Errorf("Softmax large logits [%d] = %v, want %v", i, x[i], want[i])
			}
		}
		x = []float32{3, 3, 3, 3, 3}
		Softmax(x)
		for i := range x {
			if math.Abs(float64(x[i])-0.2) > 2*ewU {
				t.Errorf("Softmax of ties [%d] = %v", i, x[i])
			}
		}
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
			x = []float32{1, bad, 2, float32(math.Inf(-1))}
			Softmax(x)
			for i := range x {
				if x[i] == x[i] {
					t.Errorf("Softmax with a %v [%d] = %v, want NaN", bad, i, x[i])
				}
			}
		}
		x = []float32{float32(math.Inf(-1)), float32(math.Inf(-1))}
		Softmax(x)
		if x[0] == x[0] || x[1] == x[1] {
			t.Errorf("Softmax of a masked row = %v, want NaN", x)
		}
	})
}

func TestSoftmaxCausal(t *testing.T) {
	ewForLevels(t, func(t *testing.T) {
		r := ewRand(t)
		for _, total := range []int{1, 7, 17, 33, 100} {
			for _, n := range []int{0, 1, total / 2, total} {
				x := ewRandBuf(r, total, 2)
				want := ewClone(x.s[:n])
				Softmax(want)
				SoftmaxCausal(x.s, n)
				x.check(t, "SoftmaxCausal")
				for i, v := range x.s {
					if i < n && !ewSame(v, want[i]) || i >= n && v != 0 {
						t.Fatalf("len %d n=%d [%d] = %v", total, n, i, v)
					}
				}
			}
		}
		ewMustPanic(t, "n > len", func() { SoftmaxCausal(make([]float32, 3), 4) })
		ewMustPanic(t, "n < 0", func() { SoftmaxCausal(make([]float32, 3), -1) })
	})
}

func ewSoftmax64(x []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	y := make([]float64, len(x))
	var s float64
	for i, v := range x {
		y[i] = math.Exp(float64(v) - m)
		s += y[i]
	}
	for i := range y {
		y[i] /= s
	}
	return y
}

func TestSoftmaxBackward(t *testing.T) {
	ewForLevels(t, func(t *testing.T) {
		r := ewRand(t)
		// Against the float64 formula on y as given.
		for _, n := range ewSizes {
			x, dy := ewRandBuf(r, n, 2), ewRandBuf(r, n, 1)
			y := ewClone(x.s)
			Softmax(y)
			dx := newEWBuf(n)
			SoftmaxBackward(dx.s, y, dy.s)
			dx.check(t, "SoftmaxBackward")
			ref := make([]float32, n)
			subMulRef(ref, y, dy.s, dotRef(dy.s, y))
			var c, mag float64
			for i := range y {
				c += float64(dy.s[i]) * float64(y[i])
				mag += math.Abs(float64(dy.s[i]) * float64(y[i]))
			}
			for i := range y {
				yi, di := float64(y[i]), float64(dy.s[i])
				want := yi * (di - c)
				tol := math.Abs(yi)*(2*ewU*(math.Abs(di)+math.Abs(c))+ewGamma(n)*mag) + 1e-37
				if math.Abs(float64(dx.s[i])-want) > tol || math.Abs(float64(dx.s[i]-ref[i])) > 2*tol {
					t.Fatalf("n=%d [%d]: %v, float64 %v, reference %v", n, i, dx.s[i], want, ref[i])
				}
			}
			// dx may be dy.
			SoftmaxBackward(dy.s, y, dy.s)
			dy.check(t, "SoftmaxBackward in place")
			for i := range y {
				if !ewSame(dy.s[i], dx.s[i]) {
					t.Fatalf("n=%d: in place [%d] %v, want %v", n, i, dy.s[i], dx.s[i])
				}
			}
		}
		// Against central differences of L = Σ dy ⊙ softmax(x).
		for _, n := range []int{1, 2, 7, 17, 33} {
			x, dy := ewRandBuf(r, n, 2), ewRandBuf(r, n, 1)
			y := ewClone(x.s)
			Softmax(y)
			dx := make([]float32, n)
			SoftmaxBackward(dx, y, dy.s)
			loss := func(x []float32) float64 {
				var l float64
				for i, v := range ewSoftmax64(x) {
					l += v * float64(dy.s[i])
				}
				return l
			}
			for i := range n {
				old := x.s[i]
				x.s[i] = old + 1e-3
				hp := float64(x.s[i]) - float64(old)
				lp := loss(x.s)
				x.s[i] = old - 1e-3
				hm := float64(old) - float64(x.s[i])
				lm := loss(x.s)
				x.s[i] = old
				fd := (lp - lm) / (hp + hm)
				if math.Abs(float64(dx[i])-fd) > 1e-5 {
					t.Errorf("n=%d: dx[%d] = %v, finite difference %v", n, i, dx[i], fd)
				}
			}
		}
	})
}

// ---------------------------------------------------------------- RoPE

// llama3Freqs is the Llama 3.1 rope_scaling rule (factor 8, low/high
// frequency factors 1 and 4, original context 8192), computed here the
// way a caller of NewRopeTable computes it.
func ewLlama3Freqs(headDim int, theta float64) []float64 {
	const factor, low, high, orig = 8.0, 1.0, 4.0, 8192.0
	freqs := RopeFreqs(headDim, theta)
	for j, f := range freqs {
		wavelen := 2 * math.Pi / f
		switch {
		case wavelen < orig/high:
		case wavelen > orig/low:
			freqs[j] = f / factor
		default:
			smooth := (orig/wavelen - low) / (high - low)
			freqs[j] = (1-smooth)*f/factor + smooth*f
		}
	}
	return freqs
}

// ggufRow maps a row of one head in GGUF order to its HF row:
// W_gguf = W_hf.reshape(n, 2, D/2, C).swapaxes(1, 2).reshape(R, C)
// (GGUF-LLAMACPP.md §2.2), so GGUF row 2j+t of a head is HF row t·D/2+j.
func ewGGUFRow(r, headDim int) int {
	h, i := r/headDim, r%headDim
	j, t := i/2, i%2
	return h*headDim + t*headDim/2 + j
}

func TestRope(t *testing.T) {
	r := ewRand(t)
	const theta = 500000
	for _, headDim := range []int{2, 8, 64, 128} {
		for _, freqs := range [][]float64{RopeFreqs(headDim, theta), ewLlama3Freqs(headDim, theta)} {
			const maxPos, nHeads = 300, 3
			tab := NewRopeTable(headDim, maxPos, freqs)
			half := headDim / 2
			for _, pos := range []int{0, 1, 17, maxPos - 1} {
				for _, inter := range []bool{false, true} {
					x := ewRandBuf(r, nHeads*headDim, 1)
					x0 := ewClone(x.s)
					tab.Apply(x.s, nHeads, headDim, pos, inter)
					x.check(t, "Apply")
					for h := range nHeads {
						for j := range half {
							ia, ib := h*headDim+j, h*headDim+j+half
							if inter {
								ia, ib = h*headDim+2*j, h*headDim+2*j+1
							}
							sn, cs := math.Sincos(float64(pos) * freqs[j])
							a, b := float64(x0[ia]), float64(x0[ib])
							wa, wb := a*cs-b*sn, a*sn+b*cs
							// table entries round once, the rotation twice more
							tol := 4 * ewU * (math.Abs(a) + math.Abs(b))
							if math.Abs(float64(x.s[ia])-wa) > tol || math.Abs(float64(x.s[ib])-wb) > tol {
								t.Fatalf("D=%d pos=%d inter=%v head %d pair %d: (%v,%v), float64 (%v,%v)",
									headDim, pos, inter, h, j, x.s[ia], x.s[ib], wa, wb)
							}
						}
					}
					tab.ApplyInverse(x.s, nHeads, headDim, pos, inter)
					x.check(t, "ApplyInverse")
					for i := range x0 {
						if math.Abs(float64(x.s[i]-x0[i])) > 1e-6*(1+math.Abs(float64(x0[i]))) {
							t.Fatalf("D=%d pos=%d: inverse∘apply [%d] = %v, want %v", headDim, pos, i, x.s[i], x0[i])
						}
					}
				}
			}
		}
	}
	ewMustPanic(t, "odd headDim", func() { NewRopeTable(7, 4, make([]float64, 3)) })
	ewMustPanic(t, "freqs", func() { NewRopeTable(8, 4, make([]float64, 3)) })
	tab := NewRopeTable(8, 4, RopeFreqs(8, 10000))
	ewMustPanic(t, "pos", func() { tab.Apply(make([]float32, 8), 1, 8, 4, false) })
	ewMustPanic(t, "len", func() { tab.Apply(make([]float32, 9), 1, 8, 0, false) })
	ewMustPanic(t, "headDim", func() { tab.ApplyInverse(make([]float32, 8), 2, 4, 0, false) })
}

func TestRopeTableAndFreqs(t *testing.T) {
	f := RopeFreqs(128, 500000)
	if f[0] != 1 || math.Abs(f[1]/math.Pow(500000, -2.0/128)-1) > 1e-15 || math.Abs(f[63]/math.Pow(500000, -126.0/128)-1) > 1e-14 {
		t.Errorf("RopeFreqs: %v %v %v", f[0], f[1], f[63])
	}
	l3 := ewLlama3Freqs(128, 500000)
	tab := NewRopeTable(128, 1000, l3)
	if tab.HeadDim() != 128 || tab.MaxPos() != 1000 {
		t.Fatalf("HeadDim %d MaxPos %d", tab.HeadDim(), tab.MaxPos())
	}
	for _, p := range []int{0, 1, 999} {
		for j, fj := range l3 {
			c, s := float32(math.Cos(float64(p)*fj)), float32(math.Sin(float64(p)*fj))
			if tab.cos[p*64+j] != c || tab.sin[p*64+j] != s {
				t.Fatalf("pos %d pair %d: %v %v, want %v %v", p, j, tab.cos[p*64+j], tab.sin[p*64+j], c, s)
			}
		}
	}
}

// TestRopeInterleavedMatchesPermutedRotateHalf: with q = W·a, rotating
// q_hf rotate-half and permuting the result (§2.2) equals rotating
// q_gguf = W_gguf·a interleaved, bit for bit.
func TestRopeInterleavedMatchesPermutedRotateHalf(t *testing.T) {
	r := ewRand(t)
	for _, headDim := range []int{2, 16, 64} {
		const nHeads, cols, pos = 4, 9, 77
		rows := nHeads * headDim
		tab := NewRopeTable(headDim, 100, ewLlama3Freqs(headDim, 10000))
		w := ewRandBuf(r, rows*cols, 1).s
		a := ewRandBuf(r, cols, 1).s
		wg := make([]float32, rows*cols)
		for i := range rows {
			copy(wg[i*cols:(i+1)*cols], w[ewGGUFRow(i, headDim)*cols:])
		}
		qh, qg := make([]float32, rows), make([]float32, rows)
		for i := range rows {
			qh[i] = dotRef(w[i*cols:(i+1)*cols], a)
			qg[i] = dotRef(wg[i*cols:(i+1)*cols], a)
		}
		tab.Apply(qh, nHeads, headDim, pos, false)
		tab.Apply(qg, nHeads, headDim, pos, true)
		for i := range rows {
			if !ewSame(qg[i], qh[ewGGUFRow(i, headDim)]) {
				t.Fatalf("D=%d: GGUF row %d = %v, permuted HF %v", headDim, i, qg[i], qh[ewGGUFRow(i, headDim)])
			}
		}
	}
}

// TestRopeBackward: ApplyInverse(dy) is the gradient of L = Σ dy ⊙ Apply(x)
// (central differences in float64 of the float64 rotation; L is linear, so
// they are exact up to rounding).
func TestRopeBackward(t *testing.T) {
	r := ewRand(t)
	const headDim, nHeads, pos = 8, 2, 5
	freqs := RopeFreqs(headDim, 10000)
	tab := NewRopeTable(headDim, 10, freqs)
	for _, inter := range []bool{false, true} {
		x, dy := ewRandBuf(r, nHeads*headDim, 1).s, ewRandBuf(r, nHeads*headDim, 1).s
		loss := func(x []float64) float64 {
			var l float64
			for h := range nHeads {
				for j := range headDim / 2 {
					ia, ib := h*headDim+j, h*headDim+j+headDim/2
					if inter {
						ia, ib = h*headDim+2*j, h*headDim+2*j+1
					}
					sn, cs := math.Sincos(pos * freqs[j])
					l += float64(dy[ia])*(x[ia]*cs-x[ib]*sn) + float64(dy[ib])*(x[ia]*sn+x[ib]*cs)
				}
			}
			return l
		}
		dx := ewClone(dy)
		tab.ApplyInverse(dx, nHeads, headDim, pos, inter)
		x64 := make([]float64, len(x))
		for i, v := range x {
			x64[i] = float64(v)
		}
		for i := range x64 {
			old := x64[i]
			x64[i] = old + 1e-4
			lp := loss(x64)
			x64[i] = old - 1e-4
			lm := loss(x64)
			x64[i] = old
			if fd := (lp - lm) / 2e-4; math.Abs(float64(dx[i])-fd) > 1e-6 {
				t.Errorf("interleaved=%v: dx[%d] = %v, finite difference %v", inter, i, dx[i], fd)
			}
		}
	}
}

// ---------------------------------------------------------------- AdamW

func TestAdamW(t *testing.T) {
	r := ewRand(t)
	opt := AdamW{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}
	for _, n := range []int{1, 7, 17, 1000} {
		p, g, m, v := ewRandBuf(r, n, 1), newEWBuf(n), newEWBuf(n), newEWBuf(n)
		clear(m.s)
		clear(v.s)
		p64, m64, v64 := make([]float64, n), make([]float64, n), make([]float64, n)
		mmag := make([]float64, n) // the moment m of |g|, the scale of m's rounding errors
		for i := range p.s {
			p64[i] = float64(p.s[i])
		}
		lr, b1, b2 := float64(opt.LR), float64(opt.Beta1), float64(opt.Beta2)
		eps, wd := float64(opt.Eps), float64(opt.WeightDecay)
		for step := 1; step <= 10; step++ {
			for i := range g.s {
				g.s[i] = float32(r.NormFloat64() * 0.1)
				if i%5 == 0 {
					g.s[i] = 0 // a parameter without gradient still decays
				}
			}
			opt.Step(p.s, g.s, m.s, v.s, step)
			for _, b := range []ewBuf{p, g, m, v} {
				b.check(t, "AdamW")
			}
			// PyTorch's torch.optim.AdamW (single-tensor path), in float64.
			for i := range p64 {
				gi := float64(g.s[i])
				p64[i] *= 1 - lr*wd
				m64[i] = b1*m64[i] + (1-b1)*gi
				mmag[i] = b1*mmag[i] + (1-b1)*math.Abs(gi)
				v64[i] = b2*v64[i] + (1-b2)*gi*gi
				bc1 := 1 - math.Pow(b1, float64(step))
				bc2 := 1 - math.Pow(b2, float64(step))
				p64[i] -= lr / bc1 * m64[i] / (math.Sqrt(v64[i])/math.Sqrt(bc2) + eps)
			}
			// float32 element updates: m within ~2u per step of its
			// magnitude, v (a sum of positive terms) within ~2u per step
			// relatively; the parameter then within 10⁻⁵·LR per step.
			for i := range p64 {
				if math.Abs(float64(p.s[i])-p64[i]) > 1e-6*math.Abs(p64[i])+1e-5*lr*float64(step) ||
					math.Abs(float64(m.s[i])-m64[i]) > 4*ewU*float64(step)*mmag[i] ||
					math.Abs(float64(v.s[i])-v64[i]) > 1e-6*math.Abs(v64[i])+1e-15 {
					t.Fatalf("n=%d step %d [%d]: p %v m %v v %v, float64 %v %v %v",
						n, step, i, p.s[i], m.s[i], v.s[i], p64[i], m64[i], v64[i])
				}
			}
		}
	}
	// Step 1 from zero moments: m̂ = g and v̂ = g², so each parameter moves by
	// LR·sign(g) after decaying by 1 − LR·WeightDecay.
	p, g := []float32{1, -2, 3}, []float32{0.5, -1e-3, 0}
	opt.Step(p, g, make([]float32, 3), make([]float32, 3), 1)
	want := []float64{0.999 - 0.01, -2*0.999 + 0.01, 3 * 0.999}
	for i := range p {
		if math.Abs(float64(p[i])-want[i]) > 1e-6 {
			t.Errorf("first step [%d] = %v, want %v", i, p[i], want[i])
		}
	}
	ewMustPanic(t, "step 0", func() { opt.Step(p, g, make([]float32, 3), make([]float32, 3), 0) })
	ewMustPanic(t, "len", func() { opt.Step(p, g, make([]float32, 2), make([]float32, 3), 1) })
}

// ---------------------------------------------------------------- API

func TestElementwisePanics(t *testing.T) {
	a, b := make([]float32, 4), make([]float32, 5)
	ewMustPanic(t, "Dot", func() { Dot(a, b) })
	ewMustPanic(t, "Axpy", func() { Axpy(a, 1, b) })
	ewMustPanic(t, "Add", func() { Add(a, a, b) })
	ewMustPanic(t, "RMSNorm", func() { RMSNorm(a, b, b, 1e-5) })
	ewMustPanic(t, "RMSNorm empty", func() { RMSNorm(nil, nil, nil, 1e-5) })
	ewMustPanic(t, "RMSNormBackward", func() { RMSNormBackward(a, b, a, a, a, 1) })
	ewMustPanic(t, "SiLUMul", func() { SiLUMul(a, a, b) })
	ewMustPanic(t, "SiLUMulBackward", func() { SiLUMulBackward(a, a, a, b, a) })
	ewMustPanic(t, "SoftmaxBackward", func() { SoftmaxBackward(a, b, a) })
}

func TestElementwiseAllocs(t *testing.T) {
	n := 1000
	x, y, z, w := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], y[i], w[i] = float32(i%7)-3, float32(i%5)*0.1, 1
	}
	tab := NewRopeTable(8, 4, RopeFreqs(8, 10000))
	opt := AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	ewForLevels(t, func(t *testing.T) {
		allocs := testing.AllocsPerRun(10, func() {
			Dot(x, y)
			Axpy(z, 0.5, x)
			Scale(z, 0.5)
			Add(z, x, y)
			inv := RMSNorm(z, x, w, 1e-5)
			RMSNormBackward(z, w, y, x, w, inv)
			SiLUMul(z, x, y)
			SiLUMulBackward(z, w, y, x, y)
			copy(z, x)
			Softmax(z)
			SoftmaxCausal(z, n/2)
			SoftmaxBackward(z, y, x)
			tab.Apply(z[:16], 2, 8, 3, true)
			tab.ApplyInverse(z[:16], 2, 8, 3, false)
			opt.Step(z, y, w, x, 1)
		})
		if allocs != 0 {
			t.Errorf("%v allocations per run", allocs)
		}
	})
}
