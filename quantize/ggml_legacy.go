package quantize

import (
	"encoding/binary"
	"math"
)

// The 32-element ggml block types of GGUF-LLAMACPP.md §3 with the reference
// quantizers of §3.1 (quantize_row_*_ref, which llama-quantize uses when it
// has no importance matrix). Layouts, little-endian:
//
//	Q8_0  34 B: d fp16, qs[32] int8                   x = q·d
//	Q4_0  18 B: d fp16, qs[16]                        x = (q−8)·d
//	Q4_1  20 B: d fp16, m fp16, qs[16]                x = q·d + m
//	Q5_0  22 B: d fp16, qh u32, qs[16]                x = (q−16)·d
//	Q5_1  24 B: d fp16, m fp16, qh u32, qs[16]        x = q·d + m
//
// Nibbles: byte j holds element j in its low nibble and element j+16 in its
// high nibble; qh bit j is the fifth bit of element j.

const ggmlQK = 32

// ggmlAbsMax returns max|x| and the element that attains it, the first
// one on ties (ggml's `if (amax < fabsf(v))`). For finite values |x| orders
// like its bits without the sign, which keeps the loop free of branches.
func ggmlAbsMax(x *[ggmlQK]float32) (amax, maxv float32) {
	var best, mb uint32
	for _, v := range x {
		b := math.Float32bits(v)
		if a := b &^ (1 << 31); a > best {
			best, mb = a, b
		}
	}
	return math.Float32frombits(best), math.Float32frombits(mb)
}

// ggmlMinMax returns the smallest and largest element (Q4_1, Q5_1).
func ggmlMinMax(x *[ggmlQK]float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

// ggmlRoundf is C's roundf (half away from zero) converted to int, for
// |f| < 2³¹ (in float64, g ± 0.5 is exact there).
func ggmlRoundf(f float32) int32 {
	g := float64(f)
	return int32(g + math.Copysign(0.5, g))
}

// ggmlFinite reports whether f is neither ±Inf nor NaN.
func ggmlFinite(f float32) bool { return math.Float32bits(f)&0x7f800000 != 0x7f800000 }

// Scale overflow. With finite input, x·id is bounded by the level count
// whenever d and id = 1/d are finite, so the kernels convert with plain
// int32(…). Otherwise (d below 2⁻¹²⁸, so id = ±Inf, or max−min overflowing
// so d = Inf) every x·id is ±Inf or NaN, which the C float→int conversion
// on x86-64 turns into INT_MIN, whose low byte is 0: ggml then stores all
// levels 0, and so do the kernels.

// quantQ8_0 is quantize_row_q8_0_ref: d = amax/127, q = roundf(x·(1/d)).
//
//	for each block: amax = max|x|; d = amax/127; id = d≠0 ? 1/d : 0
//	                store fp16(d); q[j] = int8(roundf(x[j]·id))
func quantQ8_0(dst []byte, src []float32) {
	for ; len(src) >= ggmlQK; src, dst = src[ggmlQK:], dst[34:] {
		x := (*[ggmlQK]float32)(src)
		y := (*[34]byte)(dst)
		amax, _ := ggmlAbsMax(x)
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		ggmlPutF16(y[0:], d)
		if !ggmlFinite(id) {
			clear(y[2:])
			continue
		}
		for j, v := range x {
			y[2+j] = byte(ggmlRoundf(float32(v * id)))
		}
	}
}

func dequantQ8_0(dst []float32, src []byte) {
	for ; len(dst) >= ggmlQK; src, dst = src[34:], dst[ggmlQK:] {
		y := (*[ggmlQK]float32)(dst)
		b := (*[34]byte)(src)
		d := ggmlF16(b[:])
		for j := range y {
			y[j] = float32(int8(b[2+j])) * d
		}
	}
}

// quantQ4_0 is quantize_row_q4_0_ref: the signed absolute maximum maps to
// −8, d = max/−8, q = min(15, trunc(x·(1/d) + 8.5)).
func quantQ4_0(dst []byte, src []float32) {
	for ; len(src) >= ggmlQK; src, dst = src[ggmlQK:], dst[18:] {
		x := (*[ggmlQK]float32)(src)
		y := (*[18]byte)(dst)
		_, maxv := ggmlAbsMax(x)
		d := maxv / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		ggmlPutF16(y[0:], d)
		if !ggmlFinite(id) {
			clear(y[2:])
			continue
		}
		for j := range 16 {
			q0 := min(15, int32(float32(x[j]*id)+8.5))
			q1 := min(15, int32(float32(x[j+16]*id)+8.5))
			y[2+j] = byte(q0) | byte(q1)<<4
		}
	}
}

func dequantQ4_0(dst []float32, src []byte) {
	for ; len(dst) >= ggmlQK; src, dst = src[18:], dst[ggmlQK:] {
		y := (*[ggmlQK]float32)(dst)
		x := (*[18]byte)(src)
		d := ggmlF16(x[:])
		for j := range 16 {
			b := x[2+j]
			y[j] = float32(int32(b&15)-8) * d
			y[j+16] = float32(int32(b>>4)-8) * d
		}
	}
}

// quantQ4_1 is quantize_row_q4_1_ref: d = (max−min)/15, m = min,
// q = min(15, trunc((x−min)·(1/d) + 0.5)).
func quantQ4_1(dst []byte, src []float32) {
	for ; len(src) >= ggmlQK; src, dst = src[ggmlQK:], dst[20:] {
		x := (*[ggmlQK]float32)(src)
		y := (*[20]byte)(dst)
		lo, hi := ggmlMinMax(x)
		d := (hi - lo) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		ggmlPutF16(y[0:], d)
		ggmlPutF16(y[2:], lo)
		if !ggmlFinite(d) || !ggmlFinite(id) {
			clear(y[4:])
			continue
		}
		for j := range 16 {
			q0 := min(15, int32(float32((x[j]-lo)*id)+0.5))
			q1 := min(15, int32(float32((x[j+16]-lo)*id)+0.5))
			y[4+j] = byte(q0) | byte(q1)<<4
		}
	}
}

func dequantQ4_1(dst []float32, src []byte) {
	for ; len(dst) >= ggmlQK; src, dst = src[20:], dst[ggmlQK:] {
		y := (*[ggmlQK]float32)(dst)
		x := (*[20]byte)(src)
		d, m := ggmlF16(x[:]), ggmlF16(x[2:])
		for j := range 16 {
			b := x[4+j]
			y[j] = float32(float32(b&15)*d) + m
			y[j+16] = float32(float32(b>>4)*d) + m
		}
	}
}

// quantQ5_0 is quantize_row_q5_0_ref: as Q4_0 with 32 levels, d = max/−16,
// q = min(31, trunc(x·(1/d) + 16.5)); the fifth bits go to qh.
func quantQ5_0(dst []byte, src []float32) {
	for ; len(src) >= ggmlQK; src, dst = src[ggmlQK:], dst[22:] {
		x := (*[ggmlQK]float32)(src)
		y := (*[22]byte)(dst)
		_, maxv := ggmlAbsMax(x)
		d := maxv / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		ggmlPutF16(y[0:], d)
		if !ggmlFinite(id) {
			clear(y[2:])
			continue
		}
		var qh uint32
		for j := range 16 {
			q0 := uint8(min(31, int32(float32(x[j]*id)+16.5)))
			q1 := uint8(min(31, int32(float32(x[j+16]*id)+16.5)))
			y[6+j] = q0&15 | (q1&15)<<4
			qh |= uint32(q0&16)>>4<<j | uint32(q1&16)>>4<<(j+16)
		}
		binary.LittleEndian.PutUint32(y[2:], qh)
	}
}

func dequantQ5_0(dst []float32, src []byte) {
	for ; len(dst) >= ggmlQK; src, dst = src[22:], dst[ggmlQK:] {
		y := (*[ggmlQK]float32)(dst)
		x := (*[22]byte)(src)
		d := ggmlF16(x[:])
		qh := binary.LittleEndian.Uint32(x[2:])
		for j := range 16 {
			b := x[6+j]
			h0 := int32((qh>>j)&1) << 4
			h1 := int32((qh>>(j+16))&1) << 4
			y[j] = float32((int32(b&15)|h0)-16) * d
			y[j+16] = float32((int32(b>>4)|h1)-16) * d
		}
	}
}

// quantQ5_1 is quantize_row_q5_1_ref: as Q4_1 with 32 levels,
// q = trunc((x−min)·(1/d) + 0.5) (no clamp in ggml).
func quantQ5_1(dst []byte, src []float32) {
	for ; len(src) >= ggmlQK; src, dst = src[ggmlQK:], dst[24:] {
		x := (*[ggmlQK]float32)(src)
		y := (*[24]byte)(dst)
		lo, hi := ggmlMinMax(x)
		d := (hi - lo) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		ggmlPutF16(y[0:], d)
		ggmlPutF16(y[2:], lo)
		if !ggmlFinite(d) || !ggmlFinite(id) {
			clear(y[4:])
			continue
		}
		var qh uint32
		for j := range 16 {
			q0 := uint8(int32(float32((x[j]-lo)*id) + 0.5))
			q1 := uint8(int32(float32((x[j+16]-lo)*id) + 0.5))
			y[8+j] = q0&15 | (q1&15)<<4
			qh |= uint32(q0&16)>>4<<j | uint32(q1&16)>>4<<(j+16)
		}
		binary.LittleEndian.PutUint32(y[4:], qh)
	}
}

func dequantQ5_1(dst []float32, src []byte) {
	for ; len(dst) >= ggmlQK; src, dst = src[24:], dst[ggmlQK:] {
		y := (*[ggmlQK]float32)(dst)
		x := (*[24]byte)(src)
		d, m := ggmlF16(x[:]), ggmlF16(x[2:])
		qh := binary.LittleEndian.Uint32(x[4:])
		for j := range 16 {
			b := x[8+j]
			q0 := uint32(b&15) | ((qh>>j)&1)<<4
			q1 := uint32(b>>4) | ((qh>>(j+16))&1)<<4
			y[j] = float32(float32(q0)*d) + m
			y[j+16] = float32(float32(q1)*d) + m
		}
	}
}
