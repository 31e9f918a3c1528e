package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/convert"
	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/outfile"
	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/formats/vocab"
	"github.com/qtool-dev/qtool/lora"
	"github.com/qtool-dev/qtool/quantize"
)

// MergeAdapterOptions are the inputs of `qtool merge-adapter`.
type MergeAdapterOptions struct {
	IO         *IOStreams
	Model      string
	Adapters   []string
	Scales     []float64
	Out        string
	DType      string
	Requantize bool
	Quantize   string
	Threads    int
	Force      bool
}

func newMergeAdapterCmd(f *Factory, runF func(context.Context, *MergeAdapterOptions) error) *cobra.Command {
	opts := &MergeAdapterOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "merge-adapter --model BASE --adapter A [--adapter B …] -o OUT",
		Short: "Merge LoRA adapters into a base model (float or quantized), tensor by tensor, with a report",
		Long: `Merge-adapter writes a copy of BASE (a GGUF file or a Hugging Face folder) with
every weight the adapters target replaced by

  W' = dequant(W) + Σ scale_i · s_i · B_i·A_i

where s_i is adapter i's own scale (lora_alpha/r, alpha/√r with rsLoRA, MLX's
scale, or a GGUF adapter's alpha/rank) and scale_i its --scale (default 1). The
arithmetic is llama-export-lora's, in float32: merging stories260K this way gives
its output byte for byte. Adapters may be PEFT or MLX folders or GGUF LoRA files;
each is linted against BASE first (see 'qtool lint-adapter'), and errors stop the
merge.

Quantized bases (bitsandbytes NF4/FP4 with or without double quantization,
int8, int8-block; ggml Q8_0, Q4_0, IQ4_NL, K-quants, …) get the update on their
dequantized weights, the values training saw. The merged tensors are then
written
  --dtype f16|bf16|f32   as floats (default: the base's float type; F16 for
                         ggml-quantized tensors, as llama-export-lora; the
                         quant_state dtype for bitsandbytes, whose model then
                         comes out dequantized without quantization_config)
  --requantize           in the base's own type (same blocksize and double
                         quantization); untouched tensors are copied byte for byte
  --quantize TYPE        the whole merged model quantized as 'qtool quantize
                         --pure --type TYPE' does, in the same pass

The output format follows OUT: a .gguf file or a folder (Hugging Face layout:
config.json and tokenizer files carried over). When it is not the base's, the
float merge is converted as 'qtool convert' does (not with --requantize or
--quantize). Memory stays a few float32 copies of the largest merged tensor;
the output appears only when complete; an existing output is kept unless
--force.

The report gives, per merged tensor, ‖ΔW‖/‖W‖ and the share of the update that
survives the output type, ‖Q(W+ΔW) − Q(W)‖/‖ΔW‖ (about 1 for f32; near 0 when
rounding eats the update; above 1 when quantization noise adds to it), and
warns where the merge changed nothing (an all-zero update, or one rounded away
entirely).`,
		Example: `  qtool merge-adapter --model stories260K.gguf --adapter ./lora-peft -o merged.gguf
  qtool merge-adapter --model ./Llama-3.2-1B-nf4 --adapter ./qlora --requantize -o ./merged-nf4
  qtool merge-adapter --model base.gguf --adapter a.gguf --adapter b.gguf --scale 1 --scale 0.5 --quantize q4_k -o out.gguf
  qtool merge-adapter --model ./Llama-3.2-1B --adapter ./lora -o merged-f16.gguf --dtype f16 --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.check(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runMergeAdapter(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Model, "model", "m", "", "base model: a GGUF file or a Hugging Face folder")
	fl.StringArrayVarP(&opts.Adapters, "adapter", "a", nil, "adapter: a PEFT or MLX folder, or a GGUF LoRA file (repeatable)")
	fl.Float64SliceVar(&opts.Scales, "scale", nil, "scale of each adapter, in --adapter order (repeatable; default 1)")
	fl.StringVarP(&opts.Out, "output", "o", "", "output: a .gguf file or a folder (Hugging Face layout)")
	fl.StringVar(&opts.DType, "dtype", "", "type of the merged tensors: f16, bf16 or f32 (default: keep the base's float type)")
	fl.BoolVar(&opts.Requantize, "requantize", false, "write merged tensors of a quantized base in its own quantized type")
	fl.StringVar(&opts.Quantize, "quantize", "", "quantize the merged model to TYPE in the same pass: "+strings.Join(quantize.QuantTypeNames(), ", "))
	fl.IntVar(&opts.Threads, "threads", 0, "goroutines per tensor (default: all CPUs)")
	fl.BoolVarP(&opts.Force, "force", "f", false, "replace an existing output")
	return cmd
}

// check validates the flags on their own (FlagError).
func (o *MergeAdapterOptions) check() error {
	switch {
	case o.Model == "":
		return flagErrorf("missing --model BASE")
	case len(o.Adapters) == 0:
		return flagErrorf("missing --adapter (at least one)")
	case o.Out == "":
		return flagErrorf("missing -o OUT")
	case isStdout(o.Out):
		return flagErrorf("merge-adapter writes a .gguf file or a folder, not standard output")
	case len(o.Scales) != 0 && len(o.Scales) != len(o.Adapters):
		return flagErrorf("%d --scale values for %d adapters: give one per adapter, or none", len(o.Scales), len(o.Adapters))
	case o.Threads < 0:
		return flagErrorf("--threads must not be negative")
	case o.Quantize != "" && (o.Requantize || o.DType != ""):
		return flagErrorf("--quantize excludes --requantize and --dtype")
	}
	if _, err := mergeDType(o.DType); err != nil {
		return err
	}
	if o.Quantize != "" {
		t, err := quantize.ParseType(o.Quantize)
		if err != nil {
			return &FlagError{Err: fmt.Errorf("--quantize: %w", err)}
		}
		if !t.Quantized() {
			return flagErrorf("--quantize %s is a float type: use --dtype", t)
		}
	}
	return nil
}

// mergeDType parses --dtype ("" keeps the base's).
func mergeDType(s string) (formats.DType, error) {
	switch strings.ToLower(s) {
	case "":
		return formats.Invalid, nil
	case "f32", "float32":
		return formats.F32, nil
	case "f16", "float16":
		return formats.F16, nil
	case "bf16", "bfloat16":
		return formats.BF16, nil
	}
	return formats.Invalid, flagErrorf("--dtype %q: want f16, bf16 or f32", s)
}

// mergeTarget is where the merged model goes.
type mergeTarget struct {
	container quantize.Container
	folder    bool
}

func (t mergeTarget) kind() string {
	if t.folder {
		return string(detect.HFFolder)
	}
	return string(t.container)
}

func resolveMergeTarget(out string) (mergeTarget, error) {
	switch ext := strings.ToLower(filepath.Ext(out)); {
	case ext == ".gguf":
		return mergeTarget{container: quantize.GGUF}, nil
	case ext == ".safetensors":
		return mergeTarget{container: quantize.Safetensors}, nil
	case isDirTarget(out):
		return mergeTarget{container: quantize.Safetensors, folder: true}, nil
	}
	return mergeTarget{}, flagErrorf("cannot tell the output format of %s: name a .gguf file or a folder", out)
}

func runMergeAdapter(ctx context.Context, opts *MergeAdapterOptions) error {
	dtype, _ := mergeDType(opts.DType)
	target, err := resolveMergeTarget(opts.Out)
	if err != nil {
		return err
	}
	if err := inputExists(opts.Model); err != nil {
		return err
	}
	in, err := detect.Sniff(opts.Model)
	if err != nil {
		return err
	}
	src, _, err := detect.Open(opts.Model, detect.Options{})
	if err != nil {
		return err
	}
	defer src.Close()
	var ads []*lora.Adapter
	for _, p := range opts.Adapters {
		if err := inputExists(p); err != nil {
			return err
		}
		ad, err := lora.Load(p, lora.LoadOptions{Base: src})
		if err != nil {
			return fmt.Errorf("adapter %s: %w", p, err)
		}
		ads = append(ads, ad)
	}
	convertTo := target.container != containerOf(in)
	if convertTo && (opts.Requantize || opts.Quantize != "") {
		return &InputError{Err: fmt.Errorf("%s is %s but the output is %s: merge-adapter quantizes in the base's format; merge to %s, then use 'qtool convert' and 'qtool quantize': %w",
			opts.Model, in, target.kind(), containerOf(in), formats.ErrUnsupported)}
	}
	report, finish := opts.IO.progress("merge", true)
	defer finish()
	cfg := lora.MergeConfig{Adapters: ads, Scales: opts.Scales, DType: dtype, Requantize: opts.Requantize, Quantize: opts.Quantize, Workers: opts.Threads}
	if !convertTo {
		cfg.Progress = report
	}
	out, err := lora.Merge(src, cfg)
	if err != nil {
		if errors.Is(err, lora.ErrMergeConfig) {
			return &FlagError{Err: err}
		}
		return err
	}
	for i, rep := range out.Lint {
		for _, p := range rep.Problems {
			opts.IO.infof("%s: lint %s: %s\n", opts.Adapters[i], p.Severity, strings.TrimPrefix(p.Target+": "+p.Message, ": "))
		}
	}
	n, bytes := len(out.Tensors), int64(0)
	for _, t := range out.Tensors {
		bytes += t.Size
	}
	switch {
	case !convertTo && target.container == quantize.GGUF:
		err = gguf.WriteFile(ctx, opts.Out, out.Meta, out.Tensors, gguf.WriteOptions{}, opts.Force)
	case !convertTo && target.folder:
		err = writeMergedFolder(ctx, src, out, opts.Out, opts.Force)
	case !convertTo:
		err = writeSafetensorsFile(ctx, opts.Out, out.Meta, out.Tensors, opts.Force)
	case target.container == quantize.GGUF:
		n, bytes, err = mergedToGGUF(ctx, opts, src, out, report)
	case target.folder:
		n, bytes, err = mergedToHF(ctx, opts, out, report)
	default:
		err = &InputError{Err: fmt.Errorf("%s is GGUF: its merge converts to a Hugging Face folder, not to the file %s: %w", opts.Model, opts.Out, formats.ErrUnsupported)}
	}
	if err != nil {
		return err
	}
	finish()
	return printMergeSummary(opts, in, target, ads, out, n, bytes)
}

// writeMergedFolder writes a Hugging Face folder: the tensors as one
// model.safetensors (a quantized weight's companions share its shard, as
// transformers requires), config.json rewritten, the other companion files
// copied. The folder appears only when complete.
func writeMergedFolder(ctx context.Context, src formats.Source, out *lora.MergeOutput, path string, force bool) error {
	d, err := outfile.CreateDir(path, outfile.Options{Force: force})
	if err != nil {
		return err
	}
	defer d.Abort()
	if _, err := safetensors.WriteFolder(ctx, d.Path(), stringMeta(out.Meta), out.Tensors, safetensors.FolderOptions{}); err != nil {
		return err
	}
	if err := copyCompanions(src, d.Path(), out.RewriteConfig); err != nil {
		return err
	}
	return d.Commit()
}

// mergedToGGUF converts the merge of a Hugging Face folder to GGUF, as
// qtool convert does.
func mergedToGGUF(ctx context.Context, opts *MergeAdapterOptions, src formats.Source, out *lora.MergeOutput, report func(int64, int64)) (int, int64, error) {
	fo, ok := src.(*safetensors.Folder)
	if !ok {
		return 0, 0, &InputError{Err: fmt.Errorf("%s is a single safetensors file: converting its merge to GGUF needs the model folder (config.json, tokenizer): %w", opts.Model, formats.ErrUnsupported)}
	}
	config, err := out.RewriteConfig(fo.Config())
	if err != nil {
		return 0, 0, err
	}
	v, err := vocab.FromHFFolder(opts.Model)
	if err != nil {
		return 0, 0, fmt.Errorf("tokenizer of %s: %w", opts.Model, err)
	}
	meta, ts, rep, err := convert.ToGGUF(&convert.HFModel{Source: out.Source(), Config: config, Vocab: v, Dir: opts.Model}, convert.Options{})
	if err != nil {
		return 0, 0, err
	}
	ts = withProgress(ts, rep.Bytes, report, 0)
	return rep.Tensors, rep.Bytes, gguf.WriteFile(ctx, opts.Out, meta, ts, gguf.WriteOptions{}, opts.Force)
}

// mergedToHF converts the merge of a GGUF file to a Hugging Face folder.
func mergedToHF(ctx context.Context, opts *MergeAdapterOptions, out *lora.MergeOutput, report func(int64, int64)) (int, int64, error) {
	hf, err := convert.ToHF(out.Source(), convert.Options{})
	if err != nil {
		return 0, 0, err
	}
	d, err := outfile.CreateDir(opts.Out, outfile.Options{Force: opts.Force})
	if err != nil {
		return 0, 0, err
	}
	defer d.Abort()
	hf.Tensors = withProgress(hf.Tensors, hf.Report.Bytes, report, 0)
	if _, err := hf.Write(ctx, d.Path(), 0); err != nil {
		return 0, 0, err
	}
	return hf.Report.Tensors, hf.Report.Bytes, d.Commit()
}

// mergeSummary is the --json document of merge-adapter.
type mergeSummary struct {
	Command      string           `json:"command"`
	Model        string           `json:"model"`
	ModelFormat  string           `json:"model_format"`
	Adapters     []adapterSummary `json:"adapters"`
	Output       string           `json:"output"`
	OutputFormat string           `json:"output_format"`
	Mode         string           `json:"mode"`
	Tensors      int              `json:"tensors"`
	Bytes        int64            `json:"bytes"`
	Notes        []string         `json:"notes"`
	Report       lora.MergeReport `json:"report"`
}

// adapterSummary is one adapter's line of the summary.
type adapterSummary struct {
	Path   string          `json:"path"`
	Format string          `json:"format"`
	Pairs  int             `json:"pairs"`
	Scale  float64         `json:"scale"`
	Lint   lora.LintReport `json:"lint"`
}

// mode describes what the merged tensors become.
func (o *MergeAdapterOptions) mode() string {
	switch {
	case o.Quantize != "":
		return "quantize " + strings.ToLower(o.Quantize)
	case o.Requantize && o.DType != "":
		return "requantize (float tensors " + strings.ToLower(o.DType) + ")"
	case o.Requantize:
		return "requantize"
	case o.DType != "":
		return "dtype " + strings.ToLower(o.DType)
	}
	return "keep"
}

func printMergeSummary(opts *MergeAdapterOptions, in detect.Format, t mergeTarget, ads []*lora.Adapter, out *lora.MergeOutput, n int, size int64) error {
	sum := mergeSummary{
		Command: "merge-adapter", Model: opts.Model, ModelFormat: string(in), Output: opts.Out, OutputFormat: t.kind(),
		Mode: opts.mode(), Tensors: n, Bytes: size, Notes: nonNil(out.Notes), Report: out.Report(),
	}
	if sum.Report.Tensors == nil {
		sum.Report.Tensors = []lora.TensorReport{}
	}
	for i, ad := range ads {
		s := 1.0
		if len(opts.Scales) > 0 {
			s = opts.Scales[i]
		}
		rep := out.Lint[i]
		if rep.Problems == nil {
			rep.Problems = []lora.Problem{}
		}
		sum.Adapters = append(sum.Adapters, adapterSummary{Path: opts.Adapters[i], Format: string(ad.Format), Pairs: len(ad.Pairs), Scale: s, Lint: rep})
	}
	if opts.IO.JSON {
		return writeJSON(opts.IO.Out, sum)
	}
	for _, note := range sum.Notes {
		opts.IO.infof("note: %s\n", note)
	}
	return printMergeTable(opts.IO.Out, sum)
}

// printMergeTable is the text form of the summary.
func printMergeTable(w io.Writer, sum mergeSummary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  name\tfrom\tto\tadapters\trank\t‖ΔW‖/‖W‖\tsurvived\tnote")
	for _, r := range sum.Report.Tensors {
		surv := "-"
		if r.Survived != nil {
			surv = fmt.Sprintf("%.3f", *r.Survived)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%.3g\t%s\t%s\n", r.Name, r.From, r.To, r.Adapters, r.Rank, r.Relative, surv, r.Warning)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	rep := sum.Report
	line := fmt.Sprintf("\nmerged %d %s into %s → %s (%s, %s): %d tensors (%d merged), %s",
		len(sum.Adapters), plural(len(sum.Adapters), "adapter", "adapters"), sum.Model, sum.Output, sum.OutputFormat, sum.Mode,
		sum.Tensors, rep.Merged, human(sum.Bytes, true))
	if rep.MinSurvived != nil {
		line += fmt.Sprintf("; smallest share of the update kept %.3f", *rep.MinSurvived)
	}
	if rep.Warnings > 0 {
		line += fmt.Sprintf("; %d %s where the merge changed nothing", rep.Warnings, plural(rep.Warnings, "tensor", "tensors"))
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
