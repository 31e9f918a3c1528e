package train

import (
	"fmt"
	"math"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/llama"
	"github.com/qtool-dev/qtool/quantize"
)

// Module names, in the order of a block's forward pass.
var moduleNames = [...]string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// ggufModule is the GGUF tensor stem of each module.
var ggufModule = [...]string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}

const (
	modQ = iota
	modK
	modV
	modO
	modGate
	modUp
	modDown
	numModules
)

// Model is the frozen base: the llama model (configuration, tokenizer,
// mapping) and views of its weights in their stored type.
type Model struct {
	Base *llama.Model
	Cfg  llama.Config

	embed   kernels.BMatrix
	output  kernels.BMatrix
	outNorm []float32
	blocks  []block
	rope    *kernels.RopeTable
	arch    *arch.Arch
	// params is the number of values in the base model's tensors.
	params int64
	// mapped is the number of bytes of the base model's tensors.
	mapped int64
}

type block struct {
	attnNorm, ffnNorm []float32
	lin               [numModules]*Linear
}

// openModel opens a GGUF file or HF folder for training windows of up to
// maxPos positions. quant, when not "", re-encodes the frozen projection
// matrices ("nf4").
func openModel(path string, maxPos int, threads int, quant string) (*Model, error) {
	base, err := llama.Open(path, llama.Options{Threads: threads, MaxContext: maxPos})
	if err != nil {
		return nil, err
	}
	m, err := newModel(base, maxPos, quant)
	if err != nil {
		base.Close()
		return nil, err
	}
	return m, nil
}

func newModel(base *llama.Model, maxPos int, quant string) (*Model, error) {
	m := &Model{Base: base, Cfg: base.Cfg}
	c := &m.Cfg
	a, err := arch.ByGGUF(c.Arch)
	if err != nil {
		return nil, err
	}
	m.arch = a
	src := base.Source()
	bsrc, ok := src.(formats.ByteSource)
	if !ok {
		return nil, fmt.Errorf("train: source cannot be memory-mapped: %w", formats.ErrUnsupported)
	}
	infos := map[string]formats.TensorInfo{} // by GGUF name
	for _, ti := range src.Tensors() {
		if n, ok := ti.NumElements(); ok {
			m.params += n
		}
		if n, ok := ti.NumBytes(); ok {
			m.mapped += n
		}
		name := ti.Name
		if base.Format == detect.HFFolder {
			g, _, _, ok := a.GGUFName(ti.Name)
			if !ok {
				continue
			}
			name = g
		}
		infos[name] = ti
	}
	get := func(name string) (formats.TensorInfo, []byte, error) {
		ti, ok := infos[name]
		if !ok {
			return ti, nil, fmt.Errorf("train: tensor %s missing: %w", name, formats.ErrFormat)
		}
		b, err := bsrc.Bytes(ti.Name)
		return ti, b, err
	}
	vector := func(name string, n int) ([]float32, error) {
		ti, b, err := get(name)
		if err != nil {
			return nil, err
		}
		if ne, _ := ti.NumElements(); ne != int64(n) {
			return nil, fmt.Errorf("train: tensor %s has %d elements, want %d: %w", ti.Name, ne, n, formats.ErrFormat)
		}
		v := make([]float32, n)
		if err := quantize.DequantizeGGML(ti.DType, v, b); err != nil {
			return nil, fmt.Errorf("train: tensor %s: %w", ti.Name, err)
		}
		return v, nil
	}
	mat := func(name string, n, k int, q string) (kernels.BMatrix, error) {
		ti, b, err := get(name)
		if err != nil {
			return nil, err
		}
		if len(ti.Shape) != 2 || ti.Shape[0] != int64(n) || ti.Shape[1] != int64(k) {
			return nil, fmt.Errorf("train: tensor %s has shape %v, want [%d, %d]: %w", ti.Name, ti.Shape, n, k, formats.ErrFormat)
		}
		w, err := matrix(b, ti, n, k)
		if err != nil || q == "" {
			return w, err
		}
		return quantizeMatrix(w, q)
	}
	h, qDim, kvDim := c.Hidden, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	if m.embed, err = mat("token_embd.weight", c.Vocab, h, ""); err != nil {
		return nil, err
	}
	shapes := [numModules][2]int{{qDim, h}, {kvDim, h}, {kvDim, h}, {h, qDim}, {c.FFN, h}, {c.FFN, h}, {h, c.FFN}}
	m.blocks = make([]block, c.Layers)
	for i := range m.blocks {
		b := &m.blocks[i]
		p := fmt.Sprintf("blk.%d.", i)
		if b.attnNorm, err = vector(p+"attn_norm.weight", h); err != nil {
			return nil, err
		}
		if b.ffnNorm, err = vector(p+"ffn_norm.weight", h); err != nil {
			return nil, err
		}
		for j := range numModules {
			name := p + ggufModule[j]
			l := &Linear{Out: shapes[j][0], In: shapes[j][1], Layer: i, Module: j}
			if l.W, err = mat(name+".weight", l.Out, l.In, quant); err != nil {
				return nil, err
			}
			if _, ok := infos[name+".bias"]; ok {
				if l.Bias, err = vector(name+".bias", l.Out); err != nil {
					return nil, err
				}
			}
			b.lin[j] = l
		}
	}
	if m.outNorm, err = vector("output_norm.weight", h); err != nil {
		return nil, err
	}
	if _, ok := infos["output.weight"]; ok {
		if m.output, err = mat("output.weight", c.Vocab, h, ""); err != nil {
			return nil, err
		}
	} else {
		m.output = m.embed
	}
	var factors []float32
	if _, ok := infos["rope_freqs.weight"]; ok {
		if factors, err = vector("rope_freqs.weight", c.HeadDim/2); err != nil {
			return nil, err
		}
	}
	m.rope = kernels.NewRopeTable(c.HeadDim, maxPos, ropeFreqs(c, factors, base.Format == detect.HFFolder))
	return m, nil
}

// Close releases the mapping.
func (m *Model) Close() error { return m.Base.Close() }

// hfTarget is the Hugging Face name of a block's module weight.
func (m *Model) hfTarget(layer, module int) (string, arch.Permutation) {
	g := fmt.Sprintf("blk.%d.%s.weight", layer, ggufModule[module])
	hf, p, ok := m.arch.HFName(g)
	if !ok {
		kind := "self_attn"
		if module >= modGate {
			kind = "mlp"
		}
		return fmt.Sprintf("model.layers.%d.%s.%s.weight", layer, kind, moduleNames[module]), arch.NoPermutation
	}
	return hf, p.Permute
}

// matrix views a stored 2-D weight [n, k] in its type. It duplicates the
// part of llama's unexported matrix constructor the trainer supports.
func matrix(data []byte, ti formats.TensorInfo, n, k int) (kernels.BMatrix, error) {
	switch ti.DType {
	case formats.F32:
		return kernels.F32MatrixFromBytes(data, n, k)
	case formats.F16:
		return kernels.NewF16Matrix(data, n, k)
	case formats.BF16:
		return kernels.NewBF16Matrix(data, n, k)
	case formats.Q8_0:
		return kernels.NewQ8_0Matrix(data, n, k)
	case formats.Q4_0:
		return kernels.NewQ4_0Matrix(data, n, k)
	}
	return nil, fmt.Errorf("train: tensor %s: frozen weights of type %v: %w", ti.Name, ti.DType, formats.ErrUnsupported)
}

// ropeFreqs mirrors llama's (unexported) frequency computation: standard
// inverse frequencies, float32-rounded for HF folders, then linear or
// Llama 3 scaling, or GGUF's rope_freqs factors.
func ropeFreqs(c *llama.Config, factors []float32, hf bool) []float64 {
	fr := make([]float64, c.HeadDim/2)
	for j := range fr {
		fr[j] = math.Pow(c.RopeTheta, -float64(2*j)/float64(c.HeadDim))
		if hf {
			fr[j] = float64(float32(fr[j]))
		}
	}
	if factors != nil {
		for j := range fr {
			if j < len(factors) && factors[j] != 0 {
				fr[j] /= float64(factors[j])
			}
		}
		return fr
	}
	switch strings.ToLower(c.RopeScaling) {
	case "linear":
		if c.RopeFactor > 0 {
			for j := range fr {
				fr[j] /= c.RopeFactor
			}
		}
	case "llama3":
		factor, low, high, orig := c.RopeFactor, c.RopeLowFreq, c.RopeHighFreq, c.RopeOrigCtx
		if factor <= 0 || low <= 0 || high <= low || orig <= 0 {
			break
		}
		lowWave, highWave := orig/low, orig/high
		for j, f := range fr {
			wave := 2 * math.Pi / f
			switch {
			case wave < highWave:
			case wave > lowWave:
				fr[j] = f / factor
			default:
				s := (orig/wave - low) / (high - low)
				fr[j] = (1-s)*f/factor + s*f
			}
		}
	}
	return fr
}
