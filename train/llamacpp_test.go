package train

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/internal/llamacpptest"
)

// Jobs and results of ../convert/testdata/node/perplexity.mjs (its header
// describes the JOBS.json protocol), run through internal/llamacpptest.
type pplAdapter struct {
	Path  string  `json:"path"`
	Scale float64 `json:"scale"`
}

type pplWindow struct {
	Inputs  []int32 `json:"inputs"`
	Targets []int32 `json:"targets"`
	Mask    []bool  `json:"mask"`
}

type pplJob struct {
	Model   string       `json:"model"`
	LoRA    []pplAdapter `json:"lora,omitempty"`
	Windows []pplWindow  `json:"windows"`
}

type pplResult struct {
	Model   string  `json:"model"`
	Error   string  `json:"error"`
	NLL     float64 `json:"nll"`
	Count   int     `json:"count"`
	MeanNLL float64 `json:"mean_nll"`
}

func runPerplexity(t *testing.T, jobs []pplJob) []pplResult {
	t.Helper()
	var out []pplResult
	llamacpptest.RunScript(t, "perplexity.mjs", jobs, &out)
	for _, r := range out {
		if r.Error != "" {
			t.Fatalf("llama.cpp: %s", r.Error)
		}
	}
	return out
}

// TestLlamaCppSeesAdapter fine-tunes stories260K on tiny-shakespeare,
// writes the GGUF LoRA adapter, and has llama.cpp score the held-out
// windows with the base alone and with the adapter: llama.cpp's mean NLL
// equals the trainer's before and after training within 2e-4 nats (ggml's
// float32 kernels against ours), and so sees the same drop.
func TestLlamaCppSeesAdapter(t *testing.T) {
	if testing.Short() {
		t.Skip("trains and runs llama.cpp through node; -short")
	}
	llamacpptest.Require(t)
	trainS, valS := shakespeare(t)
	tr, err := Open(stories, Config{Rank: 8, Alpha: 16, SeqLen: 64, Batch: 2, MaxSteps: 30, LR: 3e-3,
		Schedule: "cosine", Warmup: 3, Seed: 42, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tw, vw := Pack(tr.Model.Base.Tok, trainS, 64), Pack(tr.Model.Base.Tok, valS, 64)
	sum, err := tr.Run(context.Background(), tw, vw)
	if err != nil {
		t.Fatal(err)
	}
	ad := filepath.Join(t.TempDir(), "adapter.gguf")
	if err := tr.Write(ad, false); err != nil {
		t.Fatal(err)
	}
	model, err := filepath.Abs(stories)
	if err != nil {
		t.Fatal(err)
	}
	var ws []pplWindow
	for _, w := range vw {
		ws = append(ws, pplWindow{w.Inputs, w.Targets, w.Mask})
	}
	res := runPerplexity(t, []pplJob{{Model: model, Windows: ws}, {Model: model, LoRA: []pplAdapter{{Path: ad, Scale: 1}}, Windows: ws}})
	const tol = 2e-4
	base, tuned := res[0], res[1]
	t.Logf("%d held-out windows: base NLL %.5f (llama.cpp %.5f), with adapter %.5f (llama.cpp %.5f); perplexity %.2f → %.2f",
		len(vw), sum.InitValLoss, base.MeanNLL, sum.FinalValLoss, tuned.MeanNLL, math.Exp(base.MeanNLL), math.Exp(tuned.MeanNLL))
	if math.Abs(base.MeanNLL-sum.InitValLoss) > tol {
		t.Errorf("base: llama.cpp mean NLL %.6f, trainer %.6f", base.MeanNLL, sum.InitValLoss)
	}
	if math.Abs(tuned.MeanNLL-sum.FinalValLoss) > tol {
		t.Errorf("with the adapter: llama.cpp mean NLL %.6f, trainer %.6f", tuned.MeanNLL, sum.FinalValLoss)
	}
	if tuned.MeanNLL > base.MeanNLL-0.2 {
		t.Errorf("llama.cpp sees held-out NLL %.4f → %.4f with the adapter: no clear drop", base.MeanNLL, tuned.MeanNLL)
	}
}
