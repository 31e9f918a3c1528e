package train

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qtool-dev/qtool/llama"
	"github.com/qtool-dev/qtool/tokenizer"
)

// taskSamples is a closed-book question set: twenty children, each with
// a favourite thing assigned arbitrarily (every answer is used twice), so
// nothing in the prompt predicts the answer and the base model cannot
// know it: the adapter has to learn the mapping. Each answer ends with a
// full stop that marks its end (see TestPromptCompletionTask for why not
// EOS).
func taskSamples() []Sample {
	names := []string{"Tom", "Lily", "Ben", "Sue", "Max", "Anna", "Sam", "Mia", "Tim", "Zoe",
		"Jack", "Lucy", "Leo", "Amy", "Bob", "Kim", "Dan", "Eva", "Joe", "Ivy"}
	things := []string{"cat", "ball", "tree", "fish", "cake", "boat", "bird", "hat", "frog", "dog"}
	var out []Sample
	for i, n := range names {
		out = append(out, Sample{Prompt: fmt.Sprintf("Q: What does %s love?\nA:", n), Completion: " " + things[(7*i+3)%len(things)] + "."})
	}
	return out
}

// taskWindows packs each sample into a window of its own (Pack's
// encoding and loss mask: prompt tokens are not targets, the completion
// and its EOS are), padded with EOS to n predictions that the mask leaves
// out, so that every window starts at the sample's BOS as a prompt does at
// decoding time.
func taskWindows(t *testing.T, tok *tokenizer.Tokenizer, samples []Sample, n int) []Window {
	t.Helper()
	var out []Window
	for _, s := range samples {
		// Pack with one prediction a window yields the sample's whole
		// stream (len−1 windows); once more with len−1 gives one window.
		k := len(Pack(tok, []Sample{s}, 1))
		ws := Pack(tok, []Sample{s}, k)
		if len(ws) != 1 || k > n {
			t.Fatalf("%q: %d tokens packed into %d windows (pad to %d)", s.Prompt, k+1, len(ws), n)
		}
		w := Window{Inputs: slices.Clone(ws[0].Inputs), Targets: slices.Clone(ws[0].Targets), Mask: slices.Clone(ws[0].Mask)}
		for len(w.Inputs) < n {
			w.Inputs = append(w.Inputs, tok.EOS())
			w.Targets = append(w.Targets, tok.EOS())
			w.Mask = append(w.Mask, false)
		}
		out = append(out, w)
	}
	return out
}

// withoutEOS is ws with the EOS targets left out of the mask: the loss on
// the answers alone.
func withoutEOS(ws []Window, eos int32) []Window {
	out := make([]Window, len(ws))
	for i, w := range ws {
		m := slices.Clone(w.Mask)
		for j := range m {
			m[j] = m[j] && w.Targets[j] != eos
		}
		out[i] = Window{Inputs: w.Inputs, Targets: w.Targets, Mask: m}
	}
	return out
}

// greedy decodes n tokens after prompt (BOS added as Pack adds it),
// stopping early at EOS.
func greedy(t *testing.T, m *llama.Model, prompt string, n int) []int32 {
	t.Helper()
	st := m.NewState(64)
	ids := m.Tok.Encode(prompt, tokenizer.EncodeOptions{ParseSpecial: true})
	var out []int32
	for range n {
		logits, err := st.Forward(ids, false)
		if err != nil {
			t.Fatal(err)
		}
		next := llama.Argmax(logits[len(logits)-m.Cfg.Vocab:])
		out = append(out, next)
		if next == m.Tok.EOS() {
			break
		}
		ids = []int32{next}
	}
	return out
}

// exactMatches counts the samples whose greedy continuation, as many
// tokens long as the completion, is exactly the completion's tokens (the
// answer and its full stop).
func exactMatches(t *testing.T, m *llama.Model, samples []Sample) (int, []string) {
	t.Helper()
	no := false
	hits := 0
	var got []string
	for _, s := range samples {
		want := m.Tok.Encode(s.Completion, tokenizer.EncodeOptions{ParseSpecial: true, AddBOS: &no, AddEOS: &no})
		out := greedy(t, m, s.Prompt, len(want))
		if slices.Equal(out, want) {
			hits++
		}
		got = append(got, m.Tok.Decode(out))
	}
	return hits, got
}

// TestPromptCompletionTask: LoRA on stories260K learns a prompt →
// completion mapping (TestLearnShakespeare covers plain text) to ≥ 90 %
// exact match under greedy decoding by llama with the written adapter
// applied at run time, from 0 % without it; and the loss on the answer
// tokens falls at least tenfold.
//
// The twenty answers are arbitrary, so this measures what the issue
// asks — that prompt/completion training with the loss on completions
// only teaches the completions — not generalisation: the adapter (46K
// parameters) can hold the mapping entirely. The bar is 90 % rather than
// 100 % so that one or two answers whose first token is still nearly tied
// with a rival answer after this short run do not make the test fragile
// across CPUs; a trainer that does not learn, or learns the prompts
// instead, stays near 0 %.
//
// The answers end with a full stop rather than at EOS: stories260K
// (llama2.c) was pre-trained with BOS between stories and never saw EOS.
// Its output row, like those of the 256 byte tokens it never used either,
// is almost the vocabulary's mean row (cosine 0.976), so raising EOS above
// all of them takes far longer than this run (its loss stays near 5.3
// nats after 300 steps). EOS targets, which Pack still adds and trains
// on, are therefore left out of the loss this test checks.
func TestPromptCompletionTask(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	samples := taskSamples()
	const seqLen = 28
	tr, err := Open(stories, Config{Rank: 8, Alpha: 16, SeqLen: seqLen, Batch: 4, MaxSteps: 150, LR: 1e-2,
		Schedule: "cosine", Warmup: 10, Seed: 7, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ws := taskWindows(t, tr.Model.Base.Tok, samples, seqLen)
	answers := withoutEOS(ws, tr.Model.Base.Tok.EOS())
	before, n := tr.Loss(answers)
	sum, err := tr.Run(context.Background(), ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := tr.Loss(answers)
	t.Logf("answer loss %.4f → %.4f over %d answer tokens; %d steps, %.3f s/step", before, after, n, sum.Steps, sum.SecPerStep)
	if after > before/10 {
		t.Errorf("answer loss %.4f → %.4f: did not fall tenfold", before, after)
	}

	adapter := filepath.Join(t.TempDir(), "adapter")
	if err := tr.Write(adapter, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		adapters []string
	}{{"base", nil}, {"adapter", []string{adapter}}} {
		m, err := llama.Open(stories, llama.Options{Adapters: tc.adapters, MaxContext: 64, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		hits, got := exactMatches(t, m, samples)
		m.Close()
		t.Logf("%s: %d/%d exact; %q", tc.name, hits, len(samples), got)
		switch {
		case tc.adapters == nil && hits > 0:
			t.Errorf("the base model already answers %d of %d: the task does not measure the adapter", hits, len(samples))
		case tc.adapters != nil && 10*hits < 9*len(samples):
			t.Errorf("with the adapter %d/%d exact matches, want ≥ 90%%", hits, len(samples))
		}
	}
}
