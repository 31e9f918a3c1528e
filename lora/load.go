package lora

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/quantize"
)

// File names of the folder layouts.
const (
	peftWeights = "adapter_model.safetensors"
	peftPickle  = "adapter_model.bin"
	mlxWeights  = "adapters.safetensors"
	configFile  = "adapter_config.json"
)

// maxConfigBytes bounds adapter_config.json.
const maxConfigBytes = 16 << 20

// LoadOptions control Load.
type LoadOptions struct {
	// Base is the base model (a GGUF file or a Hugging Face folder). GGUF
	// adapters of llama-family models need it for the head counts that
	// undo the Q/K row permutation of lora_b; with it, Adapter.Arch is
	// filled for every format. May be nil for PEFT and MLX adapters.
	Base formats.Source
}

// Load reads an adapter: a PEFT folder or its adapter_model.safetensors,
// an MLX folder or its adapters.safetensors, or a GGUF LoRA file. The
// format is detected from the GGUF magic and the file names (a folder
// with both layouts is refused as ambiguous).
//
// The result is in the shared model: Pairs sorted by Target, Hugging Face
// names, PEFT orientation (A r×in, B out×r, B rows in HF order), and each
// Pair's Scale resolved: lora_alpha/r (α/√r with use_rslora) after
// rank_pattern and alpha_pattern for PEFT, lora_parameters.scale for MLX,
// adapter.lora.alpha / rank for GGUF (1 when alpha is 0, as llama.cpp
// does). A pair's rank is its factors' (Lint reports one that disagrees
// with r / rank_pattern). Factors stored as F16, BF16 or F64 (Q8_0 in GGUF) are decoded to
// float32.
//
// Errors: a malformed file or config wraps formats.ErrFormat and names the
// file and tensor; DoRA, embedding adapters, full tensors saved beside the
// pairs (modules_to_save, bias) and other things LoRA pairs cannot hold
// wrap formats.ErrUnsupported (ErrCannotRepresent); a llama GGUF adapter
// with q/k pairs and no Base wraps ErrNeedBase.
func Load(path string, opts LoadOptions) (*Adapter, error) {
	f, weights, err := detectAdapter(path)
	if err != nil {
		return nil, err
	}
	bi, err := describeBase(opts.Base)
	if err != nil {
		return nil, fmt.Errorf("lora: base model: %w", err)
	}
	var ad *Adapter
	switch f {
	case PEFT:
		ad, err = loadPEFT(weights)
	case MLX:
		ad, err = loadMLX(weights)
	case GGUF:
		ad, err = loadGGUF(weights, bi)
	}
	if err != nil {
		return nil, err
	}
	if ad.Arch == "" && bi.arch != nil {
		ad.Arch = bi.arch.Name
	}
	ad.Sort()
	for i := range ad.Pairs {
		if err := ad.Pairs[i].Validate(); err != nil {
			return nil, fmt.Errorf("%s: %v: %w", weights, err, ErrBadAdapter)
		}
	}
	return ad, nil
}

// Detect names the format of the adapter at path and the weights file it
// reads.
func Detect(path string) (Format, string, error) { return detectAdapter(path) }

func detectAdapter(path string) (Format, string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", "", err
	}
	if st.IsDir() {
		peft := isFile(filepath.Join(path, peftWeights))
		mlx := isFile(filepath.Join(path, mlxWeights))
		switch {
		case peft && mlx:
			return "", "", &formats.FormatError{File: path, Offset: -1, Err: ErrNotAdapter,
				Detail: "the folder holds both " + peftWeights + " (PEFT) and " + mlxWeights + " (MLX); name the file"}
		case peft:
			return PEFT, filepath.Join(path, peftWeights), nil
		case mlx:
			return MLX, filepath.Join(path, mlxWeights), nil
		case isFile(filepath.Join(path, peftPickle)):
			return "", "", &formats.FormatError{File: filepath.Join(path, peftPickle), Offset: -1, Err: ErrCannotRepresent,
				Detail: "pickled PyTorch adapter; save it with safe_serialization=True (adapter_model.safetensors)"}
		}
		return "", "", &formats.FormatError{File: path, Offset: -1, Err: ErrNotAdapter,
			Detail: "no " + peftWeights + " (PEFT) or " + mlxWeights + " (MLX) in the folder"}
	}
	if isGGUFFile(path) {
		return GGUF, path, nil
	}
	switch filepath.Base(path) {
	case peftWeights:
		return PEFT, path, nil
	case mlxWeights:
		return MLX, path, nil
	}
	if strings.HasSuffix(path, ".safetensors") {
		return sniffSafetensors(path)
	}
	return "", "", &formats.FormatError{File: path, Offset: -1, Err: ErrNotAdapter,
		Detail: "expected a PEFT or MLX folder, a .safetensors adapter or a GGUF LoRA"}
}

// sniffSafetensors tells PEFT from MLX by the factor names.
func sniffSafetensors(path string) (Format, string, error) {
	r, err := safetensors.Open(path)
	if err != nil {
		return "", "", err
	}
	defer r.Close()
	for _, t := range r.Tensors() {
		switch {
		case strings.Contains(t.Name, ".lora_A") || strings.Contains(t.Name, ".lora_B"):
			return PEFT, path, nil
		case strings.HasSuffix(t.Name, mlxA) || strings.HasSuffix(t.Name, mlxB):
			return MLX, path, nil
		}
	}
	return "", "", &formats.FormatError{File: path, Offset: -1, Err: ErrNotAdapter, Detail: "no lora_A/lora_B (PEFT) or lora_a/lora_b (MLX) tensors"}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func isGGUFFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && string(magic[:]) == "GGUF"
}

// readConfig reads the adapter_config.json beside a weights file.
func readConfig(weights string) ([]byte, string, error) {
	p := filepath.Join(filepath.Dir(weights), configFile)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, p, &formats.FormatError{File: p, Offset: -1, Err: ErrNotAdapter, Detail: "missing: the adapter's scale lives there"}
	}
	if err != nil {
		return nil, p, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, p, err
	}
	if len(b) > maxConfigBytes {
		return nil, p, &formats.FormatError{File: p, Offset: -1, Err: formats.ErrLimit, Detail: fmt.Sprintf("larger than %d bytes", maxConfigBytes)}
	}
	return b, p, nil
}

// readFloats decodes a whole tensor to float32 (F32, F16, BF16, F64, and
// the ggml types quantize can dequantize).
func readFloats(src formats.Source, ti formats.TensorInfo, file string) ([]float32, error) {
	n, ok := ti.NumElements()
	if !ok || n > 1<<40 {
		return nil, badAdapter(file, ti.Name, "", fmt.Sprintf("bad shape %v", ti.Shape))
	}
	var raw []byte
	if bs, ok := src.(formats.ByteSource); ok {
		b, err := bs.Bytes(ti.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", file, ti.Name, err)
		}
		raw = b
	} else {
		sec, err := src.Section(ti.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", file, ti.Name, err)
		}
		raw = make([]byte, sec.Size())
		if _, err := io.ReadFull(sec, raw); err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", file, ti.Name, err)
		}
	}
	dst := make([]float32, n)
	var err error
	switch {
	case ti.DType == formats.F64:
		err = quantize.ToFloat32(dst, raw, ti.DType)
	case ti.DType == formats.F32 || ti.DType == formats.F16 || ti.DType == formats.BF16 || quantize.GGMLDequantizable(ti.DType):
		err = quantize.DequantizeGGML(ti.DType, dst, raw)
	default:
		return nil, &formats.FormatError{File: file, Offset: -1, Tensor: ti.Name, Err: ErrCannotRepresent,
			Detail: fmt.Sprintf("dtype %v; LoRA factors must be F32, F16, BF16 or F64 (or a GGUF type qtool dequantizes)", ti.DType)}
	}
	if err != nil {
		return nil, badAdapter(file, ti.Name, "", err.Error())
	}
	return dst, nil
}

// factor is one A or B tensor waiting for its partner.
type factor struct {
	info formats.TensorInfo
	set  bool
}

// halves are the two factors of one target.
type halves struct {
	a, b factor
}

// collectPairs fails on a target with only one of its factors; what names
// a factor in the file's layout.
func collectPairs(file string, m map[string]*halves, order []string, what func(target string, half byte) string) error {
	for _, target := range order {
		h := m[target]
		switch {
		case !h.a.set:
			return badAdapter(file, what(target, 'B'), "", "has no matching "+what(target, 'A'))
		case !h.b.set:
			return badAdapter(file, what(target, 'A'), "", "has no matching "+what(target, 'B'))
		}
	}
	return nil
}

// addHalf records one factor, refusing duplicates.
func addHalf(file string, m map[string]*halves, order *[]string, target string, half byte, ti formats.TensorInfo) error {
	h := m[target]
	if h == nil {
		h = &halves{}
		m[target] = h
		*order = append(*order, target)
	}
	f := &h.a
	if half == 'B' {
		f = &h.b
	}
	if f.set {
		return badAdapter(file, ti.Name, "", fmt.Sprintf("a second lora_%c for %s (also %q)", half, target, f.info.Name))
	}
	f.info, f.set = ti, true
	return nil
}

// check2D refuses factors that are not matrices (MoE switch layers, Conv).
func check2D(file string, ti formats.TensorInfo) error {
	if len(ti.Shape) != 2 || ti.Shape[0] <= 0 || ti.Shape[1] <= 0 {
		return &formats.FormatError{File: file, Offset: -1, Tensor: ti.Name, Err: ErrCannotRepresent,
			Detail: fmt.Sprintf("shape %v; only 2-D (Linear) LoRA factors are converted", ti.Shape)}
	}
	if ti.Shape[0] > 1<<31 || ti.Shape[1] > 1<<31 {
		return badAdapter(file, ti.Name, "", fmt.Sprintf("shape %v too large", ti.Shape))
	}
	return nil
}

// transpose writes the cols×rows transpose of src (rows×cols) to dst.
func transposeF32(dst, src []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		row := src[r*cols : (r+1)*cols]
		for c, v := range row {
			dst[c*rows+r] = v
		}
	}
}
