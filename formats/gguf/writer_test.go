package gguf

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
	"github.com/qtool-dev/qtool/formats/outfile"
)

// rewrite reads r's tensors and metadata and writes them again.
func rewrite(t testing.TB, r *Reader, opts WriteOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, r.Meta(), formattest.Tensors(t, r), opts); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

func TestRoundTripByteIdentical(t *testing.T) {
	files := append(goldens[:len(goldens):len(goldens)], struct {
		name string
		opts Options
	}{stories, Options{}})
	for _, g := range files {
		t.Run(g.name, func(t *testing.T) {
			r := openT(t, g.name, g.opts)
			wopts := WriteOptions{AllowNestedArrays: g.opts.AllowNestedArrays}
			got := rewrite(t, r, wopts)
			if want := readFileT(t, g.name); !bytes.Equal(got, want) {
				t.Fatalf("rewrite differs: %d bytes vs %d, first difference at %d", len(got), len(want), firstDiff(got, want))
			}
			lay, err := Plan(r.Meta(), formattest.Tensors(t, r), wopts)
			if err != nil {
				t.Fatal(err)
			}
			if lay.Alignment != r.Alignment() || lay.TensorInfoEnd != r.TensorInfoEnd() || lay.DataStart != r.DataStart() || lay.Size != int64(len(got)) {
				t.Errorf("Plan %+v vs reader align %d tie %d ds %d", lay, r.Alignment(), r.TensorInfoEnd(), r.DataStart())
			}
			for i, ti := range r.Tensors() {
				if raw, _ := r.RawOffset(ti.Name); lay.Offsets[i] != raw {
					t.Errorf("%s: planned offset %d, stored %d", ti.Name, lay.Offsets[i], raw)
				}
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestRoundTripConformance(t *testing.T) {
	r := openT(t, "kv_all_types.gguf", Options{})
	formattest.TestRoundTrip(t, r, func(ts []formats.Tensor) (formats.Source, error) {
		var buf bytes.Buffer
		if err := Write(context.Background(), &buf, r.Meta(), ts, WriteOptions{}); err != nil {
			return nil, err
		}
		return NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "rt", Options{})
	}, true)
}

func TestWriteNestedArraysRefusedByDefault(t *testing.T) {
	r := openT(t, "nested_array.gguf", Options{AllowNestedArrays: true})
	err := Write(context.Background(), io.Discard, r.Meta(), formattest.Tensors(t, r), WriteOptions{})
	var fe *formats.FormatError
	if !errors.Is(err, ErrNestedArray) || !errors.As(err, &fe) || fe.Key != "test.nested_i32" {
		t.Errorf("err = %v, want ErrNestedArray on test.nested_i32", err)
	}
}

func TestWriteAlignment(t *testing.T) {
	src := openT(t, "tiny_llama.gguf", Options{})
	cases := []struct {
		name      string
		meta      func() *formats.Meta
		opts      WriteOptions
		wantAlign int64
		wantKV    bool // general.alignment present after writing
	}{
		{"default", src.Meta().Clone, WriteOptions{}, 32, false},
		{"explicit 32", src.Meta().Clone, WriteOptions{Alignment: 32}, 32, false},
		{"option 64 appends the key", src.Meta().Clone, WriteOptions{Alignment: 64}, 64, true},
		{"meta 128", func() *formats.Meta {
			m := src.Meta().Clone()
			m.Set(keyAlignment, formats.ValUint32(128))
			return m
		}, WriteOptions{}, 128, true},
		{"option overrides meta", func() *formats.Meta {
			m := src.Meta().Clone()
			m.Set(keyAlignment, formats.ValUint32(128))
			return m
		}, WriteOptions{Alignment: 16}, 16, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(context.Background(), &buf, c.meta(), formattest.Tensors(t, src), c.opts); err != nil {
				t.Fatal(err)
			}
			r, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "aligned", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Alignment() != c.wantAlign || r.Meta().Has(keyAlignment) != c.wantKV || r.DataStart()%c.wantAlign != 0 || int64(buf.Len())%c.wantAlign != 0 {
				t.Errorf("alignment %d (key %v), data start %d, size %d", r.Alignment(), r.Meta().Has(keyAlignment), r.DataStart(), buf.Len())
			}
			for _, ti := range r.Tensors() {
				if (ti.Offset-r.DataStart())%c.wantAlign != 0 {
					t.Errorf("%s at %d", ti.Name, ti.Offset)
				}
			}
			for _, ti := range src.Tensors() {
				a, _ := src.Bytes(ti.Name)
				b, err := r.Bytes(ti.Name)
				if err != nil || !bytes.Equal(a, b) {
					t.Errorf("%s: bytes differ (%v)", ti.Name, err)
				}
			}
		})
	}
}

func TestWriteRank0AndZeroTensors(t *testing.T) {
	meta := formats.NewMeta()
	ts := []formats.Tensor{
		{TensorInfo: formats.TensorInfo{Name: "scalar", DType: formats.F32, Size: 4}, Data: formats.BytesWriter{1, 2, 3, 4}},
		{TensorInfo: formats.TensorInfo{Name: "empty", DType: formats.F16, Shape: []int64{0, 8}}},
	}
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, meta, ts, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "rank0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := r.Tensors()
	if !equalShape(got[0].Shape, []int64{1}) || got[0].Size != 4 || !equalShape(got[1].Shape, []int64{0, 8}) || got[1].Size != 0 {
		t.Errorf("tensors %+v", got)
	}
	// No tensors and no metadata: header 24 bytes, padded to 32.
	buf.Reset()
	if err := Write(context.Background(), &buf, nil, nil, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 32 {
		t.Errorf("empty file is %d bytes, want 32", buf.Len())
	}
}

// lyingData produces n bytes regardless of the tensor's declared size.
type lyingData int

func (l lyingData) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(make([]byte, int(l)))
	return int64(n), err
}

// failingData fails after writing nothing.
type failingData struct{}

var errProducer = errors.New("producer failed")

func (failingData) WriteTo(io.Writer) (int64, error) { return 0, errProducer }

func f32Tensor(name string, n int64, data io.WriterTo) formats.Tensor {
	return formats.Tensor{TensorInfo: formats.TensorInfo{Name: name, DType: formats.F32, Shape: []int64{n}, Size: 4 * n}, Data: data}
}

func TestWriteErrors(t *testing.T) {
	okMeta := formats.NewMeta()
	okMeta.Set("general.architecture", formats.ValString("llama"))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name  string
		ctx   context.Context
		meta  *formats.Meta
		ts    []formats.Tensor
		opts  WriteOptions
		want  error // errors.Is target
		class error // class sentinel, nil when not an input error
	}{
		{"short data", nil, okMeta, []formats.Tensor{f32Tensor("short", 4, lyingData(15))}, WriteOptions{}, ErrDataSize, nil},
		{"long data", nil, okMeta, []formats.Tensor{f32Tensor("long", 4, lyingData(17))}, WriteOptions{}, ErrDataSize, nil},
		{"nil data", nil, okMeta, []formats.Tensor{f32Tensor("nil", 4, nil)}, WriteOptions{}, ErrDataSize, nil},
		{"producer error", nil, okMeta, []formats.Tensor{f32Tensor("fails", 4, failingData{})}, WriteOptions{}, errProducer, nil},
		{"canceled", canceled, okMeta, []formats.Tensor{f32Tensor("x", 4, lyingData(16))}, WriteOptions{}, context.Canceled, nil},
		{"U8 not storable", nil, okMeta, []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "u8", DType: formats.U8, Shape: []int64{3}, Size: 3}, Data: lyingData(3)}}, WriteOptions{}, ErrNotStorable, formats.ErrUnsupported},
		{"BOOL not storable", nil, okMeta, []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "b", DType: formats.Bool, Shape: []int64{3}, Size: 3}, Data: lyingData(3)}}, WriteOptions{}, ErrNotStorable, formats.ErrUnsupported},
		{"F8 not storable", nil, okMeta, []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "f8", DType: formats.F8E4M3, Shape: []int64{3}, Size: 3}, Data: lyingData(3)}}, WriteOptions{}, ErrNotStorable, formats.ErrUnsupported},
		{"block misaligned", nil, okMeta, []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "q", DType: formats.Q4_0, Shape: []int64{2, 31}}}}, WriteOptions{}, ErrBlockMisaligned, formats.ErrFormat},
		{"name 64 bytes", nil, okMeta, []formats.Tensor{f32Tensor(string(bytes.Repeat([]byte("n"), 64)), 1, lyingData(4))}, WriteOptions{}, ErrNameTooLong, formats.ErrFormat},
		{"duplicate name", nil, okMeta, []formats.Tensor{f32Tensor("a", 1, lyingData(4)), f32Tensor("a", 1, lyingData(4))}, WriteOptions{}, ErrDuplicateTensor, formats.ErrFormat},
		{"rank 5", nil, okMeta, []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "r5", DType: formats.F32, Shape: []int64{1, 1, 1, 1, 1}, Size: 4}, Data: lyingData(4)}}, WriteOptions{}, ErrTooManyDims, formats.ErrFormat},
		{"negative dim", nil, okMeta, []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "neg", DType: formats.F32, Shape: []int64{-1}}}}, WriteOptions{}, ErrBadDim, formats.ErrFormat},
		{"size mismatch", nil, okMeta, []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "sz", DType: formats.F32, Shape: []int64{2}, Size: 4}, Data: lyingData(4)}}, WriteOptions{}, ErrSizeMismatch, formats.ErrFormat},
		{"alignment as u64", nil, metaWith(keyAlignment, formats.ValUint64(32)), nil, WriteOptions{}, ErrBadAlignment, formats.ErrFormat},
		{"alignment 3 in meta", nil, metaWith(keyAlignment, formats.ValUint32(3)), nil, WriteOptions{}, ErrBadAlignment, formats.ErrFormat},
		{"alignment 0 in meta", nil, metaWith(keyAlignment, formats.ValUint32(0)), nil, WriteOptions{}, ErrBadAlignment, formats.ErrFormat},
		{"alignment option 24", nil, okMeta, nil, WriteOptions{Alignment: 24}, ErrBadAlignment, formats.ErrFormat},
		{"alignment option 2^32", nil, okMeta, nil, WriteOptions{Alignment: 1 << 32}, ErrBadAlignment, formats.ErrFormat},
		{"empty key", nil, metaWith("", formats.ValUint8(1)), nil, WriteOptions{}, ErrEmptyKey, formats.ErrFormat},
		{"value type mismatch", nil, metaWith("k", formats.Value{Type: formats.TypeUint32, V: "x"}), nil, WriteOptions{}, ErrBadValue, formats.ErrFormat},
		{"array elem mismatch", nil, metaWith("k", formats.Value{Type: formats.TypeArray, Elem: formats.TypeInt32, V: []uint32{1}}), nil, WriteOptions{}, ErrBadValue, formats.ErrFormat},
		{"bad value type", nil, metaWith("k", formats.Value{Type: 13, V: 1}), nil, WriteOptions{}, ErrBadValueType, formats.ErrFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := c.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			err := Write(ctx, io.Discard, c.meta, c.ts, WriteOptions(c.opts))
			if !errors.Is(err, c.want) || (c.class != nil && !errors.Is(err, c.class)) {
				t.Fatalf("err = %v, want %v / %v", err, c.want, c.class)
			}
			if len(c.ts) > 0 && c.ctx == nil && !bytes.Contains([]byte(err.Error()), []byte(c.ts[len(c.ts)-1].Name)) {
				t.Errorf("error %q does not name the tensor", err)
			}
		})
	}
}

func metaWith(key string, v formats.Value) *formats.Meta {
	m := formats.NewMeta()
	m.Set(key, v)
	return m
}

// failAfter is a writer that accepts n bytes and then fails.
type failAfter struct{ n int }

var errDisk = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k := f.n
		f.n = 0
		return k, errDisk
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriteDestinationError(t *testing.T) {
	r := openT(t, "tiny_llama.gguf", Options{})
	err := Write(context.Background(), &failAfter{n: 100_000}, r.Meta(), formattest.Tensors(t, r), WriteOptions{})
	if !errors.Is(err, errDisk) {
		t.Errorf("err = %v, want the destination's error", err)
	}
}

func TestWriteFile(t *testing.T) {
	r := openT(t, "kv_all_types.gguf", Options{})
	dir := t.TempDir()
	path := filepath.Join(dir, "out.gguf")
	ctx := context.Background()
	if err := WriteFile(ctx, path, r.Meta(), formattest.Tensors(t, r), WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, readFileT(t, "kv_all_types.gguf")) {
		t.Fatalf("WriteFile output differs (err %v)", err)
	}
	if err := WriteFile(ctx, path, r.Meta(), formattest.Tensors(t, r), WriteOptions{}, false); !errors.Is(err, outfile.ErrExists) {
		t.Errorf("existing file without force: %v", err)
	}
	// A failing producer leaves neither the output nor a temporary.
	bad := filepath.Join(dir, "bad.gguf")
	ts := []formats.Tensor{f32Tensor("x", 4, lyingData(3))}
	if err := WriteFile(ctx, bad, nil, ts, WriteOptions{}, false); !errors.Is(err, ErrDataSize) {
		t.Errorf("err = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after a failed write, want 1", len(entries))
	}
}
