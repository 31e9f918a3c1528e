package lora

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/outfile"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

// WriteOptions control Write.
type WriteOptions struct {
	// Format of the output; "" means GGUF for a path ending in .gguf and
	// PEFT otherwise.
	Format Format
	// Base is the base model. GGUF output needs it for the architecture
	// (unless the adapter came from a GGUF) and, for llama-family models,
	// the head counts that permute the rows of B for q and k. MLX output
	// uses its layer count for num_layers.
	Base formats.Source
	// Force replaces an existing output.
	Force bool
}

// WriteInfo says what a conversion had to change to fit the output format.
type WriteInfo struct {
	Format Format `json:"format"`
	Pairs  int    `json:"pairs"`
	// Alpha is the GGUF adapter.lora.alpha written.
	Alpha float64 `json:"alpha,omitempty"`
	// Scale is the MLX lora_parameters.scale written.
	Scale float64 `json:"scale,omitempty"`
	// Folded lists the targets whose scale differs from the one the
	// format applies, so that it was multiplied into B (GGUF, MLX).
	Folded []string `json:"folded,omitempty"`
	// Padded lists the targets zero-padded to the adapter's largest rank
	// (MLX has one rank).
	Padded []string `json:"padded,omitempty"`
}

// Write writes an adapter atomically (the output appears only when
// complete; an existing one is kept unless Force):
//
//   - PEFT: a folder with adapter_model.safetensors (F32;
//     base_model.model.<module>.lora_A.weight [r, in], .lora_B.weight
//     [out, r]) and adapter_config.json (r, lora_alpha, use_rslora,
//     rank_pattern / alpha_pattern for pairs that differ, target_modules;
//     the other keys of a PEFT source are kept).
//   - MLX: a folder with adapters.safetensors (<module>.lora_a [in, r],
//     .lora_b [r, out]) and adapter_config.json (lora_parameters.scale,
//     rank, keys; num_layers); see writeMLX for the one-scale, one-rank
//     rules.
//   - GGUF: a llama.cpp LoRA (F32, tensors in Target order, A then B); one
//     alpha, chosen as rank·scale of the first pair, the other pairs'
//     differing scales folded into B (see ggufTensors), q/k rows of B
//     permuted with the base's head counts.
//
// What a format cannot hold (an embedding target, a module outside the
// blocks for MLX, a target without a GGUF name) is refused with
// ErrCannotRepresent (formats.ErrUnsupported).
func Write(path string, ad *Adapter, opts WriteOptions) error {
	_, err := WriteReport(path, ad, opts)
	return err
}

// WriteReport is Write, returning what the conversion changed.
func WriteReport(path string, ad *Adapter, opts WriteOptions) (*WriteInfo, error) {
	f := opts.Format
	if f == "" {
		f = PEFT
		if strings.EqualFold(filepath.Ext(path), ".gguf") {
			f = GGUF
		}
	}
	if len(ad.Pairs) == 0 {
		return nil, fmt.Errorf("lora: the adapter has no pairs: %w", ErrNotAdapter)
	}
	sorted := *ad
	sorted.Pairs = append([]Pair(nil), ad.Pairs...)
	sorted.Sort()
	for i := range sorted.Pairs {
		if err := sorted.Pairs[i].Validate(); err != nil {
			return nil, fmt.Errorf("%v: %w", err, ErrBadAdapter)
		}
		if i > 0 && sorted.Pairs[i].Target == sorted.Pairs[i-1].Target {
			return nil, fmt.Errorf("lora: two pairs for %s: %w", sorted.Pairs[i].Target, ErrBadAdapter)
		}
	}
	bi, err := describeBase(opts.Base)
	if err != nil {
		return nil, fmt.Errorf("lora: base model: %w", err)
	}
	info := &WriteInfo{Format: f, Pairs: len(sorted.Pairs)}
	ctx := context.Background()
	switch f {
	case GGUF:
		err = writeGGUF(ctx, path, &sorted, bi, opts.Force, info)
	case PEFT, MLX:
		err = writeFolder(path, opts.Force, func(dir string) error {
			if f == PEFT {
				return writePEFT(ctx, dir, &sorted)
			}
			return writeMLX(ctx, dir, &sorted, bi, info)
		})
	default:
		return nil, fmt.Errorf("lora: unknown adapter format %q (want peft, mlx or gguf): %w", f, formats.ErrUnsupported)
	}
	if err != nil {
		return nil, err
	}
	return info, nil
}

// writeFolder fills a temporary folder and renames it into place.
func writeFolder(path string, force bool, fill func(dir string) error) error {
	d, err := outfile.CreateDir(path, outfile.Options{Force: force})
	if err != nil {
		return err
	}
	defer d.Abort()
	if err := fill(d.Path()); err != nil {
		return err
	}
	return d.Commit()
}

// writeSafetensors writes one safetensors file (inside a temporary folder,
// so it needs no atomicity of its own).
func writeSafetensors(ctx context.Context, path string, meta map[string]string, ts []formats.Tensor) error {
	f, err := outfile.Create(path, outfile.Options{})
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := safetensors.Write(ctx, f, meta, ts); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// f32Tensor is a lazy little-endian F32 tensor over values in memory.
func f32Tensor(name string, shape []int64, v []float32) formats.Tensor {
	return formats.Tensor{
		TensorInfo: formats.TensorInfo{Name: name, DType: formats.F32, Shape: shape, Size: 4 * int64(len(v))},
		Data:       f32Writer(v),
	}
}

// f32Writer encodes float32 values in chunks.
type f32Writer []float32

func (v f32Writer) WriteTo(w io.Writer) (int64, error) {
	const chunk = 16 << 10
	buf := make([]byte, 4*min(chunk, len(v)))
	var n int64
	for i := 0; i < len(v); i += chunk {
		part := v[i:min(i+chunk, len(v))]
		b := buf[:4*len(part)]
		for j, x := range part {
			binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(x))
		}
		k, err := w.Write(b)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
