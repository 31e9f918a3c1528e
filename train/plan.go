package train

// Plan is what --dry-run prints (TRAINER-DESIGN.md §3).
type Plan struct {
	Modules     map[string]int64 `json:"trainable_per_module"`
	Trainable   int64            `json:"trainable_params"`
	ModelParams int64            `json:"model_params"`
	Percent     float64          `json:"trainable_percent"`
	// Memory terms in bytes.
	AdapterBytes     int64 `json:"adapter_bytes"`
	OptimizerBytes   int64 `json:"optimizer_bytes"` // m, v and the gradient
	ActivationBytes  int64 `json:"activation_bytes"`
	MappedBytes      int64 `json:"mapped_weight_bytes"`
	TokensPerStep    int   `json:"tokens_per_step"`
	SequencesPerStep int   `json:"sequences_per_step"`
}

// Plan computes the dry-run figures.
func (t *Trainer) Plan() Plan {
	c, m := &t.Model.Cfg, t.Model
	p := Plan{Modules: map[string]int64{}, ModelParams: m.params, MappedBytes: m.mapped}
	var rSum int64
	for _, l := range t.lins {
		n := int64(len(l.LoRA.A) + len(l.LoRA.B))
		p.Modules[moduleNames[l.Module]] += n
		p.Trainable += n
		rSum += int64(l.LoRA.Rank)
	}
	p.Percent = 100 * float64(p.Trainable) / float64(max(m.params, 1))
	p.AdapterBytes = 4 * p.Trainable
	p.OptimizerBytes = 12 * p.Trainable
	// Saved per layer and token: xIn, a, xMid, m (4h), q and att (2·qDim),
	// k, v (2·kvDim), gate, up, act (3·FFN), two 1/rms, the U tensors;
	// per layer the probabilities Heads·T²; then the logits and their
	// gradient (2·Vocab per token), plus the backward's scratch.
	T := int64(t.Cfg.SeqLen)
	h, qd, kvd := int64(c.Hidden), int64(c.Heads*c.HeadDim), int64(c.KVHeads*c.HeadDim)
	// With --grad-checkpoint only h is kept per layer, plus one layer's
	// full set (the block being recomputed); the U tensors are then
	// counted for one layer's worth.
	kept := int64(c.Layers)
	if t.Cfg.GradCheckpoint {
		kept = 1
		rSum = (rSum + int64(c.Layers) - 1) / int64(c.Layers)
	}
	perTok := kept*(4*h+2*qd+2*kvd+3*int64(c.FFN)+2) + rSum + 2*h
	if t.Cfg.GradCheckpoint {
		perTok += int64(c.Layers) * h
	}
	floats := T*perTok + kept*int64(c.Heads)*T*T + T*int64(c.Vocab) + T*(3*int64(c.FFN)+2*qd+2*kvd+2*h) + T*T
	p.ActivationBytes = 4 * floats
	p.SequencesPerStep = t.Cfg.Batch * t.Cfg.GradAccum
	p.TokensPerStep = p.SequencesPerStep * t.Cfg.SeqLen
	return p
}
