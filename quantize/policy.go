package quantize

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// The quantization policy: which tensors are quantized, to what, and what
// happens when a row does not fit a type's block. Each rule is a small
// named function; decide composes them in precedence order:
//
//  1. tensors that are not weight matrices stay as they are (names not
//     ending in "weight", fewer than two dimensions above 1, norms, and
//     llama-quantize's exclusions; for bitsandbytes anything but a 2-D
//     ".weight");
//  2. --keep;
//  3. --type-for (first match);
//  4. the output projection and the token embedding (flags, containers);
//  5. Type, or with Config.Mix llama-quantize's mix for Type (mix.go).
//
// A ggml type whose block does not divide the row length then falls back
// as llama-quantize does (GGUF-LLAMACPP.md §3.2).

// choice is the policy's verdict for one tensor.
type choice struct {
	typ      Type   // what the tensor becomes; TypeNone: copied unchanged
	asked    Type   // what was asked before any fallback
	fallback string // why typ differs from asked
	kept     string // why the tensor is copied unchanged
	rule     string // why the mix asked for a type other than Config.Type
}

func keep(why string) choice { return choice{kept: why} }

// decide applies the policy of Config c to one tensor for container f,
// without the mix.
func (c *Config) decide(ti formats.TensorInfo, f Container) choice {
	return c.decideWith(ti, f, nil)
}

// decideWith is decide with the mix rules of m (nil: none).
func (c *Config) decideWith(ti formats.TensorInfo, f Container, m *mixer) choice {
	if why := notAWeightMatrix(ti, f); why != "" {
		return keep(why)
	}
	if matchAny(c.Keep, ti.Name) {
		return keep("--keep")
	}
	t, why, byDefault := c.requested(ti, f)
	rule := ""
	if byDefault && m != nil {
		t, rule = m.rule(ti)
	}
	if t == TypeNone {
		return keep(why)
	}
	if !t.BNB() && t.DType() == ti.DType {
		return keep("already " + ti.DType.String())
	}
	ch := choice{typ: t, asked: t, rule: rule}
	if f == GGUF {
		ch.typ, ch.fallback = fitRow(ti, t)
	}
	return ch
}

// requested is the type rules 3–5 ask for; TypeNone with a reason when the
// tensor is to be kept. byDefault reports rule 5, the one the mix may
// change.
func (c *Config) requested(ti formats.TensorInfo, f Container) (t Type, why string, byDefault bool) {
	for _, r := range c.TypeFor {
		if r.Pattern.MatchString(ti.Name) {
			return r.Type, "", false
		}
	}
	switch {
	case isOutputProjection(ti.Name):
		if f == Safetensors {
			return TypeNone, "output projection (bitsandbytes keeps lm_head unquantized)", false
		}
		if c.LeaveOutput {
			return TypeNone, "output projection (--leave-output-tensor)", false
		}
	case isTokenEmbedding(ti.Name):
		if c.TokenEmbeddingType != TypeNone {
			return c.TokenEmbeddingType, "", false
		}
		if f == Safetensors {
			return TypeNone, "embedding (not a Linear layer)", false
		}
	}
	return c.Type, "", true
}

// notAWeightMatrix says why a tensor is not a candidate at all, or "".
func notAWeightMatrix(ti formats.TensorInfo, f Container) string {
	switch {
	case !decodable(ti.DType):
		return "dtype " + ti.DType.String()
	case isNorm(ti.Name):
		return "norm"
	case f == GGUF && !strings.HasSuffix(ti.Name, "weight"):
		return "not a weight"
	case f == Safetensors && !strings.HasSuffix(ti.Name, ".weight"):
		return "not a weight"
	case f == Safetensors && ti.DType != formats.F32 && ti.DType != formats.F16 && ti.DType != formats.BF16:
		return "dtype " + ti.DType.String() + " (bitsandbytes takes F32, F16, BF16)"
	case f == GGUF && effectiveRank(ti.Shape) < 2:
		return "1-D"
	case f == Safetensors && (len(ti.Shape) != 2 || effectiveRank(ti.Shape) < 2):
		return "not a 2-D Linear weight"
	case f == GGUF && llamaQuantizeSkips(ti.Name):
		return "kept by llama-quantize's rules"
	}
	return ""
}

// decodable reports whether the values of a dtype can be read as float32:
// the float types, and ggml block types the kernels dequantize.
func decodable(d formats.DType) bool {
	switch d {
	case formats.F32, formats.F16, formats.BF16, formats.F64:
		return true
	}
	return d.Quantized() && GGMLDequantizable(d)
}

// effectiveRank is ggml_n_dims: one plus the index (in ne order,
// innermost first) of the outermost dimension above 1. A GGUF [1, 4]
// tensor is 1-D.
func effectiveRank(shape []int64) int {
	for i := 0; i < len(shape)-1; i++ {
		if shape[i] > 1 {
			return len(shape) - i
		}
	}
	return 1
}

// rowLength is the innermost dimension (ggml's ne[0]).
func rowLength(shape []int64) int64 {
	if len(shape) == 0 {
		return 1
	}
	return shape[len(shape)-1]
}

// isNorm matches normalisation weights under GGUF and Hugging Face names
// (attn_norm, ffn_norm, output_norm, input_layernorm, model.norm, ln_f).
func isNorm(name string) bool {
	base := strings.TrimSuffix(strings.TrimSuffix(name, ".weight"), ".bias")
	last := base[strings.LastIndexByte(base, '.')+1:]
	return strings.HasSuffix(last, "norm") || strings.HasPrefix(last, "ln_") || last == "norm"
}

// isOutputProjection matches the final projection to the vocabulary.
func isOutputProjection(name string) bool {
	return name == "output.weight" || name == "lm_head.weight" || strings.HasSuffix(name, ".lm_head.weight")
}

// isTokenEmbedding matches the token embedding table.
func isTokenEmbedding(name string) bool {
	for _, s := range []string{"token_embd.weight", "embed_tokens.weight", "tok_embeddings.weight", "wte.weight", "word_embeddings.weight"} {
		if name == s || strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}

// llamaQuantizeSkips lists the 2-D weights llama-quantize never quantizes
// (src/llama-quant.cpp): MoE router, positional and token-type embeddings,
// the SSM convolution.
func llamaQuantizeSkips(name string) bool {
	for _, s := range []string{"ffn_gate_inp.weight", "pos_embd.weight", "token_types.weight", "ssm_conv1d.weight"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// fitRow applies llama-quantize's fallback when the row length is not a
// multiple of t's block: the K-quants fall back to a 32-element type
// (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0), and a row that no 32-element type
// fits becomes F16 (stories260K's ffn_down rows of 172 do).
func fitRow(ti formats.TensorInfo, t Type) (Type, string) {
	d := t.DType()
	row := rowLength(ti.Shape)
	if d.BlockSize() <= 1 || row%d.BlockSize() == 0 {
		return t, ""
	}
	next := kQuantFallback(t)
	if next != TypeNone && row%next.DType().BlockSize() == 0 {
		return next, fmt.Sprintf("row of %d is not a multiple of %d (%s)", row, d.BlockSize(), t)
	}
	return TypeF16, fmt.Sprintf("row of %d is not a multiple of %d (%s)", row, d.BlockSize(), t)
}

// kQuantFallback is llama-quantize's 32-element substitute of a K-quant.
func kQuantFallback(t Type) Type {
	switch t {
	case TypeQ4K:
		return TypeQ5_0
	case TypeQ5K:
		return TypeQ5_1
	case TypeQ6K:
		return TypeQ8_0
	}
	return TypeNone
}

func matchAny(res []*regexp.Regexp, name string) bool {
	for _, re := range res {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}
