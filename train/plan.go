package train

import "github.com/qtool-dev/qtool/kernels"

// Plan is what --dry-run prints (TRAINER-DESIGN.md §3): the trainable
// parameters, and the memory of the run term by term, in bytes, with the
// estimate of its peak anonymous RSS (the Go heap; the frozen weights are
// file-backed pages that the kernel may drop and read again).
type Plan struct {
	Modules     map[string]int64 `json:"trainable_per_module"`
	Trainable   int64            `json:"trainable_params"`
	ModelParams int64            `json:"model_params"`
	Percent     float64          `json:"trainable_percent"`

	// AdapterBytes are A and B; OptimizerBytes AdamW's m and v and the
	// gradient of each.
	AdapterBytes   int64 `json:"adapter_bytes"`
	OptimizerBytes int64 `json:"optimizer_bytes"`
	// ActivationBytes is what the forward pass saves for the backward
	// (with --grad-checkpoint each block's input and one block's full
	// set), the logits and the dropout masks.
	ActivationBytes int64 `json:"activation_bytes"`
	// BufferBytes is the backward's work space (gradients of one block's
	// activations, of the attention probabilities of one head, and the
	// tile of dequantized weight rows).
	BufferBytes int64 `json:"buffer_bytes"`
	// ModelHeapBytes are the base model's values in the heap: norms and
	// RoPE tables (f32 copies, for inference and for training) and the
	// tokenizer.
	ModelHeapBytes int64 `json:"model_heap_bytes"`
	// LiveHeapBytes is the sum of the five terms above: the live heap at
	// the height of a backward pass.
	LiveHeapBytes int64 `json:"live_heap_bytes"`
	// StepGarbageBytes is what one optimizer step allocates and drops
	// (per-layer temporaries, the backward's buffers). The Go collector
	// lets the heap grow by up to the live heap (GOGC=100) before it
	// collects; each step's garbage fills that headroom.
	StepGarbageBytes int64 `json:"step_garbage_bytes"`
	// QuantizedBytes are the NF4 codes and absmax of the re-encoded
	// projections with --quantize nf4, in mapped temporary files
	// (file-backed); QuantizeScratchBytes the one matrix in f32, its codes
	// and absmax held in the heap while it is quantized.
	QuantizedBytes       int64 `json:"quantized_bytes,omitempty"`
	QuantizeScratchBytes int64 `json:"quantize_scratch_bytes,omitempty"`
	// RuntimeBytes is the Go runtime and the program's own data.
	RuntimeBytes int64 `json:"runtime_bytes"`
	// EstimatedAnonBytes is the estimated peak anonymous RSS: the runtime,
	// plus the live heap and the collector's headroom (3/4 of the garbage
	// of the run's steps, at most 3/4 of the live heap), or plus the
	// quantization scratch while the model opens, whichever is larger.
	EstimatedAnonBytes int64 `json:"estimated_anon_bytes"`
	// MappedBytes are the base model's tensors, mapped from its files.
	MappedBytes      int64 `json:"mapped_weight_bytes"`
	TokensPerStep    int   `json:"tokens_per_step"`
	SequencesPerStep int   `json:"sequences_per_step"`
}

const (
	// planRuntimeBytes is the anonymous RSS of qtool with an empty heap
	// (measured: 6 MiB on linux/amd64).
	planRuntimeBytes = 6 << 20
	// planTokenBytes is the heap taken by one vocabulary entry of the
	// tokenizer (measured: about 110 bytes with 32000 entries).
	planTokenBytes = 128
	// planNF4Block is the blocksize of --quantize nf4 (bitsandbytes').
	planNF4Block = 64
)

// Plan computes the dry-run figures. The memory terms follow the
// allocations of newPass, pass.forward, pass.backward and Linear (and the
// QLoRA code store); plan_test.go checks them against the Go heap.
func (t *Trainer) Plan() Plan {
	p, _ := t.plan()
	return p
}

// plan is Plan, and the bytes of the tile within BufferBytes (the part of
// the buffers that the pass keeps between steps).
func (t *Trainer) plan() (Plan, int64) {
	c, m, cfg := &t.Model.Cfg, t.Model, &t.Cfg
	p := Plan{Modules: map[string]int64{}, ModelParams: m.params, MappedBytes: m.mapped}
	for _, l := range t.lins {
		n := int64(len(l.LoRA.A) + len(l.LoRA.B))
		p.Modules[moduleNames[l.Module]] += n
		p.Trainable += n
	}
	p.Percent = 100 * float64(p.Trainable) / float64(max(m.params, 1))
	p.AdapterBytes = 4 * p.Trainable
	p.OptimizerBytes = 12 * p.Trainable

	T, L := int64(cfg.SeqLen), int64(c.Layers)
	h, ff := int64(c.Hidden), int64(c.FFN)
	qd, kvd := int64(c.Heads*c.HeadDim), int64(c.KVHeads*c.HeadDim)
	drop := cfg.Dropout > 0
	// One block's activations without its input (newActs), and the U
	// tensors and dropout masks of the adapted modules: per block, and
	// per module kind (the checkpointing scratch serves every block).
	block := 3*T*h + 2*T*qd + 2*T*kvd + int64(c.Heads)*T*T + 3*T*ff + 2*T
	var adapted [numModules]bool
	var uAll, maskAll, uKinds, maskKinds, rAll, inAll int64
	for _, l := range t.lins {
		r, in := int64(l.LoRA.Rank), int64(l.In)
		uAll += T * r
		rAll += T * r
		inAll += T * in
		if drop {
			maskAll += T * in
		}
		if !adapted[l.Module] {
			adapted[l.Module] = true
			uKinds += T * r
			if drop {
				maskKinds += T * in
			}
		}
	}
	// xOut, xn, invOut, and the logits of lossChunk rows.
	acts := 2*T*h + T + int64(lossChunk(cfg.SeqLen, c.Vocab))*int64(c.Vocab)
	if cfg.GradCheckpoint {
		acts += L*T*h + block + uKinds + maskKinds + T*h // inputs, scratch, discard
	} else {
		acts += L*(T*h+block) + uAll + maskAll
	}
	p.ActivationBytes = 4 * acts
	// The backward's buffers (dL/dxn from loss, pass.backward, one T×T
	// gradient of the probabilities per attentionBackward worker) and the
	// tile of addGW, kept by the pass, for weights that are not f32.
	dp := int64(max(1, min(cfg.Threads, c.KVHeads))) * T * T
	bufs := 4*T*h + 3*T*ff + 2*T*qd + 2*T*kvd + dp
	var tileK int64
	for _, w := range t.frozen() {
		// With --quantize (performed, or only planned: PlanOnly) every
		// frozen projection is NF4.
		quantized := cfg.Quantize != "" && w != t.Model.output
		if f, ok := w.(*kernels.F32Matrix); quantized || !ok || len(f.Data) != w.Rows()*w.Cols() {
			tileK = max(tileK, int64(w.Cols()))
		}
	}
	tile := 4 * tileRows * tileK
	p.BufferBytes = 4*bufs + tile
	p.ModelHeapBytes = 4*2*((2*L+1)*h+T*int64(c.HeadDim)) + planTokenBytes*int64(c.Vocab)

	// Garbage of one sequence: forwardAdd's output (o, down) and the
	// scaled U of each adapted module on every forward of a block (twice
	// with checkpointing), the dropped inputs; the backward's buffers, the
	// probabilities' gradient of each block, and per adapted module G·B,
	// the scaled U and with dropout the dropped input and its gradient.
	passes := int64(1)
	if cfg.GradCheckpoint {
		passes = 2
	}
	fwd := L*2*T*h + rAll
	bwd := bufs - dp + L*dp + 2*rAll
	if drop {
		fwd += inAll
		bwd += 2 * inAll
	}
	p.SequencesPerStep = cfg.Batch * cfg.GradAccum
	p.TokensPerStep = p.SequencesPerStep * cfg.SeqLen
	p.StepGarbageBytes = 4 * int64(p.SequencesPerStep) * (passes*fwd + bwd)

	// The quantization scratch grows with the matrices (the attention's
	// first, then the larger FFN's): the outgrown one is garbage until
	// the collector runs (see below).
	var scratchGarbage int64
	if cfg.Quantize == "nf4" {
		var scratch int64
		for _, l := range t.Model.projections() {
			nk := int64(l.In) * int64(l.Out)
			codes := (nk+1)/2 + 4*((nk+planNF4Block-1)/planNF4Block)
			p.QuantizedBytes += codes
			if 4*nk+codes > scratch {
				scratchGarbage = max(scratchGarbage, scratch)
				scratch = 4*nk + codes
			}
		}
		p.QuantizeScratchBytes = scratch
	}
	p.RuntimeBytes = planRuntimeBytes
	p.LiveHeapBytes = p.AdapterBytes + p.OptimizerBytes + p.ActivationBytes + p.BufferBytes + p.ModelHeapBytes
	// The collector starts a cycle once the heap has grown by 70 to 95% of
	// its runway (the live heap, at GOGC=100: runtime/mgcpacer.go's
	// trigger bounds) and, the heap being mostly pointer-free float32
	// slices, marks quickly: the heap peaks about 3/4 of the live heap
	// above it once the run has allocated that much garbage (measured
	// 0.5–1.1 on runs of 2 to 6 steps, 7B- and 13B-shaped included).
	garbage := p.LiveHeapBytes
	if cfg.MaxSteps > 0 {
		garbage = min(garbage, int64(cfg.MaxSteps)*p.StepGarbageBytes)
	}
	open := p.ModelHeapBytes + p.QuantizeScratchBytes
	p.EstimatedAnonBytes = p.RuntimeBytes + max(p.LiveHeapBytes+garbage*3/4, open+min(open, scratchGarbage)*3/4)
	return p, tile
}

// frozen lists the weights the backward multiplies by (every projection
// and the output matrix).
func (t *Trainer) frozen() []kernels.BMatrix {
	ws := []kernels.BMatrix{t.Model.output}
	for _, l := range t.Model.projections() {
		ws = append(ws, l.W)
	}
	return ws
}

// projections lists every block's projections.
func (m *Model) projections() []*Linear {
	var ls []*Linear
	for i := range m.blocks {
		ls = append(ls, m.blocks[i].lin[:]...)
	}
	return ls
}
