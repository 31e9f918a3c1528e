package formats

import (
	"fmt"
	"math"
)

// ValueType is the type of a metadata value. The numbering is GGUF's
// (gguf_type), so GGUF files map onto it one to one.
type ValueType uint32

// Metadata value types (GGUF ids 0–12).
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"}

// Valid reports whether t is one of the 13 GGUF value types.
func (t ValueType) Valid() bool { return t <= TypeFloat64 }

// String is the GGUF spelling ("UINT32", "ARRAY", …).
func (t ValueType) String() string {
	if t.Valid() {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// Size is the encoded size of one scalar of type t in GGUF, 0 for strings
// and arrays (variable length).
func (t ValueType) Size() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Value is one typed metadata value.
//
// V holds, by Type: uint8, int8, uint16, int16, uint32, int32, float32,
// bool, string, uint64, int64, float64; for TypeArray, a typed Go slice of
// the element type ([]uint8 … []float64, []bool, []string), or []Value when
// Elem is TypeArray (nested arrays; each inner Value is itself an array).
// Elem is the element type of an array, kept even when the array is empty.
type Value struct {
	Type ValueType
	Elem ValueType
	V    any
}

// Scalar value constructors (ValUint32(3), ValString("llama"), …).
func ValUint8(v uint8) Value     { return Value{Type: TypeUint8, V: v} }
func ValInt8(v int8) Value       { return Value{Type: TypeInt8, V: v} }
func ValUint16(v uint16) Value   { return Value{Type: TypeUint16, V: v} }
func ValInt16(v int16) Value     { return Value{Type: TypeInt16, V: v} }
func ValUint32(v uint32) Value   { return Value{Type: TypeUint32, V: v} }
func ValInt32(v int32) Value     { return Value{Type: TypeInt32, V: v} }
func ValFloat32(v float32) Value { return Value{Type: TypeFloat32, V: v} }
func ValBool(v bool) Value       { return Value{Type: TypeBool, V: v} }
func ValString(v string) Value   { return Value{Type: TypeString, V: v} }
func ValUint64(v uint64) Value   { return Value{Type: TypeUint64, V: v} }
func ValInt64(v int64) Value     { return Value{Type: TypeInt64, V: v} }
func ValFloat64(v float64) Value { return Value{Type: TypeFloat64, V: v} }

// ValArray builds an array value from a typed slice ([]uint8 … []string) or a
// []Value of arrays. It panics on any other type: that is a programming
// error, never reachable from file bytes.
func ValArray(slice any) Value {
	var e ValueType
	switch slice.(type) {
	case []uint8:
		e = TypeUint8
	case []int8:
		e = TypeInt8
	case []uint16:
		e = TypeUint16
	case []int16:
		e = TypeInt16
	case []uint32:
		e = TypeUint32
	case []int32:
		e = TypeInt32
	case []float32:
		e = TypeFloat32
	case []bool:
		e = TypeBool
	case []string:
		e = TypeString
	case []uint64:
		e = TypeUint64
	case []int64:
		e = TypeInt64
	case []float64:
		e = TypeFloat64
	case []Value:
		e = TypeArray
	default:
		panic(fmt.Sprintf("formats.ValArray: unsupported slice type %T", slice))
	}
	return Value{Type: TypeArray, Elem: e, V: slice}
}

// Len is the element count of an array value, 0 for scalars.
func (v Value) Len() int {
	if v.Type != TypeArray {
		return 0
	}
	switch s := v.V.(type) {
	case []uint8:
		return len(s)
	case []int8:
		return len(s)
	case []uint16:
		return len(s)
	case []int16:
		return len(s)
	case []uint32:
		return len(s)
	case []int32:
		return len(s)
	case []float32:
		return len(s)
	case []bool:
		return len(s)
	case []string:
		return len(s)
	case []uint64:
		return len(s)
	case []int64:
		return len(s)
	case []float64:
		return len(s)
	case []Value:
		return len(s)
	}
	return 0
}

// AsUint returns an unsigned or non-negative signed integer value.
func (v Value) AsUint() (uint64, bool) {
	switch x := v.V.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// AsInt returns any integer value that fits an int64.
func (v Value) AsInt() (int64, bool) {
	switch x := v.V.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	}
	return 0, false
}

// AsFloat returns a float value, or an integer value converted.
func (v Value) AsFloat() (float64, bool) {
	switch x := v.V.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if i, ok := v.AsInt(); ok {
		return float64(i), true
	}
	if u, ok := v.AsUint(); ok {
		return float64(u), true
	}
	return 0, false
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// Meta is an ordered list of unique keys with typed values. Order is kept as
// read (or as set) so that files round-trip byte for byte. The zero value is
// an empty Meta ready to use.
type Meta struct {
	kvs   []KV
	index map[string]int
}

// NewMeta returns an empty Meta.
func NewMeta() *Meta { return &Meta{} }

// Len is the number of entries.
func (m *Meta) Len() int {
	if m == nil {
		return 0
	}
	return len(m.kvs)
}

// KVs returns the entries in order; the slice must not be modified.
func (m *Meta) KVs() []KV {
	if m == nil {
		return nil
	}
	return m.kvs
}

// Has reports whether key is present.
func (m *Meta) Has(key string) bool {
	_, ok := m.Get(key)
	return ok
}

// Get returns the value of key.
func (m *Meta) Get(key string) (Value, bool) {
	if m == nil || m.index == nil {
		return Value{}, false
	}
	i, ok := m.index[key]
	if !ok {
		return Value{}, false
	}
	return m.kvs[i].Value, true
}

// Set replaces the value of key in place, or appends it.
func (m *Meta) Set(key string, v Value) {
	if m.index == nil {
		m.index = make(map[string]int)
	}
	if i, ok := m.index[key]; ok {
		m.kvs[i].Value = v
		return
	}
	m.index[key] = len(m.kvs)
	m.kvs = append(m.kvs, KV{Key: key, Value: v})
}

// Delete removes key, keeping the order of the others.
func (m *Meta) Delete(key string) {
	if m == nil || m.index == nil {
		return
	}
	i, ok := m.index[key]
	if !ok {
		return
	}
	m.kvs = append(m.kvs[:i], m.kvs[i+1:]...)
	delete(m.index, key)
	for j := i; j < len(m.kvs); j++ {
		m.index[m.kvs[j].Key] = j
	}
}

// Clone returns a copy whose order and entries can change independently
// (array payloads are shared; they are never modified in place).
func (m *Meta) Clone() *Meta {
	out := &Meta{}
	for _, kv := range m.KVs() {
		out.Set(kv.Key, kv.Value)
	}
	return out
}

// String returns a string value.
func (m *Meta) String(key string) (string, bool) {
	v, ok := m.Get(key)
	if !ok {
		return "", false
	}
	s, ok := v.V.(string)
	return s, ok
}

// Uint returns an unsigned (or non-negative signed) integer value.
func (m *Meta) Uint(key string) (uint64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	return v.AsUint()
}

// Int returns an integer value.
func (m *Meta) Int(key string) (int64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	return v.AsInt()
}

// Float returns a float (or integer) value.
func (m *Meta) Float(key string) (float64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	return v.AsFloat()
}

// Bool returns a bool value.
func (m *Meta) Bool(key string) (bool, bool) {
	v, ok := m.Get(key)
	if !ok {
		return false, false
	}
	b, ok := v.V.(bool)
	return b, ok
}

// Strings returns an array of strings.
func (m *Meta) Strings(key string) ([]string, bool) {
	v, ok := m.Get(key)
	if !ok {
		return nil, false
	}
	s, ok := v.V.([]string)
	return s, ok
}
