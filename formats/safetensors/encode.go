package safetensors

import (
	"fmt"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/internal/bin"
)

// metaPair is one __metadata__ entry in the order it will be written.
type metaPair struct{ k, v string }

// plan is a file laid out before any data is written (STYLE rule 13): the
// padded header and the tensors in data order.
type plan struct {
	header []byte           // N bytes: compact JSON padded with spaces
	order  []formats.Tensor // data order; each tensor's data follows the previous one
	data   int64            // total data bytes
}

// sortedMeta turns a map into pairs with keys in byte order.
func sortedMeta(m map[string]string) []metaPair {
	ps := make([]metaPair, 0, len(m))
	for k, v := range m {
		ps = append(ps, metaPair{k, v})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].k < ps[j].k })
	return ps
}

// orderedMeta turns a formats.Meta into pairs in its order. Every value
// must be a string (ErrMetaNotString).
func orderedMeta(m *formats.Meta) ([]metaPair, error) {
	ps := make([]metaPair, 0, m.Len())
	for _, kv := range m.KVs() {
		s, ok := kv.Value.V.(string)
		if kv.Value.Type != formats.TypeString || !ok {
			return nil, fail("", -1, "", kv.Key, ErrMetaNotString, fmt.Sprintf("value of type %v", kv.Value.Type))
		}
		ps = append(ps, metaPair{kv.Key, s})
	}
	return ps, nil
}

// HeaderFor returns the header Write would produce for meta and ts: the N
// bytes that follow the 8-byte length prefix (compact JSON, __metadata__
// first with sorted keys when meta is non-empty, then the tensor entries in
// data order, padded with spaces to a multiple of 8). It checks the tensors
// as Write does, without touching their Data.
func HeaderFor(meta map[string]string, ts []formats.Tensor) ([]byte, error) {
	p, err := makePlan(sortedMeta(meta), ts)
	if err != nil {
		return nil, err
	}
	return p.header, nil
}

// dataOrder is the writer's deterministic layout, the convention of HF's
// safetensors writer and of the goldens: element size descending (so every
// tensor starts at a multiple of its element size once the header is padded
// to 8), then name in byte order.
func dataOrder(ts []formats.Tensor) []formats.Tensor {
	out := append([]formats.Tensor(nil), ts...)
	sort.SliceStable(out, func(i, j int) bool {
		wi, wj := out[i].DType.BlockBytes(), out[j].DType.BlockBytes()
		if wi != wj {
			return wi > wj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// checkTensor applies the writer's rules to one tensor and returns its
// safetensors dtype name.
func checkTensor(t *formats.Tensor) (string, error) {
	bad := func(rule error, detail string) error { return fail("", -1, t.Name, "", rule, detail) }
	if !utf8.ValidString(t.Name) {
		return "", bad(ErrInvalidUTF8, "tensor name")
	}
	if t.Name == metadataKey {
		return "", bad(ErrReservedName, "")
	}
	st, ok := t.DType.SafetensorsName()
	if !ok {
		return "", bad(ErrDTypeNotStorable, t.DType.String())
	}
	for _, d := range t.Shape {
		if d < 0 {
			return "", bad(ErrBadShape, fmt.Sprintf("shape %v", t.Shape))
		}
	}
	n, ok := bin.Product(t.Shape)
	if !ok {
		return "", bad(ErrOverflow, fmt.Sprintf("element count of shape %v", t.Shape))
	}
	nb, ok := bin.MulI64(n, t.DType.BlockBytes())
	if !ok {
		return "", bad(ErrOverflow, fmt.Sprintf("%d elements of %v", n, t.DType))
	}
	if nb != t.Size {
		return "", bad(ErrSizeMismatch, fmt.Sprintf("Size %d, %v%v needs %d", t.Size, t.DType, t.Shape, nb))
	}
	return st, nil
}

// makePlan checks meta and ts and lays the file out.
func makePlan(meta []metaPair, ts []formats.Tensor) (*plan, error) {
	seen := make(map[string]struct{}, len(ts))
	for i := range ts {
		if _, dup := seen[ts[i].Name]; dup {
			return nil, fail("", -1, ts[i].Name, "", ErrDuplicateName, "")
		}
		seen[ts[i].Name] = struct{}{}
	}
	for _, p := range meta {
		if !utf8.ValidString(p.k) || !utf8.ValidString(p.v) {
			return nil, fail("", -1, "", p.k, ErrInvalidUTF8, "metadata")
		}
	}
	p := &plan{order: dataOrder(ts)}
	h := make([]byte, 0, 64+len(ts)*96)
	h = append(h, '{')
	if len(meta) > 0 {
		h = append(h, `"__metadata__":{`...)
		for i, kv := range meta {
			if i > 0 {
				h = append(h, ',')
			}
			h = appendString(h, kv.k, false)
			h = append(h, ':')
			h = appendString(h, kv.v, false)
		}
		h = append(h, '}')
	}
	for i := range p.order {
		t := &p.order[i]
		st, err := checkTensor(t)
		if err != nil {
			return nil, err
		}
		end, ok := bin.AddI64(p.data, t.Size)
		if !ok {
			return nil, fail("", -1, t.Name, "", ErrOverflow, "total data size")
		}
		if len(h) > 1 {
			h = append(h, ',')
		}
		h = appendString(h, t.Name, false)
		h = append(h, `:{"dtype":"`...)
		h = append(h, st...)
		h = append(h, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				h = append(h, ',')
			}
			h = strconv.AppendInt(h, d, 10)
		}
		h = append(h, `],"data_offsets":[`...)
		h = strconv.AppendInt(h, p.data, 10)
		h = append(h, ',')
		h = strconv.AppendInt(h, end, 10)
		h = append(h, "]}"...)
		p.data = end
	}
	h = append(h, '}')
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	if limit := formats.DefaultLimits.MaxHeaderBytes; int64(len(h)) > limit {
		return nil, fail("", -1, "", "", ErrHeaderTooLarge, fmt.Sprintf("header of %d bytes, limit %d", len(h), limit))
	}
	p.header = h
	return p, nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way Python's json.dumps
// writes it: '"' and '\\' escaped, \b \f \n \r \t for those controls, other
// controls below 0x20 as \u00xx (lowercase hex), no HTML escaping. With
// asciiOnly false (ensure_ascii=False, the header) every other character is
// kept raw; with asciiOnly true (ensure_ascii=True, the index file) DEL and
// every non-ASCII character become \uxxxx, astral ones as a surrogate pair.
// s must be valid UTF-8.
func appendString(dst []byte, s string, asciiOnly bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && (c < 0x7f || !asciiOnly) {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, `\"`...)
		case '\\':
			dst = append(dst, `\\`...)
		case '\b':
			dst = append(dst, `\b`...)
		case '\f':
			dst = append(dst, `\f`...)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		default:
			if c < 0x80 {
				dst = appendU(dst, rune(c))
				break
			}
			r, n := utf8.DecodeRuneInString(s[i:])
			if r >= 0x10000 {
				r -= 0x10000
				dst = appendU(dst, 0xD800+(r>>10))
				dst = appendU(dst, 0xDC00+(r&0x3FF))
			} else {
				dst = appendU(dst, r)
			}
			i += n
			start = i
			continue
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendU appends \u and four lowercase hex digits.
func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u',
		hexDigits[r>>12&0xF], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
}
