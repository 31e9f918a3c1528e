// Package llama runs Llama-family decoder models (llama, mistral, qwen2)
// on the CPU: the forward pass over a formats.Source whose weights stay
// memory-mapped and are read through the kernels package in their stored
// type, a KV cache for generation, LoRA adapters applied at run time,
// sampling and perplexity evaluation.
//
// The forward pass (TRAINER-DESIGN.md §2) is, per layer,
//
//	h = x + Wo·attn(rope(Wq·rmsnorm(x)), rope(Wk·rmsnorm(x)), Wv·rmsnorm(x))
//	x' = h + Wdown·(silu(Wgate·rmsnorm(h)) ⊙ Wup·rmsnorm(h))
//
// with grouped-query causal attention, then logits = Wout·rmsnorm(x). GGUF
// files of the llama family store Q/K rows permuted for interleaved-pair
// RoPE; Hugging Face folders (and qwen2 everywhere) use rotate-half.
package llama

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
)

// Config holds a model's hyper-parameters.
type Config struct {
	Arch       string  // GGUF architecture name ("llama", "qwen2")
	Vocab      int     // rows of the embedding
	Hidden     int     // embedding_length / hidden_size
	Layers     int     // block_count / num_hidden_layers
	Heads      int     // attention heads
	KVHeads    int     // key/value heads (GQA)
	HeadDim    int     // per-head size
	FFN        int     // feed_forward_length / intermediate_size
	Eps        float32 // RMSNorm epsilon
	RopeTheta  float64 // rope base
	ContextLen int     // trained context length
	// RopeScaling describes frequency scaling: "" (none), "linear" or
	// "llama3".
	RopeScaling   string
	RopeFactor    float64
	RopeLowFreq   float64 // llama3 low_freq_factor
	RopeHighFreq  float64 // llama3 high_freq_factor
	RopeOrigCtx   float64 // llama3 original_max_position_embeddings
	TiedEmbedding bool    // no separate output matrix
	// Interleaved selects GGUF's interleaved-pair RoPE (Q/K rows permuted
	// by the converter); false is Hugging Face rotate-half.
	Interleaved bool
}

func (c *Config) check() error {
	if c.Hidden <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.FFN <= 0 || c.Vocab <= 0 {
		return fmt.Errorf("llama: incomplete hyper-parameters %+v: %w", *c, formats.ErrFormat)
	}
	if c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("llama: %d heads are not a multiple of %d KV heads: %w", c.Heads, c.KVHeads, formats.ErrFormat)
	}
	if c.HeadDim <= 0 || c.HeadDim%2 != 0 {
		return fmt.Errorf("llama: head size %d must be positive and even: %w", c.HeadDim, formats.ErrFormat)
	}
	if c.Eps <= 0 {
		c.Eps = 1e-5
	}
	if c.RopeTheta <= 0 {
		c.RopeTheta = 10000
	}
	return nil
}

// configFromGGUF reads the <arch>.* keys.
func configFromGGUF(m *formats.Meta, a *arch.Arch) (Config, error) {
	c := Config{Arch: a.Name, Interleaved: a.HasPermutation()}
	p := a.Name + "."
	u := func(key string) int {
		v, _ := m.Uint(p + key)
		return int(v)
	}
	f := func(key string) float64 {
		v, _ := m.Float(p + key)
		return v
	}
	c.Hidden = u("embedding_length")
	c.Layers = u("block_count")
	c.Heads = u("attention.head_count")
	c.KVHeads = u("attention.head_count_kv")
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	c.FFN = u("feed_forward_length")
	c.ContextLen = u("context_length")
	c.Eps = float32(f("attention.layer_norm_rms_epsilon"))
	c.RopeTheta = f("rope.freq_base")
	c.HeadDim = u("attention.key_length")
	if c.HeadDim == 0 {
		c.HeadDim = u("rope.dimension_count")
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if t, ok := m.String(p + "rope.scaling.type"); ok && t != "none" && t != "" {
		if t != "linear" {
			return c, fmt.Errorf("llama: rope scaling %q: %w", t, formats.ErrUnsupported)
		}
		c.RopeScaling, c.RopeFactor = t, f("rope.scaling.factor")
	}
	return c, nil
}

// hfConfig is the part of config.json the forward pass needs.
type hfConfig struct {
	Architectures []string `json:"architectures"`
	ModelType     string   `json:"model_type"`
	Hidden        int      `json:"hidden_size"`
	Intermediate  int      `json:"intermediate_size"`
	Heads         int      `json:"num_attention_heads"`
	KVHeads       int      `json:"num_key_value_heads"`
	Layers        int      `json:"num_hidden_layers"`
	HeadDim       int      `json:"head_dim"`
	Eps           float64  `json:"rms_norm_eps"`
	Theta         float64  `json:"rope_theta"`
	Vocab         int      `json:"vocab_size"`
	MaxPos        int      `json:"max_position_embeddings"`
	Tie           *bool    `json:"tie_word_embeddings"`
	RopeScaling   *struct {
		Type     string  `json:"type"`
		RopeType string  `json:"rope_type"`
		Factor   float64 `json:"factor"`
		Low      float64 `json:"low_freq_factor"`
		High     float64 `json:"high_freq_factor"`
		Orig     float64 `json:"original_max_position_embeddings"`
	} `json:"rope_scaling"`
}

// configFromHF reads config.json.
func configFromHF(raw []byte) (Config, *arch.Arch, error) {
	var h hfConfig
	if err := json.Unmarshal(raw, &h); err != nil {
		return Config{}, nil, fmt.Errorf("llama: config.json: %v: %w", err, formats.ErrFormat)
	}
	a, err := arch.ByHF(h.Architectures, h.ModelType)
	if err != nil {
		return Config{}, nil, err
	}
	c := Config{Arch: a.Name, Hidden: h.Hidden, FFN: h.Intermediate, Heads: h.Heads, KVHeads: h.KVHeads,
		Layers: h.Layers, HeadDim: h.HeadDim, Eps: float32(h.Eps), RopeTheta: h.Theta, Vocab: h.Vocab,
		ContextLen: h.MaxPos}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if rs := h.RopeScaling; rs != nil {
		t := rs.RopeType
		if t == "" {
			t = rs.Type
		}
		switch t {
		case "", "default":
		case "linear":
			c.RopeScaling, c.RopeFactor = t, rs.Factor
		case "llama3":
			c.RopeScaling, c.RopeFactor, c.RopeLowFreq, c.RopeHighFreq, c.RopeOrigCtx = t, rs.Factor, rs.Low, rs.High, rs.Orig
		default:
			return c, a, fmt.Errorf("llama: rope_scaling %q: %w", t, formats.ErrUnsupported)
		}
	}
	return c, a, nil
}

// RopeFreqs returns the inverse frequencies after scaling; factors, when
// not nil, are GGUF's rope_freqs.weight (each frequency divided by its
// factor, as llama.cpp does for Llama 3 files).
func (c *Config) RopeFreqs(factors []float32, hf bool) []float64 {
	fr := make([]float64, c.HeadDim/2)
	for j := range fr {
		fr[j] = math.Pow(c.RopeTheta, -float64(2*j)/float64(c.HeadDim))
		if hf {
			// Hugging Face keeps inv_freq in float32.
			fr[j] = float64(float32(fr[j]))
		}
	}
	switch c.RopeScaling {
	case "linear":
		if c.RopeFactor > 0 {
			for j := range fr {
				fr[j] /= c.RopeFactor
			}
		}
	case "llama3":
		llama3Scale(fr, c.RopeFactor, c.RopeLowFreq, c.RopeHighFreq, c.RopeOrigCtx)
	}
	if len(factors) == len(fr) {
		for j := range fr {
			if factors[j] != 0 {
				fr[j] /= float64(factors[j])
			}
		}
	}
	return fr
}

// llama3Scale applies Llama 3.1's rope_scaling: long wavelengths are
// divided by factor, short ones kept, the band between interpolated.
func llama3Scale(fr []float64, factor, low, high, orig float64) {
	if factor <= 0 || low <= 0 || high <= low || orig <= 0 {
		return
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
