package quantize

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// benchN is the element count of the bitsandbytes benchmarks (a 2048×2048
// weight); b.SetBytes counts its fp16 bytes, 2 per element.
const benchN = 4 << 20

func benchInput() []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, benchN)
	for i := range x {
		x[i] = F16ToF32(F32ToF16(float32(r.NormFloat64() * 0.02)))
	}
	return x
}

func benchWorkers() []int {
	if p := runtime.GOMAXPROCS(0); p > 1 {
		return []int{1, p}
	}
	return []int{1}
}

func BenchmarkQuantizeNF4(b *testing.B) {
	x := benchInput()
	packed, absmax := make([]byte, benchN/2), make([]float32, benchN/64)
	for _, kind := range []FourBit{NF4, FP4} {
		for _, w := range benchWorkers() {
			b.Run(fmt.Sprintf("%v/workers=%d", kind, w), func(b *testing.B) {
				b.SetBytes(2 * benchN)
				b.ReportAllocs()
				for b.Loop() {
					if err := Quantize4BitTo(kind, packed, absmax, x, 64, Options4Bit{Workers: w}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkDequantizeNF4(b *testing.B) {
	x := benchInput()
	packed, absmax, err := Quantize4Bit(NF4, x, 64)
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range benchWorkers() {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			b.SetBytes(2 * benchN)
			b.ReportAllocs()
			for b.Loop() {
				if err := Dequantize4BitTo(NF4, x, packed, absmax, 64, Options4Bit{Workers: w}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDoubleQuant is NF4 with double quantization: the 4-bit pass
// plus DoubleQuantize of its absmax (what `--type nf4 --double-quant` does
// per tensor), one goroutine.
func BenchmarkDoubleQuant(b *testing.B) {
	x := benchInput()
	packed, absmax := make([]byte, benchN/2), make([]float32, benchN/64)
	b.SetBytes(2 * benchN)
	b.ReportAllocs()
	for b.Loop() {
		if err := Quantize4BitTo(NF4, packed, absmax, x, 64, Options4Bit{}); err != nil {
			b.Fatal(err)
		}
		DoubleQuantize(absmax)
	}
}

func BenchmarkQuantizeInt8(b *testing.B) {
	x := benchInput()
	b.Run("rows", func(b *testing.B) {
		b.SetBytes(2 * benchN)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := QuantizeInt8Rows(x, 2048, benchN/2048); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("blockwise8", func(b *testing.B) {
		b.SetBytes(2 * benchN)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := QuantizeBlockwise8(x, 4096); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("absmax-group32", func(b *testing.B) {
		b.SetBytes(2 * benchN)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := QuantizeAbsmaxInt8(x, 32); err != nil {
				b.Fatal(err)
			}
		}
	})
}
