package llama

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

var (
	storiesGGUF = filepath.Join("..", "fixtures", "stories260K", "stories260K.gguf")
	storiesHF   = filepath.Join("..", "fixtures", "stories260K-hf")
)

type refTop struct {
	ID      int32   `json:"id"`
	Logprob float64 `json:"logprob"`
}

type refPos struct {
	Position int      `json:"position"`
	Context  []int32  `json:"context_ids"`
	Top      []refTop `json:"top"`
}

type refRun struct {
	PromptIDs    []int32  `json:"prompt_ids"`
	GeneratedIDs []int32  `json:"generated_ids"`
	Positions    []refPos `json:"positions"`
}

func loadRefs(t *testing.T) map[string]refRun {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "reference_outputs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Configs map[string]struct {
			Runs map[string]refRun `json:"runs"`
		} `json:"configs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Configs["precise"].Runs
}

func openModel(t testing.TB, path string, opts Options) *Model {
	t.Helper()
	m, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// greedy decodes n tokens greedily after prompt.
func greedy(t testing.TB, m *Model, prompt []int32, n int) []int32 {
	t.Helper()
	s := m.NewState(0)
	logits, err := s.Forward(prompt, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []int32
	for range n {
		id := Argmax(logits)
		out = append(out, id)
		if logits, err = s.Forward([]int32{id}, false); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func logSoftmax(logits []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - mx)
	}
	lse := mx + math.Log(sum)
	out := make([]float64, len(logits))
	for i, v := range logits {
		out[i] = float64(v) - lse
	}
	return out
}

// checkRun compares greedy ids (first nIDs) and the top-5 log-probs of
// every reference position within tol; it returns the largest difference.
func checkRun(t *testing.T, m *Model, run refRun, nIDs int, tol float64) float64 {
	t.Helper()
	got := greedy(t, m, run.PromptIDs, nIDs)
	for i := range got {
		if got[i] != run.GeneratedIDs[i] {
			t.Fatalf("greedy ids differ at %d:\n got %v\nwant %v", i, got, run.GeneratedIDs[:nIDs])
		}
	}
	last := run.Positions[len(run.Positions)-1]
	ctx := last.Context
	s := m.NewState(0)
	all, err := s.Forward(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	v := m.Cfg.Vocab
	worst := 0.0
	for _, p := range run.Positions {
		lp := logSoftmax(all[p.Position*v : (p.Position+1)*v])
		for _, e := range p.Top {
			d := math.Abs(lp[e.ID] - e.Logprob)
			worst = math.Max(worst, d)
			if d > tol {
				t.Errorf("position %d token %d: logprob %.6f, want %.6f", p.Position, e.ID, lp[e.ID], e.Logprob)
			}
		}
		if Argmax(all[p.Position*v:(p.Position+1)*v]) != p.Top[0].ID {
			t.Errorf("position %d: argmax differs", p.Position)
		}
	}
	return worst
}

func TestStoriesGGUFMatchesLlamaCpp(t *testing.T) {
	refs := loadRefs(t)
	m := openModel(t, storiesGGUF, Options{})
	if !m.Cfg.Interleaved {
		t.Fatal("GGUF llama should use interleaved RoPE")
	}
	worst := checkRun(t, m, refs["base"], 32, 1e-4)
	t.Logf("max |Δ logprob| = %.2e", worst)
}

func TestStoriesHFMatchesLlamaCpp(t *testing.T) {
	refs := loadRefs(t)
	m := openModel(t, storiesHF, Options{})
	if m.Cfg.Interleaved {
		t.Fatal("HF folder should use rotate-half RoPE")
	}
	worst := checkRun(t, m, refs["base"], 32, 1e-4)
	t.Logf("max |Δ logprob| = %.2e", worst)
}

func TestStoriesTokenizerPrompt(t *testing.T) {
	refs := loadRefs(t)
	for _, p := range []string{storiesGGUF, storiesHF} {
		m := openModel(t, p, Options{})
		got := m.Tok.Encode("Once upon a time", EncodeDefaults())
		want := refs["base"].PromptIDs
		if len(got) != len(want) {
			t.Fatalf("%s: prompt ids %v, want %v", p, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: prompt ids %v, want %v", p, got, want)
			}
		}
	}
}

// TestTinyLlamaMatchesLlamaCpp: tiny_llama.gguf (random weights) against
// node-llama-cpp with its default F16 KV cache, hence the looser bound.
func TestTinyLlamaMatchesLlamaCpp(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "tiny_llama.reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var run refRun
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	m := openModel(t, filepath.Join("..", "formats", "gguf", "testdata", "tiny_llama.gguf"), Options{})
	worst := checkRun(t, m, run, len(run.GeneratedIDs), 2e-3)
	t.Logf("max |Δ logprob| = %.2e", worst)
}
