package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/llama"
)

// EvalOptions are the inputs of `qtool eval`.
type EvalOptions struct {
	IO        *IOStreams
	Model     string
	Adapters  []string
	Data      string
	Ctx       int
	Stride    int
	MaxChunks int
	Threads   int
}

func newEvalCmd(f *Factory, runF func(context.Context, *EvalOptions) error) *cobra.Command {
	opts := &EvalOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "eval --model M --data FILE",
		Short: "Measure a model's perplexity on a text (mean negative log-likelihood)",
		Long: `Eval tokenizes FILE (plain text, or JSONL with a "text" field per line;
.gz and .zst are decompressed) and scores it as llama.cpp's llama-perplexity
does: windows of --ctx tokens every --stride tokens, the first token of each
window replaced by BOS, and the next-token log-likelihood summed over the
second half of each window. It prints the mean negative log-likelihood
(nats/token), the perplexity, the tokens scored and the speed.

The model is a GGUF file or a Hugging Face folder; its weights stay
memory-mapped in their stored type. --adapter applies LoRA adapters at run
time.`,
		Example: `  qtool eval --model stories260K.gguf --data tinystories.txt --ctx 128 --max-chunks 20
  qtool eval --model ./Llama-3.2-1B --adapter ./my-lora --data valid.jsonl.zst --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Model == "" || opts.Data == "" {
				return flagErrorf("--model and --data are required")
			}
			if opts.Ctx < 0 || opts.Stride < 0 || opts.MaxChunks < 0 {
				return flagErrorf("--ctx, --stride and --max-chunks must not be negative")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runEval(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Model, "model", "m", "", "model: GGUF file or Hugging Face folder")
	cmd.Flags().StringArrayVar(&opts.Adapters, "adapter", nil, "LoRA adapter applied at run time (repeatable)")
	cmd.Flags().StringVar(&opts.Data, "data", "", "text, JSONL (text field), optionally .gz or .zst")
	cmd.Flags().IntVar(&opts.Ctx, "ctx", 512, "window length in tokens")
	cmd.Flags().IntVar(&opts.Stride, "stride", 0, "distance between windows (default: --ctx)")
	cmd.Flags().IntVar(&opts.MaxChunks, "max-chunks", 0, "score at most this many windows (0: all)")
	cmd.Flags().IntVarP(&opts.Threads, "threads", "t", 0, "threads (default: all cores)")
	return cmd
}

func openInferModel(path string, adapters []string, threads, maxCtx int) (*llama.Model, error) {
	if err := inputExists(path); err != nil {
		return nil, err
	}
	for _, a := range adapters {
		if err := inputExists(a); err != nil {
			return nil, err
		}
	}
	return llama.Open(path, llama.Options{Threads: threads, Adapters: adapters, MaxContext: maxCtx})
}

func runEval(ctx context.Context, opts *EvalOptions) error {
	if err := inputExists(opts.Data); err != nil {
		return err
	}
	m, err := openInferModel(opts.Model, opts.Adapters, opts.Threads, opts.Ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	docs, err := llama.ReadDocuments(opts.Data)
	if err != nil {
		return err
	}
	ids := m.Tokenize(docs)
	report, finish := opts.IO.progress("eval", false)
	defer finish()
	res, err := m.Perplexity(ctx, ids, llama.EvalOptions{Ctx: opts.Ctx, Stride: opts.Stride, MaxChunks: opts.MaxChunks,
		Progress: func(done, total int) { report(int64(done), int64(total)) }})
	if errors.Is(err, llama.ErrTooShort) {
		return &InputError{Err: err}
	}
	if err != nil {
		return err
	}
	finish()
	if opts.IO.JSON {
		return writeJSON(opts.IO.Out, res)
	}
	_, err = fmt.Fprintf(opts.IO.Out, "mean NLL     %.5f nats/token\nperplexity   %.4f\ntokens       %d (%d windows of %d, stride %d)\nspeed        %.0f tokens/s\n",
		res.MeanNLL, res.Perplexity, res.Tokens, res.Chunks, res.Ctx, res.Stride, res.TokensPerS)
	return err
}
