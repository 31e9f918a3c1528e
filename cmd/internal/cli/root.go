package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// Factory carries what every command needs: the streams and build info.
type Factory struct {
	IO *IOStreams
}

func newRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "qtool",
		Short: "Convert, quantize, fine-tune and merge LLM weights in one binary",
		Long: `qtool works on model files without a Python or CUDA stack: it reads and
writes safetensors (single files and sharded Hugging Face folders) and GGUF,
quantizes, trains LoRA adapters on the CPU and merges them.

Results go to stdout (one JSON document with --json); messages and progress
bars go to stderr, progress only when stderr is a terminal.

Exit codes: 0 ok, 1 failure, 2 usage, 3 bad input, 4 unsupported input,
130 interrupted (no partial output is left behind).`,
		Example: `  qtool inspect model.gguf
  qtool inspect ./Llama-3.2-1B --json | jq '.totals.parameters'
  qtool completion bash > /etc/bash_completion.d/qtool`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return nil
		},
	}
	root.PersistentFlags().BoolVar(&f.IO.JSON, "json", false, "write one JSON document to stdout instead of text")
	root.PersistentFlags().BoolVarP(&f.IO.Quiet, "quiet", "q", false, "no progress bars or informational messages on stderr")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return &FlagError{Err: err} })

	root.AddCommand(
		newInspectCmd(f, nil),
		newCopyCmd(f, nil),
		newConvertCmd(f, nil),
		newQuantizeCmd(f, nil),
		newDequantizeCmd(f, nil),
		newConvertAdapterCmd(f, nil),
		newLintAdapterCmd(f, nil),
		newMergeAdapterCmd(f, nil),
		newEvalCmd(f, nil),
		newGenerateCmd(f, nil),
		newFinetuneCmd(f, nil),
		newVersionCmd(f),
	)
	return root
}

// isCobraUsageError recognises the argument and command errors cobra
// returns without a hook (unknown command, wrong argument count).
func isCobraUsageError(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") ||
		strings.HasPrefix(s, "accepts ") ||
		strings.HasPrefix(s, "requires at least") ||
		strings.HasPrefix(s, "requires at most") ||
		strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "unknown shorthand flag") ||
		strings.HasPrefix(s, "invalid argument")
}

// exactArgs is cobra.ExactArgs returning a FlagError.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return &FlagError{Err: err}
		}
		return nil
	}
}
