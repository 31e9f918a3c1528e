package train

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/formats"
)

// BenchmarkStep times one optimizer step (forward, loss, backward and
// AdamW over Batch windows of SeqLen tokens; LoRA rank 8 on all seven
// projections, 2 threads) on stories260K and on a model of Llama 3.2 1B's
// width and vocabulary cut to two blocks, f16 (generated into a temporary
// folder, about 770 MB; QTOOL_BENCH_MODEL names another model to time
// instead). scripts/bench-finetune.sh times whole models against PyTorch;
// this is the benchmark to profile (-cpuprofile).
func BenchmarkStep(b *testing.B) {
	wide := ""
	wideModel := func() string {
		if wide == "" {
			wide = wide1B(b, b.TempDir())
		}
		return wide
	}
	cases := []struct {
		name       string
		path       func() string
		seq, batch int
		quant      string
	}{
		{"stories260K", func() string { return stories }, 128, 4, ""},
		{"1b-width-2-blocks-f16", wideModel, 128, 1, ""},
		{"1b-width-2-blocks-nf4", wideModel, 128, 1, "nf4"},
	}
	if p := os.Getenv("QTOOL_BENCH_MODEL"); p != "" {
		cases = cases[:1]
		cases[0].name, cases[0].path, cases[0].batch = filepath.Base(p), func() string { return p }, 1
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			tr, err := Open(c.path(), Config{Rank: 8, Alpha: 16, SeqLen: c.seq, Batch: c.batch, LR: 1e-3,
				Schedule: "constant", Seed: 1, Threads: 2, Quantize: c.quant})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			r := newRand(3)
			var ws []Window
			for range 2 * c.batch {
				ws = append(ws, randomWindow(r, min(tr.Model.Cfg.Vocab, 512), c.seq))
			}
			step := func() {
				tr.Cfg.MaxSteps = tr.step + 1
				if _, err := tr.Run(context.Background(), ws, nil); err != nil {
					b.Fatal(err)
				}
			}
			step() // allocation and first touch of the mapping
			b.ResetTimer()
			for range b.N {
				step()
			}
			b.ReportMetric(float64(b.N*c.seq*c.batch)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// wide1B writes the fixtures' "1b" shape with two blocks, stored f16,
// into dir.
func wide1B(b *testing.B, dir string) string {
	c, _ := fixtures.Preset("1b")
	c.Layers, c.DType, c.Name = 2, formats.F16, "synthetic-1b-width-2-blocks"
	p := filepath.Join(dir, "model.gguf")
	if err := fixtures.WriteGGUF(context.Background(), p, c, false); err != nil {
		b.Fatal(err)
	}
	return p
}

// TestThreadsSameBytes: the trained adapter does not depend on the number
// of threads (the kernels' products sum in a fixed order, and the
// trainer's own parallel loops — heads, key/value groups, loss rows — give
// each goroutine its own outputs), on stories260K and on the tiny GQA
// model, with dropout and gradient checkpointing.
func TestThreadsSameBytes(t *testing.T) {
	paths := map[string]string{"stories260K": stories, "tiny": tinyModels(t)["gguf"]}
	for name, path := range paths {
		var first []byte
		for _, th := range []int{1, 2, 3} {
			tr, err := Open(path, Config{Rank: 4, SeqLen: 24, MaxSteps: 3, Batch: 2, LR: 1e-2, Seed: 3, Threads: th,
				Dropout: 0.1, GradCheckpoint: th == 3})
			if err != nil {
				t.Fatal(err)
			}
			r := newRand(8)
			var ws []Window
			for range 4 {
				ws = append(ws, randomWindow(r, tr.Model.Cfg.Vocab, 24))
			}
			if _, err := tr.Run(context.Background(), ws, nil); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "a")
			if err := tr.Write(out, false); err != nil {
				t.Fatal(err)
			}
			tr.Close()
			b, err := os.ReadFile(filepath.Join(out, "adapter_model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = b
			} else if !bytes.Equal(b, first) {
				t.Errorf("%s: %d threads wrote another adapter than 1 thread", name, th)
			}
		}
	}
}
