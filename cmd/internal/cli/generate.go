package cli

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/llama"
)

// GenerateOptions are the inputs of `qtool generate`.
type GenerateOptions struct {
	IO       *IOStreams
	Model    string
	Adapters []string
	Prompt   string
	N        int
	Temp     float64
	TopK     int
	TopP     float64
	Seed     uint64
	Threads  int
	Batch    int // prompt tokens per forward pass
	// CPUProfile, when set, is a file that receives a pprof CPU profile of
	// the prompt and generation (hidden flag --cpuprofile, for benchmarks).
	CPUProfile string
}

func newGenerateCmd(f *Factory, runF func(context.Context, *GenerateOptions) error) *cobra.Command {
	opts := &GenerateOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "generate --model M --prompt TEXT",
		Short: "Continue a prompt with a model (greedy or sampled)",
		Long: `Generate encodes the prompt (with the vocabulary's BOS) and streams up to -n
new tokens to stdout, stopping early at the end-of-sequence token. --temp 0
is greedy decoding; otherwise tokens are sampled after --top-k and --top-p
with a generator seeded by --seed, so a seed repeats its output. --json
prints the prompt and generated ids, the text and the timing instead.`,
		Example: `  qtool generate --model stories260K.gguf --prompt "Once upon a time" -n 64
  qtool generate --model ./Llama-3.2-1B --adapter ./my-lora --prompt "Hello" --temp 0.8 --top-p 0.95 --seed 7`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Model == "" {
				return flagErrorf("--model is required")
			}
			if opts.N < 0 || opts.Temp < 0 || opts.TopK < 0 || opts.TopP < 0 || opts.TopP > 1 {
				return flagErrorf("-n, --temp and --top-k must not be negative, --top-p must be in [0, 1]")
			}
			if opts.Batch < 1 {
				return flagErrorf("--batch must be at least 1")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runGenerate(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Model, "model", "m", "", "model: GGUF file or Hugging Face folder")
	cmd.Flags().StringArrayVar(&opts.Adapters, "adapter", nil, "LoRA adapter applied at run time (repeatable)")
	cmd.Flags().StringVarP(&opts.Prompt, "prompt", "p", "", "prompt text")
	cmd.Flags().IntVarP(&opts.N, "n", "n", 128, "tokens to generate at most")
	cmd.Flags().Float64Var(&opts.Temp, "temp", 0, "sampling temperature (0: greedy)")
	cmd.Flags().IntVar(&opts.TopK, "top-k", 40, "sample among the K most likely tokens (0: all)")
	cmd.Flags().Float64Var(&opts.TopP, "top-p", 0.95, "sample within this cumulative probability (1: all)")
	cmd.Flags().Uint64Var(&opts.Seed, "seed", 0, "random seed for sampling")
	cmd.Flags().IntVarP(&opts.Threads, "threads", "t", 0, "threads (default: all cores)")
	cmd.Flags().IntVarP(&opts.Batch, "batch", "b", 512, "prompt tokens evaluated per forward pass (bounds the memory of long prompts)")
	cmd.Flags().StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the prompt and generation to this file")
	_ = cmd.Flags().MarkHidden("cpuprofile")
	return cmd
}

// generateResult is the --json document.
type generateResult struct {
	PromptIDs     []int32 `json:"prompt_ids"`
	IDs           []int32 `json:"ids"`
	Text          string  `json:"text"`
	PromptTokens  int     `json:"prompt_tokens"`
	Tokens        int     `json:"tokens"`
	PromptSeconds float64 `json:"prompt_seconds"`
	GenSeconds    float64 `json:"generation_seconds"`
	PromptTPS     float64 `json:"prompt_tokens_per_s"`
	GenTPS        float64 `json:"tokens_per_s"`
	StopReason    string  `json:"stop_reason"`
}

func runGenerate(ctx context.Context, opts *GenerateOptions) error {
	// Q4_0/Q8_0 weights multiply int8-rounded activations, as llama.cpp
	// does (kernels.SetInt8Dot), and the prompt's products against 4-bit,
	// K-quant and bf16 weights run on AMX tiles in bfloat16 where the CPU has them
	// (kernels.SetAMX); eval keeps float32 activations.
	defer kernels.SetInt8Dot(true)()
	defer kernels.SetAMX(true)()
	m, err := openInferModel(opts.Model, opts.Adapters, opts.Threads, 0)
	if err != nil {
		return err
	}
	defer m.Close()
	prompt := m.Tok.Encode(opts.Prompt, llama.EncodeDefaults())
	if len(prompt) == 0 {
		return flagErrorf("the prompt encodes to no tokens (empty --prompt and no BOS)")
	}
	n := opts.N
	st := m.NewState(min(m.MaxContext(), len(prompt)+n))
	if len(prompt) >= st.Cap() {
		return &InputError{Err: fmt.Errorf("prompt of %d tokens does not fit the context of %d", len(prompt), st.Cap())}
	}
	n = min(n, st.Cap()-len(prompt))
	sampler := llama.NewSampler(opts.Temp, opts.TopK, opts.TopP, opts.Seed)
	dec := m.Tok.NewStreamDecoder()
	res := generateResult{PromptIDs: prompt, IDs: []int32{}, PromptTokens: len(prompt), StopReason: "length"}

	if opts.CPUProfile != "" {
		stop, err := startCPUProfile(opts.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	t0 := time.Now()
	// The prompt in batches: the activations (and the kernels' packed
	// copies of them) then grow with --batch, not with the prompt, while
	// the KV cache carries the earlier batches.
	var logits []float32
	for i := 0; i < len(prompt); i += opts.Batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		if logits, err = st.Forward(prompt[i:min(len(prompt), i+opts.Batch)], false); err != nil {
			return err
		}
	}
	res.PromptSeconds = time.Since(t0).Seconds()
	t1 := time.Now()
	var text []byte
	for range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := sampler.Sample(logits)
		if id == m.Tok.EOS() {
			res.StopReason = "eos"
			break
		}
		res.IDs = append(res.IDs, id)
		piece := dec.Push(id)
		text = append(text, piece...)
		if !opts.IO.JSON && piece != "" {
			fmt.Fprint(opts.IO.Out, piece)
		}
		if len(res.IDs) == n {
			break
		}
		if logits, err = st.Forward([]int32{id}, false); err != nil {
			return err
		}
	}
	res.GenSeconds = time.Since(t1).Seconds()
	tail := dec.Flush()
	text = append(text, tail...)
	res.Text, res.Tokens = string(text), len(res.IDs)
	if res.PromptSeconds > 0 {
		res.PromptTPS = float64(len(prompt)) / res.PromptSeconds
	}
	if res.GenSeconds > 0 {
		res.GenTPS = float64(res.Tokens) / res.GenSeconds
	}
	if opts.IO.JSON {
		return writeJSON(opts.IO.Out, res)
	}
	fmt.Fprintln(opts.IO.Out, tail)
	opts.IO.infof("%d prompt tokens at %.0f tokens/s, %d generated at %.1f tokens/s\n", len(prompt), res.PromptTPS, res.Tokens, res.GenTPS)
	return nil
}

// startCPUProfile starts a CPU profile into path; stop ends it and closes
// the file.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
