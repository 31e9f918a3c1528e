package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/lora"
)

// Trainer fine-tunes LoRA adapters on one base model.
type Trainer struct {
	Cfg   Config
	Model *Model
	pairs []*LoRA
	lins  []*Linear // adapted layers, in pairs order
	rng   *rand.Rand
	src   *rand.PCG // rng's state, saved in checkpoints
	step  int
	pass  *pass
	// Data position: the current epoch's window order, the next index
	// into it and the epoch number (1-based; 0 before the first Run).
	order []int
	next  int
	epoch int
}

// Open opens the base model (GGUF file or HF folder) and initialises the
// adapters: A Kaiming-uniform U(−1/√in, 1/√in) from the seed, B = 0.
func Open(path string, cfg Config) (*Trainer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.Threads <= 0 {
		cfg.Threads = runtime.GOMAXPROCS(0)
	}
	quant := cfg.Quantize
	if cfg.PlanOnly {
		quant = ""
	}
	m, err := openModel(path, cfg.SeqLen, cfg.Threads, quant)
	if err != nil {
		return nil, err
	}
	t, err := newTrainer(m, cfg)
	if err != nil {
		m.Close()
		return nil, err
	}
	return t, nil
}

func newTrainer(m *Model, cfg Config) (*Trainer, error) {
	src := rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)
	t := &Trainer{Cfg: cfg, Model: m, rng: rand.New(src), src: src}
	scale := float32(lora.Scale(cfg.Alpha, cfg.Rank, cfg.RSLoRA))
	for _, li := range cfg.Layers {
		if li < 0 || li >= len(m.blocks) {
			return nil, fmt.Errorf("train: layer %d (the model has %d): %w", li, len(m.blocks), ErrConfig)
		}
	}
	for li := range m.blocks {
		if cfg.Layers != nil && !slices.Contains(cfg.Layers, li) {
			continue
		}
		for j, l := range m.blocks[li].lin {
			if !slices.Contains(cfg.Targets, moduleNames[j]) {
				continue
			}
			r := cfg.Rank
			p := &LoRA{Rank: r, Scale: scale, A: make([]float32, r*l.In), B: make([]float32, l.Out*r),
				GA: make([]float32, r*l.In), GB: make([]float32, l.Out*r),
				mA: make([]float32, r*l.In), vA: make([]float32, r*l.In), mB: make([]float32, l.Out*r), vB: make([]float32, l.Out*r)}
			bound := 1 / math.Sqrt(float64(l.In))
			for i := range p.A {
				p.A[i] = float32((2*t.rng.Float64() - 1) * bound)
			}
			l.LoRA = p
			t.pairs = append(t.pairs, p)
			t.lins = append(t.lins, l)
		}
	}
	if len(t.pairs) == 0 {
		return nil, fmt.Errorf("train: no module to adapt")
	}
	return t, nil
}

// Close releases the model.
func (t *Trainer) Close() error { return t.Model.Close() }

// Params is the number of trainable values.
func (t *Trainer) Params() int64 {
	var n int64
	for _, p := range t.pairs {
		n += int64(len(p.A) + len(p.B))
	}
	return n
}

func (t *Trainer) getPass(n int) *pass {
	if t.pass == nil || t.pass.t != n {
		t.pass = newPass(t.Model, n, t.Cfg.Threads, t.Cfg.GradCheckpoint, t.Cfg.Dropout)
	}
	return t.pass
}

// accumulate runs forward and backward on one window, adding the
// gradients of the summed loss, and returns the summed NLL and the count.
func (t *Trainer) accumulate(w Window) (float64, int) {
	ps := t.getPass(len(w.Inputs))
	ps.training = true
	if t.Cfg.Dropout > 0 {
		ps.dropSeed = t.rng.Uint64()
	}
	ps.forward(w.Inputs)
	nll, n := ps.loss(w.Targets, w.Mask, true)
	ps.backward()
	return nll, n
}

// Loss is the mean NLL of the windows (counted targets only).
func (t *Trainer) Loss(ws []Window) (float64, int) {
	var nll float64
	n := 0
	for _, w := range ws {
		ps := t.getPass(len(w.Inputs))
		ps.training = false
		ps.forward(w.Inputs)
		l, c := ps.loss(w.Targets, w.Mask, false)
		nll += l
		n += c
	}
	return nll / float64(max(n, 1)), n
}

// TotalSteps is the number of optimizer steps Run takes for nWindows
// training windows.
func (t *Trainer) TotalSteps(nWindows int) int {
	if t.Cfg.MaxSteps > 0 {
		return t.Cfg.MaxSteps
	}
	per := t.Cfg.Batch * t.Cfg.GradAccum
	return max(1, int(math.Ceil(t.Cfg.Epochs*float64(nWindows)/float64(per))))
}

// Summary is the result of Run.
type Summary struct {
	Steps        int     `json:"steps"`
	Tokens       int64   `json:"tokens"`
	FinalLoss    float64 `json:"final_loss"`
	InitValLoss  float64 `json:"initial_val_loss,omitempty"`
	FinalValLoss float64 `json:"final_val_loss,omitempty"`
	Seconds      float64 `json:"seconds"`
	SecPerStep   float64 `json:"seconds_per_step"`
	TokensPerS   float64 `json:"tokens_per_s"`
	Params       int64   `json:"trainable_params"`
	PeakRSS      int64   `json:"peak_rss"`
	PeakRSSAnon  int64   `json:"peak_rss_anon"`
	PeakRSSFile  int64   `json:"peak_rss_file"`
}

// Run trains on the windows (shuffled each epoch with the seed) and
// evaluates val every EvalEvery steps and at the end.
func (t *Trainer) Run(ctx context.Context, trainW, val []Window) (Summary, error) {
	if t.Cfg.PlanOnly {
		return Summary{}, fmt.Errorf("train: a trainer opened with PlanOnly cannot train: %w", ErrConfig)
	}
	if len(trainW) == 0 {
		return Summary{}, fmt.Errorf("train: the data holds no window of %d tokens", t.Cfg.SeqLen)
	}
	total := t.TotalSteps(len(trainW))
	opt := kernels.AdamW{Beta1: float32(t.Cfg.Beta1), Beta2: float32(t.Cfg.Beta2), Eps: float32(t.Cfg.AdamEps), WeightDecay: float32(t.Cfg.WeightDecay)}
	var sum Summary
	sum.Params = t.Params()
	if len(val) > 0 {
		sum.InitValLoss, _ = t.Loss(val)
	}
	if t.order == nil {
		t.order, t.next, t.epoch = t.rng.Perm(len(trainW)), 0, 1
	} else if len(t.order) != len(trainW) {
		return Summary{}, fmt.Errorf("train: resumed with %d training windows, the checkpoint has %d: %w", len(trainW), len(t.order), ErrCheckpoint)
	}
	start := time.Now()
	per := t.Cfg.Batch * t.Cfg.GradAccum
	var peak StepStats
	for s := t.step + 1; s <= total; s++ {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		stepStart := time.Now()
		var nll float64
		count := 0
		toks := 0
		for range per {
			if t.next == len(t.order) {
				t.order, t.next = t.rng.Perm(len(trainW)), 0
				t.epoch++
			}
			w := trainW[t.order[t.next]]
			t.next++
			l, c := t.accumulate(w)
			nll += l
			count += c
			toks += len(w.Inputs)
		}
		norm := finishGradients(t.pairs, count, t.Cfg.MaxGradNorm)
		lr := LRAt(t.Cfg.Schedule, t.Cfg.LR, s, t.Cfg.Warmup, total)
		opt.LR = float32(lr)
		t.step++
		adamStep(t.pairs, opt, t.step)
		sum.Steps, sum.Tokens = s, sum.Tokens+int64(toks)
		sum.FinalLoss = nll / float64(max(count, 1))
		mem := readMem()
		peak.PeakRSS = max(peak.PeakRSS, mem.PeakRSS)
		peak.PeakRSSAnon = max(peak.PeakRSSAnon, mem.PeakRSSAnon)
		peak.PeakRSSFile = max(peak.PeakRSSFile, mem.PeakRSSFile)
		sum.PeakRSS, sum.PeakRSSAnon, sum.PeakRSSFile = peak.PeakRSS, peak.PeakRSSAnon, peak.PeakRSSFile
		if t.Cfg.Progress != nil {
			t.Cfg.Progress(StepStats{Step: s, Loss: sum.FinalLoss, LR: lr, GradNorm: norm,
				TokensPerS: float64(toks) / time.Since(stepStart).Seconds(), Elapsed: time.Since(start).Seconds(),
				PeakRSS: peak.PeakRSS, PeakRSSAnon: peak.PeakRSSAnon, PeakRSSFile: peak.PeakRSSFile, Total: total})
		}
		if len(val) > 0 && (s == total || (t.Cfg.EvalEvery > 0 && s%t.Cfg.EvalEvery == 0)) {
			vl, n := t.Loss(val)
			sum.FinalValLoss = vl
			if t.Cfg.OnEval != nil {
				t.Cfg.OnEval(EvalStats{Step: s, ValLoss: vl, Tokens: n})
			}
		}
		if t.Cfg.SaveEvery > 0 && s%t.Cfg.SaveEvery == 0 && s < total && t.Cfg.OnSave != nil {
			if err := t.Cfg.OnSave(s); err != nil {
				return sum, err
			}
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	sum.SecPerStep = sum.Seconds / float64(max(sum.Steps, 1))
	sum.TokensPerS = float64(sum.Tokens) / sum.Seconds
	return sum, nil
}

// Adapter returns the trained pairs as a lora.Adapter, B's rows in Hugging
// Face order (undoing the GGUF Q/K permutation).
func (t *Trainer) Adapter() (*lora.Adapter, error) {
	m, c := t.Model, &t.Model.Cfg
	ad := &lora.Adapter{Format: lora.PEFT, Arch: c.Arch, Config: lora.Config{Rank: t.Cfg.Rank, Alpha: t.Cfg.Alpha,
		RSLoRA: t.Cfg.RSLoRA, TargetModules: slices.Clone(t.Cfg.Targets)}}
	for i, l := range t.lins {
		p := l.LoRA
		name, perm := m.hfTarget(l.Layer, l.Module)
		b := slices.Clone(p.B)
		if c.Interleaved && perm != arch.NoPermutation {
			q, err := arch.NewQKRows(int64(l.Out), perm.Heads(int64(c.Heads), int64(c.KVHeads)))
			if err != nil {
				return nil, err
			}
			for g := range l.Out {
				hf := int(q.HFRow(int64(g)))
				copy(b[hf*p.Rank:(hf+1)*p.Rank], p.B[g*p.Rank:(g+1)*p.Rank])
			}
		}
		_ = i
		ad.Pairs = append(ad.Pairs, lora.Pair{Target: name, Rank: p.Rank, In: l.In, Out: l.Out, A: slices.Clone(p.A), B: b,
			Alpha: t.Cfg.Alpha, Scale: float64(p.Scale)})
	}
	ad.Sort()
	return ad, nil
}

// Write writes the adapter: PEFT folder, or GGUF LoRA for a .gguf path.
func (t *Trainer) Write(path string, force bool) error { return t.WriteFormat(path, "", force) }

// WriteFormat writes the adapter in format "peft" or "gguf"; "" picks by
// the path's extension as Write does.
func (t *Trainer) WriteFormat(path, format string, force bool) error {
	var f lora.Format
	switch strings.ToLower(format) {
	case "":
	case "peft":
		f = lora.PEFT
	case "gguf":
		f = lora.GGUF
	default:
		return fmt.Errorf("train: adapter format %q (want peft or gguf): %w", format, ErrConfig)
	}
	ad, err := t.Adapter()
	if err != nil {
		return err
	}
	return lora.Write(path, ad, lora.WriteOptions{Format: f, Base: t.Model.Base.Source(), Force: force})
}

// SplitWindows holds out a fraction frac of the windows for validation,
// chosen by a generator seeded with seed (at least one window each way
// when there are two or more); the two lists keep the input order.
func SplitWindows(ws []Window, frac float64, seed uint64) (trainW, val []Window) {
	if frac <= 0 || len(ws) < 2 {
		return ws, nil
	}
	n := min(max(int(math.Round(frac*float64(len(ws)))), 1), len(ws)-1)
	r := rand.New(rand.NewPCG(seed^0x5eed5eed, seed))
	hold := make([]bool, len(ws))
	for _, i := range r.Perm(len(ws))[:n] {
		hold[i] = true
	}
	for i, w := range ws {
		if hold[i] {
			val = append(val, w)
		} else {
			trainW = append(trainW, w)
		}
	}
	return trainW, val
}
