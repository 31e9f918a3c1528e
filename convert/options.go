package convert

import (
	"fmt"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// Options control both directions.
type Options struct {
	// DType is the output type of the weight matrices: F32, F16 or BF16.
	// Invalid (the zero value) is "auto": each tensor keeps its source
	// type, and quantized GGUF tensors become F32. 1-D and norm tensors
	// are always F32 in GGUF, as llama.cpp's converter writes them.
	DType formats.DType
	// Name overrides general.name (HF → GGUF). Empty: from config.json's
	// _name_or_path, else the folder name, as the converter derives it.
	Name string
}

// ParseDType parses a --dtype value: f32, f16, bf16 or auto (Invalid).
func ParseDType(s string) (formats.DType, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return formats.Invalid, nil
	case "f32", "float32":
		return formats.F32, nil
	case "f16", "float16":
		return formats.F16, nil
	case "bf16", "bfloat16":
		return formats.BF16, nil
	}
	return formats.Invalid, fmt.Errorf("invalid dtype %q: want f32, f16, bf16 or auto", s)
}

func checkDType(d formats.DType) error {
	switch d {
	case formats.Invalid, formats.F32, formats.F16, formats.BF16:
		return nil
	}
	return fmt.Errorf("convert: output dtype %v: only F32, F16 and BF16 are written: %w", d, formats.ErrUnsupported)
}

// Report describes a conversion, for the CLI's summary.
type Report struct {
	// Architecture is the GGUF general.architecture; Class the config.json
	// architecture (LlamaForCausalLM, …).
	Architecture, Class string
	// FileType is general.file_type (HF → GGUF); TorchDType is
	// config.json's torch_dtype (GGUF → HF).
	FileType   uint32
	TorchDType string
	// Tensors and Bytes count the output tensors and their data; Params
	// their elements.
	Tensors int
	Bytes   int64
	Params  int64
	// Permuted lists the output tensors whose rows were permuted,
	// Dropped the source tensors not written (with the reason), Generated
	// the tensors computed from the config (rope_freqs.weight).
	Permuted  []string
	Dropped   []string
	Generated []string
	// Notes are facts worth telling the user (a key that cannot be
	// carried over, a missing tokenizer).
	Notes []string
}

// fileTypeOf is llama_ftype for the dtype of the weight matrices
// (GGUF-LLAMACPP.md §2).
func fileTypeOf(d formats.DType) uint32 {
	switch d {
	case formats.F16:
		return 1
	case formats.BF16:
		return 32
	}
	return 0
}

// torchDType is config.json's torch_dtype for a dtype.
func torchDType(d formats.DType) string {
	switch d {
	case formats.F16:
		return "float16"
	case formats.BF16:
		return "bfloat16"
	}
	return "float32"
}
