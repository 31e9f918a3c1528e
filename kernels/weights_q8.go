package kernels

import (
	"encoding/binary"
	"math"
)

// ggml's legacy 32-element block types (GGUF-LLAMACPP.md §3), the layout
// llama.cpp stores a [n, k] weight in: each row is k/32 consecutive blocks.
//
//	Q8_0  34 B: d fp16, qs[32] int8          x = float32(q)·d
//	Q4_0  18 B: d fp16, qs[16]               x = float32(q−8)·d
//	            byte j: low nibble element j, high nibble element j+16

// ggmlQK is the number of elements of a legacy ggml block.
const ggmlQK = 32

const (
	q8_0Bytes = 34
	q4_0Bytes = 18
)

// Q8_0Matrix is an N×K weight in ggml's Q8_0 format.
type Q8_0Matrix struct{ ggmlMatrix }

// Q4_0Matrix is an N×K weight in ggml's Q4_0 format.
type Q4_0Matrix struct{ ggmlMatrix }

// NewQ8_0Matrix wraps data (n·k/32 blocks of 34 bytes) without copying
// it; k must be a multiple of 32.
func NewQ8_0Matrix(data []byte, n, k int) (*Q8_0Matrix, error) {
	g, err := newGGMLMatrix("Q8_0 matrix", data, n, k, q8_0Bytes)
	if err != nil {
		return nil, err
	}
	return &Q8_0Matrix{g}, nil
}

// NewQ4_0Matrix wraps data (n·k/32 blocks of 18 bytes) without copying
// it; k must be a multiple of 32.
func NewQ4_0Matrix(data []byte, n, k int) (*Q4_0Matrix, error) {
	g, err := newGGMLMatrix("Q4_0 matrix", data, n, k, q4_0Bytes)
	if err != nil {
		return nil, err
	}
	return &Q4_0Matrix{g}, nil
}

// ggmlMatrix holds what the block types share.
type ggmlMatrix struct {
	data     []byte
	n, k     int
	rowBytes int
}

func newGGMLMatrix(what string, data []byte, n, k, blockBytes int) (ggmlMatrix, error) {
	if _, err := checkDims(what, n, k); err != nil {
		return ggmlMatrix{}, err
	}
	if k%ggmlQK != 0 {
		return ggmlMatrix{}, sizeError(what, "K (a multiple of 32)", k, k&^(ggmlQK-1))
	}
	rb := k / ggmlQK * blockBytes
	if n != 0 && rb > maxInt/n || len(data) != n*rb {
		return ggmlMatrix{}, sizeError(what, "data", len(data), n*rb)
	}
	return ggmlMatrix{data: data, n: n, k: k, rowBytes: rb}, nil
}

// Rows returns N.
func (m *ggmlMatrix) Rows() int { return m.n }

// Cols returns K.
func (m *ggmlMatrix) Cols() int { return m.k }

// StoredBytes returns the size of the blocks.
func (m *ggmlMatrix) StoredBytes() int { return len(m.data) }

// Tile writes B[n0:n1, k0:k1] to dst, row-major with stride k1-k0.
func (m *Q8_0Matrix) Tile(dst []float32, n0, n1, k0, k1 int) { tileRows(m, dst, n0, n1, k0, k1) }

// Tile writes B[n0:n1, k0:k1] to dst, row-major with stride k1-k0.
func (m *Q4_0Matrix) Tile(dst []float32, n0, n1, k0, k1 int) { tileRows(m, dst, n0, n1, k0, k1) }

func (m *Q8_0Matrix) decodeRow(dst []float32, r, k0, k1 int, lvl feature) {
	ggmlRange(dst, m.data[r*m.rowBytes:(r+1)*m.rowBytes], k0, k1, q8_0Bytes, q8_0Blocks, lvl)
}

func (m *Q4_0Matrix) decodeRow(dst []float32, r, k0, k1 int, lvl feature) {
	ggmlRange(dst, m.data[r*m.rowBytes:(r+1)*m.rowBytes], k0, k1, q4_0Bytes, q4_0Blocks, lvl)
}

func (m *ggmlMatrix) rowSpan(r, k0, k1 int) []byte {
	bb := m.rowBytes / (m.k / ggmlQK)
	return m.data[r*m.rowBytes+k0/ggmlQK*bb : r*m.rowBytes+(k1+ggmlQK-1)/ggmlQK*bb]
}

// ggmlRange decodes elements [k0, k1) of one row of blocks: whole blocks
// straight into dst, a block cut by k0 or k1 through a small buffer.
func ggmlRange(dst []float32, row []byte, k0, k1, blockBytes int, blocks func(dst []float32, src []byte, lvl feature), lvl feature) {
	dst = dst[:k1-k0]
	for k0 < k1 {
		b := k0 / ggmlQK
		off := k0 - b*ggmlQK
		if nb := (k1 - k0) / ggmlQK; off == 0 && nb > 0 {
			blocks(dst[:nb*ggmlQK], row[b*blockBytes:(b+nb)*blockBytes], lvl)
			dst = dst[nb*ggmlQK:]
			k0 += nb * ggmlQK
			continue
		}
		var tmp [ggmlQK]float32
		blocks(tmp[:], row[b*blockBytes:(b+1)*blockBytes], lvl)
		c := copy(dst, tmp[off:])
		dst = dst[c:]
		k0 += c
	}
}

// ggmlScale reads a block's fp16 scale.
func ggmlScale(b []byte) float32 {
	return math.Float32frombits(f16Bits(binary.LittleEndian.Uint16(b)))
}

// q8_0BlocksGeneric decodes len(dst)/32 Q8_0 blocks.
//
//	dst[32b+j] = float32(int8(qs[j])) * d   (one rounding)
func q8_0BlocksGeneric(dst []float32, src []byte) {
	for ; len(dst) >= ggmlQK; dst, src = dst[ggmlQK:], src[q8_0Bytes:] {
		y := (*[ggmlQK]float32)(dst)
		x := (*[q8_0Bytes]byte)(src)
		d := ggmlScale(x[:])
		for j := range y {
			y[j] = float32(int8(x[2+j])) * d
		}
	}
}

// q4_0BlocksGeneric decodes len(dst)/32 Q4_0 blocks.
//
//	dst[32b+j] = float32(lo(qs[j])-8) * d, dst[32b+j+16] = float32(hi(qs[j])-8) * d
func q4_0BlocksGeneric(dst []float32, src []byte) {
	for ; len(dst) >= ggmlQK; dst, src = dst[ggmlQK:], src[q4_0Bytes:] {
		y := (*[ggmlQK]float32)(dst)
		x := (*[q4_0Bytes]byte)(src)
		d := ggmlScale(x[:])
		for j := range 16 {
			q := x[2+j]
			y[j] = float32(int32(q&15)-8) * d
			y[j+16] = float32(int32(q>>4)-8) * d
		}
	}
}
