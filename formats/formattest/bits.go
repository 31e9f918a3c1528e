package formattest

import (
	"math"

	"github.com/qtool-dev/qtool/formats"
)

// bitsOf replaces floats by their IEEE bits so comparisons are exact.
func bitsOf(v any) any {
	switch x := v.(type) {
	case float32:
		return math.Float32bits(x)
	case float64:
		return math.Float64bits(x)
	case []float32:
		o := make([]uint32, len(x))
		for i, f := range x {
			o[i] = math.Float32bits(f)
		}
		return o
	case []float64:
		o := make([]uint64, len(x))
		for i, f := range x {
			o[i] = math.Float64bits(f)
		}
		return o
	case []formats.Value:
		o := make([]any, len(x))
		for i, e := range x {
			o[i] = []any{e.Type, e.Elem, bitsOf(e.V)}
		}
		return o
	}
	return v
}
