package mmap

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestReadAtMatchesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := []byte("0123456789abcdef")
	os.WriteFile(p, data, 0o644)
	m, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Len() != 16 || !bytes.Equal(m.Bytes(), data) {
		t.Fatal("Bytes")
	}
	buf := make([]byte, 4)
	if n, err := m.ReadAt(buf, 14); n != 2 || err != io.EOF || string(buf[:2]) != "ef" {
		t.Fatalf("ReadAt tail: %d %v", n, err)
	}
	if _, err := m.ReadAt(buf, 16); err != io.EOF {
		t.Fatal("ReadAt past end")
	}
	sr := io.NewSectionReader(m, 4, 6)
	got, _ := io.ReadAll(sr)
	if string(got) != "456789" {
		t.Fatal("SectionReader")
	}
}

func TestEmptyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(p, nil, 0o644)
	m, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 0 {
		t.Fatal("len")
	}
	m.Close()
}

// A file truncated after mapping must give ErrFault from ReadAt, not crash
// the process with SIGBUS.
func TestTruncatedUnderneath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	os.WriteFile(p, make([]byte, 1<<20), 0o644)
	m, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := m.ReadAt(buf, 1<<19); !errors.Is(err, ErrFault) {
		t.Fatalf("err = %v, want ErrFault", err)
	}
}

func TestNotRegular(t *testing.T) {
	if _, err := Open(t.TempDir()); err == nil {
		t.Fatal("mapping a directory must fail")
	}
}
