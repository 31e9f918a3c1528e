package lora

import (
	"math"
	"math/big"
	"math/rand"
	"testing"

	"github.com/qtool-dev/qtool/kernels"
)

// rowPair returns two rows of n values, y a copy of x with about half the
// values changed; both hold zeros of either sign, subnormals, infinities
// and NaNs with payloads (deltaPick).
func rowPair(r *rand.Rand, n int) (x, y []float32) {
	x, y = make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = deltaPick(r)
		if r.Intn(50) == 0 {
			x[i] = math.Float32frombits(0x7fc00000 | uint32(r.Intn(1<<22)))
		}
		y[i] = x[i]
		switch r.Intn(6) {
		case 0, 1:
			y[i] = deltaPick(r)
		case 2:
			y[i] = math.Float32frombits(math.Float32bits(x[i]) ^ 1<<uint(r.Intn(32))) // one bit: ±0, NaN payloads
		}
	}
	return x, y
}

// countChanged counts bitwise differences whatever the slices' alignment
// and length.
func TestCountChanged(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for n := 0; n < 70; n++ {
		for _, off := range [][2]int{{0, 0}, {1, 1}, {0, 1}, {1, 0}} {
			x, y := rowPair(r, n+2)
			a, b := x[off[0]:off[0]+n], y[off[1]:off[1]+n]
			var want int64
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
					want++
				}
			}
			if got := countChanged(a, b); got != want {
				t.Fatalf("n %d, offsets %v: %d changed, want %d", n, off, got, want)
			}
		}
	}
}

// sumSq is Σv² to within float64 rounding of the exact sum (big.Float),
// and passes infinities and NaNs on.
func TestSumSq(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for n := 0; n < 300; n += 1 + n/8 {
		v := make([]float32, n)
		exact := new(big.Float).SetPrec(2000)
		for i := range v {
			v[i] = float32(math.Ldexp(r.NormFloat64(), r.Intn(120)-60))
			f := big.NewFloat(float64(v[i])).SetPrec(2000)
			exact.Add(exact, f.Mul(f, f))
		}
		want, _ := exact.Float64()
		if got := sumSq(v); math.Abs(got-want) > 1e-14*want {
			t.Fatalf("n %d: %g, want %g", n, got, want)
		}
	}
	if s := sumSq([]float32{1, float32(math.Inf(-1)), 2}); !math.IsInf(s, 1) {
		t.Errorf("with -Inf: %g", s)
	}
	if s := sumSq([]float32{1, float32(math.NaN()), 2, 3, 4, 5, 6, 7, 8}); !math.IsNaN(s) {
		t.Errorf("with NaN: %g", s)
	}
	if s := sumSq([]float32{1e30, 3e38}); math.IsInf(s, 0) || math.Abs(s-9e76) > 1e-6*9e76 {
		t.Errorf("huge values: %g", s) // float32 squares would overflow
	}
}

// combineRow writes the bits of the scalar loop of llama-export-lora's
// graph, out[j] = w[j] + float32(s·d[j]) adapter after adapter, at every
// kernels level, and the squared norms of W and of the summed update.
func TestCombineRow(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	levels := append([]string{"generic"}, kernelLevelsOrNone()...)
	for _, nt := range []int{1, 3} {
		for _, cols := range []int{1, 7, 16, 33, 300} {
			w := make([]float32, cols)
			for j := range w {
				w[j] = deltaPick(r)
			}
			terms := make([]term, nt)
			d := make([]float32, nt*cols)
			for i := range terms {
				terms[i].scale = deltaPick(r)
				if i == 0 {
					terms[i].scale = 0.75
				}
			}
			for j := range d {
				d[j] = deltaPick(r)
			}
			want := append([]float32(nil), w...)
			dsum := make([]float64, cols)
			var wantW, wantD float64
			for _, v := range w {
				wantW += float64(v) * float64(v)
			}
			for i, tm := range terms {
				for j := range want {
					sd := float32(tm.scale * d[i*cols+j])
					want[j] += sd
					dsum[j] += float64(sd)
				}
			}
			for _, v := range dsum {
				wantD += v * v
			}
			for _, lv := range levels {
				restore := kernels.SetFeatures(lv)
				tiles := append([]float32(nil), d...)
				out := make([]float32, cols)
				gw, gd := combineRow(out, w, tiles, 0, cols, terms, make([]float64, cols))
				restore()
				if i := sameBits(out, want); i >= 0 {
					t.Fatalf("%d terms, %d cols, level %s: element %d = %g, want %g", nt, cols, lv, i, out[i], want[i])
				}
				if !closeOrSame(gw, wantW) || !closeOrSame(gd, wantD) {
					t.Fatalf("%d terms, %d cols, level %s: norms² %g, %g; want %g, %g", nt, cols, lv, gw, gd, wantW, wantD)
				}
			}
		}
	}
}

// rowDiff counts bitwise changes and sums the squared differences (each
// rounded to float32 once), NaN where a value is not finite.
func TestRowDiff(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	for _, n := range []int{1, 5, 64, 257} {
		for range 20 {
			x, y := rowPair(r, n)
			if r.Intn(3) == 0 { // finite values only
				for i := range x {
					if math.IsInf(float64(x[i]), 0) || math.IsNaN(float64(x[i])) {
						x[i] = 1
					}
					if math.IsInf(float64(y[i]), 0) || math.IsNaN(float64(y[i])) {
						y[i] = x[i]
					}
				}
			}
			var wantN int64
			var wantD float64
			for i := range x {
				if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
					wantN++
				}
				dv := float64(y[i] - x[i])
				wantD += dv * dv
			}
			gotD, gotN := rowDiff(append([]float32(nil), y...), x)
			if gotN != wantN || !closeOrSame(gotD, wantD) {
				t.Fatalf("n %d: %d changed, diff² %g; want %d, %g", n, gotN, gotD, wantN, wantD)
			}
		}
	}
	// Unchanged rows: exactly 0, or NaN when a value is not finite.
	x := []float32{1, float32(math.Copysign(0, -1)), 3}
	if d, n := rowDiff(append([]float32(nil), x...), x); d != 0 || n != 0 {
		t.Errorf("equal rows: %g, %d", d, n)
	}
	x[2] = float32(math.Inf(1))
	if d, n := rowDiff(append([]float32(nil), x...), x); !math.IsNaN(d) || n != 0 {
		t.Errorf("equal rows with Inf: %g, %d", d, n)
	}
	// +0 against -0 counts as a change that adds nothing.
	if d, n := rowDiff([]float32{0}, []float32{float32(math.Copysign(0, -1))}); d != 0 || n != 1 {
		t.Errorf("±0: %g, %d", d, n)
	}
}

// closeOrSame: equal to float64 rounding of the summation order, or both
// the same non-finite value.
func closeOrSame(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b || math.Abs(a-b) <= 1e-13*math.Max(math.Abs(a), math.Abs(b))
}

// kernelLevelsOrNone are the assembly levels this CPU runs (none is fine:
// the generic level is always tried).
func kernelLevelsOrNone() []string {
	switch kernels.Detected() {
	case "avx512":
		return []string{"avx512", "avx2"}
	case "avx2":
		return []string{"avx2"}
	}
	return nil
}
