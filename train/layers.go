package train

import (
	"github.com/qtool-dev/qtool/kernels"
)

// Linear is one frozen projection Y = X·Wᵀ (+ bias) with an optional LoRA
// branch (TRAINER-DESIGN.md §1).
type Linear struct {
	W       kernels.BMatrix
	Bias    []float32
	In, Out int
	Layer   int // block index
	Module  int // index into moduleNames
	LoRA    *LoRA
}

// LoRA is one trained low-rank pair with its gradient and AdamW moments.
// B's rows are in the order of the model's stored weight (GGUF Q/K rows
// permuted); the writer puts them back in Hugging Face order.
type LoRA struct {
	Rank   int
	Scale  float32
	A, B   []float32 // [Rank×In], [Out×Rank]
	GA, GB []float32 // gradients, same shapes
	mA, vA []float32
	mB, vB []float32
}

// forward computes y[T×Out] = x·Wᵀ + bias + s·(D(x)·Aᵀ)·Bᵀ and stores
// U = D(x)·Aᵀ [T×r] in u (len T·r) when the layer has an adapter. D is the
// LoRA-branch dropout: x ⊙ mask when mask (len T·In, entries 0 or
// 1/(1−p)) is not nil, x itself otherwise.
func (l *Linear) forward(y, x []float32, t int, u, mask []float32, th int) {
	kernels.MatMulT(y, l.Out, x, l.In, t, l.W, false, th)
	if l.Bias != nil {
		for i := range t {
			kernels.Add(y[i*l.Out:(i+1)*l.Out], y[i*l.Out:(i+1)*l.Out], l.Bias)
		}
	}
	if p := l.LoRA; p != nil {
		r := p.Rank
		kernels.SgemmNT(t, r, l.In, dropped(x, mask, t*l.In), l.In, p.A, l.In, u, r, false, th)
		us := make([]float32, t*r)
		copy(us, u)
		kernels.Scale(us, p.Scale)
		kernels.SgemmNT(t, l.Out, r, us, r, p.B, r, y, l.Out, true, th)
	}
}

// dropped is x ⊙ mask (a new slice), or x when mask is nil.
func dropped(x, mask []float32, n int) []float32 {
	if mask == nil {
		return x
	}
	xd := make([]float32, n)
	mul(xd, x[:n], mask[:n])
	return xd
}

// mul sets dst = a ⊙ b.
func mul(dst, a, b []float32) {
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

// backward takes g = ∂L/∂Y [T×Out], accumulates the adapter gradients
// (∂B += s·Gᵀ·U, ∂A += s·(G·B)ᵀ·D(X)) and adds ∂L/∂X = G·W0 + s·D'((G·B)·A)
// to dx [T×In], with the forward's dropout mask (nil: none). tile is
// scratch space for the dequantized weight rows.
func (l *Linear) backward(dx, g, x, u, mask []float32, t int, th int, tile *[]float32) {
	addGW(dx, g, t, l.W, th, tile)
	p := l.LoRA
	if p == nil {
		return
	}
	r := p.Rank
	gb := make([]float32, t*r)
	kernels.SgemmNN(t, r, l.Out, g, l.Out, p.B, r, gb, r, false, th)
	kernels.Scale(gb, p.Scale)
	kernels.SgemmTN(r, l.In, t, gb, r, dropped(x, mask, t*l.In), l.In, p.GA, l.In, true, th)
	if mask == nil {
		kernels.SgemmNN(t, l.In, r, gb, r, p.A, l.In, dx, l.In, true, th)
	} else {
		tmp := make([]float32, t*l.In)
		kernels.SgemmNN(t, l.In, r, gb, r, p.A, l.In, tmp, l.In, false, th)
		mul(tmp, tmp, mask[:t*l.In])
		kernels.Add(dx[:t*l.In], dx[:t*l.In], tmp)
	}
	us := make([]float32, t*r)
	copy(us, u)
	kernels.Scale(us, p.Scale)
	kernels.SgemmTN(l.Out, r, t, g, l.Out, us, r, p.GB, r, true, th)
}

// tileRows is the number of weight rows dequantized at a time by addGW.
const tileRows = 64

// addGW adds G·W [T×K] to dx, with G [T×N] and W the N×K stored weight,
// read in row tiles of its stored type (the other orientation of
// MatMulT): dx += Σ_tiles G[:, n0:n1]·W[n0:n1, :].
func addGW(dx, g []float32, t int, w kernels.BMatrix, th int, tile *[]float32) {
	n, k := w.Rows(), w.Cols()
	if f, ok := w.(*kernels.F32Matrix); ok && len(f.Data) == n*k {
		kernels.SgemmNN(t, k, n, g, n, f.Data, k, dx, k, true, th)
		return
	}
	rows := min(tileRows, n)
	if cap(*tile) < rows*k {
		*tile = make([]float32, rows*k)
	}
	buf := (*tile)[:rows*k]
	for n0 := 0; n0 < n; n0 += rows {
		n1 := min(n0+rows, n)
		w.Tile(buf, n0, n1, 0, k)
		kernels.SgemmNN(t, k, n1-n0, g[n0:], n, buf, k, dx, k, true, th)
	}
}
