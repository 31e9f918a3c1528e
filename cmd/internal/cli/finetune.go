package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qtool-dev/qtool/train"
)

// FinetuneOptions are the inputs of `qtool finetune`.
type FinetuneOptions struct {
	IO      *IOStreams
	Model   string
	Data    string
	Val     string
	Output  string
	Targets string
	DryRun  bool
	Force   bool
	Cfg     train.Config
	Seed    uint64
	// Layers is --layers: block indices and ranges ("0,2-5"); "" means all.
	Layers string
	// ValSplit holds out this fraction of the training windows when --val
	// is not given.
	ValSplit float64
	// Format is the adapter format: "" (by -o's extension), peft or gguf.
	Format string
	// CheckpointDir is --checkpoint-dir ("" means Output + ".checkpoint").
	CheckpointDir string
	// Resume is --resume: a checkpoint folder to continue from.
	Resume string
	// SkipBad skips bad JSONL lines; LongSamples is truncate, split or drop.
	SkipBad     bool
	LongSamples string
	// ChatTemplate is --chat-template: a Go text/template file that
	// renders "messages" samples instead of the model's chat template.
	ChatTemplate string
	// TrainOnPrompt is --train-on-prompt: loss on every token of a
	// conversation, not only on the assistant turns.
	TrainOnPrompt bool

	resume *train.Checkpoint
	flags  map[string]string // the training flags given, recorded in checkpoints
}

// notRecorded are the flags a checkpoint does not pin: they do not change
// the trained adapter (model and data are checked by fingerprint).
var notRecorded = map[string]bool{"resume": true, "dry-run": true, "force": true, "help": true,
	"checkpoint-dir": true, "save-every": true, "model": true, "data": true, "val": true, "json": true, "quiet": true}

// applyCheckpointFlags loads --resume's checkpoint and sets every flag it
// records; a flag given on the command line must agree.
func applyCheckpointFlags(cmd *cobra.Command, opts *FinetuneOptions) error {
	ck, err := train.LoadCheckpoint(opts.Resume)
	if err != nil {
		return &InputError{Err: err}
	}
	var rec struct {
		Flags map[string]string `json:"flags"`
	}
	if err := json.Unmarshal(ck.Extra, &rec); err != nil || rec.Flags == nil {
		return &InputError{Err: fmt.Errorf("checkpoint %s is corrupted: no flag record: %w", opts.Resume, train.ErrCheckpoint)}
	}
	fl := cmd.Flags()
	var bad error
	fl.VisitAll(func(f *pflag.Flag) {
		if bad != nil || notRecorded[f.Name] {
			return
		}
		v, recorded := rec.Flags[f.Name]
		if !recorded {
			v = f.DefValue
		}
		if f.Changed {
			if f.Value.String() != v {
				bad = &InputError{Err: fmt.Errorf("checkpoint %s was written with another config: --%s %s, not %s: %w", opts.Resume, f.Name, v, f.Value.String(), train.ErrCheckpoint)}
			}
			return
		}
		if recorded {
			if err := fl.Set(f.Name, v); err != nil {
				bad = &InputError{Err: fmt.Errorf("checkpoint %s is corrupted: --%s %q: %v: %w", opts.Resume, f.Name, v, err, train.ErrCheckpoint)}
			}
		}
	})
	if bad != nil {
		return bad
	}
	for name, p := range map[string]*string{"model": &opts.Model, "data": &opts.Data, "val": &opts.Val} {
		if !fl.Changed(name) {
			*p = rec.Flags[name]
		}
	}
	if !fl.Changed("threads") {
		opts.Cfg.Threads = ck.Config.Threads
	}
	if !fl.Changed("save-every") {
		opts.Cfg.SaveEvery = ck.Config.SaveEvery
	}
	if opts.CheckpointDir == "" {
		opts.CheckpointDir = opts.Resume
	}
	opts.resume = ck
	return nil
}

// recordFlags keeps the training flags of this run for its checkpoints.
func recordFlags(cmd *cobra.Command, opts *FinetuneOptions) {
	opts.flags = map[string]string{}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if !notRecorded[f.Name] || f.Name == "model" || f.Name == "data" || f.Name == "val" {
			opts.flags[f.Name] = f.Value.String()
		}
	})
	for name, v := range map[string]string{"model": opts.Model, "data": opts.Data, "val": opts.Val} {
		opts.flags[name] = v
	}
}

func newFinetuneCmd(f *Factory, runF func(context.Context, *FinetuneOptions) error) *cobra.Command {
	opts := &FinetuneOptions{IO: f.IO}
	c := &opts.Cfg
	cmd := &cobra.Command{
		Use:   "finetune --model M --data FILE -o OUT",
		Short: "Train a LoRA adapter on a frozen, memory-mapped base model (LoRA / QLoRA)",
		Long: `Finetune trains the low-rank matrices A and B of LoRA adapters on the
projections of a Llama-family model (GGUF file or Hugging Face folder) while
the base stays frozen and memory-mapped in its stored type; --quantize nf4
re-encodes it to NF4 first (QLoRA).

The data is plain text (one sample) or JSONL with "text", or "prompt" and
"completion" (loss on the completion only), or "messages" (a list of
{"role": system|user|assistant, "content"}), optionally .gz or .zst.
Conversations are rendered with the model's chat template (Llama 3,
ChatML/Qwen, Mistral, Gemma and Llama 2 are recognised; any other is
refused by name) or with --chat-template FILE, a Go text/template; the loss
is on the assistant turns only unless --train-on-prompt. Samples
are packed into --seq-len windows with EOS between them and shuffled with
--seed; --val-split holds out a fraction of them when there is no --val.
OUT is a PEFT folder, or a GGUF LoRA adapter when it ends in .gguf
(--format peft|gguf overrides). --grad-checkpoint keeps only each block's
input and recomputes its activations in the backward pass (same gradients,
less memory); --dropout drops LoRA-branch inputs while training.
--dry-run prints the trainable parameters, the memory terms and the tokens
per step without training. --json prints one JSON line per step (with the
peak RSS, anonymous and file-backed) and per evaluation, then a summary; on
a terminal a progress bar shows the loss and tokens/s.`,
		Example: `  qtool finetune --model stories260K.gguf --data shakespeare.txt -o ./lora --max-steps 100 --seq-len 64
  qtool finetune --model ./Llama-3.2-1B --data chat.jsonl --quantize nf4 --target q_proj,v_proj -o lora.gguf --dry-run`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Resume != "" {
				if err := applyCheckpointFlags(cmd, opts); err != nil {
					return err
				}
			}
			recordFlags(cmd, opts)
			switch opts.LongSamples {
			case "truncate", "split", "drop":
			default:
				return flagErrorf("--long-samples %q: want truncate, split or drop", opts.LongSamples)
			}
			if opts.Cfg.SaveEvery < 0 {
				return flagErrorf("--save-every %d: want 0 or more", opts.Cfg.SaveEvery)
			}
			if opts.Model == "" || opts.Data == "" || (opts.Output == "" && !opts.DryRun) {
				return flagErrorf("--model, --data and -o are required")
			}
			if cmd.Flags().Changed("max-steps") && cmd.Flags().Changed("epochs") {
				return flagErrorf("--max-steps and --epochs exclude each other")
			}
			if opts.Targets != "" {
				c.Targets = strings.Split(opts.Targets, ",")
			}
			if opts.Layers != "" {
				ls, err := parseLayers(opts.Layers)
				if err != nil {
					return &FlagError{Err: err}
				}
				c.Layers = ls
			}
			if opts.ValSplit < 0 || opts.ValSplit >= 1 {
				return flagErrorf("--val-split %g: want a fraction in [0, 1)", opts.ValSplit)
			}
			if opts.ValSplit > 0 && opts.Val != "" {
				return flagErrorf("--val and --val-split exclude each other")
			}
			switch strings.ToLower(opts.Format) {
			case "", "peft", "gguf":
			default:
				return flagErrorf("--format %q: want peft or gguf", opts.Format)
			}
			c.Seed = opts.Seed
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runFinetune(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Model, "model", "m", "", "base model: GGUF file or Hugging Face folder")
	fl.StringVar(&opts.Data, "data", "", "training data: text or JSONL (text | prompt+completion | messages), optionally .gz/.zst")
	fl.StringVar(&opts.Val, "val", "", "validation data, same formats")
	fl.StringVarP(&opts.Output, "output", "o", "", "adapter output: PEFT folder, or a .gguf file")
	fl.IntVar(&c.Rank, "rank", 8, "LoRA rank r")
	fl.Float64Var(&c.Alpha, "alpha", 16, "lora_alpha (scale α/r)")
	fl.BoolVar(&c.RSLoRA, "rslora", false, "scale by α/√r")
	fl.StringVar(&opts.Targets, "target", "all-linear", "modules: comma-separated q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj or all-linear")
	fl.IntVar(&c.MaxSteps, "max-steps", 0, "optimizer steps (default: from --epochs)")
	fl.Float64Var(&c.Epochs, "epochs", 1, "passes over the data when --max-steps is not set")
	fl.IntVar(&c.SeqLen, "seq-len", 128, "tokens per window")
	fl.IntVar(&c.Batch, "batch", 1, "sequences per micro-batch")
	fl.IntVar(&c.GradAccum, "grad-accum", 1, "micro-batches per optimizer step")
	fl.Float64Var(&c.LR, "lr", 1e-3, "peak learning rate")
	fl.StringVar(&c.Schedule, "schedule", "cosine", "learning-rate schedule: constant, linear or cosine")
	fl.IntVar(&c.Warmup, "warmup", 0, "linear warmup steps")
	fl.Float64Var(&c.WeightDecay, "weight-decay", 0, "AdamW decoupled weight decay")
	fl.Float64Var(&c.MaxGradNorm, "max-grad-norm", 1, "clip gradients by global norm (negative: off)")
	fl.IntVar(&c.EvalEvery, "eval-every", 0, "evaluate --val every N steps (and at the end)")
	fl.Uint64Var(&opts.Seed, "seed", 0, "seed for the adapter init and the shuffling")
	fl.StringVar(&c.Quantize, "quantize", "", "re-encode the frozen base: nf4 (QLoRA)")
	fl.IntVarP(&c.Threads, "threads", "t", 0, "threads (default: all cores)")
	fl.Float64Var(&c.Dropout, "dropout", 0, "LoRA dropout probability on the adapter inputs while training")
	fl.StringVar(&opts.Layers, "layers", "", "blocks to adapt: indices and ranges, e.g. 0,2-5 (default: all)")
	fl.Float64Var(&opts.ValSplit, "val-split", 0, "hold out this fraction of the training windows for validation (without --val)")
	fl.StringVar(&opts.Format, "format", "", "adapter format: peft or gguf (default: gguf for a .gguf -o, else peft)")
	fl.BoolVar(&c.GradCheckpoint, "grad-checkpoint", false, "keep only block inputs and recompute activations in the backward pass")
	fl.IntVar(&c.SaveEvery, "save-every", 0, "write a checkpoint every N steps (Ctrl-C and SIGTERM always write one)")
	fl.StringVar(&opts.CheckpointDir, "checkpoint-dir", "", "checkpoint folder (default: OUT.checkpoint)")
	fl.StringVar(&opts.Resume, "resume", "", "continue exactly from a checkpoint folder (other flags are taken from it)")
	fl.BoolVar(&opts.SkipBad, "skip-bad", false, "report bad JSONL lines (file:line) and skip them")
	fl.StringVar(&opts.LongSamples, "long-samples", "split", "samples longer than --seq-len: truncate, split (run on across windows) or drop")
	fl.StringVar(&opts.ChatTemplate, "chat-template", "", "Go text/template file that renders \"messages\" samples (instead of the model's chat template)")
	fl.BoolVar(&opts.TrainOnPrompt, "train-on-prompt", false, "conversations: loss on every token, not only the assistant turns")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan without training")
	fl.BoolVar(&opts.Force, "force", false, "replace an existing output")
	return cmd
}

func runFinetune(ctx context.Context, opts *FinetuneOptions) error {
	for _, p := range []string{opts.Model, opts.Data} {
		if err := inputExists(p); err != nil {
			return err
		}
	}
	if opts.Val != "" {
		if err := inputExists(opts.Val); err != nil {
			return err
		}
	}
	if !opts.DryRun && !opts.Force && opts.resume == nil {
		if _, err := os.Stat(opts.Output); err == nil {
			return fmt.Errorf("%s exists (use --force to replace it)", opts.Output)
		}
	}
	ro := train.ReadOptions{SkipBad: opts.SkipBad, OnBad: func(m string) { opts.IO.infof("skipped %s\n", m) }}
	samples, skipped, err := train.ReadSamplesWith(opts.Data, ro)
	if err != nil {
		return err
	}
	var valS []train.Sample
	if opts.Val != "" {
		var n int
		if valS, n, err = train.ReadSamplesWith(opts.Val, ro); err != nil {
			return err
		}
		skipped += n
	}
	jsonOut := json.NewEncoder(opts.IO.Out)
	cfg := opts.Cfg
	if opts.IO.JSON {
		cfg.Progress = func(s train.StepStats) { jsonOut.Encode(s) }
		cfg.OnEval = func(e train.EvalStats) {
			jsonOut.Encode(struct {
				Eval bool `json:"eval"`
				train.EvalStats
			}{true, e})
		}
	} else if opts.IO.ProgressEnabled() {
		bar := newTrainBar(opts.IO)
		defer bar.finish()
		cfg.Progress = bar.step
		cfg.OnEval = bar.eval
	} else {
		cfg.Progress = func(s train.StepStats) {
			opts.IO.infof("step %d  loss %.4f  lr %.2e  grad-norm %.3f  %.0f tok/s\n", s.Step, s.Loss, s.LR, s.GradNorm, s.TokensPerS)
		}
		cfg.OnEval = func(e train.EvalStats) { opts.IO.infof("step %d  val loss %.4f\n", e.Step, e.ValLoss) }
	}
	cfg.PlanOnly = opts.DryRun
	tr, err := train.Open(opts.Model, cfg)
	if err != nil {
		if errors.Is(err, train.ErrConfig) {
			return &FlagError{Err: err}
		}
		return err
	}
	defer tr.Close()
	po := train.PackOptions{Long: opts.LongSamples, TrainOnPrompt: opts.TrainOnPrompt}
	if opts.ChatTemplate != "" || train.HasMessages(samples) || train.HasMessages(valS) {
		if po.Chat, err = train.ChatTemplate(opts.Model, opts.ChatTemplate); err != nil {
			return err
		}
	}
	tw, pst, err := train.PackOpts(tr.Model.Base.Tok, samples, tr.Cfg.SeqLen, po)
	if err != nil {
		if errors.Is(err, train.ErrConfig) {
			return &FlagError{Err: err}
		}
		return err
	}
	var vw []train.Window
	if valS != nil {
		if vw, _, err = train.PackOpts(tr.Model.Base.Tok, valS, tr.Cfg.SeqLen, po); err != nil {
			return err
		}
	} else if opts.ValSplit > 0 {
		tw, vw = train.SplitWindows(tw, opts.ValSplit, opts.Seed)
	}
	if opts.DryRun {
		return printPlan(opts, tr.Plan(), tr.TotalSteps(len(tw)), len(tw))
	}
	if len(tw) == 0 {
		return &InputError{Err: fmt.Errorf("%s holds fewer than %d tokens: no training window of --seq-len %d", opts.Data, tr.Cfg.SeqLen+1, tr.Cfg.SeqLen)}
	}
	if per := tr.Cfg.Batch * tr.Cfg.GradAccum; len(tw) < per {
		return &InputError{Err: fmt.Errorf("%s gives %d training windows of %d tokens, fewer than one batch (batch × grad-accum = %d)", opts.Data, len(tw), tr.Cfg.SeqLen, per)}
	}
	fp, err := train.ModelFingerprint(opts.Model)
	if err != nil {
		return err
	}
	dataFP := train.WindowsFingerprint(tw)
	if ck := opts.resume; ck != nil {
		if ck.Model != fp {
			return &InputError{Err: fmt.Errorf("checkpoint %s was written for another model (size %d, sha256 %.12s; %s: size %d, sha256 %.12s): %w",
				opts.Resume, ck.Model.Size, ck.Model.SHA256, opts.Model, fp.Size, fp.SHA256, train.ErrCheckpoint)}
		}
		if ck.Data != dataFP {
			return &InputError{Err: fmt.Errorf("checkpoint %s was written for another dataset than %s: %w", opts.Resume, opts.Data, train.ErrCheckpoint)}
		}
		if err := tr.Restore(ck); err != nil {
			return &InputError{Err: err}
		}
		opts.IO.infof("resuming %s at step %d\n", opts.Resume, ck.Step)
	}
	ckDir := opts.CheckpointDir
	if ckDir == "" {
		ckDir = filepath.Clean(opts.Output) + ".checkpoint"
	}
	extra, err := json.Marshal(struct {
		Flags map[string]string `json:"flags"`
	}{opts.flags})
	if err != nil {
		return err
	}
	save := func() error { return tr.SaveCheckpoint(ckDir, fp, dataFP, extra) }
	tr.Cfg.OnSave = func(int) error { return save() }
	sum, err := tr.Run(ctx, tw, vw)
	if err != nil {
		if ctx.Err() != nil {
			if serr := save(); serr != nil {
				return fmt.Errorf("%w (checkpoint not written: %v)", err, serr)
			}
			opts.IO.infof("checkpoint at step %d written to %s (continue with --resume %s)\n", tr.Step(), ckDir, ckDir)
		}
		return err
	}
	if err := tr.WriteFormat(opts.Output, opts.Format, opts.Force); err != nil {
		return err
	}
	if opts.IO.JSON {
		return jsonOut.Encode(struct {
			Done   bool   `json:"done"`
			Output string `json:"output"`
			train.Summary
			Data train.PackStats `json:"data"`
			Bad  int             `json:"bad_lines_skipped"`
		}{true, opts.Output, sum, pst, skipped})
	}
	_, err = fmt.Fprintf(opts.IO.Out, "data         %d samples, %d bad lines skipped, %d longer than seq-len (%d truncated, %d split, %d dropped)\nsteps        %d (%d tokens)\nloss         %.4f\nval loss     %.4f → %.4f\nspeed        %.3f s/step, %.0f tokens/s\npeak RSS     %.1f MiB (anonymous %.1f, file-backed %.1f)\nadapter      %s (%d parameters)\n",
		pst.Samples, skipped, pst.Long, pst.Truncated, pst.Split, pst.Dropped, sum.Steps, sum.Tokens, sum.FinalLoss, sum.InitValLoss, sum.FinalValLoss, sum.SecPerStep, sum.TokensPerS,
		mib(sum.PeakRSS), mib(sum.PeakRSSAnon), mib(sum.PeakRSSFile), filepath.Clean(opts.Output), sum.Params)
	return err
}

func printPlan(opts *FinetuneOptions, p train.Plan, steps, windows int) error {
	if opts.IO.JSON {
		return writeJSON(opts.IO.Out, struct {
			train.Plan
			Steps   int `json:"steps"`
			Windows int `json:"windows"`
		}{p, steps, windows})
	}
	w := opts.IO.Out
	names := make([]string, 0, len(p.Modules))
	for n := range p.Modules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "%-12s %d\n", n, p.Modules[n])
	}
	_, err := fmt.Fprintf(w, "trainable    %d of %d (%.3f%%)\nadapter      %.2f MiB\noptimizer    %.2f MiB (m, v, gradient)\nactivations  %.2f MiB\nmapped       %.2f MiB (frozen weights, file-backed)\ntokens/step  %d (%d sequences)\nsteps        %d over %d windows\n",
		p.Trainable, p.ModelParams, p.Percent, mib(p.AdapterBytes), mib(p.OptimizerBytes), mib(p.ActivationBytes), mib(p.MappedBytes),
		p.TokensPerStep, p.SequencesPerStep, steps, windows)
	return err
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// parseLayers reads --layers: comma-separated indices and inclusive
// ranges ("0,2-5").
func parseLayers(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err != nil || a < 0 || b < a {
			return nil, fmt.Errorf("--layers %q: want indices and ranges such as 0,2-5", s)
		}
		for i := a; i <= b; i++ {
			if !slices.Contains(out, i) {
				out = append(out, i)
			}
		}
	}
	return out, nil
}

// trainBar is the terminal progress bar of a run: steps done of total,
// with the last loss, tokens/s and the ETA.
type trainBar struct {
	io  *IOStreams
	bar *progressbar.ProgressBar
}

func newTrainBar(s *IOStreams) *trainBar { return &trainBar{io: s} }

func (b *trainBar) step(s train.StepStats) {
	if b.bar == nil {
		b.bar = progressbar.NewOptions(s.Total,
			progressbar.OptionSetWriter(b.io.ErrOut),
			progressbar.OptionThrottle(100e6),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish())
	}
	b.bar.Describe(fmt.Sprintf("loss %.4f  %.0f tok/s", s.Loss, s.TokensPerS))
	b.bar.Set(s.Step)
}

func (b *trainBar) eval(e train.EvalStats) {
	if b.bar != nil {
		b.bar.Clear()
	}
	b.io.infof("step %d  val loss %.4f\n", e.Step, e.ValLoss)
}

func (b *trainBar) finish() {
	if b.bar != nil {
		b.bar.Finish()
	}
}
