package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Benchmarks of the element-wise kernels at each available level, on the
// row lengths a Llama model uses (head dim 128, hidden 4096, FFN 14336).
// SetBytes counts the bytes each call reads and writes.

func ewBenchLevels(b *testing.B, f func(b *testing.B)) {
	for _, l := range []string{"avx512", "avx2", "generic"} {
		b.Run(l, func(b *testing.B) {
			restore := SetFeatures(l)
			defer restore()
			if Features() != l {
				b.Skipf("level %s not available here", l)
			}
			f(b)
		})
	}
}

func ewBenchVec(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

var ewBenchSizes = []int{128, 4096, 14336}

func BenchmarkElementwise(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	type kernel struct {
		name  string
		bytes int // per element
		run   func(b *testing.B, x, y, z, w []float32)
	}
	var sink float32
	kernels := []kernel{
		{"Dot", 8, func(b *testing.B, x, y, _, _ []float32) {
			for b.Loop() {
				sink += Dot(x, y)
			}
		}},
		{"Axpy", 12, func(b *testing.B, x, y, _, _ []float32) {
			for b.Loop() {
				Axpy(y, 1e-3, x)
			}
		}},
		{"Add", 12, func(b *testing.B, x, y, z, _ []float32) {
			for b.Loop() {
				Add(z, x, y)
			}
		}},
		{"RMSNorm", 12, func(b *testing.B, x, _, z, w []float32) {
			for b.Loop() {
				sink += RMSNorm(z, x, w, 1e-5)
			}
		}},
		{"RMSNormBackward", 20, func(b *testing.B, x, y, z, w []float32) {
			inv := RMSNorm(z, x, w, 1e-5)
			for b.Loop() {
				RMSNormBackward(z, nil, y, x, w, inv)
			}
		}},
		{"SiLUMul", 12, func(b *testing.B, x, y, z, _ []float32) {
			for b.Loop() {
				SiLUMul(z, x, y)
			}
		}},
		{"SiLUMulBackward", 20, func(b *testing.B, x, y, z, w []float32) {
			dy := append([]float32(nil), w...)
			for b.Loop() {
				SiLUMulBackward(z, w, dy, x, y)
			}
		}},
		{"Softmax", 8, func(b *testing.B, x, _, z, _ []float32) {
			for b.Loop() {
				copy(z, x)
				Softmax(z)
			}
		}},
		{"SoftmaxBackward", 12, func(b *testing.B, x, y, z, _ []float32) {
			Softmax(x)
			for b.Loop() {
				SoftmaxBackward(z, x, y)
			}
		}},
	}
	for _, k := range kernels {
		b.Run(k.name, func(b *testing.B) {
			ewBenchLevels(b, func(b *testing.B) {
				for _, n := range ewBenchSizes {
					b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
						x, y, z, w := ewBenchVec(r, n), ewBenchVec(r, n), ewBenchVec(r, n), ewBenchVec(r, n)
						b.SetBytes(int64(k.bytes * n))
						b.ReportAllocs()
						k.run(b, x, y, z, w)
					})
				}
			})
		})
	}
	_ = sink
}

// BenchmarkRope rotates one token's 32 query heads of 128.
func BenchmarkRope(b *testing.B) {
	const nHeads, headDim = 32, 128
	tab := NewRopeTable(headDim, 4096, RopeFreqs(headDim, 500000))
	x := ewBenchVec(rand.New(rand.NewPCG(1, 2)), nHeads*headDim)
	for _, inter := range []bool{false, true} {
		b.Run(fmt.Sprintf("interleaved=%v", inter), func(b *testing.B) {
			b.SetBytes(nHeads * headDim * 4 * 3) // x read and written, cos/sin read per head
			b.ReportAllocs()
			for b.Loop() {
				tab.Apply(x, nHeads, headDim, 1000, inter)
			}
		})
	}
}

// BenchmarkAdamW steps 2²⁰ parameters (a rank-16 LoRA pair of a 4096-wide
// projection is 2¹⁷).
func BenchmarkAdamW(b *testing.B) {
	const n = 1 << 20
	r := rand.New(rand.NewPCG(1, 2))
	p, g := ewBenchVec(r, n), ewBenchVec(r, n)
	m, v := make([]float32, n), make([]float32, n)
	opt := AdamW{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	b.SetBytes(n * 4 * 7) // p, m, v read and written, g read
	b.ReportAllocs()
	step := 0
	for b.Loop() {
		step++
		opt.Step(p, g, m, v, step)
	}
}
