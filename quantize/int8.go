package quantize

import (
	"fmt"
	"math"

	"github.com/qtool-dev/qtool/formats"
)

// This file holds the symmetric absmax int8 quantizers: LLM.int8()'s
// row-wise weight format (`load_in_8bit`, NF4-BITSANDBYTES.md section 4)
// and the group-wise absmax int8 of llama2.c's version-2 export.

// int8Inv127 is float32(1/127), bitsandbytes' 7.874015718698502e-3.
const int8Inv127 = float32(1.0 / 127)

// QuantizeInt8Rows quantizes a rows×cols row-major weight as
// bitsandbytes' Int8Params does: every value is first rounded to fp16 (a
// no-op when x already holds fp16 values), then per row SCB[r] = max|x[r,:]|
// and CB = round_half_even(x * float32(127/SCB[r])). A zero row gets zeros
// (the GPU's NaN → 0). It returns CB (`X.weight`, I8 [rows, cols]) and SCB
// (`X.SCB`, F32 [rows]). NaN, ±Inf and values beyond the fp16 range are
// refused with ErrNonFinite.
func QuantizeInt8Rows(x []float32, rows, cols int) (cb []int8, scb []float32, err error) {
	if err := checkMatrix(len(x), rows, cols); err != nil {
		return nil, nil, err
	}
	cb = make([]int8, len(x))
	scb = make([]float32, rows)
	row := make([]float32, cols)
	for r := range rows {
		xs := x[r*cols : (r+1)*cols]
		roundF16s(row, xs)
		m := absMaxBits(row)
		if m >= 0x7f800000 {
			bad := r*cols + firstNonFinite(row)
			return nil, nil, fmt.Errorf("quantize: element %d is %v (beyond fp16): %w", bad, x[bad], ErrNonFinite)
		}
		scb[r] = math.Float32frombits(m)
		if m == 0 {
			continue
		}
		quantizeInt8Row(cb[r*cols:(r+1)*cols], row, 127/scb[r])
	}
	return cb, scb, nil
}

func checkMatrix(n, rows, cols int) error {
	if rows < 0 || cols < 0 || (cols != 0 && rows > math.MaxInt/cols) || rows*cols != n {
		return fmt.Errorf("quantize: %d values do not form a %d×%d matrix: %w", n, rows, cols, formats.ErrFormat)
	}
	return nil
}

// roundF16s writes roundF16(x[i]) to dst.
func roundF16s(dst, x []float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = roundF16(v)
	}
}

// roundF16 rounds v to the nearest fp16 value (ties to even) and widens it
// back: F16ToF32(F32ToF16(v)), with a fast path for the normal fp16 range.
func roundF16(v float32) float32 {
	u := math.Float32bits(v)
	if a := u &^ (1 << 31); a >= 0x38800000 && a < 0x477ff000 {
		// 2^-14 <= |v| < 65520: keep 10 mantissa bits, round half to
		// even; a carry into the exponent is the correct result.
		u += 0xfff + (u>>13)&1
		return math.Float32frombits(u &^ 0x1fff)
	}
	return F16ToF32(F32ToF16(v))
}

// roundMagic is 1.5·2^23: float32(p + roundMagic) - roundMagic rounds p to
// an integer, ties to even, for |p| < 2^22.
const roundMagic = float32(12582912)

// quantizeInt8Row writes round_half_even(x[i] * scale), clamped to ±127
// (|x| <= absmax and scale = 127/absmax keep it there anyway).
//
// Reference: dst[i] = int8(math.RoundToEven(float64(x[i] * scale))).
func quantizeInt8Row(dst []int8, x []float32, scale float32) {
	x = x[:len(dst)]
	for i, v := range x {
		p := v * scale
		r := float32(p+roundMagic) - roundMagic
		dst[i] = int8(max(-127, min(127, int32(r))))
	}
}

// DequantizeInt8Rows writes dst[r*cols+c] =
// float32(float32(CB * SCB[r]) * float32(1/127)), as bitsandbytes'
// int8_vectorwise_dequant computes it.
func DequantizeInt8Rows(dst []float32, cb []int8, scb []float32, rows, cols int) error {
	if err := checkMatrix(len(dst), rows, cols); err != nil {
		return err
	}
	if len(cb) != len(dst) {
		return lengthError("CB", len(cb), len(dst))
	}
	if len(scb) != rows {
		return lengthError("SCB", len(scb), rows)
	}
	for r, s := range scb {
		dequantizeInt8Row(dst[r*cols:(r+1)*cols], cb[r*cols:(r+1)*cols], s)
	}
	return nil
}

// dequantizeInt8Row is the kernel of DequantizeInt8Rows for one row.
//
// Reference: dst[i] = float32(float32(q[i])*scale) * int8Inv127.
func dequantizeInt8Row(dst []float32, q []int8, scale float32) {
	q = q[:len(dst)]
	for i, c := range q {
		dst[i] = float32(float32(c)*scale) * int8Inv127
	}
}

// QuantizeAbsmaxInt8 is the symmetric group-wise absmax int8 quantizer of
// llama2.c's export (version 2, "Q8_0"-style): per group of group
// consecutive values (the last group may be shorter), scale =
// float32(max|w| / 127) and q = round_half_even(float32(w / scale)), both
// divisions in float32 as PyTorch does them. An all-zero group gets scale 0
// and zeros. It refuses group < 1 (ErrBlocksize) and NaN/±Inf
// (ErrNonFinite).
func QuantizeAbsmaxInt8(x []float32, group int) (q []int8, scales []float32, err error) {
	if group < 1 {
		return nil, nil, fmt.Errorf("quantize: group size %d: %w", group, ErrBlocksize)
	}
	q = make([]int8, len(x))
	scales = make([]float32, numBlocks(len(x), group))
	for g := range scales {
		lo := g * group
		xs := x[lo:min(lo+group, len(x))]
		m := absMaxBits(xs)
		if m >= 0x7f800000 {
			bad := lo + firstNonFinite(xs)
			return nil, nil, nonFiniteError(bad, x[bad])
		}
		s := math.Float32frombits(m) / 127
		scales[g] = s
		if s == 0 {
			continue
		}
		quantizeAbsmaxGroup(q[lo:lo+len(xs)], xs, s)
	}
	return q, scales, nil
}

// quantizeAbsmaxGroup writes round_half_even(x[i] / scale), clamped to ±127.
//
// Reference: dst[i] = int8(math.RoundToEven(float64(x[i] / scale))).
func quantizeAbsmaxGroup(dst []int8, x []float32, scale float32) {
	x = x[:len(dst)]
	for i, v := range x {
		p := v / scale
		r := float32(p+roundMagic) - roundMagic
		dst[i] = int8(max(-127, min(127, int32(r))))
	}
}
