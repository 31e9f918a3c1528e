package kernels_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/quantize"
)

// bf16Round is x rounded to bfloat16 (quantize's rounding, nearest even).
func bf16Round(x float32) float32 { return quantize.BF16ToF32(quantize.F32ToBF16(x)) }

// amxRef returns the float64 product of A and B both rounded to bfloat16,
// the Σ|a·b| of the rounded values and that of the exact ones.
func amxRef(c wCase, a []float32, lda, m int) (ref, mag, magExact []float64) {
	ref = make([]float64, m*c.n)
	mag = make([]float64, m*c.n)
	magExact = make([]float64, m*c.n)
	br := make([]float64, len(c.ref))
	for i, v := range c.ref {
		br[i] = float64(bf16Round(v))
	}
	for i := range m {
		ar := make([]float64, c.k)
		for k := range c.k {
			ar[k] = float64(bf16Round(a[i*lda+k]))
		}
		for n := range c.n {
			var s, g, ge float64
			for k := range c.k {
				p := ar[k] * br[n*c.k+k]
				s += p
				g += math.Abs(p)
				ge += math.Abs(float64(a[i*lda+k]) * float64(c.ref[n*c.k+k]))
			}
			ref[i*c.n+n], mag[i*c.n+n], magExact[i*c.n+n] = s, g, ge
		}
	}
	return ref, mag, magExact
}

// TestMatMulTAMX holds the AMX path (4-bit, K-quant and bf16 weights, prompt-sized
// A) to the float64 product of the bfloat16-rounded operands within the
// float32 summation bound, checks it against the exact product within the
// rounding bound of the doc comment, and checks strides, guard bands,
// accumulate and that 1 and 3 threads agree bit for bit. It skips where
// the CPU or OS has no AMX.
func TestMatMulTAMX(t *testing.T) {
	defer kernels.SetAMX(true)()
	if !kernels.AMX() {
		t.Skipf("no AMX-BF16 here (level %s)", kernels.Features())
	}
	r := wRand(t)
	type shape struct{ m, n, k int }
	shapes := []shape{{17, 32, 64}, {33, 45, 100}, {70, 67, 530}, {40, 150, 1100}, {32, 64, 32}}
	for _, kind := range []string{"nf4", "fp4", "nf4-dq", "bf16", "q4_k", "q5_k", "q6_k"} {
		for _, s := range shapes {
			if kind != "bf16" && s.k*s.n%2 != 0 {
				continue
			}
			if kquantKind(kind) {
				s.k = 256 * (1 + s.k/400) // whole super-blocks
			}
			c := newWCase(t, r, kind, s.n, s.k, false)
			lda, ldc := s.k+r.IntN(3), s.n+r.IntN(3)
			a := newStrided(r, s.m, s.k, lda)
			ref, mag, magExact := amxRef(c, a.data(), lda, s.m)
			exact, _ := refProduct(c, a.data(), lda, s.m)
			var first []float32
			for _, threads := range []int{1, 3} {
				for _, acc := range []bool{false, true} {
					cs := newStrided(r, s.m, s.n, ldc)
					kernels.MatMulT(cs.data(), ldc, a.data(), lda, s.m, c.w, acc, threads)
					what := c.String() + "/AMX"
					cs.checkGuards(t, what)
					a.checkGuards(t, what+"/A")
					checkProduct(t, what, cs, ref, mag, acc)
					for i := range s.m {
						for n := range s.n {
							got := float64(cs.at(i, n))
							if acc {
								got -= float64(cs.initialValue[i*s.n+n])
							}
							bound := (1.0/256+1.0/65536)*magExact[i*s.n+n] + 1e-4*mag[i*s.n+n] + 1e-30
							if d := math.Abs(got - exact[i*s.n+n]); !(d <= bound) {
								t.Fatalf("%s: C[%d,%d] = %v, exact %v (error %.3g > %.3g)", what, i, n, got, exact[i*s.n+n], d, bound)
							}
						}
					}
					if !acc {
						got := make([]float32, 0, s.m*s.n)
						for i := range s.m {
							for n := range s.n {
								got = append(got, cs.at(i, n))
							}
						}
						if first == nil {
							first = got
						} else {
							for x := range got {
								if math.Float32bits(got[x]) != math.Float32bits(first[x]) {
									t.Fatalf("%s: 3 threads differ from 1 at %d: %v vs %v", what, x, got[x], first[x])
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestMatMulTAMXOff checks that the switch is off by default (with it off,
// TestMatMulTWeights holds the 4-bit and bf16 products to the float32
// path's bound).
func TestMatMulTAMXOff(t *testing.T) {
	if kernels.AMX() {
		t.Fatal("the AMX path is on by default")
	}
}

// BenchmarkMatMulTAMX times a prompt-sized product (128 rows of A) against
// 4-bit and bf16 weights on the float32 tiles and on the AMX path, in one
// process (GFLOP/s counts 2·m·n·k).
func BenchmarkMatMulTAMX(b *testing.B) {
	for _, kind := range []string{"nf4", "bf16"} {
		for _, s := range [][3]int{{128, 2048, 2048}, {128, 8192, 2048}, {128, 2048, 8192}, {512, 2048, 2048}} {
			m, n, k := s[0], s[1], s[2]
			for _, amx := range []bool{false, true} {
				name := fmt.Sprintf("%s/%dx%dx%d/f32", kind, m, n, k)
				if amx {
					name = strings.TrimSuffix(name, "f32") + "amx"
				}
				b.Run(name, func(b *testing.B) {
					defer kernels.SetAMX(amx)()
					if amx && !kernels.AMX() {
						b.Skip("no AMX-BF16 here")
					}
					w, wbytes := wbWeights(b, kind, n, k)
					a := wbRandA(m, k)
					c := make([]float32, m*n)
					b.ResetTimer()
					for b.Loop() {
						kernels.MatMulT(c, n, a, k, m, w, false, 0)
					}
					wbReport(b, m, n, k, wbytes)
				})
			}
		}
	}
}
