package lora

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
)

// Error classes of the adapter readers and writers. Each wraps one of the
// formats classes, so the CLI maps them to exit codes (ErrFormat → 3,
// ErrUnsupported → 4) and tests match them with errors.Is.
var (
	// ErrNotAdapter: the path holds no adapter qtool recognises (no
	// adapter_model.safetensors / adapters.safetensors, a GGUF whose
	// general.type is not "adapter").
	ErrNotAdapter = formats.NewRule("not a LoRA adapter", formats.ErrFormat)
	// ErrBadAdapter: an adapter file or its config breaks its format (a
	// lora_A without its lora_B, ranks that disagree, a bad JSON value).
	ErrBadAdapter = formats.NewRule("malformed LoRA adapter", formats.ErrFormat)
	// ErrCannotRepresent: the adapter uses something a format cannot hold
	// (DoRA magnitudes, embedding adapters, full tensors saved beside the
	// LoRA pairs, a target outside the architecture's name table). It is
	// refused by name, never dropped.
	ErrCannotRepresent = formats.NewRule("adapter feature cannot be represented", formats.ErrUnsupported)
	// ErrNeedBase: a GGUF adapter of a llama-family model is read or
	// written without a base model, whose head counts the Q/K row
	// permutation of lora_b needs (GGUF-LLAMACPP.md §2.2).
	ErrNeedBase = formats.NewRule("a base model is needed (head counts for the Q/K permutation)", formats.ErrUnsupported)
)

// refuse builds the error for something a format cannot represent.
func refuseAdapter(file, tensor, what string) error {
	return &formats.FormatError{File: file, Offset: -1, Tensor: tensor, Err: ErrCannotRepresent, Detail: what}
}

// bad builds a located ErrBadAdapter.
func badAdapter(file, tensor, key, detail string) error {
	return &formats.FormatError{File: file, Offset: -1, Tensor: tensor, Key: key, Err: ErrBadAdapter, Detail: detail}
}

// Tensor-name layouts (ADAPTER-FORMATS.md):
//
//	PEFT  base_model.model.<module>.lora_A.weight   r×in
//	      base_model.model.<module>.lora_B.weight   out×r
//	MLX   <module>.lora_a                            in×r
//	      <module>.lora_b                            r×out
//	GGUF  <gguf name of <module>.weight>.lora_a     ggml [in, r]
//	      <gguf name of <module>.weight>.lora_b     ggml [r, out]
//
// <module> is the Hugging Face module path ("model.layers.0.self_attn.q_proj");
// a Pair's Target is <module>.weight.
const (
	peftPrefix = "base_model.model."
	peftA      = ".lora_A.weight"
	peftB      = ".lora_B.weight"
	mlxA       = ".lora_a"
	mlxB       = ".lora_b"
	ggufA      = ".lora_a"
	ggufB      = ".lora_b"
)

// peftKeyRE matches a PEFT LoRA factor, with the adapter name that some
// savers leave in (".lora_A.default.weight").
var peftKeyRE = regexp.MustCompile(`^(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$`)

// parsePEFTKey returns the module path and factor ('A' or 'B') of a PEFT
// tensor name, or refuses what LoRA pairs cannot hold.
func parsePEFTKey(file, name string) (module string, half byte, err error) {
	switch {
	case strings.Contains(name, ".lora_magnitude_vector"):
		return "", 0, refuseAdapter(file, name, "DoRA magnitude vector (use_dora); DoRA adapters cannot be converted to plain LoRA")
	case strings.Contains(name, ".lora_embedding_A") || strings.Contains(name, ".lora_embedding_B"):
		return "", 0, refuseAdapter(file, name, "embedding adapter (lora_embedding_A/B); only Linear layers are converted")
	case strings.Contains(name, ".modules_to_save."):
		return "", 0, refuseAdapter(file, name, "full tensor from modules_to_save; a full replacement is not a LoRA pair")
	}
	m := peftKeyRE.FindStringSubmatch(name)
	if m == nil {
		if strings.Contains(name, ".lora_A.") || strings.Contains(name, ".lora_B.") {
			return "", 0, refuseAdapter(file, name, "LoRA bias (lora_bias); only the A and B weights are converted")
		}
		return "", 0, refuseAdapter(file, name, "full tensor beside the LoRA pairs (modules_to_save or bias); a full replacement is not a LoRA pair")
	}
	return strings.TrimPrefix(m[1], peftPrefix), m[2][0], nil
}

// peftName is the PEFT tensor name of a target's factor.
func peftName(target string, half byte) string {
	if half == 'A' {
		return peftPrefix + moduleOf(target) + peftA
	}
	return peftPrefix + moduleOf(target) + peftB
}

// moduleOf strips ".weight" from a target.
func moduleOf(target string) string { return strings.TrimSuffix(target, ".weight") }

// targetOf is the base weight a module's LoRA pair updates.
func targetOf(module string) string { return module + ".weight" }

// leafOf is the last component of a module path ("q_proj"), the unit of
// PEFT's target_modules.
func leafOf(module string) string {
	if i := strings.LastIndexByte(module, '.'); i >= 0 {
		return module[i+1:]
	}
	return module
}

// isEmbedding reports a target that is an embedding table: LoRA on it is
// an embedding adapter, which qtool refuses in every format.
func isEmbedding(target string) bool {
	return strings.HasSuffix(target, "embed_tokens.weight") || strings.HasSuffix(target, "wte.weight")
}

// mlxLayer splits "model.layers.N.<key>" into N and <key>, the module path
// relative to the transformer block that mlx-lm's lora_parameters.keys
// lists.
func mlxLayer(module string) (layer int, key string, ok bool) {
	const pfx = "model.layers."
	if !strings.HasPrefix(module, pfx) {
		return 0, "", false
	}
	rest := module[len(pfx):]
	dot := strings.IndexByte(rest, '.')
	if dot <= 0 {
		return 0, "", false
	}
	n := 0
	for _, c := range rest[:dot] {
		if c < '0' || c > '9' || n > 1<<20 {
			return 0, "", false
		}
		n = n*10 + int(c-'0')
	}
	return n, rest[dot+1:], true
}

// matchPattern reports whether a PEFT rank_pattern / alpha_pattern key
// selects a module: PEFT's rule is re.match(rf"(.*\.)?({key})$", module).
// A key that is not a valid (RE2) regular expression matches only itself.
func matchPattern(key, module string) bool {
	re, err := regexp.Compile(`^(?:.*\.)?(?:` + key + `)$`)
	if err != nil {
		return key == module || strings.HasSuffix(module, "."+key)
	}
	return re.MatchString(module)
}

// resolvePattern returns the value of the first key (in keys' order) that
// selects module. PEFT takes the first match in the JSON object's order;
// keys carries that order when it is known (Load), else the keys sorted
// longest first, so the most specific pattern wins.
func resolvePattern[V any](pat map[string]V, keys []string, module string) (V, bool) {
	var zero V
	if len(pat) == 0 {
		return zero, false
	}
	if keys == nil {
		keys = specificFirst(pat)
	}
	for _, k := range keys {
		if v, ok := pat[k]; ok && matchPattern(k, module) {
			return v, true
		}
	}
	return zero, false
}

// specificFirst orders a pattern map's keys longest first, then by name.
func specificFirst[V any](pat map[string]V) []string {
	keys := make([]string, 0, len(pat))
	for k := range pat {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) > len(keys[j])
		}
		return keys[i] < keys[j]
	})
	return keys
}

// baseInfo is what the adapter code needs from a base model: its
// architecture table (for HF ↔ GGUF names), whether its tensors carry GGUF
// names, and its head counts (for the Q/K permutation of lora_b).
type baseInfo struct {
	arch           *arch.Arch // nil when unknown (a bare safetensors file)
	gguf           bool
	nHead, nHeadKV int64
	nLayers        int64
}

// configSource is implemented by Hugging Face folder sources
// (safetensors.Folder): the bytes of config.json.
type configSource interface{ Config() []byte }

// describeBase reads a base model's architecture and head counts, from
// GGUF KVs or a Hugging Face config.json. A nil base gives a zero
// baseInfo.
func describeBase(base formats.Source) (*baseInfo, error) {
	bi := &baseInfo{}
	if base == nil {
		return bi, nil
	}
	if cs, ok := base.(configSource); ok && len(cs.Config()) > 0 {
		return describeHF(cs.Config(), bi)
	}
	meta := base.Meta()
	name, ok := meta.String("general.architecture")
	if !ok {
		return bi, nil
	}
	bi.gguf = true
	a, err := arch.ByGGUF(name)
	if err != nil {
		return nil, err
	}
	bi.arch = a
	count := func(k string, def int64) (int64, error) {
		v, ok := meta.Get(a.Name + "." + k)
		if !ok {
			return def, nil
		}
		if u, ok := v.AsUint(); ok && u > 0 && u < 1<<31 {
			return int64(u), nil
		}
		if v.Type == formats.TypeArray {
			return uniformCount(v, a.Name+"."+k)
		}
		return 0, &formats.FormatError{Offset: -1, Key: a.Name + "." + k, Err: ErrBadAdapter, Detail: fmt.Sprintf("base model value %v is not a positive count", v.V)}
	}
	if bi.nHead, err = count("attention.head_count", 0); err != nil {
		return nil, err
	}
	if bi.nHeadKV, err = count("attention.head_count_kv", bi.nHead); err != nil {
		return nil, err
	}
	if bi.nLayers, err = count("block_count", 0); err != nil {
		return nil, err
	}
	return bi, nil
}

// uniformCount accepts a per-layer count array whose entries are all equal.
func uniformCount(v formats.Value, key string) (int64, error) {
	var first int64
	ok := true
	switch s := v.V.(type) {
	case []uint32:
		for i, x := range s {
			if i == 0 {
				first = int64(x)
			} else if int64(x) != first {
				ok = false
			}
		}
	case []int32:
		for i, x := range s {
			if i == 0 {
				first = int64(x)
			} else if int64(x) != first {
				ok = false
			}
		}
	default:
		ok = false
	}
	if !ok || first <= 0 {
		return 0, &formats.FormatError{Offset: -1, Key: key, Err: ErrCannotRepresent, Detail: "per-layer head counts that differ between layers"}
	}
	return first, nil
}

// describeHF reads config.json.
func describeHF(cfg []byte, bi *baseInfo) (*baseInfo, error) {
	var c struct {
		Architectures []string `json:"architectures"`
		ModelType     string   `json:"model_type"`
		Heads         *int64   `json:"num_attention_heads"`
		KVHeads       *int64   `json:"num_key_value_heads"`
		Layers        *int64   `json:"num_hidden_layers"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return nil, &formats.FormatError{File: "config.json", Offset: -1, Err: ErrBadAdapter, Detail: "base model config.json: " + err.Error()}
	}
	a, err := arch.ByHF(c.Architectures, c.ModelType)
	if err != nil {
		return nil, err
	}
	bi.arch = a
	if c.Heads != nil {
		bi.nHead = *c.Heads
	}
	bi.nHeadKV = bi.nHead
	if c.KVHeads != nil {
		bi.nHeadKV = *c.KVHeads
	}
	if c.Layers != nil {
		bi.nLayers = *c.Layers
	}
	if bi.nHead < 0 || bi.nHeadKV < 0 || bi.nLayers < 0 {
		return nil, &formats.FormatError{File: "config.json", Offset: -1, Err: ErrBadAdapter, Detail: "negative head or layer count"}
	}
	return bi, nil
}

// qkRows is the Q/K row permutation of a target's lora_b, or ok=false for
// a target whose rows GGUF keeps in HF order.
func (bi *baseInfo) qkRows(a *arch.Arch, target string, out int) (q arch.QKRows, ok bool, err error) {
	_, pair, _, found := a.GGUFName(target)
	if !found || pair.Permute == arch.NoPermutation {
		return arch.QKRows{}, false, nil
	}
	n := pair.Permute.Heads(bi.nHead, bi.nHeadKV)
	if n <= 0 {
		return arch.QKRows{}, false, fmt.Errorf("lora: %s: %w", target, ErrNeedBase)
	}
	q, err = arch.NewQKRows(int64(out), n)
	if err != nil {
		return arch.QKRows{}, false, fmt.Errorf("lora: %s: %v: %w", target, err, ErrBadAdapter)
	}
	return q, true, nil
}
