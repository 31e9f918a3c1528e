package quantize

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/kernels"
)

// ToFloat32 decodes n little-endian elements of a scalar float dtype (F32,
// F16, BF16, F64) from src into dst[:n]. It returns an error for other
// dtypes or short buffers.
func ToFloat32(dst []float32, src []byte, d formats.DType) error {
	n := len(dst)
	need := int64(n) * int64(d.Bits()/8)
	if d.Bits() == 0 || int64(len(src)) < need {
		return fmt.Errorf("quantize: cannot decode %d %v values from %d bytes", n, d, len(src))
	}
	switch d {
	case formats.F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case formats.F16:
		kernels.F16BytesToF32(dst, src[:2*n])
	case formats.BF16:
		kernels.BF16BytesToF32(dst, src[:2*n])
	case formats.F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	default:
		return fmt.Errorf("quantize: %v is not a float dtype: %w", d, formats.ErrUnsupported)
	}
	return nil
}

// FromFloat32 encodes src as dtype d (F32, F16 or BF16, rounding to nearest
// even) into dst, which must hold len(src) elements.
func FromFloat32(dst []byte, src []float32, d formats.DType) error {
	size := d.Bits() / 8
	if len(dst) < len(src)*size {
		return fmt.Errorf("quantize: destination too short for %d %v values", len(src), d)
	}
	switch d {
	case formats.F32:
		for i, f := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(f))
		}
	case formats.F16:
		kernels.F32ToF16Bytes(dst[:2*len(src)], src)
	case formats.BF16:
		kernels.F32ToBF16Bytes(dst[:2*len(src)], src)
	default:
		return fmt.Errorf("quantize: cannot encode %v: %w", d, formats.ErrUnsupported)
	}
	return nil
}
