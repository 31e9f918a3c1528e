package interop

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

// sparseConfig is Llama 2 7B's shape in F32 with 24 of its 32 blocks: about
// 5.1G parameters, 20.5 GB of tensor data.
func sparseConfig() fixtures.ModelConfig {
	c, _ := fixtures.Preset("7b")
	c.DType = formats.F32
	c.Layers = 24
	return c
}

var errHeaderDone = errors.New("header written")

// prefixWriter keeps the first n bytes written to it, then stops the
// writer that feeds it.
type prefixWriter struct {
	buf bytes.Buffer
	n   int64
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	if left := w.n - int64(w.buf.Len()); int64(len(p)) >= left {
		w.buf.Write(p[:left])
		return int(left), errHeaderDone
	}
	return w.buf.Write(p)
}

// sparseFile writes header (the first bytes of a file) to path and extends
// the file to size without writing data: the file system keeps it sparse.
func sparseFile(b *testing.B, path string, header []byte, size int64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(header); err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		b.Skipf("cannot make a sparse %d-byte file here: %v", size, err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkInspectSparse20GB measures opening a 20.5 GB model and walking
// its tensor list: header parsing and validation only, since the data are
// never read (the files are sparse; they use no disk space).
func BenchmarkInspectSparse20GB(b *testing.B) {
	c := sparseConfig()
	dir := b.TempDir()

	b.Run("gguf", func(b *testing.B) {
		meta, err := fixtures.GGUFMeta(c)
		if err != nil {
			b.Fatal(err)
		}
		ts, err := fixtures.Tensors(c, fixtures.GGUF)
		if err != nil {
			b.Fatal(err)
		}
		lay, err := gguf.Plan(meta, ts, gguf.WriteOptions{})
		if err != nil {
			b.Fatal(err)
		}
		// Write streams the header first; keep exactly DataStart bytes.
		pw := &prefixWriter{n: lay.DataStart}
		if err := gguf.Write(context.Background(), pw, meta, ts, gguf.WriteOptions{}); !errors.Is(err, errHeaderDone) {
			b.Fatalf("writing the header: %v", err)
		}
		path := filepath.Join(dir, "7b.gguf")
		sparseFile(b, path, pw.buf.Bytes(), lay.Size)
		inspect(b, lay.Size, len(ts), func() (formats.Source, error) { return gguf.Open(path) })
	})

	b.Run("safetensors", func(b *testing.B) {
		ts, err := fixtures.Tensors(c, fixtures.HF)
		if err != nil {
			b.Fatal(err)
		}
		meta := map[string]string{"format": "pt"}
		hdr, err := safetensors.HeaderFor(meta, ts)
		if err != nil {
			b.Fatal(err)
		}
		var data int64
		for _, t := range ts {
			data += t.Size
		}
		prefix := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
		path := filepath.Join(dir, "7b.safetensors")
		size := int64(8+len(hdr)) + data
		sparseFile(b, path, append(prefix, hdr...), size)
		inspect(b, size, len(ts), func() (formats.Source, error) { return safetensors.Open(path) })
	})
}

func inspect(b *testing.B, size int64, n int, open func() (formats.Source, error)) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		src, err := open()
		if err != nil {
			b.Fatal(err)
		}
		var total int64
		ts := src.Tensors()
		for _, t := range ts {
			total += t.Size
		}
		if len(ts) != n || total <= size/2 {
			b.Fatalf("%d tensors holding %d bytes in a %d-byte file", len(ts), total, size)
		}
		src.Close()
	}
	b.ReportMetric(float64(size)/1e9, "GB-file")
}

// BenchmarkWriteStreamingRSS writes a generated GGUF to a temporary file and
// reports the process's peak resident set size during the write against
// the file's size.
//
// The peak comes from VmHWM in /proc/self/status, reset just before the
// write by writing "5" to /proc/self/clear_refs (Linux ≥ 4.0). Where that
// reset is refused, a goroutine samples VmRSS every millisecond instead
// (which can miss short spikes). Metrics: peak-MB (the peak RSS), rss/filesize
// (peak over file size, including the Go runtime and the test binary), and
// growth/filesize ((peak − RSS just before the write) over file size: what
// the write itself added). Page cache for the written file is not RSS.
//
// QTOOL_RSS_PRESET chooses the preset (default "small", 61 MB; "1b" writes
// 2.5 GB). Run with -benchtime 1x.
func BenchmarkWriteStreamingRSS(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc/self/status")
	}
	preset := os.Getenv("QTOOL_RSS_PRESET")
	if preset == "" {
		preset = "small"
	}
	c, ok := fixtures.Preset(preset)
	if !ok {
		b.Fatalf("QTOOL_RSS_PRESET=%q is not a preset (%s)", preset, strings.Join(fixtures.PresetNames(), ", "))
	}
	dir := b.TempDir()
	var peak, growth, size float64
	method := "VmHWM"
	for i := 0; b.Loop(); i++ {
		path := filepath.Join(dir, fmt.Sprintf("m%d.gguf", i))
		runtime.GC()
		debug.FreeOSMemory()
		before := procStatusKB(b, "VmRSS")
		stop := func() int64 { return 0 }
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			method = "sampled VmRSS"
			stop = sampleRSS()
		}
		if err := fixtures.WriteGGUF(context.Background(), path, c, false); err != nil {
			b.Fatal(err)
		}
		hwm := procStatusKB(b, "VmHWM")
		if method != "VmHWM" {
			hwm = stop()
		}
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		size = float64(st.Size())
		peak = float64(hwm) * 1024
		growth = float64(hwm-before) * 1024
		os.Remove(path)
	}
	b.ReportMetric(peak/1e6, "peak-MB")
	b.ReportMetric(size/1e6, "file-MB")
	b.ReportMetric(peak/size, "rss/filesize")
	b.ReportMetric(growth/size, "growth/filesize")
	b.Logf("preset %s: file %.0f MB, peak RSS %.1f MB (%s), growth during the write %.1f MB",
		preset, size/1e6, peak/1e6, method, growth/1e6)
}

// procStatusKB reads one "Key:   N kB" line of /proc/self/status.
func procStatusKB(b *testing.B, key string) int64 {
	b.Helper()
	n, err := readStatusKB(key)
	if err != nil {
		b.Skipf("cannot measure RSS: %v", err)
	}
	return n
}

func readStatusKB(key string) (int64, error) {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/self/status has no %s", key)
}

// sampleRSS polls VmRSS until the returned stop function is called, which
// returns the largest value seen (kB).
func sampleRSS() func() int64 {
	var maxKB atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if kb, err := readStatusKB("VmRSS"); err == nil && kb > maxKB.Load() {
				maxKB.Store(kb)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		return maxKB.Load()
	}
}
