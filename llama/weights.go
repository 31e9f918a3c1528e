package llama

import (
	"fmt"
	"sync"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/lora"
	"github.com/qtool-dev/qtool/quantize"
)

// Matrix returns a BMatrix over a stored 2-D weight [n, k] without
// copying it: the kernels' own types for f32, f16, bf16, Q8_0 and Q4_0,
// and a row-dequantizing adapter for the other ggml block types. The
// trainer views its frozen weights through it too.
func Matrix(data []byte, ti formats.TensorInfo, n, k int) (kernels.BMatrix, error) {
	switch ti.DType {
	case formats.F32:
		return kernels.F32MatrixFromBytes(data, n, k)
	case formats.F16:
		return kernels.NewF16Matrix(data, n, k)
	case formats.BF16:
		return kernels.NewBF16Matrix(data, n, k)
	case formats.Q8_0:
		return kernels.NewQ8_0Matrix(data, n, k)
	case formats.Q4_0:
		return kernels.NewQ4_0Matrix(data, n, k)
	}
	if !quantize.GGMLDequantizable(ti.DType) {
		return nil, fmt.Errorf("llama: tensor %s: dtype %v: %w", ti.Name, ti.DType, formats.ErrUnsupported)
	}
	bs, bb := int(ti.DType.BlockSize()), int(ti.DType.BlockBytes())
	if k%bs != 0 || len(data) != n*(k/bs)*bb {
		return nil, fmt.Errorf("llama: tensor %s: %d bytes do not hold [%d, %d] %v: %w", ti.Name, len(data), n, k, ti.DType, formats.ErrFormat)
	}
	m := &blockMatrix{t: ti.DType, data: data, n: n, k: k, bs: bs, rowBytes: k / bs * bb, blockBytes: bb}
	m.pool.New = func() any { s := make([]float32, 0, 4096); return &s }
	return m, nil
}

// blockMatrix serves the ggml block types the kernels have no decoder for
// (IQ4_NL, Q4_1, Q5_*, K-quants): Tile dequantizes the blocks that cover
// the requested columns of each row into a small per-call buffer.
type blockMatrix struct {
	t                    formats.DType
	data                 []byte
	n, k, bs             int
	rowBytes, blockBytes int
	pool                 sync.Pool
}

func (m *blockMatrix) Rows() int { return m.n }
func (m *blockMatrix) Cols() int { return m.k }

func (m *blockMatrix) Tile(dst []float32, n0, n1, k0, k1 int) {
	b0, b1 := k0/m.bs, (k1+m.bs-1)/m.bs
	width := (b1 - b0) * m.bs
	bp := m.pool.Get().(*[]float32)
	if cap(*bp) < width {
		*bp = make([]float32, width)
	}
	buf := (*bp)[:width]
	w := k1 - k0
	for r := n0; r < n1; r++ {
		row := m.data[r*m.rowBytes+b0*m.blockBytes : r*m.rowBytes+b1*m.blockBytes]
		if err := quantize.DequantizeGGML(m.t, buf, row); err != nil {
			panic("llama: " + err.Error()) // sizes were checked in matrix
		}
		copy(dst[(r-n0)*w:(r-n0+1)*w], buf[k0-b0*m.bs:k1-b0*m.bs])
	}
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
