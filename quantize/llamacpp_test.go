package quantize

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qtool-dev/qtool/internal/llamacpptest"

	"github.com/qtool-dev/qtool/formats/gguf"
)

// llama.cpp loads qtool's Q8_0, Q4_0 and IQ4_NL quantizations of
// stories260K (with llama-quantize's mix, as the CLI writes them by
// default) and generates 24 tokens from each; Q8_0's greedy continuation
// is the F32 model's.
func TestLlamaCppRunsQuantized(t *testing.T) {
	if testing.Short() {
		t.Skip("runs llama.cpp through node; -short")
	}
	llamacpptest.Require(t)
	dir := t.TempDir()
	types := []Type{TypeQ8_0, TypeQ4_0, TypeIQ4NL}
	jobs := []llamacpptest.Job{{Model: storiesGGUF, Prompt: "Once upon a time", N: 24}}
	for _, typ := range types {
		src, err := gguf.Open(storiesGGUF)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Plan(src, Config{Type: typ, Mix: true})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "stories260K-"+typ.String()+".gguf")
		err = gguf.WriteFile(context.Background(), path, out.Meta, out.Tensors, gguf.WriteOptions{}, false)
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, llamacpptest.Job{Model: path, Prompt: "Once upon a time", N: 24})
	}
	res := llamacpptest.Run(t, jobs)
	names := []string{"F32"}
	for _, typ := range types {
		names = append(names, typ.String())
	}
	for i, r := range res {
		if r.Error != "" {
			t.Errorf("%s: llama.cpp refused it: %s", names[i], r.Error)
			continue
		}
		if len(r.Generated) != 24 {
			t.Errorf("%s: generated %d tokens, want 24", names[i], len(r.Generated))
		}
		t.Logf("%s: %q", names[i], r.Text)
	}
	if t.Failed() {
		return
	}
	if !reflect.DeepEqual(res[1].Prompt, res[0].Prompt) || !reflect.DeepEqual(res[1].Generated, res[0].Generated) {
		t.Errorf("Q8_0 continues %q, the F32 model %q", res[1].Text, res[0].Text)
	}
}
