// Command blasbench times float32 C = A·Bᵀ with OpenBLAS's cblas_sgemm and
// with qtool's kernels.SgemmNT at each instruction level, and qtool's
// kernels.MatMulT with B stored in each weight type (f32, f16, bf16, NF4,
// int8 row-wise, Q8_0, Q4_0) at the best level, on the same inputs in the
// same process, alternating engines round by round. It prints the median
// GFLOP/s of each, the GB/s of B's stored bytes, the ratio to OpenBLAS and,
// for the weight types, the ratio to qtool's own f32 MatMulT in the same
// rounds.
//
// Run it through scripts/bench-gemm.sh, which installs libopenblas-dev and
// sets OPENBLAS_NUM_THREADS.
package main

/*
#cgo CFLAGS: -I/usr/include/x86_64-linux-gnu/openblas-pthread
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/quantize"
)

func main() {
	shapes := flag.String("shapes", "512x2048x2048,512x2048x5632,8x2048x2048", "comma-separated MxNxK")
	rounds := flag.Int("rounds", 7, "rounds; each times every engine once (the median is reported)")
	minTime := flag.Duration("min", 200*time.Millisecond, "repeat a call within a round until this much time has passed")
	levels := flag.String("levels", "avx512,avx2,generic", "qtool levels to time (SgemmNT on float32 B)")
	types := flag.String("types", "f32,f16,bf16,nf4,int8,q8_0,q4_0,q4_k,q5_k,q6_k", "weight types to time through MatMulT at the detected level (empty: none)")
	pause := flag.Duration("pause", 100*time.Millisecond, "idle time between engines, so OpenBLAS's spinning threads go to sleep")
	flag.Parse()

	fmt.Printf("OpenBLAS: core %s, config %q, %d threads (OPENBLAS_CORETYPE=%q, OPENBLAS_L2_SIZE=%q)\n",
		C.GoString(C.openblas_get_corename()), C.GoString(C.openblas_get_config()),
		int(C.openblas_get_num_threads()), os.Getenv("OPENBLAS_CORETYPE"), os.Getenv("OPENBLAS_L2_SIZE"))
	fmt.Printf("qtool: detected %s, GOMAXPROCS %d\n", kernels.Detected(), runtime.GOMAXPROCS(0))

	lv := splitList(*levels)
	wt := splitList(*types)
	for _, s := range strings.Split(*shapes, ",") {
		m, n, k := parseShape(s)
		r := rand.New(rand.NewPCG(uint64(m), uint64(n*k)))
		a, b := randSlice(r, m*k), randSlice(r, n*k)
		ref := make([]float32, m*n)
		c := make([]float32, m*n)
		engines := []string{"openblas"}
		engines = append(engines, lv...)
		weights := map[string]weight{}
		for _, t := range wt {
			w, err := newWeight(t, b, n, k)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: weight type %s: %v\n", s, t, err)
				os.Exit(2)
			}
			weights["w:"+t] = w
			engines = append(engines, "w:"+t)
		}
		times := map[string][]float64{}
		flop := 2 * float64(m) * float64(n) * float64(k)
		for round := 0; round < *rounds; round++ {
			for _, e := range engines {
				dst := c
				if e == "openblas" {
					dst = ref
				}
				var sec float64
				if w, ok := weights[e]; ok {
					sec = timeIt(*minTime, func() { kernels.MatMulT(dst, n, a, k, m, w.m, false, 0) })
				} else {
					sec = timeIt(*minTime, func() { run(e, m, n, k, a, b, dst) })
				}
				times[e] = append(times[e], sec)
				if e != "openblas" {
					// Quantized types are checked against OpenBLAS on
					// their own dequantized values' error budget.
					if d := maxRelDiff(c, ref, k); d > weights[e].tol+1e-4 {
						fmt.Fprintf(os.Stderr, "%s %s: differs from OpenBLAS by %.3g\n", s, e, d)
						os.Exit(1)
					}
				}
				time.Sleep(*pause)
			}
		}
		fmt.Printf("\n%s (%d rounds, medians; GB/s-B: B's stored bytes read once per call; ratio: median over\n", s, *rounds)
		fmt.Printf("  rounds of the engine's speed over OpenBLAS's in the same round; vs-f32: the same against w:f32)\n")
		fmt.Printf("  %-9s %9s %8s %8s %8s  %s\n", "engine", "GFLOP/s", "GB/s-B", "ratio", "vs-f32", "GFLOP/s per round")
		for _, e := range engines {
			t := median(times[e])
			var per []string
			var ratios, vsF32 []float64
			for i, x := range times[e] {
				per = append(per, fmt.Sprintf("%.0f", flop/x/1e9))
				ratios = append(ratios, times["openblas"][i]/x)
				if f, ok := times["w:f32"]; ok {
					vsF32 = append(vsF32, f[i]/x)
				}
			}
			bytes := 4 * float64(n) * float64(k)
			if w, ok := weights[e]; ok {
				bytes = float64(w.bytes)
			}
			rel := "-"
			if _, ok := weights[e]; ok && len(vsF32) > 0 {
				rel = fmt.Sprintf("%.3f", median(vsF32))
			}
			fmt.Printf("  %-9s %9.1f %8.1f %8.3f %8s  %s\n", e, flop/t/1e9, bytes/t/1e9, median(ratios), rel, strings.Join(per, " "))
		}
	}
}

// run computes C = A·Bᵀ with one engine.
func run(engine string, m, n, k int, a, b, c []float32) {
	if engine == "openblas" {
		C.cblas_sgemm(C.CblasRowMajor, C.CblasNoTrans, C.CblasTrans, C.blasint(m), C.blasint(n), C.blasint(k),
			1, (*C.float)(unsafe.Pointer(&a[0])), C.blasint(k), (*C.float)(unsafe.Pointer(&b[0])), C.blasint(k),
			0, (*C.float)(unsafe.Pointer(&c[0])), C.blasint(n))
		return
	}
	restore := kernels.SetFeatures(engine)
	defer restore()
	if kernels.Features() != engine {
		fmt.Fprintf(os.Stderr, "level %s not available here\n", engine)
		os.Exit(1)
	}
	kernels.SgemmNT(m, n, k, a, k, b, k, c, n, false, 0)
}

// timeIt returns the mean seconds per call over as many calls as fit in
// min (at least one), after one untimed call.
func timeIt(min time.Duration, f func()) float64 {
	f()
	start := time.Now()
	calls := 0
	for calls == 0 || time.Since(start) < min {
		f()
		calls++
	}
	return time.Since(start).Seconds() / float64(calls)
}

// weight is B stored in one of the kernels' weight types.
type weight struct {
	m     kernels.BMatrix
	bytes int     // stored bytes of B
	tol   float64 // the quantization error allowed against float32 B
}

// newWeight encodes the float32 B [n×k] in type t.
func newWeight(t string, b []float32, n, k int) (weight, error) {
	var w weight
	var err error
	switch t {
	case "f32":
		w.m, w.bytes = kernels.F32Matrix{Data: b, N: n, K: k}, 4*n*k
		return w, nil
	case "f16", "bf16":
		raw := make([]byte, 2*n*k)
		if t == "f16" {
			kernels.F32ToF16Bytes(raw, b)
			w.m, err = kernels.NewF16Matrix(raw, n, k)
			w.tol = 1e-2
		} else {
			kernels.F32ToBF16Bytes(raw, b)
			w.m, err = kernels.NewBF16Matrix(raw, n, k)
			w.tol = 2e-2
		}
		w.bytes = len(raw)
	case "nf4":
		packed, absmax, qerr := quantize.Quantize4Bit(quantize.NF4, b, 64)
		if qerr != nil {
			return w, qerr
		}
		w.m, err = kernels.NewFourBitMatrix(kernels.NF4, packed, absmax, n, k, 64)
		w.bytes, w.tol = len(packed)+4*len(absmax), 0.5
	case "int8":
		cb, scb, qerr := quantize.QuantizeInt8Rows(b, n, k)
		if qerr != nil {
			return w, qerr
		}
		raw := unsafe.Slice((*byte)(unsafe.Pointer(&cb[0])), len(cb))
		w.m, err = kernels.NewInt8RowMatrix(raw, scb, n, k)
		w.bytes, w.tol = len(raw)+4*len(scb), 0.1
	case "q8_0", "q4_0", "q4_k", "q5_k", "q6_k":
		d, tol := map[string]formats.DType{"q8_0": formats.Q8_0, "q4_0": formats.Q4_0, "q4_k": formats.Q4_K,
			"q5_k": formats.Q5_K, "q6_k": formats.Q6_K}[t], 0.5
		if t == "q8_0" || t == "q6_k" {
			tol = 0.1
		}
		raw := make([]byte, n*k/int(d.BlockSize())*int(d.BlockBytes()))
		if err := quantize.QuantizeGGML(d, raw, b); err != nil {
			return w, err
		}
		switch d {
		case formats.Q8_0:
			w.m, err = kernels.NewQ8_0Matrix(raw, n, k)
		case formats.Q4_0:
			w.m, err = kernels.NewQ4_0Matrix(raw, n, k)
		case formats.Q4_K:
			w.m, err = kernels.NewQ4_KMatrix(raw, n, k)
		case formats.Q5_K:
			w.m, err = kernels.NewQ5_KMatrix(raw, n, k)
		default:
			w.m, err = kernels.NewQ6_KMatrix(raw, n, k)
		}
		w.bytes, w.tol = len(raw), tol
	default:
		return w, fmt.Errorf("unknown type (want f32, f16, bf16, nf4, int8, q8_0, q4_0, q4_k, q5_k or q6_k)")
	}
	return w, err
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func maxRelDiff(x, y []float32, k int) float64 {
	var d float64
	for i := range x {
		d = max(d, math.Abs(float64(x[i])-float64(y[i]))/math.Sqrt(float64(k)))
	}
	return d
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func parseShape(s string) (m, n, k int) {
	f := strings.Split(s, "x")
	if len(f) != 3 {
		fmt.Fprintf(os.Stderr, "bad shape %q (want MxNxK)\n", s)
		os.Exit(2)
	}
	var v [3]int
	for i, x := range f {
		var err error
		if v[i], err = strconv.Atoi(x); err != nil || v[i] <= 0 {
			fmt.Fprintf(os.Stderr, "bad shape %q\n", s)
			os.Exit(2)
		}
	}
	return v[0], v[1], v[2]
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 2*r.Float32() - 1
	}
	return s
}
