package quantize

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/kernels"
)

// Reading bitsandbytes groups (the layout of bnblayout.go,
// NF4-BITSANDBYTES.md §5) from a safetensors source. Dequant decodes them
// to floats; BNBWeights hands them out as they are stored, for the
// inference and training code to multiply by without a decoded copy.

// ErrUnsupportedBNB: a bitsandbytes group is well formed but stored in a
// way qtool does not read: LLM.int8() weights whose weight_format is not
// 0, "row" (bitsandbytes' col32/col_turing/col_ampere tile orders), or a
// weight with a quant_state of a type other than nf4, fp4 and int8-block.
var ErrUnsupportedBNB = formats.NewRule("unsupported bitsandbytes weight layout", formats.ErrUnsupported)

// BNBWeight is one bitsandbytes-quantized weight of a safetensors source,
// validated, with views of its stored bytes. The slices alias the
// source's memory mapping when it has one (formats.ByteSource) and are
// valid until the source is closed; they must not be written to. Absmax
// is a fresh slice under double quantization (the reconstruction).
type BNBWeight struct {
	// Name is the weight's tensor name, X.weight.
	Name string
	// Type is TypeNF4, TypeFP4, TypeInt8 (LLM.int8(), row-wise) or
	// TypeInt8Block (qtool's blockwise 8-bit).
	Type Type
	// DoubleQuant reports that the 4-bit absmax is stored double-quantized
	// (X.weight.absmax U8 + nested_absmax + nested_quant_map).
	DoubleQuant bool
	// Shape is the original weight's shape: quant_state's "shape"
	// (4-bit, int8-block) or the CB tensor's [out, in] (int8).
	Shape []int64
	// Blocksize is the number of consecutive values (row-major, across
	// row ends) sharing one absmax; 0 for int8, whose scales are per row.
	Blocksize int
	// DType is the torch dtype quant_state records for the weight that
	// was quantized ("float16", "bfloat16", "float32"); "" for int8.
	DType string
	// Codes are the stored codes: for nf4/fp4 (n+1)/2 bytes of packed
	// 4-bit codes, element 2j in the high nibble; for int8-block n 8-bit
	// codes; for int8 the n int8 values of CB as bytes, row-major.
	Codes []byte
	// Absmax is the float32 scale of every block (ceil(n/Blocksize)
	// values; reconstructed from the nested quantization under
	// DoubleQuant); nil for int8.
	Absmax []float32
	// QuantMap is the file's code table: X.weight.quant_map, 16 values
	// (4-bit) or 256 (int8-block); nil for int8.
	QuantMap []float32
	// SCB is LLM.int8()'s row absmax, Shape[0] values; nil otherwise.
	SCB []float32
	// Members are the group's tensors as stored: the weight first, then
	// its companions.
	Members []formats.TensorInfo

	g *bnbSource
}

// NumElements is the number of values of the original weight.
func (w *BNBWeight) NumElements() int64 {
	n, _ := formats.TensorInfo{Shape: w.Shape}.NumElements()
	return n
}

// Companions are the names of the group's tensors other than the weight.
func (w *BNBWeight) Companions() []string {
	out := make([]string, 0, len(w.Members)-1)
	for _, m := range w.Members[1:] {
		out = append(out, m.Name)
	}
	return out
}

// StoredBytes is the size of all the group's tensors in the file.
func (w *BNBWeight) StoredBytes() int64 {
	var s int64
	for _, m := range w.Members {
		s += m.Size
	}
	return s
}

// Kind is the 4-bit data type of an nf4/fp4 weight.
func (w *BNBWeight) Kind() FourBit { return w.g.kind }

// StandardMap reports whether QuantMap is bitsandbytes' own table bit for
// bit (FourBit.Table for nf4/fp4, DynamicMap for int8-block), so that the
// built-in kernels decode the codes exactly; int8 has no table and
// reports true.
func (w *BNBWeight) StandardMap() bool {
	switch w.Type {
	case TypeNF4, TypeFP4:
		t := w.g.kind.Table()
		return sameTable(w.QuantMap, t[:])
	case TypeInt8Block:
		d := DynamicMap()
		return sameTable(w.QuantMap, d[:])
	}
	return true
}

// DequantizeRange writes the values of elements [off, off+len(dst)) of the
// weight (row-major in Shape) to dst, bit for bit as Dequant decodes them
// to F32: table[code]·absmax[block] in one float32 product (the file's
// quant_map, or bitsandbytes' dequantization table when StandardMap),
// and for int8 float32(float32(CB·SCB[row])·float32(1/127)). A range
// outside the weight is an error.
func (w *BNBWeight) DequantizeRange(dst []float32, off int64) error {
	n := w.NumElements()
	if off < 0 || off > n || int64(len(dst)) > n-off {
		return fmt.Errorf("quantize: %s: elements [%d, %d) outside the %d of the weight", w.Name, off, off+int64(len(dst)), n)
	}
	if len(dst) == 0 {
		return nil
	}
	if w.Type == TypeInt8 {
		cols := w.Shape[1]
		for e := off; e < off+int64(len(dst)); {
			r := e / cols
			end := min((r+1)*cols, off+int64(len(dst)))
			scale := w.SCB[r]
			for i, c := range w.Codes[e:end] {
				dst[e-off+int64(i)] = float32(float32(int8(c))*scale) * int8Inv127
			}
			e = end
		}
		return nil
	}
	table := w.QuantMap
	if (w.Type == TypeNF4 || w.Type == TypeFP4) && w.StandardMap() {
		table = w.g.kind.dequantTable()[:]
	}
	bs := int64(w.Blocksize)
	for e := off; e < off+int64(len(dst)); {
		b := e / bs
		end := min((b+1)*bs, off+int64(len(dst)))
		a, out := w.Absmax[b], dst[e-off:end-off]
		if w.Type == TypeInt8Block {
			for i, c := range w.Codes[e:end] {
				out[i] = table[c] * a
			}
		} else {
			for i := range out {
				p := w.Codes[(e+int64(i))/2]
				if (e+int64(i))%2 == 0 {
					p >>= 4
				}
				out[i] = table[p&15] * a
			}
		}
		e = end
	}
	return nil
}

// BNBWeights finds every bitsandbytes group of a safetensors source (by
// the rules Dequant uses: NF4/FP4 with or without double quantization,
// LLM.int8(), qtool's int8-block), checks it completely and returns it by
// its weight's name. Sizes are checked against the quant_state's shape,
// the blocksize and the nested blocksize before anything is allocated, a
// tensor may belong to one group only, and failures are
// *formats.FormatError naming the tensor, wrapping ErrBadQuantState
// (formats.ErrFormat) or, for a well-formed layout qtool cannot use,
// ErrUnsupportedBNB (formats.ErrUnsupported). The views are zero-copy when
// src is a formats.ByteSource; otherwise the tensors are read into memory.
// A source without groups gives an empty map.
func BNBWeights(src formats.Source) (map[string]*BNBWeight, error) {
	groups, _, err := findGroups(src)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*BNBWeight, len(groups))
	owner := map[string]string{}
	for _, ti := range src.Tensors() { // file order, so errors are deterministic
		g := groups[ti.Name]
		if g == nil {
			continue
		}
		for _, m := range g.members {
			if o, ok := owner[m.Name]; ok {
				return nil, stateError(m.Name, "belongs to the groups of both %s and %s", o, g.weight.Name)
			}
			owner[m.Name] = g.weight.Name
		}
		w, err := g.view(src)
		if err != nil {
			return nil, err
		}
		out[ti.Name] = w
	}
	// A quant_state of a layout this file does not know (another
	// bitsandbytes quant_type, a newer qtool layout) next to its weight.
	names := make(map[string]bool, len(src.Tensors()))
	for _, ti := range src.Tensors() {
		names[ti.Name] = true
	}
	for _, ti := range src.Tensors() {
		i := strings.Index(ti.Name, sfxQuantState)
		if i < 0 || owner[ti.Name] != "" {
			continue
		}
		if names[ti.Name[:i]] {
			return nil, &formats.FormatError{Offset: -1, Tensor: ti.Name, Err: ErrUnsupportedBNB,
				Detail: "quantization state of an unknown layout"}
		}
	}
	return out, nil
}

// view checks what findGroup left to the decoder and builds the views.
func (g *bnbSource) view(src formats.Source) (*BNBWeight, error) {
	w := &BNBWeight{Name: g.weight.Name, Type: g.typ, DoubleQuant: g.dq != nil, Shape: g.shape, Blocksize: g.block,
		DType: g.dtype, QuantMap: g.table, Members: g.members, g: g}
	if len(g.shape) > formats.DefaultLimits.MaxDims {
		return nil, stateError(g.weight.Name, "shape %v has more than %d dimensions", g.shape, formats.DefaultLimits.MaxDims)
	}
	if g.typ == TypeInt8Block {
		// DequantizeBlockwise8's range; readState allows 32 for 4-bit.
		if err := checkBlocksize(g.block, 64); err != nil {
			return nil, stateError(g.weight.Name+sfxQuantState+stateInt8Block, "%v", err)
		}
	}
	codes, err := readAll(src, g.weight)
	if err != nil {
		return nil, tensorError(g.weight.Name, err)
	}
	if int64(len(codes)) != g.weight.Size {
		return nil, stateError(g.weight.Name, "source gave %d bytes, want %d", len(codes), g.weight.Size)
	}
	w.Codes = codes
	if g.typ == TypeInt8 {
		b, err := readAll(src, g.absmax)
		if err != nil {
			return nil, tensorError(g.absmax.Name, err)
		}
		if w.SCB, err = float32View(b, g.shape[0]); err != nil {
			return nil, stateError(g.absmax.Name, "%v", err)
		}
		return w, nil
	}
	if g.dq == nil {
		b, err := readAll(src, g.absmax)
		if err != nil {
			return nil, tensorError(g.absmax.Name, err)
		}
		if w.Absmax, err = float32View(b, ceilDiv(w.NumElements(), int64(g.block))); err != nil {
			return nil, stateError(g.absmax.Name, "%v", err)
		}
		return w, nil
	}
	if w.Absmax, err = g.scales(src); err != nil {
		return nil, err
	}
	return w, nil
}

// float32View views n little-endian float32 values in place when the host
// and the alignment allow it, else decodes a copy.
func float32View(b []byte, n int64) ([]float32, error) {
	if int64(len(b)) != 4*n {
		return nil, fmt.Errorf("%d bytes for %d float32 values", len(b), n)
	}
	if n == 0 {
		return []float32{}, nil
	}
	m, err := kernels.F32MatrixFromBytes(b, 1, int(n))
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

// bnbSource is one quantized weight found in a safetensors source, its
// quant_state and small companions read and checked.
type bnbSource struct {
	typ     Type
	kind    FourBit
	weight  formats.TensorInfo
	absmax  formats.TensorInfo // 4-bit, int8-block: absmax; int8: SCB
	members []formats.TensorInfo
	shape   []int64 // the original weight's shape
	block   int
	dtype   string    // quant_state's dtype
	table   []float32 // 4-bit: quant_map; int8-block: the 256-entry code
	dq      *DoubleQuant
	nested  [256]float32 // nested_quant_map
}

// findGroups finds the groups of a source by their weights' names and the
// names of every group member.
func findGroups(src formats.Source) (map[string]*bnbSource, map[string]bool, error) {
	infos := src.Tensors()
	f := groupFinder{src: src, byName: make(map[string]formats.TensorInfo, len(infos))}
	for _, ti := range infos {
		f.byName[ti.Name] = ti
	}
	groups := map[string]*bnbSource{}
	member := map[string]bool{}
	for _, ti := range infos {
		g, err := f.find(ti)
		if err != nil {
			return nil, nil, err
		}
		if g != nil {
			groups[g.weight.Name] = g
			for _, m := range g.members {
				member[m.Name] = true
			}
		}
	}
	return groups, member, nil
}

// groupFinder reads the groups of one source.
type groupFinder struct {
	src    formats.Source
	byName map[string]formats.TensorInfo
}

// find recognises the weight of a bitsandbytes group by its companions,
// and reads and checks its quant_state and small companions.
func (f *groupFinder) find(ti formats.TensorInfo) (*bnbSource, error) {
	for _, k := range []FourBit{NF4, FP4} {
		if st, ok := f.byName[ti.Name+sfxQuantState+stateBNB+k.String()]; ok {
			return f.fourBitGroup(ti, k, st)
		}
	}
	if st, ok := f.byName[ti.Name+sfxQuantState+stateInt8Block]; ok {
		return f.blockwise8Group(ti, st)
	}
	if prefix, ok := strings.CutSuffix(ti.Name, "weight"); ok && ti.DType == formats.I8 {
		if scb, ok := f.byName[prefix+"SCB"]; ok {
			return f.int8Group(ti, scb, f.byName[prefix+"weight_format"])
		}
	}
	return nil, nil
}

// quantState is the JSON of X.weight.quant_state.*.
type quantState struct {
	QuantType       string   `json:"quant_type"`
	Blocksize       int      `json:"blocksize"`
	DType           string   `json:"dtype"`
	Shape           []int64  `json:"shape"`
	NestedBlocksize int      `json:"nested_blocksize"`
	NestedDType     string   `json:"nested_dtype"`
	NestedOffset    *float64 `json:"nested_offset"`
}

// stateError reports a malformed group.
func stateError(name, format string, args ...any) error {
	return &formats.FormatError{Offset: -1, Tensor: name, Err: ErrBadQuantState, Detail: fmt.Sprintf(format, args...)}
}

// readState parses a quant_state tensor and checks the weight's shape.
func (f *groupFinder) readState(st formats.TensorInfo, want string) (quantState, int64, error) {
	var qs quantState
	b, err := readAll(f.src, st)
	if err != nil {
		return qs, 0, err
	}
	if err := json.Unmarshal(b, &qs); err != nil {
		return qs, 0, stateError(st.Name, "JSON: %v", err)
	}
	if qs.QuantType != want {
		return qs, 0, stateError(st.Name, "quant_type %q, want %q", qs.QuantType, want)
	}
	n, ok := formats.TensorInfo{Shape: qs.Shape}.NumElements()
	if !ok || len(qs.Shape) == 0 {
		return qs, 0, stateError(st.Name, "bad shape %v", qs.Shape)
	}
	if qs.Blocksize < 32 || qs.Blocksize > 4096 || qs.Blocksize&(qs.Blocksize-1) != 0 {
		return qs, 0, stateError(st.Name, "blocksize %d", qs.Blocksize)
	}
	return qs, n, nil
}

// readFloats reads a small F32 companion of an expected length.
func (f *groupFinder) readFloats(ti formats.TensorInfo, n int64) ([]float32, error) {
	if ti.DType != formats.F32 || ti.Size != 4*n {
		return nil, stateError(ti.Name, "%v %v, want F32 [%d]", ti.DType, ti.Shape, n)
	}
	b, err := readAll(f.src, ti)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != ti.Size {
		return nil, stateError(ti.Name, "source gave %d bytes, want %d", len(b), ti.Size)
	}
	v := make([]float32, n)
	return v, ToFloat32(v, b, formats.F32)
}

// companion looks a member up.
func (f *groupFinder) companion(name string) (formats.TensorInfo, error) {
	ti, ok := f.byName[name]
	if !ok {
		return ti, stateError(name, "missing")
	}
	return ti, nil
}

// fourBitGroup reads an NF4/FP4 group.
func (f *groupFinder) fourBitGroup(w formats.TensorInfo, k FourBit, st formats.TensorInfo) (*bnbSource, error) {
	qs, n, err := f.readState(st, k.String())
	if err != nil {
		return nil, err
	}
	g := &bnbSource{typ: TypeNF4, kind: k, weight: w, shape: qs.Shape, block: qs.Blocksize, dtype: qs.DType, members: []formats.TensorInfo{w, st}}
	if k == FP4 {
		g.typ = TypeFP4
	}
	if w.Size != (n+1)/2 {
		return nil, stateError(w.Name, "%d bytes, want %d for %d 4-bit codes", w.Size, (n+1)/2, n)
	}
	nb := ceilDiv(n, int64(qs.Blocksize))
	qm, err := f.companion(w.Name + sfxQuantMap)
	if err != nil {
		return nil, err
	}
	if g.table, err = f.readFloats(qm, 16); err != nil {
		return nil, err
	}
	if g.absmax, err = f.companion(w.Name + sfxAbsmax); err != nil {
		return nil, err
	}
	g.members = append(g.members, qm, g.absmax)
	if qs.NestedOffset == nil {
		if g.absmax.DType != formats.F32 || g.absmax.Size != 4*nb {
			return nil, stateError(g.absmax.Name, "%v %v, want F32 [%d]", g.absmax.DType, g.absmax.Shape, nb)
		}
		return g, nil
	}
	return g, f.nestedState(g, qs, nb)
}

// nestedState reads the double-quantization companions of a 4-bit group.
func (f *groupFinder) nestedState(g *bnbSource, qs quantState, nb int64) error {
	if g.absmax.DType != formats.U8 || g.absmax.Size != nb {
		return stateError(g.absmax.Name, "%v %v, want U8 [%d] under double quantization", g.absmax.DType, g.absmax.Shape, nb)
	}
	if qs.NestedBlocksize <= 0 {
		return stateError(g.members[1].Name, "nested_blocksize %d", qs.NestedBlocksize) // the quant_state
	}
	na, err := f.companion(g.weight.Name + sfxNestedAbsmax)
	if err != nil {
		return err
	}
	nm, err := f.companion(g.weight.Name + sfxNestedQuantMap)
	if err != nil {
		return err
	}
	g.members = append(g.members, na, nm)
	nested, err := f.readFloats(na, ceilDiv(nb, int64(qs.NestedBlocksize)))
	if err != nil {
		return err
	}
	m, err := f.readFloats(nm, 256)
	if err != nil {
		return err
	}
	copy(g.nested[:], m)
	g.dq = &DoubleQuant{NestedAbsmax: nested, Offset: float32(*qs.NestedOffset), Blocksize: qs.NestedBlocksize}
	if err := (DoubleQuant{Codes: make([]uint8, nb), NestedAbsmax: nested, Blocksize: qs.NestedBlocksize}).Validate(); err != nil {
		return stateError(na.Name, "%v", err)
	}
	return nil
}

// blockwise8Group reads a qtool int8-block group.
func (f *groupFinder) blockwise8Group(w formats.TensorInfo, st formats.TensorInfo) (*bnbSource, error) {
	qs, n, err := f.readState(st, "int8-block")
	if err != nil {
		return nil, err
	}
	if w.DType != formats.U8 || w.Size != n {
		return nil, stateError(w.Name, "%v of %d bytes, want U8 [%d]", w.DType, w.Size, n)
	}
	g := &bnbSource{typ: TypeInt8Block, weight: w, shape: qs.Shape, block: qs.Blocksize, dtype: qs.DType, members: []formats.TensorInfo{w, st}}
	qm, err := f.companion(w.Name + sfxQuantMap)
	if err != nil {
		return nil, err
	}
	if g.table, err = f.readFloats(qm, 256); err != nil {
		return nil, err
	}
	if g.absmax, err = f.companion(w.Name + sfxAbsmax); err != nil {
		return nil, err
	}
	if nb := ceilDiv(n, int64(qs.Blocksize)); g.absmax.DType != formats.F32 || g.absmax.Size != 4*nb {
		return nil, stateError(g.absmax.Name, "%v %v, want F32 [%d]", g.absmax.DType, g.absmax.Shape, nb)
	}
	g.members = append(g.members, qm, g.absmax)
	return g, nil
}

// int8Group checks an LLM.int8() group. X.weight_format, when present,
// must be the one byte 0 ("row", the only layout transformers loads);
// bitsandbytes' tiled layouts are ErrUnsupportedBNB.
func (f *groupFinder) int8Group(w, scb, format formats.TensorInfo) (*bnbSource, error) {
	if len(w.Shape) != 2 {
		return nil, stateError(w.Name, "shape %v, want [out, in]", w.Shape)
	}
	if scb.DType != formats.F32 || scb.Size != 4*w.Shape[0] {
		return nil, stateError(scb.Name, "%v %v, want F32 [%d]", scb.DType, scb.Shape, w.Shape[0])
	}
	g := &bnbSource{typ: TypeInt8, weight: w, absmax: scb, shape: w.Shape, members: []formats.TensorInfo{w, scb}}
	if format.Name != "" {
		if format.DType != formats.U8 || format.Size != 1 {
			return nil, stateError(format.Name, "%v %v, want one U8", format.DType, format.Shape)
		}
		b, err := readAll(f.src, format)
		if err != nil {
			return nil, err
		}
		if len(b) != 1 {
			return nil, stateError(format.Name, "source gave %d bytes, want 1", len(b))
		}
		if b[0] != 0 {
			return nil, &formats.FormatError{Offset: -1, Tensor: format.Name, Err: ErrUnsupportedBNB,
				Detail: fmt.Sprintf("weight_format %d, only 0 (row) is read", b[0])}
		}
		g.members = append(g.members, format)
	}
	return g, nil
}

// scales reads the group's absmax (reconstructed under double
// quantization) or SCB as a new slice.
func (g *bnbSource) scales(src formats.Source) ([]float32, error) {
	b, err := readAll(src, g.absmax)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != g.absmax.Size {
		return nil, stateError(g.absmax.Name, "source gave %d bytes, want %d", len(b), g.absmax.Size)
	}
	if g.dq == nil {
		v := make([]float32, len(b)/4)
		return v, ToFloat32(v, b, formats.F32)
	}
	dq := *g.dq
	dq.Codes = b
	v := make([]float32, len(b))
	dq.AbsmaxWithMap(v, &g.nested)
	return v, nil
}

// decode dequantizes one chunk of codes (whole blocks, or whole rows for
// int8) with its scales.
func (g *bnbSource) decode(x []float32, raw []byte, scales []float32, workers int) error {
	switch g.typ {
	case TypeInt8:
		cb := make([]int8, len(raw))
		for i, c := range raw {
			cb[i] = int8(c)
		}
		cols := int(g.shape[1])
		return DequantizeInt8Rows(x, cb, scales, len(x)/cols, cols)
	case TypeInt8Block:
		if dyn := DynamicMap(); sameTable(g.table, dyn[:]) {
			return DequantizeBlockwise8(x, raw, scales, g.block)
		}
		for i, c := range raw {
			x[i] = g.table[c] * scales[i/g.block]
		}
		return nil
	}
	if tbl := g.kind.Table(); sameTable(g.table, tbl[:]) {
		return Dequantize4BitTo(g.kind, x, raw, scales, g.block, Options4Bit{Workers: workers})
	}
	// A quant_map other than bitsandbytes' table: use the file's.
	for i := range x {
		c := raw[i/2] >> 4
		if i%2 == 1 {
			c = raw[i/2] & 15
		}
		x[i] = g.table[c] * scales[i/g.block]
	}
	return nil
}

// sameTable compares a file's code table with a built-in one bit for bit.
func sameTable(file, b []float32) bool {
	if len(file) != len(b) {
		return false
	}
	for i := range b {
		if math.Float32bits(file[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
