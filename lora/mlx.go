package lora

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

// MLX (ml-explore/mlx-lm tuner/lora.py, tuner/utils.py): adapters.safetensors
// holds <module>.lora_a [in, r] and <module>.lora_b [r, out] for modules
// inside the transformer blocks (model.layers.N.…); adapter_config.json
// holds fine_tune_type, num_layers (LoRA goes on the last num_layers
// blocks) and lora_parameters {rank, scale, dropout, keys}, keys being
// module paths relative to a block ("self_attn.q_proj"). The delta is
// scale·B·A with scale absolute (mlx-lm's default is 20), one scale and
// one rank for the whole adapter.

// mlxDefaultScale is LoRALinear's default scale in mlx-lm.
const mlxDefaultScale = 20.0

// mlxConfig is the part of an MLX adapter_config.json qtool reads.
type mlxConfig struct {
	FineTuneType *string `json:"fine_tune_type"`
	UseDoRA      *bool   `json:"use_dora"`
	NumLayers    *int    `json:"num_layers"`
	Model        *string `json:"model"`
	LoRA         *struct {
		Rank    *float64 `json:"rank"`
		Scale   *float64 `json:"scale"`
		Dropout *float64 `json:"dropout"`
		Keys    []string `json:"keys"`
	} `json:"lora_parameters"`
}

// loadMLX reads adapters.safetensors and its adapter_config.json.
func loadMLX(weights string) (*Adapter, error) {
	cb, cfgPath, err := readConfig(weights)
	if err != nil {
		return nil, err
	}
	var mc mlxConfig
	if err := json.Unmarshal(cb, &mc); err != nil {
		return nil, badAdapter(cfgPath, "", "", "not an MLX adapter config: "+err.Error())
	}
	var raw map[string]any
	json.Unmarshal(cb, &raw)
	if mc.FineTuneType != nil && *mc.FineTuneType != "lora" {
		what := "full fine-tune, not an adapter"
		if *mc.FineTuneType == "dora" {
			what = "DoRA adapters (magnitude vectors m) cannot be converted to plain LoRA"
		}
		return nil, &formats.FormatError{File: cfgPath, Offset: -1, Key: "fine_tune_type", Err: ErrCannotRepresent, Detail: fmt.Sprintf("%q: %s", *mc.FineTuneType, what)}
	}
	if mc.UseDoRA != nil && *mc.UseDoRA {
		return nil, &formats.FormatError{File: cfgPath, Offset: -1, Key: "use_dora", Err: ErrCannotRepresent, Detail: "DoRA adapters cannot be converted to plain LoRA"}
	}
	cfg := Config{Raw: raw}
	scale := mlxDefaultScale
	if lp := mc.LoRA; lp != nil {
		if lp.Scale != nil {
			scale = *lp.Scale
		}
		if lp.Rank != nil {
			if *lp.Rank != math.Trunc(*lp.Rank) || *lp.Rank <= 0 || *lp.Rank > 1<<31 {
				return nil, badAdapter(cfgPath, "", "lora_parameters.rank", fmt.Sprintf("%v is not a positive integer", *lp.Rank))
			}
			cfg.Rank = int(*lp.Rank)
		}
		if lp.Dropout != nil {
			cfg.Dropout = *lp.Dropout
		}
		cfg.TargetModules = lp.Keys
	}
	if mc.Model != nil {
		cfg.BaseModel = *mc.Model
	}

	src, err := safetensors.Open(weights)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	m := map[string]*halves{}
	var order []string
	for _, ti := range src.Tensors() {
		var half byte
		var module string
		switch {
		case strings.HasSuffix(ti.Name, mlxA):
			module, half = strings.TrimSuffix(ti.Name, mlxA), 'A'
		case strings.HasSuffix(ti.Name, mlxB):
			module, half = strings.TrimSuffix(ti.Name, mlxB), 'B'
		case strings.HasSuffix(ti.Name, ".m"):
			return nil, refuseAdapter(weights, ti.Name, "DoRA magnitude vector; DoRA adapters cannot be converted to plain LoRA")
		default:
			return nil, refuseAdapter(weights, ti.Name, "full tensor beside the LoRA pairs; a full replacement is not a LoRA pair")
		}
		if err := check2D(weights, ti); err != nil {
			return nil, err
		}
		if err := addHalf(weights, m, &order, targetOf(module), half, ti); err != nil {
			return nil, err
		}
	}
	if err := collectPairs(weights, m, order, mlxName); err != nil {
		return nil, err
	}
	ad := &Adapter{Format: MLX, Config: cfg}
	for _, target := range order {
		h := m[target]
		if isEmbedding(target) {
			return nil, refuseAdapter(weights, h.a.info.Name, "embedding adapter; only Linear layers are converted")
		}
		a, b := h.a.info, h.b.info
		if a.Shape[1] != b.Shape[0] {
			return nil, badAdapter(weights, b.Name, "", fmt.Sprintf("shape %v does not match lora_a %v (want [%d, out])", b.Shape, a.Shape, a.Shape[1]))
		}
		p := Pair{Target: target, Rank: int(a.Shape[1]), In: int(a.Shape[0]), Out: int(b.Shape[1]), Scale: scale}
		la, err := readFloats(src, a, weights)
		if err != nil {
			return nil, err
		}
		lb, err := readFloats(src, b, weights)
		if err != nil {
			return nil, err
		}
		p.A = make([]float32, len(la))
		transposeF32(p.A, la, p.In, p.Rank)
		p.B = make([]float32, len(lb))
		transposeF32(p.B, lb, p.Rank, p.Out)
		ad.Pairs = append(ad.Pairs, p)
	}
	if len(ad.Pairs) == 0 {
		return nil, &formats.FormatError{File: weights, Offset: -1, Err: ErrNotAdapter, Detail: "no lora_a/lora_b tensors"}
	}
	return ad, nil
}

func mlxName(target string, half byte) string {
	if half == 'A' {
		return moduleOf(target) + mlxA
	}
	return moduleOf(target) + mlxB
}

// writeMLX writes an MLX folder's two files into dir.
//
// MLX has one scale and one rank. The scale is the first pair's (the first
// non-zero one); a pair with another scale has it folded into B
// (B·Scale/scale, rounded to float32). A pair of lower rank is padded with
// zero rows of A and zero columns of B up to the largest rank, which
// leaves its delta unchanged. Only modules inside model.layers.N are
// representable; num_layers counts from the first adapted block to the
// base's last one (the last adapted block without a base).
func writeMLX(ctx context.Context, dir string, ad *Adapter, bi *baseInfo, info *WriteInfo) error {
	scale := firstScale(ad)
	info.Scale = scale
	maxRank, minLayer, maxLayer := 0, math.MaxInt, -1
	keys := map[string]bool{}
	for _, p := range ad.Pairs {
		if isEmbedding(p.Target) {
			return refuseAdapter("", p.Target, "embedding adapter; only Linear layers are converted")
		}
		layer, key, ok := mlxLayer(moduleOf(p.Target))
		if !ok {
			return refuseAdapter("", p.Target, "MLX adapts modules inside the transformer blocks (model.layers.N.…) only")
		}
		keys[key] = true
		maxRank = max(maxRank, p.Rank)
		minLayer, maxLayer = min(minLayer, layer), max(maxLayer, layer)
	}
	var ts []formats.Tensor
	for _, p := range ad.Pairs {
		b := p.B
		if p.Scale != scale {
			b = foldB(p.B, p.Scale/scale)
			info.Folded = append(info.Folded, p.Target)
		}
		a := p.A
		if p.Rank < maxRank {
			a, b = padRank(a, b, p.Rank, maxRank, p.In, p.Out)
			info.Padded = append(info.Padded, p.Target)
		}
		la := make([]float32, len(a))
		transposeF32(la, a, maxRank, p.In)
		lb := make([]float32, len(b))
		transposeF32(lb, b, p.Out, maxRank)
		ts = append(ts,
			f32Tensor(mlxName(p.Target, 'A'), []int64{int64(p.In), int64(maxRank)}, la),
			f32Tensor(mlxName(p.Target, 'B'), []int64{int64(maxRank), int64(p.Out)}, lb))
	}
	nLayers := int(bi.nLayers)
	if nLayers <= maxLayer {
		nLayers = maxLayer + 1
	}
	cfg := map[string]any{}
	lp := map[string]any{}
	if ad.Format == MLX {
		for k, v := range ad.Config.Raw {
			cfg[k] = v
		}
		if old, ok := cfg["lora_parameters"].(map[string]any); ok {
			for k, v := range old {
				lp[k] = v
			}
		}
	}
	keyList := make([]string, 0, len(keys))
	for k := range keys {
		keyList = append(keyList, k)
	}
	sort.Strings(keyList)
	lp["rank"], lp["scale"], lp["dropout"], lp["keys"] = maxRank, scale, ad.Config.Dropout, keyList
	cfg["fine_tune_type"] = "lora"
	cfg["num_layers"] = nLayers - minLayer
	cfg["lora_parameters"] = lp
	if ad.Config.BaseModel != "" {
		cfg["model"] = ad.Config.BaseModel
	}
	cb, err := marshalConfig(cfg)
	if err != nil {
		return err
	}
	if err := writeSafetensors(ctx, filepath.Join(dir, mlxWeights), map[string]string{"format": "mlx"}, ts); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, configFile), cb, 0o644)
}

// firstScale is the first pair's non-zero scale (0 if all are zero).
func firstScale(ad *Adapter) float64 {
	for _, p := range ad.Pairs {
		if p.Scale != 0 {
			return p.Scale
		}
	}
	return 0
}

// foldB returns B·f rounded to float32 (computed in float64).
func foldB(b []float32, f float64) []float32 {
	out := make([]float32, len(b))
	for i, v := range b {
		out[i] = float32(float64(v) * f)
	}
	return out
}

// padRank extends A (r×in) with zero rows and B (out×r) with zero columns
// to rank R.
func padRank(a, b []float32, r, R, in, out int) ([]float32, []float32) {
	pa := make([]float32, R*in)
	copy(pa, a)
	pb := make([]float32, out*R)
	for o := 0; o < out; o++ {
		copy(pb[o*R:o*R+r], b[o*r:(o+1)*r])
	}
	return pa, pb
}
