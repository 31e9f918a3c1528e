// Command blasbench times float32 C = A·Bᵀ with OpenBLAS's cblas_sgemm and
// with qtool's kernels.SgemmNT at each instruction level, on the same
// inputs in the same process, alternating engines round by round, and
// prints the median GFLOP/s of each and the ratio to OpenBLAS.
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

	"github.com/qtool-dev/qtool/kernels"
)

func main() {
	shapes := flag.String("shapes", "512x2048x2048,512x2048x5632,8x2048x2048", "comma-separated MxNxK")
	rounds := flag.Int("rounds", 7, "rounds; each times every engine once (the median is reported)")
	minTime := flag.Duration("min", 200*time.Millisecond, "repeat a call within a round until this much time has passed")
	levels := flag.String("levels", "avx512,avx2,generic", "qtool levels to time")
	pause := flag.Duration("pause", 100*time.Millisecond, "idle time between engines, so OpenBLAS's spinning threads go to sleep")
	flag.Parse()

	fmt.Printf("OpenBLAS: core %s, config %q, %d threads (OPENBLAS_CORETYPE=%q, OPENBLAS_L2_SIZE=%q)\n",
		C.GoString(C.openblas_get_corename()), C.GoString(C.openblas_get_config()),
		int(C.openblas_get_num_threads()), os.Getenv("OPENBLAS_CORETYPE"), os.Getenv("OPENBLAS_L2_SIZE"))
	fmt.Printf("qtool: detected %s, GOMAXPROCS %d\n", kernels.Detected(), runtime.GOMAXPROCS(0))

	lv := strings.Split(*levels, ",")
	for _, s := range strings.Split(*shapes, ",") {
		m, n, k := parseShape(s)
		r := rand.New(rand.NewPCG(uint64(m), uint64(n*k)))
		a, b := randSlice(r, m*k), randSlice(r, n*k)
		ref := make([]float32, m*n)
		c := make([]float32, m*n)
		engines := []string{"openblas"}
		engines = append(engines, lv...)
		times := map[string][]float64{}
		flop := 2 * float64(m) * float64(n) * float64(k)
		for round := 0; round < *rounds; round++ {
			for _, e := range engines {
				dst := c
				if e == "openblas" {
					dst = ref
				}
				sec := timeIt(*minTime, func() { run(e, m, n, k, a, b, dst) })
				times[e] = append(times[e], sec)
				if e != "openblas" {
					if d := maxRelDiff(c, ref, k); d > 1e-4 {
						fmt.Fprintf(os.Stderr, "%s %s: differs from OpenBLAS by %.3g\n", s, e, d)
						os.Exit(1)
					}
				}
				time.Sleep(*pause)
			}
		}
		fmt.Printf("\n%s (%d rounds, medians; GB/s counts B's %d MB once; ratio: median over rounds of the\n", s, *rounds, 4*n*k>>20)
		fmt.Printf("  engine's speed over OpenBLAS's in the same round)\n")
		fmt.Printf("  %-9s %9s %8s %8s  %s\n", "engine", "GFLOP/s", "GB/s-B", "ratio", "GFLOP/s per round")
		for _, e := range engines {
			t := median(times[e])
			var per []string
			var ratios []float64
			for i, x := range times[e] {
				per = append(per, fmt.Sprintf("%.0f", flop/x/1e9))
				ratios = append(ratios, times["openblas"][i]/x)
			}
			fmt.Printf("  %-9s %9.1f %8.1f %8.3f  %s\n", e, flop/t/1e9, 4*float64(n)*float64(k)/t/1e9, median(ratios), strings.Join(per, " "))
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
