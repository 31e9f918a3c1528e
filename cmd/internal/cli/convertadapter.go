package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/lora"
)

// ConvertAdapterOptions are the inputs of `qtool convert-adapter`.
type ConvertAdapterOptions struct {
	IO      *IOStreams
	In, Out string
	To      string // peft, mlx, gguf; "" = from OUT
	Base    string
	Force   bool
}

func newConvertAdapterCmd(f *Factory, runF func(context.Context, *ConvertAdapterOptions) error) *cobra.Command {
	opts := &ConvertAdapterOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "convert-adapter IN -o OUT [--to peft|mlx|gguf] [--base MODEL]",
		Short: "Convert a LoRA adapter between PEFT, MLX and GGUF (llama.cpp)",
		Long: `Convert-adapter reads a LoRA adapter — a PEFT folder (adapter_model.safetensors
+ adapter_config.json), an MLX folder (adapters.safetensors + adapter_config.json)
or a GGUF LoRA — and writes it in another of these formats, keeping every
module's effective scale: PEFT's alpha/r (alpha/√r with use_rslora, after
rank_pattern and alpha_pattern), MLX's absolute scale, GGUF's one alpha.

OUT ending in .gguf is a GGUF LoRA; any other OUT is a folder, PEFT unless
--to mlx. GGUF has one alpha (rank·scale of the first module) and MLX one
scale: modules whose scale differs have it multiplied into B, and the
summary lists them. GGUF input or output needs --base (a GGUF file or a
Hugging Face folder): its head counts undo or apply the Q/K row
permutation of lora_b. With --base, the adapter is linted first
(see lint-adapter) and refused if it does not fit.

What a format cannot represent (DoRA magnitudes, embedding adapters, full
tensors saved beside the pairs, modules outside the blocks for MLX) is
refused by name (exit 4), never dropped. The output appears only when
complete; an existing output is kept unless --force.`,
		Example: `  qtool convert-adapter ./my-lora -o my-lora.gguf --base ./Llama-3.2-1B
  qtool convert-adapter my-lora.gguf -o ./my-lora-peft --base llama-3.2-1b.gguf
  qtool convert-adapter ./my-lora -o ./my-lora-mlx --to mlx`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.In = args[0]
			if opts.Out == "" {
				return flagErrorf("missing -o OUT")
			}
			if _, err := adapterOutFormat(opts); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runConvertAdapter(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Out, "output", "o", "", "output: a .gguf file, or a folder (PEFT, or MLX with --to mlx)")
	cmd.Flags().StringVar(&opts.To, "to", "", "output format: peft, mlx or gguf (default: gguf for a .gguf OUT, else peft)")
	cmd.Flags().StringVar(&opts.Base, "base", "", "base model (GGUF file or Hugging Face folder); needed for GGUF input or output")
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "replace an existing output")
	return cmd
}

// adapterOutFormat decides the output format from --to and OUT.
func adapterOutFormat(opts *ConvertAdapterOptions) (lora.Format, error) {
	isGGUF := strings.EqualFold(filepath.Ext(opts.Out), ".gguf")
	switch to := lora.Format(strings.ToLower(opts.To)); to {
	case "":
		if isGGUF {
			return lora.GGUF, nil
		}
		return lora.PEFT, nil
	case lora.GGUF:
		return to, nil
	case lora.PEFT, lora.MLX:
		if isGGUF {
			return "", flagErrorf("--to %s writes a folder, but %s ends in .gguf", to, opts.Out)
		}
		return to, nil
	}
	return "", flagErrorf("--to %q: want peft, mlx or gguf", opts.To)
}

func runConvertAdapter(ctx context.Context, opts *ConvertAdapterOptions) error {
	to, err := adapterOutFormat(opts)
	if err != nil {
		return err
	}
	if err := inputExists(opts.In); err != nil {
		return err
	}
	from, _, err := lora.Detect(opts.In)
	if err != nil {
		return err
	}
	if (from == lora.GGUF || to == lora.GGUF) && opts.Base == "" {
		return flagErrorf("converting %s → %s needs --base MODEL: the base's head counts undo or apply the Q/K row permutation of GGUF's lora_b", from, to)
	}
	var base formats.Source
	if opts.Base != "" {
		if err := inputExists(opts.Base); err != nil {
			return err
		}
		if base, _, err = detect.Open(opts.Base, detect.Options{}); err != nil {
			return err
		}
		defer base.Close()
	}
	ad, err := lora.Load(opts.In, lora.LoadOptions{Base: base})
	if err != nil {
		return err
	}
	var rep *lora.LintReport
	if base != nil {
		r := lora.Lint(ad, base)
		rep = &r
		printProblems(opts.IO.ErrOut, r, opts.IO.Quiet)
		if err := r.Err(); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	info, err := lora.WriteReport(opts.Out, ad, lora.WriteOptions{Format: to, Base: base, Force: opts.Force})
	if err != nil {
		return err
	}
	if opts.IO.JSON {
		doc := map[string]any{
			"input": opts.In, "input_format": from, "output": opts.Out, "output_format": to,
			"pairs": info.Pairs, "folded": nonNil(info.Folded), "padded": nonNil(info.Padded),
		}
		if to == lora.GGUF {
			doc["alpha"] = info.Alpha
		}
		if to == lora.MLX {
			doc["scale"] = info.Scale
		}
		if rep != nil {
			doc["lint"] = lintDoc(rep)
		}
		return writeJSON(opts.IO.Out, doc)
	}
	what := ""
	switch to {
	case lora.GGUF:
		what = fmt.Sprintf(", adapter.lora.alpha %g", info.Alpha)
	case lora.MLX:
		what = fmt.Sprintf(", scale %g", info.Scale)
	}
	opts.IO.infof("converted %s (%s, %d pairs) to %s (%s%s)\n", opts.In, from, info.Pairs, opts.Out, to, what)
	if len(info.Folded) > 0 {
		opts.IO.infof("  note: %d pairs have a scale the %s format cannot give them; it was multiplied into lora_B: %s\n",
			len(info.Folded), to, strings.Join(info.Folded, ", "))
	}
	if len(info.Padded) > 0 {
		opts.IO.infof("  note: %d pairs were padded with zeros to the adapter's largest rank (MLX has one rank): %s\n",
			len(info.Padded), strings.Join(info.Padded, ", "))
	}
	return nil
}

// printProblems lists lint problems on w ("error" lines always, warnings
// unless quiet).
func printProblems(w io.Writer, rep lora.LintReport, quiet bool) {
	for _, p := range rep.Problems {
		if quiet && p.Severity != lora.SeverityError {
			continue
		}
		if p.Target != "" {
			fmt.Fprintf(w, "%-7s %s: %s\n", p.Severity, p.Target, p.Message)
		} else {
			fmt.Fprintf(w, "%-7s %s\n", p.Severity, p.Message)
		}
	}
}

// lintDoc is the JSON form of a lint report.
func lintDoc(rep *lora.LintReport) map[string]any {
	problems := rep.Problems
	if problems == nil {
		problems = []lora.Problem{}
	}
	return map[string]any{
		"format": rep.Format, "arch": rep.Arch, "pairs": rep.Pairs, "matched": rep.Matched,
		"no_op": rep.NoOp, "errors": rep.Errors(), "warnings": rep.Warnings(), "problems": problems,
	}
}
