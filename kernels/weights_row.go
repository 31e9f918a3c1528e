package kernels

import "fmt"

// RowMatrix is an N×K weight in a storage type this package does not know,
// seen through a row decoder that another package provides (llama views
// the ggml K-quants, Q4_1, Q5_* and IQ4_NL this way). Tile and the skinny
// product (MatVecT, GemvT) call the decoder for one row range at a time,
// so neither ever needs more than a few rows decoded at once.
type RowMatrix struct {
	n, k   int
	stored int
	decode func(dst []float32, row, k0, k1 int)
}

// NewRowMatrix returns the N×K matrix whose row r, columns [k0, k1), decode
// writes to dst[:k1-k0]. decode is called with 0 ≤ row < n and
// 0 ≤ k0 < k1 ≤ k, from several goroutines at once; in MatMulT's tiles and
// MatVecT's passes k0 is a multiple of TileK (256) and k1 either one too or
// k, but Tile forwards whatever range its caller asks for. storedBytes is the
// size of the stored data (reported by StoredBytes, for bandwidth figures).
func NewRowMatrix(n, k, storedBytes int, decode func(dst []float32, row, k0, k1 int)) (*RowMatrix, error) {
	if _, err := checkDims("row matrix", n, k); err != nil {
		return nil, err
	}
	if decode == nil || storedBytes < 0 {
		return nil, fmt.Errorf("kernels: row matrix: no decoder or negative size: %w", ErrWeightShape)
	}
	return &RowMatrix{n: n, k: k, stored: storedBytes, decode: decode}, nil
}

// Rows returns N.
func (m *RowMatrix) Rows() int { return m.n }

// Cols returns K.
func (m *RowMatrix) Cols() int { return m.k }

// StoredBytes returns the size given to NewRowMatrix.
func (m *RowMatrix) StoredBytes() int { return m.stored }

// Tile writes B[n0:n1, k0:k1] to dst, row-major with stride k1-k0.
func (m *RowMatrix) Tile(dst []float32, n0, n1, k0, k1 int) { tileRows(m, dst, n0, n1, k0, k1) }

func (m *RowMatrix) decodeRow(dst []float32, r, k0, k1 int, _ feature) {
	m.decode(dst[:k1-k0], r, k0, k1)
}
