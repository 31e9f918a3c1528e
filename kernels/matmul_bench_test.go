package kernels_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/kernels"
)

// BenchmarkMatMulTypes is issue 5's table: MatMulT (C = A·Bᵀ, B an N×K
// weight) for every weight type at M×N×K = 512×2048×2048, 512×2048×5632
// and 8×2048×2048, all threads, in GFLOP/s and, for the generation shape,
// GB/s of stored weight bytes read. bf16 runs twice: "bf16" on the float32
// path (tiles decoded to float32) and "bf16-dot" on the AVX512-BF16 path
// (skipped where the CPU lacks it; at M = 8 both take the row-decoding
// path); q8_0 and q4_0 too, "-int8" with SetInt8Dot (int8 activations: the
// VNNI GEMM at M = 512, and for Q4_0 the int8 skinny kernels at M = 8).
// Compare runs with benchstat:
//
//	go test -run '^$' -bench MatMulTypes -count 6 ./kernels
func BenchmarkMatMulTypes(b *testing.B) {
	kinds := []string{"f32", "f16", "bf16", "bf16-dot", "nf4", "nf4-dq", "int8", "q8_0", "q8_0-int8", "q4_0", "q4_0-int8", "q4_k", "q5_k", "q6_k"}
	shapes := [][3]int{{512, 2048, 2048}, {512, 2048, 5632}, {8, 2048, 2048}}
	for _, kind := range kinds {
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			b.Run(fmt.Sprintf("%s/%dx%dx%d", kind, m, n, k), func(b *testing.B) {
				wkind := strings.TrimSuffix(kind, "-int8")
				if kind == "bf16-dot" {
					wkind = "bf16"
				}
				defer kernels.SetBF16Dot(kind == "bf16-dot")()
				defer kernels.SetInt8Dot(strings.HasSuffix(kind, "-int8"))()
				if kind == "bf16-dot" && !kernels.BF16Dot() {
					b.Skip("no AVX512-BF16 path here")
				}
				w, wbytes := wbWeights(b, wkind, n, k)
				a := wbRandA(m, k)
				c := make([]float32, m*n)
				kernels.MatMulT(c, n, a, k, m, w, false, 0) // fill the pools
				b.ReportAllocs()
				for b.Loop() {
					kernels.MatMulT(c, n, a, k, m, w, false, 0)
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(2*float64(m)*float64(n)*float64(k)/sec/1e9, "GFLOP/s")
				if m <= 16 {
					b.ReportMetric(float64(wbytes)/sec/1e9, "GB/s")
				}
			})
		}
	}
}
