package kernels_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qtool-dev/qtool/kernels"
)

// Skinny products are checked against a float64 product of A with the
// reference dequantization of B. Tolerance: the kernels sum in float32 in
// blocked order, so |C − C_ref| ≤ prodTol·Σ_k |A[i,k]·B[n,k]| (for K up to
// a few thousand the observed error is two orders of magnitude below).
const prodTol = 1e-5

// refProduct returns C_ref = A·Bᵀ in float64 and the Σ|a·b| bounds, for
// A m×K with stride lda and B the reference values of c.
func refProduct(c wCase, a []float32, lda, m int) (ref, mag []float64) {
	ref = make([]float64, m*c.n)
	mag = make([]float64, m*c.n)
	for i := range m {
		for n := range c.n {
			var s, g float64
			for k := range c.k {
				p := float64(a[i*lda+k]) * float64(c.ref[n*c.k+k])
				s += p
				g += math.Abs(p)
			}
			ref[i*c.n+n], mag[i*c.n+n] = s, g
		}
	}
	return ref, mag
}

// strided is an m×n matrix with row stride ld inside guard bands: the
// padding between rows is guarded too.
type strided struct {
	buf          []float32
	band, m, n   int
	ld           int
	initialValue []float32
}

func newStrided(r *rand.Rand, m, n, ld int) *strided {
	const band = 23
	s := &strided{band: band, m: m, n: n, ld: ld}
	size := 0
	if m > 0 {
		size = (m-1)*ld + n
	}
	s.buf, _ = guarded(size, band)
	s.initialValue = make([]float32, m*n)
	for i := range m {
		for j := range n {
			v := float32(r.NormFloat64())
			s.buf[band+i*ld+j] = v
			s.initialValue[i*n+j] = v
		}
	}
	return s
}

func (s *strided) data() []float32 { return s.buf[s.band : len(s.buf)-s.band] }

func (s *strided) at(i, j int) float32 { return s.buf[s.band+i*s.ld+j] }

// checkGuards verifies the bands and the padding between rows.
func (s *strided) checkGuards(t *testing.T, what string) {
	t.Helper()
	checkBand(t, what, s.buf, 0, s.band)
	checkBand(t, what, s.buf, len(s.buf)-s.band, len(s.buf))
	for i := 0; i+1 < s.m; i++ {
		checkBand(t, what, s.buf, s.band+i*s.ld+s.n, s.band+(i+1)*s.ld)
	}
}

// checkProduct compares C (after an optional accumulate onto the initial
// values) with the reference.
func checkProduct(t *testing.T, what string, c *strided, ref, mag []float64, accumulate bool) {
	t.Helper()
	worst := 0.0
	for i := range c.m {
		for n := range c.n {
			want := ref[i*c.n+n]
			if accumulate {
				want += float64(c.initialValue[i*c.n+n])
			}
			got := float64(c.at(i, n))
			g := mag[i*c.n+n]
			if accumulate {
				g += math.Abs(float64(c.initialValue[i*c.n+n]))
			}
			bound := prodTol*g + 1e-30
			if err := math.Abs(got - want); !(err <= bound) {
				t.Fatalf("%s: C[%d,%d] = %v, want %v (error %.3g > bound %.3g)", what, i, n, got, want, err, bound)
			} else if g > 0 {
				worst = max(worst, err/g)
			}
		}
	}
	if testing.Verbose() && worst > prodTol/10 {
		t.Logf("%s: worst relative error %.3g", what, worst)
	}
}

func gemvKindsShapes(kind string) [][2]int {
	if kquantKind(kind) {
		return [][2]int{{1, 256}, {5, 512}, {67, 1280}}
	}
	if ggmlKind(kind) {
		return [][2]int{{1, 32}, {5, 96}, {67, 1056}}
	}
	// 128 and 2112: whole 64-blocks per row (the 4-bit fused kernels).
	return [][2]int{{1, 1}, {5, 33}, {7, 100}, {9, 128}, {67, 1100}, {13, 2112}}
}

// TestGemvWeights holds every weight type to the float32 path's bound (Q8_0
// and Q4_0 on their fused kernels; the Q4_0 int8 path has its own bound:
// TestGemvInt8).
func TestGemvWeights(t *testing.T) {
	r := wRand(t)
	var cases []wCase
	for _, kind := range wKinds {
		for _, s := range gemvKindsShapes(kind) {
			cases = append(cases, newWCase(t, r, kind, s[0], s[1], false))
		}
	}
	wLevels(t, func(t *testing.T) {
		for _, c := range cases {
			for _, m := range []int{1, 2, 3, 4, 5, 8, 13, 16, 17} {
				if c.k > 1000 && m%4 == 2 {
					continue // keep the large shapes quick
				}
				lda, ldc := c.k+r.IntN(3), c.n+r.IntN(3)
				a := newStrided(r, m, c.k, lda)
				ref, mag := refProduct(c, a.data(), lda, m)
				for _, acc := range []bool{false, true} {
					cs := newStrided(r, m, c.n, ldc)
					if !kernels.MatVecT(cs.data(), ldc, a.data(), lda, m, c.w, acc, 3) {
						t.Fatalf("%v: MatVecT reports no fused path", c)
					}
					what := c.String() + "/MatVecT"
					cs.checkGuards(t, what)
					a.checkGuards(t, what+"/A")
					checkProduct(t, what, cs, ref, mag, acc)
				}
				// GemvT: packed strides.
				ap := make([]float32, m*c.k)
				for i := range m {
					copy(ap[i*c.k:(i+1)*c.k], a.data()[i*lda:i*lda+c.k])
				}
				cp := newStrided(r, m, c.n, c.n)
				if !kernels.GemvT(cp.data(), ap, m, c.w, 2) {
					t.Fatalf("%v: GemvT reports no fused path", c)
				}
				cp.checkGuards(t, c.String()+"/GemvT")
				checkProduct(t, c.String()+"/GemvT", cp, ref, mag, false)
			}
		}
	})
}

// TestGemvF32 runs the skinny path on the engine's F32Matrix, in place and
// with a stride.
func TestGemvF32(t *testing.T) {
	r := wRand(t)
	wLevels(t, func(t *testing.T) {
		for _, s := range [][3]int{{1, 1, 0}, {6, 37, 40}, {67, 1100, 0}, {9, 130, 131}} {
			n, k, ld := s[0], s[1], s[2]
			stride := max(ld, k)
			data := make([]float32, (n-1)*stride+k)
			c := wCase{kind: "f32", n: n, k: k, ref: make([]float32, n*k)}
			for i := range n {
				for j := range k {
					v := float32(r.NormFloat64())
					data[i*stride+j] = v
					c.ref[i*k+j] = v
				}
			}
			for _, b := range []kernels.BMatrix{&kernels.F32Matrix{Data: data, N: n, K: k, Stride: ld}, kernels.F32Matrix{Data: data, N: n, K: k, Stride: ld}} {
				for _, m := range []int{1, 4, 7} {
					a := newStrided(r, m, k, k)
					ref, mag := refProduct(c, a.data(), k, m)
					cs := newStrided(r, m, n, n)
					if !kernels.GemvT(cs.data(), a.data(), m, b, 2) {
						t.Fatal("GemvT: no fused path for F32Matrix")
					}
					cs.checkGuards(t, c.String())
					checkProduct(t, c.String(), cs, ref, mag, false)
				}
			}
		}
	})
}

// TestGemvThreads: the result must not depend on the number of threads.
func TestGemvThreads(t *testing.T) {
	r := wRand(t)
	wLevels(t, func(t *testing.T) {
		for _, kind := range []string{"nf4", "q4_0", "f16"} {
			c := newWCase(t, r, kind, 301, 1088, false)
			for _, m := range []int{1, 6} {
				a := newStrided(r, m, c.k, c.k)
				var first []float32
				for _, threads := range []int{1, 2, 3, 8} {
					out := make([]float32, m*c.n)
					kernels.GemvT(out, a.data(), m, c.w, threads)
					if first == nil {
						first = out
						continue
					}
					for i := range out {
						if math.Float32bits(out[i]) != math.Float32bits(first[i]) {
							t.Fatalf("%v m=%d: %d threads give C[%d] = %v, 1 thread %v", c, m, threads, i, out[i], first[i])
						}
					}
				}
			}
		}
	})
}

// foreign is a BMatrix of no known type.
type foreign struct{ wCase }

func (f foreign) Rows() int { return f.n }
func (f foreign) Cols() int { return f.k }
func (f foreign) Tile(dst []float32, n0, n1, k0, k1 int) {
	f.w.Tile(dst, n0, n1, k0, k1)
}

func TestGemvForeign(t *testing.T) {
	c := newWCase(t, wRand(t), "q8_0", 4, 64, false)
	out := make([]float32, 4)
	if kernels.GemvT(out, make([]float32, 64), 1, foreign{c}, 1) {
		t.Error("GemvT claims a fused path for a foreign BMatrix")
	}
	// Empty shapes: m = 0 touches nothing, k = 0 clears C.
	if !kernels.GemvT(nil, nil, 0, c.w, 1) {
		t.Error("m = 0")
	}
	e := newWCase(t, wRand(t), "f16", 3, 0, false)
	out = []float32{1, 2, 3}
	kernels.GemvT(out, nil, 1, e.w, 1)
	if out[0] != 0 || out[1] != 0 || out[2] != 0 {
		t.Errorf("k = 0: C = %v", out)
	}
}

// TestMatMulTWeights feeds every weight type to the engine's tiled
// MatMulT (the fat path) and checks it against the reference product.
func TestMatMulTWeights(t *testing.T) {
	r := wRand(t)
	var cases []wCase
	for _, kind := range wKinds {
		k := 544
		switch {
		case kquantKind(kind):
			k = 768
		case !ggmlKind(kind):
			k = 530
		}
		cases = append(cases, newWCase(t, r, kind, 150, k, false))
	}
	wLevels(t, func(t *testing.T) {
		for _, c := range cases {
			const m = 37
			a := newStrided(r, m, c.k, c.k+1)
			ref, mag := refProduct(c, a.data(), c.k+1, m)
			cs := newStrided(r, m, c.n, c.n)
			kernels.MatMulT(cs.data(), c.n, a.data(), c.k+1, m, c.w, false, 2)
			cs.checkGuards(t, c.String())
			checkProduct(t, c.String()+"/MatMulT", cs, ref, mag, false)
		}
	})
}
