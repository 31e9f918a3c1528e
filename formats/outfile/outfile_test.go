package outfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestCommitAppearsAtomically(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "model.gguf")
	f, err := Create(dest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	f.Write([]byte("half"))
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("destination visible before Commit")
	}
	f.Write([]byte(" done"))
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if string(got) != "half done" {
		t.Fatalf("content %q", got)
	}
	if n := entries(t, dir); len(n) != 1 {
		t.Fatalf("left behind: %v", n)
	}
	f.Abort() // no-op after commit
	if _, err := os.Stat(dest); err != nil {
		t.Fatal("Abort after Commit removed the output")
	}
}

func TestAbortRemovesTemp(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(filepath.Join(dir, "x.safetensors"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 1000))
	f.Abort()
	if n := entries(t, dir); len(n) != 0 {
		t.Fatalf("left behind: %v", n)
	}
}

func TestNoClobberWithoutForce(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "out")
	os.WriteFile(dest, []byte("precious"), 0o644)
	if _, err := Create(dest, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("Create over existing: %v", err)
	}
	f, err := Create(dest, Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("new"))
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if string(got) != "new" {
		t.Fatal("force did not replace")
	}
	// The destination appearing during the write is not clobbered either.
	dest2 := filepath.Join(dir, "race")
	g, _ := Create(dest2, Options{})
	os.WriteFile(dest2, []byte("someone else's"), 0o644)
	if err := g.Commit(); !errors.Is(err, ErrExists) {
		t.Fatalf("commit over a file created meanwhile: %v", err)
	}
	got, _ = os.ReadFile(dest2)
	if string(got) != "someone else's" {
		t.Fatal("clobbered")
	}
	if n := entries(t, dir); len(n) != 2 {
		t.Fatalf("left behind: %v", n)
	}
}

func TestAbortAll(t *testing.T) {
	dir := t.TempDir()
	f, _ := Create(filepath.Join(dir, "a"), Options{})
	d, _ := CreateDir(filepath.Join(dir, "folder"), Options{})
	os.WriteFile(filepath.Join(d.Path(), "model.safetensors"), []byte("x"), 0o644)
	AbortAll()
	if n := entries(t, dir); len(n) != 0 {
		t.Fatalf("left behind: %v", n)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("Commit after AbortAll must fail")
	}
}

func TestDirCommitAndForce(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "hf")
	d, err := CreateDir(dest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d.Path(), "config.json"), []byte("{}"), 0o644)
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, "config.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateDir(dest, Options{}); !errors.Is(err, ErrExists) {
		t.Fatal("folder clobbered without force")
	}
	d2, _ := CreateDir(dest, Options{Force: true})
	os.WriteFile(filepath.Join(d2.Path(), "new.json"), []byte("{}"), 0o644)
	if err := d2.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := entries(t, dest); len(n) != 1 || n[0] != "new.json" {
		t.Fatalf("replaced folder holds %v", n)
	}
	if n := entries(t, dir); len(n) != 1 {
		t.Fatalf("left behind: %v", n)
	}
}
