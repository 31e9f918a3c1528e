package quantize

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/qtool-dev/qtool/formats"
)

// The bitsandbytes serialization (NF4-BITSANDBYTES.md §5), as transformers
// saves and loads it. For a quantized Linear weight X.weight of n elements:
//
//	nf4/fp4:  X.weight                                U8  [(n+1)/2, 1]  packed codes
//	          X.weight.absmax                         F32 [nb]          (U8 with double quantization)
//	          X.weight.quant_map                      F32 [16]          the code table
//	          X.weight.nested_absmax                  F32 [ceil(nb/256)] double quantization only
//	          X.weight.nested_quant_map               F32 [256]         double quantization only
//	          X.weight.quant_state.bitsandbytes__nf4  U8  [len]         JSON (…__fp4 for fp4)
//	int8:     X.weight                                I8  [out, in]     LLM.int8() CB
//	          X.SCB                                   F32 [out]         row absmax
//	          X.weight_format                         U8  []            0 ("row")
//
// with nb = ceil(n/blocksize). int8-block (bitsandbytes' blockwise 8-bit,
// which transformers does not load as weights) uses qtool's own layout on
// the same pattern: X.weight U8 codes in the weight's shape,
// X.weight.absmax F32 [nb], X.weight.quant_map F32 [256] (the dynamic
// code) and X.weight.quant_state.qtool__int8_block, and config.json says
// "quant_method": "qtool"; only qtool reads it.
//
// The quant_state JSON is Python's json.dumps of, in order: quant_type,
// blocksize, dtype (the weight's torch dtype), shape, and with double
// quantization nested_blocksize, nested_dtype, nested_offset.

// bnbSettings is what config.json's quantization_config says.
type bnbSettings struct {
	typ   Type
	block int
	dq    bool
	dtype string   // torch name of the quantized weights' dtype (compute dtype)
	skip  []string // 2-D Linear modules left unquantized
}

// Name suffixes of the companion tensors.
const (
	sfxAbsmax         = ".absmax"
	sfxQuantMap       = ".quant_map"
	sfxNestedAbsmax   = ".nested_absmax"
	sfxNestedQuantMap = ".nested_quant_map"
	sfxQuantState     = ".quant_state."
	stateBNB          = "bitsandbytes__"
	stateInt8Block    = "qtool__int8_block"
)

// bnbQuantized reports a tensor showing that a model is already
// quantized with bitsandbytes (or qtool's int8-block layout).
func bnbQuantized(infos []formats.TensorInfo) (string, bool) {
	for _, ti := range infos {
		if strings.Contains(ti.Name, sfxQuantState) || strings.HasSuffix(ti.Name, ".SCB") {
			return ti.Name, true
		}
	}
	return "", false
}

// torchDType is str(torch.dtype).strip("torch.") for a weight dtype.
func torchDType(d formats.DType) string {
	switch d {
	case formats.F16:
		return "float16"
	case formats.BF16:
		return "bfloat16"
	}
	return "float32"
}

// bnbGroup is one quantized weight and the companion tensors written for
// it. Each output tensor is a bnbPart computed from the source on its
// own, so the writer's order does not matter; the weight leaves its
// double-quantization codes for the absmax tensor, which safetensors'
// order writes right after it, to save a pass.
type bnbGroup struct {
	o     *Output
	i     int // decision index
	ti    formats.TensorInfo
	typ   Type
	block int
	dq    bool

	mu    sync.Mutex
	codes []uint8 // double-quantization codes from the weight's pass
}

func (g *bnbGroup) kind() FourBit {
	if g.typ == TypeFP4 {
		return FP4
	}
	return NF4
}

// label is the decision's To.
func (g *bnbGroup) label() string {
	if g.dq {
		return g.typ.String() + "+dq"
	}
	return g.typ.String()
}

// addBNB plans the tensors of one bitsandbytes-quantized weight.
func (o *Output) addBNB(ti formats.TensorInfo, ch choice, s *bnbSettings) error {
	g := &bnbGroup{o: o, i: len(o.decisions), ti: ti, typ: ch.typ, block: s.block, dq: s.dq}
	if s.dtype == "" {
		s.dtype = torchDType(ti.DType)
	}
	var ts []formats.Tensor
	var err error
	switch ch.typ {
	case TypeNF4, TypeFP4:
		ts, err = g.fourBitTensors()
	case TypeInt8:
		ts = g.int8Tensors()
	case TypeInt8Block:
		ts = g.blockwise8Tensors()
	}
	if err != nil {
		return err
	}
	o.add(decisionFor(ti, ch, g.label()), ts...)
	return nil
}

// bnbPart is one output tensor of a group computed from the source.
type bnbPart struct {
	g    *bnbGroup
	part int
}

const (
	partWeight = iota
	partAbsmax
	partNested
)

func (p *bnbPart) WriteTo(w io.Writer) (int64, error) {
	g := p.g
	switch {
	case p.part == partWeight && g.typ == TypeInt8:
		return g.writeInt8(w)
	case p.part == partWeight && g.typ == TypeInt8Block:
		return g.writeBlockwise8(w)
	case p.part == partWeight:
		return g.writeFourBit(w)
	case p.part == partAbsmax && g.typ == TypeInt8:
		return g.writeSCB(w)
	case p.part == partAbsmax && g.dq:
		codes := g.takeCodes()
		if codes == nil {
			d, err := g.doubleQuant()
			if err != nil {
				return 0, err
			}
			codes = d.Codes
		}
		n, err := w.Write(codes)
		return int64(n), err
	case p.part == partAbsmax:
		am, err := g.absmax()
		if err != nil {
			return 0, err
		}
		return formats.BytesWriter(floatBytes(am)).WriteTo(w)
	default: // partNested
		d, err := g.doubleQuant()
		if err != nil {
			return 0, err
		}
		return formats.BytesWriter(floatBytes(d.NestedAbsmax)).WriteTo(w)
	}
}

func (g *bnbGroup) part(name string, d formats.DType, shape []int64, part int) formats.Tensor {
	return formats.Tensor{TensorInfo: outInfo(name, d, shape), Data: &bnbPart{g: g, part: part}}
}

func constTensor(name string, d formats.DType, shape []int64, b []byte) formats.Tensor {
	return formats.Tensor{TensorInfo: outInfo(name, d, shape), Data: formats.BytesWriter(b)}
}

// fourBitTensors plans X.weight and its companions for nf4/fp4. With
// double quantization it reads the weight once for the nested offset.
func (g *bnbGroup) fourBitTensors() ([]formats.Tensor, error) {
	n, _ := g.ti.NumElements()
	nb := ceilDiv(n, int64(g.block))
	name := g.ti.Name
	table := g.kind().Table()
	ts := []formats.Tensor{g.part(name, formats.U8, []int64{(n + 1) / 2, 1}, partWeight)}
	var dq *DoubleQuant
	if g.dq {
		d, err := g.doubleQuant()
		if err != nil {
			return nil, err
		}
		dq = &d
		dyn := DynamicMap()
		ts = append(ts,
			g.part(name+sfxAbsmax, formats.U8, []int64{nb}, partAbsmax),
			constTensor(name+sfxQuantMap, formats.F32, []int64{16}, floatBytes(table[:])),
			g.part(name+sfxNestedAbsmax, formats.F32, []int64{int64(len(d.NestedAbsmax))}, partNested),
			constTensor(name+sfxNestedQuantMap, formats.F32, []int64{256}, floatBytes(dyn[:])))
	} else {
		ts = append(ts,
			g.part(name+sfxAbsmax, formats.F32, []int64{nb}, partAbsmax),
			constTensor(name+sfxQuantMap, formats.F32, []int64{16}, floatBytes(table[:])))
	}
	state := fourBitState(g.kind(), g.block, torchDType(g.ti.DType), g.ti.Shape, dq)
	ts = append(ts, constTensor(name+sfxQuantState+stateBNB+g.kind().String(), formats.U8, []int64{int64(len(state))}, state))
	return ts, nil
}

// int8Tensors plans LLM.int8()'s X.weight, X.SCB and X.weight_format.
func (g *bnbGroup) int8Tensors() []formats.Tensor {
	prefix := strings.TrimSuffix(g.ti.Name, "weight")
	return []formats.Tensor{
		g.part(g.ti.Name, formats.I8, g.ti.Shape, partWeight),
		g.part(prefix+"SCB", formats.F32, []int64{g.ti.Shape[0]}, partAbsmax),
		constTensor(prefix+"weight_format", formats.U8, []int64{}, []byte{0}),
	}
}

// blockwise8Tensors plans qtool's int8-block layout.
func (g *bnbGroup) blockwise8Tensors() []formats.Tensor {
	n, _ := g.ti.NumElements()
	name := g.ti.Name
	dyn := DynamicMap()
	state := blockwise8State(g.block, torchDType(g.ti.DType), g.ti.Shape)
	return []formats.Tensor{
		g.part(name, formats.U8, g.ti.Shape, partWeight),
		g.part(name+sfxAbsmax, formats.F32, []int64{ceilDiv(n, int64(g.block))}, partAbsmax),
		constTensor(name+sfxQuantMap, formats.F32, []int64{256}, floatBytes(dyn[:])),
		constTensor(name+sfxQuantState+stateInt8Block, formats.U8, []int64{int64(len(state))}, state),
	}
}

// writeFourBit quantizes the weight chunk by chunk (each a whole number
// of blocks) and writes the packed codes.
func (g *bnbGroup) writeFourBit(w io.Writer) (int64, error) {
	n, _ := g.ti.NumElements()
	nb := int(ceilDiv(n, int64(g.block)))
	kind := g.kind()
	opt := Options4Bit{ExactZeroBlocks: true}
	var all, recon []float32
	if g.dq {
		all = make([]float32, nb)
		if g.o.stats {
			d, err := g.doubleQuant()
			if err != nil {
				return 0, err
			}
			recon = make([]float32, nb)
			d.Absmax(recon)
		}
	}
	var (
		packed   []byte
		am, back []float32
		st       errorStats
		written  int64
	)
	err := g.o.eachChunk(g.ti, int64(g.block), func(x []float32, off int64) error {
		b0, nbc := int(off)/g.block, (len(x)+g.block-1)/g.block
		packed, am = grow(packed, (len(x)+1)/2), growF(am, nbc)
		opt.Workers = g.o.workersFor(len(x))
		if err := Quantize4BitTo(kind, packed, am, x, g.block, opt); err != nil {
			return tensorError(g.ti.Name, err)
		}
		if all != nil {
			copy(all[b0:], am)
		}
		if g.o.stats {
			use := am
			if recon != nil {
				use = recon[b0 : b0+nbc]
			}
			back = growF(back, len(x))
			if err := Dequantize4BitTo(kind, back, packed, use, g.block, opt); err != nil {
				return tensorError(g.ti.Name, err)
			}
			st.add(x, back)
		}
		k, err := w.Write(packed)
		written += int64(k)
		return err
	})
	if err != nil {
		return written, err
	}
	if g.dq {
		g.mu.Lock()
		g.codes = DoubleQuantize(all).Codes
		g.mu.Unlock()
	}
	if g.o.stats {
		g.o.measured(g.i, &st)
	}
	return written, nil
}

// takeCodes hands over the double-quantization codes the weight's pass
// left, once.
func (g *bnbGroup) takeCodes() []uint8 {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.codes
	g.codes = nil
	return c
}

// writeInt8 writes LLM.int8()'s CB, chunk by chunk of whole rows
// (QuantizeInt8Rows rounds to fp16 first, as Int8Params does for every
// model dtype).
func (g *bnbGroup) writeInt8(w io.Writer) (int64, error) {
	cols := g.ti.Shape[1]
	var (
		back    []float32
		out     []byte
		st      errorStats
		written int64
	)
	err := g.o.eachChunk(g.ti, cols, func(x []float32, _ int64) error {
		rows := len(x) / int(cols)
		cb, scb, err := QuantizeInt8Rows(x, rows, int(cols))
		if err != nil {
			return tensorError(g.ti.Name, err)
		}
		if g.o.stats {
			back = growF(back, len(x))
			if err := DequantizeInt8Rows(back, cb, scb, rows, int(cols)); err != nil {
				return tensorError(g.ti.Name, err)
			}
			st.add(x, back)
		}
		out = grow(out, len(cb))
		for i, v := range cb {
			out[i] = byte(v)
		}
		k, err := w.Write(out)
		written += int64(k)
		return err
	})
	if err == nil && g.o.stats {
		g.o.measured(g.i, &st)
	}
	return written, err
}

// writeSCB writes LLM.int8()'s row absmax of the fp16 weight.
func (g *bnbGroup) writeSCB(w io.Writer) (int64, error) {
	am, err := g.absmaxOver(g.ti.Shape[1])
	if err != nil {
		return 0, err
	}
	for r, v := range am {
		h := F16ToF32(F32ToF16(v))
		if math.IsInf(float64(h), 0) {
			return 0, tensorError(g.ti.Name, fmt.Errorf("row %d: absmax %v does not fit float16 (LLM.int8() quantizes the fp16 weight): %w", r, v, ErrNonFinite))
		}
		am[r] = h
	}
	return formats.BytesWriter(floatBytes(am)).WriteTo(w)
}

// writeBlockwise8 writes the dynamic-code 8-bit codes.
func (g *bnbGroup) writeBlockwise8(w io.Writer) (int64, error) {
	var (
		back    []float32
		st      errorStats
		written int64
	)
	err := g.o.eachChunk(g.ti, int64(g.block), func(x []float32, _ int64) error {
		codes, am, err := QuantizeBlockwise8(x, g.block)
		if err != nil {
			return tensorError(g.ti.Name, err)
		}
		if g.o.stats {
			back = growF(back, len(x))
			if err := DequantizeBlockwise8(back, codes, am, g.block); err != nil {
				return tensorError(g.ti.Name, err)
			}
			st.add(x, back)
		}
		k, err := w.Write(codes)
		written += int64(k)
		return err
	})
	if err == nil && g.o.stats {
		g.o.measured(g.i, &st)
	}
	return written, err
}

// absmax is the weight's blockwise absmax, read from the raw bytes.
func (g *bnbGroup) absmax() ([]float32, error) { return g.absmaxOver(int64(g.block)) }

// absmaxOver computes max|x| of every run of unit elements (a block, or a
// row for LLM.int8()) straight from the source bytes, refusing NaN and
// ±Inf. It equals the kernels' absmax: a maximum involves no rounding.
func (g *bnbGroup) absmaxOver(unit int64) ([]float32, error) {
	n, _ := g.ti.NumElements()
	out := make([]float32, ceilDiv(n, unit))
	err := g.o.eachRaw(g.ti, unit, false, func(raw []byte, off, k int64) error {
		b0 := off / unit
		if bad := rawAbsmax(out[b0:b0+ceilDiv(k, unit)], raw, g.ti.DType, int(unit)); bad >= 0 {
			return tensorError(g.ti.Name, fmt.Errorf("element %d is not finite: %w", off+int64(bad), ErrNonFinite))
		}
		return nil
	})
	return out, err
}

// doubleQuant recomputes the weight's double quantization.
func (g *bnbGroup) doubleQuant() (DoubleQuant, error) {
	am, err := g.absmax()
	if err != nil {
		return DoubleQuant{}, err
	}
	return DoubleQuantize(am), nil
}

// fourBitState is the JSON of X.weight.quant_state.bitsandbytes__<type>
// (QuantState.as_dict(packed=True), json.dumps defaults).
func fourBitState(kind FourBit, block int, dtype string, shape []int64, dq *DoubleQuant) []byte {
	b := []byte(`{"quant_type": "` + kind.String() + `", "blocksize": ` + strconv.Itoa(block) +
		`, "dtype": "` + dtype + `", "shape": ` + pyIntList(shape))
	if dq != nil {
		b = append(b, `, "nested_blocksize": `+strconv.Itoa(dq.Blocksize)+
			`, "nested_dtype": "float32", "nested_offset": `+pyFloat(float64(dq.Offset))...)
	}
	return append(b, '}')
}

// blockwise8State is the JSON of qtool's X.weight.quant_state.qtool__int8_block.
func blockwise8State(block int, dtype string, shape []int64) []byte {
	return []byte(`{"quant_type": "int8-block", "blocksize": ` + strconv.Itoa(block) +
		`, "dtype": "` + dtype + `", "shape": ` + pyIntList(shape) + `}`)
}

// pyIntList renders a list of ints as json.dumps does: "[64, 64]".
func pyIntList(v []int64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatInt(x, 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// pyFloat renders a float as Python's repr (and json.dumps) does: the
// shortest round-tripping digits, positional notation with at least one
// fractional digit for decimal exponents -4..15, else "1e-05" style.
func pyFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	e := strconv.FormatFloat(v, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// floatBytes is the little-endian encoding of v.
func floatBytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
