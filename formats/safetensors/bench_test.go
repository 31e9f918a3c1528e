package safetensors

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// manyTensors builds n small tensors named like a transformer's, of mixed
// dtypes, with their data in memory.
func manyTensors(n int, elems int64) []formats.Tensor {
	dts := []formats.DType{formats.F32, formats.BF16, formats.F16, formats.I64}
	ts := make([]formats.Tensor, n)
	for i := range ts {
		d := dts[i%len(dts)]
		size := elems * d.BlockBytes()
		ts[i] = formats.Tensor{
			TensorInfo: formats.TensorInfo{
				Name:  fmt.Sprintf("model.layers.%d.mlp.proj_%d.weight", i/8, i%8),
				DType: d, Shape: []int64{elems / 4, 4}, Size: size,
			},
			Data: formats.BytesWriter(make([]byte, size)),
		}
	}
	return ts
}

// BenchmarkOpen parses and validates a header of 10,000 entries (about
// 700 KB), through the mapping and through a plain io.ReaderAt.
func BenchmarkOpen(b *testing.B) {
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, map[string]string{"format": "pt"}, manyTensors(10000, 4)); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "many.safetensors")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.Run("mmap", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			r, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			r.Close()
		}
	})
	b.Run("ReaderAt", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := NewReader(bytes.NewReader(data), int64(len(data)), "many", Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWrite measures streaming throughput: 64 tensors of 1 MiB each
// planned, then written tensor by tensor to io.Discard.
func BenchmarkWrite(b *testing.B) {
	ts := manyTensors(64, 1<<18/2) // 1 MiB for 4-byte types, 512 KiB for 2-byte ones
	var total int64
	for _, t := range ts {
		total += t.Size
	}
	b.ReportAllocs()
	b.SetBytes(total)
	for b.Loop() {
		if err := Write(context.Background(), io.Discard, nil, ts); err != nil {
			b.Fatal(err)
		}
	}
}
