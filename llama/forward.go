package llama

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/lora"
	"github.com/qtool-dev/qtool/quantize"
	"github.com/qtool-dev/qtool/tokenizer"
)

// ErrContextFull is returned when a forward pass would go past the
// state's context size.
var ErrContextFull = errors.New("llama: context is full")

// Options control Open.
type Options struct {
	// Threads for the matrix products; ≤ 0 means GOMAXPROCS.
	Threads int
	// MaxContext bounds the positions a State may hold (the RoPE table);
	// 0 means the model's context length, at most 4096.
	MaxContext int
	// Adapters are LoRA adapters (PEFT folders, MLX folders or GGUF LoRA
	// files) applied at run time, each with AdapterScale (0 means 1).
	Adapters     []string
	AdapterScale float64
}

// Model is a loaded model. Its weights stay in the source's memory
// mapping; Close releases them. A Model is safe for concurrent use by
// several States.
type Model struct {
	Cfg     Config
	Format  detect.Format
	Tok     *tokenizer.Tokenizer
	Threads int

	src     formats.Source
	embed   kernels.BMatrix
	layers  []layer
	outNorm []float32
	output  *linear
	rope    *kernels.RopeTable
	byHF    map[string]hfRef
	// W holds the stored tensors by GGUF name.
	W *Weights
}

type hfRef struct {
	l    *linear
	perm arch.Permutation
}

type layer struct {
	attnNorm, ffnNorm          []float32
	q, k, v, o, gate, up, down *linear
}

// Open loads a GGUF file or a Hugging Face folder.
func Open(path string, opts Options) (*Model, error) {
	src, f, err := detect.Open(path, detect.Options{})
	if err != nil {
		return nil, err
	}
	m, err := load(src, f, path, opts)
	if err != nil {
		src.Close()
		return nil, err
	}
	return m, nil
}

// Close releases the model's source.
func (m *Model) Close() error { return m.src.Close() }

// Source is the model's tensor source (for adapters that need the base).
func (m *Model) Source() formats.Source { return m.src }

func load(src formats.Source, f detect.Format, path string, opts Options) (*Model, error) {
	bsrc, ok := src.(formats.ByteSource)
	if !ok {
		return nil, fmt.Errorf("llama: %s: source cannot be memory-mapped: %w", path, formats.ErrUnsupported)
	}
	m := &Model{Format: f, src: src, Threads: opts.Threads, byHF: map[string]hfRef{}}
	if m.Threads <= 0 {
		m.Threads = runtime.GOMAXPROCS(0)
	}
	var a *arch.Arch
	var err error
	// infos maps GGUF-style names to tensors.
	infos := map[string]formats.TensorInfo{}
	hfNames := map[string]string{}
	bnb := bnbIndex{byGGUF: map[string]*quantize.BNBWeight{}, stored: src.Tensors()}
	switch f {
	case detect.GGUF:
		name, _ := src.Meta().String("general.architecture")
		if a, err = arch.ByGGUF(name); err != nil {
			return nil, err
		}
		if m.Cfg, err = configFromGGUF(src.Meta(), a); err != nil {
			return nil, err
		}
		for _, ti := range src.Tensors() {
			infos[ti.Name] = ti
			if hf, _, ok := a.HFName(ti.Name); ok {
				hfNames[ti.Name] = hf
			}
		}
		if m.Tok, err = tokenizer.FromGGUF(path); err != nil {
			return nil, err
		}
	case detect.HFFolder:
		folder, ok := src.(*safetensors.Folder)
		if !ok || folder.Config() == nil {
			return nil, fmt.Errorf("llama: %s has no config.json: %w", path, formats.ErrFormat)
		}
		if m.Cfg, a, err = configFromHF(folder.Config()); err != nil {
			return nil, err
		}
		// A bitsandbytes group is seen as its weight with the original
		// shape; its companions (X.weight.absmax, X.SCB, …) never take a
		// GGUF name, whatever the architecture table says.
		if bnb.all, err = quantize.BNBWeights(src); err != nil {
			return nil, fmt.Errorf("llama: %s: %w", path, err)
		}
		companion := map[string]bool{}
		for _, g := range bnb.all {
			for _, c := range g.Companions() {
				companion[c] = true
			}
		}
		for _, ti := range src.Tensors() {
			if companion[ti.Name] {
				continue
			}
			if g, _, _, ok := a.GGUFName(ti.Name); ok {
				if w, ok := bnb.all[ti.Name]; ok {
					ti.Shape = w.Shape
					bnb.byGGUF[g] = w
				}
				infos[g] = ti
				hfNames[g] = ti.Name
			}
		}
		if m.Tok, err = tokenizer.FromHFFolder(path); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("llama: %s: a lone safetensors file has no config; pass its folder: %w", path, formats.ErrUnsupported)
	}
	c := &m.Cfg

	m.W = &Weights{path: path, src: bsrc, infos: infos, bnb: bnb}
	vector, mat := m.W.Vector, m.W.Matrix
	lin := func(name string, n, k int) (*linear, error) {
		w, err := mat(name+".weight", n, k)
		if err != nil {
			return nil, err
		}
		l := &linear{w: w}
		if _, ok := infos[name+".bias"]; ok {
			if l.bias, err = vector(name+".bias", n); err != nil {
				return nil, err
			}
		}
		if hf, ok := hfNames[name+".weight"]; ok {
			_, p, _, _ := a.GGUFName(hf)
			m.byHF[hf] = hfRef{l: l, perm: p.Permute}
		}
		return l, nil
	}

	if ti, ok := infos["token_embd.weight"]; ok && len(ti.Shape) == 2 {
		c.Vocab = int(ti.Shape[0])
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	if m.embed, err = mat("token_embd.weight", c.Vocab, c.Hidden); err != nil {
		return nil, err
	}
	qDim, kvDim := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	m.layers = make([]layer, c.Layers)
	for i := range m.layers {
		l := &m.layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		if l.attnNorm, err = vector(p+"attn_norm.weight", c.Hidden); err != nil {
			return nil, err
		}
		if l.ffnNorm, err = vector(p+"ffn_norm.weight", c.Hidden); err != nil {
			return nil, err
		}
		for _, s := range []struct {
			dst  **linear
			name string
			n, k int
		}{
			{&l.q, "attn_q", qDim, c.Hidden}, {&l.k, "attn_k", kvDim, c.Hidden}, {&l.v, "attn_v", kvDim, c.Hidden},
			{&l.o, "attn_output", c.Hidden, qDim}, {&l.gate, "ffn_gate", c.FFN, c.Hidden},
			{&l.up, "ffn_up", c.FFN, c.Hidden}, {&l.down, "ffn_down", c.Hidden, c.FFN},
		} {
			if *s.dst, err = lin(p+s.name, s.n, s.k); err != nil {
				return nil, err
			}
		}
	}
	if m.outNorm, err = vector("output_norm.weight", c.Hidden); err != nil {
		return nil, err
	}
	if _, ok := infos["output.weight"]; ok {
		if m.output, err = lin("output", c.Vocab, c.Hidden); err != nil {
			return nil, err
		}
	} else {
		c.TiedEmbedding = true
		m.output = &linear{w: m.embed}
	}
	var factors []float32
	if _, ok := infos["rope_freqs.weight"]; ok {
		if factors, err = vector("rope_freqs.weight", c.HeadDim/2); err != nil {
			return nil, err
		}
		c.RopeScaling = "llama3"
	}
	maxPos := opts.MaxContext
	if maxPos <= 0 {
		maxPos = min(max(c.ContextLen, 1), 4096)
	}
	if f == detect.GGUF && factors != nil {
		c.RopeScaling = "" // the factors are the whole scaling
	}
	m.rope = kernels.NewRopeTable(c.HeadDim, maxPos, c.RopeFreqs(factors, f == detect.HFFolder))
	if factors != nil {
		c.RopeScaling = "llama3"
	}
	for _, ap := range opts.Adapters {
		ad, err := lora.Load(ap, lora.LoadOptions{Base: src})
		if err != nil {
			return nil, err
		}
		scale := opts.AdapterScale
		if scale == 0 {
			scale = 1
		}
		if err := m.addAdapter(ad, scale); err != nil {
			return nil, fmt.Errorf("%s: %w", ap, err)
		}
	}
	return m, nil
}

// MaxContext is the number of positions a State can hold.
func (m *Model) MaxContext() int { return m.rope.MaxPos() }

// State is one sequence's KV cache. It is not safe for concurrent use.
type State struct {
	m    *Model
	k, v [][]float32 // per layer, [ctx][KVHeads·HeadDim]
	n    int
	ctx  int

	x, xn, q, kk, vv, att, gate, up, logits, tmp []float32
	scores                                       [][]float32
}

// NewState returns an empty KV cache for up to ctx positions (0 or more
// than the model's MaxContext means MaxContext).
func (m *Model) NewState(ctx int) *State {
	if ctx <= 0 || ctx > m.MaxContext() {
		ctx = m.MaxContext()
	}
	kvDim := m.Cfg.KVHeads * m.Cfg.HeadDim
	s := &State{m: m, ctx: ctx, k: make([][]float32, m.Cfg.Layers), v: make([][]float32, m.Cfg.Layers)}
	for i := range s.k {
		s.k[i] = make([]float32, ctx*kvDim)
		s.v[i] = make([]float32, ctx*kvDim)
	}
	return s
}

// Len is the number of positions in the cache.
func (s *State) Len() int { return s.n }

// Cap is the number of positions the cache can hold.
func (s *State) Cap() int { return s.ctx }

// Reset empties the cache.
func (s *State) Reset() { s.n = 0 }

// Truncate drops the positions from n on.
func (s *State) Truncate(n int) {
	if n >= 0 && n < s.n {
		s.n = n
	}
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// Forward runs tokens at the next positions of the cache and returns the
// logits: [len(tokens)×Vocab] when all, else the Vocab logits of the last
// token. The returned slice is reused by the next call.
func (s *State) Forward(tokens []int32, all bool) ([]float32, error) {
	m, c := s.m, &s.m.Cfg
	t := len(tokens)
	if t == 0 {
		return nil, errors.New("llama: no tokens")
	}
	if s.n+t > s.ctx {
		return nil, fmt.Errorf("%w: %d + %d positions > %d", ErrContextFull, s.n, t, s.ctx)
	}
	for _, id := range tokens {
		if id < 0 || int(id) >= c.Vocab {
			return nil, fmt.Errorf("llama: token id %d outside the vocabulary of %d", id, c.Vocab)
		}
	}
	h, d := c.Hidden, c.HeadDim
	qDim, kvDim := c.Heads*d, c.KVHeads*d
	th := m.Threads
	s.x, s.xn = grow(s.x, t*h), grow(s.xn, t*h)
	s.q, s.att = grow(s.q, t*qDim), grow(s.att, t*qDim)
	s.kk, s.vv = grow(s.kk, t*kvDim), grow(s.vv, t*kvDim)
	s.gate, s.up = grow(s.gate, t*c.FFN), grow(s.up, t*c.FFN)
	x, xn := s.x, s.xn
	for i, id := range tokens {
		m.embed.Tile(x[i*h:(i+1)*h], int(id), int(id)+1, 0, h)
	}
	pos0 := s.n
	for li := range m.layers {
		l := &m.layers[li]
		for i := range t {
			kernels.RMSNorm(xn[i*h:(i+1)*h], x[i*h:(i+1)*h], l.attnNorm, c.Eps)
		}
		l.q.apply(s.q, qDim, xn, h, t, false, th, &s.tmp)
		l.k.apply(s.kk, kvDim, xn, h, t, false, th, &s.tmp)
		l.v.apply(s.vv, kvDim, xn, h, t, false, th, &s.tmp)
		kc, vc := s.k[li], s.v[li]
		for i := range t {
			m.rope.Apply(s.q[i*qDim:(i+1)*qDim], c.Heads, d, pos0+i, c.Interleaved)
			m.rope.Apply(s.kk[i*kvDim:(i+1)*kvDim], c.KVHeads, d, pos0+i, c.Interleaved)
		}
		copy(kc[pos0*kvDim:], s.kk[:t*kvDim])
		copy(vc[pos0*kvDim:], s.vv[:t*kvDim])
		s.attention(kc, vc, pos0, t)
		l.o.apply(x, h, s.att, qDim, t, true, th, &s.tmp)

		for i := range t {
			kernels.RMSNorm(xn[i*h:(i+1)*h], x[i*h:(i+1)*h], l.ffnNorm, c.Eps)
		}
		l.gate.apply(s.gate, c.FFN, xn, h, t, false, th, &s.tmp)
		l.up.apply(s.up, c.FFN, xn, h, t, false, th, &s.tmp)
		kernels.SiLUMul(s.gate, s.gate, s.up)
		l.down.apply(x, h, s.gate, c.FFN, t, true, th, &s.tmp)
	}
	s.n += t
	first := 0
	if !all {
		first = t - 1
	}
	rows := t - first
	for i := first; i < t; i++ {
		kernels.RMSNorm(xn[i*h:(i+1)*h], x[i*h:(i+1)*h], m.outNorm, c.Eps)
	}
	s.logits = grow(s.logits, rows*c.Vocab)
	m.output.apply(s.logits, c.Vocab, xn[first*h:], h, rows, false, th, &s.tmp)
	return s.logits, nil
}

// attention computes s.att[t×qDim] from s.q and the cache holding
// positions 0 … pos0+t−1: per head, softmax(q·Kᵀ/√D with the causal mask)·V.
func (s *State) attention(kc, vc []float32, pos0, t int) {
	c := &s.m.Cfg
	d := c.HeadDim
	qDim, kvDim := c.Heads*d, c.KVHeads*d
	group := c.Heads / c.KVHeads
	n := pos0 + t
	scale := float32(1 / math.Sqrt(float64(d)))
	workers := min(s.m.Threads, c.Heads)
	if t*n*d < 1<<14 {
		workers = 1
	}
	if len(s.scores) < workers {
		s.scores = make([][]float32, workers)
	}
	head := func(hd int, sc []float32) {
		g := hd / group
		q := s.q[hd*d:]
		kernels.SgemmNT(t, n, d, q, qDim, kc[g*d:], kvDim, sc, n, false, 1)
		for i := range t {
			row := sc[i*n : (i+1)*n]
			vis := pos0 + i + 1
			kernels.Scale(row[:vis], scale)
			kernels.SoftmaxCausal(row, vis)
		}
		kernels.SgemmNN(t, d, n, sc, n, vc[g*d:], kvDim, s.att[hd*d:], qDim, false, 1)
	}
	if workers == 1 {
		s.scores[0] = grow(s.scores[0], t*n)
		for hd := range c.Heads {
			head(hd, s.scores[0])
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		s.scores[w] = grow(s.scores[w], t*n)
		wg.Add(1)
		go func(sc []float32) {
			defer wg.Done()
			for hd := w; hd < c.Heads; hd += workers {
				head(hd, sc)
			}
		}(s.scores[w])
	}
	wg.Wait()
}
