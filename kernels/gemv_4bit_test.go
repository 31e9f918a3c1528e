package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// fourBitRand draws n rows of k random codes with one absmax per bs
// elements, over a wide range of magnitudes, zero included.
func fourBitRand(r *rand.Rand, n, k, bs int) (packed []byte, absmax []float32) {
	packed = make([]byte, n*k/2)
	for i := range packed {
		packed[i] = byte(r.Uint32())
	}
	absmax = make([]float32, n*k/bs)
	for i := range absmax {
		absmax[i] = float32(math.Ldexp(r.Float64(), r.IntN(40)-20))
		if r.IntN(10) == 0 {
			absmax[i] = 0
		}
	}
	return packed, absmax
}

// fourBitExact is row t's dot product with a in float64, from the
// bitsandbytes values table[code]·absmax (the product exact), and the sum
// of the magnitudes of the products, which bounds every partial sum a
// kernel rounds.
func fourBitExact(packed []byte, absmax []float32, table *[16]float32, a []float32, bs, t int) (exact, mag float64) {
	k := len(a)
	for j := range k {
		e := t*k + j
		c := packed[e/2] >> 4
		if e&1 == 1 {
			c = packed[e/2] & 15
		}
		p := float64(table[c]) * float64(absmax[e/bs]) * float64(a[j])
		exact += p
		mag += math.Abs(p)
	}
	return exact, mag
}

// TestFourBitDotRowsLevels checks the fused 4-bit kernel of every level
// this machine runs against the float64 sum of the bitsandbytes values
// times A, for NF4 and FP4, block sizes 32 to 4096, K from one block to
// past the kernel's chunk of columns, and row counts around the groups of
// four: only float32 rounding may differ, |got − exact| ≤ (bs + K/bs +
// 40)·2⁻²³·Σ|products|. out starts nonzero (the kernels add to it), and
// nothing past it is written.
func TestFourBitDotRowsLevels(t *testing.T) {
	r := gemmRand(t)
	forLevels(t, func(t *testing.T) {
		for _, kind := range []FourBitKind{NF4, FP4} {
			table := &fourBitTables[kind]
			for _, bs := range []int{32, 64, 128, 256, 4096} {
				for _, nb := range []int{1, 3, 5, 37, 70} {
					k := bs * nb
					if k > 9000 {
						continue
					}
					for _, n := range []int{1, 3, 4, 5, 11, 64} {
						packed, absmax := fourBitRand(r, n, k, bs)
						a := randSlice(r, k)
						out := make([]float32, n+2)
						for i := range out {
							out[i] = float32(i + 1)
						}
						fourBitDotRows(out[:n], packed, absmax, table, a, bs, level())
						for i := range n {
							exact, mag := fourBitExact(packed, absmax, table, a, bs, i)
							want := exact + float64(i+1)
							tol := float64(bs+k/bs+40)*0x1p-23*(mag+float64(i+1)) + 1e-37
							if err := math.Abs(float64(out[i]) - want); !(err <= tol) {
								t.Fatalf("%v bs=%d k=%d n=%d row %d: got %v, want %v (error %.3g > %.3g)", kind, bs, k, n, i, out[i], want, err, tol)
							}
						}
						if out[n] != float32(n+1) || out[n+1] != float32(n+2) {
							t.Fatalf("%v bs=%d k=%d n=%d: wrote past out", kind, bs, k, n)
						}
					}
				}
			}
		}
	})
}

// TestFourBitDotNonFinite checks that a NaN absmax makes its row NaN and a
// ±Inf one makes it non-finite, while the other rows stay exact.
func TestFourBitDotNonFinite(t *testing.T) {
	r := gemmRand(t)
	forLevels(t, func(t *testing.T) {
		const n, k, bs = 6, 256, 64
		table := &fourBitTables[NF4]
		packed, absmax := fourBitRand(r, n, k, bs)
		for i := range absmax {
			absmax[i] = 0.5
		}
		a := randSlice(r, k)
		absmax[0*k/bs+1] = float32(math.NaN())
		absmax[2*k/bs+3] = float32(math.Inf(1))
		absmax[5*k/bs+0] = float32(math.Inf(-1))
		out := make([]float32, n)
		fourBitDotRows(out, packed, absmax, table, a, bs, level())
		for i, v := range out {
			f := float64(v)
			switch i {
			case 0:
				if !math.IsNaN(f) {
					t.Errorf("row %d (NaN absmax): got %v, want NaN", i, v)
				}
			case 2, 5:
				if !math.IsNaN(f) && !math.IsInf(f, 0) {
					t.Errorf("row %d (Inf absmax): got %v, want ±Inf or NaN", i, v)
				}
			default:
				exact, mag := fourBitExact(packed, absmax, table, a, bs, i)
				if err := math.Abs(f - exact); !(err <= 1e-5*mag) {
					t.Errorf("row %d: got %v, want %v", i, v, exact)
				}
			}
		}
	})
}

// TestFourBitMatVecFused runs MatVecT on the fused path (K a multiple of
// the block size, one and two rows of A, in C's place and accumulating)
// and on the decoding path, and checks both against the float64 product:
// the shapes of TestGemvWeights leave blocks straddling rows, which the
// fused kernels do not serve.
func TestFourBitMatVecFused(t *testing.T) {
	r := gemmRand(t)
	forLevels(t, func(t *testing.T) {
		for _, kind := range []FourBitKind{NF4, FP4} {
			const n, k, bs = 133, 3 * 64 * 13, 64
			packed, absmax := fourBitRand(r, n, k, bs)
			w, err := NewFourBitMatrix(kind, packed, absmax, n, k, bs)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []int{1, 2, 3} {
				a := randSlice(r, m*k)
				for _, fused := range []bool{true, false} {
					restore := SetFusedDot(fused)
					for _, acc := range []bool{false, true} {
						c := make([]float32, m*n)
						for i := range c {
							c[i] = float32(i%7) - 3
						}
						init := append([]float32(nil), c...)
						if !MatVecT(c, n, a, k, m, w, acc, 2) {
							t.Fatalf("%v m=%d: MatVecT reports no path", kind, m)
						}
						for i := range m {
							for j := range n {
								want, mag := fourBitExact(packed, absmax, w.table, a[i*k:(i+1)*k], bs, j)
								if acc {
									want += float64(init[i*n+j])
									mag += math.Abs(float64(init[i*n+j]))
								}
								if err := math.Abs(float64(c[i*n+j]) - want); !(err <= 1e-5*mag+1e-30) {
									t.Fatalf("%v m=%d fused=%v acc=%v: C[%d,%d] = %v, want %v", kind, m, fused, acc, i, j, c[i*n+j], want)
								}
							}
						}
					}
					restore()
				}
			}
		}
	})
}

// BenchmarkFourBitFused times MatVecT against a 4096×4096 NF4 weight
// (8 MiB, cache-resident on large L3s) with m rows of A, on the fused
// path and the decoding one, at each level, on one goroutine: the choice
// of fourBitFusedRows.
func BenchmarkFourBitFused(b *testing.B) {
	const n, k, bs = 4096, 4096, 64
	r := rand.New(rand.NewPCG(1, 2))
	packed, absmax := fourBitRand(r, n, k, bs)
	w, err := NewFourBitMatrix(NF4, packed, absmax, n, k, bs)
	if err != nil {
		b.Fatal(err)
	}
	for _, lvl := range []string{"avx512", "avx2", "generic"} {
		for _, m := range []int{1, 2, 3} {
			a := randSlice(r, m*k)
			c := make([]float32, m*n)
			for _, path := range []string{"fused", "decode"} {
				b.Run(fmt.Sprintf("%s/m=%d/%s", lvl, m, path), func(b *testing.B) {
					defer SetFeatures(lvl)()
					if Features() != lvl {
						b.Skipf("%s not available", lvl)
					}
					defer SetFusedDot(path == "fused")()
					if path == "fused" && !w.fusedRows(m, level()) {
						b.Skip("not fused at this level and m")
					}
					b.ReportAllocs()
					b.SetBytes(int64(w.StoredBytes()))
					for b.Loop() {
						MatVecT(c, n, a, k, m, w, false, 1)
					}
				})
			}
		}
	}
}
