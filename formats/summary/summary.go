// Package summary describes a formats.Source for people and scripts: the
// metadata as JSON-ready values, the tensor table and the totals
// (parameters, bytes, bits per parameter by dtype). It reads headers, and
// of bitsandbytes-quantized models the small quant_state JSON tensors,
// which give each quantized weight's original shape (bnb.go).
package summary

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// Report is what `qtool inspect` prints. Its JSON form is part of the
// scripting contract.
type Report struct {
	Path     string         `json:"path"`
	Format   string         `json:"format"`
	Details  map[string]any `json:"details,omitempty"`
	Metadata []Entry        `json:"metadata"`
	Tensors  []Tensor       `json:"tensors"`
	Totals   Totals         `json:"totals"`
}

// Entry is one metadata key. Value is JSON-ready: integers stay exact,
// float32 values are printed with float32 precision, non-finite floats are
// the strings "nan", "inf", "-inf", arrays are lists (nested for arrays of
// arrays).
type Entry struct {
	Key         string `json:"key"`
	Type        string `json:"type"`
	ElementType string `json:"element_type,omitempty"`
	Count       *int   `json:"count,omitempty"`
	Value       any    `json:"value"`
	raw         formats.Value
}

// Raw is the typed value.
func (e Entry) Raw() formats.Value { return e.raw }

// Tensor is one row of the tensor table. A bitsandbytes group is one row:
// its weight's name, the logical dtype (NF4, FP4, INT8, INT8_BLOCK), the
// original shape and element count, the bytes of every member, the
// weight's offset and file, and the other members' names in Parts.
type Tensor struct {
	Name   string   `json:"name"`
	DType  string   `json:"dtype"`
	Shape  []int64  `json:"shape"`
	Params int64    `json:"parameters"`
	Bytes  int64    `json:"bytes"`
	Offset int64    `json:"offset"`
	File   string   `json:"file,omitempty"`
	Parts  []string `json:"parts,omitempty"`
}

// DTypeTotal sums the tensors of one dtype.
type DTypeTotal struct {
	DType        string  `json:"dtype"`
	Tensors      int     `json:"tensors"`
	Params       int64   `json:"parameters"`
	Bytes        int64   `json:"bytes"`
	BitsPerParam float64 `json:"bits_per_param"`
}

// Totals sums the listed tensors.
type Totals struct {
	Tensors      int          `json:"tensors"`
	Params       int64        `json:"parameters"`
	Bytes        int64        `json:"bytes"`
	BitsPerParam float64      `json:"bits_per_param"`
	ByDType      []DTypeTotal `json:"by_dtype"`
}

// Filter selects tensors by name. A pattern with any of ^ $ ( ) | + \ is a
// regular expression (matched anywhere unless anchored); otherwise it is a
// glob (path.Match: * ? [..]) over the whole name.
type Filter struct {
	glob string
	re   *regexp.Regexp
}

// ParseFilter compiles a tensor-name pattern; "" matches everything.
func ParseFilter(p string) (*Filter, error) {
	if p == "" {
		return nil, nil
	}
	if strings.ContainsAny(p, "^$()|+\\") {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("tensor pattern %q: %w", p, err)
		}
		return &Filter{re: re}, nil
	}
	if _, err := path.Match(p, ""); err != nil {
		return nil, fmt.Errorf("tensor pattern %q: %w", p, err)
	}
	return &Filter{glob: p}, nil
}

// Match reports whether name passes the filter (a nil filter passes all).
func (f *Filter) Match(name string) bool {
	if f == nil {
		return true
	}
	if f.re != nil {
		return f.re.MatchString(name)
	}
	ok, _ := path.Match(f.glob, name)
	return ok
}

// Build describes src. Only tensors passing filter are listed and totalled;
// a bitsandbytes group passes when its weight's name does.
func Build(src formats.Source, pathName, format string, details map[string]any, filter *Filter) Report {
	r := Report{Path: pathName, Format: format, Details: details, Metadata: []Entry{}, Tensors: []Tensor{}}
	for _, kv := range src.Meta().KVs() {
		r.Metadata = append(r.Metadata, NewEntry(kv))
	}
	groups, member := bnbGroups(src)
	by := map[string]*DTypeTotal{}
	for _, t := range src.Tensors() {
		if !filter.Match(t.Name) {
			continue
		}
		var row Tensor
		switch g := groups[t.Name]; {
		case g != nil:
			row = g.row()
		case member[t.Name]:
			continue
		default:
			n, _ := t.NumElements()
			shape := t.Shape
			if shape == nil {
				shape = []int64{}
			}
			row = Tensor{Name: t.Name, DType: t.DType.String(), Shape: shape, Params: n, Bytes: t.Size, Offset: t.Offset, File: t.File}
		}
		r.Tensors = append(r.Tensors, row)
		d := by[row.DType]
		if d == nil {
			d = &DTypeTotal{DType: row.DType}
			by[row.DType] = d
		}
		d.Tensors++
		d.Params += row.Params
		d.Bytes += row.Bytes
		r.Totals.Tensors++
		r.Totals.Params += row.Params
		r.Totals.Bytes += row.Bytes
	}
	r.Totals.BitsPerParam = bitsPer(r.Totals.Bytes, r.Totals.Params)
	r.Totals.ByDType = []DTypeTotal{}
	for _, d := range by {
		d.BitsPerParam = bitsPer(d.Bytes, d.Params)
		r.Totals.ByDType = append(r.Totals.ByDType, *d)
	}
	sort.Slice(r.Totals.ByDType, func(i, j int) bool {
		a, b := r.Totals.ByDType[i], r.Totals.ByDType[j]
		if a.Bytes != b.Bytes {
			return a.Bytes > b.Bytes
		}
		return a.DType < b.DType
	})
	return r
}

func bitsPer(bytes, params int64) float64 {
	if params == 0 {
		return 0
	}
	return float64(bytes) * 8 / float64(params)
}
