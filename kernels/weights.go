package kernels

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// Frozen weight matrices in their stored formats. Each type wraps the
// stored bytes without copying them (a memory-mapped tensor from
// formats.ByteSource.Bytes works as is) and implements BMatrix: Tile
// dequantizes only the requested rectangle, so MatMulT never needs a full
// float32 (or 16-bit) copy of the weight. GemvT and MatVecT compute skinny
// products (generation, M ≤ 16) straight from the stored blocks.
//
// Every matrix is N×K in the Hugging Face Linear layout [out, in]: row r
// holds the K input weights of output r. The dequantized values are bit for
// bit those of the quantize package's reference dequantizers (the tests
// check it): products are single float32 multiplications, never fused with
// an addition.
//
// The types are safe for concurrent use; they never write to the stored
// bytes.

// ErrWeightShape is returned (wrapped) by the constructors when the stored
// data do not match the stated shape or block size.
var ErrWeightShape = errors.New("kernels: weight data do not match the shape")

// Weights is what every weight type of this package implements: a BMatrix
// that also knows its stored size (for bandwidth figures).
type Weights interface {
	BMatrix
	// StoredBytes is the number of bytes of stored data (codes and
	// scales) that one pass over the whole matrix reads.
	StoredBytes() int
}

// rowDecoder is the internal side of the weight types (and of
// [RowMatrix]): decodeRow writes B[r, k0:k1] to dst[:k1-k0] with the
// kernels of level lvl.
type rowDecoder interface {
	BMatrix
	decodeRow(dst []float32, r, k0, k1 int, lvl feature)
}

// checkDims validates a constructor's shape and returns n·k.
func checkDims(what string, n, k int) (int, error) {
	if n < 0 || k < 0 || (k != 0 && n > maxInt/k) {
		return 0, fmt.Errorf("kernels: %s: bad shape %d×%d: %w", what, n, k, ErrWeightShape)
	}
	return n * k, nil
}

const maxInt = int(^uint(0) >> 1)

func sizeError(what, part string, got, want int) error {
	return fmt.Errorf("kernels: %s: %s has %d entries, want %d: %w", what, part, got, want, ErrWeightShape)
}

// tileRows implements BMatrix.Tile on top of decodeRow: dst receives
// B[n0:n1, k0:k1] row-major with row stride k1-k0.
func tileRows(d rowDecoder, dst []float32, n0, n1, k0, k1 int) {
	if n0 < 0 || n1 < n0 || n1 > d.Rows() || k0 < 0 || k1 < k0 || k1 > d.Cols() {
		panic(fmt.Sprintf("kernels: Tile [%d:%d, %d:%d] outside a %d×%d matrix", n0, n1, k0, k1, d.Rows(), d.Cols()))
	}
	w := k1 - k0
	if len(dst) < (n1-n0)*w {
		panic(fmt.Sprintf("kernels: Tile destination has %d values, want %d", len(dst), (n1-n0)*w))
	}
	if w == 0 {
		return
	}
	lvl := level()
	sp, _ := d.(rowSpanner)
	if sp != nil {
		for r := n0; r < min(n1, n0+tilePrefetchRows); r++ {
			prefetch(sp.rowSpan(r, k0, k1))
		}
	}
	for r := n0; r < n1; r++ {
		if sp != nil && r+tilePrefetchRows < n1 {
			prefetch(sp.rowSpan(r+tilePrefetchRows, k0, k1))
		}
		o := (r - n0) * w
		d.decodeRow(dst[o:o+w], r, k0, k1, lvl)
	}
}

// rowSpanner is implemented by the weight types whose rows are stored as
// contiguous bytes: rowSpan returns the bytes that hold B[r, k0:k1].
type rowSpanner interface {
	rowSpan(r, k0, k1 int) []byte
}

// tilePrefetchRows is how many rows ahead tileRows asks for the stored
// bytes. A tile's rows are rowBytes apart, a pattern the hardware
// prefetchers do not follow, so without it each row's first cache lines
// are waited for: a quarter of the time of a Q4_0 prompt (128 tokens,
// 1B-shaped model, one thread) went to the decoders' stalls, 3% with it.
const tilePrefetchRows = 8

// F32MatrixFromBytes views data (4·n·k bytes, little-endian float32,
// row-major: a safetensors F32 tensor) as an F32Matrix. The view shares
// data when the host is little-endian and data is 4-byte aligned (as
// memory-mapped safetensors and GGUF tensors are); otherwise the values are
// copied once.
func F32MatrixFromBytes(data []byte, n, k int) (*F32Matrix, error) {
	nk, err := checkDims("f32 matrix", n, k)
	if err != nil {
		return nil, err
	}
	if len(data) != 4*nk {
		return nil, sizeError("f32 matrix", "data", len(data), 4*nk)
	}
	var f []float32
	if nk > 0 {
		if p := unsafe.Pointer(&data[0]); littleEndian && uintptr(p)%4 == 0 {
			f = unsafe.Slice((*float32)(p), nk)
		} else {
			f = make([]float32, nk)
			for i := range f {
				f[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
			}
		}
	}
	return &F32Matrix{Data: f, N: n, K: k}, nil
}

// littleEndian reports the host byte order.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
