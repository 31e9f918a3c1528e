package quantize

import (
	"encoding/binary"
	"fmt"
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
	// Rule says why llama-quantize's mix (Config.Mix) asked for a type
	// other than Config.Type ("" when it did not).
	Rule string `json:"rule,omitempty"`
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

// Working memory (Config.MaxMemory).

// DefaultMaxMemory is the working-memory bound of a plan when
// Config.MaxMemory (DequantConfig.MaxMemory) is 0: 512 MiB.
const DefaultMaxMemory = 512 << 20

// chunkElemCost bounds the bytes one element of a chunk occupies while it
// is converted: its source bytes when read through Section (at most 4),
// its float32 value (4), its output bytes (at most 4), its reconstruction
// for statistics (4) and kernel scratch such as int8 codes (1).
const chunkElemCost = 17

// memNeed is what one source tensor needs of the memory bound: chunks of
// whole units (rows or blocks) at chunkElemCost bytes per element, plus
// vectors held for the whole tensor (block or row scales, double
// quantization's codes).
type memNeed struct {
	name     string
	unit     int64  // elements of the smallest chunk
	unitName string // "row", "block"
	side     int64  // bytes held for the whole tensor
}

// min is the least memory the tensor can be converted in.
func (m memNeed) min() int64 { return m.side + m.unit*chunkElemCost }

// planNeed is the memory need of one planned tensor.
func planNeed(ti formats.TensorInfo, ch choice, cfg Config) memNeed {
	m := memNeed{name: ti.Name, unit: max(rowLength(ti.Shape), 1), unitName: "row"}
	n, _ := ti.NumElements()
	switch ch.typ {
	case TypeNone:
		m = copyNeed(ti)
	case TypeNF4, TypeFP4:
		// Block absmax as float32, its byte image, and under double
		// quantization also the centred copy, the codes and the
		// reconstruction for --stats.
		block := int64(cfg.block(ch.typ))
		per := int64(8)
		if cfg.DoubleQuant {
			per = 20
		}
		m.unit, m.unitName, m.side = block, "block", ceilDiv(n, block)*per
	case TypeInt8Block:
		block := int64(cfg.block(ch.typ))
		m.unit, m.unitName, m.side = block, "block", ceilDiv(n, block)*8
	case TypeInt8:
		m.side = ti.Shape[0] * 8 // SCB as float32 and its byte image
	}
	return m
}

// copyNeed is the memory need of a tensor copied unchanged: chunks of
// whole blocks of its dtype.
func copyNeed(ti formats.TensorInfo) memNeed {
	return memNeed{name: ti.Name, unit: max(ti.DType.BlockSize(), 1), unitName: "block"}
}

// fitMemory checks every tensor's need against the bound and sizes each
// tensor's chunks: as many whole units as the bound leaves after the
// tensor's scale vectors, at most chunkElems. The goroutines a chunk is
// split over follow from its size (workersFor; the ggml kernels give each
// at least 128 blocks), so a small bound also means fewer of them. Too small a bound
// fails with ErrMemoryLimit, naming the tensor that needs the most.
func (o *Output) fitMemory() error {
	o.chunk = make(map[string]int64, len(o.needs))
	worst := -1
	var most int64
	for i, m := range o.needs {
		if need := m.min(); need > most {
			worst, most = i, need
		}
	}
	if most > o.budget {
		m := o.needs[worst]
		return fmt.Errorf("quantize: working memory limit of %s is too small: tensor %q needs at least %s (one %d-element %s at %d bytes per element, plus %s of scales held for the whole tensor): %w",
			sizeText(o.budget), m.name, sizeText(most), m.unit, m.unitName, chunkElemCost, sizeText(m.side), ErrMemoryLimit)
	}
	for _, m := range o.needs {
		per := min(chunkElems, (o.budget-m.side)/chunkElemCost)
		o.chunk[m.name] = max(m.unit, per/m.unit*m.unit)
	}
	o.needs = nil
	return nil
}

// chunkFor is the number of elements per chunk of a source tensor, a
// multiple of unit.
func (o *Output) chunkFor(name string, unit int64) int64 {
	per, ok := o.chunk[name]
	if !ok {
		per = chunkElems
	}
	return max(unit, per/unit*unit)
}

// sizeText renders a byte count for messages: "196608 bytes (192.0 KiB)".
func sizeText(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	f, i := float64(n)/1024, 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%d bytes (%.1f %s)", n, f, units[i])
}
