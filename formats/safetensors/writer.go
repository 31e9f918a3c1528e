package safetensors

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/qtool-dev/qtool/formats"
)

// writeBuffer batches the header and the many small writes of tensor
// producers into large writes on the destination.
const writeBuffer = 1 << 20

// Write writes a safetensors file to w: the 8-byte header length, the
// header, then every tensor's data. It plans the whole layout first (so a
// bad dtype, name or size fails before a byte is written), then streams the
// tensors one at a time through their Data, checking ctx before each.
//
// The layout is deterministic and matches HF's writer and qtool's goldens:
// data sorted by element size descending, then by name in byte order; a
// compact header with "__metadata__" first (only when meta is non-empty,
// keys sorted), then the entries in data order with their fields in the
// order dtype, shape, data_offsets; strings escaped as Python's
// json.dumps(ensure_ascii=False) does; the header padded with spaces to a
// multiple of 8, so every tensor starts at a multiple of its element size.
//
// Each tensor must produce exactly Size bytes; otherwise Write fails with a
// *formats.FormatError naming it and wrapping ErrDataLength, after at most
// Size bytes of it reached w. Tensors whose dtype safetensors cannot hold
// (ggml block types) fail with ErrDTypeNotStorable (class
// formats.ErrUnsupported). Offset and File of each TensorInfo are ignored.
//
// w needs no seeking, so it may be a pipe or standard output. On error the
// bytes already written are incomplete; write through formats/outfile to
// keep such output from appearing.
func Write(ctx context.Context, w io.Writer, meta map[string]string, ts []formats.Tensor) error {
	p, err := makePlan(sortedMeta(meta), ts)
	if err != nil {
		return err
	}
	return stream(ctx, w, p)
}

// WriteMeta is Write with metadata given as a formats.Meta, written in its
// own key order rather than sorted: reading a file and writing it back with
// its Meta reproduces the original header. Every value must be a string
// (ErrMetaNotString). A nil or empty meta writes no __metadata__.
func WriteMeta(ctx context.Context, w io.Writer, meta *formats.Meta, ts []formats.Tensor) error {
	pairs, err := orderedMeta(meta)
	if err != nil {
		return err
	}
	p, err := makePlan(pairs, ts)
	if err != nil {
		return err
	}
	return stream(ctx, w, p)
}

// checkData refuses a tensor without a producer before anything is written.
func checkData(ts []formats.Tensor) error {
	for i := range ts {
		if ts[i].Data == nil {
			return fail("", -1, ts[i].Name, "", ErrNoData, "")
		}
	}
	return nil
}

// stream writes a planned file.
func stream(ctx context.Context, w io.Writer, p *plan) error {
	if err := checkData(p.order); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, writeBuffer)
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(p.header)))
	if _, err := bw.Write(prefix[:]); err != nil {
		return fmt.Errorf("write header length: %w", err)
	}
	if _, err := bw.Write(p.header); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	off := 8 + int64(len(p.header))
	for i := range p.order {
		t := &p.order[i]
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeTensor(bw, t, off); err != nil {
			return err
		}
		off += t.Size
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// writeTensor runs one tensor's producer through a writer that lets at
// most Size bytes pass, and checks that exactly Size arrived.
func writeTensor(w io.Writer, t *formats.Tensor, off int64) error {
	lw := &limitWriter{w: w, left: t.Size}
	_, err := t.Data.WriteTo(lw)
	written := t.Size - lw.left
	switch {
	case lw.over:
		return fail("", off, t.Name, "", ErrDataLength,
			fmt.Sprintf("producer wrote more than Size %d bytes", t.Size))
	case err != nil:
		return fmt.Errorf("write tensor %q: %w", t.Name, err)
	case lw.left != 0:
		return fail("", off, t.Name, "", ErrDataLength,
			fmt.Sprintf("producer wrote %d of Size %d bytes", written, t.Size))
	}
	return nil
}

// limitWriter passes at most left bytes to w and fails any write beyond,
// so a producer that writes too much cannot corrupt the next tensor.
type limitWriter struct {
	w    io.Writer
	left int64
	over bool
}

func (l *limitWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > l.left {
		l.over = true
		n, err := l.w.Write(b[:l.left])
		l.left -= int64(n)
		if err == nil {
			err = ErrDataLength
		}
		return n, err
	}
	n, err := l.w.Write(b)
	l.left -= int64(n)
	return n, err
}
