package quantize

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/qtool-dev/qtool/formats"
)

// Output is a planned model: the tensors to write, in order, each a lazy
// io.WriterTo that reads its source tensor and quantizes (or casts, or
// dequantizes) it while it is written, plus the output metadata and one
// Decision per source tensor. Memory while writing is one chunk of one
// tensor (and at most one tensor's packed output), never the model.
//
// Hand Tensors and Meta to gguf.Write (Format GGUF) or to
// safetensors.WriteMeta / WriteFolder (Format Safetensors); for a Hugging
// Face folder also write RewriteConfig(config.json). The source must stay
// open until the write is over.
type Output struct {
	// Format is the container the tensors and Meta are for.
	Format Container
	// Meta is the output metadata: GGUF KVs, or safetensors __metadata__.
	Meta *formats.Meta
	// Tensors are the output tensors in write order.
	Tensors []formats.Tensor

	src      formats.Source
	workers  int
	budget   int64            // working-memory bound (Config.MaxMemory)
	needs    []memNeed        // what each source tensor needs of it
	chunk    map[string]int64 // elements per chunk, by source tensor
	spans    []int            // output tensors per decision, in order
	stats    bool
	progress func(done, total int64)
	total    int64
	done     atomic.Int64

	mu        sync.Mutex
	decisions []Decision

	hf hfConfigEdit // what RewriteConfig does to config.json
}

// chunkElems is the most elements one chunk of a tensor holds while it is
// converted (4 MiB of float32); a memory bound may make chunks smaller.
const chunkElems = 1 << 20

// Plan decides, for every tensor of src, whether and how it is quantized
// (see policy.go), and returns the lazy output. Nothing is written; for
// double quantization Plan reads each quantized weight once to compute
// its nested offset, which the quant_state JSON (whose length the file
// layout needs) holds. Every tensor's memory need is checked against
// Config.MaxMemory before any data is read.
//
// GGUF output follows llama-quantize: with Config.Mix its default type
// mix (mix.go), else every weight of Type (--pure); the ggml types; the
// input KVs in order followed by general.quantization_version = 2 and
// general.file_type; and its tensor order (non-"blk." tensors by name,
// then each layer's by name). Safetensors output uses bitsandbytes'
// layout (bnblayout.go).
func Plan(src formats.Source, cfg Config) (*Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := cfg.container()
	o := newOutput(src, f, cfg.Workers, cfg.MaxMemory, cfg.Stats, cfg.Progress)
	infos := src.Tensors()
	var mix *mixer
	if f == Safetensors {
		if name, ok := bnbQuantized(infos); ok {
			return nil, fmt.Errorf("quantize: tensor %q: the model is already quantized with bitsandbytes; run 'qtool dequantize' first: %w", name, ErrAlreadyQuantized)
		}
	} else {
		infos = llamaQuantizeOrder(infos)
		if cfg.Mix {
			mix = newMixer(cfg.Type, infos, src.Meta())
		}
	}
	var bnb *bnbSettings
	if f == Safetensors {
		bnb = &bnbSettings{typ: cfg.Type, block: cfg.block(cfg.Type), dq: cfg.DoubleQuant}
	}
	// Decide every tensor and check the memory bound before reading any
	// data (double quantization reads weights while planning).
	choices := make([]choice, len(infos))
	for i, ti := range infos {
		choices[i] = cfg.decideWith(ti, f, mix)
		o.needs = append(o.needs, planNeed(ti, choices[i], cfg))
	}
	if err := o.fitMemory(); err != nil {
		return nil, err
	}
	for i, ti := range infos {
		ch := choices[i]
		var err error
		switch {
		case ch.typ == TypeNone:
			o.add(decisionFor(ti, ch, ti.DType.String()), o.copied(ti))
		case ch.typ.BNB():
			err = o.addBNB(ti, ch, bnb)
		default:
			to := ch.typ.DType()
			o.add(decisionFor(ti, ch, to.String()), o.converted(ti, to))
		}
		if err != nil {
			return nil, err
		}
		if f == Safetensors && !ch.typ.BNB() && effectiveRank(ti.Shape) >= 2 &&
			strings.HasSuffix(ti.Name, ".weight") && !isTokenEmbedding(ti.Name) {
			bnb.skip = append(bnb.skip, strings.TrimSuffix(ti.Name, ".weight"))
		}
	}
	if f == GGUF {
		o.Meta = ggufQuantizedMeta(src.Meta(), cfg.Type.FileType())
	} else {
		o.Meta = safetensorsMeta(src.Meta())
		o.hf = hfConfigEdit{set: bnb}
	}
	return o, nil
}

// Validate checks cfg without a source: the type against the output
// container, the per-tensor rules, the blocksize and double quantization.
// Every error wraps ErrTypeNotStorable or ErrBadConfig.
func (c Config) Validate() error { return c.validate() }

func newOutput(src formats.Source, f Container, workers int, budget int64, stats bool, progress func(int64, int64)) *Output {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if budget <= 0 {
		budget = DefaultMaxMemory
	}
	return &Output{Format: f, src: src, workers: workers, budget: budget, stats: stats, progress: progress}
}

// decisionFor starts the Decision of a tensor.
func decisionFor(ti formats.TensorInfo, ch choice, to string) Decision {
	n, _ := ti.NumElements()
	return Decision{
		Name: ti.Name, From: ti.DType.String(), To: to,
		Type: ch.typ, Asked: ch.asked, Fallback: ch.fallback, Kept: ch.kept, Rule: ch.rule,
		Params: n, BytesIn: ti.Size,
	}
}

// add records a decision and its output tensors; the tensors' writers
// refer to the decision by index.
func (o *Output) add(d Decision, ts ...formats.Tensor) {
	for _, t := range ts {
		d.BytesOut += t.Size
	}
	o.decisions = append(o.decisions, d)
	o.spans = append(o.spans, len(ts))
	o.Tensors = append(o.Tensors, ts...)
	o.total += d.BytesIn
}

// Decisions returns a copy of the per-tensor decisions, in output order.
// The error fields are filled as tensors are written.
func (o *Output) Decisions() []Decision {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Decision(nil), o.decisions...)
}

// Totals sums Decisions.
func (o *Output) Totals() Totals { return SumDecisions(o.Decisions()) }

// TotalBytes is the source bytes the plan reads, the total reported to
// Config.Progress.
func (o *Output) TotalBytes() int64 { return o.total }

// measured stores the error statistics of decision i.
func (o *Output) measured(i int, s *errorStats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := &o.decisions[i]
	d.Measured, d.RMSE, d.MaxAbsErr = true, s.rmse(), s.maxAbs
}

// advance reports n more source bytes consumed.
func (o *Output) advance(n int64) {
	done := o.done.Add(n)
	if o.progress != nil {
		o.progress(done, o.total)
	}
}

// ggufQuantizedMeta is llama-quantize's KV list: the input's, then
// general.quantization_version = 2 and general.file_type (a key that
// existed moves to the end).
func ggufQuantizedMeta(in *formats.Meta, ftype uint32) *formats.Meta {
	m := in.Clone()
	m.Delete(keyQuantVersion)
	m.Delete(keyFileType)
	m.Set(keyQuantVersion, formats.ValUint32(2))
	m.Set(keyFileType, formats.ValUint32(ftype))
	return m
}

// GGUF keys Plan and Dequant maintain.
const (
	keyQuantVersion = "general.quantization_version"
	keyFileType     = "general.file_type"
)

// safetensorsMeta keeps the input's __metadata__ and makes sure it says
// {"format": "pt"}, which transformers requires of bitsandbytes files.
func safetensorsMeta(in *formats.Meta) *formats.Meta {
	m := formats.NewMeta()
	for _, kv := range in.KVs() {
		if _, ok := kv.Value.V.(string); ok {
			m.Set(kv.Key, kv.Value)
		}
	}
	if !m.Has("format") {
		m.Set("format", formats.ValString("pt"))
	}
	return m
}

// llamaQuantizeOrder sorts tensors as llama-quantize writes them: tensors
// outside the blocks by name, then blk.0.*, blk.1.*, … (numeric layer
// order), names byte-sorted within a layer (shared/goldens/ggml/README.md).
func llamaQuantizeOrder(in []formats.TensorInfo) []formats.TensorInfo {
	out := append([]formats.TensorInfo(nil), in...)
	sort.SliceStable(out, func(i, j int) bool {
		li, lj := layerOf(out[i].Name), layerOf(out[j].Name)
		if li != lj {
			return li < lj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// layerOf is N for "blk.N.…", and -1 for other names.
func layerOf(name string) int64 {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1
	}
	num, _, ok := strings.Cut(rest, ".")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// copied is a tensor written unchanged from the source.
func (o *Output) copied(ti formats.TensorInfo) formats.Tensor {
	return formats.Tensor{TensorInfo: outInfo(ti.Name, ti.DType, ti.Shape), Data: &copyWriter{o: o, ti: ti}}
}

// converted is a tensor quantized to a ggml type or cast to a float type,
// element for element in the same shape.
func (o *Output) converted(ti formats.TensorInfo, to formats.DType) formats.Tensor {
	return formats.Tensor{
		TensorInfo: outInfo(ti.Name, to, ti.Shape),
		Data:       &convertWriter{o: o, i: len(o.decisions), ti: ti, to: to},
	}
}

// outInfo describes an output tensor; sizes of planned shapes always fit.
func outInfo(name string, d formats.DType, shape []int64) formats.TensorInfo {
	size, _ := formats.DataSize(d, shape)
	return formats.TensorInfo{Name: name, DType: d, Shape: append([]int64(nil), shape...), Size: size}
}

var (
	_ io.WriterTo = (*copyWriter)(nil)
	_ io.WriterTo = (*convertWriter)(nil)
	_ io.WriterTo = (*bnbPart)(nil)
	_ io.WriterTo = (*dequantWriter)(nil)
)

// copyWriter copies a source tensor's bytes.
type copyWriter struct {
	o  *Output
	ti formats.TensorInfo
}

func (c *copyWriter) WriteTo(w io.Writer) (int64, error) {
	var written int64
	err := c.o.eachRaw(c.ti, 1, true, func(raw []byte, _, _ int64) error {
		n, err := w.Write(raw)
		written += int64(n)
		return err
	})
	return written, err
}

// convertWriter quantizes a tensor to a ggml type, or casts it to a float
// type, chunk by chunk of whole rows.
type convertWriter struct {
	o  *Output
	i  int // decision index
	ti formats.TensorInfo
	to formats.DType
}

func (c *convertWriter) WriteTo(w io.Writer) (int64, error) {
	if c.to == c.ti.DType {
		// A fallback to the dtype the tensor already has.
		return (&copyWriter{o: c.o, ti: c.ti}).WriteTo(w)
	}
	var (
		written int64
		out     []byte
		back    []float32
		st      errorStats
	)
	row := rowLength(c.ti.Shape)
	err := c.o.eachChunk(c.ti, row, func(x []float32, _ int64) error {
		n := encodedSize(c.to, len(x))
		out = grow(out, n)
		if err := c.encode(out, x); err != nil {
			return tensorError(c.ti.Name, err)
		}
		if c.o.stats {
			back = growF(back, len(x))
			if err := DequantizeGGML(c.to, back, out); err != nil {
				return tensorError(c.ti.Name, err)
			}
			st.add(x, back)
		}
		k, err := w.Write(out)
		written += int64(k)
		return err
	})
	if err == nil && c.o.stats {
		c.o.measured(c.i, &st)
	}
	return written, err
}

// encode quantizes or casts x into out.
func (c *convertWriter) encode(out []byte, x []float32) error {
	if c.to.Quantized() {
		return QuantizeGGMLParallel(c.to, out, x, c.o.workers)
	}
	return FromFloat32(out, x, c.to)
}

// encodedSize is the bytes n elements take in d (n whole blocks).
func encodedSize(d formats.DType, n int) int {
	return n / int(d.BlockSize()) * int(d.BlockBytes())
}

// tensorError names the tensor in a kernel's error.
func tensorError(name string, err error) error {
	return &formats.FormatError{Offset: -1, Tensor: name, Err: err}
}

// eachChunk decodes a source tensor to float32 in chunks of whole units
// (rows or blocks; unit must be a multiple of the dtype's block) of about
// chunkElems elements, and calls fn with each chunk and the index of its
// first element. Progress is reported as the chunks are consumed.
func (o *Output) eachChunk(ti formats.TensorInfo, unit int64, fn func(x []float32, off int64) error) error {
	var buf []float32
	return o.eachRaw(ti, unit, true, func(raw []byte, off, n int64) error {
		buf = growF(buf, int(n))
		if err := o.decodeParallel(buf, raw, ti.DType); err != nil {
			return tensorError(ti.Name, err)
		}
		return fn(buf, off)
	})
}

// minParallelDecode is the fewest elements per goroutine worth a split.
const minParallelDecode = 1 << 16

// workersFor is how many goroutines a chunk of n elements is split over:
// the plan's workers, fewer when the chunk (sized by the memory bound) is
// too small to give each at least minParallelDecode elements.
func (o *Output) workersFor(n int) int {
	return max(1, min(o.workers, n/minParallelDecode))
}

// decodeParallel is decodeFloats split over the plan's workers at block
// boundaries (widening f16 is as costly as quantizing to Q8_0).
func (o *Output) decodeParallel(dst []float32, raw []byte, d formats.DType) error {
	bs, bb := int(d.BlockSize()), int(d.BlockBytes())
	nb := len(dst) / bs
	workers := o.workersFor(len(dst))
	if workers <= 1 {
		return decodeFloats(dst, raw, d)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		b0, b1 := nb*w/workers, nb*(w+1)/workers
		wg.Go(func() { errs[w] = decodeFloats(dst[b0*bs:b1*bs], raw[b0*bb:b1*bb], d) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// decodeFloats widens raw values of dtype d (float or ggml block type).
func decodeFloats(dst []float32, raw []byte, d formats.DType) error {
	if d.Quantized() {
		return DequantizeGGML(d, dst, raw)
	}
	return ToFloat32(dst, raw, d)
}

// eachRaw calls fn with the bytes of successive chunks of whole units of
// a source tensor, the index of the chunk's first element and its element
// count. It reads through formats.ByteSource when the source has it (no
// copy), else through the tensor's section. count reports progress.
func (o *Output) eachRaw(ti formats.TensorInfo, unit int64, count bool, fn func(raw []byte, off, n int64) error) error {
	n, ok := ti.NumElements()
	if !ok {
		return tensorError(ti.Name, fmt.Errorf("element count overflows: %w", formats.ErrFormat))
	}
	bs, bb := ti.DType.BlockSize(), ti.DType.BlockBytes()
	unit = max(unit, bs, 1)
	per := o.chunkFor(ti.Name, unit)
	read, err := o.rawReader(ti)
	if err != nil {
		return err
	}
	for off := int64(0); off < n; off += per {
		k := min(per, n-off)
		raw, err := read(off/bs*bb, k/bs*bb)
		if err != nil {
			return err
		}
		if err := fn(raw, off, k); err != nil {
			return err
		}
		if count {
			o.advance(int64(len(raw)))
		}
	}
	return nil
}

// rawReader returns a function reading byte range [at, at+n) of a source
// tensor: a sub-slice of the mapping, or a read into a reused buffer.
func (o *Output) rawReader(ti formats.TensorInfo) (func(at, n int64) ([]byte, error), error) {
	if bs, ok := o.src.(formats.ByteSource); ok {
		all, err := bs.Bytes(ti.Name)
		if err != nil {
			return nil, err
		}
		if int64(len(all)) != ti.Size {
			return nil, tensorError(ti.Name, fmt.Errorf("source gave %d bytes, want %d: %w", len(all), ti.Size, formats.ErrFormat))
		}
		return func(at, n int64) ([]byte, error) { return all[at : at+n], nil }, nil
	}
	sec, err := o.src.Section(ti.Name)
	if err != nil {
		return nil, err
	}
	var buf []byte
	return func(at, n int64) ([]byte, error) {
		buf = grow(buf, int(n))
		if _, err := sec.ReadAt(buf, at); err != nil {
			return nil, fmt.Errorf("read tensor %q: %w", ti.Name, err)
		}
		return buf, nil
	}, nil
}

// readAll returns a small source tensor's bytes.
func readAll(src formats.Source, ti formats.TensorInfo) ([]byte, error) {
	if bs, ok := src.(formats.ByteSource); ok {
		return bs.Bytes(ti.Name)
	}
	sec, err := src.Section(ti.Name)
	if err != nil {
		return nil, err
	}
	b := make([]byte, sec.Size())
	if _, err := sec.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("read tensor %q: %w", ti.Name, err)
	}
	return b, nil
}

// grow returns b resized to n, reusing its storage when it is big enough.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// growF is grow for float32.
func growF(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// Shards cuts the output tensors, in order, into consecutive groups whose
// data stay within maxBytes, never separating the tensors made from one
// source tensor: a bitsandbytes weight and its companions (absmax,
// quant_map, nested_*, quant_state, SCB, weight_format) always share a
// file, which transformers needs to rebuild the quantization state. A
// group above maxBytes gets a shard of its own; maxBytes 0 gives one
// shard.
func (o *Output) Shards(maxBytes int64) [][]formats.Tensor {
	if maxBytes <= 0 || len(o.Tensors) == 0 {
		return [][]formats.Tensor{o.Tensors}
	}
	var (
		shards [][]formats.Tensor
		cur    []formats.Tensor
		size   int64
		at     int
	)
	for _, n := range o.spans {
		group := o.Tensors[at : at+n]
		at += n
		var g int64
		for _, t := range group {
			g += t.Size
		}
		if len(cur) > 0 && g > maxBytes-size {
			shards = append(shards, cur)
			cur, size = nil, 0
		}
		cur = append(cur, group...)
		size += g
	}
	return append(shards, cur)
}
