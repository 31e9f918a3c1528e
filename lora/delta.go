package lora

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/quantize"
)

// The low-rank update, computed as llama-export-lora computes it
// (GGUF-LLAMACPP.md §4.3). export-lora builds, per adapter, the ggml graph
//
//	delta = mul_mat(transpose(A), B)   // delta[i][j] = Σ_k A[k][j]·B[i][k]
//	cur   = scale(delta, s) + cur      // cur starts as W (float32)
//
// in float32. ggml's CPU mul_mat reduces each element with
// ggml_vec_dot_f32; below its SIMD step (32 on AVX2, so every rank < 32)
// that is the plain loop sumf += x[k]*y[k], which GCC contracts to a fused
// multiply-add. So, element by element, with one rounding per operation:
//
//	d = fmaf(B[i][r-1], A[r-1][j], … fmaf(B[i][1], A[1][j], B[i][0]·A[0][j]))
//	W'[i][j] = W[i][j] + s·d          // the product and the sum rounded separately
//
// with the adapters applied one after the other in their order. On the
// stories260K golden (rank 4) this gives llama-export-lora's output bit for
// bit (226,560 of 226,560 elements; a float32 loop without fusion differs
// in 10 % of them). For rank ≥ 32 ggml's SIMD loop and for ranks that are
// multiples of 8 its tinyBLAS path sum in another order, so the results may
// then differ from export-lora's in the last bit; they are the same on
// every machine qtool runs on: the CPU decides only whether the chains
// run in package kernels' FMA micro-kernels or in the float64 emulation
// below, which give the same bits (kernelIsChain).

// term is one adapter's update of one base tensor.
type term struct {
	pair  *Pair
	scale float32 // user scale × Pair.Scale, rounded once to float32
	// bRow maps an output row to the row of B that updates it: the GGUF
	// Q/K permutation for attn_q/attn_k of a GGUF base; nil is identity.
	bRow func(row int64) int64
}

// fma32 is C's fmaf(b, x, acc): b·x + acc rounded once to float32 (b is
// a float32 widened by the caller). The product of two float32 values is
// exact in float64, so only the sum rounds before the conversion; that
// double rounding can differ from a single one only when the float64 sum
// lies exactly halfway between two float32 values (or in float32's
// subnormal range), which fma32Exact settles. A zero sum is exact.
func fma32(b float64, x, acc float32) float32 {
	p := b * float64(x)
	s := p + float64(acc)
	bits := math.Float64bits(s)
	if e := bits >> 52 & 0x7ff; bits&(1<<29-1) != 1<<28 && (e >= 897 || e == 0) {
		return float32(s)
	}
	return fma32Exact(p, float64(acc))
}

// fma32Exact rounds p + z to float32 exactly once, rounding the float64
// sum to odd first (Boldo and Melquiond: round-to-odd at 53 bits followed
// by round-to-nearest at 24 bits is the correct rounding).
func fma32Exact(p, z float64) float32 {
	s := p + z
	// TwoSum: e is the exact error of the float64 addition.
	bv := s - p
	e := (p - (s - bv)) + (z - bv)
	bits := math.Float64bits(s)
	if e != 0 && bits&1 == 0 && !math.IsInf(s, 0) {
		if (e > 0) == (s > 0) {
			bits++ // away from zero, towards the exact sum
		} else {
			bits--
		}
	}
	return float32(math.Float64frombits(bits))
}

// deltaRow computes one row of B·A: acc[j] = Σ_k b[k]·a[k][j] with the
// fused loop above, a being r×cols row-major and b one row of B (r values).
//
// Reference loop:
//
//	for j := range acc {
//		var d float32
//		for k := range b {
//			d = fmaf(b[k], a[k*cols+j], d)
//		}
//		acc[j] = d
//	}
func deltaRow(acc, b, a []float32) {
	cols := len(acc)
	b0 := float64(b[0])
	for j, x := range a[:cols] {
		acc[j] = float32(b0*float64(x) + 0) // fmaf(b, x, +0): one rounding, -0 becomes +0
	}
	for k := 1; k < len(b); k++ {
		bk := float64(b[k])
		ak := a[k*cols : (k+1)*cols]
		ak = ak[:len(acc)]
		for j, x := range ak {
			// fma32 by hand: the compiler does not inline it.
			p := bk * float64(x)
			s := p + float64(acc[j])
			bits := math.Float64bits(s)
			if e := bits >> 52 & 0x7ff; bits&(1<<29-1) == 1<<28 || (e < 897 && e != 0) {
				s = float64(fma32Exact(p, float64(acc[j])))
			}
			acc[j] = float32(s)
		}
	}
}

// rowSums are the per-row sums of one merge's report: the squared norms
// of W and of the update Σ s·B·A (before it is added, so a delta that
// float32 cannot hold next to W still counts), and ‖Q(W+ΔW) − Q(W)‖² when
// measured. Totals are summed in row order, so they do not depend on how
// the rows were split.
type rowSums struct {
	w, d, diff []float64
}

// applyTerms writes dst = w + Σ_t float32(s_t·(B_t·A_t)), rows × cols,
// split over up to workers goroutines by rows; sums gets each row's
// squared norms. Output bits do not depend on workers.
func applyTerms(dst, w []float32, rows, cols int, terms []term, workers int, sums rowSums) {
	workers = max(1, min(workers, rows, len(w)/minParallelElems+1))
	kern := make([]bool, len(terms))
	for i, t := range terms {
		kern[i] = kernelIsChain(t.pair)
	}
	if workers == 1 {
		new(applyScratch).apply(dst, w, 0, 0, rows, cols, terms, kern, sums)
		return
	}
	var wg sync.WaitGroup
	for k := range workers {
		r0, r1 := rows*k/workers, rows*(k+1)/workers
		wg.Go(func() { new(applyScratch).apply(dst, w, 0, r0, r1, cols, terms, kern, sums) })
	}
	wg.Wait()
}

// minParallelElems is the fewest elements per goroutine worth a split.
const minParallelElems = 1 << 15

// applyScratch is one goroutine's buffers for apply, kept between calls.
type applyScratch struct {
	tiles        []float32
	dsum         []float64
	cols, stride int // of the tiles deltas computed last
	sc           deltaScratch
}

// apply is applyTerms for rows [r0, r1) on the calling goroutine; dst and
// w hold the tensor's rows from row base on (sums is indexed by the
// tensor's rows). It goes deltaTileRows rows at a time: each adapter's
// delta for the tile first (deltaScratch.delta, through package kernels
// where kern says), then the rows combined with W (combineRow).
func (a *applyScratch) apply(dst, w []float32, base, r0, r1, cols int, terms []term, kern []bool, sums rowSums) {
	for i0 := r0; i0 < r1; i0 += deltaTileRows {
		i1 := min(i0+deltaTileRows, r1)
		a.deltas(terms, kern, i0, i1, cols)
		for i := i0; i < i1; i++ {
			sums.w[i], sums.d[i] = a.combine(dst[(i-base)*cols:(i-base+1)*cols], w[(i-base)*cols:(i-base+1)*cols], terms, i-i0)
		}
	}
}

// deltas computes every adapter's B·A for rows [i0, i1) (at most
// deltaTileRows) into the scratch tiles, one tile per adapter.
func (a *applyScratch) deltas(terms []term, kern []bool, i0, i1, cols int) {
	a.cols, a.stride = cols, (i1-i0)*cols
	if n := len(terms) * a.stride; cap(a.tiles) < n {
		a.tiles = make([]float32, n)
	}
	if len(terms) > 1 && cap(a.dsum) < cols {
		a.dsum = make([]float64, cols)
	}
	for ti, t := range terms {
		a.sc.delta(a.tiles[ti*a.stride:][:a.stride], t, i0, i1, cols, kern[ti])
	}
}

// combine is combineRow for row k of the tiles deltas computed last.
func (a *applyScratch) combine(out, w []float32, terms []term, k int) (wsq, dsq float64) {
	return combineRow(out, w, a.tiles, k*a.cols, a.stride, terms, a.dsum)
}

// deltaTileRows is how many output rows applyRange takes at a time: a
// multiple of the AVX-512 and AVX2 micro-kernels' heights (14 and 6), and
// small enough that a tile of the widest projections (11008 columns, 1.8
// MiB per adapter) stays near the cache.
const deltaTileRows = 42

// deltaScratch is one goroutine's buffer for deltas computed by the
// kernels package: the rows of B a permuted tile needs, gathered.
type deltaScratch struct {
	b []float32
}

// delta writes rows [r0, r1) of t's B·A (B's rows mapped by t.bRow) into
// d, (r1-r0)×cols row-major, each element the fmaf chain deltaRow
// computes: with kernels.SgemmNN when kern (see kernelIsChain), else with
// deltaRow.
func (s *deltaScratch) delta(d []float32, t term, r0, r1, cols int, kern bool) {
	p := t.pair
	r := p.Rank
	if !kern {
		for i := r0; i < r1; i++ {
			br := int64(i)
			if t.bRow != nil {
				br = t.bRow(br)
			}
			deltaRow(d[(i-r0)*cols:(i-r0+1)*cols], p.B[int(br)*r:int(br+1)*r], p.A)
		}
		return
	}
	b := p.B[r0*r : r1*r]
	if t.bRow != nil {
		n := (r1 - r0) * r
		if cap(s.b) < n {
			s.b = make([]float32, n)
		}
		b = s.b[:n]
		for i := r0; i < r1; i++ {
			br := int(t.bRow(int64(i)))
			copy(b[(i-r0)*r:(i-r0+1)*r], p.B[br*r:(br+1)*r])
		}
	}
	// The caller's goroutine is one of applyTerms' workers: one thread.
	kernels.SgemmNN(r1-r0, cols, r, b, r, p.A, cols, d, cols, false, 1)
}

// kernelIsChain reports whether kernels.SgemmNN, at the level it uses
// now, computes p's B·A exactly as deltaRow does. At the assembly levels
// its micro-kernels start every element of C from +0 and add the k terms
// in order with one VFMADD231PS each, rounding once per step: the fmaf
// chain bit for bit (TestSgemmNNIsFMAChain checks every rank to 64 on
// values reaching float32's halfway points, subnormals, overflow, signed
// zeros and infinities). Not so
//   - for ranks past kernels.TileK, whose depth the engine cuts into
//     blocks summed apart;
//   - at the generic level (float32 multiply, then add);
//   - when A or B holds a NaN: the hardware passes on another operand's
//     NaN payload than the float64 emulation does.
func kernelIsChain(p *Pair) bool {
	if p.Rank > kernels.TileK {
		return false
	}
	switch kernels.Features() {
	case "avx512", "avx2":
	default:
		return false
	}
	return !hasNaN(p.A) && !hasNaN(p.B)
}

// hasNaN reports a NaN in x.
func hasNaN(x []float32) bool {
	for _, v := range x {
		if v != v {
			return true
		}
	}
	return false
}

// sum adds up per-row values in row order.
func sum(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s
}

// The lazy output tensors: mergedData computes a merge while it is
// written, copyData streams a base tensor, and tensorSource serves such
// tensors as a formats.Source (for quantize.Plan and conversions).

var (
	_ io.WriterTo                  = (*mergedData)(nil)
	_ io.WriterTo                  = (*copyData)(nil)
	_ io.WriterTo                  = (*progressData)(nil)
	_ formats.Source               = (*tensorSource)(nil)
	_ formats.ByteSource           = (*tensorSource)(nil)
	_ interface{ Config() []byte } = (*tensorSource)(nil)
)

// mergedData produces one entry's values: dequant(W) plus the adapters'
// updates (none for a tensor that is only dequantized), encoded as out (a
// float or ggml dtype). The first write of a merged tensor after its
// measure is set fills its row of the report.
type mergedData struct {
	m   *merger
	e   *entry
	out formats.DType
	// refIsBase: the base tensor is what Q(W) is for this output (its own
	// type), so survived compares with the dequantized base directly.
	refIsBase bool
	count     bool // report the entry's base bytes to Progress
}

func (d *mergedData) WriteTo(w io.Writer) (int64, error) {
	if d.streamable() {
		return d.writeStream(w)
	}
	m, e := d.m, d.e
	x, err := m.decode(e)
	if err != nil {
		return 0, err
	}
	y, sums := x, rowSums{}
	if e.terms != nil {
		rows, cols := int(e.shape[0]), int(e.shape[1])
		y = make([]float32, len(x))
		sums = rowSums{w: make([]float64, rows), d: make([]float64, rows)}
		applyTerms(y, x, rows, cols, e.terms, m.workers, sums)
	}
	enc, err := encode(d.out, y, m.workers)
	if err != nil {
		return 0, tensorError(e.name, err)
	}
	if e.terms != nil && e.row >= 0 && e.measure.valid() && m.book.claim(e.row) {
		if err := d.measure(x, y, enc, sums); err != nil {
			return 0, tensorError(e.name, err)
		}
	}
	n, err := w.Write(enc)
	if err == nil && d.count {
		m.advance(e.bytes)
	}
	if err == nil && e.group == nil {
		if bs, ok := m.base.(formats.ByteSource); ok {
			if raw, rerr := bs.Bytes(e.name); rerr == nil {
				m.release(e.info, raw)
			}
		}
	}
	return int64(n), err
}

// decode reads an entry as float32: a float or ggml tensor through the
// base's bytes, a bitsandbytes group through its quantize.BNBWeight (bit
// for bit what quantize.Dequant writes as F32).
func (m *merger) decode(e *entry) ([]float32, error) {
	n, ok := formats.TensorInfo{Shape: e.shape}.NumElements()
	if !ok {
		return nil, tensorError(e.name, fmt.Errorf("bad shape %v: %w", e.shape, formats.ErrFormat))
	}
	x := make([]float32, n)
	if e.group != nil {
		if err := e.group.w.DequantizeRange(x, 0); err != nil {
			return nil, tensorError(e.name, err)
		}
		return x, nil
	}
	raw, err := readRaw(m.base, e.name)
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) != e.info.Size {
		return nil, tensorError(e.name, fmt.Errorf("source gave %d bytes, want %d: %w", len(raw), e.info.Size, formats.ErrFormat))
	}
	if err := decodeFloats(x, raw, e.info.DType); err != nil {
		return nil, tensorError(e.name, err)
	}
	return x, nil
}

// decodeFloats widens raw values of a float or ggml dtype.
func decodeFloats(dst []float32, raw []byte, d formats.DType) error {
	if decodeFloat(dst, raw, d) {
		return nil
	}
	if d == formats.F64 {
		return quantize.ToFloat32(dst, raw, d)
	}
	return quantize.DequantizeGGML(d, dst, raw)
}

// encode stores y as a float dtype or quantized to a ggml type.
func encode(d formats.DType, y []float32, workers int) ([]byte, error) {
	size, ok := formats.DataSize(d, []int64{int64(len(y))})
	if !ok {
		return nil, fmt.Errorf("%d values are not whole %v blocks: %w", len(y), d, formats.ErrFormat)
	}
	out := make([]byte, size)
	if d.Quantized() {
		return out, quantize.QuantizeGGMLParallel(d, out, y, workers)
	}
	if encodeFloat(out, y, d, workers) {
		return out, nil
	}
	return out, quantize.FromFloat32(out, y, d)
}

// tensorError names the tensor in an error.
func tensorError(name string, err error) error {
	return &formats.FormatError{Offset: -1, Tensor: name, Err: err}
}

// readRaw returns a tensor's stored bytes: without a copy from a mapped
// source, else read whole.
func readRaw(src formats.Source, name string) ([]byte, error) {
	if bs, ok := src.(formats.ByteSource); ok {
		return bs.Bytes(name)
	}
	sec, err := src.Section(name)
	if err != nil {
		return nil, err
	}
	b := make([]byte, sec.Size())
	if _, err := sec.ReadAt(b, 0); err != nil && !(err == io.EOF && len(b) == 0) {
		return nil, fmt.Errorf("read tensor %q: %w", name, err)
	}
	return b, nil
}

// advance reports n more base bytes consumed.
func (m *merger) advance(n int64) {
	done := m.done.Add(n)
	if m.cfg.Progress != nil {
		m.cfg.Progress(done, m.total)
	}
}

// copySlice is how much of a copied tensor one Write passes on: large
// enough for buffered writers to pass it straight to the file, small
// enough for progress reports.
const copySlice = 8 << 20

// copyData copies a stored tensor byte for byte.
type copyData struct {
	m     *merger
	src   formats.Source
	ti    formats.TensorInfo
	count bool
}

func (c *copyData) WriteTo(w io.Writer) (int64, error) {
	var written int64
	emit := func(b []byte) error {
		n, err := w.Write(b)
		written += int64(n)
		if err == nil && c.count {
			c.m.advance(int64(n))
		}
		return err
	}
	if bs, ok := c.src.(formats.ByteSource); ok {
		b, err := bs.Bytes(c.ti.Name)
		if err != nil {
			return 0, err
		}
		for off := 0; off < len(b); off += copySlice {
			if err := emit(b[off:min(len(b), off+copySlice)]); err != nil {
				return written, err
			}
		}
		c.m.release(c.ti, b)
		return written, nil
	}
	sec, err := c.src.Section(c.ti.Name)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, min(sec.Size(), copySlice))
	for off := int64(0); off < sec.Size(); {
		k := min(int64(len(buf)), sec.Size()-off)
		if _, err := sec.ReadAt(buf[:k], off); err != nil {
			return written, fmt.Errorf("read tensor %q: %w", c.ti.Name, err)
		}
		if err := emit(buf[:k]); err != nil {
			return written, err
		}
		off += k
	}
	return written, nil
}

// progressData reports n base bytes once its tensor is written.
type progressData struct {
	inner io.WriterTo
	m     *merger
	n     int64
}

func (p *progressData) WriteTo(w io.Writer) (int64, error) {
	k, err := p.inner.WriteTo(w)
	if err == nil {
		p.m.advance(p.n)
	}
	return k, err
}

// tensorSource serves planned tensors as a read-only formats.Source. A
// copy of a base tensor is read from the base; any other tensor is
// produced by its WriteTo when first read and kept in the source's slot
// until another is produced (readers such as quantize.Plan read a tensor
// more than once). Sources may share a slot, so that memory stays about
// one tensor however many there are. Returned slices are never reused.
type tensorSource struct {
	meta   *formats.Meta
	config []byte
	infos  []formats.TensorInfo
	data   map[string]io.WriterTo
	slot   *slot
}

// slot holds the last tensor a tensorSource produced.
type slot struct {
	mu    sync.Mutex
	owner *tensorSource
	name  string
	b     []byte
}

func newTensorSource(meta *formats.Meta, ts []formats.Tensor, config []byte) *tensorSource {
	s := &tensorSource{meta: meta, config: config, data: make(map[string]io.WriterTo, len(ts)), slot: &slot{}}
	for _, t := range ts {
		ti := t.TensorInfo
		ti.Offset = 0
		s.infos = append(s.infos, ti)
		s.data[t.Name] = t.Data
	}
	return s
}

func (s *tensorSource) Tensors() []formats.TensorInfo { return s.infos }
func (s *tensorSource) Meta() *formats.Meta           { return s.meta }
func (s *tensorSource) Close() error                  { return nil }

// Config is the config.json of a Hugging Face model (nil otherwise).
func (s *tensorSource) Config() []byte { return s.config }

func (s *tensorSource) info(name string) (formats.TensorInfo, io.WriterTo, error) {
	d, ok := s.data[name]
	if !ok {
		return formats.TensorInfo{}, nil, fmt.Errorf("lora: no tensor %q: %w", name, formats.ErrFormat)
	}
	for _, ti := range s.infos {
		if ti.Name == name {
			return ti, d, nil
		}
	}
	return formats.TensorInfo{}, nil, fmt.Errorf("lora: no tensor %q: %w", name, formats.ErrFormat)
}

// Bytes returns a tensor's bytes, producing them if needed.
func (s *tensorSource) Bytes(name string) ([]byte, error) {
	ti, d, err := s.info(name)
	if err != nil {
		return nil, err
	}
	if c, ok := d.(*copyData); ok {
		return readRaw(c.src, c.ti.Name)
	}
	sl := s.slot
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.owner == s && sl.name == name {
		return sl.b, nil
	}
	sl.owner, sl.name, sl.b = nil, "", nil // let the previous tensor go first
	buf := bytes.NewBuffer(make([]byte, 0, ti.Size))
	if _, err := d.WriteTo(buf); err != nil {
		return nil, err
	}
	if int64(buf.Len()) != ti.Size {
		return nil, tensorError(name, fmt.Errorf("produced %d bytes, want %d: %w", buf.Len(), ti.Size, formats.ErrFormat))
	}
	sl.owner, sl.name, sl.b = s, name, buf.Bytes()
	return sl.b, nil
}

// Section returns a reader over a tensor; a produced tensor is produced
// on the first read.
func (s *tensorSource) Section(name string) (*io.SectionReader, error) {
	ti, d, err := s.info(name)
	if err != nil {
		return nil, err
	}
	if c, ok := d.(*copyData); ok {
		return c.src.Section(c.ti.Name)
	}
	return io.NewSectionReader(lazyReaderAt{s: s, name: name}, 0, ti.Size), nil
}

// reset empties the slot.
func (s *tensorSource) reset() {
	s.slot.mu.Lock()
	s.slot.owner, s.slot.name, s.slot.b = nil, "", nil
	s.slot.mu.Unlock()
}

// lazyReaderAt reads a produced tensor.
type lazyReaderAt struct {
	s    *tensorSource
	name string
}

func (l lazyReaderAt) ReadAt(p []byte, off int64) (int, error) {
	b, err := l.s.Bytes(l.name)
	if err != nil {
		return 0, err
	}
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
