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
	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/quantize"
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
// accumulated in float64 from float32 logits, so with eps = 1e-2 and 5e-3
// (Richardson-extrapolated) the truncation error (O(eps⁴)) and the rounding
// error (≈1e-6·|loss|/eps) both stay well under the tolerance
// |num−ana| ≤ 1e-2·max(|num|, |ana|) + 5e-4.
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
			checkGradients(t, tr, 11, 4)
		})
	}
}

// quantConfig is tinyConfig with the hidden and feed-forward sizes
// multiples of 32 (the Q8_0/Q4_0 block) and of 64 (the NF4 block): 4 query
// heads of 16 on 2 KV heads.
func quantConfig() fixtures.ModelConfig {
	c := tinyConfig()
	c.Name, c.Embd, c.FF = "train-quant", 64, 96
	return c
}

// quantizedGGUF writes c as a GGUF file and re-encodes every weight matrix
// (token embedding included) to typ, as `qtool quantize --pure` does.
func quantizedGGUF(t *testing.T, c fixtures.ModelConfig, typ quantize.Type) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "f32.gguf")
	if err := fixtures.WriteGGUF(context.Background(), src, c, false); err != nil {
		t.Fatal(err)
	}
	in, _, err := detect.Open(src, detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := quantize.Plan(in, quantize.Config{Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, typ.String()+".gguf")
	if err := gguf.WriteFile(context.Background(), dst, out.Meta, out.Tensors, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestGradientFiniteDifferencesDTypes repeats the finite-difference check
// with the frozen weights stored as f16, bf16 (fixtures' own encodings),
// Q8_0 and Q4_0 (GGUF re-encoded by the quantizer) and NF4 (Quantize:
// "nf4", QLoRA on the f32 base). The weights differ from the f32 model's,
// but the analytic gradient must match finite differences of the same
// quantized model: the forward product reads the stored type, the
// backward's G·W0 the same values dequantized tile by tile.
func TestGradientFiniteDifferencesDTypes(t *testing.T) {
	type model struct {
		name, path, quant string
		want              formats.DType // stored type of the projections (Invalid: NF4 in memory)
	}
	var models []model
	for _, d := range []formats.DType{formats.F16, formats.BF16} {
		c := tinyConfig()
		c.DType = d
		p := filepath.Join(t.TempDir(), "tiny.gguf")
		if err := fixtures.WriteGGUF(context.Background(), p, c, false); err != nil {
			t.Fatal(err)
		}
		models = append(models, model{name: d.String(), path: p, want: d})
	}
	models = append(models,
		model{name: "q8_0", path: quantizedGGUF(t, quantConfig(), quantize.TypeQ8_0), want: formats.Q8_0},
		model{name: "q4_0", path: quantizedGGUF(t, quantConfig(), quantize.TypeQ4_0), want: formats.Q4_0})
	nf4 := filepath.Join(t.TempDir(), "quant.gguf")
	if err := fixtures.WriteGGUF(context.Background(), nf4, quantConfig(), false); err != nil {
		t.Fatal(err)
	}
	models = append(models, model{name: "nf4", path: nf4, quant: "nf4", want: formats.Invalid})
	for _, md := range models {
		t.Run(md.name, func(t *testing.T) {
			tr, err := Open(md.path, Config{Rank: 3, Alpha: 6, SeqLen: 19, Seed: 5, Threads: 1, Quantize: md.quant})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			for _, l := range tr.Model.blocks[0].lin {
				if got := storedType(l.W); got != md.want {
					t.Fatalf("%s is %s, want %s", moduleNames[l.Module], got, md.want)
				}
			}
			// 19 tokens: past the row-decoding (skinny) path of the forward products.
			checkGradients(t, tr, 19, 3)
		})
	}
}

// storedType is the type a frozen matrix is read in (Invalid for NF4).
func storedType(w kernels.BMatrix) formats.DType {
	switch w.(type) {
	case *kernels.F32Matrix, kernels.F32Matrix:
		return formats.F32
	case *kernels.F16Matrix:
		return formats.F16
	case *kernels.BF16Matrix:
		return formats.BF16
	case *kernels.Q8_0Matrix:
		return formats.Q8_0
	case *kernels.Q4_0Matrix:
		return formats.Q4_0
	}
	return formats.Invalid
}

// checkGradients sets every B to random values (so that every path
// carries gradient), accumulates the analytic gradients of one random
// window of n tokens and compares perPair random entries of each A and B
// with central differences of the summed loss, Richardson-extrapolated
// from eps = 1e-2 and 5e-3 (truncation error O(eps⁴)):
// |num−ana| ≤ 1e-2·max(|num|, |ana|) + 5e-4.
func checkGradients(t *testing.T, tr *Trainer, n, perPair int) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	for _, p := range tr.pairs {
		for i := range p.B {
			p.B[i] = float32(r.Float64()*0.6 - 0.3)
		}
	}
	w := randomWindow(r, tr.Model.Cfg.Vocab, n)
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
			for range perPair {
				i := r.IntN(len(m.param))
				old := m.param[i]
				central := func(e float32) float64 {
					m.param[i] = old + e
					lp := loss()
					m.param[i] = old - e
					lm := loss()
					m.param[i] = old
					return (lp - lm) / float64(2*e)
				}
				// Richardson extrapolation of two central differences
				// cancels their O(eps²) truncation error.
				num := (4*central(eps/2) - central(eps)) / 3
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
	t.Logf("%d entries checked over %d pairs, worst relative error %.2e (|grad| > 1e-2)", checked, len(tr.pairs), worst)
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }
