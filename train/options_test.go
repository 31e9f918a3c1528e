package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// gradsAfter accumulates the gradients of the windows and returns every
// GA and GB, concatenated in pairs order.
func gradsAfter(t *testing.T, path string, cfg Config, ws []Window) ([]float32, float64) {
	t.Helper()
	tr, err := Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	r := newRand(21)
	for _, p := range tr.pairs {
		for i := range p.B {
			p.B[i] = float32(r.Float64()*0.6 - 0.3)
		}
	}
	var nll float64
	for _, w := range ws {
		l, _ := tr.accumulate(w)
		nll += l
	}
	var g []float32
	for _, p := range tr.pairs {
		g = append(append(g, p.GA...), p.GB...)
	}
	return g, nll
}

// TestGradCheckpointBitIdentical: recomputing each block's activations in
// its backward gives the same gradients, bit for bit, as keeping them,
// with and without dropout (whose masks the recomputation redraws from
// the same per-block seed), for several windows in a row.
func TestGradCheckpointBitIdentical(t *testing.T) {
	for conv, path := range tinyModels(t) {
		for _, p := range []float64{0, 0.2} {
			r := newRand(8)
			var ws []Window
			for range 3 {
				ws = append(ws, randomWindow(r, tinyConfig().Vocab, 17))
			}
			cfg := Config{Rank: 4, SeqLen: 17, Seed: 3, Threads: 2, Dropout: p}
			plain, l1 := gradsAfter(t, path, cfg, ws)
			cfg.GradCheckpoint = true
			ckpt, l2 := gradsAfter(t, path, cfg, ws)
			if l1 != l2 || !slices.Equal(plain, ckpt) {
				t.Errorf("%s dropout %g: checkpointing changes the loss (%v vs %v) or the gradients", conv, p, l1, l2)
			}
			nonzero := 0
			for _, x := range plain {
				if x != 0 {
					nonzero++
				}
			}
			if nonzero < len(plain)/2 {
				t.Errorf("%s: only %d of %d gradient entries are non-zero", conv, nonzero, len(plain))
			}
		}
	}
}

// TestDropoutGradient: with the dropout masks fixed (one step's seed), the
// loss is a smooth function of A and B, and the analytic gradients match
// its finite differences; the masks change the gradient, and evaluation
// ignores dropout.
func TestDropoutGradient(t *testing.T) {
	path := tinyModels(t)["gguf"]
	for _, ckpt := range []bool{false, true} {
		tr, err := Open(path, Config{Rank: 3, Alpha: 6, SeqLen: 11, Seed: 5, Threads: 1, Dropout: 0.3, GradCheckpoint: ckpt})
		if err != nil {
			t.Fatal(err)
		}
		checkGradients(t, tr, 11, 3)
		ps := tr.getPass(11)
		if !ps.training || ps.scratch == nil != !ckpt {
			t.Fatalf("pass state: training %v, scratch %v", ps.training, ps.scratch != nil)
		}
		w := randomWindow(newRand(1), tr.Model.Cfg.Vocab, 11)
		ps.forward(w.Inputs)
		train1, _ := ps.loss(w.Targets, w.Mask, false)
		evalLoss, _ := tr.Loss([]Window{w})
		tr.Cfg.Dropout = 0
		tr.pass = nil
		evalNoDrop, _ := tr.Loss([]Window{w})
		if evalLoss != evalNoDrop {
			t.Errorf("evaluation depends on dropout: %v vs %v", evalLoss, evalNoDrop)
		}
		cnt := 0
		for _, mk := range w.Mask {
			if mk {
				cnt++
			}
		}
		if math.Abs(train1/float64(cnt)-evalLoss) < 1e-9 {
			t.Errorf("the training forward (dropout 0.3) equals the evaluation one")
		}
		tr.Close()
	}
}

// TestLayersAndValidation: --layers adapts only the named blocks, and an
// out-of-range one or a bad dropout is a configuration error.
func TestLayersAndValidation(t *testing.T) {
	path := tinyModels(t)["gguf"]
	tr, err := Open(path, Config{Rank: 2, SeqLen: 8, Layers: []int{1}, Targets: []string{"q_proj", "down_proj"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.lins) != 2 || tr.lins[0].Layer != 1 || tr.lins[1].Layer != 1 {
		t.Errorf("adapted %d layers", len(tr.lins))
	}
	for _, l := range tr.Model.blocks[0].lin {
		if l.LoRA != nil {
			t.Errorf("block 0 %s is adapted", moduleNames[l.Module])
		}
	}
	// Training with block 0 frozen still works (its U tensors are absent).
	ws := []Window{randomWindow(newRand(2), tr.Model.Cfg.Vocab, 8)}
	for _, ck := range []bool{false, true} {
		tr.Cfg.GradCheckpoint, tr.pass = ck, nil
		if _, err := tr.Run(context.Background(), ws, ws); err != nil {
			t.Fatal(err)
		}
	}
	tr.Close()
	for _, c := range []Config{{Layers: []int{2}}, {Layers: []int{-1}}, {Dropout: 1}, {Dropout: -0.1}} {
		c.SeqLen = 8
		if tr, err := Open(path, c); !errors.Is(err, ErrConfig) {
			if err == nil {
				tr.Close()
			}
			t.Errorf("%+v: err %v, want ErrConfig", c, err)
		}
	}
}

func TestSplitWindows(t *testing.T) {
	var ws []Window
	for i := range 20 {
		ws = append(ws, Window{Inputs: []int32{int32(i)}})
	}
	tw, vw := SplitWindows(ws, 0.1, 7)
	if len(tw) != 18 || len(vw) != 2 {
		t.Fatalf("split 20 by 0.1: %d / %d", len(tw), len(vw))
	}
	tw2, vw2 := SplitWindows(ws, 0.1, 7)
	if vw[0].Inputs[0] != vw2[0].Inputs[0] || vw[1].Inputs[0] != vw2[1].Inputs[0] || len(tw2) != 18 {
		t.Error("the split is not a function of the seed")
	}
	seen := map[int32]bool{}
	for _, w := range append(append([]Window(nil), tw...), vw...) {
		seen[w.Inputs[0]] = true
	}
	if len(seen) != 20 {
		t.Errorf("split loses windows: %d distinct", len(seen))
	}
	if tw, vw := SplitWindows(ws[:2], 0.01, 1); len(tw) != 1 || len(vw) != 1 {
		t.Errorf("2 windows: %d / %d", len(tw), len(vw))
	}
	if tw, vw := SplitWindows(ws, 0, 1); len(tw) != 20 || vw != nil {
		t.Error("frac 0 holds out windows")
	}
}

func TestWriteFormat(t *testing.T) {
	tr, err := Open(tinyModels(t)["gguf"], Config{Rank: 2, SeqLen: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	dir := t.TempDir()
	// A .gguf-less name written as GGUF, and a .gguf name as a PEFT folder.
	if err := tr.WriteFormat(filepath.Join(dir, "a.bin"), "gguf", false); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a.bin")); err != nil || string(b[:4]) != "GGUF" {
		t.Errorf("a.bin: %v", err)
	}
	if err := tr.WriteFormat(filepath.Join(dir, "b.gguf"), "peft", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.gguf", "adapter_config.json")); err != nil {
		t.Error(err)
	}
	if err := tr.WriteFormat(filepath.Join(dir, "c"), "mlx", false); !errors.Is(err, ErrConfig) {
		t.Errorf("format mlx: %v", err)
	}
}
