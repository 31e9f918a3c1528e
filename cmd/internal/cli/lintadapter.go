package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/lora"
)

// LintAdapterOptions are the inputs of `qtool lint-adapter`.
type LintAdapterOptions struct {
	IO      *IOStreams
	Model   string
	Adapter string
}

func newLintAdapterCmd(f *Factory, runF func(context.Context, *LintAdapterOptions) error) *cobra.Command {
	opts := &LintAdapterOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "lint-adapter --model BASE --adapter A",
		Short: "Check that a LoRA adapter fits its base model and would change it",
		Long: `Lint-adapter loads a LoRA adapter (PEFT folder, MLX folder or GGUF LoRA) and
checks it against the base model (GGUF file or Hugging Face folder):

  - every pair's target is a base tensor (by its GGUF name for a GGUF base)
    of the pair's shape [out, in];
  - ranks and alphas agree with the adapter's config (r, rank_pattern,
    lora_alpha, alpha_pattern, use_rslora; MLX lora_parameters.rank);
  - the factors are finite;
  - an all-zero lora_B (an untrained adapter), all-zero lora_A or a zero
    scale makes a pair a no-op (warning); an adapter matching no base
    tensor is an error.

Problems are listed on stdout. Exit 0 when there is no error (warnings
allowed), 3 when there is one.`,
		Example: `  qtool lint-adapter --model ./Llama-3.2-1B --adapter ./my-lora
  qtool lint-adapter --model llama.gguf --adapter my-lora.gguf --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Model == "" || opts.Adapter == "" {
				return flagErrorf("lint-adapter needs --model BASE and --adapter A")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLintAdapter(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Model, "model", "", "base model: a GGUF file or a Hugging Face folder")
	cmd.Flags().StringVar(&opts.Adapter, "adapter", "", "adapter: a PEFT folder, an MLX folder or a GGUF LoRA")
	return cmd
}

func runLintAdapter(ctx context.Context, opts *LintAdapterOptions) error {
	for _, p := range []string{opts.Model, opts.Adapter} {
		if err := inputExists(p); err != nil {
			return err
		}
	}
	base, _, err := detect.Open(opts.Model, detect.Options{})
	if err != nil {
		return err
	}
	defer base.Close()
	ad, err := lora.Load(opts.Adapter, lora.LoadOptions{Base: base})
	if err != nil {
		return err
	}
	rep := lora.Lint(ad, base)
	lintErr := rep.Err()
	if opts.IO.JSON {
		doc := lintDoc(&rep)
		doc["adapter"], doc["model"], doc["ok"] = opts.Adapter, opts.Model, lintErr == nil
		if lintErr != nil {
			// The report is the one JSON document of this run; Run would
			// append its error document, so it is told not to (the error
			// still reaches stderr and the exit code).
			doc["error"], doc["exit_code"] = lintErr.Error(), int(exitCodeFor(lintErr))
			opts.IO.JSON = false
		}
		if err := writeJSON(opts.IO.Out, doc); err != nil {
			return err
		}
		return lintErr
	}
	printProblems(opts.IO.Out, rep, false)
	verdict := "ok"
	switch {
	case lintErr != nil:
		verdict = "does not fit the base model"
	case rep.NoOp:
		verdict = "ok, but applying it changes nothing (no-op)"
	}
	fmt.Fprintf(opts.IO.Out, "%s (%s, %d pairs, %d matched): %d errors, %d warnings; %s\n",
		opts.Adapter, ad.Format, rep.Pairs, rep.Matched, rep.Errors(), rep.Warnings(), verdict)
	return lintErr
}
