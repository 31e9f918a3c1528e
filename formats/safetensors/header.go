package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/qtool-dev/qtool/formats"
)

// metadataKey is the reserved top-level key of the header that holds the
// free-form string map (spec: "__metadata__").
const metadataKey = "__metadata__"

// entry is one tensor as the header describes it (spec: the value of a
// tensor name, {"dtype", "shape", "data_offsets": [begin, end]}); begin and
// end are relative to the start of the data section.
type entry struct {
	name       string
	dtype      formats.DType
	shape      []int64
	begin, end int64
	pos        int // byte index of the entry's name in the header
}

// header is the decoded JSON header, before layout validation.
type header struct {
	metaKeys []string // __metadata__ keys in header order
	metaVals []string
	keyOrder []string // every top-level key in header order
	entries  []entry  // in header order
}

// headerParser decodes one header and locates its errors: every offset it
// reports is absolute (8 + the byte index inside the header).
type headerParser struct {
	sc   scanner
	file string
	lim  formats.Limits
}

func (p *headerParser) errAt(pos int, tensor, key string, rule error, detail string) error {
	return fail(p.file, 8+int64(pos), tensor, key, rule, detail)
}

// parseHeader checks the header text (§1.4) and decodes it against the
// schema (§1.5–§1.7, §3.2). Layout rules (§1.8–§1.10) are validate's.
func parseHeader(b []byte, file string, lim formats.Limits) (*header, error) {
	if !utf8.Valid(b) {
		i := 0
		for i < len(b) {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return nil, fail(file, 8+int64(i), "", "", ErrInvalidUTF8, fmt.Sprintf("byte 0x%02x", byteAt(b, i)))
	}
	if !json.Valid(b) {
		var raw json.RawMessage
		off, detail := int64(len(b)), "unexpected end"
		var se *json.SyntaxError
		if err := json.Unmarshal(b, &raw); errors.As(err, &se) {
			off, detail = se.Offset, se.Error()
		}
		return nil, fail(file, 8+off, "", "", ErrInvalidJSON, detail)
	}
	p := &headerParser{sc: scanner{b: b}, file: file, lim: lim}
	return p.parse()
}

func byteAt(b []byte, i int) byte {
	if i >= 0 && i < len(b) {
		return b[i]
	}
	return 0
}

// syntax maps a scanner failure to ErrInvalidJSON at the scanner position.
func (p *headerParser) syntax() error {
	return p.errAt(p.sc.pos, "", "", ErrInvalidJSON, "malformed token")
}

func (p *headerParser) parse() (*header, error) {
	h := &header{}
	if c := p.sc.peek(); c != '{' {
		return nil, p.errAt(p.sc.pos, "", "", ErrNotObject, fmt.Sprintf("starts with %q", c))
	}
	p.sc.pos++
	seen := make(map[string]struct{})
	if p.sc.eat('}') {
		return h, p.tail()
	}
	for {
		p.sc.ws()
		pos := p.sc.pos
		key, err := p.sc.str()
		if err != nil || !p.sc.eat(':') {
			return nil, p.syntax()
		}
		if _, dup := seen[key]; dup {
			if key == metadataKey {
				return nil, p.errAt(pos, "", key, ErrDuplicateName, "")
			}
			return nil, p.errAt(pos, key, "", ErrDuplicateName, "")
		}
		seen[key] = struct{}{}
		h.keyOrder = append(h.keyOrder, key)
		if key == metadataKey {
			if err := p.metadata(h); err != nil {
				return nil, err
			}
		} else {
			if int64(len(h.entries)) >= p.lim.MaxTensors {
				return nil, p.errAt(pos, key, "", ErrTooManyTensors, fmt.Sprintf("limit %d", p.lim.MaxTensors))
			}
			e, err := p.entry(key, pos)
			if err != nil {
				return nil, err
			}
			h.entries = append(h.entries, e)
		}
		if p.sc.eat(',') {
			continue
		}
		if p.sc.eat('}') {
			return h, p.tail()
		}
		return nil, p.syntax()
	}
}

// tail requires that only whitespace follows the top-level object.
func (p *headerParser) tail() error {
	if !p.sc.end() {
		return p.syntax()
	}
	return nil
}

// metadata decodes the __metadata__ value: an object of strings, or null
// (which the reference reader accepts as "no metadata").
func (p *headerParser) metadata(h *header) error {
	switch p.sc.peek() {
	case 'n':
		return p.sc.literal()
	case '{':
		p.sc.pos++
	default:
		return p.errAt(p.sc.pos, "", metadataKey, ErrBadMetadata, "not an object")
	}
	if p.sc.eat('}') {
		return nil
	}
	seen := make(map[string]struct{})
	for {
		p.sc.ws()
		kpos := p.sc.pos
		k, err := p.sc.str()
		if err != nil || !p.sc.eat(':') {
			return p.syntax()
		}
		if _, dup := seen[k]; dup {
			return p.errAt(kpos, "", k, ErrBadMetadata, "duplicate key")
		}
		seen[k] = struct{}{}
		if p.sc.peek() != '"' {
			return p.errAt(p.sc.pos, "", k, ErrBadMetadata, "value is not a string")
		}
		v, err := p.sc.str()
		if err != nil {
			return p.syntax()
		}
		h.metaKeys = append(h.metaKeys, k)
		h.metaVals = append(h.metaVals, v)
		if p.sc.eat(',') {
			continue
		}
		if p.sc.eat('}') {
			return nil
		}
		return p.syntax()
	}
}

// entry decodes one tensor entry (§1.6).
func (p *headerParser) entry(name string, pos int) (entry, error) {
	e := entry{name: name, pos: pos}
	if p.sc.peek() != '{' {
		return e, p.errAt(p.sc.pos, name, "", ErrBadEntry, "not an object")
	}
	p.sc.pos++
	var haveDType, haveShape, haveOffsets bool
	if !p.sc.eat('}') {
		for {
			p.sc.ws()
			fpos := p.sc.pos
			field, err := p.sc.strBytes()
			if err != nil || !p.sc.eat(':') {
				return e, p.syntax()
			}
			var dup bool
			switch string(field) {
			case "dtype":
				dup, haveDType = haveDType, true
				if !dup {
					err = p.dtype(&e)
				}
			case "shape":
				dup, haveShape = haveShape, true
				if !dup {
					err = p.shape(&e)
				}
			case "data_offsets":
				dup, haveOffsets = haveOffsets, true
				if !dup {
					err = p.offsets(&e)
				}
			default:
				return e, p.errAt(fpos, name, "", ErrBadEntry, fmt.Sprintf("unexpected field %q", field))
			}
			if dup {
				return e, p.errAt(fpos, name, "", ErrBadEntry, fmt.Sprintf("field %q repeated", field))
			}
			if err != nil {
				return e, err
			}
			if p.sc.eat(',') {
				continue
			}
			if p.sc.eat('}') {
				break
			}
			return e, p.syntax()
		}
	}
	switch {
	case !haveDType:
		return e, p.errAt(pos, name, "", ErrBadEntry, `missing "dtype"`)
	case !haveShape:
		return e, p.errAt(pos, name, "", ErrBadEntry, `missing "shape"`)
	case !haveOffsets:
		return e, p.errAt(pos, name, "", ErrBadEntry, `missing "data_offsets"`)
	}
	return e, nil
}

func (p *headerParser) dtype(e *entry) error {
	if p.sc.peek() != '"' {
		return p.errAt(p.sc.pos, e.name, "", ErrBadEntry, "dtype is not a string")
	}
	pos := p.sc.pos
	s, err := p.sc.strBytes()
	if err != nil {
		return p.syntax()
	}
	d, ok := formats.DTypeFromSafetensors(string(s))
	if !ok {
		return p.errAt(pos, e.name, "", ErrUnknownDType, fmt.Sprintf("%q", s))
	}
	e.dtype = d
	return nil
}

func (p *headerParser) shape(e *entry) error {
	if p.sc.peek() != '[' {
		return p.errAt(p.sc.pos, e.name, "", ErrBadShape, "not an array")
	}
	p.sc.pos++
	e.shape = make([]int64, 0, 4) // a rank-0 scalar has an empty, non-nil shape
	if p.sc.eat(']') {
		return nil
	}
	for {
		p.sc.ws()
		pos := p.sc.pos
		if len(e.shape) >= p.lim.MaxDims {
			return p.errAt(pos, e.name, "", ErrTooManyDims, fmt.Sprintf("limit %d", p.lim.MaxDims))
		}
		v, ok, err := p.sc.uint()
		if err != nil || !ok || v > math.MaxInt64 {
			return p.errAt(pos, e.name, "", ErrBadShape, "dimension is not an integer in [0, 2^63)")
		}
		e.shape = append(e.shape, int64(v))
		if p.sc.eat(',') {
			continue
		}
		if p.sc.eat(']') {
			return nil
		}
		return p.syntax()
	}
}

func (p *headerParser) offsets(e *entry) error {
	start := p.sc.pos
	bad := func(detail string) error { return p.errAt(start, e.name, "", ErrBadOffsets, detail) }
	if p.sc.peek() != '[' {
		return bad("not an array")
	}
	start = p.sc.pos
	p.sc.pos++
	var v [2]uint64
	n := 0
	if !p.sc.eat(']') {
		for {
			if n == 2 {
				return bad("more than two numbers")
			}
			x, ok, err := p.sc.uint()
			if err != nil || !ok || x > math.MaxInt64 {
				return bad("offset is not an integer in [0, 2^63)")
			}
			v[n] = x
			n++
			if p.sc.eat(',') {
				continue
			}
			if p.sc.eat(']') {
				break
			}
			return p.syntax()
		}
	}
	if n != 2 {
		return bad(fmt.Sprintf("%d of 2 numbers", n))
	}
	if v[0] > v[1] {
		return bad(fmt.Sprintf("begin %d > end %d", v[0], v[1]))
	}
	e.begin, e.end = int64(v[0]), int64(v[1])
	return nil
}
