package quantize

import (
	"fmt"

	"github.com/qtool-dev/qtool/formats"
)

// DoubleQuantBlocksize is the nested blocksize bitsandbytes always uses for
// double quantization (`nested_blocksize`).
const DoubleQuantBlocksize = 256

// DoubleQuant is the second-level quantization of a 4-bit tensor's absmax
// (QLoRA "double quantization", bitsandbytes compress_statistics=True;
// NF4-BITSANDBYTES.md section 2). It maps to the serialized tensors as:
// Codes → `weight.absmax` (U8), NestedAbsmax → `weight.nested_absmax` (F32),
// Offset → `nested_offset` and Blocksize → `nested_blocksize` in the
// quant_state JSON; the code is DynamicMap (`weight.nested_quant_map`).
type DoubleQuant struct {
	Codes        []uint8   // 8-bit dynamic codes of absmax - Offset, one per 4-bit block
	NestedAbsmax []float32 // absmax of each Blocksize run of centred values
	Offset       float32   // the mean of absmax, subtracted before quantizing
	Blocksize    int       // nested blocksize, DoubleQuantBlocksize
}

// DoubleQuantize centres absmax on its mean and quantizes it with
// QuantizeBlockwise8's rule in blocks of 256. The mean is the float64 sum
// in index order divided once and rounded to float32 (torch.mean gives the
// same on the goldens; the value is stored, so readers never recompute it).
// The 4-bit codes are unaffected. absmax must be finite, as Quantize4Bit
// returns it; otherwise the result is unspecified (but nothing panics).
func DoubleQuantize(absmax []float32) DoubleQuant {
	n := len(absmax)
	d := DoubleQuant{
		Codes:        make([]uint8, n),
		NestedAbsmax: make([]float32, numBlocks(n, DoubleQuantBlocksize)),
		Blocksize:    DoubleQuantBlocksize,
	}
	if n == 0 {
		return d
	}
	var sum float64
	for _, a := range absmax {
		sum += float64(a)
	}
	d.Offset = float32(sum / float64(n))
	centred := make([]float32, n)
	centre(centred, absmax, d.Offset)
	quantize8Range(d.Codes, d.NestedAbsmax, centred, DoubleQuantBlocksize)
	return d
}

// centre writes float32(x[i] - off).
func centre(dst, x []float32, off float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = v - off
	}
}

// Validate checks that the fields are consistent (as read from a file):
// a supported Blocksize and ceil(len(Codes)/Blocksize) nested scales.
func (d DoubleQuant) Validate() error {
	if err := checkBlocksize(d.Blocksize, 64); err != nil {
		return fmt.Errorf("quantize: nested %w", err)
	}
	if want := numBlocks(len(d.Codes), d.Blocksize); len(d.NestedAbsmax) != want {
		return fmt.Errorf("quantize: nested_absmax has %d values, want %d for %d codes: %w",
			len(d.NestedAbsmax), want, len(d.Codes), formats.ErrFormat)
	}
	return nil
}

// Absmax reconstructs the absmax bitsandbytes dequantizes with:
// dst[i] = float32(float32(DynamicMap()[Codes[i]] * NestedAbsmax[i/Blocksize]) + Offset).
// dst must hold len(d.Codes) values and d must be valid (Validate);
// otherwise Absmax panics.
func (d DoubleQuant) Absmax(dst []float32) {
	d.AbsmaxWithMap(dst, &dynamicTable)
}

// AbsmaxWithMap is Absmax with the 256-entry code read from a file's
// `nested_quant_map` instead of DynamicMap.
func (d DoubleQuant) AbsmaxWithMap(dst []float32, code *[256]float32) {
	if err := d.Validate(); err != nil {
		panic(err)
	}
	if len(dst) != len(d.Codes) {
		panic(fmt.Sprintf("quantize: DoubleQuant.Absmax: dst has %d values, want %d", len(dst), len(d.Codes)))
	}
	dequantize8Blocks(dst, d.Codes, d.NestedAbsmax, d.Blocksize, code)
	addOffset(dst, d.Offset)
}

// addOffset adds off to every value (a separate rounding after the
// product, never fused).
func addOffset(dst []float32, off float32) {
	for i := range dst {
		dst[i] += off
	}
}
