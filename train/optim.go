package train

import (
	"math"

	"github.com/qtool-dev/qtool/kernels"
)

// LRAt is the learning rate of optimizer step s (1-based) of total: a
// linear warmup from base/warmup to base over the first warmup steps, then
// constant, linear decay to 0, or cosine decay to 0 at step total.
func LRAt(schedule string, base float64, s, warmup, total int) float64 {
	if warmup > 0 && s <= warmup {
		return base * float64(s) / float64(warmup)
	}
	span := total - warmup
	if span <= 0 {
		return base
	}
	prog := math.Min(1, float64(s-warmup)/float64(span))
	switch schedule {
	case "linear":
		return base * (1 - prog)
	case "cosine":
		return base * 0.5 * (1 + math.Cos(math.Pi*prog))
	}
	return base
}

// finishGradients divides the accumulated gradients by the number of
// counted tokens, clips them to maxNorm (when > 0) by their global norm and
// returns the norm before clipping.
func finishGradients(ps []*LoRA, count int, maxNorm float64) float64 {
	inv := float32(1 / float64(max(count, 1)))
	var ss float64
	for _, p := range ps {
		for _, g := range [][]float32{p.GA, p.GB} {
			kernels.Scale(g, inv)
			for _, x := range g {
				ss += float64(x) * float64(x)
			}
		}
	}
	norm := math.Sqrt(ss)
	if maxNorm > 0 && norm > maxNorm {
		f := float32(maxNorm / (norm + 1e-6))
		for _, p := range ps {
			kernels.Scale(p.GA, f)
			kernels.Scale(p.GB, f)
		}
	}
	return norm
}

// adamStep updates every pair with AdamW and clears the gradients.
func adamStep(ps []*LoRA, opt kernels.AdamW, step int) {
	for _, p := range ps {
		opt.Step(p.A, p.GA, p.mA, p.vA, step)
		opt.Step(p.B, p.GB, p.mB, p.vB, step)
		clear(p.GA)
		clear(p.GB)
	}
}
