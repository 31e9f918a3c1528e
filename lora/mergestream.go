package lora

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/mmap"
	"github.com/qtool-dev/qtool/quantize"
)

// Streaming merge: a merged tensor whose base is a float or ggml tensor
// and whose output is a float dtype is produced chunk of rows by chunk —
// read W from the base, add the adapters' updates, encode, measure, write
// — with the chunks computed by the workers (row by row, while the row is
// in cache; mergerows.go) and written in order, so memory is a few chunks
// whatever the tensor's size, and the write of one chunk overlaps the
// computation of the next ones. Rows are independent for these types (a
// ggml block never spans rows), so the bytes are those of the
// whole-tensor path. Bitsandbytes bases and quantized outputs
// (bitsandbytes blocks run over the flattened tensor) keep the
// whole-tensor path.

// streamMerge can be cleared by tests to force the whole-tensor path.
var streamMerge = true

// streamTileElems is about how many values one chunk holds (at least
// deltaTileRows rows): 2 MiB of F16 output per Write. Tests lower it to
// get many chunks.
var streamTileElems = 1 << 20

// isFloat reports the float dtypes the merge writes.
func isFloat(d formats.DType) bool {
	return d == formats.F32 || d == formats.F16 || d == formats.BF16
}

// decodeFloat widens F32, F16 or BF16 little-endian bytes into dst
// (len(raw)/size values); false for other dtypes.
func decodeFloat(dst []float32, raw []byte, d formats.DType) bool {
	if !isFloat(d) {
		return false
	}
	// Lengths are the caller's (whole values); ToFloat32 cannot fail here.
	quantize.ToFloat32(dst[:len(raw)/(d.Bits()/8)], raw, d)
	return true
}

// encodeFloat stores y as F32, F16 or BF16 little-endian bytes, split over
// up to workers goroutines; false for other dtypes.
func encodeFloat(out []byte, y []float32, d formats.DType, workers int) bool {
	if !isFloat(d) {
		return false
	}
	workers = max(1, min(workers, len(y)/minParallelElems+1))
	if workers == 1 {
		encodeFloatSerial(out, y, d)
		return true
	}
	size := (d.Bits() / 8)
	var wg sync.WaitGroup
	for k := range workers {
		i0, i1 := len(y)*k/workers, len(y)*(k+1)/workers
		wg.Go(func() { encodeFloatSerial(out[i0*size:i1*size], y[i0:i1], d) })
	}
	wg.Wait()
	return true
}

func encodeFloatSerial(out []byte, y []float32, d formats.DType) {
	quantize.FromFloat32(out, y, d)
}

// roundTripFloat replaces x by its value stored as the float dtype d,
// using buf (grown as needed) for the bytes; it returns buf.
func roundTripFloat(x []float32, d formats.DType, buf []byte) []byte {
	if d == formats.F32 {
		return buf
	}
	n := len(x) * (d.Bits() / 8)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	encodeFloatSerial(buf, x, d)
	decodeFloat(x, buf, d)
	return buf
}

// streamable reports whether d can be produced chunk by chunk.
func (d *mergedData) streamable() bool {
	e := d.e
	if !streamMerge || e.group != nil || !isFloat(d.out) || len(e.shape) != 2 {
		return false
	}
	if e.shape[0] <= 0 || e.shape[1] <= 0 {
		return false
	}
	if dt := e.info.DType; !isFloat(dt) && !quantize.GGMLDequantizable(dt) {
		return false
	}
	rowBytes, ok := formats.DataSize(e.info.DType, e.shape[1:])
	if !ok || rowBytes*e.shape[0] != e.info.Size {
		return false
	}
	if e.terms != nil && e.row >= 0 && e.measure.valid() {
		// The measure's quantizer must work row by row too.
		return e.measure.bnb == quantize.TypeNone && isFloat(e.measure.dtype)
	}
	return true
}

// chunkBuf is one chunk's buffers, reused from chunk to chunk: the
// encoded rows handed to the writer, and the base bytes when the source is
// not mapped.
type chunkBuf struct {
	raw []byte
	enc []byte
}

// chunkJob is one chunk of rows in flight.
type chunkJob struct {
	i0, i1  int
	buf     *chunkBuf
	enc     []byte
	changed int64
	done    chan error
}

// rowScratch is one worker's buffers, kept from chunk to chunk: one row
// of W and one of W' (in cache while a row is combined, encoded and
// measured), the adapters' delta tiles, and the bytes of round trips.
type rowScratch struct {
	x, y []float32
	tmp  []byte
	sc   applyScratch
}

// errStopped marks chunks skipped after an error.
var errStopped = errors.New("lora: merge stopped")

// writeStream is WriteTo for a streamable tensor. The rows are cut into
// chunks of about streamTileElems values; the workers compute chunks
// (deltaTileRows rows of deltas at a time, then row by row: decode W,
// combine, encode into the chunk, measure) while this goroutine writes the
// finished ones in order, each in one Write.
func (d *mergedData) writeStream(w io.Writer) (int64, error) {
	m, e := d.m, d.e
	rows, cols := int(e.shape[0]), int(e.shape[1])
	rowBytes, _ := formats.DataSize(e.info.DType, e.shape[1:])
	outRow := int64(cols) * int64(d.out.Bits()/8)
	var raw []byte
	var sec *io.SectionReader
	if bs, ok := m.base.(formats.ByteSource); ok {
		b, err := bs.Bytes(e.name)
		if err != nil {
			return 0, err
		}
		if int64(len(b)) != e.info.Size {
			return 0, tensorError(e.name, fmt.Errorf("source gave %d bytes, want %d: %w", len(b), e.info.Size, formats.ErrFormat))
		}
		raw = b
	} else {
		s, err := m.base.Section(e.name)
		if err != nil {
			return 0, err
		}
		sec = s
	}
	th := max(1, streamTileElems/(cols*deltaTileRows)) * deltaTileRows
	th = min(th, rows)
	chunks := (rows + th - 1) / th
	workers := max(1, min(m.workers, chunks))
	var kern []bool
	var sums rowSums
	if e.terms != nil {
		kern = make([]bool, len(e.terms))
		for i, t := range e.terms {
			kern[i] = kernelIsChain(t.pair)
		}
		sums = rowSums{w: make([]float64, rows), d: make([]float64, rows)}
	}
	measure := e.terms != nil && e.row >= 0 && e.measure.valid() && m.book.claim(e.row)
	if measure {
		sums.diff = make([]float64, rows)
	}

	compute := func(j *chunkJob, s *rowScratch) error {
		b := j.buf
		var src []byte
		if raw != nil {
			src = raw[int64(j.i0)*rowBytes : int64(j.i1)*rowBytes]
		} else {
			k := int64(j.i1-j.i0) * rowBytes
			if int64(cap(b.raw)) < k {
				b.raw = make([]byte, k)
			}
			src = b.raw[:k]
			if _, err := sec.ReadAt(src, int64(j.i0)*rowBytes); err != nil {
				return fmt.Errorf("read tensor %q: %w", e.name, err)
			}
		}
		k := int64(j.i1-j.i0) * outRow
		if int64(cap(b.enc)) < k {
			b.enc = make([]byte, k)
		}
		j.enc = b.enc[:k]
		s.x, s.y = grow(s.x, cols), grow(s.y, cols)
		x, y := s.x[:cols], s.y[:cols]
		for t0 := j.i0; t0 < j.i1; t0 += deltaTileRows {
			if t0 > j.i0 {
				// The loops below have no preemption points: let the
				// writer, back from a write, have this P now rather than
				// at the scheduler's next forced preemption (10 ms on).
				runtime.Gosched()
			}
			t1 := min(t0+deltaTileRows, j.i1)
			if e.terms != nil {
				s.sc.deltas(e.terms, kern, t0, t1, cols)
			}
			for i := t0; i < t1; i++ {
				r := int64(i - j.i0)
				if err := decodeRow(x, src[r*rowBytes:(r+1)*rowBytes], e.info.DType); err != nil {
					return tensorError(e.name, fmt.Errorf("row %d: %w", i, err))
				}
				out := x
				if e.terms != nil {
					out = y
					sums.w[i], sums.d[i] = s.sc.combine(y, x, e.terms, i-t0)
				}
				enc := j.enc[r*outRow : (r+1)*outRow]
				encodeRow(enc, out, d.out)
				if !measure {
					continue
				}
				// y becomes Q(W+Δ) and x Q(W), in the measure's type.
				if d.out != formats.F32 {
					decodeFloat(y, enc, d.out)
				}
				if q := e.measure.dtype; q != d.out {
					s.tmp = roundTripFloat(y, q, s.tmp)
				}
				if !d.refIsBase {
					s.tmp = roundTripFloat(x, e.measure.dtype, s.tmp)
				}
				var c int64
				sums.diff[i], c = rowDiff(y, x)
				j.changed += c
			}
		}
		return nil
	}

	// Chunks in flight: one being written, one per worker being computed,
	// and a few ready, so that a slow write does not stall the workers at
	// once. The buffers are reused from tensor to tensor.
	pool := make(chan *chunkBuf, workers+4)
	for range cap(pool) {
		b, _ := m.chunks.Get().(*chunkBuf)
		if b == nil {
			b = &chunkBuf{}
		}
		pool <- b
	}
	defer func() {
		for range cap(pool) {
			m.chunks.Put(<-pool)
		}
	}()
	jobs := make(chan *chunkJob)
	order := make(chan *chunkJob, cap(pool))
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			s, _ := m.scratch.Get().(*rowScratch)
			if s == nil {
				s = &rowScratch{}
			}
			defer m.scratch.Put(s)
			for j := range jobs {
				if stop.Load() {
					j.done <- errStopped
					continue
				}
				j.done <- compute(j, s)
			}
		})
	}
	go func() {
		defer close(order)
		defer close(jobs)
		for i0 := 0; i0 < rows; i0 += th {
			j := &chunkJob{i0: i0, i1: min(i0+th, rows), buf: <-pool, done: make(chan error, 1)}
			order <- j
			jobs <- j
		}
	}()
	var written int64
	var changed int64
	var firstErr error
	for j := range order {
		err := <-j.done
		if firstErr == nil && err != nil {
			firstErr = err
		}
		if firstErr == nil {
			n, err := w.Write(j.enc)
			written += int64(n)
			if err != nil {
				firstErr = err
			}
			changed += j.changed
		}
		if firstErr != nil {
			stop.Store(true)
		}
		pool <- j.buf
	}
	wg.Wait()
	if firstErr != nil {
		if errors.Is(firstErr, errStopped) {
			firstErr = tensorError(e.name, firstErr)
		}
		return written, firstErr
	}
	if measure {
		m.book.fill(e.row, sum(sums.w), sum(sums.d), sum(sums.diff), changed)
	}
	if d.count {
		m.advance(e.bytes)
	}
	m.release(e.info, raw)
	return written, nil
}

// grow returns s with room for n values.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s
}

// release tells the base that a tensor's mapped bytes are done with, so
// that its pages stop counting in the process's resident memory
// (mmap.Release). b is the tensor's bytes as the source gave them (nil
// when read through a Section).
func (m *merger) release(ti formats.TensorInfo, b []byte) {
	mmap.Release(m.base, b, ti.Offset, ti.Size)
}
