package llama

import (
	"fmt"
	"math"
	"sync"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/lora"
	"github.com/qtool-dev/qtool/quantize"
)

// Matrix returns a BMatrix over a stored 2-D weight [n, k] without
// copying it: the kernels' own types for f32, f16, bf16, Q8_0, Q4_0 and the
// K-quants Q4_K, Q5_K and Q6_K, and for the other ggml block types a
// kernels.RowMatrix whose rows the quantize package's block decoder
// dequantizes (so MatVecT's skinny path takes them too). The trainer views
// its frozen weights through it too.
func Matrix(data []byte, ti formats.TensorInfo, n, k int) (kernels.BMatrix, error) {
	var (
		w   kernels.BMatrix
		err error
	)
	switch ti.DType {
	case formats.F32:
		w, err = kernels.F32MatrixFromBytes(data, n, k)
	case formats.F16:
		w, err = kernels.NewF16Matrix(data, n, k)
	case formats.BF16:
		w, err = kernels.NewBF16Matrix(data, n, k)
	case formats.Q8_0:
		w, err = kernels.NewQ8_0Matrix(data, n, k)
	case formats.Q4_0:
		w, err = kernels.NewQ4_0Matrix(data, n, k)
	case formats.Q4_K:
		w, err = kernels.NewQ4_KMatrix(data, n, k)
	case formats.Q5_K:
		w, err = kernels.NewQ5_KMatrix(data, n, k)
	case formats.Q6_K:
		w, err = kernels.NewQ6_KMatrix(data, n, k)
	default:
		return blockMatrixOf(data, ti, n, k)
	}
	if err != nil {
		return nil, fmt.Errorf("llama: tensor %s: %w", ti.Name, err)
	}
	return w, nil
}

// blockMatrixOf views a ggml block type the kernels have no type of their
// own for through quantize's block decoder.
func blockMatrixOf(data []byte, ti formats.TensorInfo, n, k int) (kernels.BMatrix, error) {
	dec, ok := quantize.GGMLBlockDecoder(ti.DType)
	if !ok {
		return nil, fmt.Errorf("llama: tensor %s: dtype %v: %w", ti.Name, ti.DType, formats.ErrUnsupported)
	}
	bs, bb := int(ti.DType.BlockSize()), int(ti.DType.BlockBytes())
	if n < 0 || k < 0 || k%bs != 0 || (n > 0 && k/bs*bb > math.MaxInt/n) || len(data) != n*(k/bs)*bb {
		return nil, fmt.Errorf("llama: tensor %s: %d bytes do not hold [%d, %d] %v: %w", ti.Name, len(data), n, k, ti.DType, formats.ErrFormat)
	}
	m := &blockMatrix{data: data, dec: dec, bs: bs, rowBytes: k / bs * bb, blockBytes: bb}
	m.pool.New = func() any { return new([]float32) }
	w, err := kernels.NewRowMatrix(n, k, len(data), m.decodeRow)
	if err != nil {
		return nil, fmt.Errorf("llama: tensor %s: %w", ti.Name, err)
	}
	return w, nil
}

// blockMatrix decodes the rows of a ggml block type the kernels have no
// decoder of their own for (IQ4_NL, Q4_1, Q5_0, Q5_1).
type blockMatrix struct {
	data                 []byte
	dec                  func(dst []float32, src []byte)
	bs                   int
	rowBytes, blockBytes int
	pool                 sync.Pool // *[]float32 for ranges that cut a block
}

// decodeRow writes row r, columns [k0, k1), to dst: straight from the
// blocks when the range is block-aligned (as the kernels' tiles and passes
// are), through a pooled buffer of the covering blocks otherwise.
func (m *blockMatrix) decodeRow(dst []float32, r, k0, k1 int) {
	row := m.data[r*m.rowBytes : (r+1)*m.rowBytes]
	b0, b1 := k0/m.bs, (k1+m.bs-1)/m.bs
	if k0%m.bs == 0 && k1%m.bs == 0 {
		m.dec(dst[:k1-k0], row[b0*m.blockBytes:b1*m.blockBytes])
		return
	}
	bp := m.pool.Get().(*[]float32)
	width := (b1 - b0) * m.bs
	if cap(*bp) < width {
		*bp = make([]float32, width)
	}
	buf := (*bp)[:width]
	m.dec(buf, row[b0*m.blockBytes:b1*m.blockBytes])
	copy(dst[:k1-k0], buf[k0-b0*m.bs:])
	m.pool.Put(bp)
}

// loraPair is one run-time low-rank update: y += Scale·(x·Aᵀ)·Bᵀ.
type loraPair struct {
	a, b       []float32 // A [r×in], B [out×r]
	r, in, out int
	scale      float32
}

// linear is one projection: y = x·Wᵀ (+ bias) (+ LoRA updates).
type linear struct {
	w    kernels.BMatrix
	bias []float32
	lora []loraPair
}

func (l *linear) outDim() int { return l.w.Rows() }

// apply computes y[T×out] (row stride ldy) from x[T×in] (stride ldx); with
// accumulate the result is added to y.
func (l *linear) apply(y []float32, ldy int, x []float32, ldx, t int, accumulate bool, threads int, tmp *[]float32) {
	kernels.MatMulT(y, ldy, x, ldx, t, l.w, accumulate, threads)
	if l.bias != nil {
		for i := range t {
			kernels.Add(y[i*ldy:i*ldy+len(l.bias)], y[i*ldy:i*ldy+len(l.bias)], l.bias)
		}
	}
	for _, p := range l.lora {
		if cap(*tmp) < t*p.r {
			*tmp = make([]float32, t*p.r)
		}
		ax := (*tmp)[:t*p.r]
		kernels.SgemmNT(t, p.r, p.in, x, ldx, p.a, p.in, ax, p.r, false, threads)
		kernels.Scale(ax, p.scale)
		kernels.SgemmNT(t, p.out, p.r, ax, p.r, p.b, p.r, y, ldy, true, threads)
	}
}

// addAdapter attaches an adapter's pairs to the model's projections. The
// pairs' B rows are in Hugging Face order; for a GGUF model whose Q/K rows
// are permuted they are permuted the same way here.
func (m *Model) addAdapter(ad *lora.Adapter, scale float64) error {
	for i := range ad.Pairs {
		p := &ad.Pairs[i]
		if err := p.Validate(); err != nil {
			return err
		}
		ref, ok := m.byHF[p.Target]
		l, perm := ref.l, ref.perm
		if !ok {
			return fmt.Errorf("llama: adapter targets %s, which the model has no projection for: %w", p.Target, formats.ErrFormat)
		}
		if p.In != l.w.Cols() || p.Out != l.w.Rows() {
			return fmt.Errorf("llama: adapter pair %s is [%d×%d], the weight [%d×%d]: %w", p.Target, p.Out, p.In, l.w.Rows(), l.w.Cols(), formats.ErrFormat)
		}
		b := p.B
		if m.Cfg.Interleaved && perm != arch.NoPermutation {
			q, err := arch.NewQKRows(int64(p.Out), perm.Heads(int64(m.Cfg.Heads), int64(m.Cfg.KVHeads)))
			if err != nil {
				return err
			}
			b = make([]float32, len(p.B))
			for g := range p.Out {
				src := int(q.HFRow(int64(g)))
				copy(b[g*p.Rank:(g+1)*p.Rank], p.B[src*p.Rank:(src+1)*p.Rank])
			}
		}
		l.lora = append(l.lora, loraPair{a: p.A, b: b, r: p.Rank, in: p.In, out: p.Out, scale: float32(p.Scale * scale)})
	}
	return nil
}

// bnbIndex holds what Weights knows of a bitsandbytes-quantized folder
// (quantize.BNBWeights), and the source's tensor list for Totals.
type bnbIndex struct {
	byGGUF map[string]*quantize.BNBWeight // groups whose weight has a GGUF name
	all    map[string]*quantize.BNBWeight // every group, by its weight's stored name
	stored []formats.TensorInfo           // every tensor of the source
}

// BNB returns the bitsandbytes group stored under a GGUF name. Info gives
// such a group's weight with the original shape (its DType and Size stay
// those of the stored codes); Matrix views it with BNBMatrix and Vector
// decodes it. Its companions (absmax, quant_map, quant_state, SCB, …)
// have no GGUF name.
func (w *Weights) BNB(name string) (*quantize.BNBWeight, bool) {
	g, ok := w.bnb.byGGUF[name]
	return g, ok
}

// Totals counts the values and bytes of every tensor of the source: a
// bitsandbytes group counts the elements of its original weight and the
// bytes of all its members (codes, scales, tables, quant_state).
func (w *Weights) Totals() (params, bytes int64) {
	member := map[string]bool{}
	for _, g := range w.bnb.all {
		params += g.NumElements()
		bytes += g.StoredBytes()
		for _, m := range g.Members {
			member[m.Name] = true
		}
	}
	for _, ti := range w.bnb.stored {
		if member[ti.Name] {
			continue
		}
		if n, ok := ti.NumElements(); ok {
			params += n
		}
		if n, ok := ti.NumBytes(); ok {
			bytes += n
		}
	}
	return params, bytes
}

// matrix finishes Weights.Matrix once the shape is checked.
func (w *Weights) matrix(name string, data []byte, ti formats.TensorInfo, k int) (kernels.BMatrix, error) {
	if g, ok := w.bnb.byGGUF[name]; ok {
		return BNBMatrix(g)
	}
	return Matrix(data, ti, int(ti.Shape[0]), k)
}

// BNBMatrix views a 2-D bitsandbytes weight [out, in] without copying its
// codes: kernels.FourBitMatrix for nf4/fp4 whose quant_map is
// bitsandbytes' table bit for bit, kernels.Int8RowMatrix for LLM.int8(),
// and otherwise (int8-block, or a 4-bit file with a table of its own) an
// adapter whose Tile decodes the requested elements with the file's table
// (quantize.BNBWeight.DequantizeRange). All three give the values
// quantize.Dequant writes to F32, bit for bit.
func BNBMatrix(g *quantize.BNBWeight) (kernels.BMatrix, error) {
	if len(g.Shape) != 2 || g.Shape[0] > math.MaxInt32 || g.Shape[1] > math.MaxInt32 {
		return nil, fmt.Errorf("llama: tensor %s: shape %v is not a matrix: %w", g.Name, g.Shape, formats.ErrFormat)
	}
	n, k := int(g.Shape[0]), int(g.Shape[1])
	var m kernels.BMatrix
	var err error
	switch {
	case g.Type == quantize.TypeInt8:
		m, err = kernels.NewInt8RowMatrix(g.Codes, g.SCB, n, k)
	case (g.Type == quantize.TypeNF4 || g.Type == quantize.TypeFP4) && g.StandardMap():
		kind := kernels.NF4
		if g.Kind() == quantize.FP4 {
			kind = kernels.FP4
		}
		m, err = kernels.NewFourBitMatrix(kind, g.Codes, g.Absmax, n, k, g.Blocksize)
	default:
		m = &bnbTileMatrix{g: g, n: n, k: k}
	}
	if err != nil {
		return nil, fmt.Errorf("llama: tensor %s: %v: %w", g.Name, err, formats.ErrFormat)
	}
	return m, nil
}

// bnbTileMatrix decodes a bitsandbytes weight tile by tile.
type bnbTileMatrix struct {
	g    *quantize.BNBWeight
	n, k int
}

func (m *bnbTileMatrix) Rows() int { return m.n }
func (m *bnbTileMatrix) Cols() int { return m.k }

func (m *bnbTileMatrix) Tile(dst []float32, n0, n1, k0, k1 int) {
	w := k1 - k0
	for r := n0; r < n1; r++ {
		if err := m.g.DequantizeRange(dst[(r-n0)*w:(r-n0+1)*w], int64(r)*int64(m.k)+int64(k0)); err != nil {
			panic("llama: " + err.Error()) // the group was validated; the kernels pass tiles inside [n, k]
		}
	}
}

// bnbVector decodes a bitsandbytes weight of n elements.
func bnbVector(g *quantize.BNBWeight, n int) ([]float32, error) {
	if ne := g.NumElements(); ne != int64(n) {
		return nil, fmt.Errorf("llama: tensor %s has %d elements, want %d: %w", g.Name, ne, n, formats.ErrFormat)
	}
	v := make([]float32, n)
	if err := g.DequantizeRange(v, 0); err != nil {
		return nil, fmt.Errorf("llama: tensor %s: %w", g.Name, err)
	}
	return v, nil
}
