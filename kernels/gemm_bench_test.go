package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// The benchmark shapes of issue 5: M×N×K with B an N×K weight (C = A·Bᵀ).
var benchShapes = [][3]int{{512, 2048, 2048}, {512, 2048, 5632}, {8, 2048, 2048}}

func benchLevels(b *testing.B, f func(b *testing.B)) {
	for _, name := range []string{"avx512", "avx2", "generic"} {
		b.Run(name, func(b *testing.B) {
			restore := SetFeatures(name)
			defer restore()
			if Features() != name {
				b.Skipf("%s not available", name)
			}
			f(b)
		})
	}
}

// reportGemm reports GFLOP/s and, for B read once per product, GB/s of B.
func reportGemm(b *testing.B, m, n, k int) {
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)/sec/1e9, "GFLOP/s")
	b.ReportMetric(4*float64(n)*float64(k)/sec/1e9, "GB/s-B")
	b.ReportMetric(0, "ns/op")
}

func benchInputs(m, n, k int) (a, bm, c []float32) {
	r := rand.New(rand.NewPCG(1, 2))
	return randSlice(r, m*k), randSlice(r, n*k), make([]float32, m*n)
}

// BenchmarkSgemm times SgemmNT (C = A·Bᵀ, the shape of a Linear layer) on
// all threads at each level.
func BenchmarkSgemm(b *testing.B) {
	benchLevels(b, func(b *testing.B) {
		for _, s := range benchShapes {
			m, n, k := s[0], s[1], s[2]
			b.Run(fmt.Sprintf("%dx%dx%d", m, n, k), func(b *testing.B) {
				a, w, c := benchInputs(m, n, k)
				SgemmNT(m, n, k, a, k, w, k, c, n, false, 0) // fill the pools
				b.ReportAllocs()
				for b.Loop() {
					SgemmNT(m, n, k, a, k, w, k, c, n, false, 0)
				}
				reportGemm(b, m, n, k)
			})
		}
	})
}

// BenchmarkSgemmVariants times the other layouts and the BMatrix.Tile path
// at the level in use.
func BenchmarkSgemmVariants(b *testing.B) {
	const m, n, k = 512, 2048, 2048
	a, w, c := benchInputs(m, n, k)
	SgemmNT(m, n, k, a, k, w, k, c, n, false, 0) // fill the pools
	b.Run("NN", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			SgemmNN(m, n, k, a, k, w, n, c, n, false, 0)
		}
		reportGemm(b, m, n, k)
	})
	b.Run("TN", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			SgemmTN(m, n, k, a, m, w, n, c, n, false, 0)
		}
		reportGemm(b, m, n, k)
	})
	b.Run("MatMulT-tiled", func(b *testing.B) {
		tm := &tiledMatrix{f: F32Matrix{Data: w, N: n, K: k}}
		b.ReportAllocs()
		for b.Loop() {
			MatMulT(c, n, a, k, m, tm, false, 0)
		}
		reportGemm(b, m, n, k)
	})
	b.Run("NT-1thread", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			SgemmNT(m, n, k, a, k, w, k, c, n, false, 1)
		}
		reportGemm(b, m, n, k)
	})
	b.Run("MatMulT-tiled-1thread", func(b *testing.B) {
		tm := &tiledMatrix{f: F32Matrix{Data: w, N: n, K: k}}
		b.ReportAllocs()
		for b.Loop() {
			MatMulT(c, n, a, k, m, tm, false, 1)
		}
		reportGemm(b, m, n, k)
	})
}

// BenchmarkGemmKernel times one micro-kernel call on packed panels that
// stay in cache: the ceiling of one core at each level.
func BenchmarkGemmKernel(b *testing.B) {
	for _, lv := range levels {
		if lv == nil || feature(indexOfLevel(lv)) > detected {
			continue
		}
		b.Run(lv.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			const kc = kcBlock
			nA := 8 // A panels streamed past one B panel, as in the engine
			a := gemmAligned(nA * lv.mr * aStride)
			copy(a, randSlice(r, len(a)))
			bp := gemmAligned(kc * lv.nr)
			copy(bp, randSlice(r, len(bp)))
			c := make([]float32, nA*lv.mr*lv.nr)
			for b.Loop() {
				for i := range nA {
					lv.kern[lv.mr](kc, a[i*lv.mr*aStride:], bp, c[i*lv.mr*lv.nr:], lv.nr, lv.mr, lv.nr, true)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(2*float64(nA*lv.mr*lv.nr*kc)/sec/1e9, "GFLOP/s")
		})
	}
}
