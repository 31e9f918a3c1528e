package quantize

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/qtool-dev/qtool/formats"
)

// ErrNonFiniteGGML is returned by QuantizeGGML when the input holds a NaN
// or ±Inf: ggml's reference quantizers turn such blocks into garbage (or
// undefined behaviour), so qtool refuses them. It wraps formats.ErrFormat.
var ErrNonFiniteGGML = formats.NewRule("non-finite value in ggml quantizer input", formats.ErrFormat)

// ggmlCodec is one ggml block type: the kernels trust their arguments
// (whole blocks, dst sized exactly, finite input); the wrappers validate.
type ggmlCodec struct {
	quant   func(dst []byte, src []float32) // nil: dequantize only
	dequant func(dst []float32, src []byte)
}

// ggmlCodecs maps the supported block types to their kernels
// (GGUF-LLAMACPP.md §3, §3.1).
var ggmlCodecs = map[formats.DType]ggmlCodec{
	formats.Q8_0:   {quantQ8_0, dequantQ8_0},
	formats.Q4_0:   {quantQ4_0, dequantQ4_0},
	formats.Q4_1:   {quantQ4_1, dequantQ4_1},
	formats.Q5_0:   {quantQ5_0, dequantQ5_0},
	formats.Q5_1:   {quantQ5_1, dequantQ5_1},
	formats.IQ4_NL: {quantIQ4NL, dequantIQ4NL},
	formats.Q4_K:   {quantQ4K, dequantQ4K},
	formats.Q5_K:   {quantQ5K, dequantQ5K},
	formats.Q6_K:   {quantQ6K, dequantQ6K},
}

// GGMLQuantizable reports whether QuantizeGGML supports t: Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1, IQ4_NL, Q4_K, Q5_K and Q6_K.
func GGMLQuantizable(t formats.DType) bool {
	c, ok := ggmlCodecs[t]
	return ok && c.quant != nil
}

// GGMLDequantizable reports whether DequantizeGGML supports t: every type
// QuantizeGGML supports, plus F32, F16 and BF16 (widened exactly).
func GGMLDequantizable(t formats.DType) bool {
	switch t {
	case formats.F32, formats.F16, formats.BF16:
		return true
	}
	_, ok := ggmlCodecs[t]
	return ok
}

// ggmlChunkBlocks is how many blocks QuantizeGGML checks for non-finite
// values before quantizing them, so the check reads data that is then in
// cache.
const ggmlChunkBlocks = 128

// QuantizeGGML quantizes src (a whole number of blocks of t; rows
// concatenated row-major) into dst, which must be exactly
// len(src)/t.BlockSize()*t.BlockBytes() bytes, byte for byte as
// ggml_quantize_chunk does without an importance matrix (the functions
// llama-quantize calls; GGUF-LLAMACPP.md §3.1). A NaN or ±Inf anywhere in
// src gives ErrNonFiniteGGML; dst is then partly written.
func QuantizeGGML(t formats.DType, dst []byte, src []float32) error {
	c, bs, bb, err := ggmlCheck(t, len(src), len(dst), true)
	if err != nil {
		return err
	}
	return quantizeGGMLRange(c, t, dst, src, bs, bb, 0)
}

// quantizeGGMLRange quantizes validated whole blocks chunk by chunk; base
// is the element index of src[0] in the caller's tensor (for messages).
func quantizeGGMLRange(c ggmlCodec, t formats.DType, dst []byte, src []float32, bs, bb, base int) error {
	step := ggmlChunkBlocks * bs
	for off := 0; off < len(src); off += step {
		end := min(off+step, len(src))
		x := src[off:end]
		if i := ggmlFirstNonFinite(x); i >= 0 {
			return fmt.Errorf("quantize: %v: element %d is %v: %w", t, base+off+i, x[i], ErrNonFiniteGGML)
		}
		c.quant(dst[off/bs*bb:end/bs*bb], x)
	}
	return nil
}

// QuantizeGGMLParallel is QuantizeGGML with the blocks split into up to
// workers contiguous runs quantized concurrently; the bytes are identical
// to QuantizeGGML's. workers < 1 means 1. With several non-finite values
// the error names the first run's.
func QuantizeGGMLParallel(t formats.DType, dst []byte, src []float32, workers int) error {
	c, bs, bb, err := ggmlCheck(t, len(src), len(dst), true)
	if err != nil {
		return err
	}
	nb := len(src) / bs
	workers = max(1, min(workers, nb/ggmlChunkBlocks))
	if workers == 1 {
		return quantizeGGMLRange(c, t, dst, src, bs, bb, 0)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		b0, b1 := nb*w/workers, nb*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = quantizeGGMLRange(c, t, dst[b0*bb:b1*bb], src[b0*bs:b1*bs], bs, bb, b0*bs)
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// DequantizeGGML decodes src, a whole number of blocks of t, into dst,
// which must hold exactly the encoded element count, with ggml's
// dequantize_row_* arithmetic (float32, same operation order).
func DequantizeGGML(t formats.DType, dst []float32, src []byte) error {
	switch t {
	case formats.F32, formats.F16, formats.BF16:
		if len(src) != len(dst)*t.Bits()/8 {
			return fmt.Errorf("quantize: %d bytes of %v do not hold %d elements", len(src), t, len(dst))
		}
		return ToFloat32(dst, src, t)
	}
	c, _, _, err := ggmlCheck(t, len(dst), len(src), false)
	if err != nil {
		return err
	}
	c.dequant(dst, src)
	return nil
}

// GGMLBlockDecoder returns the dequantizer of the ggml block type t (any
// type DequantizeGGML supports but F32, F16 and BF16), resolved once so
// that callers decoding many rows skip DequantizeGGML's lookup and checks:
// decode(dst, src) writes len(dst)/t.BlockSize() blocks of src to dst with
// DequantizeGGML's arithmetic, bit for bit. It trusts its arguments: len(dst)
// a multiple of the block size and src at least len(dst)/BlockSize·BlockBytes
// bytes (it panics otherwise). ok is false for other types.
func GGMLBlockDecoder(t formats.DType) (decode func(dst []float32, src []byte), ok bool) {
	c, ok := ggmlCodecs[t]
	if !ok {
		return nil, false
	}
	return c.dequant, true
}

// ggmlCheck validates a call: t supported, n elements a whole number of
// blocks, and the packed buffer exactly n/BlockSize·BlockBytes bytes.
func ggmlCheck(t formats.DType, n, packed int, quant bool) (ggmlCodec, int, int, error) {
	c, ok := ggmlCodecs[t]
	if !ok || (quant && c.quant == nil) {
		verb := "dequantize"
		if quant {
			verb = "quantize"
		}
		return c, 0, 0, fmt.Errorf("quantize: cannot %s %v with the ggml kernels: %w", verb, t, formats.ErrUnsupported)
	}
	bs, bb := int(t.BlockSize()), int(t.BlockBytes())
	if n%bs != 0 {
		return c, 0, 0, fmt.Errorf("quantize: %d elements are not a whole number of %d-element %v blocks", n, bs, t)
	}
	if packed != n/bs*bb {
		return c, 0, 0, fmt.Errorf("quantize: %v buffer is %d bytes, want %d for %d elements", t, packed, n/bs*bb, n)
	}
	return c, bs, bb, nil
}

// ggmlFirstNonFinite returns the index of the first NaN or ±Inf in x, or -1.
func ggmlFirstNonFinite(x []float32) int {
	for i, v := range x {
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 {
			return i
		}
	}
	return -1
}

// Shared scalar helpers of the ggml kernels. ggml-quants.c is compiled
// without FMA contraction, so every product that feeds an addition is
// wrapped in float32(…) to keep Go from fusing it (GGUF-LLAMACPP.md §6.6).

// ggmlPutF16 stores fp16(f) little-endian at b[0:2].
func ggmlPutF16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, F32ToF16(f)) }

// ggmlF16 widens the fp16 at b[0:2].
func ggmlF16(b []byte) float32 { return F16ToF32(binary.LittleEndian.Uint16(b)) }

// ggmlAbs is fabsf.
func ggmlAbs(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

// ggmlNearestInt is ggml's nearest_int: round half to even through the
// 1.5·2²³ trick, valid (and bit-compatible) for |f| ≤ 4194303.
func ggmlNearestInt(f float32) int32 {
	v := f + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

// ggmlSqrt is sqrtf: the float64 square root rounded to float32 is the
// correctly rounded float32 root.
func ggmlSqrt(f float32) float32 { return float32(math.Sqrt(float64(f))) }
