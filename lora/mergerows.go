package lora

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/kernels"
)

// Row-level steps of a merge, shared by the streaming and the
// whole-tensor paths so that both write the same bytes and report the
// same numbers. One output row is combined, encoded and measured while it
// is in cache, the float32 work done by bulk kernels (package kernels'
// AVX-512/AVX2 loops where the CPU has them):
//
//   - combineRow: W' = W + Σ_t float32(s_t·d_t) with kernels.Scale (one
//     rounded multiply per value) and kernels.Add (one rounded add), the
//     operations and order of llama-export-lora's graph (delta.go), so
//     the bits do not depend on the kernels level;
//   - sumSq: the report's squared norms, in float64 in Go (the same
//     numbers at every kernels level);
//   - rowDiff: ‖Q(W+Δ) − Q(W)‖² and the count of changed values.

// sumSq returns Σ v[i]² in float64 (each square is exact there) with
// four partial sums in a fixed order: the same on every CPU and kernels
// level, as the report must be.
func sumSq(v []float32) float64 {
	var s0, s1, s2, s3 float64
	for len(v) >= 8 {
		c := v[:8:8]
		a0, a1, a2, a3 := float64(c[0]), float64(c[1]), float64(c[2]), float64(c[3])
		s0 += a0 * a0
		s1 += a1 * a1
		s2 += a2 * a2
		s3 += a3 * a3
		a0, a1, a2, a3 = float64(c[4]), float64(c[5]), float64(c[6]), float64(c[7])
		s0 += a0 * a0
		s1 += a1 * a1
		s2 += a2 * a2
		s3 += a3 * a3
		v = v[8:]
	}
	for _, x := range v {
		a := float64(x)
		s0 += a * a
	}
	return (s0 + s1) + (s2 + s3)
}

// combineRow sets out = w + Σ_t float32(terms[t].scale · d_t), the
// adapters in order, where d_t = tiles[t*stride+off:][:len(w)] is this row of
// adapter t's B·A (scaled in place). It returns ‖w‖² and ‖Σ_t s_t·d_t‖²
// (the update before it is added; with several adapters summed per value
// in float64, in dsum's room, before squaring).
func combineRow(out, w, tiles []float32, off, stride int, terms []term, dsum []float64) (wsq, dsq float64) {
	cols := len(w)
	out = out[:cols]
	wsq = sumSq(w)
	if len(terms) == 1 {
		d := tiles[off : off+cols]
		kernels.Scale(d, terms[0].scale) // ggml_scale: s·d rounded before the add
		kernels.Add(out, w, d)
		return wsq, sumSq(d)
	}
	copy(out, w)
	dsum = dsum[:cols]
	clear(dsum)
	for t := range terms {
		d := tiles[t*stride+off:][:cols]
		kernels.Scale(d, terms[t].scale)
		kernels.Add(out, out, d)
		for j, v := range d {
			dsum[j] += float64(v)
		}
	}
	for _, v := range dsum {
		dsq += v * v
	}
	return wsq, dsq
}

// rowDiff returns Σ (y[i] − x[i])² and how many y[i] differ from x[i] bit
// for bit; y is overwritten with y − x.
func rowDiff(y, x []float32) (float64, int64) {
	y = y[:len(x)]
	changed := countChanged(y, x)
	kernels.Axpy(y, -1, x) // y − x, rounded once (an FMA or a subtraction: the same)
	if changed == 0 {
		// Every difference is 0, or NaN where a value is not finite.
		return float64(kernels.Dot(y, y)), 0
	}
	return sumSq(y), changed
}

// countChanged counts the i where a[i] and b[i] differ bit for bit, two
// values per 64-bit word where both slices allow it: a 32-bit lane of
// t = a^b is non-zero exactly when its low 31 bits plus 0x7fffffff carry
// into bit 31, or bit 31 is set. len(a) must be below 2^32.
func countChanged(a, b []float32) int64 {
	b = b[:len(a)]
	var n int64
	if len(a) > 0 && uintptr(unsafe.Pointer(&a[0]))%8 != 0 && uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		if math.Float32bits(a[0]) != math.Float32bits(b[0]) {
			n++
		}
		a, b = a[1:], b[1:]
	}
	i := 0
	if len(a) >= 2 && uintptr(unsafe.Pointer(&a[0]))%8 == 0 && uintptr(unsafe.Pointer(&b[0]))%8 == 0 {
		wa := unsafe.Slice((*uint64)(unsafe.Pointer(&a[0])), len(a)/2)
		wb := unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), len(wa))
		const low, high = 0x7fffffff_7fffffff, 0x80000000_80000000
		var acc uint64 // a count in each 32-bit half
		k := 0
		for ; k+4 <= len(wa); k += 4 {
			t0, t1, t2, t3 := wa[k]^wb[k], wa[k+1]^wb[k+1], wa[k+2]^wb[k+2], wa[k+3]^wb[k+3]
			acc += ((t0&low+low)|t0)&high>>31 + ((t1&low+low)|t1)&high>>31 +
				((t2&low+low)|t2)&high>>31 + ((t3&low+low)|t3)&high>>31
		}
		n += int64(acc&0xffffffff) + int64(acc>>32)
		i = 2 * k
	}
	for ; i < len(a); i++ {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			n++
		}
	}
	return n
}

// littleEndian: float32 values are stored as the file stores them.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// decodeRow widens one row of a float or ggml dtype into dst (aligned F32
// on a little-endian machine by a plain copy).
func decodeRow(dst []float32, raw []byte, d formats.DType) error {
	if d == formats.F32 && littleEndian && uintptr(unsafe.Pointer(unsafe.SliceData(raw)))%4 == 0 {
		copy(dst[:len(raw)/4], unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(raw))), len(raw)/4))
		return nil
	}
	return decodeFloats(dst, raw, d)
}

// encodeRow stores y as F32, F16 or BF16 little-endian bytes.
func encodeRow(out []byte, y []float32, d formats.DType) {
	if d == formats.F32 && littleEndian {
		copy(out[:4*len(y)], unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(y))), 4*len(y)))
		return
	}
	encodeFloatSerial(out, y, d)
}
