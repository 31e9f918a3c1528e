package outfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Writes past writebackEvery start the early writeback (on Linux) and
// leave the file exactly as written.
func TestWriteStartsWriteback(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "big.bin")
	f, err := Create(dest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	chunk := make([]byte, 1<<20)
	var want bytes.Buffer
	for i := range writebackEvery/len(chunk) + 3 {
		for j := range chunk {
			chunk[j] = byte(i*31 + j)
		}
		if n, err := f.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
		want.Write(chunk)
	}
	if p := f.pending.Load(); p >= writebackEvery || p != int64(want.Len())%writebackEvery {
		t.Fatalf("%d bytes pending after %d written", p, want.Len())
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("committed file differs from what was written")
	}
}
