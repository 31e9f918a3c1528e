package quantize

import (
	"math"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

func TestHalfRounding(t *testing.T) {
	cases := []struct {
		f    float32
		f16  uint16
		bf16 uint16
	}{
		{1, 0x3c00, 0x3f80},
		{float32(math.Copysign(0, -1)), 0x8000, 0x8000},
		{65504, 0x7bff, 0x4780},
		{65520, 0x7c00, 0x4780},                            // rounds up to +Inf in f16
		{5.960464477539063e-08, 0x0001, 0x3380},            // smallest f16 subnormal
		{math.Float32frombits(0x3f808000), 0x3c04, 0x3f80}, // bf16 tie → even (down)
		{math.Float32frombits(0x3f818000), 0x3c0c, 0x3f82}, // bf16 tie → even (up)
		{float32(math.Inf(-1)), 0xfc00, 0xff80},
	}
	for _, c := range cases {
		if got := F32ToF16(c.f); got != c.f16 {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", c.f, got, c.f16)
		}
		if got := F32ToBF16(c.f); got != c.bf16 {
			t.Errorf("F32ToBF16(%g) = %#04x, want %#04x", c.f, got, c.bf16)
		}
	}
	if h := F32ToBF16(float32(math.NaN())); BF16ToF32(h) == BF16ToF32(h) {
		t.Error("bf16 NaN lost")
	}
}

func TestCastRoundTrip(t *testing.T) {
	src := []float32{1, -2.5, 0.1, 65504, 3.0e-5}
	for _, d := range []formats.DType{formats.F32, formats.F16, formats.BF16} {
		buf := make([]byte, len(src)*d.Bits()/8)
		if err := FromFloat32(buf, src, d); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(src))
		if err := ToFloat32(got, buf, d); err != nil {
			t.Fatal(err)
		}
		for i := range src {
			rel := math.Abs(float64(got[i]-src[i])) / math.Abs(float64(src[i]))
			if (d == formats.F32 && got[i] != src[i]) || rel > 1.0/128 {
				t.Errorf("%v: %g → %g", d, src[i], got[i])
			}
		}
	}
	if err := ToFloat32(make([]float32, 2), []byte{1}, formats.F32); err == nil {
		t.Error("short buffer accepted")
	}
}
