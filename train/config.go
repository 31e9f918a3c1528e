package train

import (
	"errors"
	"fmt"
	"strings"
)

// ErrConfig is wrapped by the errors of an invalid Config (a usage error).
var ErrConfig = errors.New("train: invalid configuration")

// Config is a fine-tuning run.
type Config struct {
	Rank    int      // LoRA rank r (default 8)
	Alpha   float64  // lora_alpha (default 2·Rank)
	RSLoRA  bool     // scale α/√r instead of α/r
	Targets []string // module names (q_proj … down_proj); nil or "all-linear" means all seven
	// Layers restricts the adapted blocks; nil means all.
	Layers []int
	// Dropout is the probability of zeroing an input of a LoRA branch
	// while training (inverse-scaled by 1/(1−p); off at evaluation).
	Dropout float64
	// GradCheckpoint keeps only each block's input residual during the
	// forward pass and recomputes a block's activations in its backward.
	GradCheckpoint bool

	MaxSteps  int     // optimizer steps; 0 derives them from Epochs
	Epochs    float64 // passes over the training windows when MaxSteps is 0 (default 1)
	SeqLen    int     // tokens per window (default 128)
	Batch     int     // sequences per micro-batch (default 1)
	GradAccum int     // micro-batches per optimizer step (default 1)

	LR          float64 // peak learning rate (default 1e-3)
	Schedule    string  // constant, linear or cosine (default cosine)
	Warmup      int     // warmup steps
	WeightDecay float64 // AdamW decoupled weight decay (default 0)
	Beta1       float64 // default 0.9
	Beta2       float64 // default 0.999
	AdamEps     float64 // default 1e-8
	MaxGradNorm float64 // clip by global norm; default 1, negative disables

	EvalEvery int    // evaluate the validation windows every N steps (0: only at the end)
	Seed      uint64 // seeds the init of A and the shuffling
	Threads   int    // kernel threads; ≤ 0 means GOMAXPROCS
	Quantize  string // "" or "nf4": re-encode the frozen projections (QLoRA)
	// PlanOnly opens the model for Plan alone (--dry-run): --quantize is
	// accounted for in the plan but not performed, so a 7B plan takes
	// milliseconds instead of a minute. Such a trainer must not train.
	PlanOnly bool

	// SaveEvery calls OnSave after every N-th optimizer step (not after
	// the last); 0 never does.
	SaveEvery int

	// Progress, when set, receives every optimizer step's figures.
	Progress func(StepStats) `json:"-"`
	// OnEval, when set, receives every evaluation.
	OnEval func(EvalStats) `json:"-"`
	// OnSave, when set, is called with the step number every SaveEvery
	// steps, between steps (the place to write a checkpoint).
	OnSave func(step int) error `json:"-"`
}

// AllTargets are the module names of all-linear.
func AllTargets() []string { return append([]string(nil), moduleNames[:]...) }

func (c *Config) setDefaults() error {
	if c.Rank == 0 {
		c.Rank = 8
	}
	if c.Alpha == 0 {
		c.Alpha = 2 * float64(c.Rank)
	}
	if c.SeqLen == 0 {
		c.SeqLen = 128
	}
	if c.Batch == 0 {
		c.Batch = 1
	}
	if c.GradAccum == 0 {
		c.GradAccum = 1
	}
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.Schedule == "" {
		c.Schedule = "cosine"
	}
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.999
	}
	if c.AdamEps == 0 {
		c.AdamEps = 1e-8
	}
	if c.MaxGradNorm == 0 {
		c.MaxGradNorm = 1
	}
	if c.Epochs == 0 {
		c.Epochs = 1
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		return fmt.Errorf("train: dropout %g (want 0 ≤ p < 1): %w", c.Dropout, ErrConfig)
	}
	if c.Rank < 0 || c.SeqLen < 2 || c.Batch < 0 || c.GradAccum < 0 || c.MaxSteps < 0 || c.SaveEvery < 0 || c.Warmup < 0 || c.Epochs < 0 || c.LR < 0 {
		return fmt.Errorf("train: rank, seq-len (≥ 2), batch, grad-accum, steps, warmup, epochs and lr must not be negative: %w", ErrConfig)
	}
	switch c.Schedule {
	case "constant", "linear", "cosine":
	default:
		return fmt.Errorf("train: schedule %q (want constant, linear or cosine): %w", c.Schedule, ErrConfig)
	}
	if c.Quantize != "" && c.Quantize != "nf4" {
		return fmt.Errorf("train: quantize %q (want nf4): %w", c.Quantize, ErrConfig)
	}
	targets := c.Targets
	if len(targets) == 0 || (len(targets) == 1 && targets[0] == "all-linear") {
		targets = AllTargets()
	}
	c.Targets = nil
	for _, t := range targets {
		t = strings.TrimSpace(t)
		if moduleIndex(t) < 0 {
			return fmt.Errorf("train: target %q (want %s or all-linear): %w", t, strings.Join(moduleNames[:], ", "), ErrConfig)
		}
		c.Targets = append(c.Targets, t)
	}
	return nil
}

func moduleIndex(name string) int {
	for i, n := range moduleNames {
		if n == name {
			return i
		}
	}
	return -1
}

// StepStats are one optimizer step's figures.
type StepStats struct {
	Step       int     `json:"step"`
	Loss       float64 `json:"loss"`
	LR         float64 `json:"lr"`
	GradNorm   float64 `json:"grad_norm"`
	TokensPerS float64 `json:"tokens_per_s"`
	Elapsed    float64 `json:"elapsed"`
	// Peak resident memory so far, in bytes (Linux /proc/self/status):
	// VmHWM, and the largest RssAnon (heap: adapters, optimizer state,
	// activations) and RssFile (mapped weights) seen at a step's end.
	PeakRSS     int64 `json:"peak_rss"`
	PeakRSSAnon int64 `json:"peak_rss_anon"`
	PeakRSSFile int64 `json:"peak_rss_file"`
	// Total is the number of optimizer steps of the run.
	Total int `json:"total_steps"`
}

// EvalStats are one evaluation on the validation windows.
type EvalStats struct {
	Step    int     `json:"step"`
	ValLoss float64 `json:"val_loss"`
	Tokens  int     `json:"tokens"`
}
