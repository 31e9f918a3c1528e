package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// kqType describes a K-quant type for the fused tests.
type kqType struct {
	name  string
	bytes int
	dOffs []int // offsets of the block's fp16 scales
	new   func(data []byte, n, k int) (BMatrix, *kquantMatrix, error)
	dot   func(out []float32, w []byte, a []float32, lvl feature)
	ref   func(out []float32, w []byte, a []float32)
}

var kqTypes = []kqType{
	{"q4_k", q4KBytes, []int{0, 2}, func(d []byte, n, k int) (BMatrix, *kquantMatrix, error) {
		m, err := NewQ4_KMatrix(d, n, k)
		if err != nil {
			return nil, nil, err
		}
		return m, &m.kquantMatrix, nil
	}, q4KDotRows, q4KDotRowsGeneric},
	{"q5_k", q5KBytes, []int{0, 2}, func(d []byte, n, k int) (BMatrix, *kquantMatrix, error) {
		m, err := NewQ5_KMatrix(d, n, k)
		if err != nil {
			return nil, nil, err
		}
		return m, &m.kquantMatrix, nil
	}, q5KDotRows, q5KDotRowsGeneric},
	{"q6_k", q6KBytes, []int{208}, func(d []byte, n, k int) (BMatrix, *kquantMatrix, error) {
		m, err := NewQ6_KMatrix(d, n, k)
		if err != nil {
			return nil, nil, err
		}
		return m, &m.kquantMatrix, nil
	}, q6KDotRows, q6KDotRowsGeneric},
}

// kqRand draws n rows of k/256 random blocks of type typ: random codes and
// scale bytes, finite fp16 scales of any magnitude (subnormals included).
// Row 1 (when n > 1) is all zero bytes; row 2 (when n > 2) has the largest
// fp16 scales and all scale bytes 0xff; row 3 (when n > 3) the smallest
// subnormal scales.
func kqRand(r *rand.Rand, typ kqType, n, k int) []byte {
	rb := k / kQK * typ.bytes
	data := make([]byte, n*rb)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for t := range n {
		row := data[t*rb : (t+1)*rb]
		if t == 1 {
			clear(row)
			continue
		}
		for b := 0; b < len(row); b += typ.bytes {
			blk := row[b : b+typ.bytes]
			for _, o := range typ.dOffs {
				h := uint16(r.Uint32())
				if h&0x7c00 == 0x7c00 {
					h &^= 0x4000 // not Inf or NaN
				}
				switch t {
				case 2:
					h = 0x7bff | h&0x8000
				case 3:
					h = 1 | h&0x8000
				}
				blk[o], blk[o+1] = byte(h), byte(h>>8)
			}
			if t == 2 {
				if typ.bytes == q6KBytes {
					for i := 192; i < 208; i++ {
						blk[i] = 0x81 // int8 −127
					}
				} else {
					for i := 4; i < 16; i++ {
						blk[i] = 0xff
					}
				}
			}
		}
	}
	return data
}

// kqExact is row t's dot product with a in float64 from the decoded
// values (decodeRow, pure Go: the values of quantize.DequantizeGGML), and
// the sum of the magnitudes of the products.
func kqExact(m *kquantMatrix, a []float32, t int) (exact, mag float64) {
	row := make([]float32, m.k)
	m.decodeRow(row, t, 0, m.k, featGeneric)
	for j, x := range row {
		p := float64(x) * float64(a[j])
		exact += p
		mag += math.Abs(p)
	}
	return exact, mag
}

// TestKQuantDotRows checks the fused K-quant kernels of every level (and
// the pure-Go reference) against the float64 sum of the decoded values
// times A, for K of one, two and nine blocks and row counts around the
// groups of four, with rows of zeros and of extreme scales: only float32
// rounding may differ, |got − exact| ≤ (K/16 + 64)·2⁻²⁴·Σ|products|.
// out starts nonzero (the kernels add to it), and nothing past it is
// written.
func TestKQuantDotRows(t *testing.T) {
	r := gemmRand(t)
	forLevels(t, func(t *testing.T) {
		for _, typ := range kqTypes {
			for _, k := range []int{256, 512, 2048 + 256} {
				for _, n := range []int{1, 3, 4, 5, 7, 9, 64, 66} {
					data := kqRand(r, typ, n, k)
					_, m, err := typ.new(data, n, k)
					if err != nil {
						t.Fatal(err)
					}
					a := randSlice(r, k)
					for _, impl := range []string{"kernel", "reference"} {
						out := make([]float32, n+2)
						for i := range out {
							out[i] = float32(i + 1)
						}
						if impl == "kernel" {
							typ.dot(out[:n], data, a, level())
						} else {
							typ.ref(out[:n], data, a)
						}
						for i := range n {
							exact, mag := kqExact(m, a, i)
							want := exact + float64(i+1)
							tol := float64(k/16+64)*0x1p-24*(mag+float64(i+1)) + 1e-37
							if err := math.Abs(float64(out[i]) - want); !(err <= tol) {
								t.Fatalf("%s %s k=%d n=%d row %d: got %v, want %v (error %.3g > %.3g)", typ.name, impl, k, n, i, out[i], want, err, tol)
							}
						}
						if out[1] != 2 && n > 1 {
							t.Fatalf("%s %s k=%d n=%d: zero row gave %v, want 2", typ.name, impl, k, n, out[1])
						}
						if out[n] != float32(n+1) || out[n+1] != float32(n+2) {
							t.Fatalf("%s %s k=%d n=%d: wrote past out", typ.name, impl, k, n)
						}
					}
				}
			}
		}
	})
}

// TestKQuantDotValues checks that the kernels multiply with the decoded
// values bit for bit (those of quantize.DequantizeGGML, not a refactored
// d·(Σ a·q) − dmin·Σ a): against each unit vector a = e_j the sum is the
// single product 1·x, so row t's output must equal decodeRow's B[t, j].
func TestKQuantDotValues(t *testing.T) {
	r := gemmRand(t)
	forLevels(t, func(t *testing.T) {
		for _, typ := range kqTypes {
			const n, k = 6, 512
			data := kqRand(r, typ, n, k)
			_, m, err := typ.new(data, n, k)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, n*k)
			for i := range n {
				m.decodeRow(want[i*k:(i+1)*k], i, 0, k, featGeneric)
			}
			a := make([]float32, k)
			out := make([]float32, n)
			for j := range k {
				a[j] = 1
				clear(out)
				typ.dot(out, data, a, level())
				for i, v := range out {
					if w := want[i*k+j]; v != w {
						t.Fatalf("%s B[%d,%d]: kernel's value %v, decoded %v", typ.name, i, j, v, w)
					}
				}
				a[j] = 0
			}
		}
	})
}

// TestKQuantMatVecFused runs MatVecT with one to three rows of A (fused
// where kFusedRows allows, else decoding), in C's place and accumulating,
// and checks both paths against the float64 product within prodTol.
func TestKQuantMatVecFused(t *testing.T) {
	const prodTol = 1e-5
	r := gemmRand(t)
	forLevels(t, func(t *testing.T) {
		for _, typ := range kqTypes {
			const n, k = 75, 3 * 256
			data := kqRand(r, typ, n, k)
			w, m, err := typ.new(data, n, k)
			if err != nil {
				t.Fatal(err)
			}
			for _, rows := range []int{1, 2, 3} {
				a := randSlice(r, rows*k)
				for _, fused := range []bool{true, false} {
					restore := SetFusedDot(fused)
					for _, acc := range []bool{false, true} {
						c := make([]float32, rows*n)
						for i := range c {
							c[i] = float32(i%7) - 3
						}
						init := append([]float32(nil), c...)
						if !MatVecT(c, n, a, k, rows, w, acc, 2) {
							t.Fatalf("%s m=%d: MatVecT reports no path", typ.name, rows)
						}
						for i := range rows {
							for j := range n {
								want, mag := kqExact(m, a[i*k:(i+1)*k], j)
								if acc {
									want += float64(init[i*n+j])
									mag += math.Abs(float64(init[i*n+j]))
								}
								if err := math.Abs(float64(c[i*n+j]) - want); !(err <= prodTol*mag+1e-30) {
									t.Fatalf("%s m=%d fused=%v acc=%v: C[%d,%d] = %v, want %v", typ.name, rows, fused, acc, i, j, c[i*n+j], want)
								}
							}
						}
					}
					restore()
				}
			}
		}
	})
}

// TestKQuantFusedNoAlloc checks that the fused path allocates nothing.
func TestKQuantFusedNoAlloc(t *testing.T) {
	r := gemmRand(t)
	for _, typ := range kqTypes {
		const n, k = 130, 1024
		w, _, err := typ.new(kqRand(r, typ, n, k), n, k)
		if err != nil {
			t.Fatal(err)
		}
		a := randSlice(r, k)
		c := make([]float32, n)
		MatVecT(c, n, a, k, 1, w, false, 1)
		if allocs := testing.AllocsPerRun(20, func() { MatVecT(c, n, a, k, 1, w, false, 1) }); allocs != 0 {
			t.Errorf("%s: %v allocations per MatVecT", typ.name, allocs)
		}
	}
}

// BenchmarkKQuantFused times MatVecT against K-quant weights with m rows
// of A on the fused path (two rows too, which kFusedRows leaves to
// decoding) and the decoding one: a 4096×4096 weight on one
// goroutine (cache-resident on large L3s: the kernels' own speed), and
// "stream", 16384×4096 on all threads (read from memory, as
// BenchmarkGemvStream). GB/s are of stored bytes.
func BenchmarkKQuantFused(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range kqTypes {
		for _, shape := range []struct {
			name          string
			n, k, threads int
		}{{"4096x4096", 4096, 4096, 1}, {"stream", 16384, 4096, 0}} {
			w, _, err := typ.new(kqRand(r, typ, shape.n, shape.k), shape.n, shape.k)
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range []int{1, 2} {
				if shape.threads == 0 && m != 1 {
					continue
				}
				a := randSlice(r, m*shape.k)
				c := make([]float32, m*shape.n)
				for _, path := range []string{"fused", "decode"} {
					b.Run(fmt.Sprintf("%s/%s/m=%d/%s", typ.name, shape.name, m, path), func(b *testing.B) {
						defer SetFusedDot(path == "fused")()
						if path == "fused" {
							// Fused at two rows for every type, to time the choice.
							kFusedAll = true
							defer func() { kFusedAll = false }()
						}
						if path == "fused" && !w.(fusedDotter).fusedRows(m, level()) {
							b.Skip("not fused at this level")
						}
						b.ReportAllocs()
						b.SetBytes(int64(w.(interface{ StoredBytes() int }).StoredBytes()))
						for b.Loop() {
							MatVecT(c, shape.n, a, shape.k, m, w, false, shape.threads)
						}
					})
				}
			}
		}
	}
}
