package summary

import (
	"encoding/json"
	"io"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// bitsandbytes groups (shared/docs/NF4-BITSANDBYTES.md §5). A model that
// transformers saved with bitsandbytes stores each quantized Linear weight
// X.weight as several tensors:
//
//	4-bit:  X.weight (U8, packed codes), X.weight.absmax, X.weight.quant_map,
//	        X.weight.nested_absmax and X.weight.nested_quant_map (double
//	        quantization), X.weight.quant_state.bitsandbytes__nf4|fp4 (a U8
//	        tensor holding JSON with the original shape)
//	int8:   X.weight (I8 [out, in]), X.SCB (F32 [out]), X.weight_format
//
// and qtool's blockwise 8-bit adds the 4-bit pattern with
// X.weight.quant_state.qtool__int8_block. The summary lists each group as
// one logical tensor: dtype NF4, FP4, INT8 or INT8_BLOCK, the original
// shape and element count, and the bytes of all its members, so that bits
// per parameter is the real storage cost. Only the quant_state JSON is
// read; a group whose JSON or members do not check out is listed tensor
// by tensor instead.

// bnbGroup is one recognised group.
type bnbGroup struct {
	dtype   string
	shape   []int64
	params  int64
	members []formats.TensorInfo // the weight first
}

// maxQuantState bounds the quant_state JSON read per group.
const maxQuantState = 1 << 16

// quantStateKinds maps a quant_state suffix to the logical dtype.
var quantStateKinds = map[string]string{
	"bitsandbytes__nf4": "NF4",
	"bitsandbytes__fp4": "FP4",
	"qtool__int8_block": "INT8_BLOCK",
}

// bnbGroups finds the groups of src, keyed by their weight's name, and
// the names of every member.
func bnbGroups(src formats.Source) (map[string]*bnbGroup, map[string]bool) {
	infos := src.Tensors()
	byName := make(map[string]formats.TensorInfo, len(infos))
	for _, t := range infos {
		byName[t.Name] = t
	}
	groups := map[string]*bnbGroup{}
	member := map[string]bool{}
	add := func(g *bnbGroup) {
		for _, m := range g.members {
			if member[m.Name] {
				return // already in another group: leave this one ungrouped
			}
		}
		for _, m := range g.members {
			member[m.Name] = true
		}
		groups[g.members[0].Name] = g
	}
	for _, t := range infos {
		if g := quantStateGroup(src, t, byName); g != nil {
			add(g)
		} else if g := int8Group(t, byName); g != nil {
			add(g)
		}
	}
	return groups, member
}

// quantStateGroup recognises a 4-bit or int8-block group by its
// quant_state tensor st.
func quantStateGroup(src formats.Source, st formats.TensorInfo, byName map[string]formats.TensorInfo) *bnbGroup {
	weight, kind, ok := strings.Cut(st.Name, ".quant_state.")
	dtype := quantStateKinds[kind]
	if !ok || dtype == "" || st.DType != formats.U8 || st.Size <= 0 || st.Size > maxQuantState {
		return nil
	}
	w, ok := byName[weight]
	if !ok || w.DType != formats.U8 {
		return nil
	}
	shape, n, ok := readQuantStateShape(src, st)
	if !ok {
		return nil
	}
	want := n
	if dtype != "INT8_BLOCK" {
		want = n/2 + n%2 // two 4-bit codes per byte
	}
	if w.Size != want {
		return nil
	}
	g := &bnbGroup{dtype: dtype, shape: shape, params: n, members: []formats.TensorInfo{w}}
	for _, sfx := range []string{".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map"} {
		if m, ok := byName[weight+sfx]; ok {
			g.members = append(g.members, m)
		}
	}
	g.members = append(g.members, st)
	return g
}

// readQuantStateShape reads the "shape" of a quant_state JSON tensor and
// its element count.
func readQuantStateShape(src formats.Source, st formats.TensorInfo) ([]int64, int64, bool) {
	sec, err := src.Section(st.Name)
	if err != nil || sec.Size() != st.Size {
		return nil, 0, false
	}
	b := make([]byte, st.Size)
	if _, err := sec.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, 0, false
	}
	var qs struct {
		Shape []int64 `json:"shape"`
	}
	if json.Unmarshal(b, &qs) != nil || len(qs.Shape) == 0 {
		return nil, 0, false
	}
	for _, d := range qs.Shape {
		if d <= 0 {
			return nil, 0, false
		}
	}
	n, ok := formats.TensorInfo{Shape: qs.Shape}.NumElements()
	return qs.Shape, n, ok
}

// int8Group recognises an LLM.int8() group by its SCB tensor.
func int8Group(scb formats.TensorInfo, byName map[string]formats.TensorInfo) *bnbGroup {
	prefix, ok := strings.CutSuffix(scb.Name, "SCB")
	if !ok || scb.DType != formats.F32 || len(scb.Shape) != 1 {
		return nil
	}
	w, ok := byName[prefix+"weight"]
	if !ok || w.DType != formats.I8 || len(w.Shape) != 2 || w.Shape[0] != scb.Shape[0] {
		return nil
	}
	n, ok := w.NumElements()
	if !ok {
		return nil
	}
	g := &bnbGroup{dtype: "INT8", shape: w.Shape, params: n, members: []formats.TensorInfo{w, scb}}
	if f, ok := byName[prefix+"weight_format"]; ok {
		g.members = append(g.members, f)
	}
	return g
}

// row is the group's line in the tensor table.
func (g *bnbGroup) row() Tensor {
	w := g.members[0]
	t := Tensor{Name: w.Name, DType: g.dtype, Shape: g.shape, Params: g.params, Offset: w.Offset, File: w.File}
	for _, m := range g.members {
		t.Bytes += m.Size
		if m.Name != w.Name {
			t.Parts = append(t.Parts, m.Name)
		}
	}
	return t
}
