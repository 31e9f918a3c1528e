package lora

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/quantize"
)

// TensorReport is the merge report of one merged tensor. The measured
// fields are filled while the tensor is written.
type TensorReport struct {
	// Name is the output tensor (the base's name); Target the Hugging
	// Face name the adapters use.
	Name   string `json:"name"`
	Target string `json:"target"`
	// Adapters is how many adapters update the tensor; Rank the sum of
	// their ranks.
	Adapters int `json:"adapters"`
	Rank     int `json:"rank"`
	// From is how the base stores it ("f32", "q4_k", "nf4+dq"), To how
	// the output does.
	From string `json:"from"`
	To   string `json:"to"`
	// Elements is the number of values.
	Elements int64 `json:"elements"`
	// Measured is set once the fields below hold the tensor's numbers.
	Measured bool `json:"measured"`
	// WeightNorm is ‖W‖ (Frobenius) of the dequantized base tensor;
	// DeltaNorm is ‖ΔW‖ of the update Σ s·B·A in float32 before it is
	// added; Relative is DeltaNorm / WeightNorm (0 when W is 0).
	WeightNorm float64 `json:"weight_norm"`
	DeltaNorm  float64 `json:"delta_norm"`
	Relative   float64 `json:"relative_delta"`
	// Survived is the share of the update the output keeps,
	// ‖Q(W+ΔW) − Q(W)‖ / ‖ΔW‖ in dequantized values, with Q the output's
	// type (for float outputs, the cast): about 1 for F32, near 0 as
	// rounding eats the update (0 when it all disappears), possibly above
	// 1 where quantization noise adds to it. nil when ΔW is 0.
	Survived *float64 `json:"survived"`
	// Changed counts the output values that differ from Q(W).
	Changed int64 `json:"changed"`
	// Warning is set when the merge changed nothing in this tensor.
	Warning string `json:"warning,omitempty"`
}

// MergeReport is the report of a whole merge.
type MergeReport struct {
	// Tensors are the merged tensors in output order.
	Tensors []TensorReport `json:"tensors"`
	// Merged counts them; Measured those already written.
	Merged   int `json:"merged"`
	Measured int `json:"measured"`
	// Warnings counts the tensors with a warning.
	Warnings int `json:"warnings"`
	// MinSurvived is the smallest Survived among the measured tensors
	// (nil when none is defined).
	MinSurvived *float64 `json:"min_survived"`
}

// reportBook collects the rows while tensors are written concurrently.
type reportBook struct {
	mu      sync.Mutex
	rows    []TensorReport
	claimed []bool
}

// add starts the row of a merged entry.
func (b *reportBook) add(e *entry, from, to quantSpec) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, _ := formats.TensorInfo{Shape: e.shape}.NumElements()
	r := TensorReport{Name: e.name, Target: e.target, Adapters: len(e.terms), From: from.String(), To: to.String(), Elements: n}
	for _, t := range e.terms {
		r.Rank += t.pair.Rank
	}
	e.row = len(b.rows)
	b.rows = append(b.rows, r)
	b.claimed = append(b.claimed, false)
}

// len is the number of rows.
func (b *reportBook) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.rows)
}

// claim reports whether row i is still to be measured, and reserves it.
func (b *reportBook) claim(i int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.claimed[i] {
		return false
	}
	b.claimed[i] = true
	return true
}

// fill stores the measured sums of row i: ‖W‖², ‖ΔW‖², ‖Q(W+ΔW) − Q(W)‖²
// and the count of changed values.
func (b *reportBook) fill(i int, w2, d2, diff2 float64, changed int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &b.rows[i]
	r.Measured = true
	r.Changed = changed
	if !finite(w2) || !finite(d2) || !finite(diff2) {
		// JSON has no NaN or Inf: say so instead.
		r.Warning = "non-finite values (NaN or Inf) in the base, the update or the output; norms not measured"
		return
	}
	r.WeightNorm, r.DeltaNorm = math.Sqrt(w2), math.Sqrt(d2)
	if r.WeightNorm > 0 {
		r.Relative = r.DeltaNorm / r.WeightNorm
	}
	switch {
	case d2 == 0:
		r.Warning = "the update is zero (an all-zero A or B): the merge changes nothing"
	case changed == 0:
		r.Warning = fmt.Sprintf("the update does not survive %s: the merged tensor equals the base", r.To)
	}
	if d2 > 0 {
		s := math.Sqrt(diff2) / r.DeltaNorm
		r.Survived = &s
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// report copies the rows and sums them up.
func (b *reportBook) report() MergeReport {
	b.mu.Lock()
	defer b.mu.Unlock()
	rep := MergeReport{Tensors: make([]TensorReport, len(b.rows)), Merged: len(b.rows)}
	for i, r := range b.rows {
		if r.Survived != nil {
			s := *r.Survived
			r.Survived = &s
			if rep.MinSurvived == nil || s < *rep.MinSurvived {
				rep.MinSurvived = &s
			}
		}
		rep.Tensors[i] = r
		if r.Measured {
			rep.Measured++
		}
		if r.Warning != "" {
			rep.Warnings++
		}
	}
	if rep.MinSurvived != nil {
		s := *rep.MinSurvived
		rep.MinSurvived = &s
	}
	return rep
}

// measure fills the report row: the norms, and how much of the update is
// left once the output is stored as e.measure, ‖Q(W+Δ) − Q(W)‖ / ‖Δ‖ in
// dequantized values. x (W) and y (W+Δ) are overwritten.
func (d *mergedData) measure(x, y []float32, enc []byte, sums rowSums) error {
	e, q := d.e, d.e.measure
	cols := int(e.shape[1])
	if d.out != formats.F32 {
		if err := decodeFloats(y, enc, d.out); err != nil {
			return err
		}
	}
	if q.bnb != quantize.TypeNone || q.dtype != d.out {
		if err := roundTrip(q, y, cols, d.m.workers); err != nil {
			return err
		}
	}
	if !d.refIsBase {
		if err := roundTrip(q, x, cols, d.m.workers); err != nil {
			return err
		}
	}
	diffs := make([]float64, len(y)/cols)
	var changed int64
	for i := range diffs {
		var c int64
		diffs[i], c = rowDiff(y[i*cols:(i+1)*cols], x[i*cols:(i+1)*cols])
		changed += c
	}
	d.m.book.fill(e.row, sum(sums.w), sum(sums.d), sum(diffs), changed)
	return nil
}

// quantSpec is how a tensor is stored: a float or ggml dtype, or a
// bitsandbytes type with its blocksize and double quantization.
type quantSpec struct {
	dtype formats.DType // Invalid for bitsandbytes types
	bnb   quantize.Type
	block int
	dq    bool
}

func (q quantSpec) valid() bool { return q.dtype != formats.Invalid || q.bnb != quantize.TypeNone }

// String is the name users know: "f16", "q4_k", "nf4+dq".
func (q quantSpec) String() string {
	if q.bnb != quantize.TypeNone {
		if q.dq {
			return q.bnb.String() + "+dq"
		}
		return q.bnb.String()
	}
	return strings.ToLower(q.dtype.String())
}

// roundTrip replaces x (rows of cols values) by dequantize(quantize(x))
// for the storage q, with the kernels qtool writes that storage with.
func roundTrip(q quantSpec, x []float32, cols, workers int) error {
	switch q.bnb {
	case quantize.TypeNone:
		if q.dtype == formats.F32 {
			return nil
		}
		enc, err := encode(q.dtype, x, workers)
		if err != nil {
			return err
		}
		return decodeFloats(x, enc, q.dtype)
	case quantize.TypeNF4, quantize.TypeFP4:
		kind := quantize.NF4
		if q.bnb == quantize.TypeFP4 {
			kind = quantize.FP4
		}
		block := q.block
		if block == 0 {
			block = quantize.DefaultBlocksize4Bit
		}
		packed := make([]byte, (len(x)+1)/2)
		absmax := make([]float32, (len(x)+block-1)/block)
		// As qtool quantize writes them (bitsandbytes' PyTorch backend for
		// all-zero blocks).
		opt := quantize.Options4Bit{ExactZeroBlocks: true, Workers: workers}
		if err := quantize.Quantize4BitTo(kind, packed, absmax, x, block, opt); err != nil {
			return err
		}
		if q.dq {
			quantize.DoubleQuantize(absmax).Absmax(absmax)
		}
		return quantize.Dequantize4BitTo(kind, x, packed, absmax, block, opt)
	case quantize.TypeInt8:
		rows := len(x) / max(cols, 1)
		cb, scb, err := quantize.QuantizeInt8Rows(x, rows, cols)
		if err != nil {
			return err
		}
		return quantize.DequantizeInt8Rows(x, cb, scb, rows, cols)
	case quantize.TypeInt8Block:
		block := q.block
		if block == 0 {
			block = quantize.DefaultBlocksize8
		}
		codes, absmax, err := quantize.QuantizeBlockwise8(x, block)
		if err != nil {
			return err
		}
		return quantize.DequantizeBlockwise8(x, codes, absmax, block)
	}
	return fmt.Errorf("lora: cannot measure %s: %w", q, formats.ErrUnsupported)
}
