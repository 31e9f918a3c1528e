package quantize

import (
	"encoding/binary"
	"math"

	"github.com/qtool-dev/qtool/formats"
)

// Decision records what a plan does with one source tensor, for the
// summary the CLI prints. The Measured fields are filled while the
// tensor is written (Config.Stats), so read them after the write.
type Decision struct {
	// Name is the source tensor's name.
	Name string `json:"name"`
	// From is the source encoding: a dtype ("F32", "Q8_0") or, when
	// dequantizing bitsandbytes tensors, their type ("nf4", "nf4+dq").
	From string `json:"from"`
	// To is the output encoding, in the same terms.
	To string `json:"to"`
	// Type is the quantization or cast applied; TypeNone when the tensor is
	// copied unchanged (Kept says why).
	Type Type `json:"-"`
	// Asked is the type the policy asked for before any fallback.
	Asked Type `json:"-"`
	// Fallback says why Type differs from Asked ("" when it does not).
	Fallback string `json:"fallback,omitempty"`
	// Kept says why the tensor was copied unchanged ("" when it was not).
	Kept string `json:"kept,omitempty"`
	// Params is the number of elements.
	Params int64 `json:"params"`
	// BytesIn is the source tensor's size; BytesOut the total size of the
	// output tensors made from it (companion tensors included).
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
	// Measured is set once RMSE and MaxAbsErr hold the error of
	// dequantize(quantize(x)) against the source values x.
	Measured  bool    `json:"-"`
	RMSE      float64 `json:"rmse,omitempty"`
	MaxAbsErr float64 `json:"max_abs_err,omitempty"`
}

// BitsPerParam is the storage cost of the output per element.
func (d Decision) BitsPerParam() float64 {
	if d.Params == 0 {
		return 0
	}
	return float64(d.BytesOut) * 8 / float64(d.Params)
}

// Totals sums the decisions of a plan.
type Totals struct {
	Tensors      int     `json:"tensors"`
	Converted    int     `json:"converted"` // not copied unchanged
	Quantized    int     `json:"quantized"` // to a quantized type
	Fallbacks    int     `json:"fallbacks"`
	Params       int64   `json:"params"`
	BytesIn      int64   `json:"bytes_in"`
	BytesOut     int64   `json:"bytes_out"`
	BitsPerParam float64 `json:"bits_per_param"`
}

// SumDecisions totals ds.
func SumDecisions(ds []Decision) Totals {
	var t Totals
	for _, d := range ds {
		t.Tensors++
		if d.Type != TypeNone {
			t.Converted++
		}
		if d.Type.Quantized() {
			t.Quantized++
		}
		if d.Fallback != "" {
			t.Fallbacks++
		}
		t.Params += d.Params
		t.BytesIn += d.BytesIn
		t.BytesOut += d.BytesOut
	}
	if t.Params > 0 {
		t.BitsPerParam = float64(t.BytesOut) * 8 / float64(t.Params)
	}
	return t
}

// errorStats accumulates the reconstruction error of one tensor over its
// chunks: the sum of squared differences (float64) and the largest
// absolute difference.
type errorStats struct {
	sumSq  float64
	maxAbs float64
	n      int64
}

// add compares a chunk of source values x with their reconstruction y.
func (s *errorStats) add(x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		d := math.Abs(float64(v) - float64(y[i]))
		s.sumSq += d * d
		if d > s.maxAbs || d != d {
			s.maxAbs = d
		}
	}
	s.n += int64(len(x))
}

// rmse is the root mean square error so far.
func (s *errorStats) rmse() float64 {
	if s.n == 0 {
		return 0
	}
	return math.Sqrt(s.sumSq / float64(s.n))
}

// rawAbsmax writes max|x| of each run of bs elements of raw (F32, F16 or
// BF16, little-endian) into dst, comparing magnitudes as integers (the
// order of finite IEEE magnitudes is that of their bits). It returns the
// index of the first NaN or ±Inf, or -1.
func rawAbsmax(dst []float32, raw []byte, d formats.DType, bs int) int {
	size := d.Bits() / 8
	n := len(raw) / size
	for b := range dst {
		lo, hi := b*bs, min(b*bs+bs, n)
		switch d {
		case formats.F32:
			var m uint32
			for i := lo; i < hi; i++ {
				m = max(m, binary.LittleEndian.Uint32(raw[4*i:])&0x7fffffff)
			}
			if m >= 0x7f800000 {
				return firstBadRaw(raw, d, lo, hi)
			}
			dst[b] = math.Float32frombits(m)
		default:
			var m uint16
			for i := lo; i < hi; i++ {
				m = max(m, binary.LittleEndian.Uint16(raw[2*i:])&0x7fff)
			}
			inf := uint16(0x7c00)
			if d == formats.BF16 {
				inf = 0x7f80
			}
			if m >= inf {
				return firstBadRaw(raw, d, lo, hi)
			}
			if d == formats.BF16 {
				dst[b] = BF16ToF32(m)
			} else {
				dst[b] = F16ToF32(m)
			}
		}
	}
	return -1
}

// firstBadRaw finds the first non-finite element in [lo, hi).
func firstBadRaw(raw []byte, d formats.DType, lo, hi int) int {
	x := make([]float32, 1)
	size := d.Bits() / 8
	for i := lo; i < hi; i++ {
		if ToFloat32(x, raw[size*i:size*i+size], d) == nil && (math.IsInf(float64(x[0]), 0) || x[0] != x[0]) {
			return i
		}
	}
	return lo
}
