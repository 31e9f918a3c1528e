package train

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestResumeExact: a run of N steps interrupted after k steps (checkpoint
// written, then resumed in a fresh trainer) writes the same adapter bytes
// as the uninterrupted run, for several k; dropout exercises the RNG and
// the small dataset wraps epochs.
func TestResumeExact(t *testing.T) {
	path := tinyModels(t)["gguf"]
	const total = 7
	cfg := Config{Rank: 4, SeqLen: 16, MaxSteps: total, Batch: 2, GradAccum: 1, LR: 1e-2, Seed: 3, Threads: 2, Dropout: 0.1, Warmup: 2}
	windows := func(tr *Trainer) []Window {
		r := newRand(5)
		var ws []Window
		for range 5 {
			ws = append(ws, randomWindow(r, tr.Model.Cfg.Vocab, 16))
		}
		return ws
	}
	adapter := func(tr *Trainer) []byte {
		out := filepath.Join(t.TempDir(), "a")
		if err := tr.Write(out, false); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, "adapter_model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fp, err := ModelFingerprint(path)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background(), windows(tr), nil); err != nil {
		t.Fatal(err)
	}
	want := adapter(tr)
	tr.Close()
	for _, k := range []int{0, 1, 3, 6} {
		dir := filepath.Join(t.TempDir(), "ck")
		ctx, cancel := context.WithCancel(context.Background())
		c := cfg
		c.Progress = func(s StepStats) {
			if s.Step == k {
				cancel()
			}
		}
		if k == 0 {
			cancel()
		}
		a, err := Open(path, c)
		if err != nil {
			t.Fatal(err)
		}
		ws := windows(a)
		if _, err := a.Run(ctx, ws, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("k=%d: %v", k, err)
		}
		if err := a.SaveCheckpoint(dir, fp, WindowsFingerprint(ws), nil); err != nil {
			t.Fatal(err)
		}
		a.Close()
		ck, err := LoadCheckpoint(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Open(path, ck.Config)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Restore(ck); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Run(context.Background(), windows(b), nil); err != nil {
			t.Fatal(err)
		}
		if got := adapter(b); !bytes.Equal(got, want) {
			t.Errorf("k=%d: resumed adapter differs from the uninterrupted run", k)
		}
		b.Close()
	}
}

// TestCheckpointRefused: corrupted files and another config are refused.
func TestCheckpointRefused(t *testing.T) {
	path := tinyModels(t)["gguf"]
	cfg := Config{Rank: 4, SeqLen: 16, MaxSteps: 2, Seed: 1, Threads: 1}
	tr, err := Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	dir := filepath.Join(t.TempDir(), "ck")
	if err := tr.SaveCheckpoint(dir, Fingerprint{}, "", nil); err != nil {
		t.Fatal(err)
	}
	ck, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.LR = 5e-3
	o, err := Open(path, other)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := o.Restore(ck); !errors.Is(err, ErrCheckpoint) || !bytes.Contains([]byte(err.Error()), []byte("another config")) {
		t.Errorf("other config: %v", err)
	}
	for _, name := range []string{"tensors.bin", "state.json"} {
		p := filepath.Join(dir, name)
		b, _ := os.ReadFile(p)
		orig := bytes.Clone(b)
		b[len(b)/2] ^= 1
		os.WriteFile(p, b, 0o644)
		if _, err := LoadCheckpoint(dir); !errors.Is(err, ErrCheckpoint) || !bytes.Contains([]byte(err.Error()), []byte("corrupted")) {
			t.Errorf("%s flipped: %v", name, err)
		}
		os.WriteFile(p, orig, 0o644)
	}
}
