package llama

import (
	"fmt"
	"path/filepath"
	"testing"
)

var (
	peftAdapter = filepath.Join("..", "lora", "testdata", "stories260K-lora-peft")
	ggufAdapter = filepath.Join("..", "lora", "testdata", "stories260K-lora-f32.gguf")
)

// TestRuntimeLoRA: the PEFT adapter on the HF folder and the GGUF adapter
// on the GGUF base (its lora_b rows of Q/K permuted back) both give
// llama.cpp's runtime-LoRA greedy ids and log-probs.
func TestRuntimeLoRA(t *testing.T) {
	run := loadRefs(t)["base_plus_runtime_lora"]
	for _, c := range []struct{ base, adapter string }{
		{storiesHF, peftAdapter}, {storiesGGUF, ggufAdapter}, {storiesGGUF, peftAdapter}, {storiesHF, ggufAdapter},
	} {
		t.Run(filepath.Base(c.base)+"+"+filepath.Base(c.adapter), func(t *testing.T) {
			m := openModel(t, c.base, Options{Adapters: []string{c.adapter}})
			worst := checkRun(t, m, run, 32, 1e-4)
			t.Logf("max |Δ logprob| = %.2e", worst)
		})
	}
}

// TestQuantizedGoldens loads llama.cpp-quantized stories260K files. Q8_0
// must keep the f32 greedy path for 16 tokens; the 4- and 5-bit files must
// generate and stay near the f32 log-probs (the model is 260K parameters,
// so 4-bit noise is large relative to it).
func TestQuantizedGoldens(t *testing.T) {
	base := loadRefs(t)["base"]
	for _, c := range []struct {
		typ   string
		same  int     // greedy tokens that must equal f32
		maxLP float64 // bound on |Δ logprob| of the top-1 reference tokens
	}{
		{"Q8_0", 16, 0.005}, {"Q4_0", 0, 0.25}, {"IQ4_NL", 0, 0.25}, {"Q4_1", 0, 0.25}, {"Q5_0", 0, 0.15}, {"Q5_1", 0, 0.05},
	} {
		t.Run(c.typ, func(t *testing.T) {
			p := filepath.Join("..", "quantize", "testdata", "ggml", fmt.Sprintf("stories260K-%s-pure.gguf", c.typ))
			m := openModel(t, p, Options{})
			got := greedy(t, m, base.PromptIDs, 32)
			for i := range c.same {
				if got[i] != base.GeneratedIDs[i] {
					t.Fatalf("greedy differs from f32 at %d: %v", i, got)
				}
			}
			same := 0
			for same < len(got) && got[same] == base.GeneratedIDs[same] {
				same++
			}
			s := m.NewState(0)
			all, err := s.Forward(base.Positions[len(base.Positions)-1].Context, true)
			if err != nil {
				t.Fatal(err)
			}
			v, worst := m.Cfg.Vocab, 0.0
			for _, pos := range base.Positions {
				lp := logSoftmax(all[pos.Position*v : (pos.Position+1)*v])
				worst = max(worst, abs(lp[pos.Top[0].ID]-pos.Top[0].Logprob))
			}
			t.Logf("%s: %d/32 greedy ids equal f32, max |Δ top-1 logprob| %.3g; text %q", c.typ, same, worst, m.Tok.Decode(got))
			if worst > c.maxLP {
				t.Errorf("top-1 logprob moved by %.3g > %.3g", worst, c.maxLP)
			}
		})
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestSynthKQuants runs the synthetic 256-wide model in every stored type
// (K-quants through the row-dequantizing adapter) and compares the
// log-probs with its f16 original. The weights are random, so the
// bounds (about 1.5× what was measured, over all 320 log-probs) only
// catch a decoder that is wrong, and grow as the bits shrink.
func TestSynthKQuants(t *testing.T) {
	dir := filepath.Join("..", "quantize", "testdata", "ggml")
	ids := []int32{1, 300, 17, 42, 99, 250, 3, 8}
	ref := openModel(t, filepath.Join(dir, "synth-e256-ff768-f16.gguf"), Options{})
	want, err := ref.NewState(0).Forward(ids, true)
	if err != nil {
		t.Fatal(err)
	}
	v := ref.Cfg.Vocab
	for _, c := range []struct {
		typ string
		tol float64
	}{{"Q8_0-pure", 0.03}, {"Q6_K-pure", 0.1}, {"Q5_K-pure", 0.2}, {"Q4_K-pure", 0.3}, {"Q4_K_M", 0.3}, {"Q4_0-pure", 0.4}, {"IQ4_NL-pure", 0.3}} {
		m := openModel(t, filepath.Join(dir, "synth-e256-ff768-"+c.typ+".gguf"), Options{})
		got, err := m.NewState(0).Forward(ids, true)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for p := range ids {
			a, b := logSoftmax(got[p*v:(p+1)*v]), logSoftmax(want[p*v:(p+1)*v])
			for i := range a {
				worst = max(worst, abs(a[i]-b[i]))
			}
		}
		t.Logf("%s: max |Δ logprob| vs f16 %.3g", c.typ, worst)
		if worst > c.tol {
			t.Errorf("%s: max |Δ logprob| %.3g > %.3g", c.typ, worst, c.tol)
		}
	}
}
