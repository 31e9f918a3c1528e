package quantize

import (
	"fmt"
	"io"

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
// (ErrBadQuantState; ErrUnsupportedBNB for an LLM.int8() weight_format
// other than row) by the parser BNBWeights shares; the weights are
// decoded lazily, chunk by chunk.
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

// dequantBNB plans a safetensors dequantization.
func (o *Output) dequantBNB(to formats.DType) error {
	groups, member, err := findGroups(o.src)
	if err != nil {
		return err
	}
	infos := o.src.Tensors()
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
	scales, err := g.scales(d.o.src)
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
		if err := g.decode(x, raw, scales[off/unit:ceilDiv(off+k, unit)], d.o.workersFor(len(x))); err != nil {
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
