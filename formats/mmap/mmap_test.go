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

// DontNeed releases pages without changing what the mapping reads, and
// checks its arguments.
func TestDontNeed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pages")
	page := os.Getpagesize()
	data := make([]byte, 3*page+100)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !bytes.Equal(m.Bytes(), data) {
		t.Fatal("Bytes")
	}
	for _, r := range [][2]int64{{0, 0}, {10, 5}, {int64(page) - 1, 2}, {0, m.Len()}, {int64(2 * page), 1 << 40}, {m.Len() + 5, 3}} {
		if err := m.DontNeed(r[0], r[1]); err != nil {
			t.Fatalf("DontNeed(%d, %d): %v", r[0], r[1], err)
		}
		if !bytes.Equal(m.Bytes(), data) {
			t.Fatalf("after DontNeed(%d, %d) the mapping reads other bytes", r[0], r[1])
		}
	}
	if err := m.DontNeed(-1, 4); err == nil {
		t.Fatal("negative offset accepted")
	}
	if err := m.DontNeed(0, -4); err == nil {
		t.Fatal("negative length accepted")
	}
	m.Close()
	if err := m.DontNeed(0, 10); err != nil {
		t.Fatalf("after Close: %v", err)
	}
}
