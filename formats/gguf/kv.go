package gguf

import (
	"encoding/binary"
	"math"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/internal/bin"
)

// keyAlignment is the metadata key that sets the data alignment.
const keyAlignment = "general.alignment"

// defaultAlignment applies when general.alignment is absent (GGUF_DEFAULT_ALIGNMENT).
const defaultAlignment = 32

// maxKeyLen is the spec's bound on a key's length, checked under Strict.
const maxKeyLen = 65535

// kv reads one metadata pair and adds it to meta, checking the key rules
// (PARSER-SAFETY.md §2.7) and, for general.alignment, §2.9. It returns the
// alignment when the pair sets it, 0 otherwise.
func (d *decoder) kv(meta *formats.Meta) (int64, error) {
	key, keyOff, err := d.str("key")
	if err != nil {
		return 0, err
	}
	if key == "" {
		return 0, d.fail(keyOff, ErrEmptyKey, "key of length 0")
	}
	if meta.Has(key) {
		return 0, annotate(d.fail(keyOff, ErrDuplicateKey, "key already set"), key, "")
	}
	if d.opts.Strict && !validKey(key) {
		return 0, annotate(d.fail(keyOff, ErrBadKey, "%d bytes", len(key)), key, "")
	}
	t, typeOff, err := d.u32("value type")
	if err != nil {
		return 0, annotate(err, key, "")
	}
	v, err := d.value(formats.ValueType(t), typeOff)
	if err != nil {
		return 0, annotate(err, key, "")
	}
	var align int64
	if key == keyAlignment {
		a, ok := v.V.(uint32)
		switch {
		case v.Type != formats.TypeUint32 || !ok:
			return 0, annotate(d.fail(typeOff, ErrBadAlignment, "type %v, want UINT32", v.Type), key, "")
		case a == 0 || a&(a-1) != 0:
			return 0, annotate(d.fail(typeOff+4, ErrBadAlignment, "%d is not a power of two", a), key, "")
		}
		align = int64(a)
	}
	meta.Set(key, v)
	return align, nil
}

// value reads a value of type t, whose type field sits at typeOff.
func (d *decoder) value(t formats.ValueType, typeOff int64) (formats.Value, error) {
	switch t {
	case formats.TypeUint8:
		v, _, err := d.u8("UINT8 value")
		return formats.ValUint8(v), err
	case formats.TypeInt8:
		v, _, err := d.u8("INT8 value")
		return formats.ValInt8(int8(v)), err
	case formats.TypeUint16:
		v, _, err := d.u16("UINT16 value")
		return formats.ValUint16(v), err
	case formats.TypeInt16:
		v, _, err := d.u16("INT16 value")
		return formats.ValInt16(int16(v)), err
	case formats.TypeUint32:
		v, _, err := d.u32("UINT32 value")
		return formats.ValUint32(v), err
	case formats.TypeInt32:
		v, _, err := d.u32("INT32 value")
		return formats.ValInt32(int32(v)), err
	case formats.TypeFloat32:
		v, _, err := d.u32("FLOAT32 value")
		return formats.ValFloat32(math.Float32frombits(v)), err
	case formats.TypeBool:
		v, off, err := d.u8("BOOL value")
		if err == nil && d.opts.Strict && v > 1 {
			err = d.fail(off, ErrBadBool, "byte %d", v)
		}
		return formats.ValBool(v != 0), err
	case formats.TypeString:
		s, _, err := d.str("string value")
		return formats.ValString(s), err
	case formats.TypeArray:
		return d.array(1)
	case formats.TypeUint64:
		v, _, err := d.u64("UINT64 value")
		return formats.ValUint64(v), err
	case formats.TypeInt64:
		v, _, err := d.u64("INT64 value")
		return formats.ValInt64(int64(v)), err
	case formats.TypeFloat64:
		v, _, err := d.u64("FLOAT64 value")
		return formats.ValFloat64(math.Float64frombits(v)), err
	}
	return formats.Value{}, d.fail(typeOff, ErrBadValueType, "type %d, want 0–12", uint32(t))
}

// minElemSize is the fewest bytes one array element of type e occupies:
// its scalar size, a string's length prefix, or a nested array's element
// type and count.
func minElemSize(e formats.ValueType) uint64 {
	switch e {
	case formats.TypeString:
		return 8
	case formats.TypeArray:
		return 12
	}
	return uint64(e.Size())
}

// array reads an array value (element type, count, elements) at nesting
// level depth (1 for a top-level array), PARSER-SAFETY.md §2.6.
func (d *decoder) array(depth int) (formats.Value, error) {
	et, etOff, err := d.u32("array element type")
	if err != nil {
		return formats.Value{}, err
	}
	n, nOff, err := d.u64("array count")
	if err != nil {
		return formats.Value{}, err
	}
	e := formats.ValueType(et)
	if !e.Valid() {
		return formats.Value{}, d.fail(etOff, ErrBadValueType, "array element type %d, want 0–12", et)
	}
	if e == formats.TypeArray {
		if !d.opts.AllowNestedArrays {
			return formats.Value{}, d.fail(etOff, ErrNestedArray, "element type ARRAY (ggml rejects arrays of arrays)")
		}
		if depth+1 > d.lim.MaxNesting {
			return formats.Value{}, d.fail(etOff, ErrNestingTooDeep, "depth %d, limit %d", depth+1, d.lim.MaxNesting)
		}
	}
	if n > uint64(d.lim.MaxArrayLen) {
		return formats.Value{}, d.fail(nOff, ErrArrayTooLong, "%d elements, limit %d", n, d.lim.MaxArrayLen)
	}
	need, ok := bin.MulU64(n, minElemSize(e))
	if !ok || need > uint64(d.c.Remaining()) {
		return formats.Value{}, d.fail(nOff, ErrTruncated, "%d %v elements need at least %d bytes, %d remain", n, e, need, d.c.Remaining())
	}
	count, ok := bin.ToInt(n)
	if !ok {
		return formats.Value{}, d.fail(nOff, ErrOverflow, "%d elements", n)
	}
	switch e {
	case formats.TypeString:
		return d.stringArray(count)
	case formats.TypeArray:
		return d.nestedArray(count, depth)
	case formats.TypeBool:
		return d.boolArray(count)
	}
	p, err := d.bytes(need, "array payload")
	if err != nil {
		return formats.Value{}, err
	}
	return formats.ValArray(decodeScalars(e, p)), nil
}

func (d *decoder) stringArray(count int) (formats.Value, error) {
	out := make([]string, 0, min(count, 1<<16))
	for range count {
		s, _, err := d.str("array string")
		if err != nil {
			return formats.Value{}, err
		}
		out = append(out, s)
	}
	return formats.ValArray(out), nil
}

func (d *decoder) nestedArray(count, depth int) (formats.Value, error) {
	out := make([]formats.Value, 0, min(count, 1<<10))
	for range count {
		v, err := d.array(depth + 1)
		if err != nil {
			return formats.Value{}, err
		}
		out = append(out, v)
	}
	return formats.ValArray(out), nil
}

func (d *decoder) boolArray(count int) (formats.Value, error) {
	off := d.c.Offset()
	p, err := d.bytes(uint64(count), "array payload")
	if err != nil {
		return formats.Value{}, err
	}
	out := make([]bool, count)
	for i, b := range p {
		if d.opts.Strict && b > 1 {
			return formats.Value{}, d.fail(off+int64(i), ErrBadBool, "element %d is byte %d", i, b)
		}
		out[i] = b != 0
	}
	return formats.ValArray(out), nil
}

// decodeScalars turns a little-endian payload into a typed slice of the
// fixed-size element type e.
func decodeScalars(e formats.ValueType, p []byte) any {
	le := binary.LittleEndian
	switch e {
	case formats.TypeUint8:
		return p
	case formats.TypeInt8:
		return decode(p, 1, func(b []byte) int8 { return int8(b[0]) })
	case formats.TypeUint16:
		return decode(p, 2, le.Uint16)
	case formats.TypeInt16:
		return decode(p, 2, func(b []byte) int16 { return int16(le.Uint16(b)) })
	case formats.TypeUint32:
		return decode(p, 4, le.Uint32)
	case formats.TypeInt32:
		return decode(p, 4, func(b []byte) int32 { return int32(le.Uint32(b)) })
	case formats.TypeFloat32:
		return decode(p, 4, func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) })
	case formats.TypeUint64:
		return decode(p, 8, le.Uint64)
	case formats.TypeInt64:
		return decode(p, 8, func(b []byte) int64 { return int64(le.Uint64(b)) })
	case formats.TypeFloat64:
		return decode(p, 8, func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) })
	}
	return nil
}

func decode[T any](p []byte, size int, get func([]byte) T) []T {
	out := make([]T, len(p)/size)
	for i := range out {
		out[i] = get(p[i*size : i*size+size])
	}
	return out
}

// validKey reports whether key has the spec's form: ASCII lower_snake_case
// segments (a–z, 0–9, _) joined by single dots, at most 65,535 bytes.
func validKey(key string) bool {
	if key == "" || len(key) > maxKeyLen {
		return false
	}
	seg := 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '.':
			if seg == 0 {
				return false
			}
			seg = 0
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_':
			seg++
		default:
			return false
		}
	}
	return seg > 0
}
