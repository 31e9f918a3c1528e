package kernels

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// The tests draw their inputs from a PCG seeded by -gemm.seed (logged when
// not the default), so a failure can be replayed.
var gemmSeed = flag.Uint64("gemm.seed", 1, "seed of the GEMM tests' random inputs")

func gemmRand(t testing.TB) *rand.Rand {
	if *gemmSeed != 1 {
		t.Logf("gemm.seed=%d", *gemmSeed)
	}
	return rand.New(rand.NewPCG(*gemmSeed, 0x9e3779b97f4a7c15))
}

// canary fills the parts of C a product must not touch: a NaN with a
// payload no arithmetic produces, compared bit for bit.
var canary = math.Float32frombits(0x7fa5c3e1)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 2*r.Float32() - 1
	}
	return s
}

// guarded is an m×n matrix with stride ld inside a slice with guard bands of
// canaries before and after it and in the gaps between rows.
type guarded struct {
	buf       []float32
	m, n, ld  int
	off       int
	writeable []bool
}

const guardLen = 37

func newGuarded(r *rand.Rand, m, n, ld int) *guarded {
	g := &guarded{m: m, n: n, ld: ld, off: guardLen}
	size := guardLen
	if m > 0 {
		size += (m-1)*ld + n
	}
	size += guardLen
	g.buf = make([]float32, size)
	g.writeable = make([]bool, size)
	for i := range g.buf {
		g.buf[i] = canary
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			g.buf[g.off+i*ld+j] = 2*r.Float32() - 1
			g.writeable[g.off+i*ld+j] = true
		}
	}
	return g
}

// c returns the matrix itself, from its first element to its last.
func (g *guarded) c() []float32 {
	if g.m == 0 {
		return g.buf[g.off:g.off]
	}
	return g.buf[g.off : g.off+(g.m-1)*g.ld+g.n]
}

func (g *guarded) at(i, j int) float32 { return g.buf[g.off+i*g.ld+j] }

func (g *guarded) clone() *guarded {
	h := *g
	h.buf = append([]float32(nil), g.buf...)
	return &h
}

// checkGuards reports any canary that changed.
func (g *guarded) checkGuards(t *testing.T, what string) {
	t.Helper()
	for i, v := range g.buf {
		if !g.writeable[i] && math.Float32bits(v) != math.Float32bits(canary) {
			t.Fatalf("%s: wrote outside C at offset %d (row-major index %d): %v", what, i, i-g.off, v)
		}
	}
}

// gemmCase is one product: C = opA(A)·opB(B) (+C), with opA(i,p) and
// opB(p,j) reading A and B as the op stores them.
type gemmCase struct {
	op         string // "NT", "NN", "TN", "MatMulT", "MatMulTptr", "MatMulTtiled"
	m, n, k    int
	lda, ldb   int
	ldc        int
	accumulate bool
}

func (gc gemmCase) String() string {
	return fmt.Sprintf("%s/%dx%dx%d/lda%d,ldb%d,ldc%d/acc=%v", gc.op, gc.m, gc.n, gc.k, gc.lda, gc.ldb, gc.ldc, gc.accumulate)
}

func (gc gemmCase) aTrans() bool { return gc.op == "TN" }
func (gc gemmCase) bTrans() bool { return gc.op != "NN" && gc.op != "TN" }

func (gc gemmCase) aShape() (rows, cols int) {
	if gc.aTrans() {
		return gc.k, gc.m
	}
	return gc.m, gc.k
}

func (gc gemmCase) bShape() (rows, cols int) {
	if gc.bTrans() {
		return gc.n, gc.k
	}
	return gc.k, gc.n
}

func (gc gemmCase) aAt(a []float32, i, p int) float32 {
	if gc.aTrans() {
		return a[p*gc.lda+i]
	}
	return a[i*gc.lda+p]
}

func (gc gemmCase) bAt(b []float32, p, j int) float32 {
	if gc.bTrans() {
		return b[j*gc.ldb+p]
	}
	return b[p*gc.ldb+j]
}

// tiledMatrix is a BMatrix that only Tile can read, and that checks the
// tiles it is asked for against the contract of BMatrix.
type tiledMatrix struct {
	f   F32Matrix
	mu  sync.Mutex
	bad string
}

func (m *tiledMatrix) Rows() int { return m.f.N }
func (m *tiledMatrix) Cols() int { return m.f.K }
func (m *tiledMatrix) Tile(dst []float32, n0, n1, k0, k1 int) {
	if n0 < 0 || n1 > m.f.N || n0 >= n1 || k0 < 0 || k1 > m.f.K || k0 >= k1 ||
		n1-n0 > TileN || k1-k0 > TileK || k0%TileK != 0 || n0%32 != 0 || len(dst) < (n1-n0)*(k1-k0) {
		m.mu.Lock()
		m.bad = fmt.Sprintf("Tile(len %d, %d, %d, %d, %d) of %dx%d", len(dst), n0, n1, k0, k1, m.f.N, m.f.K)
		m.mu.Unlock()
		return
	}
	m.f.Tile(dst, n0, n1, k0, k1)
}

// run computes the case into c.
func (gc gemmCase) run(t *testing.T, a, b, c []float32, threads int) {
	t.Helper()
	switch gc.op {
	case "NT":
		SgemmNT(gc.m, gc.n, gc.k, a, gc.lda, b, gc.ldb, c, gc.ldc, gc.accumulate, threads)
	case "NN":
		SgemmNN(gc.m, gc.n, gc.k, a, gc.lda, b, gc.ldb, c, gc.ldc, gc.accumulate, threads)
	case "TN":
		SgemmTN(gc.m, gc.n, gc.k, a, gc.lda, b, gc.ldb, c, gc.ldc, gc.accumulate, threads)
	case "MatMulT":
		MatMulT(c, gc.ldc, a, gc.lda, gc.m, F32Matrix{Data: b, N: gc.n, K: gc.k, Stride: gc.ldb}, gc.accumulate, threads)
	case "MatMulTptr":
		MatMulT(c, gc.ldc, a, gc.lda, gc.m, &F32Matrix{Data: b, N: gc.n, K: gc.k, Stride: gc.ldb}, gc.accumulate, threads)
	case "MatMulTtiled":
		tm := &tiledMatrix{f: F32Matrix{Data: b, N: gc.n, K: gc.k, Stride: gc.ldb}}
		MatMulT(c, gc.ldc, a, gc.lda, gc.m, tm, gc.accumulate, threads)
		if tm.bad != "" {
			t.Fatalf("%v: bad tile request %s", gc, tm.bad)
		}
	default:
		panic(gc.op)
	}
}

// gemmTol is the tolerance of every product against the float64
// reference: |c - ref| ≤ gemmTol·√k·(Σ_p |a_ip·b_pj| + |c0|). A float32 sum
// of k terms in any order errs by at most k·2⁻²⁴ of that scale, and by
// about √k·2⁻²⁴ in practice.
const gemmTol = 1e-5

// check runs the case at the current level with 1 and several threads and
// compares them with each other (bit for bit) and with the reference.
func (gc gemmCase) check(t *testing.T, r *rand.Rand) {
	t.Helper()
	ar, ac := gc.aShape()
	br, bc := gc.bShape()
	a := randSlice(r, max((ar-1)*gc.lda+ac, 0))
	b := randSlice(r, max((br-1)*gc.ldb+bc, 0))
	g := newGuarded(r, gc.m, gc.n, gc.ldc)
	c0 := g.clone()
	g.writeable = c0.writeable
	gc.run(t, a, b, g.c(), 1)
	g.checkGuards(t, gc.String())
	for _, threads := range []int{2, 3, 0} {
		h := c0.clone()
		gc.run(t, a, b, h.c(), threads)
		h.checkGuards(t, gc.String())
		for i := range h.buf {
			if math.Float32bits(h.buf[i]) != math.Float32bits(g.buf[i]) {
				t.Fatalf("%v: %d threads differ from 1 at offset %d: %v vs %v", gc, threads, i, h.buf[i], g.buf[i])
			}
		}
	}
	tol := gemmTol * math.Sqrt(float64(max(gc.k, 1)))
	for i := 0; i < gc.m; i++ {
		for j := 0; j < gc.n; j++ {
			var s, abs float64
			for p := 0; p < gc.k; p++ {
				x := float64(gc.aAt(a, i, p)) * float64(gc.bAt(b, p, j))
				s += x
				abs += math.Abs(x)
			}
			if gc.accumulate {
				s += float64(c0.at(i, j))
				abs += math.Abs(float64(c0.at(i, j)))
			}
			got := float64(g.at(i, j))
			if d := math.Abs(got - s); !(d <= tol*abs) {
				t.Fatalf("%v: C[%d][%d] = %v, want %v (error %.3g, bound %.3g)", gc, i, j, got, s, d, tol*abs)
			}
		}
	}
}

// forLevels runs f at every level this machine and build support.
func forLevels(t *testing.T, f func(t *testing.T)) {
	for _, name := range []string{"generic", "avx2", "avx512"} {
		t.Run(name, func(t *testing.T) {
			restore := SetFeatures(name)
			defer restore()
			if Features() != name {
				t.Skipf("%s not available (detected %s)", name, Detected())
			}
			f(t)
		})
	}
}

var gemmOps = []string{"NT", "NN", "TN", "MatMulT", "MatMulTptr", "MatMulTtiled"}

// gemmShapes are the fixed shapes: degenerate, one less and one more than
// each level's tile, K off the depth block, and items split along M and N.
var gemmShapes = [][3]int{
	{1, 1, 1}, {1, 1, 17}, {1, 5, 3}, {2, 1, 300}, {1, 130, 257},
	{3, 5, 7}, {4, 4, 4}, {5, 3, 16}, {6, 16, 15}, {7, 17, 31},
	{13, 31, 255}, {14, 32, 256}, {15, 33, 257}, {29, 65, 513},
	{8, 300, 100}, {16, 128, 64}, {64, 200, 600}, {700, 40, 20},
	{100, 600, 90}, {30, 1, 1000},
}

func TestGemmShapes(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := gemmRand(t)
		for _, op := range gemmOps {
			for _, s := range gemmShapes {
				for _, acc := range []bool{false, true} {
					gc := gemmCase{op: op, m: s[0], n: s[1], k: s[2], accumulate: acc}
					_, ac := gc.aShape()
					_, bc := gc.bShape()
					gc.lda, gc.ldb, gc.ldc = ac, bc, gc.n
					if acc {
						// Strides larger than the widths.
						gc.lda += 1 + r.IntN(9)
						gc.ldb += 1 + r.IntN(9)
						gc.ldc += 1 + r.IntN(9)
					}
					gc.check(t, r)
				}
			}
		}
	})
}

func TestGemmRandom(t *testing.T) {
	n := 60
	if testing.Short() {
		n = 15
	}
	forLevels(t, func(t *testing.T) {
		r := gemmRand(t)
		for range n {
			gc := gemmCase{
				op: gemmOps[r.IntN(len(gemmOps))],
				m:  1 + r.IntN(80), n: 1 + r.IntN(300), k: 1 + r.IntN(700),
				accumulate: r.IntN(2) == 0,
			}
			if r.IntN(4) == 0 {
				gc.m = 1 + r.IntN(8)
			}
			_, ac := gc.aShape()
			_, bc := gc.bShape()
			gc.lda, gc.ldb, gc.ldc = ac+r.IntN(3)*r.IntN(20), bc+r.IntN(3)*r.IntN(20), gc.n+r.IntN(3)*r.IntN(20)
			gc.check(t, r)
		}
	})
}

// TestGemmZeroSizes checks the empty products: nothing written, except C
// cleared when k = 0 and not accumulating.
func TestGemmZeroSizes(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := gemmRand(t)
		for _, op := range gemmOps {
			for _, s := range [][3]int{{0, 0, 0}, {0, 5, 3}, {4, 0, 3}, {4, 5, 0}} {
				for _, acc := range []bool{false, true} {
					gc := gemmCase{op: op, m: s[0], n: s[1], k: s[2], accumulate: acc}
					_, ac0 := gc.aShape()
					_, bc0 := gc.bShape()
					gc.lda, gc.ldb, gc.ldc = max(ac0, 1), max(bc0, 1), max(gc.n, 1)
					ar, ac := gc.aShape()
					br, bc := gc.bShape()
					a := randSlice(r, max((ar-1)*gc.lda+ac, 0))
					b := randSlice(r, max((br-1)*gc.ldb+bc, 0))
					g := newGuarded(r, gc.m, gc.n, gc.ldc)
					c0 := g.clone()
					gc.run(t, a, b, g.c(), 0)
					g.checkGuards(t, gc.String())
					for i := 0; i < gc.m; i++ {
						for j := 0; j < gc.n; j++ {
							want := c0.at(i, j)
							if !acc {
								want = 0
							}
							if g.at(i, j) != want {
								t.Fatalf("%v: C[%d][%d] = %v, want %v", gc, i, j, g.at(i, j), want)
							}
						}
					}
				}
			}
		}
	})
}

// TestGemmSpecialValues injects NaN and ±Inf: they must reach exactly the
// row (from A) or column (from B) of C that reads them, so padding and
// garbage in the packed panels never leak into C.
func TestGemmSpecialValues(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := gemmRand(t)
		const m, n, k = 37, 70, 300
		for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			a := randSlice(r, m*k)
			b := randSlice(r, n*k)
			ia, ib := r.IntN(m), r.IntN(n)
			a[ia*k+r.IntN(k)] = v
			b[ib*k+r.IntN(k)] = v
			c := make([]float32, m*n)
			SgemmNT(m, n, k, a, k, b, k, c, n, false, 2)
			for i := range m {
				for j := range n {
					x := c[i*n+j]
					finite := !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0)
					if (i == ia || j == ib) == finite {
						t.Fatalf("%v in A row %d, B row %d: C[%d][%d] = %v", v, ia, ib, i, j, x)
					}
				}
			}
		}
		// Denormal and huge inputs stay finite where the result is.
		a := randSlice(r, 20*40)
		b := randSlice(r, 30*40)
		for i := range a {
			if i%3 == 0 {
				a[i] = 1e-40
			}
		}
		b[5] = 1e30
		gc := gemmCase{op: "NT", m: 20, n: 30, k: 40, lda: 40, ldb: 40, ldc: 30}
		c := make([]float32, 20*30)
		gc.run(t, a, b, c, 1)
		for i, x := range c {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("C[%d] = %v", i, x)
			}
		}
	})
}

// TestGemmKernels drives each micro-kernel directly over every tile size
// it accepts, with guard bands around the tile.
func TestGemmKernels(t *testing.T) {
	r := gemmRand(t)
	for _, lv := range levels {
		if lv == nil || feature(indexOfLevel(lv)) > detected {
			continue
		}
		for _, v := range lv.variants {
			t.Run(fmt.Sprintf("%s/%dx%d", lv.name, v.rows, lv.nr), func(t *testing.T) {
				for _, kc := range []int{1, 2, 3, 4, 5, 7, 8, 17, 64, 255, kcBlock} {
					a := randSlice(r, lv.mr*aStride)
					b := randSlice(r, kc*lv.nr)
					for mr := 1; mr <= v.rows; mr++ {
						for nc := 1; nc <= lv.nr; nc++ {
							for _, accum := range []bool{false, true} {
								checkKernel(t, r, lv.nr, v.kern, kc, a, b, mr, nc, accum)
							}
						}
						// The variants compute the same sums as the
						// tallest kernel, bit for bit.
						c1 := randSlice(r, mr*lv.nr)
						c2 := append([]float32(nil), c1...)
						v.kern(kc, a, b, c1, lv.nr, mr, lv.nr, true)
						lv.variants[0].kern(kc, a, b, c2, lv.nr, mr, lv.nr, true)
						for i := range c1 {
							if math.Float32bits(c1[i]) != math.Float32bits(c2[i]) {
								t.Fatalf("kc=%d mr=%d: %d-row variant differs from %d-row kernel at %d", kc, mr, v.rows, lv.mr, i)
							}
						}
					}
				}
			})
		}
	}
}

// TestGemmDotKernels drives the skinny path's kernels directly: every row
// count, every column count, K around the vector width, strides wider than
// K, guard bands around C.
func TestGemmDotKernels(t *testing.T) {
	r := gemmRand(t)
	for _, lv := range levels {
		if lv == nil || feature(indexOfLevel(lv)) > detected {
			continue
		}
		for rows, dot := range lv.dot {
			if dot == nil {
				continue
			}
			t.Run(fmt.Sprintf("%s/%dx3", lv.name, rows), func(t *testing.T) {
				for _, k := range []int{1, 2, 15, 16, 17, 31, 33, 100, 256} {
					lda, ldb, ldc := k+r.IntN(5), k+r.IntN(5), 3+r.IntN(3)
					a := randSlice(r, (rows-1)*lda+k)
					b := randSlice(r, 2*ldb+k)
					for nc := 1; nc <= 3; nc++ {
						for _, accum := range []bool{false, true} {
							g := newGuarded(r, rows, nc, ldc)
							c0 := g.clone()
							bj := func(j int) []float32 { return b[min(j, nc-1)*ldb:] }
							dot(k, a, lda, bj(0), bj(1), bj(2), g.c(), ldc, nc, accum)
							what := fmt.Sprintf("k=%d nc=%d accum=%v", k, nc, accum)
							g.checkGuards(t, what)
							for i := range rows {
								for j := range nc {
									var s, abs float64
									for p := range k {
										x := float64(a[i*lda+p]) * float64(bj(j)[p])
										s += x
										abs += math.Abs(x)
									}
									if accum {
										s += float64(c0.at(i, j))
										abs += math.Abs(float64(c0.at(i, j)))
									}
									if d := math.Abs(float64(g.at(i, j)) - s); !(d <= gemmTol*math.Sqrt(float64(k))*abs) {
										t.Fatalf("%s: C[%d][%d] = %v, want %v", what, i, j, g.at(i, j), s)
									}
								}
							}
						}
					}
				}
			})
		}
	}
}

func checkKernel(t *testing.T, r *rand.Rand, nr int, kern gemmKern, kc int, a, b []float32, mr, nc int, accum bool) {
	t.Helper()
	ldc := nr + 3
	g := newGuarded(r, mr, nc, ldc)
	c0 := g.clone()
	kern(kc, a, b, g.c(), ldc, mr, nc, accum)
	what := fmt.Sprintf("kc=%d mr=%d nc=%d accum=%v", kc, mr, nc, accum)
	g.checkGuards(t, what)
	for i := range mr {
		for j := range nc {
			var s, abs float64
			for p := range kc {
				x := float64(a[i*aStride+p]) * float64(b[p*nr+j])
				s += x
				abs += math.Abs(x)
			}
			if accum {
				s += float64(c0.at(i, j))
				abs += math.Abs(float64(c0.at(i, j)))
			}
			if d := math.Abs(float64(g.at(i, j)) - s); !(d <= gemmTol*math.Sqrt(float64(kc))*abs) {
				t.Fatalf("%s: C[%d][%d] = %v, want %v", what, i, j, g.at(i, j), s)
			}
		}
	}
}

func indexOfLevel(lv *gemmLevel) int {
	for i, l := range levels {
		if l == lv {
			return i
		}
	}
	return -1
}

// TestTransposeBlocks checks each level's block transpose against the
// generic one for every block size, with guard bands around dst.
func TestTransposeBlocks(t *testing.T) {
	r := gemmRand(t)
	for _, lv := range levels {
		if lv == nil || feature(indexOfLevel(lv)) > detected {
			continue
		}
		t.Run(lv.name, func(t *testing.T) {
			const lds, ldd = 21, 19
			src := randSlice(r, lds*lv.tb)
			for rows := 1; rows <= lv.tb; rows++ {
				for cols := 1; cols <= lv.tb; cols++ {
					g := newGuarded(r, cols, rows, ldd)
					want := g.clone()
					lv.trBlock(g.c(), ldd, src, lds, rows, cols)
					transposeGeneric(want.c(), ldd, src, lds, rows, cols)
					g.checkGuards(t, fmt.Sprintf("%dx%d", rows, cols))
					for i := range g.buf {
						if math.Float32bits(g.buf[i]) != math.Float32bits(want.buf[i]) {
							t.Fatalf("%dx%d: offset %d = %v, want %v", rows, cols, i, g.buf[i], want.buf[i])
						}
					}
				}
			}
		})
	}
}

func TestAsmConstants(t *testing.T) {
	if got := sgemmAStride(); got != aStride {
		t.Fatalf("assembly A stride %d, Go %d", got, aStride)
	}
	for _, lv := range levels {
		if mcMax%lv.mr != 0 || nAlign%lv.nr != 0 || TileN%lv.nr != 0 || lv.tb > 16 {
			t.Fatalf("%s: mr %d, nr %d do not divide the blocking", lv.name, lv.mr, lv.nr)
		}
	}
}

// TestGemmConcurrent runs products from many goroutines at once, each
// asking for several threads, against the pool's limits.
func TestGemmConcurrent(t *testing.T) {
	r := gemmRand(t)
	const m, n, k = 40, 300, 200
	a := randSlice(r, m*k)
	b := randSlice(r, n*k)
	want := make([]float32, m*n)
	SgemmNT(m, n, k, a, k, b, k, want, n, false, 1)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := make([]float32, m*n)
			for range 5 {
				SgemmNT(m, n, k, a, k, b, k, c, n, false, 1+g%4)
				for i := range c {
					if c[i] != want[i] {
						errs <- fmt.Sprintf("goroutine %d: C[%d] = %v, want %v", g, i, c[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestGemmNoAlloc(t *testing.T) {
	r := gemmRand(t)
	const m, n, k = 64, 256, 300
	a := randSlice(r, m*k)
	b := randSlice(r, n*k)
	c := make([]float32, m*n)
	bm := &F32Matrix{Data: b, N: n, K: k}
	for _, threads := range []int{1, 2} {
		allocs := testing.AllocsPerRun(20, func() {
			SgemmNT(m, n, k, a, k, b, k, c, n, false, threads)
			SgemmNN(m, n, k, a, k, b, n, c, n, true, threads)
			MatMulT(c, n, a, k, m, bm, true, threads)
		})
		if allocs != 0 {
			t.Errorf("threads=%d: %v allocations per run", threads, allocs)
		}
	}
}

// TestGemmPanics checks that programmer errors panic with the package's
// prefix.
func TestGemmPanics(t *testing.T) {
	a, b, c := make([]float32, 12), make([]float32, 12), make([]float32, 12)
	cases := map[string]func(){
		"negative m":   func() { SgemmNT(-1, 3, 4, a, 4, b, 4, c, 3, false, 1) },
		"short A":      func() { SgemmNT(4, 3, 4, a, 4, b, 4, c, 3, false, 1) },
		"short B":      func() { SgemmNN(3, 4, 4, a, 4, b, 4, c, 4, false, 1) },
		"short C":      func() { SgemmTN(4, 4, 3, a, 4, b, 4, c, 4, false, 1) },
		"lda < k":      func() { SgemmNT(2, 2, 4, a, 3, b, 4, c, 2, false, 1) },
		"ldb < n":      func() { SgemmNN(2, 4, 2, a, 2, b, 3, c, 4, false, 1) },
		"ldc < n":      func() { SgemmNT(2, 3, 2, a, 2, b, 2, c, 2, false, 1) },
		"TN lda < m":   func() { SgemmTN(4, 2, 2, a, 3, b, 2, c, 2, false, 1) },
		"B stride":     func() { MatMulT(c, 2, a, 2, 2, F32Matrix{Data: b, N: 2, K: 4, Stride: 3}, false, 1) },
		"short F32":    func() { MatMulT(c, 4, a, 4, 2, &F32Matrix{Data: b, N: 4, K: 4}, false, 1) },
		"unknown feat": func() { SetFeatures("sse9") },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "kernels: ") {
					t.Fatalf("panic %q, want a kernels: message", msg)
				}
			}()
			f()
		})
	}
}

func TestFeatures(t *testing.T) {
	if Features() != Detected() {
		t.Fatalf("Features() = %q before any SetFeatures, Detected() = %q", Features(), Detected())
	}
	restore := SetFeatures("generic")
	if Features() != "generic" {
		t.Fatalf("after SetFeatures(generic): %q", Features())
	}
	inner := SetFeatures("avx512") // clamped to what was detected
	if Features() != Detected() {
		t.Fatalf("after SetFeatures(avx512): %q, detected %q", Features(), Detected())
	}
	inner()
	if Features() != "generic" {
		t.Fatalf("after the inner restore: %q", Features())
	}
	restore()
	if Features() != Detected() {
		t.Fatalf("after restore: %q", Features())
	}
}

// TestMatMulTPaths checks that a BMatrix read through Tile gives C bit for
// bit equal to the same float32 matrix read in place (both packed paths).
func TestMatMulTPaths(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := gemmRand(t)
		const m, n, k = 37, 300, 600
		a := randSlice(r, m*k)
		b := randSlice(r, n*k)
		c1 := make([]float32, m*n)
		c2 := make([]float32, m*n)
		SgemmNT(m, n, k, a, k, b, k, c1, n, false, 2)
		MatMulT(c2, n, a, k, m, &tiledMatrix{f: F32Matrix{Data: b, N: n, K: k}}, false, 2)
		for i := range c1 {
			if math.Float32bits(c1[i]) != math.Float32bits(c2[i]) {
				t.Fatalf("C[%d]: in place %v, through Tile %v", i, c1[i], c2[i])
			}
		}
	})
}
