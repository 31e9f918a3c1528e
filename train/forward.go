package train

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/qtool-dev/qtool/kernels"
)

// acts are one block's saved activations for one sequence of T tokens.
// With gradient checkpointing only xIn is kept per block; the others live
// in one scratch acts that each block's backward refills by recomputing
// the block from xIn.
type acts struct {
	xIn, a, q, k, v, p, att, xMid, mm, gate, up, act []float32
	inv1, inv2                                       []float32
	u                                                [numModules][]float32
	// mask is the LoRA-branch dropout mask of each adapted module (entries
	// 0 or 1/(1−p)), drawn only while training with dropout.
	mask [numModules][]float32
}

// pass is the work space of a forward/backward over one sequence.
type pass struct {
	m      *Model
	t      int
	th     int
	layers []acts
	// ckpt keeps only the block inputs (layers[i].xIn) and recomputes a
	// block's activations into scratch during its backward.
	ckpt    bool
	scratch *acts
	discard []float32 // the recomputed block's output, not needed
	// drop is the LoRA dropout probability, applied while training; the
	// masks of one forward derive from dropSeed, the block and the module,
	// so that a recomputed block draws the same ones.
	drop     float64
	training bool
	dropSeed uint64
	xOut     []float32 // residual after the last block
	xn       []float32 // final norm (loss compacts it in place)
	invOut   []float32
	// logits holds the logits of up to lossChunk rows at a time, and then
	// their gradient; dxn is dL/dxn, set by loss for backward.
	logits []float32
	dxn    []float32
	tile   []float32
}

// lossFloats bounds the logits computed at once: the loss runs over
// chunks of rows, so that a long window with a large vocabulary does not
// hold T×Vocab floats (64 MiB of them at most, unless one row is larger).
// A variable for the tests.
var lossFloats = 1 << 24

// lossChunk is the number of rows of logits the loss computes at once.
func lossChunk(t, vocab int) int { return max(1, min(t, lossFloats/max(vocab, 1))) }

func newPass(m *Model, t, th int, ckpt bool, drop float64) *pass {
	c := &m.Cfg
	h := c.Hidden
	ps := &pass{m: m, t: t, th: th, layers: make([]acts, c.Layers), ckpt: ckpt, drop: drop}
	for i := range ps.layers {
		if ckpt {
			ps.layers[i].xIn = make([]float32, t*h)
			continue
		}
		ps.layers[i] = ps.newActs(m.blocks[i:i+1], true)
	}
	if ckpt {
		s := ps.newActs(m.blocks, false)
		ps.scratch = &s
		ps.discard = make([]float32, t*h)
	}
	ps.xOut, ps.xn, ps.invOut = make([]float32, t*h), make([]float32, t*h), make([]float32, t)
	ps.logits = make([]float32, lossChunk(t, c.Vocab)*c.Vocab)
	return ps
}

// newActs allocates one block's activations (with xIn when withIn), and
// the U tensors of the modules adapted in any of blocks.
func (ps *pass) newActs(blocks []block, withIn bool) acts {
	c, t := &ps.m.Cfg, ps.t
	h, qd, kvd := c.Hidden, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	var a acts
	if withIn {
		a.xIn = make([]float32, t*h)
	}
	a.a, a.xMid, a.mm = make([]float32, t*h), make([]float32, t*h), make([]float32, t*h)
	a.q, a.att = make([]float32, t*qd), make([]float32, t*qd)
	a.k, a.v = make([]float32, t*kvd), make([]float32, t*kvd)
	a.p = make([]float32, c.Heads*t*t)
	a.gate, a.up, a.act = make([]float32, t*c.FFN), make([]float32, t*c.FFN), make([]float32, t*c.FFN)
	a.inv1, a.inv2 = make([]float32, t), make([]float32, t)
	for _, b := range blocks {
		for j, l := range b.lin {
			if l.LoRA != nil && a.u[j] == nil {
				a.u[j] = make([]float32, t*l.LoRA.Rank)
			}
		}
	}
	return a
}

// blockActs is where block li's activations are: its own, or the
// checkpointing scratch (reading the block's saved input).
func (ps *pass) blockActs(li int) *acts {
	if !ps.ckpt {
		return &ps.layers[li]
	}
	ps.scratch.xIn = ps.layers[li].xIn
	return ps.scratch
}

// dropMasks draws block li's dropout masks into a (nil masks when not
// training or p = 0): each entry is kept with probability 1−p and scaled
// by 1/(1−p), from a generator seeded by dropSeed and (block, module).
func (ps *pass) dropMasks(li int, a *acts) {
	for j, l := range ps.m.blocks[li].lin {
		if !ps.training || ps.drop <= 0 || l.LoRA == nil {
			a.mask[j] = nil
			continue
		}
		n := ps.t * l.In
		if cap(a.mask[j]) < n {
			a.mask[j] = make([]float32, n)
		}
		mk := a.mask[j][:n]
		r := rand.New(rand.NewPCG(ps.dropSeed, uint64(li*numModules+j)))
		keep := float32(1 / (1 - ps.drop))
		for i := range mk {
			if r.Float64() < ps.drop {
				mk[i] = 0
			} else {
				mk[i] = keep
			}
		}
		a.mask[j] = mk
	}
}

// forward runs tokens (len T) up to the final norm, ps.xn [T×Hidden];
// loss computes the logits from it.
func (ps *pass) forward(tokens []int32) {
	m, c, t := ps.m, &ps.m.Cfg, ps.t
	h := c.Hidden
	x := ps.layers[0].xIn
	for i, id := range tokens {
		m.embed.Tile(x[i*h:(i+1)*h], int(id), int(id)+1, 0, h)
	}
	for li := range m.blocks {
		next := ps.xOut
		if li+1 < len(ps.layers) {
			next = ps.layers[li+1].xIn
		}
		ps.blockForward(li, ps.blockActs(li), next)
	}
	for i := range t {
		ps.invOut[i] = kernels.RMSNorm(ps.xn[i*h:(i+1)*h], ps.xOut[i*h:(i+1)*h], m.outNorm, c.Eps)
	}
}

// blockForward runs block li from a.xIn, filling a's activations, and
// writes the block's output residual to next.
func (ps *pass) blockForward(li int, a *acts, next []float32) {
	m, c, t, th := ps.m, &ps.m.Cfg, ps.t, ps.th
	h, d := c.Hidden, c.HeadDim
	qd, kvd := c.Heads*d, c.KVHeads*d
	b := &m.blocks[li]
	ps.dropMasks(li, a)
	for i := range t {
		a.inv1[i] = kernels.RMSNorm(a.a[i*h:(i+1)*h], a.xIn[i*h:(i+1)*h], b.attnNorm, c.Eps)
	}
	b.lin[modQ].forward(a.q, a.a, t, a.u[modQ], a.mask[modQ], th)
	b.lin[modK].forward(a.k, a.a, t, a.u[modK], a.mask[modK], th)
	b.lin[modV].forward(a.v, a.a, t, a.u[modV], a.mask[modV], th)
	for i := range t {
		m.rope.Apply(a.q[i*qd:(i+1)*qd], c.Heads, d, i, c.Interleaved)
		m.rope.Apply(a.k[i*kvd:(i+1)*kvd], c.KVHeads, d, i, c.Interleaved)
	}
	ps.attention(a)
	copy(a.xMid, a.xIn)
	b.lin[modO].forwardAdd(a.xMid, a.att, t, a.u[modO], a.mask[modO], th)
	for i := range t {
		a.inv2[i] = kernels.RMSNorm(a.mm[i*h:(i+1)*h], a.xMid[i*h:(i+1)*h], b.ffnNorm, c.Eps)
	}
	b.lin[modGate].forward(a.gate, a.mm, t, a.u[modGate], a.mask[modGate], th)
	b.lin[modUp].forward(a.up, a.mm, t, a.u[modUp], a.mask[modUp], th)
	kernels.SiLUMul(a.act, a.gate, a.up)
	copy(next, a.xMid)
	b.lin[modDown].forwardAdd(next, a.act, t, a.u[modDown], a.mask[modDown], th)
}

// forwardAdd adds the layer's output to y (the residual stream).
func (l *Linear) forwardAdd(y, x []float32, t int, u, mask []float32, th int) {
	tmp := make([]float32, t*l.Out)
	l.forward(tmp, x, t, u, mask, th)
	kernels.Add(y, y, tmp)
}

// attention fills a.att and the probabilities a.p from a.q, a.k, a.v,
// one head per goroutine at a time (each writes only its own columns of
// att and its own probabilities).
func (ps *pass) attention(a *acts) {
	c, t := &ps.m.Cfg, ps.t
	d := c.HeadDim
	qd, kvd := c.Heads*d, c.KVHeads*d
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(d)))
	parallelFor(c.Heads, ps.th, func(_, hd int) {
		g := hd / group
		p := a.p[hd*t*t : (hd+1)*t*t]
		kernels.SgemmNT(t, t, d, a.q[hd*d:], qd, a.k[g*d:], kvd, p, t, false, 1)
		for i := range t {
			row := p[i*t : (i+1)*t]
			kernels.Scale(row[:i+1], scale)
			kernels.SoftmaxCausal(row, i+1)
		}
		kernels.SgemmNN(t, d, t, p, t, a.v[g*d:], kvd, a.att[hd*d:], qd, false, 1)
	})
}

// loss returns the summed negative log-likelihood (float64) of targets
// where mask is set and the number counted. It computes the logits of the
// counted rows only, lossChunk rows at a time (compacting ps.xn in place:
// forward must run again before the next loss), and with grad sets ps.dxn
// to dL/dxn of the summed loss (softmax − onehot through the output
// matrix; 0 on rows not counted) for backward. The rows of a chunk are
// spread over the threads; each row's sums are its own, so the result does
// not depend on their number.
func (ps *pass) loss(targets []int32, mask []bool, grad bool) (float64, int) {
	m, t, th := ps.m, ps.t, ps.th
	v, h := m.Cfg.Vocab, m.Cfg.Hidden
	// Move the counted rows of xn to the front, in order (row idx[i] to
	// row i ≤ idx[i]: ascending, no source is overwritten before it is
	// read).
	idx := make([]int, 0, t)
	for i := range t {
		if mask[i] {
			if n := len(idx); n != i {
				copy(ps.xn[n*h:(n+1)*h], ps.xn[i*h:(i+1)*h])
			}
			idx = append(idx, i)
		}
	}
	n := len(idx)
	if grad {
		ps.dxn = make([]float32, t*h)
	}
	chunk := lossChunk(t, v)
	nll := make([]float64, min(chunk, n))
	var sum float64
	for r0 := 0; r0 < n; r0 += chunk {
		rows := min(chunk, n-r0)
		logits := ps.logits[:rows*v]
		kernels.MatMulT(logits, v, ps.xn[r0*h:], h, rows, m.output, false, th)
		parallelFor(rows, th, func(_, i int) {
			nll[i] = rowLoss(logits[i*v:(i+1)*v], targets[idx[r0+i]], grad)
		})
		for _, x := range nll[:rows] {
			sum += x
		}
		if grad {
			addGW(ps.dxn[r0*h:], logits, rows, m.output, th, &ps.tile)
		}
	}
	if grad {
		// Spread the compact rows of dxn back to their positions
		// (descending: row i to idx[i] ≥ i, never onto a row still to
		// be moved), zero where nothing lands.
		for i := n - 1; i >= 0; i-- {
			if j := idx[i]; j != i {
				copy(ps.dxn[j*h:(j+1)*h], ps.dxn[i*h:(i+1)*h])
				clear(ps.dxn[i*h : (i+1)*h])
			}
		}
	}
	return sum, n
}

// rowLoss returns −log softmax(row)[target], in float64 from the float32
// logits, and with grad overwrites row with the gradient softmax(row) −
// onehot(target).
func rowLoss(row []float32, target int32, grad bool) float64 {
	mx := row[0]
	for _, x := range row[1:] {
		if x > mx {
			mx = x
		}
	}
	m64 := float64(mx)
	xt := float64(row[target])
	var sum float64
	if !grad {
		for _, x := range row {
			sum += math.Exp(float64(x) - m64)
		}
		return -(xt - m64 - math.Log(sum))
	}
	// Keep each exponential (float32) for the gradient.
	for j, x := range row {
		e := math.Exp(float64(x) - m64)
		sum += e
		row[j] = float32(e)
	}
	inv := 1 / sum
	for j, e := range row {
		row[j] = float32(float64(e) * inv)
	}
	row[target]--
	return -(xt - m64 - math.Log(sum))
}

// backward propagates dL/dxn (ps.dxn, which loss with grad sets) to the
// adapters, accumulating their gradients.
func (ps *pass) backward() {
	m, c, t, th := ps.m, &ps.m.Cfg, ps.t, ps.th
	h, d := c.Hidden, c.HeadDim
	qd, kvd := c.Heads*d, c.KVHeads*d
	dxn := ps.dxn
	ps.dxn = nil
	dh := make([]float32, t*h)
	for i := range t {
		kernels.RMSNormBackward(dh[i*h:(i+1)*h], nil, dxn[i*h:(i+1)*h], ps.xOut[i*h:(i+1)*h], m.outNorm, ps.invOut[i])
	}
	dAct := make([]float32, t*c.FFN)
	dGate, dUp := make([]float32, t*c.FFN), make([]float32, t*c.FFN)
	dm, dn := make([]float32, t*h), make([]float32, t*h)
	dAtt, dq := make([]float32, t*qd), make([]float32, t*qd)
	dk, dv := make([]float32, t*kvd), make([]float32, t*kvd)
	for li := len(m.blocks) - 1; li >= 0; li-- {
		b, a := &m.blocks[li], ps.blockActs(li)
		if ps.ckpt {
			ps.blockForward(li, a, ps.discard)
		}
		// FFN: h_out = xMid + down(silu(gate(mm)) ⊙ up(mm)), mm = norm(xMid).
		clear(dAct)
		b.lin[modDown].backward(dAct, dh, a.act, a.u[modDown], a.mask[modDown], t, th, &ps.tile)
		kernels.SiLUMulBackward(dGate, dUp, dAct, a.gate, a.up)
		clear(dm)
		b.lin[modGate].backward(dm, dGate, a.mm, a.u[modGate], a.mask[modGate], t, th, &ps.tile)
		b.lin[modUp].backward(dm, dUp, a.mm, a.u[modUp], a.mask[modUp], t, th, &ps.tile)
		for i := range t {
			kernels.RMSNormBackward(dn[i*h:(i+1)*h], nil, dm[i*h:(i+1)*h], a.xMid[i*h:(i+1)*h], b.ffnNorm, a.inv2[i])
		}
		kernels.Add(dh, dh, dn)
		// Attention: xMid = xIn + o(att).
		clear(dAtt)
		b.lin[modO].backward(dAtt, dh, a.att, a.u[modO], a.mask[modO], t, th, &ps.tile)
		ps.attentionBackward(a, dAtt, dq, dk, dv)
		for i := range t {
			m.rope.ApplyInverse(dq[i*qd:(i+1)*qd], c.Heads, d, i, c.Interleaved)
			m.rope.ApplyInverse(dk[i*kvd:(i+1)*kvd], c.KVHeads, d, i, c.Interleaved)
		}
		clear(dm)
		b.lin[modQ].backward(dm, dq, a.a, a.u[modQ], a.mask[modQ], t, th, &ps.tile)
		b.lin[modK].backward(dm, dk, a.a, a.u[modK], a.mask[modK], t, th, &ps.tile)
		b.lin[modV].backward(dm, dv, a.a, a.u[modV], a.mask[modV], t, th, &ps.tile)
		for i := range t {
			kernels.RMSNormBackward(dn[i*h:(i+1)*h], nil, dm[i*h:(i+1)*h], a.xIn[i*h:(i+1)*h], b.attnNorm, a.inv1[i])
		}
		kernels.Add(dh, dh, dn)
	}
}

// attentionBackward computes dq (rotated), dk, dv from dAtt, one
// key/value head (and the query heads that share it, in order) per
// goroutine at a time: each writes only its own columns of dq, dk and dv,
// so the sums do not depend on the number of threads.
func (ps *pass) attentionBackward(a *acts, dAtt, dq, dk, dv []float32) {
	c, t := &ps.m.Cfg, ps.t
	d := c.HeadDim
	qd, kvd := c.Heads*d, c.KVHeads*d
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(d)))
	clear(dk)
	clear(dv)
	nw := max(1, min(ps.th, c.KVHeads))
	dps := make([]float32, nw*t*t)
	parallelFor(c.KVHeads, nw, func(w, g int) {
		dp := dps[w*t*t : (w+1)*t*t]
		for hd := g * group; hd < (g+1)*group; hd++ {
			p := a.p[hd*t*t : (hd+1)*t*t]
			// dv += Pᵀ·dO; dP = dO·vᵀ.
			kernels.SgemmTN(t, d, t, p, t, dAtt[hd*d:], qd, dv[g*d:], kvd, true, 1)
			kernels.SgemmNT(t, t, d, dAtt[hd*d:], qd, a.v[g*d:], kvd, dp, t, false, 1)
			for i := range t {
				row := dp[i*t : i*t+i+1]
				kernels.SoftmaxBackward(row, p[i*t:i*t+i+1], row)
				kernels.Scale(row, scale)
				clear(dp[i*t+i+1 : (i+1)*t])
			}
			// dq = dS·k; dk += dSᵀ·q.
			kernels.SgemmNN(t, d, t, dp, t, a.k[g*d:], kvd, dq[hd*d:], qd, false, 1)
			kernels.SgemmTN(t, d, t, dp, t, a.q[hd*d:], qd, dk[g*d:], kvd, true, 1)
		}
	})
}

// parallelFor calls f(worker, i) for every i in [0, n), on up to th
// goroutines (the caller's included, worker numbering them from 0), each
// taking the next i in turn. Every f(_, i) must write only what no other i
// touches; then the result does not depend on th.
func parallelFor(n, th int, f func(worker, i int)) {
	th = min(th, n)
	if th <= 1 {
		for i := range n {
			f(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	work := func(w int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			f(w, i)
		}
	}
	wg.Add(th - 1)
	for w := 1; w < th; w++ {
		go func() {
			defer wg.Done()
			work(w)
		}()
	}
	work(0)
	wg.Wait()
}
