package gguf

import (
	"bytes"
	"io"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/internal/bin"
)

// magic is the first four bytes of every GGUF file.
const magic = "GGUF"

// Supported versions: v2 and v3 share one layout (64-bit counts and
// lengths); v1 used 32-bit ones and is refused, as ggml does.
const (
	minVersion = 2
	maxVersion = 3
	// WriteVersion is the version Write produces.
	WriteVersion = 3
)

// Minimum encoded sizes used to bound counts before anything is
// allocated (PARSER-SAFETY.md §2.3): a KV is at least a key length (8), a
// value type (4) and a one-byte value; a tensor info at least a name length
// (8), n_dims (4), a type (4) and an offset (8).
const (
	minKVBytes         = 8 + 4 + 1
	minTensorInfoBytes = 8 + 4 + 4 + 8
)

// maxDims is GGML_MAX_DIMS.
const maxDims = 4

// maxNameLen is GGML_MAX_NAME: a name must be shorter, leaving room for a NUL.
const maxNameLen = 64

// header is everything parse learns, already validated.
type header struct {
	version       uint32
	alignment     int64
	meta          *formats.Meta
	tensors       []formats.TensorInfo
	ggml          []uint32 // ggml type id per tensor
	rawOffsets    []int64  // stored offsets, relative to dataStart
	tensorInfoEnd int64
	dataStart     int64
}

// parse reads and validates a whole GGUF header and the tensor layout.
// file names the input in errors; base is the TensorInfo.File of every
// tensor.
func parse(r io.ReaderAt, size int64, file, base string, opts Options) (*header, error) {
	if size < 0 {
		return nil, errAt(file, 0, ErrTruncated, "negative size")
	}
	d := newDecoder(r, size, file, opts)
	h := &header{alignment: defaultAlignment, meta: &formats.Meta{}}
	if err := d.preamble(h); err != nil {
		return nil, err
	}
	nT, nKV, err := d.counts()
	if err != nil {
		return nil, err
	}
	for range nKV {
		a, err := d.kv(h.meta)
		if err != nil {
			return nil, err
		}
		if a != 0 {
			h.alignment = a
		}
	}
	fields, err := d.tensorInfos(h, nT, base)
	if err != nil {
		return nil, err
	}
	h.tensorInfoEnd = d.c.Offset()
	if err := d.layout(h, fields, size); err != nil {
		return nil, err
	}
	return h, nil
}

// preamble checks the magic and the version (PARSER-SAFETY.md §2.1–2.2).
func (d *decoder) preamble(h *header) error {
	got, err := d.c.Bytes(uint64(min(d.c.Size(), int64(len(magic)))))
	if err != nil {
		return d.readErr(0, err, "magic")
	}
	if !bytes.HasPrefix([]byte(magic), got) {
		return d.fail(0, ErrBadMagic, "first bytes %q, want %q", got, magic)
	}
	if len(got) < len(magic) {
		return d.fail(0, ErrTruncated, "%d bytes, shorter than the magic", len(got))
	}
	v, off, err := d.u32("version")
	if err != nil {
		return err
	}
	switch {
	case v == 0:
		return d.fail(off, ErrBadVersion, "version 0")
	case v&0xFFFF == 0:
		return d.fail(off, ErrBigEndian, "version reads as %#x; the file is probably big-endian, only little-endian GGUF is supported", v)
	case v == 1:
		return d.fail(off, ErrBadVersion, "GGUF v1 is no longer supported")
	case v > maxVersion:
		return d.fail(off, ErrBadVersion, "version %d, this reader supports %d–%d", v, minVersion, maxVersion)
	}
	h.version = v
	return nil
}

// counts reads the tensor and KV counts and bounds them by the remaining
// bytes and the limits (PARSER-SAFETY.md §2.3, §3.1).
func (d *decoder) counts() (nT, nKV int64, err error) {
	t, tOff, err := d.u64("tensor count")
	if err != nil {
		return 0, 0, err
	}
	k, kOff, err := d.u64("kv count")
	if err != nil {
		return 0, 0, err
	}
	var ok bool
	if nT, ok = bin.ToInt64(t); !ok {
		return 0, 0, d.fail(tOff, ErrCountTooLarge, "tensor count %d is negative as int64", int64(t))
	}
	if nKV, ok = bin.ToInt64(k); !ok {
		return 0, 0, d.fail(kOff, ErrCountTooLarge, "kv count %d is negative as int64", int64(k))
	}
	rem := uint64(d.c.Remaining())
	kvBytes, ok := bin.MulU64(k, minKVBytes)
	if !ok || kvBytes > rem {
		return 0, 0, d.fail(kOff, ErrCountTooLarge, "%d KV pairs need at least %d bytes each, %d remain", k, minKVBytes, rem)
	}
	tBytes, ok := bin.MulU64(t, minTensorInfoBytes)
	if !ok || tBytes > rem-kvBytes {
		return 0, 0, d.fail(tOff, ErrCountTooLarge, "%d tensor infos need at least %d bytes each, %d remain after the KV pairs", t, minTensorInfoBytes, rem-kvBytes)
	}
	if nT > d.lim.MaxTensors {
		return 0, 0, d.fail(tOff, ErrTooManyTensors, "%d tensors, limit %d", nT, d.lim.MaxTensors)
	}
	if nKV > d.lim.MaxKVs {
		return 0, 0, d.fail(kOff, ErrTooManyKVs, "%d KV pairs, limit %d", nKV, d.lim.MaxKVs)
	}
	return nT, nKV, nil
}

// layout places the data section and checks every tensor's offset and
// extent (PARSER-SAFETY.md §2.13–2.15).
func (d *decoder) layout(h *header, fields []offsetField, size int64) error {
	ds, ok := bin.AlignUp(h.tensorInfoEnd, h.alignment)
	if !ok {
		return d.fail(h.tensorInfoEnd, ErrOverflow, "data start past int64")
	}
	h.dataStart = ds
	if len(h.tensors) > 0 && ds > size {
		return d.fail(h.tensorInfoEnd, ErrDataStartPastEnd, "data section at %d, file is %d bytes", ds, size)
	}
	var want int64
	h.rawOffsets = make([]int64, len(h.tensors))
	for i := range h.tensors {
		t := &h.tensors[i]
		at := fields[i].at
		if fields[i].raw != uint64(want) {
			return annotate(d.fail(at, ErrBadOffset, "offset %d, expected %d (previous tensors packed, each padded to %d)", fields[i].raw, want, h.alignment), "", t.Name)
		}
		h.rawOffsets[i] = want
		abs, ok := bin.AddI64(ds, want)
		if !ok {
			return annotate(d.fail(at, ErrOverflow, "data start %d + offset %d", ds, want), "", t.Name)
		}
		end, ok := bin.AddI64(abs, t.Size)
		if !ok {
			return annotate(d.fail(at, ErrOverflow, "offset %d + size %d", abs, t.Size), "", t.Name)
		}
		if end > size {
			return annotate(d.fail(at, ErrDataPastEnd, "data [%d, %d) but the file is %d bytes", abs, end, size), "", t.Name)
		}
		t.Offset = abs
		next, ok := bin.AddI64(want, t.Size)
		if ok {
			next, ok = bin.AlignUp(next, h.alignment)
		}
		if !ok {
			return annotate(d.fail(at, ErrOverflow, "running data size past int64"), "", t.Name)
		}
		want = next
	}
	return nil
}
