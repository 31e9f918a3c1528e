package kernels_test

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/quantize"
)

// The weight, skinny-product and conversion tests draw their inputs from a
// PCG seeded by -weights.seed (logged when not the default). The reference
// for every dequantized value is the quantize package's verified
// dequantizer; Tile must reproduce it bit for bit.
var weightsSeed = flag.Uint64("weights.seed", 1, "seed of the weight-type tests' random inputs")

func wRand(t testing.TB) *rand.Rand {
	if *weightsSeed != 1 {
		t.Logf("weights.seed=%d", *weightsSeed)
	}
	return rand.New(rand.NewPCG(*weightsSeed, 0x5eed))
}

// wLevels runs f once per instruction-set level this CPU supports, with
// the kernels forced to it.
func wLevels(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	seen := map[string]bool{}
	for _, name := range []string{"avx512", "avx2", "generic"} {
		restore := kernels.SetFeatures(name)
		got := kernels.Features()
		if !seen[got] {
			seen[got] = true
			t.Run(got, f)
		}
		restore()
	}
}

// canary is a NaN payload no kernel produces; guard bands are filled with it.
const canary = 0x7fa5a5a5

func guarded(n, band int) (buf, dst []float32) {
	buf = make([]float32, band+n+band)
	for i := range buf {
		buf[i] = math.Float32frombits(canary)
	}
	return buf, buf[band : band+n]
}

func checkBand(t *testing.T, what string, buf []float32, lo, hi int) {
	t.Helper()
	for i := lo; i < hi; i++ {
		if math.Float32bits(buf[i]) != canary {
			t.Fatalf("%s: guard value %d overwritten with %v", what, i, buf[i])
		}
	}
}

// wCase is one weight matrix with its reference dequantization.
type wCase struct {
	kind string
	n, k int
	w    kernels.Weights
	ref  []float32 // n×k, from the quantize package
}

func (c wCase) String() string { return fmt.Sprintf("%s/%dx%d", c.kind, c.n, c.k) }

// wKinds are the weight types; ggml types need k % 32 == 0, K-quants
// k % 256 == 0.
var wKinds = []string{"f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k", "nf4", "fp4", "nf4-dq", "fp4-dq", "int8"}

func ggmlKind(kind string) bool { return kind == "q8_0" || kind == "q4_0" || kquantKind(kind) }

func kquantKind(kind string) bool { return kind == "q4_k" || kind == "q5_k" || kind == "q6_k" }

// ggmlTypes maps the ggml kinds to their types and constructors.
var ggmlTypes = map[string]struct {
	dt  formats.DType
	new func(data []byte, n, k int) (kernels.Weights, error)
}{
	"q8_0": {formats.Q8_0, func(d []byte, n, k int) (kernels.Weights, error) { return kernels.NewQ8_0Matrix(d, n, k) }},
	"q4_0": {formats.Q4_0, func(d []byte, n, k int) (kernels.Weights, error) { return kernels.NewQ4_0Matrix(d, n, k) }},
	"q4_k": {formats.Q4_K, func(d []byte, n, k int) (kernels.Weights, error) { return kernels.NewQ4_KMatrix(d, n, k) }},
	"q5_k": {formats.Q5_K, func(d []byte, n, k int) (kernels.Weights, error) { return kernels.NewQ5_KMatrix(d, n, k) }},
	"q6_k": {formats.Q6_K, func(d []byte, n, k int) (kernels.Weights, error) { return kernels.NewQ6_KMatrix(d, n, k) }},
}

// wValues draws n·k weights: normal values with a few all-zero and
// constant 32-runs and a wide spread of magnitudes, all finite.
func wValues(r *rand.Rand, nk int) []float32 {
	x := make([]float32, nk)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for b := 0; b+32 <= nk; b += 32 {
		switch r.IntN(12) {
		case 0:
			clear(x[b : b+32])
		case 1:
			v := float32(r.NormFloat64())
			for i := b; i < b+32; i++ {
				x[i] = v
			}
		case 2:
			s := float32(math.Ldexp(1, r.IntN(30)-20))
			for i := b; i < b+32; i++ {
				x[i] *= s
			}
		}
	}
	return x
}

// wHalfBits draws 16-bit patterns; with special, NaN, ±Inf, ±0 and
// subnormals are mixed in.
func wHalfBits(r *rand.Rand, nk int, bf bool, special bool) []uint16 {
	h := make([]uint16, nk)
	for i := range h {
		v := float32(r.NormFloat64())
		if bf {
			h[i] = quantize.F32ToBF16(v)
		} else {
			h[i] = quantize.F32ToF16(v)
		}
		if special && r.IntN(8) == 0 {
			h[i] = uint16(r.Uint32())
		}
	}
	return h
}

func u16Bytes(h []uint16) []byte {
	b := make([]byte, 2*len(h))
	for i, v := range h {
		b[2*i], b[2*i+1] = byte(v), byte(v>>8)
	}
	return b
}

// newWCase builds an n×k matrix of the given kind; special adds
// non-finite values to f16/bf16 data (for Tile tests only).
func newWCase(t testing.TB, r *rand.Rand, kind string, n, k int, special bool) wCase {
	t.Helper()
	c := wCase{kind: kind, n: n, k: k, ref: make([]float32, n*k)}
	var err error
	switch kind {
	case "f16", "bf16":
		h := wHalfBits(r, n*k, kind == "bf16", special)
		for i, v := range h {
			if kind == "bf16" {
				c.ref[i] = quantize.BF16ToF32(v)
			} else {
				c.ref[i] = quantize.F16ToF32(v)
			}
		}
		if kind == "bf16" {
			c.w, err = kernels.NewBF16Matrix(u16Bytes(h), n, k)
		} else {
			c.w, err = kernels.NewF16Matrix(u16Bytes(h), n, k)
		}
	case "q8_0", "q4_0", "q4_k", "q5_k", "q6_k":
		gt := ggmlTypes[kind]
		data := make([]byte, n*k/int(gt.dt.BlockSize())*int(gt.dt.BlockBytes()))
		if err := quantize.QuantizeGGML(gt.dt, data, wValues(r, n*k)); err != nil {
			t.Fatal(err)
		}
		if err := quantize.DequantizeGGML(gt.dt, c.ref, data); err != nil {
			t.Fatal(err)
		}
		c.w, err = gt.new(data, n, k)
	case "nf4", "fp4", "nf4-dq", "fp4-dq":
		qk, kk := quantize.NF4, kernels.NF4
		if kind[:3] == "fp4" {
			qk, kk = quantize.FP4, kernels.FP4
		}
		packed, absmax, err := quantize.Quantize4Bit(qk, wValues(r, n*k), 64)
		if err != nil {
			t.Fatal(err)
		}
		if len(kind) > 3 { // double quant: the reconstructed absmax is what both sides use
			dq := quantize.DoubleQuantize(absmax)
			dq.Absmax(absmax)
		}
		if err := quantize.Dequantize4Bit(qk, c.ref, packed, absmax, 64); err != nil {
			t.Fatal(err)
		}
		c.w, err = kernels.NewFourBitMatrix(kk, packed, absmax, n, k, 64)
		if err != nil {
			t.Fatal(err)
		}
	case "int8":
		cb, scb, err := quantize.QuantizeInt8Rows(wValues(r, n*k), n, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := quantize.DequantizeInt8Rows(c.ref, cb, scb, n, k); err != nil {
			t.Fatal(err)
		}
		cbb := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(cb))), len(cb))
		c.w, err = kernels.NewInt8RowMatrix(cbb, scb, n, k)
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.w.Rows() != n || c.w.Cols() != k {
		t.Fatalf("%v: shape %d×%d", c, c.w.Rows(), c.w.Cols())
	}
	return c
}

// wShapes are (n, k) pairs per kind: k not a multiple of 64 (4-bit blocks
// straddle rows, odd k starts rows in a low nibble), n not a multiple of
// the tiles.
func wShapes(kind string) [][2]int {
	if kquantKind(kind) {
		return [][2]int{{1, 256}, {3, 512}, {37, 768}, {70, 1280}}
	}
	if ggmlKind(kind) {
		return [][2]int{{1, 32}, {3, 64}, {37, 96}, {70, 320}, {131, 544}}
	}
	return [][2]int{{1, 1}, {1, 33}, {3, 63}, {5, 100}, {37, 130}, {70, 257}, {131, 544}}
}

// checkTile compares Tile(n0:n1, k0:k1) with the reference bit for bit and
// checks the guard bands.
func (c wCase) checkTile(t *testing.T, n0, n1, k0, k1 int) {
	t.Helper()
	const band = 19
	w := k1 - k0
	buf, dst := guarded((n1-n0)*w, band)
	c.w.Tile(dst, n0, n1, k0, k1)
	checkBand(t, c.String(), buf, 0, band)
	checkBand(t, c.String(), buf, band+len(dst), len(buf))
	for r := n0; r < n1; r++ {
		for j := k0; j < k1; j++ {
			got, want := dst[(r-n0)*w+j-k0], c.ref[r*c.k+j]
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("%v: Tile[%d:%d, %d:%d] element (%d, %d) = %v (%#08x), want %v (%#08x)",
					c, n0, n1, k0, k1, r, j, got, math.Float32bits(got), want, math.Float32bits(want))
			}
		}
	}
}

func TestWeightsTile(t *testing.T) {
	r := wRand(t)
	var cases []wCase
	for _, kind := range wKinds {
		for _, s := range wShapes(kind) {
			cases = append(cases, newWCase(t, r, kind, s[0], s[1], true))
		}
	}
	wLevels(t, func(t *testing.T) {
		for _, c := range cases {
			c.checkTile(t, 0, c.n, 0, c.k)
			// The tiles MatMulT asks for.
			for n0 := 0; n0 < c.n; n0 += kernels.TileN {
				for k0 := 0; k0 < c.k; k0 += kernels.TileK {
					c.checkTile(t, n0, min(c.n, n0+kernels.TileN), k0, min(c.k, k0+kernels.TileK))
				}
			}
			// Arbitrary rectangles, empty ones included.
			for range 24 {
				n0, n1 := r.IntN(c.n+1), r.IntN(c.n+1)
				k0, k1 := r.IntN(c.k+1), r.IntN(c.k+1)
				c.checkTile(t, min(n0, n1), max(n0, n1), min(k0, k1), max(k0, k1))
			}
		}
	})
}

// TestWeightsTileSpecial covers blocks whose codes or scales are extreme:
// Q8_0/Q4_0/K-quant blocks with ±Inf, NaN and subnormal fp16 scales and
// all code values, 4-bit blocks with every code and absmax 0, huge and subnormal,
// and int8 rows with every code and zero, huge or subnormal scales.
func TestWeightsTileSpecial(t *testing.T) {
	r := wRand(t)
	scales := []uint16{0x0000, 0x8000, 0x0001, 0x03ff, 0x3c00, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7c01}
	const n, k = 11, 256
	var cases []wCase
	for _, kind := range []string{"q8_0", "q4_0"} {
		dt, bb := formats.Q8_0, 34
		if kind == "q4_0" {
			dt, bb = formats.Q4_0, 18
		}
		data := make([]byte, n*k/32*bb)
		for b := 0; b < n*k/32; b++ {
			blk := data[b*bb : (b+1)*bb]
			s := scales[b%len(scales)]
			blk[0], blk[1] = byte(s), byte(s>>8)
			for j := 2; j < bb; j++ {
				blk[j] = byte(b*7 + j*31 + r.IntN(3))
			}
		}
		c := wCase{kind: kind, n: n, k: k, ref: make([]float32, n*k)}
		if err := quantize.DequantizeGGML(dt, c.ref, data); err != nil {
			t.Fatal(err)
		}
		var err error
		if kind == "q8_0" {
			c.w, err = kernels.NewQ8_0Matrix(data, n, k)
		} else {
			c.w, err = kernels.NewQ4_0Matrix(data, n, k)
		}
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	// K-quants: random codes and sub-block scales, special fp16 d (and
	// dmin) at their offsets in the block.
	for _, kq := range []struct {
		kind   string
		dOffs  []int
		blocks int
	}{{"q4_k", []int{0, 2}, 144}, {"q5_k", []int{0, 2}, 176}, {"q6_k", []int{208}, 210}} {
		const k6 = 512
		gt := ggmlTypes[kq.kind]
		data := make([]byte, n*k6/256*kq.blocks)
		for i := range data {
			data[i] = byte(i*29 + r.IntN(5))
		}
		for b := 0; b < n*k6/256; b++ {
			for i, off := range kq.dOffs {
				s := scales[(b+3*i)%len(scales)]
				data[b*kq.blocks+off], data[b*kq.blocks+off+1] = byte(s), byte(s>>8)
			}
		}
		c := wCase{kind: kq.kind, n: n, k: k6, ref: make([]float32, n*k6)}
		if err := quantize.DequantizeGGML(gt.dt, c.ref, data); err != nil {
			t.Fatal(err)
		}
		var err error
		if c.w, err = gt.new(data, n, k6); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	absmaxes := []float32{0, 1, 3e38, 1e-40, 1e-45, 0.0123}
	for _, kk := range []kernels.FourBitKind{kernels.NF4, kernels.FP4} {
		const k4 = 250 // blocks straddle rows
		packed := make([]byte, (n*k4+1)/2)
		for i := range packed {
			packed[i] = byte(i*37 + r.IntN(2))
		}
		absmax := make([]float32, (n*k4+63)/64)
		for i := range absmax {
			absmax[i] = absmaxes[i%len(absmaxes)]
		}
		c := wCase{kind: kk.String(), n: n, k: k4, ref: make([]float32, n*k4)}
		qk := quantize.NF4
		if kk == kernels.FP4 {
			qk = quantize.FP4
		}
		if err := quantize.Dequantize4Bit(qk, c.ref, packed, absmax, 64); err != nil {
			t.Fatal(err)
		}
		var err error
		c.w, err = kernels.NewFourBitMatrix(kk, packed, absmax, n, k4, 64)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	{
		cb := make([]int8, n*k)
		for i := range cb {
			cb[i] = int8(i*13 + r.IntN(2))
		}
		scb := []float32{0, 127, 1, 3e38, 1e-40, 65504, 0.5, 1e-3, 7, 100, 2}
		c := wCase{kind: "int8", n: n, k: k, ref: make([]float32, n*k)}
		if err := quantize.DequantizeInt8Rows(c.ref, cb, scb, n, k); err != nil {
			t.Fatal(err)
		}
		var err error
		c.w, err = kernels.NewInt8RowMatrix(unsafe.Slice((*byte)(unsafe.Pointer(&cb[0])), len(cb)), scb, n, k)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	wLevels(t, func(t *testing.T) {
		for _, c := range cases {
			c.checkTile(t, 0, c.n, 0, c.k)
			c.checkTile(t, 1, c.n-1, 3, c.k-5)
		}
	})
}

// TestWeightsStraddle pins the bnb layout: with k = 100 the second row
// starts 36 values into block 1, whose absmax it shares with row 0.
func TestWeightsStraddle(t *testing.T) {
	const n, k = 2, 100
	packed := make([]byte, n*k/2)
	for i := range packed {
		packed[i] = 0xf0 // even element code 15 (1.0), odd element code 0 (-1.0)
	}
	absmax := []float32{2, 3, 5, 7}[:(n*k+63)/64]
	m, err := kernels.NewFourBitMatrix(kernels.NF4, packed, absmax, n, k, 64)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, k)
	m.Tile(got, 1, 2, 0, k)
	for j, v := range got {
		e := k + j
		want := absmax[e/64]
		if e%2 == 1 {
			want = -want
		}
		if v != want {
			t.Fatalf("row 1 col %d = %v, want %v", j, v, want)
		}
	}
}

func TestWeightsConstructors(t *testing.T) {
	bad := []struct {
		name string
		err  func() error
	}{
		{"f16 short", func() error { _, err := kernels.NewF16Matrix(make([]byte, 7), 2, 2); return err }},
		{"bf16 long", func() error { _, err := kernels.NewBF16Matrix(make([]byte, 10), 2, 2); return err }},
		{"f16 negative", func() error { _, err := kernels.NewF16Matrix(nil, -1, 2); return err }},
		{"q8_0 k%32", func() error { _, err := kernels.NewQ8_0Matrix(make([]byte, 34), 1, 16); return err }},
		{"q8_0 size", func() error { _, err := kernels.NewQ8_0Matrix(make([]byte, 35), 1, 32); return err }},
		{"q4_0 size", func() error { _, err := kernels.NewQ4_0Matrix(make([]byte, 34), 1, 32); return err }},
		{"q6_k k%256", func() error { _, err := kernels.NewQ6_KMatrix(make([]byte, 210), 1, 128); return err }},
		{"q6_k size", func() error { _, err := kernels.NewQ6_KMatrix(make([]byte, 209), 1, 256); return err }},
		{"4bit packed", func() error {
			_, err := kernels.NewFourBitMatrix(kernels.NF4, make([]byte, 2), make([]float32, 1), 1, 5, 64)
			return err
		}},
		{"4bit absmax", func() error {
			_, err := kernels.NewFourBitMatrix(kernels.NF4, make([]byte, 33), make([]float32, 1), 1, 65, 64)
			return err
		}},
		{"4bit blocksize", func() error {
			_, err := kernels.NewFourBitMatrix(kernels.FP4, make([]byte, 32), make([]float32, 1), 1, 64, 48)
			return err
		}},
		{"4bit kind", func() error {
			_, err := kernels.NewFourBitMatrix(7, make([]byte, 32), make([]float32, 1), 1, 64, 64)
			return err
		}},
		{"int8 scb", func() error {
			_, err := kernels.NewInt8RowMatrix(make([]byte, 4), make([]float32, 1), 2, 2)
			return err
		}},
	}
	for _, b := range bad {
		if err := b.err(); err == nil {
			t.Errorf("%s: no error", b.name)
		} else if !errors.Is(err, kernels.ErrWeightShape) {
			t.Errorf("%s: %v does not wrap ErrWeightShape", b.name, err)
		}
	}
	// Empty matrices are valid.
	if _, err := kernels.NewFourBitMatrix(kernels.NF4, nil, nil, 0, 64, 0); err != nil {
		t.Error(err)
	}
	if _, err := kernels.NewQ8_0Matrix(nil, 0, 64); err != nil {
		t.Error(err)
	}
}

func TestWeightsTilePanics(t *testing.T) {
	c := newWCase(t, wRand(t), "q8_0", 4, 64, false)
	for _, f := range []func(){
		func() { c.w.Tile(make([]float32, 64), 0, 1, 0, 65) },
		func() { c.w.Tile(make([]float32, 64), 3, 5, 0, 32) },
		func() { c.w.Tile(make([]float32, 63), 0, 1, 0, 64) },
		func() { c.w.Tile(make([]float32, 64), 2, 1, 0, 32) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

func TestF32MatrixFromBytes(t *testing.T) {
	r := wRand(t)
	const n, k = 3, 5
	vals := make([]float32, n*k)
	raw := make([]byte, 4*n*k+1)
	for i := range vals {
		vals[i] = float32(r.NormFloat64())
		b := math.Float32bits(vals[i])
		for j := range 4 {
			raw[1+4*i+j] = byte(b >> (8 * j))
		}
	}
	aligned := make([]byte, 4*n*k)
	copy(aligned, raw[1:])
	for off, data := range [][]byte{aligned, raw[1:]} { // the second is misaligned: copied
		m, err := kernels.F32MatrixFromBytes(data, n, k)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if m.Data[i] != v {
				t.Fatalf("offset %d: [%d] = %v, want %v", off, i, m.Data[i], v)
			}
		}
	}
	if _, err := kernels.F32MatrixFromBytes(raw[:7], 1, 2); !errors.Is(err, kernels.ErrWeightShape) {
		t.Errorf("short data: %v", err)
	}
}
