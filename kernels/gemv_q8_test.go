package kernels_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qtool-dev/qtool/kernels"
)

// The int8 path (SetInt8Dot; Q4_0 weights, one or two rows of A) rounds A
// to int8 per 32-block, so it is checked against the float64 product of the
// unrounded A with the bound stated in gemv_q8.go:
//
//	|C − A·Bᵀ| ≤ Σ_k |B[n,k]|·int8Tol·amax(i, k/32)/127 + prodTol·Σ_k |A[i,k]·B[n,k]|
//
// with amax(i, b) the largest |A[i, k]| of block b of row i; the rounding
// itself contributes at most half a step (int8Tol 0.5, plus slack for the
// float32 scale). The observed error is far below (the rounding errors are
// independent and mostly cancel), so this holds with room while a wrong
// scale, code or block would break it by orders of magnitude.
const int8Tol = 0.5 * (1 + 1e-5)

// int8Bound returns the per-element bound for C = A·Bᵀ on the int8 path.
func int8Bound(c wCase, a []float32, lda, m int) []float64 {
	bound := make([]float64, m*c.n)
	for i := range m {
		steps := make([]float64, c.k/32)
		for b := range steps {
			var amax float64
			for _, v := range a[i*lda+32*b : i*lda+32*b+32] {
				amax = max(amax, math.Abs(float64(v)))
			}
			steps[b] = int8Tol * amax / 127
		}
		for n := range c.n {
			var s float64
			for k := range c.k {
				s += math.Abs(float64(c.ref[n*c.k+k])) * steps[k/32]
			}
			bound[i*c.n+n] = s
		}
	}
	return bound
}

// checkInt8Product compares C with ref within bound + prodTol·mag.
func checkInt8Product(t *testing.T, what string, c *strided, ref, mag, bound []float64, accumulate bool) {
	t.Helper()
	worst := 0.0
	for i := range c.m {
		for n := range c.n {
			want := ref[i*c.n+n]
			g := mag[i*c.n+n]
			if accumulate {
				want += float64(c.initialValue[i*c.n+n])
				g += math.Abs(float64(c.initialValue[i*c.n+n]))
			}
			got := float64(c.at(i, n))
			lim := bound[i*c.n+n] + prodTol*g + 1e-30
			if err := math.Abs(got - want); !(err <= lim) {
				t.Fatalf("%s: C[%d,%d] = %v, want %v (error %.3g > bound %.3g)", what, i, n, got, want, err, lim)
			} else if lim > 0 {
				worst = max(worst, err/lim)
			}
		}
	}
	if testing.Verbose() {
		t.Logf("%s: worst error %.3g of the bound", what, worst)
	}
}

// int8Activations draws A with the spread of magnitudes wValues gives
// weights (zero and constant blocks included) plus blocks of tiny and huge
// values.
func int8Activations(r *rand.Rand, m, k, lda int) *strided {
	a := newStrided(r, m, k, lda)
	vals := wValues(r, m*k)
	for i := range m {
		for j := range k {
			v := vals[i*k+j]
			switch (i*k + j) / 32 % 17 {
			case 5:
				v *= 1e-38 // subnormal scales
			case 11:
				v *= 1e30
			}
			a.buf[a.band+i*lda+j] = v
			a.initialValue[i*k+j] = v
		}
	}
	return a
}

func TestGemvInt8(t *testing.T) {
	if kernels.Int8Dot() {
		t.Fatal("the int8 path is on by default")
	}
	defer kernels.SetInt8Dot(true)()
	r := wRand(t)
	var cases []wCase
	for _, kind := range []string{"q4_0", "q8_0"} {
		for _, s := range [][2]int{{1, 32}, {3, 64}, {5, 96}, {67, 1056}, {130, 2080}} {
			cases = append(cases, newWCase(t, r, kind, s[0], s[1], false))
		}
	}
	wLevels(t, func(t *testing.T) {
		for _, c := range cases {
			for _, m := range []int{1, 2, 3, 4, 5, 8, 16, 17} {
				if c.k > 1000 && m%4 == 2 {
					continue
				}
				lda, ldc := c.k+r.IntN(3), c.n+r.IntN(3)
				a := int8Activations(r, m, c.k, lda)
				ref, mag := refProduct(c, a.data(), lda, m)
				bound := int8Bound(c, a.data(), lda, m)
				for _, acc := range []bool{false, true} {
					var first *strided
					init := newStrided(r, m, c.n, ldc)
					for _, threads := range []int{1, 3} {
						cs := *init
						cs.buf = append([]float32(nil), init.buf...)
						if !kernels.MatVecT(cs.data(), ldc, a.data(), lda, m, c.w, acc, threads) {
							t.Fatalf("%v: MatVecT reports no fused path", c)
						}
						what := c.String() + "/MatVecT"
						cs.checkGuards(t, what)
						a.checkGuards(t, what+"/A")
						checkInt8Product(t, what, &cs, ref, mag, bound, acc)
						if first == nil {
							first = &cs
							continue
						}
						for i := range cs.buf {
							if math.Float32bits(cs.buf[i]) != math.Float32bits(first.buf[i]) {
								t.Fatalf("%v m=%d: 3 threads give %v at %d, 1 thread %v", c, m, cs.buf[i], i, first.buf[i])
							}
						}
					}
				}
				// MatMulT sends m ≤ 16 here too.
				if m <= 16 {
					cs := newStrided(r, m, c.n, ldc)
					kernels.MatMulT(cs.data(), ldc, a.data(), lda, m, c.w, false, 2)
					checkInt8Product(t, c.String()+"/MatMulT", cs, ref, mag, bound, false)
				}
			}
		}
	})
}

// TestGemvInt8NonFinite: a NaN or ±Inf in a row of A makes that row of C
// NaN (every column) and leaves the other row exact.
func TestGemvInt8NonFinite(t *testing.T) {
	defer kernels.SetInt8Dot(true)()
	r := wRand(t)
	for _, kind := range []string{"q4_0"} {
		c := newWCase(t, r, kind, 9, 128, false)
		wLevels(t, func(t *testing.T) {
			for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
				a := int8Activations(r, 2, c.k, c.k)
				a.buf[a.band+c.k+70] = bad // row 1
				a.initialValue[c.k+70] = bad
				cs := newStrided(r, 2, c.n, c.n)
				kernels.GemvT(cs.data(), a.data(), 2, c.w, 2)
				for n := range c.n {
					if v := cs.at(1, n); !math.IsNaN(float64(v)) {
						t.Fatalf("%v, %v in row 1: C[1,%d] = %v, want NaN", c, bad, n, v)
					}
					if v := cs.at(0, n); math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("%v: row 0 is %v", c, v)
					}
				}
			}
		})
	}
}

// TestMatMulTInt8 runs prompt-sized products (m > 16) against Q8_0 and
// Q4_0 with the int8 path on: on AVX512-VNNI they take the int8 GEMM
// (packed weight panels of 16 rows, activation panels of 8), elsewhere the
// float32 tiles; both must meet the int8 bound, with ragged m, n and k,
// strides, accumulation, and 1 and 3 threads bit for bit equal.
func TestMatMulTInt8(t *testing.T) {
	defer kernels.SetInt8Dot(true)()
	r := wRand(t)
	var cases []wCase
	for _, kind := range []string{"q8_0", "q4_0"} {
		for _, s := range [][2]int{{16, 32}, {37, 96}, {131, 1056}} {
			cases = append(cases, newWCase(t, r, kind, s[0], s[1], false))
		}
	}
	wLevels(t, func(t *testing.T) {
		for _, c := range cases {
			for _, m := range []int{17, 24, 45} {
				lda, ldc := c.k+r.IntN(3), c.n+r.IntN(3)
				a := int8Activations(r, m, c.k, lda)
				ref, mag := refProduct(c, a.data(), lda, m)
				bound := int8Bound(c, a.data(), lda, m)
				for _, acc := range []bool{false, true} {
					init := newStrided(r, m, c.n, ldc)
					var first *strided
					for _, threads := range []int{1, 3} {
						cs := *init
						cs.buf = append([]float32(nil), init.buf...)
						kernels.MatMulT(cs.data(), ldc, a.data(), lda, m, c.w, acc, threads)
						what := c.String() + "/MatMulT-int8"
						cs.checkGuards(t, what)
						checkInt8Product(t, what, &cs, ref, mag, bound, acc)
						if first == nil {
							first = &cs
							continue
						}
						for i := range cs.buf {
							if math.Float32bits(cs.buf[i]) != math.Float32bits(first.buf[i]) {
								t.Fatalf("%v m=%d: 3 threads give %v at %d, 1 thread %v", c, m, cs.buf[i], i, first.buf[i])
							}
						}
					}
				}
			}
		}
	})
}
