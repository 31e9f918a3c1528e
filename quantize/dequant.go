package quantize

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// DequantConfig says what Dequant produces.
type DequantConfig struct {
	// DType is the output dtype of every quantized tensor: F32, F16 or BF16.
	DType formats.DType
	// Format is the container of the source, which the output keeps.
	Format Container
	// Workers bounds the goroutines of one tensor; 0 means GOMAXPROCS.
	Workers int
	// MaxMemory bounds the working memory as Config.MaxMemory does; 0
	// means DefaultMaxMemory.
	MaxMemory int64
	// Progress, when set, is called as source bytes are consumed.
	Progress func(done, total int64)
}

// Dequant plans the dequantization of every quantized tensor of src to
// cfg.DType; all other tensors are copied unchanged.
//
// In GGUF the quantized tensors are those of a ggml block type
// (GGMLDequantizable; others fail with formats.ErrUnsupported); the KVs
// are kept in order except that general.quantization_version is dropped
// and general.file_type moves to the end with the new dtype's value.
//
// In safetensors they are bitsandbytes groups, recognised by their
// companions (NF4/FP4 with or without double quantization by
// X.weight.quant_state.bitsandbytes__nf4|fp4, LLM.int8() by X.SCB, qtool's
// int8-block by X.weight.quant_state.qtool__int8_block): each becomes one
// tensor X.weight of the original shape, and the companions disappear.
// RewriteConfig then removes config.json's quantization_config. The
// quant_state and the small companions are read and checked here
// (ErrBadQuantState); the weights are decoded lazily, chunk by chunk.
func Dequant(src formats.Source, cfg DequantConfig) (*Output, error) {
	switch cfg.DType {
	case formats.F32, formats.F16, formats.BF16:
	default:
		return nil, fmt.Errorf("quantize: dequantize to %v: want F32, F16 or BF16: %w", cfg.DType, ErrBadConfig)
	}
	f := cfg.Format
	if f == "" {
		f = guessContainer(src)
	}
	if cfg.MaxMemory < 0 {
		return nil, fmt.Errorf("quantize: negative memory limit %d: %w", cfg.MaxMemory, ErrBadConfig)
	}
	o := newOutput(src, f, cfg.Workers, cfg.MaxMemory, false, cfg.Progress)
	var err error
	switch f {
	case GGUF:
		err = o.dequantGGUF(cfg.DType)
	case Safetensors:
		err = o.dequantBNB(cfg.DType)
	default:
		err = fmt.Errorf("quantize: unknown format %q: %w", f, ErrBadConfig)
	}
	if err != nil {
		return nil, err
	}
	if err := o.fitMemory(); err != nil {
		return nil, err
	}
	return o, nil
}

// guessContainer takes a source with ggml block types or non-string
// metadata for GGUF.
func guessContainer(src formats.Source) Container {
	for _, ti := range src.Tensors() {
		if ti.DType.Quantized() {
			return GGUF
		}
	}
	for _, kv := range src.Meta().KVs() {
		if kv.Value.Type != formats.TypeString {
			return GGUF
		}
	}
	return Safetensors
}

// dequantGGUF plans a GGUF dequantization.
func (o *Output) dequantGGUF(to formats.DType) error {
	for _, ti := range o.src.Tensors() {
		if !ti.DType.Quantized() {
			o.needs = append(o.needs, copyNeed(ti))
			o.add(decisionFor(ti, keep("not quantized"), ti.DType.String()), o.copied(ti))
			continue
		}
		if !GGMLDequantizable(ti.DType) {
			return fmt.Errorf("quantize: tensor %q: cannot dequantize %v: %w", ti.Name, ti.DType, formats.ErrUnsupported)
		}
		t := typeOfDType(to)
		o.needs = append(o.needs, memNeed{name: ti.Name, unit: max(rowLength(ti.Shape), 1), unitName: "row"})
		o.add(decisionFor(ti, choice{typ: t, asked: t}, to.String()), o.converted(ti, to))
	}
	m := o.src.Meta().Clone()
	m.Delete(keyQuantVersion)
	m.Delete(keyFileType)
	m.Set(keyFileType, formats.ValUint32(typeOfDType(to).FileType()))
	o.Meta = m
	return nil
}

// bnbSource is one quantized weight found in a safetensors source.
type bnbSource struct {
	typ     Type
	kind    FourBit
	weight  formats.TensorInfo
	absmax  formats.TensorInfo // 4-bit, int8-block: absmax; int8: SCB
	members []formats.TensorInfo
	shape   []int64 // the original weight's shape
	block   int
	table   []float32 // 4-bit: quant_map; int8-block: the 256-entry code
	dq      *DoubleQuant
	nested  [256]float32 // nested_quant_map
}

// dequantBNB plans a safetensors dequantization.
func (o *Output) dequantBNB(to formats.DType) error {
	infos := o.src.Tensors()
	byName := make(map[string]formats.TensorInfo, len(infos))
	for _, ti := range infos {
		byName[ti.Name] = ti
	}
	groups := map[string]*bnbSource{}
	member := map[string]bool{}
	for _, ti := range infos {
		g, err := o.findGroup(ti, byName)
		if err != nil {
			return err
		}
		if g != nil {
			groups[g.weight.Name] = g
			for _, m := range g.members {
				member[m.Name] = true
			}
		}
	}
	for _, ti := range infos {
		g := groups[ti.Name]
		switch {
		case g != nil:
			o.addDequantGroup(g, to)
		case member[ti.Name]:
		default:
			o.needs = append(o.needs, copyNeed(ti))
			o.add(decisionFor(ti, keep("not quantized"), ti.DType.String()), o.copied(ti))
		}
	}
	o.Meta = o.src.Meta()
	o.hf = hfConfigEdit{}
	return nil
}

// findGroup recognises the weight of a bitsandbytes group by its
// companions, and reads and checks its quant_state and small companions.
func (o *Output) findGroup(ti formats.TensorInfo, byName map[string]formats.TensorInfo) (*bnbSource, error) {
	for _, k := range []FourBit{NF4, FP4} {
		if st, ok := byName[ti.Name+sfxQuantState+stateBNB+k.String()]; ok {
			return o.fourBitGroup(ti, k, st, byName)
		}
	}
	if st, ok := byName[ti.Name+sfxQuantState+stateInt8Block]; ok {
		return o.blockwise8Group(ti, st, byName)
	}
	if prefix, ok := strings.CutSuffix(ti.Name, "weight"); ok && ti.DType == formats.I8 {
		if scb, ok := byName[prefix+"SCB"]; ok {
			return int8Group(ti, scb, byName[prefix+"weight_format"])
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
func (o *Output) readState(st formats.TensorInfo, want string) (quantState, int64, error) {
	var qs quantState
	b, err := readAll(o.src, st)
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
func (o *Output) readFloats(ti formats.TensorInfo, n int64) ([]float32, error) {
	if ti.DType != formats.F32 || ti.Size != 4*n {
		return nil, stateError(ti.Name, "%v %v, want F32 [%d]", ti.DType, ti.Shape, n)
	}
	b, err := readAll(o.src, ti)
	if err != nil {
		return nil, err
	}
	v := make([]float32, n)
	return v, ToFloat32(v, b, formats.F32)
}

// companion looks a member up.
func companion(byName map[string]formats.TensorInfo, name string) (formats.TensorInfo, error) {
	ti, ok := byName[name]
	if !ok {
		return ti, stateError(name, "missing")
	}
	return ti, nil
}

// fourBitGroup reads an NF4/FP4 group.
func (o *Output) fourBitGroup(w formats.TensorInfo, k FourBit, st formats.TensorInfo, byName map[string]formats.TensorInfo) (*bnbSource, error) {
	qs, n, err := o.readState(st, k.String())
	if err != nil {
		return nil, err
	}
	g := &bnbSource{typ: TypeNF4, kind: k, weight: w, shape: qs.Shape, block: qs.Blocksize, members: []formats.TensorInfo{w, st}}
	if k == FP4 {
		g.typ = TypeFP4
	}
	if w.Size != (n+1)/2 {
		return nil, stateError(w.Name, "%d bytes, want %d for %d 4-bit codes", w.Size, (n+1)/2, n)
	}
	nb := ceilDiv(n, int64(qs.Blocksize))
	qm, err := companion(byName, w.Name+sfxQuantMap)
	if err != nil {
		return nil, err
	}
	if g.table, err = o.readFloats(qm, 16); err != nil {
		return nil, err
	}
	if g.absmax, err = companion(byName, w.Name+sfxAbsmax); err != nil {
		return nil, err
	}
	g.members = append(g.members, qm, g.absmax)
	if qs.NestedOffset == nil {
		if g.absmax.DType != formats.F32 || g.absmax.Size != 4*nb {
			return nil, stateError(g.absmax.Name, "%v %v, want F32 [%d]", g.absmax.DType, g.absmax.Shape, nb)
		}
		return g, nil
	}
	return g, o.nestedState(g, qs, nb, byName)
}

// nestedState reads the double-quantization companions of a 4-bit group.
func (o *Output) nestedState(g *bnbSource, qs quantState, nb int64, byName map[string]formats.TensorInfo) error {
	if g.absmax.DType != formats.U8 || g.absmax.Size != nb {
		return stateError(g.absmax.Name, "%v %v, want U8 [%d] under double quantization", g.absmax.DType, g.absmax.Shape, nb)
	}
	if qs.NestedBlocksize <= 0 {
		return stateError(g.weight.Name+sfxQuantState, "nested_blocksize %d", qs.NestedBlocksize)
	}
	na, err := companion(byName, g.weight.Name+sfxNestedAbsmax)
	if err != nil {
		return err
	}
	nm, err := companion(byName, g.weight.Name+sfxNestedQuantMap)
	if err != nil {
		return err
	}
	g.members = append(g.members, na, nm)
	nested, err := o.readFloats(na, ceilDiv(nb, int64(qs.NestedBlocksize)))
	if err != nil {
		return err
	}
	m, err := o.readFloats(nm, 256)
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
func (o *Output) blockwise8Group(w formats.TensorInfo, st formats.TensorInfo, byName map[string]formats.TensorInfo) (*bnbSource, error) {
	qs, n, err := o.readState(st, "int8-block")
	if err != nil {
		return nil, err
	}
	if w.DType != formats.U8 || w.Size != n {
		return nil, stateError(w.Name, "%v of %d bytes, want U8 [%d]", w.DType, w.Size, n)
	}
	g := &bnbSource{typ: TypeInt8Block, weight: w, shape: qs.Shape, block: qs.Blocksize, members: []formats.TensorInfo{w, st}}
	qm, err := companion(byName, w.Name+sfxQuantMap)
	if err != nil {
		return nil, err
	}
	if g.table, err = o.readFloats(qm, 256); err != nil {
		return nil, err
	}
	if g.absmax, err = companion(byName, w.Name+sfxAbsmax); err != nil {
		return nil, err
	}
	if nb := ceilDiv(n, int64(qs.Blocksize)); g.absmax.DType != formats.F32 || g.absmax.Size != 4*nb {
		return nil, stateError(g.absmax.Name, "%v %v, want F32 [%d]", g.absmax.DType, g.absmax.Shape, nb)
	}
	g.members = append(g.members, qm, g.absmax)
	return g, nil
}

// int8Group checks an LLM.int8() group.
func int8Group(w, scb, format formats.TensorInfo) (*bnbSource, error) {
	if len(w.Shape) != 2 {
		return nil, stateError(w.Name, "shape %v, want [out, in]", w.Shape)
	}
	if scb.DType != formats.F32 || scb.Size != 4*w.Shape[0] {
		return nil, stateError(scb.Name, "%v %v, want F32 [%d]", scb.DType, scb.Shape, w.Shape[0])
	}
	g := &bnbSource{typ: TypeInt8, weight: w, absmax: scb, shape: w.Shape, members: []formats.TensorInfo{w, scb}}
	if format.Name != "" {
		g.members = append(g.members, format)
	}
	return g, nil
}

// addDequantGroup adds the dequantized weight of a group.
func (o *Output) addDequantGroup(g *bnbSource, to formats.DType) {
	from := g.typ.String()
	if g.dq != nil {
		from += "+dq"
	}
	n, _ := formats.TensorInfo{Shape: g.shape}.NumElements()
	d := Decision{Name: g.weight.Name, From: from, To: to.String(), Type: typeOfDType(to), Params: n}
	for _, m := range g.members {
		d.BytesIn += m.Size
	}
	// The scales as float32 plus their bytes as read.
	need := memNeed{name: g.weight.Name, unit: int64(g.block), unitName: "block", side: 4*ceilDiv(n, int64(max(g.block, 1))) + g.absmax.Size}
	if g.typ == TypeInt8 {
		need.unit, need.unitName, need.side = g.shape[1], "row", 4*g.shape[0]+g.absmax.Size
	}
	o.needs = append(o.needs, need)
	o.add(d, formats.Tensor{TensorInfo: outInfo(g.weight.Name, to, g.shape), Data: &dequantWriter{o: o, g: g, to: to, companions: d.BytesIn - g.weight.Size}})
}

// dequantWriter decodes one bitsandbytes group chunk by chunk.
type dequantWriter struct {
	o          *Output
	g          *bnbSource
	to         formats.DType
	companions int64 // bytes of the companion tensors, reported at the end
}

func (d *dequantWriter) WriteTo(w io.Writer) (int64, error) {
	g := d.g
	n, _ := formats.TensorInfo{Shape: g.shape}.NumElements()
	scales, err := d.scales()
	if err != nil {
		return 0, err
	}
	unit := int64(g.block)
	if g.typ == TypeInt8 {
		unit = g.shape[1]
	}
	per := d.o.chunkFor(g.weight.Name, unit)
	read, err := d.o.rawReader(g.weight)
	if err != nil {
		return 0, err
	}
	var (
		x       []float32
		out     []byte
		written int64
	)
	for off := int64(0); off < n; off += per {
		k := min(per, n-off)
		at, size := off, k // byte range of the codes
		if g.typ == TypeNF4 || g.typ == TypeFP4 {
			at, size = off/2, (off+k+1)/2-off/2
		}
		raw, err := read(at, size)
		if err != nil {
			return written, err
		}
		x = growF(x, int(k))
		if err := d.decode(x, raw, scales[off/unit:ceilDiv(off+k, unit)]); err != nil {
			return written, tensorError(g.weight.Name, err)
		}
		out = grow(out, int(k)*d.to.Bits()/8)
		if err := FromFloat32(out, x, d.to); err != nil {
			return written, err
		}
		m, err := w.Write(out)
		written += int64(m)
		if err != nil {
			return written, err
		}
		d.o.advance(size)
	}
	d.o.advance(d.companions)
	return written, nil
}

// scales reads the group's absmax (reconstructed under double
// quantization) or SCB.
func (d *dequantWriter) scales() ([]float32, error) {
	g := d.g
	b, err := readAll(d.o.src, g.absmax)
	if err != nil {
		return nil, err
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

// decode dequantizes one chunk of codes with its scales.
func (d *dequantWriter) decode(x []float32, raw []byte, scales []float32) error {
	g := d.g
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
		return Dequantize4BitTo(g.kind, x, raw, scales, g.block, Options4Bit{Workers: d.o.workersFor(len(x))})
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
