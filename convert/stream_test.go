package convert

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
)

// heapProbe wraps tensors so that the live heap is sampled after every
// MiB written and after every tensor: the peak is measured by bytes
// processed, not by time.
type heapProbe struct {
	peak    uint64
	pending int64
}

func (p *heapProbe) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.peak = max(p.peak, ms.HeapAlloc)
}

func (p *heapProbe) wrap(ts []formats.Tensor) []formats.Tensor {
	out := make([]formats.Tensor, len(ts))
	for i, t := range ts {
		t.Data = probeData{inner: t.Data, p: p}
		out[i] = t
	}
	return out
}

type probeData struct {
	inner io.WriterTo
	p     *heapProbe
}

func (d probeData) WriteTo(w io.Writer) (int64, error) {
	n, err := d.inner.WriteTo(probeWriter{w: w, p: d.p})
	d.p.sample()
	return n, err
}

type probeWriter struct {
	w io.Writer
	p *heapProbe
}

func (pw probeWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.p.pending += int64(n)
	if pw.p.pending >= 1<<20 {
		pw.p.pending = 0
		pw.p.sample()
	}
	return n, err
}

func baseline() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Converting the "small" preset (about 60 MB of F32) in either direction
// keeps the heap growth to a few MiB, far below the model's size: tensors
// stream a chunk at a time.
func TestStreamingMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 60 MB model")
	}
	c, _ := fixtures.Preset("small")
	dir := filepath.Join(t.TempDir(), "small")
	if _, err := fixtures.WriteHFFolder(context.Background(), dir, c, 0, false); err != nil {
		t.Fatal(err)
	}
	f := openFolder(t, dir)
	var model int64
	for _, ti := range f.Tensors() {
		model += ti.Size
	}
	const limit = 8 << 20

	for _, d := range []formats.DType{formats.F32, formats.F16} {
		meta, ts, _, err := ToGGUF(&HFModel{Source: f, Config: f.Config(), Dir: dir}, Options{DType: d})
		if err != nil {
			t.Fatal(err)
		}
		p := &heapProbe{}
		base := baseline()
		p.peak = base
		if err := gguf.Write(context.Background(), io.Discard, meta, p.wrap(ts), gguf.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		growth := int64(p.peak) - int64(base)
		t.Logf("HF → GGUF %v: model %d MiB, heap growth %.2f MiB", d, model>>20, float64(growth)/(1<<20))
		if growth > limit {
			t.Errorf("HF → GGUF %v: heap grew %d bytes converting %d bytes (limit %d)", d, growth, model, limit)
		}
	}

	// GGUF → HF, written to disk through the safetensors folder writer.
	g := filepath.Join(t.TempDir(), "small.gguf")
	if err := fixtures.WriteGGUF(context.Background(), g, c, false); err != nil {
		t.Fatal(err)
	}
	src := openGGUF(t, g)
	out, err := ToHF(src, Options{DType: formats.BF16})
	if err != nil {
		t.Fatal(err)
	}
	p := &heapProbe{}
	out.Tensors = p.wrap(out.Tensors)
	hfDir := filepath.Join(t.TempDir(), "small-hf")
	os.Mkdir(hfDir, 0o755)
	base := baseline()
	p.peak = base
	if _, err := out.Write(context.Background(), hfDir, 20<<20); err != nil {
		t.Fatal(err)
	}
	growth := int64(p.peak) - int64(base)
	t.Logf("GGUF → HF bf16: heap growth %.2f MiB", float64(growth)/(1<<20))
	if growth > limit {
		t.Errorf("GGUF → HF: heap grew %d bytes (limit %d)", growth, limit)
	}
}

// BenchmarkConvert converts a synthetic ~200 MB F16 model folder (HF →
// GGUF, same dtype: the permutation and the copy) and, in the same
// iteration, copies the same bytes file to file twice: with io.Copy, which
// uses copy_file_range inside the kernel as cp does, and with a 1 MiB
// read/write loop through user space. It reports the three rates and the
// ratios convert/copy and convert/rwcopy (times).
func BenchmarkConvert(b *testing.B) {
	c := fixtures.ModelConfig{Name: "bench-200mb", Vocab: 32000, Embd: 1024, FF: 2816, Layers: 8, Heads: 16, KVHeads: 4,
		Ctx: 2048, DType: formats.F16, Seed: 1, RopeTheta: 10000, RMSEps: 1e-5}
	dir := filepath.Join(b.TempDir(), c.Name)
	if _, err := fixtures.WriteHFFolder(context.Background(), dir, c, 0, false); err != nil {
		b.Fatal(err)
	}
	f := openFolder(b, dir)
	var size int64
	for _, ti := range f.Tensors() {
		size += ti.Size
	}
	st := filepath.Join(dir, "model.safetensors")
	out := filepath.Join(b.TempDir(), "out.gguf")
	cp := filepath.Join(b.TempDir(), "copy.bin")
	b.SetBytes(size)
	b.ReportAllocs()
	var conv, copyT, rwT time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		meta, ts, _, err := ToGGUF(&HFModel{Source: f, Config: f.Config(), Dir: dir}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := gguf.WriteFile(context.Background(), out, meta, ts, gguf.WriteOptions{}, true); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := copyFile(st, cp); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := copyFileRW(st, cp); err != nil {
			b.Fatal(err)
		}
		conv += t1.Sub(t0)
		copyT += t2.Sub(t1)
		rwT += time.Since(t2)
	}
	b.StopTimer()
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/conv.Seconds(), "convert-MB/s")
	b.ReportMetric(mb/copyT.Seconds(), "copy-MB/s")
	b.ReportMetric(mb/rwT.Seconds(), "rwcopy-MB/s")
	b.ReportMetric(conv.Seconds()/copyT.Seconds(), "convert/copy")
	b.ReportMetric(conv.Seconds()/rwT.Seconds(), "convert/rwcopy")
}

// copyFileRW copies through a user-space buffer (no copy_file_range).
func copyFileRW(from, to string) error {
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

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
