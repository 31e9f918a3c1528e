package train

import (
	"math"

	"github.com/qtool-dev/qtool/kernels"
)

// acts are one block's saved activations for one sequence of T tokens.
type acts struct {
	xIn, a, q, k, v, p, att, xMid, mm, gate, up, act []float32
	inv1, inv2                                       []float32
	u                                                [numModules][]float32
}

// pass is the work space of a forward/backward over one sequence.
type pass struct {
	m      *Model
	t      int
	th     int
	layers []acts
	xOut   []float32 // residual after the last block
	xn     []float32 // final norm
	invOut []float32
	logits []float32
	tile   []float32
}

func newPass(m *Model, t, th int) *pass {
	c := &m.Cfg
	h, qd, kvd := c.Hidden, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	ps := &pass{m: m, t: t, th: th, layers: make([]acts, c.Layers)}
	for i := range ps.layers {
		a := &ps.layers[i]
		a.xIn, a.a, a.xMid, a.mm = make([]float32, t*h), make([]float32, t*h), make([]float32, t*h), make([]float32, t*h)
		a.q, a.att = make([]float32, t*qd), make([]float32, t*qd)
		a.k, a.v = make([]float32, t*kvd), make([]float32, t*kvd)
		a.p = make([]float32, c.Heads*t*t)
		a.gate, a.up, a.act = make([]float32, t*c.FFN), make([]float32, t*c.FFN), make([]float32, t*c.FFN)
		a.inv1, a.inv2 = make([]float32, t), make([]float32, t)
		for j, l := range m.blocks[i].lin {
			if l.LoRA != nil {
				a.u[j] = make([]float32, t*l.LoRA.Rank)
			}
		}
	}
	ps.xOut, ps.xn, ps.invOut = make([]float32, t*h), make([]float32, t*h), make([]float32, t)
	ps.logits = make([]float32, t*c.Vocab)
	return ps
}

// forward runs tokens (len T) and leaves the logits [T×Vocab] in ps.logits.
func (ps *pass) forward(tokens []int32) {
	m, c, t, th := ps.m, &ps.m.Cfg, ps.t, ps.th
	h, d := c.Hidden, c.HeadDim
	qd, kvd := c.Heads*d, c.KVHeads*d
	x := ps.layers[0].xIn
	for i, id := range tokens {
		m.embed.Tile(x[i*h:(i+1)*h], int(id), int(id)+1, 0, h)
	}
	for li := range m.blocks {
		b, a := &m.blocks[li], &ps.layers[li]
		for i := range t {
			a.inv1[i] = kernels.RMSNorm(a.a[i*h:(i+1)*h], a.xIn[i*h:(i+1)*h], b.attnNorm, c.Eps)
		}
		b.lin[modQ].forward(a.q, a.a, t, a.u[modQ], th)
		b.lin[modK].forward(a.k, a.a, t, a.u[modK], th)
		b.lin[modV].forward(a.v, a.a, t, a.u[modV], th)
		for i := range t {
			m.rope.Apply(a.q[i*qd:(i+1)*qd], c.Heads, d, i, c.Interleaved)
			m.rope.Apply(a.k[i*kvd:(i+1)*kvd], c.KVHeads, d, i, c.Interleaved)
		}
		ps.attention(a)
		copy(a.xMid, a.xIn)
		b.lin[modO].forwardAdd(a.xMid, a.att, t, a.u[modO], th)
		for i := range t {
			a.inv2[i] = kernels.RMSNorm(a.mm[i*h:(i+1)*h], a.xMid[i*h:(i+1)*h], b.ffnNorm, c.Eps)
		}
		b.lin[modGate].forward(a.gate, a.mm, t, a.u[modGate], th)
		b.lin[modUp].forward(a.up, a.mm, t, a.u[modUp], th)
		kernels.SiLUMul(a.act, a.gate, a.up)
		next := ps.xOut
		if li+1 < len(ps.layers) {
			next = ps.layers[li+1].xIn
		}
		copy(next, a.xMid)
		b.lin[modDown].forwardAdd(next, a.act, t, a.u[modDown], th)
	}
	for i := range t {
		ps.invOut[i] = kernels.RMSNorm(ps.xn[i*h:(i+1)*h], ps.xOut[i*h:(i+1)*h], m.outNorm, c.Eps)
	}
	kernels.MatMulT(ps.logits, c.Vocab, ps.xn, h, t, m.output, false, th)
}

// forwardAdd adds the layer's output to y (the residual stream).
func (l *Linear) forwardAdd(y, x []float32, t int, u []float32, th int) {
	tmp := make([]float32, t*l.Out)
	l.forward(tmp, x, t, u, th)
	kernels.Add(y, y, tmp)
}

// attention fills a.att and the probabilities a.p from a.q, a.k, a.v.
func (ps *pass) attention(a *acts) {
	c, t := &ps.m.Cfg, ps.t
	d := c.HeadDim
	qd, kvd := c.Heads*d, c.KVHeads*d
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(d)))
	for hd := range c.Heads {
		g := hd / group
		p := a.p[hd*t*t : (hd+1)*t*t]
		kernels.SgemmNT(t, t, d, a.q[hd*d:], qd, a.k[g*d:], kvd, p, t, false, 1)
		for i := range t {
			row := p[i*t : (i+1)*t]
			kernels.Scale(row[:i+1], scale)
			kernels.SoftmaxCausal(row, i+1)
		}
		kernels.SgemmNN(t, d, t, p, t, a.v[g*d:], kvd, a.att[hd*d:], qd, false, 1)
	}
}

// loss returns the summed negative log-likelihood (float64) of targets
// where mask is set and the number counted; with grad it overwrites
// ps.logits with dL/dlogits of the summed loss (softmax − onehot on
// counted rows, 0 elsewhere).
func (ps *pass) loss(targets []int32, mask []bool, grad bool) (float64, int) {
	v := ps.m.Cfg.Vocab
	var nll float64
	n := 0
	for i := range ps.t {
		row := ps.logits[i*v : (i+1)*v]
		if !mask[i] {
			if grad {
				clear(row)
			}
			continue
		}
		mx := float64(row[0])
		for _, x := range row {
			mx = math.Max(mx, float64(x))
		}
		var sum float64
		for _, x := range row {
			sum += math.Exp(float64(x) - mx)
		}
		nll -= float64(row[targets[i]]) - mx - math.Log(sum)
		n++
		if grad {
			for j, x := range row {
				row[j] = float32(math.Exp(float64(x)-mx) / sum)
			}
			row[targets[i]]--
		}
	}
	return nll, n
}

// backward propagates dL/dlogits (in ps.logits) to the adapters,
// accumulating their gradients.
func (ps *pass) backward() {
	m, c, t, th := ps.m, &ps.m.Cfg, ps.t, ps.th
	h, d := c.Hidden, c.HeadDim
	qd, kvd := c.Heads*d, c.KVHeads*d
	dxn := make([]float32, t*h)
	addGW(dxn, ps.logits, t, m.output, th, &ps.tile)
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
		b, a := &m.blocks[li], &ps.layers[li]
		// FFN: h_out = xMid + down(silu(gate(mm)) ⊙ up(mm)), mm = norm(xMid).
		clear(dAct)
		b.lin[modDown].backward(dAct, dh, a.act, a.u[modDown], t, th, &ps.tile)
		kernels.SiLUMulBackward(dGate, dUp, dAct, a.gate, a.up)
		clear(dm)
		b.lin[modGate].backward(dm, dGate, a.mm, a.u[modGate], t, th, &ps.tile)
		b.lin[modUp].backward(dm, dUp, a.mm, a.u[modUp], t, th, &ps.tile)
		for i := range t {
			kernels.RMSNormBackward(dn[i*h:(i+1)*h], nil, dm[i*h:(i+1)*h], a.xMid[i*h:(i+1)*h], b.ffnNorm, a.inv2[i])
		}
		kernels.Add(dh, dh, dn)
		// Attention: xMid = xIn + o(att).
		clear(dAtt)
		b.lin[modO].backward(dAtt, dh, a.att, a.u[modO], t, th, &ps.tile)
		ps.attentionBackward(a, dAtt, dq, dk, dv)
		for i := range t {
			m.rope.ApplyInverse(dq[i*qd:(i+1)*qd], c.Heads, d, i, c.Interleaved)
			m.rope.ApplyInverse(dk[i*kvd:(i+1)*kvd], c.KVHeads, d, i, c.Interleaved)
		}
		clear(dm)
		b.lin[modQ].backward(dm, dq, a.a, a.u[modQ], t, th, &ps.tile)
		b.lin[modK].backward(dm, dk, a.a, a.u[modK], t, th, &ps.tile)
		b.lin[modV].backward(dm, dv, a.a, a.u[modV], t, th, &ps.tile)
		for i := range t {
			kernels.RMSNormBackward(dn[i*h:(i+1)*h], nil, dm[i*h:(i+1)*h], a.xIn[i*h:(i+1)*h], b.attnNorm, a.inv1[i])
		}
		kernels.Add(dh, dh, dn)
	}
}

// attentionBackward computes dq (rotated), dk, dv from dAtt.
func (ps *pass) attentionBackward(a *acts, dAtt, dq, dk, dv []float32) {
	c, t := &ps.m.Cfg, ps.t
	d := c.HeadDim
	qd, kvd := c.Heads*d, c.KVHeads*d
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(d)))
	clear(dk)
	clear(dv)
	dp := make([]float32, t*t)
	for hd := range c.Heads {
		g := hd / group
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
}
