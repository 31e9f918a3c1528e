package train

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/llama"
	"github.com/qtool-dev/qtool/lora"
)

const stories = "../fixtures/stories260K/stories260K.gguf"

// llamaLoss is the mean NLL of the windows under llama's own forward pass.
func llamaLoss(t *testing.T, m *llama.Model, ws []Window) float64 {
	t.Helper()
	st := m.NewState(len(ws[0].Inputs))
	var nll float64
	n := 0
	v := m.Cfg.Vocab
	for _, w := range ws {
		st.Reset()
		logits, err := st.Forward(w.Inputs, true)
		if err != nil {
			t.Fatal(err)
		}
		for i := range w.Inputs {
			if !w.Mask[i] {
				continue
			}
			row := logits[i*v : (i+1)*v]
			mx := math.Inf(-1)
			for _, x := range row {
				mx = math.Max(mx, float64(x))
			}
			var s float64
			for _, x := range row {
				s += math.Exp(float64(x) - mx)
			}
			nll -= float64(row[w.Targets[i]]) - mx - math.Log(s)
			n++
		}
	}
	return nll / float64(n)
}

// TestZeroBMatchesLlama: with B = 0 the trainer's forward is llama's.
func TestZeroBMatchesLlama(t *testing.T) {
	paths := tinyModels(t)
	paths["stories260K"] = stories
	for name, path := range paths {
		tr, err := Open(path, Config{SeqLen: 32, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		var ws []Window
		if name == "stories260K" {
			ws = Pack(tr.Model.Base.Tok, []Sample{{Text: "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun with her dog."}}, 16)
		} else {
			ws = []Window{randomWindow(newRand(3), tr.Model.Cfg.Vocab, 32)}
		}
		got, _ := tr.Loss(ws)
		want := llamaLoss(t, tr.Model.Base, ws)
		if math.Abs(got-want) > 1e-5*want {
			t.Errorf("%s: trainer loss %.7f, llama %.7f", name, got, want)
		}
		t.Logf("%s: loss %.7f (llama %.7f)", name, got, want)
		tr.Close()
	}
}

func shakespeare(t *testing.T) (train, val []Sample) {
	b, err := os.ReadFile("testdata/shakespeare-30k.txt")
	if err != nil {
		t.Fatal(err)
	}
	return []Sample{{Text: string(b[:24000])}}, []Sample{{Text: string(b[24000:])}}
}

// TestLearnShakespeare fine-tunes stories260K on tiny-shakespeare and
// checks the held-out loss drops clearly; then the written PEFT adapter,
// applied at run time by llama, gives the trainer's final held-out loss,
// and the GGUF adapter is written too.
func TestLearnShakespeare(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	trainS, valS := shakespeare(t)
	var f32Loss float64
	for _, q := range []string{"", "nf4"} {
		t.Run("base="+map[string]string{"": "f32", "nf4": "nf4"}[q], func(t *testing.T) {
			var curve []EvalStats
			tr, err := Open(stories, Config{Rank: 8, Alpha: 16, SeqLen: 64, Batch: 2, MaxSteps: 60, LR: 3e-3,
				Schedule: "cosine", Warmup: 5, EvalEvery: 20, Seed: 42, Threads: 2, Quantize: q,
				OnEval: func(e EvalStats) { curve = append(curve, e) }})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			tw, vw := Pack(tr.Model.Base.Tok, trainS, 64), Pack(tr.Model.Base.Tok, valS, 64)
			sum, err := tr.Run(context.Background(), tw, vw)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d train / %d val windows; val loss %.4f → %.4f; curve %+v", len(tw), len(vw), sum.InitValLoss, sum.FinalValLoss, curve)
			t.Logf("%.3f s/step, %.0f tokens/s, %d trainable params", sum.SecPerStep, sum.TokensPerS, sum.Params)
			if sum.FinalValLoss > sum.InitValLoss-0.3 {
				t.Errorf("held-out loss %.4f → %.4f: did not drop by 0.3 nats", sum.InitValLoss, sum.FinalValLoss)
			}
			if q != "" {
				// QLoRA on the NF4 base ends within a few percent of LoRA on f32.
				if f32Loss > 0 && sum.FinalValLoss > 1.05*f32Loss {
					t.Errorf("nf4 held-out loss %.4f is more than 5%% above f32's %.4f", sum.FinalValLoss, f32Loss)
				}
				return
			}
			f32Loss = sum.FinalValLoss
			dir := t.TempDir()
			peft, gg := filepath.Join(dir, "adapter"), filepath.Join(dir, "adapter.gguf")
			if err := tr.Write(peft, false); err != nil {
				t.Fatal(err)
			}
			if err := tr.Write(gg, false); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{peft, gg} {
				if _, err := lora.Load(p, lora.LoadOptions{Base: tr.Model.Base.Source()}); err != nil {
					t.Fatal(err)
				}
				m, err := llama.Open(stories, llama.Options{Adapters: []string{p}, MaxContext: 64})
				if err != nil {
					t.Fatal(err)
				}
				got := llamaLoss(t, m, vw)
				m.Close()
				if math.Abs(got-sum.FinalValLoss) > 1e-4 {
					t.Errorf("%s: llama with the adapter scores %.6f, the trainer %.6f", filepath.Base(p), got, sum.FinalValLoss)
				}
			}
		})
	}
}

// TestDeterministic: the same seed gives byte-identical adapters.
func TestDeterministic(t *testing.T) {
	path := tinyModels(t)["gguf"]
	run := func(dir string) []byte {
		tr, err := Open(path, Config{Rank: 4, SeqLen: 16, MaxSteps: 4, Batch: 2, GradAccum: 2, LR: 1e-2, Seed: 9, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		r := newRand(4)
		var ws []Window
		for range 6 {
			ws = append(ws, randomWindow(r, tr.Model.Cfg.Vocab, 16))
		}
		if _, err := tr.Run(context.Background(), ws, nil); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "a")
		if err := tr.Write(out, false); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, "adapter_model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := run(t.TempDir()), run(t.TempDir())
	if !bytes.Equal(a, b) {
		t.Fatal("two runs with the same seed wrote different adapters")
	}
}
