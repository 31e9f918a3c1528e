package arch

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// ErrUnknownArch is returned for a config.json architecture or a GGUF
// general.architecture that has no table here.
var ErrUnknownArch = formats.NewRule("unsupported model architecture", formats.ErrUnsupported)

// ErrUnknownTensor is returned for a tensor name that an architecture's
// table does not map.
var ErrUnknownTensor = formats.NewRule("tensor not in the architecture's name table", formats.ErrUnsupported)

// Permutation says how a tensor's rows are reordered between the Hugging
// Face layout and GGUF (GGUF-LLAMACPP.md §2.2).
type Permutation uint8

const (
	// NoPermutation: the bytes are the same in both layouts.
	NoPermutation Permutation = iota
	// PermuteHeads: q_proj rows (weight and bias), with n = head_count.
	PermuteHeads
	// PermuteKVHeads: k_proj rows (weight and bias), with n = head_count_kv.
	PermuteKVHeads
)

func (p Permutation) String() string {
	switch p {
	case NoPermutation:
		return "none"
	case PermuteHeads:
		return "heads"
	case PermuteKVHeads:
		return "kv-heads"
	}
	return "Permutation(" + strconv.Itoa(int(p)) + ")"
}

// Block is the placeholder for the block (layer) number in a name pattern.
const Block = "#"

// Pair is one tensor-name replacement pair. Block ("#") stands for the
// layer number and must appear in both names or in neither.
type Pair struct {
	HF      string
	GGUF    string
	Permute Permutation
}

// Param maps one config.json key to one GGUF key. GGUF is the key after
// "<architecture>." (attention.head_count → llama.attention.head_count).
type Param struct {
	HF   string
	GGUF string
	Type formats.ValueType // TypeUint32 or TypeFloat32 (§2: loader checks types)
}

// Default is a config.json entry that GGUF does not store, written with
// this value when a GGUF becomes a Hugging Face folder.
type Default struct {
	Key   string
	Value any // a JSON value: bool, float64, int, string, nil
}

// Arch is one architecture's conversion table.
type Arch struct {
	// Name is the GGUF general.architecture ("llama" for mistral too).
	Name string
	// ModelType is config.json's model_type.
	ModelType string
	// Classes are the config.json architectures accepted; Classes[0] is
	// written when a GGUF becomes a Hugging Face folder.
	Classes []string
	// Tensors are the name pairs. Tensors absent from a file are simply
	// absent; a tensor that no pair matches is refused (ErrUnknownTensor)
	// unless Drop lists it.
	Tensors []Pair
	// Drop are HF names (patterns) the converter discards, such as the
	// rotary inv_freq buffers some checkpoints carry.
	Drop []string
	// Params are written in this order before general.file_type, each
	// only when config.json has the key (convert_hf_to_gguf.py's
	// TextModel.set_gguf_parameters). A key listed twice (head_dim gives
	// key_length and value_length) is written twice.
	Params []Param
	// PostParams follow general.file_type (LlamaModel adds vocab_size).
	PostParams []Param
	// RopeDimension: write <arch>.rope.dimension_count (head_dim, or
	// hidden_size / num_attention_heads) after PostParams, as LlamaModel
	// does; llama.cpp requires it to equal the head size.
	RopeDimension bool
	// RopeScaling lists the rope_scaling types converted ("linear",
	// "llama3", "yarn"); any other type is refused.
	RopeScaling []string
	// HeadDim: config.json always gets head_dim (LlamaConfig has it; it
	// defaults to hidden_size / num_attention_heads), taken from
	// attention.key_length, else rope.dimension_count. Without it head_dim
	// is written only when the GGUF has key_length.
	HeadDim bool
	// Defaults are the config.json entries GGUF does not store.
	Defaults []Default
}

// HasPermutation reports whether any tensor of a is permuted (the llama
// family; qwen2 uses NeoX-style RoPE and keeps the HF row order).
func (a *Arch) HasPermutation() bool {
	for _, p := range a.Tensors {
		if p.Permute != NoPermutation {
			return true
		}
	}
	return false
}

// RopeScalingSupported reports whether a converts rope_scaling type t.
func (a *Arch) RopeScalingSupported(t string) bool {
	for _, s := range a.RopeScaling {
		if s == t {
			return true
		}
	}
	return false
}

// registry lists every table; ByGGUF returns the first one with a name.
var registry = []*Arch{&Llama, &Mistral, &Qwen2}

// All returns every architecture table.
func All() []*Arch { return append([]*Arch(nil), registry...) }

// ByHF finds the table for a config.json's architectures list (first
// match wins) or, when that names nothing known, its model_type.
func ByHF(classes []string, modelType string) (*Arch, error) {
	for _, c := range classes {
		for _, a := range registry {
			for _, k := range a.Classes {
				if k == c {
					return a, nil
				}
			}
		}
	}
	if len(classes) == 0 {
		for _, a := range registry {
			if a.ModelType == modelType && modelType != "" {
				return a, nil
			}
		}
	}
	what := strings.Join(classes, ", ")
	if what == "" {
		what = "(none)"
	}
	return nil, fmt.Errorf("architecture %s (model_type %q): %w; qtool converts %s", what, modelType, ErrUnknownArch, supported())
}

// ByGGUF finds the table for a GGUF general.architecture.
func ByGGUF(name string) (*Arch, error) {
	for _, a := range registry {
		if a.Name == name {
			return a, nil
		}
	}
	return nil, fmt.Errorf("GGUF architecture %q: %w; qtool converts %s", name, ErrUnknownArch, supported())
}

func supported() string {
	var s []string
	for _, a := range registry {
		s = append(s, a.Classes...)
	}
	return strings.Join(s, ", ")
}

// GGUFName maps a Hugging Face tensor name to its GGUF name and pair.
// dropped is true for a name listed in Drop; ok is false when no pair
// matches.
func (a *Arch) GGUFName(hf string) (name string, p Pair, dropped, ok bool) {
	pat, blk := pattern(hf)
	for _, d := range a.Drop {
		if d == pat {
			return "", Pair{}, true, false
		}
	}
	for _, p := range a.Tensors {
		if p.HF == pat {
			return fill(p.GGUF, blk), p, false, true
		}
	}
	return "", Pair{}, false, false
}

// HFName maps a GGUF tensor name to its Hugging Face name and pair.
func (a *Arch) HFName(gguf string) (name string, p Pair, ok bool) {
	pat, blk := pattern(gguf)
	for _, p := range a.Tensors {
		if p.GGUF == pat {
			return fill(p.HF, blk), p, true
		}
	}
	return "", Pair{}, false
}

// pattern replaces the first all-digit dotted component of name by Block
// and returns it; blk is "" when there is none.
func pattern(name string) (pat, blk string) {
	start := 0
	for start <= len(name) {
		end := strings.IndexByte(name[start:], '.')
		if end < 0 {
			end = len(name)
		} else {
			end += start
		}
		if c := name[start:end]; c != "" && allDigits(c) {
			return name[:start] + Block + name[end:], c
		}
		start = end + 1
	}
	return name, ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func fill(pat, blk string) string {
	if blk == "" {
		return pat
	}
	return strings.Replace(pat, Block, blk, 1)
}

// BlockOf returns the block number in a tensor name (either layout), or -1
// for a tensor outside the blocks.
func BlockOf(name string) int {
	_, blk := pattern(name)
	if blk == "" {
		return -1
	}
	n, err := strconv.Atoi(blk)
	if err != nil {
		return -1
	}
	return n
}

// Index is the position of name's pair in a.Tensors (the model order of
// a block's tensors), or len(a.Tensors) when none matches; hf selects the
// layout of name.
func (a *Arch) Index(name string, hf bool) int {
	pat, _ := pattern(name)
	for i, p := range a.Tensors {
		if (hf && p.HF == pat) || (!hf && p.GGUF == pat) {
			return i
		}
	}
	return len(a.Tensors)
}
