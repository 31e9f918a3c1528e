package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/quantize"
)

// DequantizeOptions are the inputs of `qtool dequantize`.
type DequantizeOptions struct {
	IO           *IOStreams
	In, Out      string
	DType        string
	MaxMemory    string
	MaxShardSize string
	Threads      int
	Force        bool
}

func newDequantizeCmd(f *Factory, runF func(context.Context, *DequantizeOptions) error) *cobra.Command {
	opts := &DequantizeOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "dequantize IN -o OUT --dtype f16|bf16|f32",
		Short: "Turn quantized tensors back into f16, bf16 or f32",
		Long: `Dequantize writes a copy of a model in which every quantized tensor is
decoded to --dtype, tensor by tensor, with memory bounded by one tensor:

  GGUF         every ggml block type qtool decodes (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
               IQ4_NL, Q4_K, Q5_K, Q6_K); general.file_type is set to the dtype's
               and general.quantization_version dropped
  safetensors  bitsandbytes NF4/FP4 (with or without double quantization),
               LLM.int8() and qtool's int8-block: each weight is decoded to its
               original shape, its companion tensors (absmax, quant_map,
               quant_state, SCB, …) are dropped, and config.json loses
               quantization_config

Tensors that are not quantized are copied unchanged. The output keeps the
input's container: a .gguf file, a .safetensors file, a folder, or "-" for
standard output. The output appears only when complete.

--max-memory bounds the working memory (default 512MiB) as in 'qtool
quantize'; --max-shard-size splits a folder output into shards.`,
		Example: `  qtool dequantize model-Q4_K.gguf -o model-f16.gguf --dtype f16
  qtool dequantize ./Llama-3.2-1B-nf4 -o ./Llama-3.2-1B-bf16 --dtype bf16
  qtool dequantize model-int8.safetensors -o - --dtype f32 | sha256sum`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.In = args[0]
			if opts.Out == "" {
				return flagErrorf("missing -o OUT")
			}
			if _, err := dequantDType(opts.DType); err != nil {
				return err
			}
			if opts.Threads < 0 {
				return flagErrorf("--threads must not be negative")
			}
			if _, err := parseMaxMemory(opts.MaxMemory); err != nil {
				return err
			}
			if _, err := parseShardSize(opts.MaxShardSize); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDequantize(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Out, "output", "o", "", "output file (.gguf, .safetensors), folder, or - for stdout")
	fl.StringVar(&opts.DType, "dtype", "", "output dtype of the quantized tensors: f16, bf16 or f32")
	fl.StringVar(&opts.MaxMemory, "max-memory", defaultMaxMemory, "bound on the working memory (e.g. 512MiB, 64MiB)")
	fl.StringVar(&opts.MaxShardSize, "max-shard-size", "", "folder output: split the safetensors into shards of at most this size (e.g. 2GB)")
	fl.IntVar(&opts.Threads, "threads", 0, "goroutines per tensor (default: all CPUs)")
	fl.BoolVarP(&opts.Force, "force", "f", false, "replace an existing output")
	return cmd
}

// dequantDType parses --dtype.
func dequantDType(s string) (formats.DType, error) {
	switch s {
	case "f16", "F16":
		return formats.F16, nil
	case "bf16", "BF16":
		return formats.BF16, nil
	case "f32", "F32":
		return formats.F32, nil
	case "":
		return formats.Invalid, flagErrorf("missing --dtype (f16, bf16 or f32)")
	}
	return formats.Invalid, flagErrorf("--dtype %q: want f16, bf16 or f32", s)
}

func runDequantize(ctx context.Context, opts *DequantizeOptions) error {
	dtype, err := dequantDType(opts.DType)
	if err != nil {
		return err
	}
	if err := inputExists(opts.In); err != nil {
		return err
	}
	in, err := detect.Sniff(opts.In)
	if err != nil {
		return err
	}
	target, err := resolveOutput(opts.Out, "", in)
	if err != nil {
		return err
	}
	if target.stdout && opts.IO.JSON {
		return flagErrorf("--json and -o - would both write to stdout")
	}
	if err := sameContainer(opts.In, in, target); err != nil {
		return err
	}
	mem, err := parseMaxMemory(opts.MaxMemory)
	if err != nil {
		return err
	}
	shard, err := parseShardSize(opts.MaxShardSize)
	if err != nil {
		return err
	}
	if shard > 0 && !target.folder {
		return flagErrorf("--max-shard-size applies to a Hugging Face folder output, not %s", opts.Out)
	}
	src, _, err := detect.Open(opts.In, detect.Options{})
	if err != nil {
		return err
	}
	defer src.Close()
	report, finish := opts.IO.progress("dequantize", true)
	defer finish()
	out, err := quantize.Dequant(src, quantize.DequantConfig{DType: dtype, Format: containerOf(in), Workers: opts.Threads, MaxMemory: mem, Progress: report})
	if err != nil {
		return memoryError(err)
	}
	if err := writeOutput(ctx, opts.IO, src, out, target, opts.Force, shard); err != nil {
		return err
	}
	finish()
	return printPlanSummary(opts.IO, planSummary{
		Command: "dequantize", Input: opts.In, InputFormat: string(in), Output: opts.Out,
		OutputFormat: target.kind(), DType: opts.DType,
	}, out, target.stdout)
}
