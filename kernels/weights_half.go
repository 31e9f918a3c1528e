package kernels

// 16-bit float weights: safetensors F16 / BF16 and GGUF F16 / BF16
// tensors, little-endian, row-major.

// F16Matrix is an N×K weight stored as IEEE binary16.
type F16Matrix struct {
	data []byte
	n, k int
}

// NewF16Matrix wraps data (2·n·k bytes, little-endian binary16, row-major)
// without copying it.
func NewF16Matrix(data []byte, n, k int) (*F16Matrix, error) {
	nk, err := checkDims("f16 matrix", n, k)
	if err != nil {
		return nil, err
	}
	if len(data) != 2*nk {
		return nil, sizeError("f16 matrix", "data", len(data), 2*nk)
	}
	return &F16Matrix{data: data, n: n, k: k}, nil
}

// Rows returns N.
func (m *F16Matrix) Rows() int { return m.n }

// Cols returns K.
func (m *F16Matrix) Cols() int { return m.k }

// StoredBytes returns 2·N·K.
func (m *F16Matrix) StoredBytes() int { return len(m.data) }

// Tile writes B[n0:n1, k0:k1] to dst, row-major with stride k1-k0.
func (m *F16Matrix) Tile(dst []float32, n0, n1, k0, k1 int) { tileRows(m, dst, n0, n1, k0, k1) }

func (m *F16Matrix) decodeRow(dst []float32, r, k0, k1 int, lvl feature) {
	o := r * m.k
	f16BytesToF32At(dst[:k1-k0], m.data[2*(o+k0):2*(o+k1)], lvl)
}

func (m *F16Matrix) rowSpan(r, k0, k1 int) []byte { return m.data[2*(r*m.k+k0) : 2*(r*m.k+k1)] }

// BF16Matrix is an N×K weight stored as bfloat16.
type BF16Matrix struct {
	data []byte
	n, k int
}

// NewBF16Matrix wraps data (2·n·k bytes, little-endian bfloat16,
// row-major) without copying it.
func NewBF16Matrix(data []byte, n, k int) (*BF16Matrix, error) {
	nk, err := checkDims("bf16 matrix", n, k)
	if err != nil {
		return nil, err
	}
	if len(data) != 2*nk {
		return nil, sizeError("bf16 matrix", "data", len(data), 2*nk)
	}
	return &BF16Matrix{data: data, n: n, k: k}, nil
}

// Rows returns N.
func (m *BF16Matrix) Rows() int { return m.n }

// Cols returns K.
func (m *BF16Matrix) Cols() int { return m.k }

// StoredBytes returns 2·N·K.
func (m *BF16Matrix) StoredBytes() int { return len(m.data) }

// Tile writes B[n0:n1, k0:k1] to dst, row-major with stride k1-k0.
func (m *BF16Matrix) Tile(dst []float32, n0, n1, k0, k1 int) { tileRows(m, dst, n0, n1, k0, k1) }

func (m *BF16Matrix) decodeRow(dst []float32, r, k0, k1 int, lvl feature) {
	o := r * m.k
	bf16BytesToF32At(dst[:k1-k0], m.data[2*(o+k0):2*(o+k1)], lvl)
}

func (m *BF16Matrix) rowSpan(r, k0, k1 int) []byte { return m.data[2*(r*m.k+k0) : 2*(r*m.k+k1)] }
