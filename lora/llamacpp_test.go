package lora

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qtool-dev/qtool/internal/llamacpptest"

	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/quantize"
)

// referenceRuns reads the generated ids of reference_outputs.json.
func referenceRuns(t *testing.T) (prompt []int, runs map[string]map[string][]int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "merge", "reference_outputs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		PromptIDs []int `json:"prompt_ids"`
		Configs   map[string]struct {
			Runs map[string]struct {
				Generated []int `json:"generated_ids"`
			} `json:"runs"`
		} `json:"configs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	runs = map[string]map[string][]int{}
	for cfg, c := range doc.Configs {
		runs[cfg] = map[string][]int{}
		for run, r := range c.Runs {
			runs[cfg][run] = r.Generated
		}
	}
	return doc.PromptIDs, runs
}

// llama.cpp greedy-generates from qtool's merged stories260K the 32 tokens
// it generates from llama-export-lora's merge and from the base with the
// adapter applied at run time (reference_outputs.json), and the golden
// merge, loaded in the same process, reproduces its reference too. A merge
// re-quantized into a Q8_0 base loads and generates.
func TestLlamaCppMergedGeneration(t *testing.T) {
	if testing.Short() {
		t.Skip("llama.cpp check skipped in -short mode")
	}
	llamacpptest.Require(t)
	base := mergeOpenGGUF(t, mergeStoriesGGUF)
	out, err := Merge(base, MergeConfig{Adapters: []*Adapter{storiesAdapter(t, base)}})
	if err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(t.TempDir(), "stories260K-qtool-merged.gguf")
	if err := gguf.WriteFile(context.Background(), merged, out.Meta, out.Tensors, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	// And a re-quantized merge into a Q8_0 base, which llama.cpp must load
	// (its text may differ: Q8_0 rounds the weights).
	q8 := quantizedGGUF(t, quantize.TypeQ8_0)
	outQ, err := Merge(q8, MergeConfig{Adapters: []*Adapter{storiesAdapter(t, q8)}, Requantize: true})
	if err != nil {
		t.Fatal(err)
	}
	mergedQ := filepath.Join(t.TempDir(), "stories260K-qtool-merged-q8_0.gguf")
	if err := gguf.WriteFile(context.Background(), mergedQ, outQ.Meta, outQ.Tensors, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	const prompt = "Once upon a time"
	res := llamacpptest.Run(t, []llamacpptest.Job{{Model: merged, Prompt: prompt, N: 32}, {Model: mergeGolden, Prompt: prompt, N: 32}, {Model: mergedQ, Prompt: prompt, N: 32}})
	if r := res[2]; r.Error != "" || len(r.Generated) != 32 {
		t.Errorf("llama.cpp on the re-quantized Q8_0 merge: %q, %d tokens", r.Error, len(r.Generated))
	} else {
		t.Logf("Q8_0 merge: %q", r.Text)
	}
	res = res[:2]
	wantPrompt, runs := referenceRuns(t)
	for _, cfg := range []string{"precise", "default"} {
		if !reflect.DeepEqual(runs[cfg]["merged"], runs[cfg]["base_plus_runtime_lora"]) || len(runs[cfg]["merged"]) != 32 {
			t.Fatalf("reference_outputs.json: %s merged and runtime-LoRA ids differ", cfg)
		}
	}
	want := runs["default"]["merged"]
	for i, r := range res {
		if r.Error != "" {
			t.Fatalf("llama.cpp refused %s: %s", r.Model, r.Error)
		}
		if !reflect.DeepEqual(r.Prompt, wantPrompt) {
			t.Errorf("%s: prompt ids %v, want %v", r.Model, r.Prompt, wantPrompt)
		}
		if !reflect.DeepEqual(r.Generated, want) {
			t.Errorf("job %d (%s): llama.cpp generated %v (%q), want %v", i, filepath.Base(r.Model), r.Generated, r.Text, want)
		}
	}
	t.Logf("qtool merge: %q", res[0].Text)
}
