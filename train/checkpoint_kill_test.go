package train

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCheckpointSurvivesKilledSave: each state that a save killed at some
// point leaves behind — a half-written temporary; the old checkpoint moved
// aside and the new one not yet in place; both in place — resumes from a
// complete checkpoint, and the next save puts things back in order.
func TestCheckpointSurvivesKilledSave(t *testing.T) {
	tr, err := Open(tinyModels(t)["gguf"], Config{Rank: 4, SeqLen: 16, MaxSteps: 3, Seed: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	parent := t.TempDir()
	dir := filepath.Join(parent, "ck")
	save := func(step int, to string) {
		t.Helper()
		tr.step = step
		if err := tr.SaveCheckpoint(to, Fingerprint{}, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	loadStep := func(what string) int {
		t.Helper()
		ck, err := LoadCheckpoint(dir)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return ck.Step
	}
	leftovers := func() []string {
		var names []string
		es, _ := os.ReadDir(parent)
		for _, e := range es {
			if e.Name() != "ck" {
				names = append(names, e.Name())
			}
		}
		return names
	}
	save(1, dir)

	// Killed while writing the files of step 2.
	tmp := filepath.Join(parent, ".ck.saving-killed")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tmp, ckptTensors), []byte("half"), 0o644)
	if s := loadStep("killed while writing"); s != 1 {
		t.Errorf("killed while writing: step %d, want 1", s)
	}

	// Killed between the renames: dir is gone, step 1 lies aside.
	if err := os.Rename(dir, prevPath(dir)); err != nil {
		t.Fatal(err)
	}
	if s := loadStep("killed between the renames"); s != 1 {
		t.Errorf("killed between the renames: step %d, want 1", s)
	}
	save(2, dir)
	if s := loadStep("saved after"); s != 2 {
		t.Errorf("next save: step %d, want 2", s)
	}
	if l := leftovers(); len(l) != 0 {
		t.Errorf("left behind after the next save: %v", l)
	}

	// Killed after the new folder is in place, before the old one is
	// removed: the new one is read.
	save(1, prevPath(dir))
	if s := loadStep("killed before the cleanup"); s != 2 {
		t.Errorf("killed before the cleanup: step %d, want 2", s)
	}
	save(3, dir)
	if s := loadStep("saved after the cleanup"); s != 3 {
		t.Errorf("next save: step %d, want 3", s)
	}
	if l := leftovers(); len(l) != 0 {
		t.Errorf("left behind after the next save: %v", l)
	}
}
