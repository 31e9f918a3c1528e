package kernels

import (
	"fmt"
	"math"
)

// bitsandbytes 4-bit weights (NF4-BITSANDBYTES.md §1–3): the N×K weight
// is flattened row-major and cut into blocks of `blocksize` consecutive
// values (64 in every Hugging Face checkpoint) that ignore row boundaries,
// so a block may straddle two rows when K is not a multiple of the block
// size. Two codes per byte, element 2j in the HIGH nibble. Dequantization
// is one float32 product, y = table[code]·absmax[block].

// FourBitKind names a bitsandbytes 4-bit data type.
type FourBitKind int

const (
	// NF4 is 4-bit NormalFloat.
	NF4 FourBitKind = iota
	// FP4 is bitsandbytes' 4-bit float (sign, 2 exponent bits, 1 mantissa bit).
	FP4
)

// String returns "nf4" or "fp4".
func (k FourBitKind) String() string {
	switch k {
	case NF4:
		return "nf4"
	case FP4:
		return "fp4"
	}
	return fmt.Sprintf("FourBitKind(%d)", int(k))
}

// fourBitTables are the dequantization tables as float32 bit patterns, as
// the CUDA kernels multiply by them: NF4 as in get_4bit_type("nf4"); FP4
// in bit-pattern order with code 8 as -0.0 (lut[0]·-1 on the GPU, which
// quantize.Dequantize4Bit reproduces).
var fourBitTables = func() [2][16]float32 {
	bits := [2][16]uint32{
		{
			0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
			0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000,
		},
		{
			0x00000000, 0x3baaaaab, 0x3f2aaaab, 0x3f800000, 0x3eaaaaab, 0x3f000000, 0x3e2aaaab, 0x3e800000,
			0x80000000, 0xbbaaaaab, 0xbf2aaaab, 0xbf800000, 0xbeaaaaab, 0xbf000000, 0xbe2aaaab, 0xbe800000,
		},
	}
	var t [2][16]float32
	for k := range bits {
		for c, b := range bits[k] {
			t[k][c] = math.Float32frombits(b)
		}
	}
	return t
}()

// FourBitMatrix is an N×K weight in bitsandbytes' NF4 or FP4 format.
type FourBitMatrix struct {
	kind     FourBitKind
	packed   []byte
	absmax   []float32
	n, k, bs int
	table    *[16]float32
}

// NewFourBitMatrix wraps the packed codes ((n·k+1)/2 bytes, the stored
// `weight` tensor) and the float32 absmax of each block (ceil(n·k /
// blocksize) values) without copying them. With double quantization the
// caller reconstructs absmax once (quantize.DoubleQuant.Absmax; the vector
// is small) and passes the result. blocksize 0 means 64; otherwise a power
// of two in 32..4096.
func NewFourBitMatrix(kind FourBitKind, packed []byte, absmax []float32, n, k, blocksize int) (*FourBitMatrix, error) {
	const what = "4-bit matrix"
	if kind != NF4 && kind != FP4 {
		return nil, fmt.Errorf("kernels: %s: unknown kind %v: %w", what, kind, ErrWeightShape)
	}
	if blocksize == 0 {
		blocksize = 64
	}
	if blocksize < 32 || blocksize > 4096 || blocksize&(blocksize-1) != 0 {
		return nil, fmt.Errorf("kernels: %s: blocksize %d (want a power of two in 32..4096): %w", what, blocksize, ErrWeightShape)
	}
	nk, err := checkDims(what, n, k)
	if err != nil {
		return nil, err
	}
	if len(packed) != (nk+1)/2 {
		return nil, sizeError(what, "packed", len(packed), (nk+1)/2)
	}
	if nb := (nk + blocksize - 1) / blocksize; len(absmax) != nb {
		return nil, sizeError(what, "absmax", len(absmax), nb)
	}
	return &FourBitMatrix{
		kind: kind, packed: packed, absmax: absmax,
		n: n, k: k, bs: blocksize,
		table: &fourBitTables[kind],
	}, nil
}

// Kind returns NF4 or FP4.
func (m *FourBitMatrix) Kind() FourBitKind { return m.kind }

// Blocksize returns the number of values per absmax.
func (m *FourBitMatrix) Blocksize() int { return m.bs }

// Rows returns N.
func (m *FourBitMatrix) Rows() int { return m.n }

// Cols returns K.
func (m *FourBitMatrix) Cols() int { return m.k }

// StoredBytes returns the packed codes plus the float32 absmax vector.
func (m *FourBitMatrix) StoredBytes() int { return len(m.packed) + 4*len(m.absmax) }

// Tile writes B[n0:n1, k0:k1] to dst, row-major with stride k1-k0.
func (m *FourBitMatrix) Tile(dst []float32, n0, n1, k0, k1 int) { tileRows(m, dst, n0, n1, k0, k1) }

// decodeRow decodes the flat range [r·K+k0, r·K+k1): runs of whole blocks
// go to the block kernel, a block cut by the range (or by the end of the
// tensor) is decoded through its 16-entry product table.
func (m *FourBitMatrix) decodeRow(dst []float32, r, k0, k1 int, lvl feature) {
	e0 := r*m.k + k0
	e, e1 := e0, r*m.k+k1
	bs := m.bs
	for e < e1 {
		b := e / bs
		lo := b * bs
		if nb := (e1 - e) / bs; e == lo && nb > 0 {
			fourBitBlocks(dst[e-e0:e-e0+nb*bs], m.packed[e/2:(e+nb*bs)/2], m.absmax[b:b+nb], m.table, bs, lvl)
			e += nb * bs
			continue
		}
		end := min(lo+bs, e1)
		var lut [16]float32
		fourBitLUT(&lut, m.table, m.absmax[b])
		fourBitSpan(dst[e-e0:end-e0], m.packed, e, &lut)
		e = end
	}
}

func (m *FourBitMatrix) rowSpan(r, k0, k1 int) []byte {
	return m.packed[(r*m.k+k0)/2 : (r*m.k+k1+1)/2]
}

// fourBitLUT writes the per-block product table lut[c] = table[c]·absmax
// (a float32 product, as bitsandbytes computes each value).
func fourBitLUT(lut, table *[16]float32, absmax float32) {
	for c, v := range table {
		lut[c] = v * absmax
	}
}

// fourBitSpan decodes the flat elements [e, e+len(dst)) through lut; e may
// be odd (the value then sits in a low nibble).
func fourBitSpan(dst []float32, packed []byte, e int, lut *[16]float32) {
	if len(dst) == 0 {
		return
	}
	if e&1 == 1 {
		dst[0] = lut[packed[e/2]&15]
		dst = dst[1:]
		e++
	}
	np := len(dst) / 2
	fourBitPairs(dst[:2*np], packed[e/2:e/2+np], lut)
	if len(dst)&1 == 1 {
		dst[len(dst)-1] = lut[packed[e/2+np]>>4]
	}
}

// fourBitPairs expands bytes to two values each.
//
//	dst[2j], dst[2j+1] = lut[src[j]>>4], lut[src[j]&15]
func fourBitPairs(dst []float32, src []byte, lut *[16]float32) {
	dst = dst[:2*len(src)]
	for j, q := range src {
		dst[2*j] = lut[q>>4]
		dst[2*j+1] = lut[q&15]
	}
}

// fourBitBlocksGeneric decodes len(absmax) whole blocks of bs values.
func fourBitBlocksGeneric(dst []float32, packed []byte, absmax []float32, table *[16]float32, bs int) {
	var lut [16]float32
	for b, a := range absmax {
		fourBitLUT(&lut, table, a)
		fourBitPairs(dst[b*bs:(b+1)*bs], packed[b*bs/2:(b+1)*bs/2], &lut)
	}
}
