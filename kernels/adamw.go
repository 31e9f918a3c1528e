package kernels

import "math"

const (
	errAdamStep = "kernels: AdamW step must be ≥ 1"
)

// AdamW holds the hyper-parameters of the AdamW optimiser (Loshchilov &
// Hutter), with the semantics of PyTorch's torch.optim.AdamW: bias-corrected
// moments and weight decay decoupled from the gradient (applied to the
// parameter, scaled by the learning rate). The zero value is not useful;
// PyTorch's defaults are LR 1e-3, Beta1 0.9, Beta2 0.999, Eps 1e-8,
// WeightDecay 0.01. The trainer updates LR between steps for its schedule.
type AdamW struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
}

// Step applies optimiser step number step (1 for the first) to param, with
// grad the gradient and m, v the first and second moment estimates (zero
// before step 1), all of the same length. Per element, as PyTorch does:
//
//	param *= 1 - LR*WeightDecay
//	m += (1-Beta1) * (grad - m)                 // m = Beta1*m + (1-Beta1)*grad
//	v = Beta2*v + (1-Beta2)*grad*grad
//	param -= LR/(1-Beta1^step) * m / (sqrt(v)/sqrt(1-Beta2^step) + Eps)
//
// The step-dependent scalars are computed in float64, the element updates
// in float32.
func (o AdamW) Step(param, grad, m, v []float32, step int) {
	n := len(param)
	ewSameLen(n, len(grad), len(m), len(v))
	if step < 1 {
		panic(errAdamStep)
	}
	lr := float64(o.LR)
	bc1 := 1 - math.Pow(float64(o.Beta1), float64(step))
	bc2 := 1 - math.Pow(float64(o.Beta2), float64(step))
	decay := float32(1 - lr*float64(o.WeightDecay))
	stepSize := float32(lr / bc1)
	sqrtBC2 := float32(math.Sqrt(bc2))
	b2 := o.Beta2
	c1, c2 := 1-o.Beta1, 1-b2
	eps := o.Eps
	grad, m, v = grad[:n], m[:n], v[:n]
	for i, p := range param {
		g := grad[i]
		mi := m[i] + c1*(g-m[i])
		vi := b2*v[i] + c2*(g*g)
		m[i], v[i] = mi, vi
		denom := float32(math.Sqrt(float64(vi)))/sqrtBC2 + eps
		param[i] = p*decay - stepSize*(mi/denom)
	}
}
