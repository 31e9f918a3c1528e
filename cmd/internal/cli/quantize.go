package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf16"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/outfile"
	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/quantize"
)

// QuantizeOptions are the inputs of `qtool quantize`.
type QuantizeOptions struct {
	IO                 *IOStreams
	In, Out            string
	Type               string
	Block              int
	DoubleQuant        bool
	Keep               []string
	TypeFor            []string
	LeaveOutput        bool
	TokenEmbeddingType string
	Format             string
	Pure               bool
	MaxMemory          string
	MaxShardSize       string
	Threads            int
	Stats              bool
	Force              bool
}

func newQuantizeCmd(f *Factory, runF func(context.Context, *QuantizeOptions) error) *cobra.Command {
	opts := &QuantizeOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "quantize IN -o OUT --type TYPE",
		Short: "Quantize a model: bitsandbytes NF4/FP4/int8 (safetensors) or ggml types (GGUF)",
		Long: `Quantize writes a copy of a model with its weight matrices quantized, tensor
by tensor, with memory bounded by one tensor.

TYPE is one of:
  nf4, fp4         bitsandbytes 4-bit (QLoRA), blocks of --block (64), optional
                   --double-quant; safetensors output in the layout transformers loads
  int8             bitsandbytes LLM.int8() row-wise int8 + SCB
  int8-block       bitsandbytes' blockwise 8-bit dynamic code (qtool's own layout)
  q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q4_k, q5_k, q6_k
                   ggml types, GGUF output, byte-identical with llama-quantize
  q4_k_m, q5_k_m   llama-quantize's names of q4_k and q5_k (their file types)

GGUF output follows llama-quantize's default type mix: output.weight gets
q6_k (q8_0 when its row is not a multiple of 256; q8_0 stays q8_0), and for
q4_k/q5_k the attn_v and ffn_down of the layers llama-quantize picks get q6_k
(for iq4_nl: q5_k for ffn_down of the first eighth of the layers, and attn_v
when n_head/n_head_kv ≥ 4). --pure gives every weight TYPE instead. The
Q4_K_S/Q5_K_S mixes are not implemented.

The output format follows OUT: .gguf, .safetensors, a folder (a Hugging Face
folder: config.json gains quantization_config, tokenizer files are copied), or
"-" for standard output with --format. The input and output containers must be
the same (GGUF ⇄ safetensors conversion is 'qtool convert'); GGUF cannot hold
nf4, fp4 or int8, and safetensors cannot hold ggml types.

What is quantized: 2-D weight matrices. Norms, biases and 1-D tensors stay as
they are; --keep leaves more alone; --type-for picks a type per tensor (first
match wins; f32, f16 and bf16 are allowed as casts). In GGUF the output and
token embedding are quantized too (as llama-quantize does), unless
--leave-output-tensor / --token-embedding-type say otherwise; --type-for, --keep
and these flags win over the mix; bitsandbytes never quantizes them. A row that does not fit a ggml type's block falls back as
llama-quantize does (q4_k→q5_0, q5_k→q5_1, q6_k→q8_0, then f16); the summary
lists every fallback. Tensors holding NaN or Inf are refused (exit 3).

The summary gives per tensor the types, bytes in and out and bits per
parameter; --stats adds the RMSE and largest absolute error of the
dequantized values against the input, measured while writing.

--max-memory bounds the working memory (default 512MiB): chunks, and with
them the goroutines a chunk is split over, shrink to fit; a value below what
the largest tensor needs is refused with the tensor and the minimum. The
write buffer (1 MiB) and the Go runtime come on top. --max-shard-size splits
a Hugging Face folder output into shards, keeping every quantized weight in
the same file as its companion tensors.`,
		Example: `  qtool quantize model.gguf -o model-Q8_0.gguf --type q8_0
  qtool quantize model-f16.gguf -o model-Q4_K_M.gguf --type q4_k_m
  qtool quantize model.gguf -o model-Q4_K.gguf --type q4_k --pure --leave-output-tensor --type-for 'attn_v=q6_k'
  qtool quantize ./Llama-3.2-1B -o ./Llama-3.2-1B-nf4 --type nf4 --double-quant --stats
  qtool quantize model.safetensors -o - --type int8 --format safetensors > model-int8.safetensors`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.In = args[0]
			if opts.Out == "" {
				return flagErrorf("missing -o OUT")
			}
			if opts.Type == "" {
				return flagErrorf("missing --type (one of %s)", typeNames())
			}
			if err := checkFormatFlag(opts.Format); err != nil {
				return err
			}
			if opts.Threads < 0 || opts.Block < 0 {
				return flagErrorf("--threads and --block must not be negative")
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
			return runQuantize(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Out, "output", "o", "", "output file (.gguf, .safetensors), folder, or - for stdout")
	fl.StringVarP(&opts.Type, "type", "t", "", "quantization type: "+typeNames())
	fl.IntVar(&opts.Block, "block", 0, "blocksize of nf4/fp4 (default 64) and int8-block (default 4096)")
	fl.BoolVar(&opts.DoubleQuant, "double-quant", false, "quantize the nf4/fp4 block scales again (QLoRA double quantization)")
	fl.StringArrayVar(&opts.Keep, "keep", nil, "leave tensors whose name matches this regexp unquantized (repeatable)")
	fl.StringArrayVar(&opts.TypeFor, "type-for", nil, "REGEX=TYPE: quantize matching tensors to TYPE (repeatable; first match wins)")
	fl.BoolVar(&opts.LeaveOutput, "leave-output-tensor", false, "keep the output projection (output.weight / lm_head) unquantized")
	fl.StringVar(&opts.TokenEmbeddingType, "token-embedding-type", "", "type of the token embedding (default: --type in GGUF, unchanged for bitsandbytes)")
	fl.StringVar(&opts.Format, "format", "", "output format: gguf or safetensors (default: from OUT)")
	fl.BoolVar(&opts.Pure, "pure", false, "GGUF: give every weight --type, without llama-quantize's type mix")
	fl.StringVar(&opts.MaxMemory, "max-memory", defaultMaxMemory, "bound on the working memory (e.g. 512MiB, 64MiB)")
	fl.StringVar(&opts.MaxShardSize, "max-shard-size", "", "folder output: split the safetensors into shards of at most this size (e.g. 2GB)")
	fl.IntVar(&opts.Threads, "threads", 0, "goroutines per tensor (default: all CPUs)")
	fl.BoolVar(&opts.Stats, "stats", false, "measure the RMSE and max abs error of every quantized tensor")
	fl.BoolVarP(&opts.Force, "force", "f", false, "replace an existing output")
	return cmd
}

// typeNames lists what --type accepts.
func typeNames() string {
	return strings.Join(append(quantize.QuantTypeNames(), quantize.MixNames()...), ", ")
}

// defaultMaxMemory is the --max-memory default (quantize.DefaultMaxMemory).
const defaultMaxMemory = "512MiB"

// parseMaxMemory reads --max-memory.
func parseMaxMemory(s string) (int64, error) {
	n, err := safetensors.ParseSize(s)
	if err != nil {
		return 0, &FlagError{Err: fmt.Errorf("--max-memory: %w", err)}
	}
	if n <= 0 {
		return 0, flagErrorf("--max-memory %q: want a positive size such as 512MiB", s)
	}
	return n, nil
}

// parseShardSize reads --max-shard-size; "" is 0 (one file).
func parseShardSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := safetensors.ParseSize(s)
	if err != nil {
		return 0, &FlagError{Err: fmt.Errorf("--max-shard-size: %w", err)}
	}
	return n, nil
}

// memoryError turns a plan refused for --max-memory into a usage error.
func memoryError(err error) error {
	if errors.Is(err, quantize.ErrMemoryLimit) {
		return &FlagError{Err: fmt.Errorf("--max-memory: %w", err)}
	}
	return err
}

// checkFormatFlag validates --format.
func checkFormatFlag(f string) error {
	switch f {
	case "", "gguf", "safetensors":
		return nil
	}
	return flagErrorf("--format %q: want gguf or safetensors", f)
}

// config turns the flags into a quantize.Config (FlagError on bad values).
func (o *QuantizeOptions) config() (quantize.Config, error) {
	cfg := quantize.Config{Block: o.Block, DoubleQuant: o.DoubleQuant, LeaveOutput: o.LeaveOutput, Workers: o.Threads, Stats: o.Stats}
	var err error
	if cfg.Type, err = quantize.ParseTarget(o.Type); err != nil {
		return cfg, &FlagError{Err: fmt.Errorf("--type: %w", err)}
	}
	if cfg.MaxMemory, err = parseMaxMemory(o.MaxMemory); err != nil {
		return cfg, err
	}
	if o.TokenEmbeddingType != "" {
		if cfg.TokenEmbeddingType, err = quantize.ParseType(o.TokenEmbeddingType); err != nil {
			return cfg, &FlagError{Err: fmt.Errorf("--token-embedding-type: %w", err)}
		}
	}
	for _, k := range o.Keep {
		re, err := regexp.Compile(k)
		if err != nil {
			return cfg, &FlagError{Err: fmt.Errorf("--keep: %w", err)}
		}
		cfg.Keep = append(cfg.Keep, re)
	}
	for _, s := range o.TypeFor {
		r, err := quantize.ParseTypeRule(s)
		if err != nil {
			return cfg, &FlagError{Err: fmt.Errorf("--type-for: %w", err)}
		}
		cfg.TypeFor = append(cfg.TypeFor, r)
	}
	return cfg, nil
}

// outputTarget is where and in which container a model is written.
type outputTarget struct {
	path      string
	container quantize.Container
	folder    bool // a Hugging Face folder
	stdout    bool
}

// kind names the output format in summaries.
func (t outputTarget) kind() string {
	if t.folder {
		return string(detect.HFFolder)
	}
	return string(t.container)
}

// resolveOutput decides the output container from OUT and --format; with
// "-" and no --format it is the input's.
func resolveOutput(out, format string, in detect.Format) (outputTarget, error) {
	t := outputTarget{path: out, stdout: isStdout(out)}
	ext := strings.ToLower(filepath.Ext(out))
	switch {
	case t.stdout:
		t.container = quantize.Container(format)
		if format == "" {
			t.container = containerOf(in)
		}
	case ext == ".gguf":
		t.container = quantize.GGUF
	case ext == ".safetensors":
		t.container = quantize.Safetensors
	case isDirTarget(out):
		t.container, t.folder = quantize.Safetensors, true
	case format == "":
		return t, flagErrorf("cannot tell the output format of %s: name it .gguf or .safetensors, or pass --format", out)
	default:
		t.container = quantize.Container(format)
	}
	if format != "" && quantize.Container(format) != t.container {
		return t, flagErrorf("--format %s contradicts the output %s (%s)", format, out, t.kind())
	}
	return t, nil
}

// containerOf maps an input format to its container.
func containerOf(f detect.Format) quantize.Container {
	if f == detect.GGUF {
		return quantize.GGUF
	}
	return quantize.Safetensors
}

// sameContainer refuses GGUF ⇄ safetensors, which needs tensor renaming.
func sameContainer(in string, f detect.Format, t outputTarget) error {
	if containerOf(f) == t.container {
		return nil
	}
	return &InputError{Err: fmt.Errorf("%s is %s but the output is %s: converting between GGUF and safetensors renames tensors ('qtool convert'): %w",
		in, f, t.container, formats.ErrUnsupported)}
}

func runQuantize(ctx context.Context, opts *QuantizeOptions) error {
	cfg, err := opts.config()
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
	target, err := resolveOutput(opts.Out, opts.Format, in)
	if err != nil {
		return err
	}
	if target.stdout && opts.IO.JSON {
		return flagErrorf("--json and -o - would both write to stdout")
	}
	cfg.Format = target.container
	if opts.Pure && target.container != quantize.GGUF {
		return flagErrorf("--pure applies to GGUF output (llama-quantize's type mixes); bitsandbytes output has one type")
	}
	cfg.Mix = target.container == quantize.GGUF && !opts.Pure
	shard, err := parseShardSize(opts.MaxShardSize)
	if err != nil {
		return err
	}
	if shard > 0 && !target.folder {
		return flagErrorf("--max-shard-size applies to a Hugging Face folder output, not %s", opts.Out)
	}
	if err := cfg.Validate(); err != nil {
		if errors.Is(err, quantize.ErrBadConfig) {
			return &FlagError{Err: err}
		}
		return err
	}
	if err := sameContainer(opts.In, in, target); err != nil {
		return err
	}
	src, _, err := detect.Open(opts.In, detect.Options{})
	if err != nil {
		return err
	}
	defer src.Close()
	report, finish := opts.IO.progress("quantize", true)
	defer finish()
	cfg.Progress = report
	out, err := quantize.Plan(src, cfg)
	if err != nil {
		return memoryError(err)
	}
	if err := writeOutput(ctx, opts.IO, src, out, target, opts.Force, shard); err != nil {
		return err
	}
	finish()
	return printPlanSummary(opts.IO, planSummary{
		Command: "quantize", Input: opts.In, InputFormat: string(in), Output: opts.Out,
		OutputFormat: target.kind(), Type: cfg.Type.String(), Mix: cfg.Mix,
	}, out, target.stdout)
}

// writeOutput writes a planned model to its target atomically; a folder is
// sharded past shard bytes (0: one file).
func writeOutput(ctx context.Context, io *IOStreams, src formats.Source, out *quantize.Output, t outputTarget, force bool, shard int64) error {
	switch {
	case t.stdout && t.container == quantize.GGUF:
		return gguf.Write(ctx, io.Out, out.Meta, out.Tensors, gguf.WriteOptions{})
	case t.stdout:
		return safetensors.WriteMeta(ctx, io.Out, out.Meta, out.Tensors)
	case t.container == quantize.GGUF:
		return gguf.WriteFile(ctx, t.path, out.Meta, out.Tensors, gguf.WriteOptions{}, force)
	case t.folder:
		return writeModelFolder(ctx, src, out, t.path, force, shard)
	default:
		return writeSafetensorsFile(ctx, t.path, out.Meta, out.Tensors, force)
	}
}

// writeModelFolder writes a Hugging Face folder: the weights as one
// model.safetensors, or past shard bytes as shards that keep every
// quantized weight with its companions (as transformers requires) plus
// model.safetensors.index.json; config.json rewritten, every other
// companion file copied. The folder appears only when complete.
func writeModelFolder(ctx context.Context, src formats.Source, out *quantize.Output, path string, force bool, shard int64) error {
	d, err := outfile.CreateDir(path, outfile.Options{Force: force})
	if err != nil {
		return err
	}
	defer d.Abort()
	if err := writeShards(ctx, d.Path(), stringMeta(out.Meta), out.Shards(shard)); err != nil {
		return err
	}
	if err := copyCompanions(src, d.Path(), out.RewriteConfig); err != nil {
		return err
	}
	return d.Commit()
}

// writeShards writes the weights of a folder: one shard as
// model.safetensors (safetensors.WriteFolder), several as
// model-0000N-of-0000M.safetensors, each through its own atomic file, with
// the index transformers reads.
func writeShards(ctx context.Context, dir string, meta map[string]string, shards [][]formats.Tensor) error {
	if len(shards) <= 1 {
		var ts []formats.Tensor
		if len(shards) == 1 {
			ts = shards[0]
		}
		_, err := safetensors.WriteFolder(ctx, dir, meta, ts, safetensors.FolderOptions{})
		return err
	}
	weightMap := map[string]string{}
	var total int64
	for i, sh := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		f, err := outfile.Create(filepath.Join(dir, name), outfile.Options{})
		if err != nil {
			return err
		}
		if err := safetensors.Write(ctx, f, meta, sh); err != nil {
			f.Abort()
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := f.Commit(); err != nil {
			return err
		}
		for _, t := range sh {
			weightMap[t.Name] = name
			total += t.Size
		}
	}
	return os.WriteFile(filepath.Join(dir, safetensors.IndexFile), shardIndex(total, weightMap), 0o644)
}

// shardIndex renders model.safetensors.index.json as transformers writes
// it: json.dumps(indent=2, sort_keys=True) + "\n", non-ASCII escaped.
func shardIndex(total int64, weightMap map[string]string) []byte {
	names := make([]string, 0, len(weightMap))
	for n := range weightMap {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("{\n  \"metadata\": {\n    \"total_size\": " + strconv.FormatInt(total, 10) + "\n  },\n  \"weight_map\": {")
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    " + asciiJSON(n) + ": " + asciiJSON(weightMap[n]))
	}
	if len(names) > 0 {
		b.WriteString("\n  ")
	}
	b.WriteString("}\n}\n")
	return b.Bytes()
}

// asciiJSON quotes s as Python's json.dumps does by default: non-ASCII as
// \uXXXX escapes (surrogate pairs above U+FFFF).
func asciiJSON(s string) string {
	var enc bytes.Buffer
	e := json.NewEncoder(&enc)
	e.SetEscapeHTML(false)
	e.Encode(s) // a string always encodes
	var b strings.Builder
	for _, r := range strings.TrimSuffix(enc.String(), "\n") {
		switch {
		case r < 0x80:
			b.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, "\\u%04x\\u%04x", r1, r2)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.String()
}

// planSummary is the --json document of quantize and dequantize.
type planSummary struct {
	Command      string          `json:"command"`
	Input        string          `json:"input"`
	InputFormat  string          `json:"input_format"`
	Output       string          `json:"output"`
	OutputFormat string          `json:"output_format"`
	Type         string          `json:"type,omitempty"`
	Mix          bool            `json:"mix,omitempty"` // llama-quantize's type mix (not --pure)
	DType        string          `json:"dtype,omitempty"`
	Tensors      []tensorSummary `json:"tensors"`
	Totals       quantize.Totals `json:"totals"`
}

// tensorSummary is one tensor's line of the summary.
type tensorSummary struct {
	Name         string   `json:"name"`
	From         string   `json:"from"`
	To           string   `json:"to"`
	Fallback     string   `json:"fallback,omitempty"`
	Rule         string   `json:"rule,omitempty"`
	Kept         string   `json:"kept,omitempty"`
	BytesIn      int64    `json:"bytes_in"`
	BytesOut     int64    `json:"bytes_out"`
	BitsPerParam float64  `json:"bits_per_param"`
	RMSE         *float64 `json:"rmse"`
	MaxAbsErr    *float64 `json:"max_abs_err"`
}

// printPlanSummary prints what a plan did: a JSON document with --json,
// else a table on stdout (stderr when stdout holds the model).
func printPlanSummary(s *IOStreams, sum planSummary, out *quantize.Output, dataOnStdout bool) error {
	ds := out.Decisions()
	sum.Totals = quantize.SumDecisions(ds)
	measured := false
	for _, d := range ds {
		ts := tensorSummary{Name: d.Name, From: d.From, To: d.To, Fallback: d.Fallback, Rule: d.Rule, Kept: d.Kept,
			BytesIn: d.BytesIn, BytesOut: d.BytesOut, BitsPerParam: d.BitsPerParam()}
		if d.Measured {
			rmse, maxErr := d.RMSE, d.MaxAbsErr
			ts.RMSE, ts.MaxAbsErr, measured = &rmse, &maxErr, true
		}
		sum.Tensors = append(sum.Tensors, ts)
	}
	if s.JSON {
		return writeJSON(s.Out, sum)
	}
	w := s.Out
	if dataOnStdout {
		if s.Quiet {
			return nil
		}
		w = s.ErrOut
	}
	return printPlanTable(w, sum, measured)
}

// printPlanTable is the text form of the summary.
func printPlanTable(w io.Writer, sum planSummary, measured bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "  name\tfrom\tto\tbytes in\tbytes out\tbits/param"
	if measured {
		head += "\trmse\tmax abs err"
	}
	fmt.Fprintln(tw, head+"\tnote")
	for _, t := range sum.Tensors {
		line := fmt.Sprintf("  %s\t%s\t%s\t%d\t%d\t%.3f", t.Name, t.From, t.To, t.BytesIn, t.BytesOut, t.BitsPerParam)
		if measured {
			if t.RMSE != nil {
				line += fmt.Sprintf("\t%.3g\t%.3g", *t.RMSE, *t.MaxAbsErr)
			} else {
				line += "\t-\t-"
			}
		}
		var notes []string
		for _, n := range []string{t.Kept, t.Rule} {
			if n != "" {
				notes = append(notes, n)
			}
		}
		if t.Fallback != "" {
			notes = append(notes, "fallback: "+t.Fallback)
		}
		fmt.Fprintln(tw, line+"\t"+strings.Join(notes, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	to := sum.Type
	if to == "" {
		to = sum.DType
	}
	if sum.Mix {
		to += " with llama-quantize's mix"
	}
	tot := sum.Totals
	_, err := fmt.Fprintf(w, "\n%s %s → %s (%s, %s): %d tensors, %d converted (%d quantized), %d fallbacks; %s → %s, %.3f bits/param\n",
		sum.Command, sum.Input, sum.Output, to, sum.OutputFormat, tot.Tensors, tot.Converted, tot.Quantized, tot.Fallbacks,
		human(tot.BytesIn, true), human(tot.BytesOut, true), tot.BitsPerParam)
	return err
}
