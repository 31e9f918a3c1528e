package safetensors

import (
	"errors"
	"math"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a minimal JSON tokenizer over a header that has already passed
// utf8.Valid and json.Valid. It decodes exactly what the safetensors schema
// needs (objects, arrays, strings, unsigned integers) and reports every
// position as a byte index into the header, so errors can name the offset.
//
// Because the input was validated first, the error paths here only guard
// against inputs the pre-checks let through (lone surrogate escapes) and
// against programming mistakes; none of them can panic.
type scanner struct {
	b   []byte
	pos int
}

// errSyntax is the scanner's only error; callers map it to ErrInvalidJSON
// at the scanner's position.
var errSyntax = errors.New("json syntax")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// ws skips JSON whitespace.
func (s *scanner) ws() {
	for s.pos < len(s.b) && isSpace(s.b[s.pos]) {
		s.pos++
	}
}

// peek returns the next non-space byte without consuming it, 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos >= len(s.b) {
		return 0
	}
	return s.b[s.pos]
}

// eat consumes c (after whitespace) and reports whether it was there.
func (s *scanner) eat(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.pos++
	return true
}

// str reads a string token (after whitespace) and returns it decoded.
func (s *scanner) str() (string, error) {
	b, err := s.strBytes()
	return string(b), err
}

// strBytes reads a string token (after whitespace) and returns its decoded
// bytes: a slice of the input when the string has no escapes (the common
// case, no allocation), a new slice otherwise. The result must not be
// modified or kept; str copies it.
func (s *scanner) strBytes() ([]byte, error) {
	if !s.eat('"') {
		return nil, errSyntax
	}
	start := s.pos
	// Fast path: no escapes.
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		if c == '"' {
			v := s.b[start:s.pos:s.pos]
			s.pos++
			return v, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return nil, errSyntax
		}
		s.pos++
	}
	out := append([]byte(nil), s.b[start:s.pos]...)
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		switch {
		case c == '"':
			s.pos++
			return out, nil
		case c < 0x20:
			return nil, errSyntax
		case c != '\\':
			out = append(out, c)
			s.pos++
			continue
		}
		if s.pos+1 >= len(s.b) {
			return nil, errSyntax
		}
		e := s.b[s.pos+1]
		s.pos += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := s.codepoint()
			if err != nil {
				return nil, err
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, errSyntax
		}
	}
	return nil, errSyntax
}

// codepoint decodes the hex digits after \u, joining a surrogate pair.
// A lone surrogate is rejected, as serde_json (the reference parser) does.
func (s *scanner) codepoint() (rune, error) {
	r1, ok := s.hex4()
	if !ok {
		return 0, errSyntax
	}
	if !utf16.IsSurrogate(r1) {
		return r1, nil
	}
	if r1 >= 0xDC00 || s.pos+1 >= len(s.b) || s.b[s.pos] != '\\' || s.b[s.pos+1] != 'u' {
		return 0, errSyntax
	}
	s.pos += 2
	r2, ok := s.hex4()
	if !ok {
		return 0, errSyntax
	}
	r := utf16.DecodeRune(r1, r2)
	if r == utf8.RuneError {
		return 0, errSyntax
	}
	return r, nil
}

func (s *scanner) hex4() (rune, bool) {
	if s.pos+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.pos : s.pos+4] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	s.pos += 4
	return r, true
}

// numberBytes reads a number token (after whitespace) and returns its
// text as a slice of the input.
func (s *scanner) numberBytes() ([]byte, error) {
	s.ws()
	start := s.pos
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		if ('0' <= c && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.pos++
			continue
		}
		break
	}
	if s.pos == start {
		return nil, errSyntax
	}
	return s.b[start:s.pos:s.pos], nil
}

// number reads a number token and returns its text.
func (s *scanner) number() (string, error) {
	b, err := s.numberBytes()
	return string(b), err
}

// uint reads a number token and parses it exactly as an unsigned integer.
// ok is false for a negative, fractional, exponent or out-of-range number
// (JSON's grammar already forbids leading zeros and a leading '+'); err is
// set only when the next token is not a number at all.
func (s *scanner) uint() (v uint64, ok bool, err error) {
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, false, errSyntax
	}
	text, err := s.numberBytes()
	if err != nil {
		return 0, false, err
	}
	v, ok = parseDecimal(text)
	return v, ok, nil
}

// parseDecimal is strconv.ParseUint(text, 10, 64) without the string
// conversion: digits only, no overflow.
func parseDecimal(text []byte) (uint64, bool) {
	if len(text) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range text {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// skip consumes one complete value of any type. The header was checked by
// json.Valid, so only nesting needs tracking; the depth counter keeps it
// iterative (no recursion driven by input).
func (s *scanner) skip() error {
	depth := 0
	for {
		switch c := s.peek(); c {
		case 0:
			return errSyntax
		case '"':
			if _, err := s.str(); err != nil {
				return err
			}
		case '{', '[':
			depth++
			s.pos++
		case '}', ']':
			depth--
			s.pos++
		case ',', ':':
			s.pos++
			continue
		default:
			if err := s.literal(); err != nil {
				return err
			}
		}
		if depth <= 0 {
			return nil
		}
	}
}

// literal consumes a number, true, false or null.
func (s *scanner) literal() error {
	start := s.pos
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		if isSpace(c) || c == ',' || c == ':' || c == '}' || c == ']' || c == '[' || c == '{' || c == '"' {
			break
		}
		s.pos++
	}
	if s.pos == start {
		return errSyntax
	}
	return nil
}

// end reports whether only whitespace remains.
func (s *scanner) end() bool { return s.peek() == 0 && s.pos >= len(s.b) }
