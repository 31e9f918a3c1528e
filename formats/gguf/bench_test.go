package gguf

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

// benchModel is a llama-like header: a 32k-token vocabulary (tokens,
// scores, token types), the usual hparams and 291 tensors (a 32-layer
// model's count), with tiny data so the header dominates.
func benchModel(tb testing.TB) []byte {
	tb.Helper()
	const vocab = 32000
	meta := formats.NewMeta()
	meta.Set("general.architecture", formats.ValString("llama"))
	meta.Set("llama.block_count", formats.ValUint32(32))
	meta.Set("llama.embedding_length", formats.ValUint32(4096))
	toks := make([]string, vocab)
	scores := make([]float32, vocab)
	types := make([]int32, vocab)
	for i := range toks {
		toks[i] = fmt.Sprintf("▁tok%d", i)
		scores[i] = -float32(i)
		types[i] = 1
	}
	meta.Set("tokenizer.ggml.model", formats.ValString("llama"))
	meta.Set("tokenizer.ggml.tokens", formats.ValArray(toks))
	meta.Set("tokenizer.ggml.scores", formats.ValArray(scores))
	meta.Set("tokenizer.ggml.token_type", formats.ValArray(types))
	var ts []formats.Tensor
	add := func(name string, d formats.DType, shape ...int64) {
		n, _ := formats.DataSize(d, shape)
		ts = append(ts, formats.Tensor{
			TensorInfo: formats.TensorInfo{Name: name, DType: d, Shape: shape, Size: n},
			Data:       formats.BytesWriter(make([]byte, n)),
		})
	}
	add("token_embd.weight", formats.Q4_K, 1, 256)
	for l := range 32 {
		for _, s := range []string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"} {
			add(fmt.Sprintf("blk.%d.%s.weight", l, s), formats.Q4_K, 1, 256)
		}
		add(fmt.Sprintf("blk.%d.attn_norm.weight", l), formats.F32, 16)
		add(fmt.Sprintf("blk.%d.ffn_norm.weight", l), formats.F32, 16)
	}
	add("output_norm.weight", formats.F32, 16)
	add("output.weight", formats.Q6_K, 1, 256)
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, meta, ts, WriteOptions{}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkOpen(b *testing.B) {
	data := benchModel(b)
	b.Run("ReadAt", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			r, err := NewReader(bytes.NewReader(data), int64(len(data)), "bench", Options{})
			if err != nil || len(r.Tensors()) != 291 {
				b.Fatal(err)
			}
		}
	})
	b.Run("mmap", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "bench.gguf")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
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
}

// BenchmarkWrite streams 16 tensors of 4 MiB each (plus a small header)
// to io.Discard; the throughput is that of header planning, copying and
// padding.
func BenchmarkWrite(b *testing.B) {
	const n, size = 16, 4 << 20
	payload := bytes.Repeat([]byte{0x5a}, size)
	var ts []formats.Tensor
	for i := range n {
		ts = append(ts, formats.Tensor{
			TensorInfo: formats.TensorInfo{Name: fmt.Sprintf("t%d", i), DType: formats.F32, Shape: []int64{size / 4}, Size: size},
			Data:       formats.BytesWriter(payload),
		})
	}
	meta := formats.NewMeta()
	meta.Set("general.architecture", formats.ValString("llama"))
	b.ReportAllocs()
	b.SetBytes(n * size)
	for b.Loop() {
		if err := Write(context.Background(), io.Discard, meta, ts, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
