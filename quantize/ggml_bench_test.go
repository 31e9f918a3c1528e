package quantize

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// ggmlBenchN is the element count of one benchmark op: 4 Mi weights, a
// mid-sized linear layer.
const ggmlBenchN = 4 << 20

var ggmlBenchInput = sync.OnceValue(func() []float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, ggmlBenchN)
	for i := range x {
		// N(0, 0.02²) rounded to f16, like real (and the synth) weights.
		x[i] = F16ToF32(F32ToF16(float32(rng.NormFloat64() * 0.02)))
	}
	return x
})

// BenchmarkQuantizeGGML reports MB/s of f16 input (2 bytes per element),
// the unit llama-quantize's throughput is usually quoted in.
func BenchmarkQuantizeGGML(b *testing.B) {
	x := ggmlBenchInput()
	for _, d := range ggmlTypes {
		dst := make([]byte, len(x)/int(d.BlockSize())*int(d.BlockBytes()))
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("%v/workers=%d", d, w), func(b *testing.B) {
				b.SetBytes(2 * int64(len(x)))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if w == 1 {
						err = QuantizeGGML(d, dst, x)
					} else {
						err = QuantizeGGMLParallel(d, dst, x, w)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDequantizeGGML reports MB/s of f16 output.
func BenchmarkDequantizeGGML(b *testing.B) {
	x := ggmlBenchInput()
	y := make([]float32, len(x))
	for _, d := range ggmlTypes {
		packed := make([]byte, len(x)/int(d.BlockSize())*int(d.BlockBytes()))
		if err := QuantizeGGMLParallel(d, packed, x, 2); err != nil {
			b.Fatal(err)
		}
		b.Run(d.String(), func(b *testing.B) {
			b.SetBytes(2 * int64(len(x)))
			b.ReportAllocs()
			for b.Loop() {
				if err := DequantizeGGML(d, y, packed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGGMLFiniteCheck is the cost of the non-finite scan alone.
func BenchmarkGGMLFiniteCheck(b *testing.B) {
	x := ggmlBenchInput()
	b.SetBytes(2 * int64(len(x)))
	for b.Loop() {
		if ggmlFirstNonFinite(x) >= 0 {
			b.Fatal("non-finite")
		}
	}
}
