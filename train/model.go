package train

import (
	"errors"
	"fmt"

	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/llama"
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
	// codes holds the projections re-encoded for QLoRA (qlora.go).
	codes codeStore
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
	done := false
	defer func() {
		if !done {
			m.codes.close()
		}
	}()
	c := &m.Cfg
	a, err := arch.ByGGUF(c.Arch)
	if err != nil {
		return nil, err
	}
	m.arch = a
	wts := base.W
	m.params, m.mapped = wts.Totals()
	vector := wts.Vector
	mat := func(name string, n, k int, q string) (kernels.BMatrix, error) {
		w, err := wts.Matrix(name, n, k)
		if err != nil || q == "" {
			return w, err
		}
		qw, err := m.codes.quantizeMatrix(w, q)
		if err == nil {
			// The source is not read again: drop its pages from RSS.
			wts.Release(name)
		}
		return qw, err
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
			if _, ok := wts.Info(name + ".bias"); ok {
				if l.Bias, err = vector(name+".bias", l.Out); err != nil {
					return nil, err
				}
			}
			b.lin[j] = l
		}
	}
	m.codes.release()
	if m.outNorm, err = vector("output_norm.weight", h); err != nil {
		return nil, err
	}
	if _, ok := wts.Info("output.weight"); ok {
		if m.output, err = mat("output.weight", c.Vocab, h, ""); err != nil {
			return nil, err
		}
	} else {
		m.output = m.embed
	}
	var factors []float32
	if _, ok := wts.Info("rope_freqs.weight"); ok {
		if factors, err = vector("rope_freqs.weight", c.HeadDim/2); err != nil {
			return nil, err
		}
	}
	m.rope = kernels.NewRopeTable(c.HeadDim, maxPos, c.RopeFreqs(factors, base.Format == detect.HFFolder))
	done = true
	return m, nil
}

// Close releases the mappings: the base model's and QLoRA's codes.
func (m *Model) Close() error { return errors.Join(m.codes.close(), m.Base.Close()) }

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
