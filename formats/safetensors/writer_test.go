package safetensors

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/formattest"
)

// writeMem writes with WriteMeta into memory and reopens the result.
func writeMem(t testing.TB, meta *formats.Meta, ts []formats.Tensor) (*Reader, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteMeta(context.Background(), &buf, meta, ts); err != nil {
		t.Fatalf("write: %v", err)
	}
	r, err := readBytes(t, buf.Bytes(), Options{})
	if err != nil {
		t.Fatalf("reread: %v", err)
	}
	return r, buf.Bytes()
}

// TestGoldenByteIdentical: read → WriteMeta reproduces each golden written
// by the project's writer byte for byte (its convention is Write's).
func TestGoldenByteIdentical(t *testing.T) {
	for _, path := range []string{
		"testdata/all_dtypes.safetensors",
		"testdata/stories260K-sharded/model-00001-of-00002.safetensors",
		"testdata/stories260K-sharded/model-00002-of-00002.safetensors",
	} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, got := writeMem(t, r.Meta(), formattest.Tensors(t, r))
			if !bytes.Equal(got, want) {
				t.Errorf("WriteMeta output differs from the golden (%d vs %d bytes)", len(got), len(want))
			}
			hdr, err := HeaderFor(r.Metadata(), formattest.Tensors(t, r))
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(hdr)) != r.HeaderLen() || len(hdr)%8 != 0 {
				t.Errorf("HeaderFor gives %d bytes, file has %d", len(hdr), r.HeaderLen())
			}
		})
	}
}

// TestRoundTrip: every golden survives read → Write → read (formattest),
// and write → read → write is a fixed point.
func TestRoundTrip(t *testing.T) {
	for _, g := range goldens {
		t.Run(filepath.Base(g.path), func(t *testing.T) {
			src, err := Open(g.path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			// Write (map metadata, sorted keys) keeps content, not order.
			formattest.TestRoundTrip(t, src, func(ts []formats.Tensor) (formats.Source, error) {
				var buf bytes.Buffer
				if err := Write(context.Background(), &buf, src.Metadata(), ts); err != nil {
					return nil, err
				}
				return readBytes(t, buf.Bytes(), Options{})
			}, false)
			first, b1 := writeMem(t, src.Meta(), formattest.Tensors(t, src))
			_, b2 := writeMem(t, first.Meta(), formattest.Tensors(t, first))
			if !bytes.Equal(b1, b2) {
				t.Error("write → read → write is not byte-identical")
			}
		})
	}
}

func TestUnpaddedRewritten(t *testing.T) {
	src, err := Open("testdata/unpadded_unsorted.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, _ := writeMem(t, src.Meta(), formattest.Tensors(t, src))
	var names []string
	for _, ti := range out.Tensors() {
		names = append(names, ti.Name)
		if (ti.Offset-out.DataStart())%ti.DType.BlockBytes() != 0 || ti.Offset%ti.DType.BlockBytes() != 0 {
			t.Errorf("%s not aligned after rewrite", ti.Name)
		}
	}
	if want := "a.f32 c.f16 b.u8"; joinNames(names) != want {
		t.Errorf("order %q, want %q", joinNames(names), want)
	}
	if out.HeaderLen()%8 != 0 || out.Meta().Len() != 0 {
		t.Errorf("N %d, %d metadata", out.HeaderLen(), out.Meta().Len())
	}
}

func joinNames(ns []string) string {
	var b bytes.Buffer
	for i, n := range ns {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n)
	}
	return b.String()
}

// producer writes n bytes in chunks, whatever its Size says.
type producer struct {
	n     int
	calls *int
}

func (p producer) WriteTo(w io.Writer) (int64, error) {
	if p.calls != nil {
		*p.calls++
	}
	var total int64
	for left := p.n; left > 0; {
		k := min(left, 3)
		m, err := w.Write(make([]byte, k))
		total += int64(m)
		if err != nil {
			return total, err
		}
		left -= k
	}
	return total, nil
}

func f32(name string, n int64, data io.WriterTo) formats.Tensor {
	return formats.Tensor{TensorInfo: formats.TensorInfo{Name: name, DType: formats.F32, Shape: []int64{n}, Size: 4 * n}, Data: data}
}

func TestWriteProducerLength(t *testing.T) {
	for _, c := range []struct {
		name string
		n    int
	}{{"short", 7}, {"long", 9}, {"none", 0}, {"much longer", 100}} {
		t.Run(c.name, func(t *testing.T) {
			ts := []formats.Tensor{f32("ok", 1, producer{n: 4}), f32("bad", 2, producer{n: c.n})}
			var buf bytes.Buffer
			err := Write(context.Background(), &buf, nil, ts)
			var fe *formats.FormatError
			if !errors.Is(err, ErrDataLength) || !errors.As(err, &fe) || fe.Tensor != "bad" {
				t.Fatalf("got %v", err)
			}
			hdr, _ := HeaderFor(nil, ts)
			if max := 8 + len(hdr) + 4 + 8; buf.Len() > max {
				t.Errorf("%d bytes reached the writer, at most %d allowed", buf.Len(), max)
			}
		})
	}
}

func TestWriteContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Write(ctx, io.Discard, nil, []formats.Tensor{f32("a", 1, producer{n: 4})}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	calls := 0
	cancelling := writerFunc(func(w io.Writer) (int64, error) {
		cancel()
		n, err := w.Write(make([]byte, 8))
		return int64(n), err
	})
	// Same element size, so "a" is written before "b".
	ts := []formats.Tensor{f32("a", 2, cancelling), f32("b", 1, producer{n: 4, calls: &calls})}
	if err := Write(ctx, io.Discard, nil, ts); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled between tensors: %v", err)
	}
	if calls != 0 {
		t.Error("the tensor after cancellation was produced")
	}
}

type writerFunc func(io.Writer) (int64, error)

func (f writerFunc) WriteTo(w io.Writer) (int64, error) { return f(w) }

func TestWriteRefuses(t *testing.T) {
	ok := f32("w", 1, producer{n: 4})
	q4 := formats.Tensor{TensorInfo: formats.TensorInfo{Name: "q", DType: formats.Q4_0, Shape: []int64{32}, Size: 18}, Data: producer{n: 18}}
	meta := formats.NewMeta()
	meta.Set("n", formats.ValUint32(1))
	cases := []struct {
		name  string
		meta  *formats.Meta
		ts    []formats.Tensor
		rule  error
		class error
	}{
		{"Q4_0", nil, []formats.Tensor{ok, q4}, ErrDTypeNotStorable, formats.ErrUnsupported},
		{"invalid dtype", nil, []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "x"}, Data: producer{}}}, ErrDTypeNotStorable, formats.ErrUnsupported},
		{"duplicate", nil, []formats.Tensor{ok, ok}, ErrDuplicateName, formats.ErrFormat},
		{"size", nil, []formats.Tensor{f32("s", 2, producer{n: 8}), {TensorInfo: formats.TensorInfo{Name: "t", DType: formats.F32, Shape: []int64{2}, Size: 4}, Data: producer{n: 4}}}, ErrSizeMismatch, formats.ErrFormat},
		{"negative dim", nil, []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "n", DType: formats.U8, Shape: []int64{-1}}, Data: producer{}}}, ErrBadShape, formats.ErrFormat},
		{"overflow", nil, []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "o", DType: formats.U8, Shape: []int64{1 << 40, 1 << 40}}, Data: producer{}}}, ErrOverflow, formats.ErrFormat},
		{"reserved", nil, []formats.Tensor{f32(metadataKey, 1, producer{n: 4})}, ErrReservedName, formats.ErrFormat},
		{"bad utf8 name", nil, []formats.Tensor{f32("a\xff", 1, producer{n: 4})}, ErrInvalidUTF8, formats.ErrFormat},
		{"nil data", nil, []formats.Tensor{f32("d", 1, nil)}, ErrNoData, formats.ErrFormat},
		{"non-string meta", meta, []formats.Tensor{ok}, ErrMetaNotString, formats.ErrUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteMeta(context.Background(), &buf, c.meta, c.ts)
			if !errors.Is(err, c.rule) || !errors.Is(err, c.class) {
				t.Fatalf("got %v, want %v", err, c.rule)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes written before the plan failed", buf.Len())
			}
		})
	}
	if err := Write(context.Background(), io.Discard, map[string]string{"k\xff": "v"}, nil); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("bad utf8 metadata: %v", err)
	}
}

// TestEscaping pins appendString to what Python's json.dumps writes.
func TestEscaping(t *testing.T) {
	for _, c := range []struct{ in, raw, ascii string }{
		{`plain`, `"plain"`, `"plain"`},
		{`a"b\c/`, `"a\"b\\c/"`, `"a\"b\\c/"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`, `"\b\f\n\r\t"`},
		{"\x00\x01\x1f\x7f", "\"\\u0000\\u0001\\u001f\x7f\"", `"\u0000\u0001\u001f\u007f"`},
		{"<>&", `"<>&"`, `"<>&"`},
		{"héllo ✓", `"héllo ✓"`, `"h\u00e9llo \u2713"`},
		{"😀\u2028", "\"😀\u2028\"", `"\ud83d\ude00\u2028"`},
	} {
		if got := string(appendString(nil, c.in, false)); got != c.raw {
			t.Errorf("%q: got %s, want %s", c.in, got, c.raw)
		}
		if got := string(appendString(nil, c.in, true)); got != c.ascii {
			t.Errorf("%q ascii: got %s, want %s", c.in, got, c.ascii)
		}
	}
}

func TestWriteStrings(t *testing.T) {
	meta := map[string]string{"ctl": "\x00\t\"\\\x1f", "uni": "héllo ✓ 😀", "": ""}
	ts := []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "weird \"\\\n😀", DType: formats.U8, Shape: []int64{1}, Size: 1}, Data: formats.BytesWriter{9}}}
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, meta, ts); err != nil {
		t.Fatal(err)
	}
	r, err := readBytes(t, buf.Bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range meta {
		if got := r.Metadata()[k]; got != v {
			t.Errorf("meta %q = %q, want %q", k, got, v)
		}
	}
	var keys []string
	for _, kv := range r.Meta().KVs() {
		keys = append(keys, kv.Key)
	}
	if got := joinNames(keys); got != " ctl uni" {
		t.Errorf("metadata keys %q, want sorted", got)
	}
	if _, ok := r.Tensor(ts[0].Name); !ok {
		t.Error("escaped name lost")
	}
}

func TestWriteEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	if want := "\x08\x00\x00\x00\x00\x00\x00\x00{}      "; buf.String() != want {
		t.Errorf("got %q", buf.String())
	}
}
