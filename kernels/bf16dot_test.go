package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// bf16Val decodes a bfloat16 as VDPBF16PS reads it: subnormals are zero.
func bf16Val(h uint16) float32 {
	if h&0x7f80 == 0 {
		return 0
	}
	return math.Float32frombits(uint32(h) << 16)
}

// bf16Flush is float32 with VDPBF16PS's flush of subnormal results.
func bf16Flush(x float32) float32 {
	if math.Float32bits(x)&0x7f800000 == 0 {
		return 0
	}
	return x
}

// bf16DotEmul is one lane of VDPBF16PS as Intel's pseudo-code states it:
// the odd (high) product is added to acc first, then the even one, each
// product exact and each sum rounded to float32.
func bf16DotEmul(acc float32, a, b uint32) float32 {
	hi := bf16Val(uint16(a>>16)) * bf16Val(uint16(b>>16))
	acc = bf16Flush(acc + hi)
	lo := bf16Val(uint16(a)) * bf16Val(uint16(b))
	return bf16Flush(acc + lo)
}

func bf16Pair(r *rand.Rand) uint32 {
	lo := bf16Round(math.Float32bits(2*r.Float32() - 1))
	hi := bf16Round(math.Float32bits(2*r.Float32() - 1))
	return uint32(lo) | uint32(hi)<<16
}

func bf16PathAvailable() bool {
	return haveBF16Asm && hasAVX512BF16 && detected == featAVX512
}

func TestBF16Constants(t *testing.T) {
	if got := bf16AStrideBytes(); got != 4*bf16AStride {
		t.Fatalf("assembly bf16 A stride %d bytes, Go %d", got, 4*bf16AStride)
	}
	if bf16MC%bf16MR != 0 || TileN%bf16NR != 0 || kcBlock%2 != 0 {
		t.Fatal("bf16 blocking does not divide")
	}
}

// TestBF16Kernels runs every micro-kernel variant on packed panels against
// the emulation, checking the guard bands around the C tile.
func TestBF16Kernels(t *testing.T) {
	if !bf16PathAvailable() {
		t.Skip("no AVX512-BF16 kernels on this CPU or build")
	}
	r := gemmRand(t)
	exact, total := 0, 0
	for _, rows := range []int{1, 2, 4, 8, 14} {
		kern := bf16Kerns[rows]
		for _, kp := range []int{1, 2, 7, bf16KP} {
			a := make([]uint32, rows*bf16AStride)
			for i := range a {
				a[i] = bf16Pair(r)
			}
			b := make([]uint32, kp*bf16NR)
			for i := range b {
				b[i] = bf16Pair(r)
			}
			for mr := 1; mr <= rows; mr++ {
				for _, nc := range []int{1, 15, 16, 17, 31, 32} {
					for _, accum := range []bool{false, true} {
						const ldc = 40
						g := newGuarded(r, mr, nc, ldc)
						before := g.clone()
						kern(kp, a, b, g.c(), ldc, mr, nc, accum)
						g.checkGuards(t, fmt.Sprintf("rows=%d kp=%d mr=%d nc=%d", rows, kp, mr, nc))
						for i := range mr {
							for j := range nc {
								var s, mag float32
								for p := range kp {
									s = bf16DotEmul(s, a[i*bf16AStride+p], b[p*bf16NR+j])
									mag += float32(math.Abs(float64(bf16Val(uint16(a[i*bf16AStride+p]))*bf16Val(uint16(b[p*bf16NR+j])))) +
										math.Abs(float64(bf16Val(uint16(a[i*bf16AStride+p]>>16))*bf16Val(uint16(b[p*bf16NR+j]>>16)))))
								}
								if accum {
									s += before.at(i, j)
									mag += float32(math.Abs(float64(before.at(i, j))))
								}
								got := g.at(i, j)
								total++
								if math.Float32bits(got) == math.Float32bits(s) {
									exact++
									continue
								}
								// Hardware may order the two products of a
								// pair differently: allow float32 rounding.
								if d := math.Abs(float64(got - s)); d > float64(2*kp+2)*0x1p-24*float64(mag) {
									t.Fatalf("rows=%d kp=%d mr=%d nc=%d accum=%v: C[%d][%d] = %v, emulation %v", rows, kp, mr, nc, accum, i, j, got, s)
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d of %d elements match the emulation bit for bit", exact, total)
}

// bf16TestMatrix returns an n×k BF16Matrix of random values (its bytes
// starting at offset off of their slice) and B decoded to float32.
func bf16TestMatrix(t testing.TB, r *rand.Rand, n, k, off int) (*BF16Matrix, []float32) {
	buf := make([]byte, off+2*n*k)
	data := buf[off:]
	dec := make([]float32, n*k)
	for i := range dec {
		h := bf16Round(math.Float32bits(2*r.Float32() - 1))
		data[2*i], data[2*i+1] = byte(h), byte(h>>8)
		dec[i] = math.Float32frombits(uint32(h) << 16)
	}
	w, err := NewBF16Matrix(data, n, k)
	if err != nil {
		t.Fatal(err)
	}
	return w, dec
}

// TestBF16MatMulT checks the path against a float64 reference with the
// bound of the doc comment, with guard bands, odd shapes, strides and
// accumulation, and 1 against N threads bit for bit.
func TestBF16MatMulT(t *testing.T) {
	if !bf16PathAvailable() {
		t.Skip("no AVX512-BF16 kernels on this CPU or build")
	}
	defer SetFeatures("avx512")()
	defer SetBF16Dot(true)()
	if !BF16Dot() {
		t.Fatal("BF16Dot() false with the path available")
	}
	r := gemmRand(t)
	shapes := [][3]int{
		{17, 1, 1}, {17, 33, 3}, {18, 32, 2}, {20, 31, 255}, {22, 64, 256}, {29, 130, 257},
		{30, 300, 511}, {42, 129, 512}, {45, 97, 1001}, {100, 256, 600}, {700, 40, 300},
		{33, 17, 0},
	}
	for s := 0; s < 12; s++ {
		shapes = append(shapes, [3]int{17 + r.IntN(120), 1 + r.IntN(300), 1 + r.IntN(700)})
	}
	for _, sh := range shapes {
		m, n, k := sh[0], sh[1], sh[2]
		for _, off := range []int{0, 1} {
			for _, accum := range []bool{false, true} {
				name := fmt.Sprintf("%dx%dx%d/off=%d/accum=%v", m, n, k, off, accum)
				w, dec := bf16TestMatrix(t, r, n, k, off)
				lda, ldc := max(1, k+r.IntN(3)), n+r.IntN(3)
				a := randSlice(r, max(0, (m-1)*lda+k))
				g := newGuarded(r, m, n, ldc)
				orig := g.clone()
				MatMulT(g.c(), ldc, a, lda, m, w, accum, 1)
				g.checkGuards(t, name)
				g3 := orig.clone()
				MatMulT(g3.c(), ldc, a, lda, m, w, accum, 3)
				g3.checkGuards(t, name+"/3 threads")
				for i := range g.buf {
					if math.Float32bits(g.buf[i]) != math.Float32bits(g3.buf[i]) {
						t.Fatalf("%s: 1 and 3 threads differ at %d: %v, %v", name, i, g.buf[i], g3.buf[i])
					}
				}
				for i := range m {
					for j := range n {
						var ref, mag float64
						for p := range k {
							x := float64(a[i*lda+p]) * float64(dec[j*k+p])
							ref += x
							mag += math.Abs(x)
						}
						tol := 0x1p-8*mag + float64(k+2)*0x1p-24*mag
						if accum {
							ref += float64(orig.at(i, j))
							tol += 0x1p-23 * (math.Abs(ref) + mag)
						}
						if d := math.Abs(float64(g.at(i, j)) - ref); d > tol || math.IsNaN(d) {
							t.Fatalf("%s: C[%d][%d] = %v, reference %v (tolerance %g)", name, i, j, g.at(i, j), ref, tol)
						}
					}
				}
			}
		}
	}
}

// TestBF16PackB checks that the two ways of packing B (transposing 32-bit
// pairs in place, and the byte loop for odd K or unaligned data) agree, by
// running the same product both ways.
func TestBF16PackB(t *testing.T) {
	if !bf16PathAvailable() {
		t.Skip("no AVX512-BF16 kernels on this CPU or build")
	}
	defer SetFeatures("avx512")()
	r := gemmRand(t)
	const m, n, k = 40, 200, 600
	w0, dec := bf16TestMatrix(t, r, n, k, 0)
	w1, _ := bf16TestMatrix(t, r, n, k, 1)
	copy(w1.data, w0.data)
	_ = dec
	a := randSlice(r, m*k)
	c0 := make([]float32, m*n)
	c1 := make([]float32, m*n)
	bf16MatMulT(c0, n, a, k, m, w0, false, 2)
	bf16MatMulT(c1, n, a, k, m, w1, false, 2)
	for i := range c0 {
		if math.Float32bits(c0[i]) != math.Float32bits(c1[i]) {
			t.Fatalf("C[%d]: aligned %v, unaligned %v", i, c0[i], c1[i])
		}
	}
}

// TestBF16Small runs the path directly for m ≤ 16 (MatMulT sends these to
// the row-decoding path) against the float32 path with A rounded.
func TestBF16Small(t *testing.T) {
	if !bf16PathAvailable() {
		t.Skip("no AVX512-BF16 kernels on this CPU or build")
	}
	defer SetFeatures("avx512")()
	r := gemmRand(t)
	for _, m := range []int{1, 2, 3, 5, 9, 14, 15, 16} {
		const n, k = 70, 301
		w, dec := bf16TestMatrix(t, r, n, k, 0)
		a := randSlice(r, m*k)
		c := make([]float32, m*n)
		bf16MatMulT(c, n, a, k, m, w, false, 2)
		for i := range m {
			for j := range n {
				var ref, mag float64
				for p := range k {
					ar := math.Float32frombits(uint32(bf16Round(math.Float32bits(a[i*k+p]))) << 16)
					x := float64(ar) * float64(dec[j*k+p])
					ref += x
					mag += math.Abs(x)
				}
				if d := math.Abs(float64(c[i*n+j]) - ref); d > float64(k+2)*0x1p-24*mag {
					t.Fatalf("m=%d: C[%d][%d] = %v, reference with A rounded %v", m, i, j, c[i*n+j], ref)
				}
			}
		}
	}
}

// TestBF16Switch checks that SetBF16Dot(false) gives the float32 path
// (bit for bit the product against B decoded through Tile) and that
// restore brings the path back.
func TestBF16Switch(t *testing.T) {
	r := gemmRand(t)
	const m, n, k = 37, 150, 300
	w, dec := bf16TestMatrix(t, r, n, k, 0)
	a := randSlice(r, m*k)
	c1 := make([]float32, m*n)
	c2 := make([]float32, m*n)
	before := BF16Dot()
	restore := SetBF16Dot(false)
	if BF16Dot() {
		t.Fatal("BF16Dot() true after SetBF16Dot(false)")
	}
	MatMulT(c1, n, a, k, m, w, false, 2)
	MatMulT(c2, n, a, k, m, &tiledMatrix{f: F32Matrix{Data: dec, N: n, K: k}}, false, 2)
	restore()
	for i := range c1 {
		if math.Float32bits(c1[i]) != math.Float32bits(c2[i]) {
			t.Fatalf("C[%d]: bf16 weights %v, decoded weights %v", i, c1[i], c2[i])
		}
	}
	if BF16Dot() != before {
		t.Fatalf("after restore BF16Dot() = %v, before %v", BF16Dot(), before)
	}
	if bf16PathAvailable() {
		defer SetBF16Dot(true)()
		defer SetFeatures("avx512")()
		if !BF16Dot() {
			t.Fatal("BF16Dot() false when enabled at the avx512 level")
		}
		defer SetFeatures("avx2")()
		if BF16Dot() {
			t.Fatal("BF16Dot() true at the avx2 level")
		}
	}
}

func TestBF16NoAlloc(t *testing.T) {
	if !bf16PathAvailable() {
		t.Skip("no AVX512-BF16 kernels on this CPU or build")
	}
	defer SetFeatures("avx512")()
	defer SetBF16Dot(true)()
	r := gemmRand(t)
	const m, n, k = 64, 256, 300
	w, _ := bf16TestMatrix(t, r, n, k, 0)
	a := randSlice(r, m*k)
	c := make([]float32, m*n)
	for _, threads := range []int{1, 2} {
		MatMulT(c, n, a, k, m, w, false, threads)
		allocs := testing.AllocsPerRun(20, func() {
			MatMulT(c, n, a, k, m, w, true, threads)
		})
		if allocs != 0 {
			t.Errorf("threads=%d: %v allocations per run", threads, allocs)
		}
	}
}

// BenchmarkBF16Kernel times the 14×32 kernel on packed panels that stay in
// cache (compare BenchmarkGemmKernel/avx512).
func BenchmarkBF16Kernel(b *testing.B) {
	if !bf16PathAvailable() {
		b.Skip("no AVX512-BF16 kernels on this CPU or build")
	}
	r := rand.New(rand.NewPCG(1, 2))
	const nA = 8
	a := make([]uint32, nA*bf16MR*bf16AStride)
	for i := range a {
		a[i] = bf16Pair(r)
	}
	bp := make([]uint32, bf16KP*bf16NR)
	for i := range bp {
		bp[i] = bf16Pair(r)
	}
	c := make([]float32, nA*bf16MR*bf16NR)
	for b.Loop() {
		for i := range nA {
			bf16Kerns[bf16MR](bf16KP, a[i*bf16MR*bf16AStride:], bp, c[i*bf16MR*bf16NR:], bf16NR, bf16MR, bf16NR, true)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(2*float64(nA*bf16MR*bf16NR*kcBlock)/sec/1e9, "GFLOP/s")
}
