package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/qtool-dev/qtool/formats"
)

// encoder appends GGUF header fields to a byte slice, little-endian,
// exactly as gguf-py and ggml lay them out.
type encoder struct {
	b           []byte
	allowNested bool
	maxNesting  int
}

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.b = append(e.b, s...)
}

// kv appends one metadata pair: key, value type, value.
func (e *encoder) kv(key string, v formats.Value) error {
	if key == "" {
		return writeErr(ErrEmptyKey, "", "", "key of length 0")
	}
	e.str(key)
	e.u32(uint32(v.Type))
	if err := e.value(v); err != nil {
		return annotate(err, key, "")
	}
	return nil
}

// badValue reports a Value whose Go value does not match its declared type.
func badValue(v formats.Value) error {
	return writeErr(ErrBadValue, "", "", fmt.Sprintf("type %v (element %v) holding %T", v.Type, v.Elem, v.V))
}

// value appends the encoding of v, without its type field.
func (e *encoder) value(v formats.Value) error {
	ok := true
	switch v.Type {
	case formats.TypeUint8:
		var x uint8
		x, ok = v.V.(uint8)
		e.u8(x)
	case formats.TypeInt8:
		var x int8
		x, ok = v.V.(int8)
		e.u8(uint8(x))
	case formats.TypeUint16:
		var x uint16
		x, ok = v.V.(uint16)
		e.u16(x)
	case formats.TypeInt16:
		var x int16
		x, ok = v.V.(int16)
		e.u16(uint16(x))
	case formats.TypeUint32:
		var x uint32
		x, ok = v.V.(uint32)
		e.u32(x)
	case formats.TypeInt32:
		var x int32
		x, ok = v.V.(int32)
		e.u32(uint32(x))
	case formats.TypeFloat32:
		var x float32
		x, ok = v.V.(float32)
		e.u32(math.Float32bits(x))
	case formats.TypeBool:
		var x bool
		x, ok = v.V.(bool)
		e.u8(boolByte(x))
	case formats.TypeString:
		var x string
		x, ok = v.V.(string)
		e.str(x)
	case formats.TypeUint64:
		var x uint64
		x, ok = v.V.(uint64)
		e.u64(x)
	case formats.TypeInt64:
		var x int64
		x, ok = v.V.(int64)
		e.u64(uint64(x))
	case formats.TypeFloat64:
		var x float64
		x, ok = v.V.(float64)
		e.u64(math.Float64bits(x))
	case formats.TypeArray:
		return e.array(v, 1)
	default:
		return writeErr(ErrBadValueType, "", "", fmt.Sprintf("type %d, want 0–12", uint32(v.Type)))
	}
	if !ok {
		return badValue(v)
	}
	return nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// array appends an array value at nesting level depth: element type,
// count, elements.
func (e *encoder) array(v formats.Value, depth int) error {
	if v.Type != formats.TypeArray {
		return badValue(v)
	}
	if v.Elem == formats.TypeArray {
		if !e.allowNested {
			return writeErr(ErrNestedArray, "", "", "ggml rejects arrays of arrays")
		}
		if depth+1 > e.maxNesting {
			return writeErr(ErrNestingTooDeep, "", "", fmt.Sprintf("depth %d, limit %d", depth+1, e.maxNesting))
		}
	}
	e.u32(uint32(v.Elem))
	switch s := v.V.(type) {
	case []uint8:
		return e.elems(v, formats.TypeUint8, len(s), func(i int) { e.u8(s[i]) })
	case []int8:
		return e.elems(v, formats.TypeInt8, len(s), func(i int) { e.u8(uint8(s[i])) })
	case []uint16:
		return e.elems(v, formats.TypeUint16, len(s), func(i int) { e.u16(s[i]) })
	case []int16:
		return e.elems(v, formats.TypeInt16, len(s), func(i int) { e.u16(uint16(s[i])) })
	case []uint32:
		return e.elems(v, formats.TypeUint32, len(s), func(i int) { e.u32(s[i]) })
	case []int32:
		return e.elems(v, formats.TypeInt32, len(s), func(i int) { e.u32(uint32(s[i])) })
	case []float32:
		return e.elems(v, formats.TypeFloat32, len(s), func(i int) { e.u32(math.Float32bits(s[i])) })
	case []bool:
		return e.elems(v, formats.TypeBool, len(s), func(i int) { e.u8(boolByte(s[i])) })
	case []string:
		return e.elems(v, formats.TypeString, len(s), func(i int) { e.str(s[i]) })
	case []uint64:
		return e.elems(v, formats.TypeUint64, len(s), func(i int) { e.u64(s[i]) })
	case []int64:
		return e.elems(v, formats.TypeInt64, len(s), func(i int) { e.u64(uint64(s[i])) })
	case []float64:
		return e.elems(v, formats.TypeFloat64, len(s), func(i int) { e.u64(math.Float64bits(s[i])) })
	case []formats.Value:
		if v.Elem != formats.TypeArray {
			return badValue(v)
		}
		e.u64(uint64(len(s)))
		for _, inner := range s {
			if err := e.array(inner, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return badValue(v)
}

// elems appends the count and n elements after checking that the slice's
// element type is the declared one.
func (e *encoder) elems(v formats.Value, want formats.ValueType, n int, put func(int)) error {
	if v.Elem != want {
		return badValue(v)
	}
	e.u64(uint64(n))
	for i := range n {
		put(i)
	}
	return nil
}

// writeErr is a writer-side located error: no byte offset applies.
func writeErr(rule error, key, tensor, detail string) error {
	return &formats.FormatError{Offset: -1, Key: key, Tensor: tensor, Detail: detail, Err: rule}
}
