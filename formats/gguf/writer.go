package gguf

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/outfile"
)

// writeBuffer batches the small writes of headers and producers.
const writeBuffer = 1 << 20

// zeros is the source of every padding byte.
var zeros [4096]byte

// Write writes a GGUF v3 file holding meta (in its order) and ts (in the
// given order) to w.
//
// It first plans the whole file (see Plan), so every refusal — a dtype
// GGUF cannot store (ErrNotStorable, wrapping formats.ErrUnsupported), a
// name of 64 bytes or more, a duplicate name, a first dimension that is not
// a whole number of blocks, a bad general.alignment, a nested array without
// AllowNestedArrays — happens before a byte is written. It then writes the
// header, zero padding up to the data start, and each tensor's Data
// followed by zero padding to the alignment (after the last tensor too).
// Each Data must produce exactly its tensor's Size bytes, else Write fails
// with ErrDataSize naming the tensor. ctx is checked between tensors.
//
// Shapes are written reversed (GGUF's ne order) with exactly len(Shape)
// dims; a rank-0 tensor is written with one dimension of 1. Write adds no
// metadata except general.alignment (see WriteOptions); callers that store
// quantized tensors set general.quantization_version themselves.
func Write(ctx context.Context, w io.Writer, meta *formats.Meta, ts []formats.Tensor, opts WriteOptions) error {
	lay, hdr, err := plan(meta, ts, opts)
	if err != nil {
		return err
	}
	return writePlanned(ctx, w, lay, hdr, ts)
}

// writePlanned streams a planned file: header, padding, tensors.
func writePlanned(ctx context.Context, w io.Writer, lay *Layout, hdr []byte, ts []formats.Tensor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, int(min(writeBuffer, max(lay.Size, 16))))
	if _, err := bw.Write(hdr); err != nil {
		return fmt.Errorf("gguf: write header: %w", err)
	}
	if err := writeZeros(bw, lay.DataStart-lay.TensorInfoEnd); err != nil {
		return fmt.Errorf("gguf: write header padding: %w", err)
	}
	for i, t := range ts {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("gguf: write stopped before tensor %q: %w", t.Name, err)
		}
		if err := writeTensor(bw, t); err != nil {
			return err
		}
		end := lay.Size
		if i+1 < len(ts) {
			end = lay.DataStart + lay.Offsets[i+1]
		}
		if err := writeZeros(bw, end-(lay.DataStart+lay.Offsets[i]+t.Size)); err != nil {
			return fmt.Errorf("gguf: write padding after %q: %w", t.Name, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gguf: write: %w", err)
	}
	return nil
}

// writeTensor streams one tensor's data and checks its length.
func writeTensor(w io.Writer, t formats.Tensor) error {
	if t.Data == nil {
		return nil // Size is 0: checkTensor refused a nil Data otherwise
	}
	ew := &exactWriter{w: w, left: t.Size}
	_, err := t.Data.WriteTo(ew)
	switch {
	case ew.over:
		return fmt.Errorf("gguf: tensor %q: data longer than its %d bytes: %w", t.Name, t.Size, ErrDataSize)
	case err != nil:
		return fmt.Errorf("gguf: write tensor %q: %w", t.Name, err)
	case ew.left != 0:
		return fmt.Errorf("gguf: tensor %q: data gave %d of %d bytes: %w", t.Name, t.Size-ew.left, t.Size, ErrDataSize)
	}
	return nil
}

// errOverrun stops a producer that writes past its tensor's size.
var errOverrun = errors.New("gguf: write past the tensor's size")

// exactWriter passes through at most left bytes and records an attempt to
// write more, so a faulty producer never corrupts the next tensor's place.
type exactWriter struct {
	w    io.Writer
	left int64
	over bool
}

func (e *exactWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > e.left {
		e.over = true
		return 0, errOverrun
	}
	n, err := e.w.Write(p)
	e.left -= int64(n)
	return n, err
}

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// WriteFile writes a GGUF file at path atomically: into a temporary file
// beside it that is renamed into place only when complete, and removed on
// any error or cancellation. An existing path is replaced only when force
// is set (else the error wraps outfile.ErrExists).
func WriteFile(ctx context.Context, path string, meta *formats.Meta, ts []formats.Tensor, opts WriteOptions, force bool) error {
	lay, hdr, err := plan(meta, ts, opts)
	if err != nil {
		return err
	}
	f, err := outfile.Create(path, outfile.Options{Force: force})
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := writePlanned(ctx, f, lay, hdr, ts); err != nil {
		return err
	}
	return f.Commit()
}
