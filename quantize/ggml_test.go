package quantize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
)

var ggmlSeed = flag.Uint64("ggml.seed", 1, "seed of the ggml quantizer tests' random inputs")

// ggmlRand returns the seeded generator, logging a non-default seed.
func ggmlRand(t testing.TB) *rand.Rand {
	if *ggmlSeed != 1 {
		t.Logf("-ggml.seed=%d", *ggmlSeed)
	}
	return rand.New(rand.NewPCG(*ggmlSeed, 0x9e3779b97f4a7c15))
}

// ggmlTypes is every type QuantizeGGML supports.
var ggmlTypes = []formats.DType{
	formats.Q8_0, formats.Q4_0, formats.Q4_1, formats.Q5_0, formats.Q5_1,
	formats.IQ4_NL, formats.Q4_K, formats.Q5_K, formats.Q6_K,
}

const (
	ggmlStoriesSource = "../fixtures/stories260K/stories260K.gguf"
	ggmlSynthSource   = "testdata/ggml/synth-e256-ff768-f16.gguf"
)

// ggmlGoldens lists the llama-quantize outputs in testdata/ggml with their
// source and how many tensors of each block type they hold.
var ggmlGoldens = []struct {
	file, source string
	want         map[formats.DType]int
}{
	{"stories260K-Q8_0-pure.gguf", ggmlStoriesSource, map[formats.DType]int{formats.Q8_0: 32}},
	{"stories260K-Q4_0-pure.gguf", ggmlStoriesSource, map[formats.DType]int{formats.Q4_0: 32}},
	{"stories260K-Q4_1-pure.gguf", ggmlStoriesSource, map[formats.DType]int{formats.Q4_1: 32}},
	{"stories260K-Q5_0-pure.gguf", ggmlStoriesSource, map[formats.DType]int{formats.Q5_0: 32}},
	{"stories260K-Q5_1-pure.gguf", ggmlStoriesSource, map[formats.DType]int{formats.Q5_1: 32}},
	{"stories260K-IQ4_NL-pure.gguf", ggmlStoriesSource, map[formats.DType]int{formats.IQ4_NL: 32}},
	{"synth-e256-ff768-Q8_0-pure.gguf", ggmlSynthSource, map[formats.DType]int{formats.Q8_0: 16}},
	{"synth-e256-ff768-Q4_0-pure.gguf", ggmlSynthSource, map[formats.DType]int{formats.Q4_0: 16}},
	{"synth-e256-ff768-IQ4_NL-pure.gguf", ggmlSynthSource, map[formats.DType]int{formats.IQ4_NL: 16}},
	{"synth-e256-ff768-Q4_K-pure.gguf", ggmlSynthSource, map[formats.DType]int{formats.Q4_K: 16}},
	{"synth-e256-ff768-Q5_K-pure.gguf", ggmlSynthSource, map[formats.DType]int{formats.Q5_K: 16}},
	{"synth-e256-ff768-Q6_K-pure.gguf", ggmlSynthSource, map[formats.DType]int{formats.Q6_K: 16}},
	{"synth-e256-ff768-Q4_K_M.gguf", ggmlSynthSource, map[formats.DType]int{formats.Q4_K: 13, formats.Q6_K: 3}},
}

// ggmlOpen opens a GGUF file for the test's lifetime.
func ggmlOpen(t *testing.T, path string) *gguf.Reader {
	t.Helper()
	r, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// ggmlSourceF32 reads a source tensor widened exactly to float32.
func ggmlSourceF32(t *testing.T, r *gguf.Reader, name string) []float32 {
	t.Helper()
	info, ok := r.Tensor(name)
	if !ok {
		t.Fatalf("%s: no tensor %q", r.Name(), name)
	}
	raw, err := r.Bytes(name)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := info.NumElements()
	x := make([]float32, n)
	if err := ToFloat32(x, raw, info.DType); err != nil {
		t.Fatal(err)
	}
	return x
}

// TestGGMLGoldens quantizes every source tensor that llama-quantize stored
// in a block type and requires byte-identical output; the dequantizer must
// also agree bit for bit with the independent element-wise reading below.
func TestGGMLGoldens(t *testing.T) {
	matched := map[formats.DType]int{}
	blocks := map[formats.DType]int{}
	for _, g := range ggmlGoldens {
		t.Run(g.file, func(t *testing.T) {
			gold := ggmlOpen(t, filepath.Join("testdata/ggml", g.file))
			src := ggmlOpen(t, g.source)
			got := map[formats.DType]int{}
			for _, info := range gold.Tensors() {
				if !info.DType.Quantized() {
					continue
				}
				if !GGMLQuantizable(info.DType) {
					t.Errorf("%s: unexpected type %v", info.Name, info.DType)
					continue
				}
				want, err := gold.Bytes(info.Name)
				if err != nil {
					t.Fatal(err)
				}
				x := ggmlSourceF32(t, src, info.Name)
				out := make([]byte, len(want))
				if err := QuantizeGGML(info.DType, out, x); err != nil {
					t.Fatalf("%s: %v", info.Name, err)
				}
				bb := int(info.DType.BlockBytes())
				if !bytes.Equal(out, want) {
					bad, first := 0, -1
					for b := 0; b < len(want); b += bb {
						if !bytes.Equal(out[b:b+bb], want[b:b+bb]) {
							if first < 0 {
								first = b / bb
							}
							bad++
						}
					}
					t.Errorf("%s %v: %d of %d blocks differ, first %d:\n got %x\nwant %x", info.Name, info.DType,
						bad, len(want)/bb, first, out[first*bb:first*bb+bb], want[first*bb:first*bb+bb])
					continue
				}
				got[info.DType]++
				matched[info.DType]++
				blocks[info.DType] += len(want) / bb

				deq := make([]float32, len(x))
				if err := DequantizeGGML(info.DType, deq, want); err != nil {
					t.Fatal(err)
				}
				ggmlCheckDequantRef(t, info.Name, info.DType, deq, want)

				// The per-type row decoder the kernels and the llama
				// loader resolve once gives the same bits.
				decode, ok := GGMLBlockDecoder(info.DType)
				if !ok {
					t.Fatalf("%s: GGMLBlockDecoder has no decoder for %v", info.Name, info.DType)
				}
				viaDecoder := make([]float32, len(x))
				decode(viaDecoder, want)
				ggmlCheckDequantRef(t, info.Name+" (GGMLBlockDecoder)", info.DType, viaDecoder, want)
			}
			for d, n := range g.want {
				if got[d] != n {
					t.Errorf("%v: %d tensors matched, want %d", d, got[d], n)
				}
			}
		})
	}
	var types []formats.DType
	for d := range matched {
		types = append(types, d)
	}
	sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
	for _, d := range types {
		t.Logf("%-6v %3d tensors, %6d blocks byte-identical to llama-quantize", d, matched[d], blocks[d])
	}
}

// ggmlCheckDequantRef compares DequantizeGGML's output with ggmlRefDequant element
// by element, bit for bit.
func ggmlCheckDequantRef(t *testing.T, name string, d formats.DType, got []float32, packed []byte) {
	t.Helper()
	bs, bb := int(d.BlockSize()), int(d.BlockBytes())
	for e, v := range got {
		b := e / bs
		want := ggmlRefDequant(d, packed[b*bb:(b+1)*bb], e%bs)
		if math.Float32bits(v) != math.Float32bits(want) {
			t.Fatalf("%s %v: element %d dequantizes to %g, reference %g", name, d, e, v, want)
		}
	}
}

// ggmlRefDequant reads element e of one block straight from the layouts of
// GGUF-LLAMACPP.md §3, with ggml's float32 operation order.
func ggmlRefDequant(d formats.DType, blk []byte, e int) float32 {
	f16 := func(o int) float32 { return F16ToF32(binary.LittleEndian.Uint16(blk[o:])) }
	nib := func(qs []byte, e int) int { // Q4_0-style nibble of element e of 32
		if e < 16 {
			return int(qs[e] & 15)
		}
		return int(qs[e-16] >> 4)
	}
	bit5 := func(o, e int) int { return int(binary.LittleEndian.Uint32(blk[o:])>>e&1) << 4 }
	switch d {
	case formats.Q8_0:
		return float32(int8(blk[2+e])) * f16(0)
	case formats.Q4_0:
		return float32(nib(blk[2:], e)-8) * f16(0)
	case formats.Q4_1:
		return float32(float32(nib(blk[4:], e))*f16(0)) + f16(2)
	case formats.Q5_0:
		return float32(nib(blk[6:], e)|bit5(2, e)-16) * f16(0)
	case formats.Q5_1:
		return float32(float32(nib(blk[8:], e)|bit5(4, e))*f16(0)) + f16(2)
	case formats.IQ4_NL:
		return f16(0) * float32([]int{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}[nib(blk[2:], e)])
	case formats.Q4_K, formats.Q5_K:
		sub, g, r := e/32, e/64, e%32
		s := blk[4:16]
		var sc, m int
		if sub < 4 {
			sc, m = int(s[sub]&63), int(s[sub+4]&63)
		} else {
			sc = int(s[sub+4]&0xF) | int(s[sub-4]>>6)<<4
			m = int(s[sub+4]>>4) | int(s[sub]>>6)<<4
		}
		qsOff := 16
		if d == formats.Q5_K {
			qsOff = 48
		}
		q := int(blk[qsOff+32*g+r])
		if sub%2 == 0 {
			q &= 15
		} else {
			q >>= 4
		}
		if d == formats.Q5_K {
			q |= int(blk[16+r]>>sub&1) << 4
		}
		return float32(f16(0)*float32(sc)*float32(q)) - float32(f16(2)*float32(m))
	case formats.Q6_K:
		h, k, l := e/128, e%128/32, e%32
		lo := blk[64*h+l+32*(k%2)]
		if k >= 2 {
			lo >>= 4
		}
		q := int(lo&15) | int(blk[128+32*h+l]>>(2*k)&3)<<4
		sc := int8(blk[192+8*h+l/16+2*k])
		return f16(208) * float32(sc) * float32(q-32)
	}
	panic("ggmlRefDequant: " + d.String())
}

// TestGGMLQ8_0Requant: dequantizing a golden Q8_0 tensor and quantizing the
// result again gives the same bytes.
func TestGGMLQ8_0Requant(t *testing.T) {
	for _, f := range []string{"stories260K-Q8_0-pure.gguf", "synth-e256-ff768-Q8_0-pure.gguf"} {
		gold := ggmlOpen(t, filepath.Join("testdata/ggml", f))
		for _, info := range gold.Tensors() {
			if info.DType != formats.Q8_0 {
				continue
			}
			want, _ := gold.Bytes(info.Name)
			n, _ := info.NumElements()
			x := make([]float32, n)
			if err := DequantizeGGML(formats.Q8_0, x, want); err != nil {
				t.Fatal(err)
			}
			out := make([]byte, len(want))
			if err := QuantizeGGML(formats.Q8_0, out, x); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("%s %s: requantized Q8_0 differs", f, info.Name)
			}
		}
	}
}

// ggmlRelRMSE bounds the RMSE of quantize→dequantize on N(0,1) data
// relative to σ = 1, with margin over the values ggml reaches.
var ggmlRelRMSE = map[formats.DType]float64{
	formats.Q8_0: 0.006, formats.Q4_0: 0.13, formats.Q4_1: 0.11, formats.Q5_0: 0.065,
	formats.Q5_1: 0.055, formats.IQ4_NL: 0.11, formats.Q4_K: 0.11, formats.Q5_K: 0.055, formats.Q6_K: 0.03,
}

// ggmlRoundTrip quantizes x with t between canaries and dequantizes it.
func ggmlRoundTrip(t *testing.T, d formats.DType, x []float32) []float32 {
	t.Helper()
	n := len(x) / int(d.BlockSize()) * int(d.BlockBytes())
	const guard = 64
	buf := make([]byte, n+2*guard)
	for i := range buf {
		buf[i] = 0xA5
	}
	if err := QuantizeGGML(d, buf[guard:guard+n], x); err != nil {
		t.Fatalf("%v: %v", d, err)
	}
	for i := range guard {
		if buf[i] != 0xA5 || buf[guard+n+i] != 0xA5 {
			t.Fatalf("%v: quantizer wrote outside dst", d)
		}
	}
	fbuf := make([]float32, len(x)+2*guard)
	for i := range fbuf {
		fbuf[i] = -7
	}
	y := fbuf[guard : guard+len(x)]
	if err := DequantizeGGML(d, y, buf[guard:guard+n]); err != nil {
		t.Fatal(err)
	}
	for i := range guard {
		if fbuf[i] != -7 || fbuf[guard+len(x)+i] != -7 {
			t.Fatalf("%v: dequantizer wrote outside dst", d)
		}
	}
	return y
}

func TestGGMLRoundTripError(t *testing.T) {
	rng := ggmlRand(t)
	x := make([]float32, 64*256)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, d := range ggmlTypes {
		y := ggmlRoundTrip(t, d, x)
		var se float64
		for i := range x {
			e := float64(y[i] - x[i])
			se += e * e
		}
		rmse := math.Sqrt(se / float64(len(x)))
		t.Logf("%-6v relative RMSE %.4f", d, rmse)
		if rmse > ggmlRelRMSE[d] {
			t.Errorf("%v: RMSE %.4f > %.4f", d, rmse, ggmlRelRMSE[d])
		}
	}
}

// TestGGMLEdgeBlocks covers all-zero blocks, constant blocks (positive and
// negative) and a block with one huge value among small ones.
func TestGGMLEdgeBlocks(t *testing.T) {
	for _, d := range ggmlTypes {
		n := 2 * int(d.BlockSize())
		zero := ggmlRoundTrip(t, d, make([]float32, n))
		for i, v := range zero {
			if v != 0 {
				t.Fatalf("%v: zero block element %d dequantizes to %g", d, i, v)
			}
		}
		for _, c := range []float32{0.5, -3, 1e-3} {
			x := make([]float32, n)
			for i := range x {
				x[i] = c
			}
			// fp16 scales: 2⁻¹¹ relative, a little more for the 6-bit K
			// scales; Q6_K's d ≈ amax/4096 is an fp16 subnormal below
			// amax ≈ 0.25, off by up to 2⁻²⁵ (×4096 on the value).
			tol := 0.02 * math.Abs(float64(c))
			if d == formats.Q6_K {
				tol += 4096 * 0x1p-25
			}
			for i, v := range ggmlRoundTrip(t, d, x) {
				if math.Abs(float64(v-c)) > tol {
					t.Fatalf("%v: constant %g element %d dequantizes to %g", d, c, i, v)
				}
			}
		}
		rng := ggmlRand(t)
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64()) * 0.01
		}
		const huge float32 = 3000
		x[5] = -huge
		y := ggmlRoundTrip(t, d, x)
		if math.Abs(float64(y[5]+huge)) > 0.01*float64(huge) {
			t.Errorf("%v: huge value %g dequantizes to %g", d, -huge, y[5])
		}
		for i := range x {
			if math.Abs(float64(y[i]-x[i])) > float64(huge)/7 {
				t.Errorf("%v: element %d next to a huge one: %g → %g", d, i, x[i], y[i])
			}
		}
	}
}

// TestGGMLZeroBlockBytes pins the exact encoding of an all-zero block.
func TestGGMLZeroBlockBytes(t *testing.T) {
	pattern := func(d formats.DType) []byte {
		b := make([]byte, d.BlockBytes())
		switch d {
		case formats.Q4_0: // d = 0/−8 = −0 (fp16 0x8000), q = 8
			b[1] = 0x80
			copy(b[2:], bytes.Repeat([]byte{0x88}, 16))
		case formats.IQ4_NL: // d = +0, q = best_index(0) = 8
			copy(b[2:], bytes.Repeat([]byte{0x88}, 16))
		case formats.Q5_0: // d = −0, q = 16: low nibbles 0, every fifth bit set
			b[1] = 0x80
			copy(b[2:6], []byte{0xff, 0xff, 0xff, 0xff})
		}
		return b
	}
	for _, d := range ggmlTypes {
		out := make([]byte, d.BlockBytes())
		for i := range out {
			out[i] = 0x5a
		}
		if err := QuantizeGGML(d, out, make([]float32, d.BlockSize())); err != nil {
			t.Fatal(err)
		}
		if want := pattern(d); !bytes.Equal(out, want) {
			t.Errorf("%v zero block: %x, want %x", d, out, want)
		}
	}
}

func TestGGMLNonFinite(t *testing.T) {
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	for _, d := range ggmlTypes {
		n := 300 * int(d.BlockSize())
		dst := make([]byte, n/int(d.BlockSize())*int(d.BlockBytes()))
		for _, v := range bad {
			for _, at := range []int{0, n / 2, n - 1} {
				x := make([]float32, n)
				x[at] = v
				for w := 1; w <= 3; w++ {
					err := QuantizeGGMLParallel(d, dst, x, w)
					if !errors.Is(err, ErrNonFiniteGGML) || !errors.Is(err, formats.ErrFormat) {
						t.Fatalf("%v: %g at %d, %d workers: err = %v", d, v, at, w, err)
					}
					if want := fmt.Sprintf("element %d ", at); !bytes.Contains([]byte(err.Error()), []byte(want)) {
						t.Errorf("%v: error %q does not name %q", d, err, want)
					}
				}
			}
		}
	}
}

func TestGGMLArgumentErrors(t *testing.T) {
	for _, d := range []formats.DType{formats.F16, formats.Q2_K, formats.Q8_1, formats.IQ4_XS, formats.Invalid} {
		if GGMLQuantizable(d) {
			t.Errorf("%v reported quantizable", d)
		}
		if err := QuantizeGGML(d, make([]byte, 64), make([]float32, 32)); !errors.Is(err, formats.ErrUnsupported) {
			t.Errorf("%v: err = %v", d, err)
		}
	}
	for _, d := range []formats.DType{formats.F32, formats.F16, formats.BF16} {
		if !GGMLDequantizable(d) {
			t.Errorf("%v not dequantizable", d)
		}
	}
	if err := DequantizeGGML(formats.F16, make([]float32, 2), []byte{0, 0x3c, 0, 0xc0}); err != nil {
		t.Error(err)
	}
	for _, d := range ggmlTypes {
		if !GGMLQuantizable(d) || !GGMLDequantizable(d) {
			t.Errorf("%v not supported", d)
		}
		bs, bb := int(d.BlockSize()), int(d.BlockBytes())
		if err := QuantizeGGML(d, make([]byte, bb), make([]float32, bs+1)); err == nil {
			t.Errorf("%v: partial block accepted", d)
		}
		if err := QuantizeGGML(d, make([]byte, bb+1), make([]float32, bs)); err == nil {
			t.Errorf("%v: long dst accepted", d)
		}
		if err := DequantizeGGML(d, make([]float32, bs), make([]byte, bb-1)); err == nil {
			t.Errorf("%v: short src accepted", d)
		}
		if err := QuantizeGGMLParallel(d, nil, nil, 4); err != nil {
			t.Errorf("%v: empty input: %v", d, err)
		}
	}
}

// TestGGMLParallel: 1 and N goroutines give the same bytes.
func TestGGMLParallel(t *testing.T) {
	rng := ggmlRand(t)
	x := make([]float32, 1000*256+0)
	for i := range x {
		x[i] = float32(rng.NormFloat64()) * 0.02
	}
	for _, d := range ggmlTypes {
		n := len(x) / int(d.BlockSize()) * int(d.BlockBytes())
		want := make([]byte, n)
		if err := QuantizeGGML(d, want, x); err != nil {
			t.Fatal(err)
		}
		for _, w := range []int{0, 2, 3, 7} {
			got := make([]byte, n)
			if err := QuantizeGGMLParallel(d, got, x, w); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%v: %d workers differ from serial", d, w)
			}
		}
	}
}

// TestGGMLHelpers checks nearest_int and roundf emulation on ties and the
// x86 conversion of NaN/out-of-range values.
func TestGGMLHelpers(t *testing.T) {
	for _, c := range []struct {
		f    float32
		near int32
		rnd  int32
	}{{0.5, 0, 1}, {1.5, 2, 2}, {2.5, 2, 3}, {-0.5, 0, -1}, {-2.5, -2, -3}, {0.49999997, 0, 0}, {126.7, 127, 127}} {
		if g := ggmlNearestInt(c.f); g != c.near {
			t.Errorf("nearest_int(%g) = %d, want %d", c.f, g, c.near)
		}
		if g := ggmlRoundf(c.f); g != c.rnd {
			t.Errorf("roundf(%g) = %d, want %d", c.f, g, c.rnd)
		}
	}
	for i, want := range []int{0, 0, 0, 7, 8, 8, 9, 15, 15} {
		x := []float32{-200, -127, -115.6, -10, -4.5, 1, 7, 113, 1e9}[i]
		if g := iq4nlBestIndex(x); g != want {
			t.Errorf("best_index(%g) = %d, want %d", x, g, want)
		}
	}
}

// TestGGMLScaleOverflow: blocks whose scale reciprocal is infinite (amax
// below about 127·2⁻¹²⁸) or whose range overflows store all levels 0, as
// ggml's x86-64 float→int conversion of ±Inf/NaN does.
func TestGGMLScaleOverflow(t *testing.T) {
	tiny := make([]float32, 32)
	tiny[3], tiny[7] = 1e-38, -5e-39
	wide := make([]float32, 32)
	wide[0], wide[1] = 3e38, -3e38
	for _, c := range []struct {
		d    formats.DType
		x    []float32
		head []byte // d (and m)
		qOff int
	}{
		{formats.Q8_0, tiny, []byte{0, 0}, 2},
		{formats.Q4_0, tiny, []byte{0, 0x80}, 2},
		{formats.Q5_0, tiny, []byte{0, 0x80}, 2},
		{formats.Q4_1, wide, []byte{0, 0x7c, 0, 0xfc}, 4},
		{formats.Q5_1, wide, []byte{0, 0x7c, 0, 0xfc}, 4},
	} {
		out := bytes.Repeat([]byte{0x5a}, int(c.d.BlockBytes()))
		if err := QuantizeGGML(c.d, out, c.x); err != nil {
			t.Fatal(err)
		}
		want := make([]byte, len(out))
		copy(want, c.head)
		if !bytes.Equal(out, want) {
			t.Errorf("%v: %x, want %x", c.d, out, want)
		}
	}
}

// iq4nlBestIndexRef is best_index_int8's bisection exactly as ggml writes it.
func iq4nlBestIndexRef(x float32) int {
	k := &iq4nlF
	if x <= k[0] {
		return 0
	}
	if x >= k[15] {
		return 15
	}
	lo, hi := 0, 15
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if x < k[mid] {
			hi = mid
		} else {
			lo = mid
		}
	}
	if x-k[hi-1] < k[hi]-x {
		return hi - 1
	}
	return hi
}

// TestIQ4NLBestIndex compares the table lookup with ggml's bisection on
// special values, on the 2¹⁵ float32 values each side of every codebook
// value and of every integer and half-integer in [−130, 130], and on a
// random sample.
func TestIQ4NLBestIndex(t *testing.T) {
	check := func(x float32) {
		if g, w := iq4nlBestIndex(x), iq4nlBestIndexRef(x); g != w {
			t.Fatalf("best_index(%g [%#08x]) = %d, bisection %d", x, math.Float32bits(x), g, w)
		}
	}
	for _, x := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1e30, -1e30} {
		check(x)
	}
	walk := func(c float32, n uint32) {
		up, down := c, c
		for range n {
			check(up)
			check(down)
			up = math.Nextafter32(up, 1000)
			down = math.Nextafter32(down, -1000)
		}
	}
	for _, k := range iq4nlF {
		walk(k, 1<<15)
	}
	for i := -260; i <= 260; i++ {
		walk(float32(i)/2, 64)
	}
	rng := ggmlRand(t)
	for range 1 << 20 {
		check(float32(rng.Float64()*260 - 130))
	}
}
