package lora

import (
	"fmt"
	"math"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/quantize"
)

// MergeConfig says what Merge produces. Only Adapters is required.
type MergeConfig struct {
	// Adapters are merged one after the other, in this order.
	Adapters []*Adapter
	// Scales multiply each adapter's own scale (llama.cpp's
	// --lora-scaled); empty means 1 for every adapter, else one per
	// adapter.
	Scales []float64
	// DType is the type of the merged tensors: F32, F16 or BF16. Invalid
	// (the zero value) keeps a float base tensor's dtype; merged tensors of
	// a ggml-quantized base then become F16 (as llama-export-lora writes
	// them), and a bitsandbytes base becomes its quant_state dtype.
	DType formats.DType
	// Requantize writes every merged tensor of a quantized base in the
	// base tensor's own type (ggml type, or bitsandbytes type with the
	// same blocksize and double quantization); tensors the adapters do not
	// touch are copied byte for byte.
	Requantize bool
	// Quantize, when set, quantizes the merged model as quantize.Plan
	// does with that Type (`qtool quantize --pure --type`), in the same
	// pass (a quantize.ParseType name). The type's container must be the
	// base's: ggml types for a GGUF base, bitsandbytes types for a Hugging
	// Face one.
	Quantize string
	// Workers bounds the goroutines of one tensor; 0 means GOMAXPROCS.
	// The output does not depend on it.
	Workers int
	// Progress, when set, is called as base bytes are consumed with the
	// running total and the total.
	Progress func(done, total int64)
}

// Errors of Merge, besides those of the base model's readers.
var (
	// ErrMergeConfig: the settings contradict each other or the base
	// (--requantize of a float base, a --quantize type the base's
	// container cannot hold, a scale per adapter missing).
	ErrMergeConfig = formats.NewRule("invalid merge settings", formats.ErrUnsupported)
	// ErrAdapterMismatch: an adapter does not fit the base model (lint
	// errors: a target the base lacks, shapes that differ).
	ErrAdapterMismatch = formats.NewRule("adapter does not fit the base model", formats.ErrFormat)
)

// MergeOutput is a planned merged model: the tensors to write, each a
// lazy io.WriterTo computing its merge (or copying, dequantizing,
// quantizing) while it is written, and the metadata. A merged tensor of a
// float or ggml base written as a float dtype streams by chunks of rows
// (mergestream.go: memory of a few chunks of about a million values);
// otherwise memory while writing is about three float32-sized buffers of
// the tensor being merged (W, W' and its encoding). Tensors the adapters
// do not touch stream through, and a mapped base's pages are released
// once written. The base must stay open until the output is written.
//
// Hand Tensors and Meta to gguf.Write (Format GGUF) or to the safetensors
// writers (Format Safetensors; for a Hugging Face folder also write
// RewriteConfig(config.json)). Report is complete once every tensor has
// been written.
type MergeOutput struct {
	// Format is the container of Tensors and Meta: the base's.
	Format quantize.Container
	// Meta is the output metadata: the base's GGUF KVs unchanged, or its
	// safetensors __metadata__ (with Quantize, what quantize.Plan
	// writes). llama-export-lora appends general.file_type = 1
	// (MOSTLY_F16) whatever the tensors are; qtool keeps the base's KVs
	// as they are, so its merge of an F32 model still says F32.
	Meta *formats.Meta
	// Tensors are the output tensors, in write order. GGUF output is
	// sorted by name, as llama-export-lora writes it (with --quantize,
	// llama-quantize's order).
	Tensors []formats.Tensor
	// Lint is lora.Lint's report on each adapter against the base, taken
	// before merging; errors there stop Merge.
	Lint []LintReport
	// Notes are facts worth telling the user (a bitsandbytes base written
	// dequantized, merged ggml-quantized tensors written as floats).
	Notes []string

	m      *merger
	config interface {
		RewriteConfig([]byte) ([]byte, error)
	}
}

// RewriteConfig returns the config.json of a Hugging Face output: without
// quantization_config when a bitsandbytes base was dequantized, with the
// new one under Quantize, otherwise unchanged.
func (o *MergeOutput) RewriteConfig(config []byte) ([]byte, error) {
	if o.config == nil {
		return config, nil
	}
	return o.config.RewriteConfig(config)
}

// Report returns the merge report: one row per merged tensor, the
// measured fields filled as tensors are written.
func (o *MergeOutput) Report() MergeReport { return o.m.book.report() }

// TotalBytes is the total Progress reports: the base's tensor bytes.
func (o *MergeOutput) TotalBytes() int64 { return o.m.total }

// Source is a read-only view of the output as a formats.Source (for a
// conversion to the other container): each tensor's bytes are produced
// when first read, one tensor at a time, and tensors copied from the base
// are read from it.
func (o *MergeOutput) Source() formats.Source {
	config := o.m.configOf()
	if config != nil {
		if c, err := o.RewriteConfig(config); err == nil {
			config = c
		}
	}
	return newTensorSource(o.Meta, o.Tensors, config)
}

// Merge plans the merge of cfg.Adapters into base (a GGUF file or a
// Hugging Face model): every base weight an adapter targets becomes
//
//	W' = dequant(W) + Σ_i s_i · Scale_i · B_i·A_i
//
// computed in float32 as llama-export-lora does (delta.go), and is written
// in cfg.DType, re-quantized (cfg.Requantize) or quantized (cfg.Quantize).
// Pair targets are Hugging Face names; against a GGUF base they are mapped
// with the architecture's table, and B's rows are permuted for attn_q and
// attn_k (GGUF-LLAMACPP.md §2.2). Lint runs first, and any error it
// reports stops the merge (ErrAdapterMismatch).
//
// Nothing is merged until the tensors are written, except under
// double-quantized bitsandbytes re-quantization, whose file layout (the
// quant_state's nested offset) needs each merged tensor once up front.
func Merge(base formats.Source, cfg MergeConfig) (*MergeOutput, error) {
	qtype, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	m, err := newMerger(base, cfg)
	if err != nil {
		return nil, err
	}
	out := &MergeOutput{Format: m.container, m: m}
	if out.Lint, err = m.lint(); err != nil {
		return nil, err
	}
	if err := m.bind(); err != nil {
		return nil, err
	}
	if qtype != quantize.TypeNone {
		err = m.planQuantize(out, qtype)
	} else {
		err = m.planDirect(out)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// validate checks cfg on its own and parses Quantize.
func (c *MergeConfig) validate() (quantize.Type, error) {
	bad := func(format string, args ...any) (quantize.Type, error) {
		return quantize.TypeNone, fmt.Errorf("lora: merge: "+format+": %w", append(args, ErrMergeConfig)...)
	}
	if len(c.Adapters) == 0 {
		return bad("no adapter")
	}
	for i, ad := range c.Adapters {
		if ad == nil {
			return bad("adapter %d is nil", i+1)
		}
	}
	if len(c.Scales) != 0 && len(c.Scales) != len(c.Adapters) {
		return bad("%d scales for %d adapters (give one per adapter, or none)", len(c.Scales), len(c.Adapters))
	}
	for i, s := range c.Scales {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return bad("scale %d is %v", i+1, s)
		}
	}
	switch c.DType {
	case formats.Invalid, formats.F32, formats.F16, formats.BF16:
	default:
		return bad("output dtype %v: want F32, F16 or BF16", c.DType)
	}
	if c.Quantize == "" {
		return quantize.TypeNone, nil
	}
	if c.Requantize || c.DType != formats.Invalid {
		return bad("a --quantize type excludes --requantize and --dtype")
	}
	t, err := quantize.ParseType(c.Quantize)
	if err != nil {
		return bad("%v", err)
	}
	if !t.Quantized() {
		return bad("--quantize %s is a float type; use --dtype", t)
	}
	return t, nil
}

// merger holds what the planned tensors share.
type merger struct {
	base      formats.Source
	cfg       MergeConfig
	container quantize.Container
	workers   int
	entries   []*entry // the base's logical tensors, in base order
	byName    map[string]*entry
	bnb       bool                                        // the base holds bitsandbytes groups
	deq       map[formats.DType]*quantize.Output          // Dequant plans of a bitsandbytes base
	deqT      map[formats.DType]map[string]formats.Tensor // their tensors by name
	book      *reportBook
	slot      slot // the tensor the re-quantized groups' sources hold
	total     int64
	done      atomic.Int64
	chunks    sync.Pool // *chunkBuf of streamed tensors, reused
	scratch   sync.Pool // *rowScratch of their workers
}

// entry is one logical tensor of the base: a stored tensor, or one
// bitsandbytes group (X.weight and its companions) seen as its weight.
type entry struct {
	name    string
	info    formats.TensorInfo   // the stored tensor (a group's packed weight)
	shape   []int64              // the logical shape
	members []formats.TensorInfo // the stored tensors it covers
	bytes   int64                // their total size
	group   *bnbGroup            // a bitsandbytes group, or nil
	terms   []term               // the adapters' updates; nil when untouched
	target  string               // the Hugging Face name adapters use
	row     int                  // its row of the report, when merged
	measure quantSpec            // what survived is measured against (set before writing)
}

// bnbGroup describes a bitsandbytes-quantized weight of the base.
type bnbGroup struct {
	spec  quantSpec           // type, blocksize, double quantization
	dtype formats.DType       // the quant_state dtype (the weights' dtype before quantization)
	w     *quantize.BNBWeight // the stored group, decoded by DequantizeRange
}

// stored describes how an entry is stored, for the report.
func (e *entry) stored() quantSpec {
	if e.group != nil {
		return e.group.spec
	}
	return quantSpec{dtype: e.info.DType}
}

func newMerger(base formats.Source, cfg MergeConfig) (*merger, error) {
	m := &merger{base: base, cfg: cfg, workers: cfg.Workers, byName: map[string]*entry{}, book: &reportBook{}}
	if m.workers <= 0 {
		m.workers = runtime.GOMAXPROCS(0)
	}
	m.container = containerOf(base)
	if err := m.scan(); err != nil {
		return nil, err
	}
	for _, e := range m.entries {
		m.total += e.bytes
	}
	return m, nil
}

// containerOf tells a GGUF source from a safetensors one: GGUF metadata
// has typed values and general.architecture; safetensors' are strings.
func containerOf(src formats.Source) quantize.Container {
	for _, ti := range src.Tensors() {
		if ti.DType.Quantized() {
			return quantize.GGUF
		}
	}
	meta := src.Meta()
	if meta.Has("general.architecture") {
		return quantize.GGUF
	}
	for _, kv := range meta.KVs() {
		if kv.Value.Type != formats.TypeString {
			return quantize.GGUF
		}
	}
	return quantize.Safetensors
}

// scan lists the base's logical tensors, recognising bitsandbytes groups
// through quantize.BNBWeights (which reads and checks their quant states).
func (m *merger) scan() error {
	infos := m.base.Tensors()
	var groups map[string]*quantize.BNBWeight
	member := map[string]string{} // companion → weight
	if m.container == quantize.Safetensors {
		var err error
		if groups, err = quantize.BNBWeights(m.base); err != nil {
			return err
		}
		m.bnb = len(groups) > 0
		for name, w := range groups {
			for _, c := range w.Companions() {
				member[c] = name
			}
		}
	}
	for _, ti := range infos {
		if _, ok := member[ti.Name]; ok {
			continue
		}
		e := &entry{name: ti.Name, info: ti, shape: ti.Shape, members: []formats.TensorInfo{ti}, row: -1}
		if w := groups[ti.Name]; w != nil {
			e.group = newBNBGroup(w)
			e.shape = w.Shape
			for _, c := range infos {
				if member[c.Name] == ti.Name {
					e.members = append(e.members, c)
				}
			}
		}
		for _, mb := range e.members {
			e.bytes += mb.Size
		}
		m.entries = append(m.entries, e)
		m.byName[e.name] = e
	}
	return nil
}

// newBNBGroup keeps what re-quantizing a group needs: its type, blocksize,
// double quantization, and the dtype its quant_state records (LLM.int8()
// quantizes the fp16 weight).
func newBNBGroup(w *quantize.BNBWeight) *bnbGroup {
	g := &bnbGroup{spec: quantSpec{bnb: w.Type, dq: w.DoubleQuant, block: w.Blocksize}, dtype: formats.F16, w: w}
	switch w.DType {
	case "float32":
		g.dtype = formats.F32
	case "bfloat16":
		g.dtype = formats.BF16
	}
	return g
}

// dequantPlan returns (creating it once) the quantize.Dequant plan of a
// bitsandbytes base to dtype d.
func (m *merger) dequantPlan(d formats.DType) (*quantize.Output, error) {
	if o := m.deq[d]; o != nil {
		return o, nil
	}
	o, err := quantize.Dequant(m.base, quantize.DequantConfig{DType: d, Format: quantize.Safetensors, Workers: m.workers})
	if err != nil {
		return nil, err
	}
	if m.deq == nil {
		m.deq, m.deqT = map[formats.DType]*quantize.Output{}, map[formats.DType]map[string]formats.Tensor{}
	}
	byName := map[string]formats.Tensor{}
	for _, t := range o.Tensors {
		byName[t.Name] = t
	}
	m.deq[d], m.deqT[d] = o, byName
	return o, nil
}

// lint runs Lint on every adapter and fails on its errors (quoting the
// first few).
func (m *merger) lint() ([]LintReport, error) {
	const quoted = 3
	var reps []LintReport
	var errs []string
	n := 0
	for i, ad := range m.cfg.Adapters {
		rep := Lint(ad, m.base)
		reps = append(reps, rep)
		for _, p := range rep.Problems {
			if !strings.EqualFold(p.Severity, "error") {
				continue
			}
			if n++; n <= quoted {
				what := p.Message
				if p.Target != "" {
					what = p.Target + ": " + what
				}
				errs = append(errs, fmt.Sprintf("adapter %d: %s", i+1, what))
			}
		}
	}
	if n == 0 {
		return reps, nil
	}
	msg := strings.Join(errs, "; ")
	if n > quoted {
		msg += fmt.Sprintf(" (and %d more; see qtool lint-adapter)", n-quoted)
	}
	return reps, fmt.Errorf("lora: merge: lint: %s: %w", msg, ErrAdapterMismatch)
}

// configOf is the optional config.json of a Hugging Face source.
func (m *merger) configOf() []byte {
	if cs, ok := m.base.(interface{ Config() []byte }); ok {
		return cs.Config()
	}
	return nil
}

// bind attaches every pair to its base tensor, checking names and shapes.
func (m *merger) bind() error {
	names, err := m.namer()
	if err != nil {
		return err
	}
	for ai, ad := range m.cfg.Adapters {
		us := 1.0
		if len(m.cfg.Scales) > 0 {
			us = m.cfg.Scales[ai]
		}
		for pi := range ad.Pairs {
			p := &ad.Pairs[pi]
			if err := p.Validate(); err != nil {
				return fmt.Errorf("lora: merge: adapter %d: %v: %w", ai+1, err, ErrAdapterMismatch)
			}
			name, bRow, err := names(p)
			if err != nil {
				return fmt.Errorf("lora: merge: adapter %d: %w", ai+1, err)
			}
			e := m.byName[name]
			if e == nil {
				return fmt.Errorf("lora: merge: adapter %d: target %s (%s) is not in the base model: %w", ai+1, p.Target, name, ErrAdapterMismatch)
			}
			if len(e.shape) != 2 || e.shape[0] != int64(p.Out) || e.shape[1] != int64(p.In) {
				return fmt.Errorf("lora: merge: adapter %d: %s: base shape %v, the pair updates [%d %d]: %w", ai+1, name, e.shape, p.Out, p.In, ErrAdapterMismatch)
			}
			if e.group == nil && !mergeable(e.info.DType) {
				return fmt.Errorf("lora: merge: %s: base dtype %v cannot be dequantized: %w", name, e.info.DType, formats.ErrUnsupported)
			}
			s := float32(us * p.Scale)
			if math.IsInf(float64(s), 0) {
				return fmt.Errorf("lora: merge: adapter %d: %s: scale %v overflows float32: %w", ai+1, p.Target, us*p.Scale, ErrMergeConfig)
			}
			e.terms = append(e.terms, term{pair: p, scale: s, bRow: bRow})
			e.target = p.Target
		}
	}
	return nil
}

// mergeable reports whether a stored dtype decodes to float32.
func mergeable(d formats.DType) bool {
	return d == formats.F64 || quantize.GGMLDequantizable(d)
}

// namer returns the function mapping a pair to its base tensor: the
// identity for a Hugging Face base; for a GGUF base the architecture's
// name table and, for q/k, the Q/K row permutation of B.
func (m *merger) namer() (func(p *Pair) (string, func(int64) int64, error), error) {
	if m.container != quantize.GGUF {
		return func(p *Pair) (string, func(int64) int64, error) { return p.Target, nil, nil }, nil
	}
	meta := m.base.Meta()
	name, _ := meta.String("general.architecture")
	a, err := arch.ByGGUF(name)
	if err != nil {
		return nil, fmt.Errorf("lora: merge: base model: %w", err)
	}
	heads := func(key string, def int64) int64 {
		if v, ok := meta.Uint(a.Name + "." + key); ok && v > 0 && v < 1<<31 {
			return int64(v)
		}
		return def
	}
	nHead := heads("attention.head_count", 0)
	nHeadKV := heads("attention.head_count_kv", nHead)
	return func(p *Pair) (string, func(int64) int64, error) {
		g, pair, _, ok := a.GGUFName(p.Target)
		if !ok {
			return "", nil, fmt.Errorf("target %s has no GGUF name for %s: %w", p.Target, a.Name, ErrAdapterMismatch)
		}
		if pair.Permute == arch.NoPermutation {
			return g, nil, nil
		}
		n := pair.Permute.Heads(nHead, nHeadKV)
		q, err := arch.NewQKRows(int64(p.Out), n)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %v (head counts %d/%d): %w", g, err, nHead, nHeadKV, ErrAdapterMismatch)
		}
		return g, q.HFRow, nil
	}, nil
}

// planDirect plans the float / re-quantized output in the base's container.
func (m *merger) planDirect(out *MergeOutput) error {
	if m.cfg.Requantize {
		quantized := false
		for _, e := range m.entries {
			quantized = quantized || (e.terms != nil && (e.group != nil || e.info.DType.Quantized()))
		}
		if !quantized {
			return fmt.Errorf("lora: merge: --requantize: the tensors the adapters change are not quantized in the base; use --dtype or --quantize: %w", ErrMergeConfig)
		}
	}
	entries := m.entries
	if m.container == quantize.GGUF {
		entries = append([]*entry(nil), entries...)
		sort.SliceStable(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
		out.Meta = m.base.Meta().Clone()
	} else {
		out.Meta = m.base.Meta().Clone()
		if !out.Meta.Has("format") {
			out.Meta.Set("format", formats.ValString("pt"))
		}
	}
	groups := 0
	for _, e := range entries {
		var ts []formats.Tensor
		var err error
		switch {
		case e.terms != nil:
			ts, err = m.mergedTensors(e)
		case e.group != nil && !m.cfg.Requantize:
			var t formats.Tensor
			t, err = m.dequantTensor(e, m.groupDType(e))
			ts = []formats.Tensor{t}
		default:
			ts = m.copies(e)
		}
		if err != nil {
			return err
		}
		if e.group != nil {
			groups++
		}
		out.Tensors = append(out.Tensors, ts...)
	}
	if m.bnb && !m.cfg.Requantize {
		d, err := m.dequantPlan(formats.F32)
		if err != nil {
			return err
		}
		out.config = d // drops quantization_config
		out.Notes = append(out.Notes, fmt.Sprintf("the bitsandbytes base is written dequantized (%d quantized weights, quantization_config removed); --requantize keeps its quantization", groups))
	}
	if m.container == quantize.GGUF && !m.cfg.Requantize {
		for _, e := range m.entries {
			if e.terms != nil && e.info.DType.Quantized() {
				out.Notes = append(out.Notes, fmt.Sprintf("merged %s tensors are written as %s; --requantize keeps the base's types", strings.ToLower(e.info.DType.String()), strings.ToLower(m.outFloat(e).String())))
				break
			}
		}
	}
	return nil
}

// outFloat is the float dtype a merged entry is written in without
// re-quantization.
func (m *merger) outFloat(e *entry) formats.DType {
	switch {
	case m.cfg.DType != formats.Invalid:
		return m.cfg.DType
	case e.group != nil:
		return e.group.dtype
	case e.info.DType == formats.F32 || e.info.DType == formats.F16 || e.info.DType == formats.BF16:
		return e.info.DType
	case e.info.DType.Quantized():
		return formats.F16 // llama-export-lora
	}
	return formats.F32
}

// groupDType is the dtype an untouched bitsandbytes group is dequantized to.
func (m *merger) groupDType(e *entry) formats.DType {
	if m.cfg.DType != formats.Invalid {
		return m.cfg.DType
	}
	return e.group.dtype
}

// mergedTensors plans the output tensor(s) of a merged entry.
func (m *merger) mergedTensors(e *entry) ([]formats.Tensor, error) {
	stored := e.stored()
	switch {
	case m.cfg.Requantize && e.group != nil:
		return m.requantizeGroup(e)
	case m.cfg.Requantize && e.info.DType.Quantized():
		if !quantize.GGMLQuantizable(e.info.DType) {
			return nil, fmt.Errorf("lora: merge: %s: qtool cannot quantize to %v; use --dtype or --quantize: %w", e.name, e.info.DType, formats.ErrUnsupported)
		}
		out := quantSpec{dtype: e.info.DType}
		e.measure = out
		m.book.add(e, stored, out)
		return []formats.Tensor{m.mergedTensor(e, out, true)}, nil
	}
	out := quantSpec{dtype: m.outFloat(e)}
	e.measure = out
	m.book.add(e, stored, out)
	// The stored values are exactly representable in the output when it
	// has the base's float dtype: survived compares with them directly.
	return []formats.Tensor{m.mergedTensor(e, out, out == stored)}, nil
}

// mergedTensor is the lazy output tensor of a merged entry encoded as out.
func (m *merger) mergedTensor(e *entry, out quantSpec, refIsBase bool) formats.Tensor {
	size, _ := formats.DataSize(out.dtype, e.shape)
	info := formats.TensorInfo{Name: e.name, DType: out.dtype, Shape: e.shape, Size: size, File: e.info.File}
	return formats.Tensor{TensorInfo: info, Data: &mergedData{m: m, e: e, out: out.dtype, refIsBase: refIsBase, count: true}}
}

// requantizeGroup plans a merged bitsandbytes group re-quantized with the
// base's settings: quantize.Plan on a one-tensor source holding the merged
// weight in the quant_state dtype, so the layout is exactly what qtool
// quantize writes (and what transformers loads).
func (m *merger) requantizeGroup(e *entry) ([]formats.Tensor, error) {
	g := e.group
	e.measure = g.spec
	m.book.add(e, g.spec, g.spec)
	size, _ := formats.DataSize(g.dtype, e.shape)
	w := formats.Tensor{
		TensorInfo: formats.TensorInfo{Name: e.name, DType: g.dtype, Shape: e.shape, Size: size},
		Data:       &mergedData{m: m, e: e, out: g.dtype, refIsBase: true},
	}
	cfg := quantize.Config{
		Type: g.spec.bnb, Format: quantize.Safetensors, DoubleQuant: g.spec.dq, Workers: m.workers,
		TypeFor: []quantize.TypeRule{{Pattern: regexp.MustCompile("^" + regexp.QuoteMeta(e.name) + "$"), Type: g.spec.bnb}},
	}
	if g.spec.bnb != quantize.TypeInt8 {
		cfg.Block = g.spec.block
	}
	src := newTensorSource(formats.NewMeta(), []formats.Tensor{w}, nil)
	src.slot = &m.slot // one merged weight in memory for all groups
	o, err := quantize.Plan(src, cfg)
	if err != nil {
		return nil, fmt.Errorf("lora: merge: re-quantize %s: %w", e.name, err)
	}
	if ds := o.Decisions(); len(ds) != 1 || ds[0].Type != g.spec.bnb {
		return nil, fmt.Errorf("lora: merge: re-quantize %s: the quantizer kept it as it is: %w", e.name, formats.ErrUnsupported)
	}
	src.reset()
	ts := append([]formats.Tensor(nil), o.Tensors...)
	// Progress: the group's base bytes, once its packed weight is written.
	for i := range ts {
		if ts[i].Name == e.name {
			ts[i].Data = &progressData{inner: ts[i].Data, m: m, n: e.bytes}
		}
	}
	return ts, nil
}

// dequantTensor is an untouched bitsandbytes group written dequantized.
func (m *merger) dequantTensor(e *entry, d formats.DType) (formats.Tensor, error) {
	if _, err := m.dequantPlan(d); err != nil {
		return formats.Tensor{}, err
	}
	t := m.deqT[d][e.name]
	t.File = e.info.File
	t.Data = &progressData{inner: t.Data, m: m, n: e.bytes}
	return t, nil
}

// copies are an untouched entry's stored tensors, copied byte for byte.
func (m *merger) copies(e *entry) []formats.Tensor {
	ts := make([]formats.Tensor, len(e.members))
	for i, ti := range e.members {
		ts[i] = formats.Tensor{TensorInfo: ti, Data: &copyData{m: m, src: m.base, ti: ti, count: true}}
	}
	return ts
}

// floatTensor is an entry as float: copied when stored as F32/F16/BF16 and
// untouched, else computed as F32 (merged, dequantized).
func (m *merger) floatTensor(e *entry) formats.Tensor {
	if e.terms == nil && e.group == nil && !e.info.DType.Quantized() {
		return formats.Tensor{TensorInfo: e.info, Data: &copyData{m: m, src: m.base, ti: e.info}}
	}
	size, _ := formats.DataSize(formats.F32, e.shape)
	info := formats.TensorInfo{Name: e.name, DType: formats.F32, Shape: e.shape, Size: size, File: e.info.File}
	return formats.Tensor{TensorInfo: info, Data: &mergedData{m: m, e: e, out: formats.F32}}
}

// planQuantize plans --quantize: quantize.Plan over the merged model seen
// as float tensors.
func (m *merger) planQuantize(out *MergeOutput, t quantize.Type) error {
	want := quantize.GGUF
	if t.BNB() {
		want = quantize.Safetensors
	}
	if want != m.container {
		return fmt.Errorf("lora: merge: --quantize %s writes %s, but the base is %s (merge in the base's format, then convert): %w", t, want, m.container, ErrMergeConfig)
	}
	var ts []formats.Tensor
	for _, e := range m.entries {
		ts = append(ts, m.floatTensor(e))
	}
	src := newTensorSource(m.base.Meta(), ts, m.configOf())
	cfg := quantize.Config{Type: t, Format: want, Workers: m.workers, Progress: m.cfg.Progress}
	o, err := quantize.Plan(src, cfg)
	if err != nil {
		return fmt.Errorf("lora: merge: --quantize %s: %w", t, err)
	}
	src.reset() // reads made while planning must not hide a tensor's first write
	for _, d := range o.Decisions() {
		e := m.byName[d.Name]
		if e == nil || e.terms == nil {
			continue
		}
		spec := quantSpec{dtype: formats.F32}
		switch {
		case d.Type.BNB():
			spec = quantSpec{bnb: d.Type}
			switch d.Type {
			case quantize.TypeNF4, quantize.TypeFP4:
				spec.block = quantize.DefaultBlocksize4Bit
			case quantize.TypeInt8Block:
				spec.block = quantize.DefaultBlocksize8
			}
		case d.Type != quantize.TypeNone:
			spec = quantSpec{dtype: d.Type.DType()}
		}
		e.measure = spec
		m.book.add(e, e.stored(), spec)
	}
	out.Meta, out.Tensors, out.config = o.Meta, o.Tensors, o
	m.total = o.TotalBytes()
	return nil
}
