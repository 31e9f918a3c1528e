package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/convert"
	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/outfile"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

// ConvertOptions are the inputs of `qtool convert`.
type ConvertOptions struct {
	IO           *IOStreams
	In, Out      string
	DType        string
	MaxShardSize string
	Name         string
	Force        bool
}

func newConvertCmd(f *Factory, runF func(context.Context, *ConvertOptions) error) *cobra.Command {
	opts := &ConvertOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "convert IN -o OUT",
		Short: "Convert a Hugging Face Llama-family folder to GGUF, or a GGUF to a Hugging Face folder",
		Long: `Convert turns a Hugging Face model folder (config.json, safetensors,
tokenizer.json and/or tokenizer.model) into a GGUF file that llama.cpp
loads, or a GGUF file back into a Hugging Face folder. The direction follows
IN and OUT: a folder and a .gguf file, either way round.

HF → GGUF does what llama.cpp's convert_hf_to_gguf.py does: architecture
metadata from config.json, tensor names from a per-architecture table, the
Q/K row permutation of the llama family, tied embeddings, Llama 3 rope
scaling, 1-D and norm tensors in F32, and the tokenizer.
GGUF → HF writes safetensors (sharded past --max-shard-size), config.json,
generation_config.json and the tokenizer; quantized tensors are dequantized.

Architectures: llama (Llama 2, Llama 3.x, TinyLlama, SmolLM), mistral and
qwen2. Anything else is refused (exit 4).

--dtype sets the type of the weight matrices: f32, f16, bf16, or auto (the
default) to keep each tensor's source type (F32 for quantized GGUF tensors).
Conversion streams one chunk of each tensor at a time. The output appears
only when complete; an existing output is kept unless --force.`,
		Example: `  qtool convert ./Llama-3.2-1B -o llama-3.2-1b-f16.gguf --dtype f16
  qtool convert model.gguf -o ./model-hf --max-shard-size 2GB
  qtool convert ./TinyLlama -o tinyllama.gguf --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.In = args[0]
			if opts.Out == "" {
				return flagErrorf("missing -o OUT")
			}
			if _, err := convert.ParseDType(opts.DType); err != nil {
				return &FlagError{Err: fmt.Errorf("--dtype: %w", err)}
			}
			if opts.MaxShardSize != "" {
				if _, err := safetensors.ParseSize(opts.MaxShardSize); err != nil {
					return &FlagError{Err: fmt.Errorf("--max-shard-size: %w", err)}
				}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runConvert(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Out, "output", "o", "", "output: a .gguf file, or a folder for the Hugging Face layout")
	cmd.Flags().StringVar(&opts.DType, "dtype", "auto", "weight type: f32, f16, bf16 or auto (keep the source's)")
	cmd.Flags().StringVar(&opts.MaxShardSize, "max-shard-size", "", "GGUF → HF: split the safetensors into shards of at most this size (e.g. 5GB, 500MB)")
	cmd.Flags().StringVar(&opts.Name, "name", "", "HF → GGUF: general.name (default: from config.json or the folder name)")
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "replace an existing output")
	return cmd
}

func runConvert(ctx context.Context, opts *ConvertOptions) error {
	dt, _ := convert.ParseDType(opts.DType)
	var shard int64
	if opts.MaxShardSize != "" {
		shard, _ = safetensors.ParseSize(opts.MaxShardSize)
	}
	if err := inputExists(opts.In); err != nil {
		return err
	}
	in, err := detect.Sniff(opts.In)
	if err != nil {
		return err
	}
	outGGUF := strings.EqualFold(filepath.Ext(opts.Out), ".gguf")
	copts := convert.Options{DType: dt, Name: opts.Name}
	switch {
	case in == detect.HFFolder && outGGUF:
		if shard > 0 {
			return flagErrorf("--max-shard-size applies to a Hugging Face output folder, not to %s", opts.Out)
		}
		return convertToGGUF(ctx, opts, copts)
	case in == detect.GGUF && !outGGUF && isDirTarget(opts.Out):
		if opts.Name != "" {
			return flagErrorf("--name applies to GGUF output only")
		}
		return convertToHF(ctx, opts, copts, shard)
	case in == detect.GGUF && !outGGUF:
		return &InputError{Err: fmt.Errorf("%s is GGUF: convert writes a Hugging Face folder, not the file %s: %w", opts.In, opts.Out, formats.ErrUnsupported)}
	case in == detect.GGUF:
		return &InputError{Err: fmt.Errorf("%s and %s are both GGUF: convert changes the container; use 'qtool copy' (or 'qtool quantize'): %w", opts.In, opts.Out, formats.ErrUnsupported)}
	case in == detect.HFFolder:
		return &InputError{Err: fmt.Errorf("%s is a Hugging Face folder: convert it to a .gguf file; 'qtool copy' re-shards folders: %w", opts.In, formats.ErrUnsupported)}
	}
	return &InputError{Err: fmt.Errorf("%s is a single safetensors file: convert needs its model folder (config.json, tokenizer): %w", opts.In, formats.ErrUnsupported)}
}

func convertToGGUF(ctx context.Context, opts *ConvertOptions, copts convert.Options) error {
	m, err := convert.OpenHF(opts.In)
	if err != nil {
		return err
	}
	defer m.Close()
	meta, ts, rep, err := convert.ToGGUF(m, copts)
	if err != nil {
		return err
	}
	report, finish := opts.IO.progress("convert", true)
	defer finish()
	ts = withProgress(ts, rep.Bytes, report, 0)
	if err := gguf.WriteFile(ctx, opts.Out, meta, ts, gguf.WriteOptions{}, opts.Force); err != nil {
		return err
	}
	finish()
	return printConvertSummary(opts, "hf-to-gguf", rep, []string{filepath.Base(opts.Out)})
}

func convertToHF(ctx context.Context, opts *ConvertOptions, copts convert.Options, shard int64) error {
	src, err := gguf.Open(opts.In)
	if err != nil {
		return err
	}
	defer src.Close()
	out, err := convert.ToHF(src, copts)
	if err != nil {
		return err
	}
	d, err := outfile.CreateDir(opts.Out, outfile.Options{Force: opts.Force})
	if err != nil {
		return err
	}
	defer d.Abort()
	report, finish := opts.IO.progress("convert", true)
	defer finish()
	out.Tensors = withProgress(out.Tensors, out.Report.Bytes, report, 0)
	files, err := out.Write(ctx, d.Path(), shard)
	if err != nil {
		return err
	}
	if err := d.Commit(); err != nil {
		return err
	}
	finish()
	return printConvertSummary(opts, "gguf-to-hf", out.Report, files)
}

func printConvertSummary(opts *ConvertOptions, dir string, rep *convert.Report, files []string) error {
	if opts.IO.JSON {
		doc := map[string]any{
			"input": opts.In, "output": opts.Out, "direction": dir,
			"architecture": rep.Architecture, "class": rep.Class,
			"tensors": rep.Tensors, "bytes": rep.Bytes, "parameters": rep.Params,
			"permuted": len(rep.Permuted), "dropped": nonNil(rep.Dropped), "generated": nonNil(rep.Generated),
			"notes": nonNil(rep.Notes), "files": files,
		}
		if dir == "hf-to-gguf" {
			doc["file_type"] = rep.FileType
		} else {
			doc["torch_dtype"] = rep.TorchDType
		}
		return writeJSON(opts.IO.Out, doc)
	}
	opts.IO.infof("converted %s (%s, %d tensors, %s, %d q/k permuted) to %s\n",
		opts.In, rep.Class, rep.Tensors, human(rep.Bytes, true), len(rep.Permuted), opts.Out)
	for _, s := range rep.Dropped {
		opts.IO.infof("  dropped %s\n", s)
	}
	for _, s := range rep.Generated {
		opts.IO.infof("  generated %s\n", s)
	}
	for _, s := range rep.Notes {
		opts.IO.infof("  note: %s\n", s)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
