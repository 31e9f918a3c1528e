package lora

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/qtool-dev/qtool/formats/gguf"
)

// BenchmarkMerge merges a rank-16 adapter on every projection of the
// "small" preset (about 60 MB of F32; 42 of its 57 tensors merged) into a
// GGUF file and, in the same iteration, copies the same base file through
// a 1 MiB user-space buffer (what any tool that rewrites the bytes pays at
// least). It reports both rates and merge/copy, the time ratio; SetBytes
// is the base's size, so MB/s is base bytes merged per second.
func BenchmarkMerge(b *testing.B) {
	path, c := smallGGUF(b)
	base := mergeOpenGGUF(b, path)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	ad := synthAdapter(c, 16, 1)
	out := filepath.Join(b.TempDir(), "merged.gguf")
	cp := filepath.Join(b.TempDir(), "copy.gguf")
	b.SetBytes(st.Size())
	b.ReportAllocs()
	var mergeT, copyT time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		o, err := Merge(base, MergeConfig{Adapters: []*Adapter{ad}})
		if err != nil {
			b.Fatal(err)
		}
		if err := gguf.WriteFile(context.Background(), out, o.Meta, o.Tensors, gguf.WriteOptions{}, true); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := copyThroughBuffer(path, cp); err != nil {
			b.Fatal(err)
		}
		mergeT += t1.Sub(t0)
		copyT += time.Since(t1)
	}
	b.StopTimer()
	mb := float64(st.Size()) * float64(b.N) / 1e6
	b.ReportMetric(mb/mergeT.Seconds(), "merge-MB/s")
	b.ReportMetric(mb/copyT.Seconds(), "copy-MB/s")
	b.ReportMetric(mergeT.Seconds()/copyT.Seconds(), "merge/copy")
}

// copyThroughBuffer copies a file with a 1 MiB read/write loop.
func copyThroughBuffer(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, buf); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// BenchmarkDeltaRow is the kernel alone: one 4096-wide row of a rank-16
// B·A (SetBytes counts multiply-adds).
func BenchmarkDeltaRow(b *testing.B) {
	const cols, rank = 4096, 16
	acc, bb, a := make([]float32, cols), make([]float32, rank), make([]float32, rank*cols)
	for i := range a {
		a[i] = float32(i%13-6) * 0.01
	}
	for i := range bb {
		bb[i] = float32(i%5-2) * 0.3
	}
	b.SetBytes(cols * rank)
	for i := 0; i < b.N; i++ {
		deltaRow(acc, bb, a)
	}
}
