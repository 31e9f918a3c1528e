package train

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/formats"
)

// tinyConfig is a small model with odd sizes and grouped-query attention
// (4 query heads on 2 KV heads, head size 6).
func tinyConfig() fixtures.ModelConfig {
	return fixtures.ModelConfig{Name: "train-tiny", Vocab: 300, Embd: 24, FF: 37, Layers: 2, Heads: 4, KVHeads: 2,
		Ctx: 64, DType: formats.F32, Seed: 7, RopeTheta: 10000, RMSEps: 1e-5}
}

// tinyModels writes the tiny model as a GGUF file (interleaved RoPE) and
// as a Hugging Face folder (rotate-half).
func tinyModels(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	c := tinyConfig()
	g := filepath.Join(dir, "tiny.gguf")
	if err := fixtures.WriteGGUF(context.Background(), g, c, false); err != nil {
		t.Fatal(err)
	}
	hf := filepath.Join(dir, "tiny-hf")
	if _, err := fixtures.WriteHFFolder(context.Background(), hf, c, 0, false); err != nil {
		t.Fatal(err)
	}
	// The generated folder has no tokenizer; the gradients do not need
	// one, so borrow stories260K's (token ids stay below Vocab).
	tok, err := os.ReadFile("../fixtures/stories260K-hf/tokenizer.model")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hf, "tokenizer.model"), tok, 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"gguf": g, "hf": hf}
}

func randomWindow(r *rand.Rand, vocab, n int) Window {
	w := Window{Inputs: make([]int32, n), Targets: make([]int32, n), Mask: make([]bool, n)}
	for i := range n {
		w.Inputs[i], w.Targets[i] = int32(r.IntN(vocab)), int32(r.IntN(vocab))
		w.Mask[i] = i%5 != 2
	}
	return w
}

// TestGradientFiniteDifferences compares the analytic gradients of every
// adapter (A and B, all seven targets, both layers) with central finite
// differences of the summed loss. Frozen weights are f32; the loss is
// accumulated in float64 from float32 logits, so with eps = 1e-2 the
// truncation error (O(eps²)) and the rounding error (≈1e-6·|loss|/eps) both
// stay well under the tolerance |num−ana| ≤ 1e-2·max(|num|, |ana|) + 5e-4.
func TestGradientFiniteDifferences(t *testing.T) {
	for conv, path := range tinyModels(t) {
		t.Run(conv, func(t *testing.T) {
			tr, err := Open(path, Config{Rank: 3, Alpha: 6, SeqLen: 11, Seed: 5, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if want := conv == "gguf"; tr.Model.Cfg.Interleaved != want {
				t.Fatalf("interleaved = %v, want %v", tr.Model.Cfg.Interleaved, want)
			}
			r := rand.New(rand.NewPCG(1, 2))
			for _, p := range tr.pairs {
				for i := range p.B {
					p.B[i] = float32(r.Float64()*0.6 - 0.3)
				}
			}
			w := randomWindow(r, tr.Model.Cfg.Vocab, 11)
			tr.accumulate(w)
			loss := func() float64 {
				ps := tr.getPass(len(w.Inputs))
				ps.forward(w.Inputs)
				l, _ := ps.loss(w.Targets, w.Mask, false)
				return l
			}
			const eps = 1e-2
			worst := 0.0
			checked := 0
			for pi, p := range tr.pairs {
				for _, m := range []struct {
					name       string
					param, grd []float32
				}{{"A", p.A, p.GA}, {"B", p.B, p.GB}} {
					for range 4 {
						i := r.IntN(len(m.param))
						old := m.param[i]
						m.param[i] = old + eps
						lp := loss()
						m.param[i] = old - eps
						lm := loss()
						m.param[i] = old
						num := (lp - lm) / (2 * eps)
						ana := float64(m.grd[i])
						diff := math.Abs(num - ana)
						rel := diff / math.Max(math.Max(math.Abs(num), math.Abs(ana)), 1e-12)
						if diff > 1e-2*math.Max(math.Abs(num), math.Abs(ana))+5e-4 {
							l := tr.lins[pi]
							t.Errorf("layer %d %s %s[%d]: analytic %.6g, numeric %.6g", l.Layer, moduleNames[l.Module], m.name, i, ana, num)
						}
						if math.Abs(num) > 1e-2 {
							worst = math.Max(worst, rel)
						}
						checked++
					}
				}
			}
			t.Logf("%s: %d entries checked over %d pairs, worst relative error %.2e (|grad| > 1e-2)", conv, checked, len(tr.pairs), worst)
		})
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }
