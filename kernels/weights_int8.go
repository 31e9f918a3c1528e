package kernels

// LLM.int8() row-wise weights (bitsandbytes Int8Params, `load_in_8bit`):
// CB int8 [n, k] and one float32 SCB per row; the dequantized value is
// float32(float32(CB·SCB[r]) · float32(1/127)), two roundings, as
// bitsandbytes' int8_vectorwise_dequant and quantize.DequantizeInt8Rows
// compute it.

// int8Inv127 is float32(1/127).
const int8Inv127 = float32(1.0 / 127)

// Int8RowMatrix is an N×K weight in LLM.int8() row-wise format.
type Int8RowMatrix struct {
	cb   []byte
	scb  []float32
	n, k int
}

// NewInt8RowMatrix wraps CB (n·k int8 codes as stored bytes, row-major)
// and SCB (n row scales) without copying them.
func NewInt8RowMatrix(cb []byte, scb []float32, n, k int) (*Int8RowMatrix, error) {
	const what = "int8 row matrix"
	nk, err := checkDims(what, n, k)
	if err != nil {
		return nil, err
	}
	if len(cb) != nk {
		return nil, sizeError(what, "CB", len(cb), nk)
	}
	if len(scb) != n {
		return nil, sizeError(what, "SCB", len(scb), n)
	}
	return &Int8RowMatrix{cb: cb, scb: scb, n: n, k: k}, nil
}

// Rows returns N.
func (m *Int8RowMatrix) Rows() int { return m.n }

// Cols returns K.
func (m *Int8RowMatrix) Cols() int { return m.k }

// StoredBytes returns N·K plus 4·N.
func (m *Int8RowMatrix) StoredBytes() int { return len(m.cb) + 4*len(m.scb) }

// Tile writes B[n0:n1, k0:k1] to dst, row-major with stride k1-k0.
func (m *Int8RowMatrix) Tile(dst []float32, n0, n1, k0, k1 int) { tileRows(m, dst, n0, n1, k0, k1) }

func (m *Int8RowMatrix) decodeRow(dst []float32, r, k0, k1 int, lvl feature) {
	o := r * m.k
	int8Row(dst[:k1-k0], m.cb[o+k0:o+k1], m.scb[r], lvl)
}

// int8RowGeneric is the reference of int8Row.
//
//	dst[i] = float32(float32(int8(q[i]))*scale) * int8Inv127
func (m *Int8RowMatrix) rowSpan(r, k0, k1 int) []byte { return m.cb[r*m.k+k0 : r*m.k+k1] }

func int8RowGeneric(dst []float32, q []byte, scale float32) {
	q = q[:len(dst)]
	for i, c := range q {
		dst[i] = float32(float32(int8(c))*scale) * int8Inv127
	}
}
