package lora

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/formats/gguf"
)

// GGUF LoRA as llama.cpp reads it (GGUF-LLAMACPP.md §4): KVs
// general.architecture (the base's), general.type = "adapter",
// adapter.type = "lora", adapter.lora.alpha (FLOAT32); tensors
// <gguf name>.lora_a with Shape [r, in] (ggml dims [in, r]) and
// <gguf name>.lora_b with Shape [out, r], the bytes of PEFT's A and B
// except that the rows of B for attn_q / attn_k are permuted like the base
// weights (§2.2). llama.cpp applies scale = user_scale·alpha/rank, with
// rank read from each lora_b, or user_scale when alpha is 0.

// Keys of a GGUF LoRA.
const (
	keyArch         = "general.architecture"
	keyType         = "general.type"
	keyAdapterType  = "adapter.type"
	keyAlpha        = "adapter.lora.alpha"
	keyQuantVersion = "general.quantization_version"
	keyALoRATokens  = "adapter.alora.invocation_tokens"
)

// loadGGUF reads a GGUF LoRA; bi supplies the head counts that undo the
// Q/K permutation.
func loadGGUF(path string, bi *baseInfo) (*Adapter, error) {
	src, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	meta := src.Meta()
	if t, _ := meta.String(keyType); t != "adapter" {
		return nil, &formats.FormatError{File: path, Offset: -1, Key: keyType, Err: ErrNotAdapter, Detail: fmt.Sprintf("%q, want \"adapter\"", t)}
	}
	if t, _ := meta.String(keyAdapterType); t != "lora" {
		return nil, &formats.FormatError{File: path, Offset: -1, Key: keyAdapterType, Err: ErrCannotRepresent, Detail: fmt.Sprintf("%q; only \"lora\" adapters are converted", t)}
	}
	if meta.Has(keyALoRATokens) {
		return nil, &formats.FormatError{File: path, Offset: -1, Key: keyALoRATokens, Err: ErrCannotRepresent, Detail: "activated LoRA (aLoRA) applies only after its invocation tokens; a plain LoRA cannot represent that"}
	}
	name, _ := meta.String(keyArch)
	a, err := arch.ByGGUF(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if bi.arch != nil && bi.arch.Name != a.Name {
		return nil, &formats.FormatError{File: path, Offset: -1, Key: keyArch, Err: ErrBadAdapter, Detail: fmt.Sprintf("adapter for %q, base model is %q", a.Name, bi.arch.Name)}
	}
	var alpha float64
	if v, ok := meta.Get(keyAlpha); ok {
		f, ok := v.AsFloat()
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, badAdapter(path, "", keyAlpha, fmt.Sprintf("%v is not a finite number", v.V))
		}
		alpha = f
	}

	m := map[string]*halves{}
	var order []string
	for _, ti := range src.Tensors() {
		var half byte
		var base string
		switch {
		case strings.HasSuffix(ti.Name, ggufA):
			base, half = strings.TrimSuffix(ti.Name, ggufA), 'A'
		case strings.HasSuffix(ti.Name, ggufB):
			base, half = strings.TrimSuffix(ti.Name, ggufB), 'B'
		case strings.HasSuffix(ti.Name, "_norm.weight"):
			return nil, refuseAdapter(path, ti.Name, "full norm weight beside the LoRA pairs (llama.cpp ignores it); a full replacement is not a LoRA pair")
		default:
			return nil, badAdapter(path, ti.Name, "", "not a .lora_a or .lora_b tensor")
		}
		if base == "token_embd.weight" {
			return nil, refuseAdapter(path, ti.Name, "embedding adapter; only Linear layers are converted")
		}
		hf, _, ok := a.HFName(base)
		if !ok {
			return nil, refuseAdapter(path, ti.Name, fmt.Sprintf("%s is not in the %s name table", base, a.Name))
		}
		if err := check2D(path, ti); err != nil {
			return nil, err
		}
		if err := addHalf(path, m, &order, hf, half, ti); err != nil {
			return nil, err
		}
	}
	ggufNameOf := func(target string, half byte) string {
		n, _, _, _ := a.GGUFName(target)
		if half == 'A' {
			return n + ggufA
		}
		return n + ggufB
	}
	if err := collectPairs(path, m, order, ggufNameOf); err != nil {
		return nil, err
	}
	ad := &Adapter{Format: GGUF, Arch: a.Name}
	ranks := map[int]int{}
	for _, target := range order {
		h := m[target]
		ta, tb := h.a.info, h.b.info
		if ta.Shape[0] != tb.Shape[1] {
			return nil, badAdapter(path, tb.Name, "", fmt.Sprintf("shape %v does not match lora_a %v (want [out, %d]; llama.cpp: lora_a tensor is not transposed)", tb.Shape, ta.Shape, ta.Shape[0]))
		}
		p := Pair{Target: target, Rank: int(ta.Shape[0]), In: int(ta.Shape[1]), Out: int(tb.Shape[0]), Alpha: alpha, Scale: 1}
		if alpha != 0 {
			p.Scale = alpha / float64(p.Rank)
		}
		if p.A, err = readFloats(src, ta, path); err != nil {
			return nil, err
		}
		gb, err := readFloats(src, tb, path)
		if err != nil {
			return nil, err
		}
		q, permuted, err := bi.qkRows(a, target, p.Out)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", path, tb.Name, err)
		}
		p.B = gb
		if permuted {
			p.B = permuteRows(gb, p.Rank, q.GGUFRow)
		}
		ranks[p.Rank]++
		ad.Pairs = append(ad.Pairs, p)
	}
	if len(ad.Pairs) == 0 {
		return nil, &formats.FormatError{File: path, Offset: -1, Err: ErrNotAdapter, Detail: "no .lora_a/.lora_b tensors"}
	}
	ad.Config = Config{Alpha: alpha}
	for r, n := range ranks {
		if n > ranks[ad.Config.Rank] || (n == ranks[ad.Config.Rank] && r < ad.Config.Rank) {
			ad.Config.Rank = r
		}
	}
	seen := map[string]bool{}
	for _, p := range ad.Pairs {
		if l := leafOf(moduleOf(p.Target)); !seen[l] {
			seen[l] = true
			ad.Config.TargetModules = append(ad.Config.TargetModules, l)
		}
	}
	return ad, nil
}

// permuteRows returns the rows×cols matrix whose row i is src's row
// from(i).
func permuteRows(src []float32, cols int, from func(int64) int64) []float32 {
	rows := len(src) / cols
	dst := make([]float32, len(src))
	for i := 0; i < rows; i++ {
		j := int(from(int64(i)))
		copy(dst[i*cols:(i+1)*cols], src[j*cols:(j+1)*cols])
	}
	return dst
}

// ggufAlpha chooses adapter.lora.alpha: rank·scale of the first pair with a
// non-zero scale, so that llama.cpp's alpha/rank reproduces that pair's
// scale (for rsLoRA this is α·√r). 0 when every scale is 0.
func ggufAlpha(ad *Adapter) (float32, error) {
	for _, p := range ad.Pairs {
		if p.Scale != 0 {
			a := float32(p.Scale * float64(p.Rank))
			if math.IsInf(float64(a), 0) || a == 0 {
				return 0, fmt.Errorf("lora: %s: scale %v × rank %d does not fit a FLOAT32 alpha: %w", p.Target, p.Scale, p.Rank, ErrCannotRepresent)
			}
			return a, nil
		}
	}
	return 0, nil
}

// ggufScale is the scale llama.cpp applies to a pair of rank r.
func ggufScale(alpha float32, r int) float64 {
	if alpha == 0 {
		return 1
	}
	return float64(alpha) / float64(r)
}

// foldTolerance: a pair whose scale differs from alpha/rank by no more
// than FLOAT32 rounding of alpha keeps its B bytes (folding would add a
// rounding of its own to every element).
const foldTolerance = 1.0 / (1 << 23)

// ggufTensors plans a GGUF LoRA's metadata and tensors.
//
// GGUF has one alpha for the whole adapter; ggufAlpha picks it from the
// first pair (Pairs are sorted by Target). Every pair whose Scale differs
// from alpha/rank (per-module alpha_pattern, rsLoRA with mixed ranks, MLX
// scales, …) has the ratio folded into its B, computed in float64 and
// rounded to float32; info lists those pairs. The rows of B for q and k
// are then permuted with the base's head counts.
func ggufTensors(ad *Adapter, a *arch.Arch, bi *baseInfo, info *WriteInfo) (*formats.Meta, []formats.Tensor, error) {
	alpha, err := ggufAlpha(ad)
	if err != nil {
		return nil, nil, err
	}
	info.Alpha = float64(alpha)
	meta := formats.NewMeta()
	meta.Set(keyArch, formats.ValString(a.Name))
	meta.Set(keyType, formats.ValString("adapter"))
	meta.Set(keyAdapterType, formats.ValString("lora"))
	meta.Set(keyAlpha, formats.ValFloat32(alpha))
	meta.Set(keyQuantVersion, formats.ValUint32(2))

	var ts []formats.Tensor
	for _, p := range ad.Pairs {
		if isEmbedding(p.Target) {
			return nil, nil, refuseAdapter("", p.Target, "embedding adapter; only Linear layers are converted")
		}
		name, _, _, ok := a.GGUFName(p.Target)
		if !ok {
			return nil, nil, refuseAdapter("", p.Target, fmt.Sprintf("not in the %s name table, so it has no GGUF name", a.Name))
		}
		b := p.B
		if f := p.Scale / ggufScale(alpha, p.Rank); math.Abs(f-1) > foldTolerance {
			b = foldB(b, f)
			info.Folded = append(info.Folded, p.Target)
		}
		q, permuted, err := bi.qkRows(a, p.Target, p.Out)
		if err != nil {
			return nil, nil, err
		}
		if permuted {
			b = permuteRows(b, p.Rank, q.HFRow)
		}
		ts = append(ts,
			f32Tensor(name+ggufA, []int64{int64(p.Rank), int64(p.In)}, p.A),
			f32Tensor(name+ggufB, []int64{int64(p.Out), int64(p.Rank)}, b))
	}
	return meta, ts, nil
}

// writeGGUF writes a GGUF LoRA file atomically.
func writeGGUF(ctx context.Context, path string, ad *Adapter, bi *baseInfo, force bool, info *WriteInfo) error {
	a := bi.arch
	if ad.Arch != "" {
		aa, err := arch.ByGGUF(ad.Arch)
		if err != nil {
			return err
		}
		if a != nil && a.Name != aa.Name {
			return fmt.Errorf("lora: adapter is for %q, base model is %q: %w", aa.Name, a.Name, ErrBadAdapter)
		}
		a = aa
	}
	if a == nil {
		return fmt.Errorf("lora: GGUF output needs the base model's architecture: %w", ErrNeedBase)
	}
	meta, ts, err := ggufTensors(ad, a, bi, info)
	if err != nil {
		return err
	}
	return gguf.WriteFile(ctx, path, meta, ts, gguf.WriteOptions{}, force)
}
