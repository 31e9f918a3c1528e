package quantize

import "encoding/binary"

// The 256-element K-quant super-blocks (GGUF-LLAMACPP.md §3) with ggml's
// reference quantizers quantize_row_q{4,5,6}_K_ref, which quantize_q*_K
// (what llama-quantize calls) runs when there is no importance matrix.
// Layouts, little-endian:
//
//	Q4_K 144 B: d fp16, dmin fp16, scales[12], qs[128]
//	Q5_K 176 B: d fp16, dmin fp16, scales[12], qh[32], qs[128]
//	Q6_K 210 B: ql[128], qh[64], scales[16] int8, d fp16
//
// Q4_K/Q5_K hold eight 32-element sub-blocks, each with a 6-bit scale and a
// 6-bit min packed in scales[12] (scaleMinK4); x = d·sc·q − dmin·m. Q6_K holds
// sixteen 16-element groups with int8 scales; x = d·sc·(q − 32).

const (
	ggmlQKK = 256
	// ggmlGroupMaxEps is ggml's GROUP_MAX_EPS: a group whose absolute maximum
	// is below it counts as all zero.
	ggmlGroupMaxEps = 1e-15
)

// scaleMinK4 is get_scale_min_k4: sub-block j's 6-bit scale and min.
func scaleMinK4(j int, q *[12]byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xF | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// packScalesK4 stores eight 6-bit (scale, min) pairs the way scaleMinK4
// reads them.
func packScalesK4(q *[12]byte, ls, lm *[8]uint8) {
	for j := range 8 {
		if j < 4 {
			q[j] = ls[j]
			q[j+4] = lm[j]
		} else {
			q[j+4] = ls[j]&0xF | (lm[j]&0xF)<<4
			q[j-4] |= (ls[j] >> 4) << 6
			q[j] |= (lm[j] >> 4) << 6
		}
	}
}

// ggmlClamp is MAX(lo, MIN(hi, v)).
func ggmlClamp(v, lo, hi int32) int32 { return max(lo, min(hi, v)) }

// makeQKX2 is make_qkx2_quants with use_mad = false for one 32-element
// sub-block: an asymmetric fit x ≈ scale·L + min (min ≤ 0) with weighted
// least squares over nstep+1 trial scales (rmin + rdelta·is + nmax)/(max−min).
// It returns the scale and −min, with the levels in l; laux is scratch. As
// in ggml, an accepted trial moves min, and later trials use the new one.
func makeQKX2(x, w *[32]float32, nmax int32, l, laux *[32]uint8, rmin, rdelta float32, nstep int) (scale, negMin float32) {
	lo, hi := x[0], x[0]
	sumW := w[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < 32; i++ {
		v := x[i]
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
		sumW += w[i]
		sumX += float32(w[i] * v)
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		*l = [32]uint8{}
		return 0, -lo
	}
	fmax := float32(nmax)
	iscale := fmax / (hi - lo)
	scale = 1 / iscale
	var bestErr float32
	for i, v := range x {
		q := ggmlClamp(ggmlNearestInt(float32(iscale*(v-lo))), 0, nmax)
		l[i] = uint8(q)
		diff := float32(float32(scale*float32(q))+lo) - v
		bestErr += float32(w[i] * float32(diff*diff))
	}
	if nstep < 1 {
		return scale, -lo
	}
	for is := 0; is <= nstep; is++ {
		iscale = (float32(rmin+float32(rdelta*float32(is))) + fmax) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			q := ggmlClamp(ggmlNearestInt(float32(iscale*(v-lo))), 0, nmax)
			laux[i] = uint8(q)
			fq := float32(q)
			wl := float32(w[i] * fq)
			sumL += wl
			sumL2 += float32(wl * fq)
			sumXL += float32(wl * v)
		}
		det := float32(sumW*sumL2) - float32(sumL*sumL)
		if !(det > 0) {
			continue
		}
		thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / det
		thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / det
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		var curErr float32
		for i, v := range x {
			diff := float32(float32(thisScale*float32(laux[i]))+thisMin) - v
			curErr += float32(w[i] * float32(diff*diff))
		}
		if curErr < bestErr {
			*l = *laux
			bestErr = curErr
			scale, lo = thisScale, thisMin
		}
	}
	return scale, -lo
}

// quantKScaleMin is the part Q4_K and Q5_K share: per sub-block weights
// w = sqrt(Σx²/32) + |x|, makeQKX2, the 6-bit scales and mins relative to
// their maxima, d and dmin, and the final levels q = nearest((x + dm)/d)
// clamped to [0, nmax] (sub-blocks whose d is 0 keep makeQKX2's levels).
// It fills hdr (d, dmin, scales: the first 16 bytes of the block) and L.
func quantKScaleMin(x *[ggmlQKK]float32, hdr *[16]byte, lv *[ggmlQKK]uint8, nmax int32, rmin, rdelta float32, nstep int) {
	var w [32]float32
	var laux [32]uint8
	var scales, mins [8]float32
	var maxScale, maxMin float32
	for j := range 8 {
		xs := (*[32]float32)(x[32*j:])
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		avX := ggmlSqrt(sumX2 / 32)
		for i, v := range xs {
			w[i] = avX + ggmlAbs(v)
		}
		scales[j], mins[j] = makeQKX2(xs, &w, nmax, (*[32]uint8)(lv[32*j:]), &laux, rmin, rdelta, nstep)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	var ls, lm [8]uint8
	for j := range 8 {
		ls[j] = min(63, uint8(ggmlNearestInt(float32(invScale*scales[j]))))
		lm[j] = min(63, uint8(ggmlNearestInt(float32(invMin*mins[j]))))
	}
	sc := (*[12]byte)(hdr[4:])
	*sc = [12]byte{}
	packScalesK4(sc, &ls, &lm)
	ggmlPutF16(hdr[0:], maxScale/63)
	ggmlPutF16(hdr[2:], maxMin/63)
	dAll, mAll := ggmlF16(hdr[0:]), ggmlF16(hdr[2:])
	for j := range 8 {
		s, m := scaleMinK4(j, sc)
		d := dAll * float32(s)
		if d == 0 {
			continue
		}
		dm := float32(mAll * float32(m))
		for i, v := range x[32*j : 32*j+32] {
			lv[32*j+i] = uint8(ggmlClamp(ggmlNearestInt((v+dm)/d), 0, nmax))
		}
	}
}

// quantQ4K is quantize_row_q4_K_ref: makeQKX2(nmax 15, rmin −1, rdelta 0.1,
// nstep 20) per sub-block, then nibbles: qs group g (32 bytes) holds
// elements 64g..64g+31 low and 64g+32..64g+63 high.
func quantQ4K(dst []byte, src []float32) {
	var lv [ggmlQKK]uint8
	for ; len(src) >= ggmlQKK; src, dst = src[ggmlQKK:], dst[144:] {
		x := (*[ggmlQKK]float32)(src)
		y := (*[144]byte)(dst)
		quantKScaleMin(x, (*[16]byte)(y[:16]), &lv, 15, -1, 0.1, 20)
		qs := y[16:]
		for g := range 4 {
			for i := range 32 {
				qs[32*g+i] = lv[64*g+i] | lv[64*g+32+i]<<4
			}
		}
	}
}

// dequantQ4K is dequantize_row_q4_K: x = float32(d·sc·q) − dmin·m per
// 32-element sub-block, eight nibbles unpacked at a time.
func dequantQ4K(dst []float32, src []byte) {
	for ; len(dst) >= ggmlQKK; src, dst = src[144:], dst[ggmlQKK:] {
		y := (*[ggmlQKK]float32)(dst)
		b := (*[144]byte)(src)
		d, dmin := ggmlF16(b[0:]), ggmlF16(b[2:])
		sc := (*[12]byte)(b[4:])
		for g := range 4 {
			s1, m1 := scaleMinK4(2*g, sc)
			s2, m2 := scaleMinK4(2*g+1, sc)
			d1, dm1 := d*float32(s1), float32(dmin*float32(m1))
			d2, dm2 := d*float32(s2), float32(dmin*float32(m2))
			qs := (*[32]byte)(b[16+32*g:])
			for i := 0; i < 32; i += 8 {
				v := binary.LittleEndian.Uint64(qs[i:])
				kLanes((*[8]float32)(y[64*g+i:]), d1, dm1, v&lanes0F)
				kLanes((*[8]float32)(y[64*g+32+i:]), d2, dm2, (v>>4)&lanes0F)
			}
		}
	}
}

// kLanes writes float32(d·q) − dm for the eight codes q < 64 in the bytes
// of v (Q4_K and Q5_K levels).
func kLanes(y *[8]float32, d, dm float32, v uint64) {
	l := (*[64]float32)(kLevels[32:])
	y[0] = float32(d*l[v&63]) - dm
	y[1] = float32(d*l[v>>8&63]) - dm
	y[2] = float32(d*l[v>>16&63]) - dm
	y[3] = float32(d*l[v>>24&63]) - dm
	y[4] = float32(d*l[v>>32&63]) - dm
	y[5] = float32(d*l[v>>40&63]) - dm
	y[6] = float32(d*l[v>>48&63]) - dm
	y[7] = float32(d*l[v>>56&63]) - dm
}

// quantQ5K is quantize_row_q5_K_ref: makeQKX2(nmax 31, rmin −0.5, rdelta
// 0.1, nstep 15); low nibbles packed as Q4_K, the fifth bit of element
// 64g+i in qh[i] bit 2g and of 64g+32+i in bit 2g+1.
func quantQ5K(dst []byte, src []float32) {
	var lv [ggmlQKK]uint8
	for ; len(src) >= ggmlQKK; src, dst = src[ggmlQKK:], dst[176:] {
		x := (*[ggmlQKK]float32)(src)
		y := (*[176]byte)(dst)
		quantKScaleMin(x, (*[16]byte)(y[:16]), &lv, 31, -0.5, 0.1, 15)
		qh := (*[32]byte)(y[16:])
		*qh = [32]byte{}
		qs := y[48:]
		for g := range 4 {
			for i := range 32 {
				l1, l2 := lv[64*g+i], lv[64*g+32+i]
				qh[i] |= (l1>>4)<<(2*g) | (l2>>4)<<(2*g+1)
				qs[32*g+i] = l1&15 | (l2&15)<<4
			}
		}
	}
}

// dequantQ5K is dequantize_row_q5_K: Q4_K's arithmetic on 5-bit codes
// whose fifth bit comes from qh, eight codes unpacked at a time.
func dequantQ5K(dst []float32, src []byte) {
	const lanes01 = 0x0101010101010101
	for ; len(dst) >= ggmlQKK; src, dst = src[176:], dst[ggmlQKK:] {
		y := (*[ggmlQKK]float32)(dst)
		b := (*[176]byte)(src)
		d, dmin := ggmlF16(b[0:]), ggmlF16(b[2:])
		sc := (*[12]byte)(b[4:])
		qh := (*[32]byte)(b[16:])
		for g := range 4 {
			s1, m1 := scaleMinK4(2*g, sc)
			s2, m2 := scaleMinK4(2*g+1, sc)
			d1, dm1 := d*float32(s1), float32(dmin*float32(m1))
			d2, dm2 := d*float32(s2), float32(dmin*float32(m2))
			qs := (*[32]byte)(b[48+32*g:])
			for i := 0; i < 32; i += 8 {
				v := binary.LittleEndian.Uint64(qs[i:])
				h := binary.LittleEndian.Uint64(qh[i:]) >> (2 * g)
				kLanes((*[8]float32)(y[64*g+i:]), d1, dm1, v&lanes0F|(h&lanes01)<<4)
				kLanes((*[8]float32)(y[64*g+32+i:]), d2, dm2, (v>>4)&lanes0F|(h>>1&lanes01)<<4)
			}
		}
	}
}

// makeQX is make_qx_quants with rmse_type 1 and no importance weights for
// one 16-element group (nmax = 32): a symmetric fit x ≈ scale·(L − nmax)
// with weights x², trying −(nmax + 0.1·is)/max for is = −9..9. Levels are
// stored offset by nmax.
func makeQX(x *[16]float32, nmax int32, l *[16]uint8) float32 {
	var amax, maxv float32
	for _, v := range x {
		if a := ggmlAbs(v); a > amax {
			amax, maxv = a, v
		}
	}
	if amax < ggmlGroupMaxEps {
		*l = [16]uint8{}
		return 0
	}
	fmax := float32(nmax)
	sums := func(iscale float32, store bool) (sumLX, sumL2 float32) {
		for i, v := range x {
			q := ggmlClamp(ggmlNearestInt(float32(iscale*v)), -nmax, nmax-1)
			if store {
				l[i] = uint8(q + nmax)
			}
			fq := float32(q)
			w := float32(v * v)
			sumLX += float32(float32(w*v) * fq)
			sumL2 += float32(float32(w*fq) * fq)
		}
		return sumLX, sumL2
	}
	iscale := float32(-nmax) / maxv
	sumLX, sumL2 := sums(iscale, true)
	var scale float32
	if sumL2 != 0 {
		scale = sumLX / sumL2
	}
	best := float32(scale * sumLX)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(fmax + float32(0.1*float32(is))) / maxv
		sumLX, sumL2 = sums(iscale, false)
		if sumL2 > 0 && float32(sumLX*sumLX) > float32(best*sumL2) {
			sums(iscale, true)
			scale = sumLX / sumL2
			best = float32(scale * sumLX)
		}
	}
	return scale
}

// quantQ6K is quantize_row_q6_K_ref: makeQX per 16-element group, int8
// scales relative to the signed largest one (−128/max_scale), then
// q = clamp(nearest(x/(d·sc)), −32, 31) + 32 packed into ql/qh.
func quantQ6K(dst []byte, src []float32) {
	var lv [ggmlQKK]uint8
	var scales [16]float32
	for ; len(src) >= ggmlQKK; src, dst = src[ggmlQKK:], dst[210:] {
		x := (*[ggmlQKK]float32)(src)
		y := (*[210]byte)(dst)
		var maxScale, maxAbs float32
		for g := range 16 {
			s := makeQX((*[16]float32)(x[16*g:]), 32, (*[16]uint8)(lv[16*g:]))
			scales[g] = s
			if a := ggmlAbs(s); a > maxAbs {
				maxAbs, maxScale = a, s
			}
		}
		if maxAbs < ggmlGroupMaxEps {
			*y = [210]byte{}
			continue
		}
		iscale := -128 / maxScale
		ggmlPutF16(y[208:], 1/iscale)
		d := ggmlF16(y[208:])
		sc := y[192:208]
		for g := range 16 {
			sc[g] = byte(int8(min(127, ggmlNearestInt(float32(iscale*scales[g])))))
		}
		for g := range 16 {
			dg := d * float32(int8(sc[g]))
			if dg == 0 {
				continue
			}
			for i, v := range x[16*g : 16*g+16] {
				lv[16*g+i] = uint8(ggmlClamp(ggmlNearestInt(v/dg), -32, 31) + 32)
			}
		}
		ql, qh := y[0:128], y[128:192]
		for h := range 2 {
			l := lv[128*h:]
			for i := range 32 {
				q1, q2, q3, q4 := l[i], l[i+32], l[i+64], l[i+96]
				ql[64*h+i] = q1&15 | (q3&15)<<4
				ql[64*h+i+32] = q2&15 | (q4&15)<<4
				qh[32*h+i] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
			}
		}
	}
}

// kLevels[q] is float32(q − 32), the Q6_K level of the 6-bit code q (and,
// from 32 on, float32(q − 32) for the 5- and 4-bit codes of Q5_K and Q4_K,
// which index it at q+32): a table load instead of an int→float conversion.
var kLevels = func() (t [96]float32) {
	for i := range t {
		t[i] = float32(i - 32)
	}
	return t
}()

// Byte-lane masks of the SWAR decoders: eight codes are unpacked at once
// in a uint64.
const (
	lanes0F = 0x0F0F0F0F0F0F0F0F
	lanes03 = 0x0303030303030303
	lanes0C = 0x0C0C0C0C0C0C0C0C
	lanes30 = 0x3030303030303030
)

// dequantQ6K is dequantize_row_q6_K: x = (d·sc)·(q − 32), the product
// d·sc taken once per 16-element group (ggml computes the same float32
// product per element). Element i of half h comes from ql[64h+i] (low
// nibbles for i < 64, high for the rest, ql[64h+i−64]) and two bits of
// qh[32h + i%32] (bit pair i/32); eight codes are unpacked at a time.
func dequantQ6K(dst []float32, src []byte) {
	for ; len(dst) >= ggmlQKK; src, dst = src[210:], dst[ggmlQKK:] {
		b := (*[210]byte)(src)
		d := ggmlF16(b[208:])
		var ds [16]float32
		for g := range ds {
			ds[g] = d * float32(int8(b[192+g]))
		}
		for h := range 2 {
			ql := (*[64]byte)(b[64*h:])
			qh := (*[32]byte)(b[128+32*h:])
			y := (*[128]float32)(dst[128*h:])
			for o := 0; o < 32; o += 8 {
				g := 8*h + o/16
				l1 := binary.LittleEndian.Uint64(ql[o:])
				l2 := binary.LittleEndian.Uint64(ql[32+o:])
				hb := binary.LittleEndian.Uint64(qh[o:])
				q6Lanes((*[8]float32)(y[o:]), ds[g], l1&lanes0F|(hb&lanes03)<<4)
				q6Lanes((*[8]float32)(y[32+o:]), ds[g+2], l2&lanes0F|(hb&lanes0C)<<2)
				q6Lanes((*[8]float32)(y[64+o:]), ds[g+4], (l1>>4)&lanes0F|hb&lanes30)
				q6Lanes((*[8]float32)(y[96+o:]), ds[g+6], (l2>>4)&lanes0F|(hb>>2)&lanes30)
			}
		}
	}
}

// q6Lanes writes s·(q−32) for the eight 6-bit codes q in the bytes of v.
func q6Lanes(y *[8]float32, s float32, v uint64) {
	y[0] = s * kLevels[v&63]
	y[1] = s * kLevels[v>>8&63]
	y[2] = s * kLevels[v>>16&63]
	y[3] = s * kLevels[v>>24&63]
	y[4] = s * kLevels[v>>32&63]
	y[5] = s * kLevels[v>>40&63]
	y[6] = s * kLevels[v>>48&63]
	y[7] = s * kLevels[v>>56&63]
}
