package kernels_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/quantize"
)

// Benchmarks of the weight types (run them under every build tag; compare
// with benchstat):
//
//	go test -run '^$' -bench 'Weights|Convert' -count 6 ./kernels
//
// MatMulT is the engine's tiled product (Tile per 128×256 tile), GemvT the
// skinny path; both report GFLOP/s, and GB/s of stored weight bytes read
// (one pass over the weight per call).

var (
	wbMu    sync.Mutex
	wbCache = map[string]wCase{}
)

// wbWeights returns a cached n×k matrix of the kind ("f32" is the engine's
// F32Matrix).
func wbWeights(b *testing.B, kind string, n, k int) (kernels.BMatrix, int) {
	wbMu.Lock()
	defer wbMu.Unlock()
	key := fmt.Sprintf("%s/%d/%d", kind, n, k)
	c, ok := wbCache[key]
	if !ok {
		r := rand.New(rand.NewPCG(1, 2))
		if kind == "f32" {
			data := make([]float32, n*k)
			for i := range data {
				data[i] = float32(r.NormFloat64())
			}
			c = wCase{kind: kind, n: n, k: k, ref: data}
		} else {
			c = newWCase(b, r, kind, n, k, false)
			c.ref = nil
		}
		wbCache[key] = c
	}
	if kind == "f32" {
		return &kernels.F32Matrix{Data: c.ref, N: n, K: k}, 4 * n * k
	}
	return c.w, c.w.StoredBytes()
}

var wbKinds = []string{"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k", "nf4", "nf4-dq", "int8"}

func wbRandA(m, k int) []float32 {
	r := rand.New(rand.NewPCG(3, 4))
	a := make([]float32, m*k)
	for i := range a {
		a[i] = float32(r.NormFloat64())
	}
	return a
}

func wbReport(b *testing.B, m, n, k, wbytes int) {
	s := b.Elapsed().Seconds()
	if s == 0 {
		return
	}
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/s/1e9, "GFLOP/s")
	b.ReportMetric(float64(wbytes)*float64(b.N)/s/1e9, "GB/s")
}

func BenchmarkWeightsMatMulT(b *testing.B) {
	for _, kind := range wbKinds {
		for _, s := range [][3]int{{512, 2048, 2048}, {8, 2048, 2048}} {
			m, n, k := s[0], s[1], s[2]
			b.Run(fmt.Sprintf("%s/%dx%dx%d", kind, m, n, k), func(b *testing.B) {
				w, wbytes := wbWeights(b, kind, n, k)
				a := wbRandA(m, k)
				c := make([]float32, m*n)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					kernels.MatMulT(c, n, a, k, m, w, false, 0)
				}
				wbReport(b, m, n, k, wbytes)
			})
		}
	}
}

func BenchmarkWeightsGemvT(b *testing.B) {
	for _, kind := range wbKinds {
		for _, s := range [][3]int{{1, 2048, 2048}, {8, 2048, 2048}, {16, 2048, 2048}} {
			m, n, k := s[0], s[1], s[2]
			b.Run(fmt.Sprintf("%s/%dx%dx%d", kind, m, n, k), func(b *testing.B) {
				w, wbytes := wbWeights(b, kind, n, k)
				a := wbRandA(m, k)
				c := make([]float32, m*n)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if !kernels.GemvT(c, a, m, w, 0) {
						b.Fatal("no fused path")
					}
				}
				wbReport(b, m, n, k, wbytes)
			})
		}
	}
}

// BenchmarkGemvStream is the generation product against a weight far
// larger than the caches (16384×4096: 64 MiB of Q8_0, 128 MiB of f16), so
// the GB/s it reports are read from memory, the bound of token generation.
// "-int8" runs with SetInt8Dot (Q4_0's int8 kernels), "-decode" with
// SetFusedDot(false) (the decode-then-dot path the fused kernels replace).
func BenchmarkGemvStream(b *testing.B) {
	const n, k = 16384, 4096
	for _, kind := range []string{"f16", "f16-decode", "bf16", "bf16-decode", "q8_0", "q8_0-int8", "q4_0", "q4_0-int8", "q4_k", "q5_k", "q6_k", "nf4", "nf4-decode"} {
		b.Run(kind, func(b *testing.B) {
			defer kernels.SetInt8Dot(strings.HasSuffix(kind, "-int8"))()
			defer kernels.SetFusedDot(!strings.HasSuffix(kind, "-decode"))()
			base := strings.TrimSuffix(strings.TrimSuffix(kind, "-int8"), "-decode")
			w, wbytes := wbWeights(b, base, n, k)
			a := wbRandA(1, k)
			c := make([]float32, n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				kernels.GemvT(c, a, 1, w, 0)
			}
			wbReport(b, 1, n, k, wbytes)
		})
	}
}

// BenchmarkWeightsTile measures dequantization alone: the whole matrix in
// MatMulT-sized tiles on one goroutine (G values/s and GB/s read).
func BenchmarkWeightsTile(b *testing.B) {
	for _, kind := range wbKinds[1:] {
		b.Run(kind, func(b *testing.B) {
			const n, k = 2048, 2048
			w, wbytes := wbWeights(b, kind, n, k)
			tile := make([]float32, kernels.TileN*kernels.TileK)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for n0 := 0; n0 < n; n0 += kernels.TileN {
					for k0 := 0; k0 < k; k0 += kernels.TileK {
						w.Tile(tile, n0, n0+kernels.TileN, k0, k0+kernels.TileK)
					}
				}
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(n*k)*float64(b.N)/s/1e9, "Gvalues/s")
			b.ReportMetric(float64(wbytes)*float64(b.N)/s/1e9, "GB/s")
		})
	}
}

// BenchmarkConvert reports G values/s of the bulk conversions, L1-sized
// (4096) and memory-sized (1<<22), and of the scalar quantize functions
// (x448/float16 for f16) for comparison.
func BenchmarkConvert(b *testing.B) {
	for _, n := range []int{4096, 1 << 22} {
		h := make([]uint16, n)
		f := make([]float32, n)
		r := rand.New(rand.NewPCG(5, 6))
		for i := range h {
			f[i] = float32(r.NormFloat64())
			h[i] = quantize.F32ToF16(f[i])
		}
		run := func(name string, fn func()) {
			b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					fn()
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gvalues/s")
			})
		}
		run("F16ToF32", func() { kernels.F16ToF32(f, h) })
		run("F32ToF16", func() { kernels.F32ToF16(h, f) })
		run("BF16ToF32", func() { kernels.BF16ToF32(f, h) })
		run("F32ToBF16", func() { kernels.F32ToBF16(h, f) })
		if n == 4096 {
			run("scalar-F16ToF32", func() {
				for i, v := range h {
					f[i] = quantize.F16ToF32(v)
				}
			})
			run("scalar-F32ToF16", func() {
				for i, v := range f {
					h[i] = quantize.F32ToF16(v)
				}
			})
		}
	}
}
