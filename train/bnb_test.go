package train

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/internal/bnbtest"
	"github.com/qtool-dev/qtool/quantize"
)

const storiesHF = "../fixtures/stories260K-hf"

// TestBNBFolderTrainStep trains one step on stories260K stored as NF4
// with double quantization (the frozen projections read through the
// kernels' NF4 matrix over the mapped codes) and on the same folder
// dequantized to f32. The weights are equal bit for bit, so the loss, the
// updated adapters and the next gradients may differ only by float32
// summation order in the matrix kernels: relative 1e-5 for the loss and
// 1e-5 of the largest entry for A, B and the gradients (measured: loss
// and adapters identical, gradients 6e-6 of 17.9, i.e. 3e-7). The plan
// counts the NF4 folder's parameters as the f32 model's and its mapped
// bytes as the bytes of all its tensors.
func TestBNBFolderTrainStep(t *testing.T) {
	nf4, f32 := bnbtest.Folders(t, storiesHF, quantize.Config{Type: quantize.TypeNF4, DoubleQuant: true}, nil)
	type result struct {
		loss   float64
		params []float32 // A and B of every pair after the step
		grads  []float32 // the gradients of the next window
		plan   Plan
	}
	step := func(path string) result {
		tr, err := Open(path, Config{Rank: 4, Alpha: 8, SeqLen: 32, MaxSteps: 1, LR: 1e-2, Seed: 9, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if _, ok := tr.Model.Base.W.BNB("blk.0.attn_q.weight"); ok != (path == nf4) {
			t.Fatalf("%s: bitsandbytes weights seen: %v", path, ok)
		}
		text, _ := shakespeare(t)
		ws := Pack(tr.Model.Base.Tok, text, 32)
		if len(ws) < 2 {
			t.Fatalf("%d windows", len(ws))
		}
		sum, err := tr.Run(context.Background(), ws[:1], nil)
		if err != nil {
			t.Fatal(err)
		}
		r := result{loss: sum.FinalLoss, plan: tr.Plan()}
		for _, p := range tr.pairs {
			r.params = append(append(r.params, p.A...), p.B...)
		}
		tr.accumulate(ws[1])
		for _, p := range tr.pairs {
			r.grads = append(append(r.grads, p.GA...), p.GB...)
		}
		return r
	}
	q, d := step(nf4), step(f32)
	t.Logf("loss nf4 folder %.9f, dequantized %.9f", q.loss, d.loss)
	if math.Abs(q.loss-d.loss) > 1e-5*d.loss {
		t.Errorf("loss %.9f on the NF4 folder, %.9f dequantized", q.loss, d.loss)
	}
	for _, c := range []struct {
		what string
		a, b []float32
	}{{"adapters after the step", q.params, d.params}, {"gradients", q.grads, d.grads}} {
		worst, scale := 0.0, 0.0
		for i := range c.a {
			worst = math.Max(worst, math.Abs(float64(c.a[i]-c.b[i])))
			scale = math.Max(scale, math.Abs(float64(c.b[i])))
		}
		t.Logf("%s: max |Δ| %.3g of max %.3g", c.what, worst, scale)
		if worst > 1e-5*scale || scale == 0 {
			t.Errorf("%s differ by %.3g (max %.3g)", c.what, worst, scale)
		}
	}
	if q.plan.ModelParams != d.plan.ModelParams {
		t.Errorf("model params %d on the NF4 folder, %d dequantized", q.plan.ModelParams, d.plan.ModelParams)
	}
	for path, p := range map[string]Plan{nf4: q.plan, f32: d.plan} {
		r, err := safetensors.Open(filepath.Join(path, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		var bytes int64
		for _, ti := range r.Tensors() {
			bytes += ti.Size
		}
		r.Close()
		if p.MappedBytes != bytes {
			t.Errorf("%s: mapped bytes %d, the file's tensors hold %d", path, p.MappedBytes, bytes)
		}
	}
	if q.plan.MappedBytes >= d.plan.MappedBytes/2 {
		t.Errorf("NF4 folder maps %d bytes, the f32 one %d", q.plan.MappedBytes, d.plan.MappedBytes)
	}
}
