package lora

import (
	"math"
	"math/rand"
	"testing"

	"github.com/qtool-dev/qtool/kernels"
)

// deltaPick draws one adapter value for the equivalence tests: wide
// exponents (products overflowing float32, or deep in its subnormals),
// signed zeros, infinities, and short mantissas whose products and sums
// land on float32 halfway points.
func deltaPick(r *rand.Rand) float32 {
	switch r.Intn(12) {
	case 0:
		return 0
	case 1:
		return float32(math.Copysign(0, -1))
	case 2:
		return float32(r.NormFloat64() * 1e-22) // products in float32's subnormal range
	case 3, 4:
		// 1 + i·2⁻¹²: products of two need up to 25 significant bits,
		// so they round, often from a halfway point.
		v := float32(1 + float64(r.Intn(64))*0x1p-12)
		if r.Intn(2) == 0 {
			v = -v
		}
		return float32(math.Ldexp(float64(v), r.Intn(8)-4))
	case 5:
		return float32(math.Ldexp(r.NormFloat64(), r.Intn(200)-100)) // any exponent float32 holds
	case 6:
		return float32(math.Ldexp(1, r.Intn(60)-30)) // exact powers of two: exact products, cancellations
	case 7:
		if r.Intn(40) == 0 {
			return float32(math.Inf(1 - 2*r.Intn(2)))
		}
	}
	return float32(r.NormFloat64() * math.Ldexp(1, r.Intn(20)-10))
}

// deltaShapes are the (rows, cols, rank) the equivalence tests try: every
// rank 1 to 64, with row counts around the micro-kernels' heights (14, 6)
// and column counts around their widths (32, 16) and TileN.
func deltaShapes(r *rand.Rand) [][3]int {
	var s [][3]int
	rowsSet := []int{1, 2, 5, 6, 7, 13, 14, 15, 29, 43}
	colsSet := []int{1, 3, 15, 16, 17, 31, 32, 33, 127, 128, 129, 300}
	for rank := 1; rank <= 64; rank++ {
		for range 8 {
			s = append(s, [3]int{rowsSet[r.Intn(len(rowsSet))], colsSet[r.Intn(len(colsSet))], rank})
		}
	}
	for _, rank := range []int{8, 16, 32, 33, 128, 255, 256} {
		s = append(s, [3]int{14, 257, rank}, [3]int{43, 129, rank})
	}
	return s
}

// deltaRef is B·A row by row with deltaRow, the reference emulation of
// export-lora's fmaf chain (TestDeltaRowEdges checks it against fma32).
func deltaRef(rows, cols, rank int, a, b []float32) []float32 {
	d := make([]float32, rows*cols)
	for i := range rows {
		deltaRow(d[i*cols:(i+1)*cols], b[i*rank:(i+1)*rank], a)
	}
	return d
}

// sameBits reports the first element whose bits differ, or -1.
func sameBits(got, want []float32) int {
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return i
		}
	}
	return -1
}

// kernelLevels are the kernels' assembly levels this CPU runs.
func kernelLevels(t *testing.T) []string {
	var ls []string
	switch kernels.Detected() {
	case "avx512":
		ls = []string{"avx512", "avx2"}
	case "avx2":
		ls = []string{"avx2"}
	}
	if len(ls) == 0 {
		t.Skipf("no assembly level (kernels detected %s)", kernels.Detected())
	}
	return ls
}

// kernels.SgemmNN with k ≤ TileK is, at the assembly levels, the fmaf
// chain in k order from +0 for every element: bit for bit what deltaRow
// computes, whatever the shape (for inputs without NaNs, whose payloads
// the hardware passes on differently; see kernelIsChain). A plain float32
// chain differs from deltaRow in about 8 % of these elements.
func TestSgemmNNIsFMAChain(t *testing.T) {
	for _, lv := range kernelLevels(t) {
		t.Run(lv, func(t *testing.T) {
			defer kernels.SetFeatures(lv)()
			r := rand.New(rand.NewSource(9))
			for _, sh := range deltaShapes(r) {
				rows, cols, rank := sh[0], sh[1], sh[2]
				a, b := make([]float32, rank*cols), make([]float32, rows*rank)
				for i := range a {
					a[i] = deltaPick(r)
				}
				for i := range b {
					b[i] = deltaPick(r)
				}
				want := deltaRef(rows, cols, rank, a, b)
				got := make([]float32, rows*cols)
				for i := range got {
					got[i] = float32(math.NaN()) // must be overwritten
				}
				kernels.SgemmNN(rows, cols, rank, b, rank, a, cols, got, cols, false, 1)
				if i := sameBits(got, want); i >= 0 {
					t.Fatalf("%d×%d rank %d: element (%d, %d) = %g (%08x), fmaf chain %g (%08x)", rows, cols, rank,
						i/cols, i%cols, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
		})
	}
}

// deltaScratch.delta, the merge's delta, equals deltaRow at every level
// (assembly or not), B's rows permuted or not, ranks past TileK and NaN
// payloads (which kernelIsChain sends to deltaRow) included.
func TestDeltaMatchesDeltaRow(t *testing.T) {
	levels := []string{"generic"}
	if kernels.Detected() != "generic" {
		levels = append(levels, kernelLevels(t)...)
	}
	for _, lv := range levels {
		t.Run(lv, func(t *testing.T) {
			defer kernels.SetFeatures(lv)()
			r := rand.New(rand.NewSource(10))
			shapes := deltaShapes(r)
			shapes = append(shapes, [3]int{9, 70, kernels.TileK + 1}, [3]int{20, 33, 300})
			var sc deltaScratch
			for n, sh := range shapes {
				rows, cols, rank := sh[0], sh[1], sh[2]
				p := &Pair{Rank: rank, In: cols, Out: rows, A: make([]float32, rank*cols), B: make([]float32, rows*rank)}
				for i := range p.A {
					p.A[i] = deltaPick(r)
				}
				for i := range p.B {
					p.B[i] = deltaPick(r)
				}
				if n%7 == 3 { // NaNs with payloads: deltaRow's path
					p.A[r.Intn(len(p.A))] = math.Float32frombits(0x7fc00000 | uint32(r.Intn(1<<22)))
					p.B[r.Intn(len(p.B))] = math.Float32frombits(0xffc00000 | uint32(r.Intn(1<<22)))
				}
				tm := term{pair: p}
				if n%2 == 1 {
					tm.bRow = func(i int64) int64 { return int64(rows) - 1 - i }
				}
				r0 := r.Intn(rows)
				r1 := r0 + 1 + r.Intn(rows-r0)
				got := make([]float32, (r1-r0)*cols)
				sc.delta(got, tm, r0, r1, cols, kernelIsChain(p))
				for i := r0; i < r1; i++ {
					br := i
					if tm.bRow != nil {
						br = int(tm.bRow(int64(i)))
					}
					want := make([]float32, cols)
					deltaRow(want, p.B[br*rank:(br+1)*rank], p.A)
					row := got[(i-r0)*cols : (i-r0+1)*cols]
					if j := sameBits(row, want); j >= 0 {
						t.Fatalf("%d×%d rank %d: row %d column %d: %g, want %g", rows, cols, rank, i, j, row[j], want[j])
					}
				}
			}
		})
	}
}

// applyTerms gives the same bits at every level and worker count, the
// kernel path included, for one and for several adapters.
func TestApplyTermsLevelsAgree(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	const rows, cols = 300, 270
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = deltaPick(r)
	}
	mk := func(rank int, s float32) term {
		p := &Pair{Rank: rank, In: cols, Out: rows, A: make([]float32, rank*cols), B: make([]float32, rows*rank)}
		for i := range p.A {
			p.A[i] = float32(r.NormFloat64())
		}
		for i := range p.B {
			p.B[i] = float32(r.NormFloat64())
		}
		return term{pair: p, scale: s}
	}
	for _, terms := range [][]term{{mk(16, 0.75)}, {mk(8, 2), mk(33, -0.3), mk(300, 1.5)}} {
		want := refMerge(w, rows, cols, terms)
		var wantSums rowSums
		for _, lv := range []string{"generic", "avx2", "avx512"} {
			for _, workers := range []int{1, 3} {
				restore := kernels.SetFeatures(lv)
				got := make([]float32, len(w))
				sums := rowSums{w: make([]float64, rows), d: make([]float64, rows)}
				applyTerms(got, w, rows, cols, terms, workers, sums)
				restore()
				if i := sameBits(got, want); i >= 0 {
					t.Fatalf("%d terms, level %s, %d workers: element %d = %g, want %g", len(terms), lv, workers, i, got[i], want[i])
				}
				if wantSums.w == nil {
					wantSums = sums
					continue
				}
				for i := range rows {
					if sums.w[i] != wantSums.w[i] || sums.d[i] != wantSums.d[i] {
						t.Fatalf("%d terms, level %s, %d workers: row %d sums differ", len(terms), lv, workers, i)
					}
				}
			}
		}
	}
}
