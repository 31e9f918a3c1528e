package vocab

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// jw is a JSON value under construction whose object members keep their
// insertion order (encoding/json sorts map keys, and tokenizer files are
// easier to compare with the published ones in their usual order).
type jw struct {
	object bool
	keys   []string
	vals   []any // string, bool, int, int64, float32, nil, *jw
}

// obj2 builds an object from alternating keys and values.
func obj2(kv ...any) *jw {
	o := &jw{object: true}
	for i := 0; i+1 < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

// arr builds an array.
func arr(vs ...any) *jw { return &jw{vals: vs} }

func (o *jw) set(k string, v any) *jw {
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
	return o
}

func (o *jw) push(v any) *jw {
	o.vals = append(o.vals, v)
	return o
}

// writeJSON writes v with two-space indentation and a final newline.
func writeJSON(w io.Writer, v *jw) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	e := &jenc{w: bw}
	e.value(v, 0)
	bw.WriteByte('\n')
	if e.err != nil {
		return e.err
	}
	return bw.Flush()
}

type jenc struct {
	w   *bufio.Writer
	err error
}

func (e *jenc) indent(depth int) {
	e.w.WriteByte('\n')
	for range depth {
		e.w.WriteString("  ")
	}
}

func (e *jenc) value(v any, depth int) {
	if e.err != nil {
		return
	}
	switch x := v.(type) {
	case nil:
		e.w.WriteString("null")
	case bool:
		e.w.WriteString(strconv.FormatBool(x))
	case int:
		e.w.WriteString(strconv.Itoa(x))
	case int64:
		e.w.WriteString(strconv.FormatInt(x, 10))
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			e.err = fmt.Errorf("vocab: cannot write %v as JSON", x)
			return
		}
		e.w.WriteString(strconv.FormatFloat(float64(x), 'g', -1, 32))
	case string:
		e.str(x)
	case *jw:
		open, end := byte('['), byte(']')
		if x.object {
			open, end = '{', '}'
		}
		e.w.WriteByte(open)
		inline := !x.object && scalars(x.vals) // ["a", "b"] merges stay on one line
		for i, val := range x.vals {
			if i > 0 {
				e.w.WriteByte(',')
			}
			if inline {
				if i > 0 {
					e.w.WriteByte(' ')
				}
				e.value(val, depth+1)
				continue
			}
			e.indent(depth + 1)
			if x.object {
				e.str(x.keys[i])
				e.w.WriteString(": ")
			}
			e.value(val, depth+1)
		}
		if len(x.vals) > 0 && !inline {
			e.indent(depth)
		}
		e.w.WriteByte(end)
	default:
		e.err = fmt.Errorf("vocab: internal error: cannot write %T as JSON", v)
	}
}

// scalars reports whether no element is an object or array.
func scalars(vals []any) bool {
	for _, v := range vals {
		if _, ok := v.(*jw); ok {
			return false
		}
	}
	return true
}

// str writes a JSON string without HTML escaping. The caller has checked
// that s is valid UTF-8.
func (e *jenc) str(s string) {
	const hex = "0123456789abcdef"
	e.w.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			if c < utf8.RuneSelf {
				e.w.WriteByte(c)
				i++
				continue
			}
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == '\u2028' || r == '\u2029' {
				fmt.Fprintf(e.w, `\u%04x`, r)
			} else {
				e.w.WriteString(s[i : i+size])
			}
			i += size
			continue
		}
		switch c {
		case '"':
			e.w.WriteString(`\"`)
		case '\\':
			e.w.WriteString(`\\`)
		case '\n':
			e.w.WriteString(`\n`)
		case '\r':
			e.w.WriteString(`\r`)
		case '\t':
			e.w.WriteString(`\t`)
		default:
			e.w.WriteString(`\u00`)
			e.w.WriteByte(hex[c>>4])
			e.w.WriteByte(hex[c&0xf])
		}
		i++
	}
	e.w.WriteByte('"')
}
