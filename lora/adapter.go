package lora

import (
	"fmt"
	"math"
	"sort"
)

// Format is an adapter's on-disk layout.
type Format string

// The adapter formats qtool reads and writes.
const (
	// PEFT: adapter_model.safetensors + adapter_config.json.
	PEFT Format = "peft"
	// MLX: adapters.safetensors + adapter_config.json (mlx-lm).
	MLX Format = "mlx"
	// GGUF: a llama.cpp LoRA adapter (general.type = adapter).
	GGUF Format = "gguf"
)

// Pair is the low-rank update of one base weight:
//
//	ΔW = Scale · B·A, with A [Rank×In] and B [Out×Rank], row-major float32.
//
// Target is the base weight's Hugging Face name
// ("model.layers.0.self_attn.q_proj.weight"); B's rows are in HF order
// (the GGUF Q/K row permutation is applied only when writing GGUF).
type Pair struct {
	Target string
	Rank   int
	In     int
	Out    int
	A      []float32
	B      []float32
	// Alpha is the module's lora_alpha (after alpha_pattern); 0 when the
	// format has none (MLX).
	Alpha float64
	// Scale is the factor multiplying B·A: Alpha/Rank, Alpha/√Rank with
	// rsLoRA, or MLX's absolute scale.
	Scale float64
}

// Validate checks the shapes are consistent.
func (p *Pair) Validate() error {
	if p.Rank <= 0 || p.In <= 0 || p.Out <= 0 {
		return fmt.Errorf("lora: %s: rank %d, in %d, out %d must be positive", p.Target, p.Rank, p.In, p.Out)
	}
	if len(p.A) != p.Rank*p.In || len(p.B) != p.Out*p.Rank {
		return fmt.Errorf("lora: %s: A has %d values (want %d×%d), B has %d (want %d×%d)",
			p.Target, len(p.A), p.Rank, p.In, len(p.B), p.Out, p.Rank)
	}
	if math.IsNaN(p.Scale) || math.IsInf(p.Scale, 0) {
		return fmt.Errorf("lora: %s: scale %v is not finite", p.Target, p.Scale)
	}
	return nil
}

// Config is what adapter_config.json (PEFT) says, kept so conversions can
// write it back.
type Config struct {
	BaseModel     string             // base_model_name_or_path
	Rank          int                // r
	Alpha         float64            // lora_alpha
	RSLoRA        bool               // use_rslora
	TargetModules []string           // target_modules
	RankPattern   map[string]int     // rank_pattern
	AlphaPattern  map[string]float64 // alpha_pattern
	Dropout       float64            // lora_dropout
	// Raw is the original JSON object, for keys qtool does not interpret.
	Raw map[string]any
}

// Adapter is a set of low-rank updates for one base model.
type Adapter struct {
	Format Format // the format it was read from
	Pairs  []Pair // sorted by Target
	Config Config
	// Arch is the base architecture when known ("llama", "qwen2"), from
	// GGUF general.architecture or the base model.
	Arch string
}

// Sort orders Pairs by Target.
func (a *Adapter) Sort() {
	sort.Slice(a.Pairs, func(i, j int) bool { return a.Pairs[i].Target < a.Pairs[j].Target })
}

// Pair returns the update for a base weight, or nil.
func (a *Adapter) Pair(target string) *Pair {
	i := sort.Search(len(a.Pairs), func(i int) bool { return a.Pairs[i].Target >= target })
	if i < len(a.Pairs) && a.Pairs[i].Target == target {
		return &a.Pairs[i]
	}
	return nil
}

// Scale computes PEFT's effective scale for a rank and alpha.
func Scale(alpha float64, rank int, rslora bool) float64 {
	if rslora {
		return alpha / math.Sqrt(float64(rank))
	}
	return alpha / float64(rank)
}
