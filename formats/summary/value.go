package summary

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/qtool-dev/qtool/formats"
)

// NewEntry converts one metadata pair.
func NewEntry(kv formats.KV) Entry {
	e := Entry{Key: kv.Key, Type: kv.Value.Type.String(), Value: JSONValue(kv.Value), raw: kv.Value}
	if kv.Value.Type == formats.TypeArray {
		e.ElementType = kv.Value.Elem.String()
		n := kv.Value.Len()
		e.Count = &n
	}
	return e
}

// JSONValue turns a typed value into something encoding/json writes
// exactly: float32 keeps its shortest float32 spelling, non-finite floats
// become "nan"/"inf"/"-inf", arrays become lists.
func JSONValue(v formats.Value) any {
	switch x := v.V.(type) {
	case float32:
		return jsonFloat(float64(x), 32)
	case float64:
		return jsonFloat(x, 64)
	case []float32:
		out := make([]any, len(x))
		for i, f := range x {
			out[i] = jsonFloat(float64(f), 32)
		}
		return out
	case []float64:
		out := make([]any, len(x))
		for i, f := range x {
			out[i] = jsonFloat(f, 64)
		}
		return out
	case []formats.Value:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = JSONValue(e)
		}
		return out
	case []uint8:
		// Not []byte: encoding/json would write base64.
		out := make([]uint16, len(x))
		for i, b := range x {
			out[i] = uint16(b)
		}
		return out
	}
	return v.V
}

func jsonFloat(f float64, bits int) any {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, bits))
}

// Text renders a value for people: strings quoted and cut to max runes,
// arrays summarised to their first few elements and their length.
func Text(v formats.Value, max int) string {
	switch x := v.V.(type) {
	case string:
		return quoteCut(x, max)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	if v.Type != formats.TypeArray {
		return fmt.Sprint(v.V)
	}
	n := v.Len()
	const show = 6
	var parts []string
	for i := 0; i < n && i < show; i++ {
		parts = append(parts, Text(elem(v, i), 24))
	}
	s := "[" + strings.Join(parts, ", ")
	if n > show {
		s += fmt.Sprintf(", … (%d total)", n)
	}
	return s + "]"
}

func elem(v formats.Value, i int) formats.Value {
	switch x := v.V.(type) {
	case []uint8:
		return formats.ValUint8(x[i])
	case []int8:
		return formats.ValInt8(x[i])
	case []uint16:
		return formats.ValUint16(x[i])
	case []int16:
		return formats.ValInt16(x[i])
	case []uint32:
		return formats.ValUint32(x[i])
	case []int32:
		return formats.ValInt32(x[i])
	case []float32:
		return formats.ValFloat32(x[i])
	case []bool:
		return formats.ValBool(x[i])
	case []string:
		return formats.ValString(x[i])
	case []uint64:
		return formats.ValUint64(x[i])
	case []int64:
		return formats.ValInt64(x[i])
	case []float64:
		return formats.ValFloat64(x[i])
	case []formats.Value:
		return x[i]
	}
	return formats.Value{}
}

func quoteCut(s string, max int) string {
	if max > 0 && utf8.RuneCountInString(s) > max {
		r := []rune(s)
		return strconv.Quote(string(r[:max])) + fmt.Sprintf("… (%d bytes)", len(s))
	}
	return strconv.Quote(s)
}
