package kernels_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/quantize"
)

// The bulk conversions must equal the quantize package's scalar ones bit
// for bit, at every level, for every length (vector bodies and tails) and
// without writing past the destination.

// allHalves is every 16-bit pattern.
func allHalves() []uint16 {
	h := make([]uint16, 1<<16)
	for i := range h {
		h[i] = uint16(i)
	}
	return h
}

// specialF32 are float32 inputs at the edges of the narrowing rules.
func specialF32() []float32 {
	bits := []uint32{
		0, 0x80000000, 1, 0x80000001, 0x007fffff, 0x00800000, // zeros, float32 subnormals
		0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, // ±Inf, NaNs
		0x7fa00000, 0x7fbfffff, 0x7fffffff, 0xffffffff, 0x7f802000, 0x7f801fff, 0x7f8000ff, 0x7f80ffff,
		0x7f7fffff, 0xff7fffff, // ±MaxFloat32
		0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001, 0x47800000, // around 65504/65520
		0x38800000, 0x387fffff, 0x387ff000, 0x387fe000, 0x38000000, 0x337fffff, 0x33800000, 0x33000000, 0x33000001, 0x32ffffff, // half subnormal edges
		0x3f801000, 0x3f803000, 0x3f800fff, 0x3f801001, // f16 ties at 1.0
		0x3f808000, 0x3f818000, 0x3f807fff, 0x3f808001, // bf16 ties at 1.0
		0x7f7f8000, 0x7f7f7fff, 0x7f7fffff, // bf16 rounding to Inf
	}
	var out []float32
	for _, b := range bits {
		out = append(out, math.Float32frombits(b), math.Float32frombits(b^0x80000000))
	}
	return out
}

// randomF32 mixes random bit patterns, values in the half range, exact
// f16 and bf16 ties and subnormal-half values.
func randomF32(r *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		switch r.IntN(5) {
		case 0:
			out[i] = math.Float32frombits(r.Uint32())
		case 1:
			out[i] = float32(r.NormFloat64() * math.Ldexp(1, r.IntN(40)-24))
		case 2: // f16 tie: half-way between two halves
			h := uint16(r.IntN(0x7bff))
			v := (float64(quantize.F16ToF32(h)) + float64(quantize.F16ToF32(h+1))) / 2
			out[i] = float32(v)
		case 3: // bf16 tie
			out[i] = math.Float32frombits(r.Uint32()&0xffff0000 | 0x8000)
		default: // half subnormal range
			out[i] = float32(r.Float64() * math.Ldexp(1, -14))
		}
		if r.IntN(2) == 0 {
			out[i] = -out[i]
		}
	}
	return out
}

// lengths are the slice lengths run: all tails of the vector widths.
var convLengths = []int{0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100}

func TestWidenAllHalves(t *testing.T) {
	h := allHalves()
	hb := u16Bytes(h)
	wLevels(t, func(t *testing.T) {
		for _, bf := range []bool{false, true} {
			name, conv, convB, ref := "F16ToF32", kernels.F16ToF32, kernels.F16BytesToF32, quantize.F16ToF32
			if bf {
				name, conv, convB, ref = "BF16ToF32", kernels.BF16ToF32, kernels.BF16BytesToF32, quantize.BF16ToF32
			}
			const band = 17
			buf, dst := guarded(len(h), band)
			conv(dst, h)
			checkBand(t, name, buf, 0, band)
			checkBand(t, name, buf, band+len(h), len(buf))
			bufB, dstB := guarded(len(h), band)
			convB(dstB, hb)
			checkBand(t, name+" bytes", bufB, band+len(h), len(bufB))
			for i, v := range h {
				want := math.Float32bits(ref(v))
				if got := math.Float32bits(dst[i]); got != want {
					t.Fatalf("%s(%#04x) = %#08x, want %#08x", name, v, got, want)
				}
				if got := math.Float32bits(dstB[i]); got != want {
					t.Fatalf("%s bytes (%#04x) = %#08x, want %#08x", name, v, got, want)
				}
			}
			// Every tail length, from odd offsets.
			for _, n := range convLengths {
				off := 12345 + n
				buf, dst := guarded(n, band)
				conv(dst, h[off:off+n])
				checkBand(t, name, buf, 0, band)
				checkBand(t, name, buf, band+n, len(buf))
				for i := range n {
					if got, want := math.Float32bits(dst[i]), math.Float32bits(ref(h[off+i])); got != want {
						t.Fatalf("%s n=%d [%d] = %#08x, want %#08x", name, n, i, got, want)
					}
				}
			}
		}
	})
}

func TestNarrow(t *testing.T) {
	r := wRand(t)
	inputs := append(specialF32(), randomF32(r, 1<<15)...)
	// All halves widened and back: must round-trip exactly (NaNs quieted).
	for _, h := range allHalves() {
		inputs = append(inputs, quantize.F16ToF32(h), quantize.BF16ToF32(h))
	}
	wLevels(t, func(t *testing.T) {
		for _, bf := range []bool{false, true} {
			name, conv, convB, ref := "F32ToF16", kernels.F32ToF16, kernels.F32ToF16Bytes, quantize.F32ToF16
			if bf {
				name, conv, convB, ref = "F32ToBF16", kernels.F32ToBF16, kernels.F32ToBF16Bytes, quantize.F32ToBF16
			}
			dst := make([]uint16, len(inputs)+3)
			dst[len(inputs)] = 0xa5a5
			conv(dst[:len(inputs)], inputs)
			if dst[len(inputs)] != 0xa5a5 {
				t.Fatalf("%s wrote past the destination", name)
			}
			db := make([]byte, 2*len(inputs)+2)
			convB(db[:2*len(inputs)], inputs)
			if db[2*len(inputs)] != 0 {
				t.Fatalf("%s bytes wrote past the destination", name)
			}
			for i, v := range inputs {
				want := ref(v)
				if dst[i] != want {
					t.Fatalf("%s(%v = %#08x) = %#04x, want %#04x", name, v, math.Float32bits(v), dst[i], want)
				}
				if got := uint16(db[2*i]) | uint16(db[2*i+1])<<8; got != want {
					t.Fatalf("%s bytes(%#08x) = %#04x, want %#04x", name, math.Float32bits(v), got, want)
				}
			}
			for _, n := range convLengths {
				off := 1000 + n
				d := make([]uint16, n+5)
				for i := range d {
					d[i] = 0xa5a5
				}
				conv(d[2:2+n], inputs[off:off+n])
				for i := range d {
					want := uint16(0xa5a5)
					if i >= 2 && i < 2+n {
						want = ref(inputs[off+i-2])
					}
					if d[i] != want {
						t.Fatalf("%s n=%d: [%d] = %#04x, want %#04x", name, n, i-2, d[i], want)
					}
				}
			}
		}
	})
}

func TestConvertPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"short dst":  func() { kernels.F16ToF32(make([]float32, 3), make([]uint16, 4)) },
		"odd bytes":  func() { kernels.F16BytesToF32(make([]float32, 3), make([]byte, 5)) },
		"short dstB": func() { kernels.F32ToBF16Bytes(make([]byte, 5), make([]float32, 3)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
