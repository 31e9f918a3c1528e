package quantize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// FuzzBnbQuantize feeds arbitrary float32 bit patterns to the 4-bit and
// blockwise 8-bit quantizers: non-finite input must be refused, anything
// else must match the literal reference rules, identically for 1 and 3
// goroutines.
func FuzzBnbQuantize(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x80}, uint8(0), false)
	f.Add(bytes.Repeat([]byte{0xcd, 0xcc, 0x4c, 0x3e}, 70), uint8(1), true)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0x80, 0x7f}, uint8(2), false)
	f.Fuzz(func(t *testing.T, data []byte, bsSel uint8, exactZero bool) {
		x := make([]float32, len(data)/4)
		finite := true
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
			finite = finite && !math.IsNaN(float64(x[i])) && !math.IsInf(float64(x[i]), 0)
		}
		bs := 32 << (bsSel % 3)
		for _, kind := range []FourBit{NF4, FP4} {
			var outs [][]byte
			for _, workers := range []int{1, 3} {
				p := make([]byte, (len(x)+1)/2)
				a := make([]float32, numBlocks(len(x), bs))
				err := Quantize4BitTo(kind, p, a, x, bs, Options4Bit{ExactZeroBlocks: exactZero, Workers: workers})
				if !finite {
					if !errors.Is(err, ErrNonFinite) {
						t.Fatalf("%v: non-finite input: err = %v", kind, err)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				outs = append(outs, append(p, f32Bytes(a)...))
			}
			if !finite {
				continue
			}
			wantP, wantA := ref4(kind, x, bs, exactZero)
			want := append(wantP, f32Bytes(wantA)...)
			for _, o := range outs {
				if !bytes.Equal(o, want) {
					t.Fatalf("%v bs=%d: kernel differs from reference", kind, bs)
				}
			}
			y := make([]float32, len(x))
			if err := Dequantize4Bit(kind, y, wantP, wantA, bs); err != nil {
				t.Fatal(err)
			}
			tab := kind.dequantTable()
			for i, c := range unpack4(wantP, len(x)) {
				if math.Float32bits(y[i]) != math.Float32bits(tab[c]*wantA[i/bs]) {
					t.Fatalf("%v: dequant of element %d", kind, i)
				}
			}
		}
		codes, absmax, err := QuantizeBlockwise8(x, 2*bs)
		if !finite {
			if !errors.Is(err, ErrNonFinite) {
				t.Fatalf("8-bit: non-finite input: err = %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range codes {
			a := absmax[i/(2*bs)]
			if want := countBelow(dynamicThresholds[:], x[i]*(1/a)); int(c) != want {
				t.Fatalf("8-bit code of %v (absmax %v) = %d, want %d", x[i], a, c, want)
			}
		}
	})
}
