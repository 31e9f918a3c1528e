package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/formattest"
)

// file assembles a safetensors file from a header text and data bytes.
func file(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func readBytes(t testing.TB, b []byte, opts Options) (*Reader, error) {
	t.Helper()
	return NewReader(bytes.NewReader(b), int64(len(b)), "mem.safetensors", opts)
}

// TestSourceConformance runs the shared suite on every golden, through the
// mapping (Open) and through a plain io.ReaderAt (NewReader).
func TestSourceConformance(t *testing.T) {
	for _, g := range goldens {
		t.Run(filepath.Base(g.path), func(t *testing.T) {
			r, err := Open(g.path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if !r.Mapped() {
				t.Error("Open did not map the file")
			}
			formattest.TestSource(t, r)

			b, err := os.ReadFile(g.path)
			if err != nil {
				t.Fatal(err)
			}
			rr, err := NewReader(bytes.NewReader(b), int64(len(b)), g.path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			formattest.TestSource(t, rr)
			// mmap and ReadAt paths agree on everything (STYLE rule 18).
			if !reflect.DeepEqual(rr.Tensors(), r.Tensors()) {
				t.Error("NewReader and Open list different tensors")
			}
			if d := formattest.Equal(r, rr, true); d != "" {
				t.Error(d)
			}
		})
	}
}

// TestUnusualButLegal covers what the format allows and HF never writes.
func TestUnusualButLegal(t *testing.T) {
	f32x2 := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}
	for _, c := range []struct {
		name   string
		header string
		data   []byte
		n      int
	}{
		{"empty object", `{}`, nil, 0},
		{"metadata only", `{"__metadata__":{"a":"b"}}`, nil, 0},
		{"metadata null", `{"__metadata__":null,"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32x2, 1},
		{"whitespace around", " \n\t{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}\r\n   ", f32x2, 1},
		{"whitespace inside", `{ "x" : { "shape" : [ 2 ] , "data_offsets" : [ 0 , 8 ] , "dtype" : "F32" } }`, f32x2, 1},
		{"fields reordered", `{"x":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}}`, f32x2, 1},
		{"unpadded, unaligned", `{"b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{7, 0, 0, 0x80, 0x3f}, 2},
		{"scalar", `{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}`, make([]byte, 8), 1},
		{"zero-size", `{"z":{"dtype":"BF16","shape":[0,7],"data_offsets":[0,0]},"y":{"dtype":"I8","shape":[3,0],"data_offsets":[0,0]}}`, nil, 2},
		{"escaped name", `{"a\u00e9\ud83d\ude00\n\/":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, []byte{1}, 1},
		{"empty name", `{"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}, 1},
		{"unknown dtype-free metadata keys", `{"__metadata__":{"":"","k":"\u0000"}}`, nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := readBytes(t, file(c.header, c.data), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Tensors()) != c.n {
				t.Errorf("%d tensors, want %d", len(r.Tensors()), c.n)
			}
			formattest.TestSource(t, r)
		})
	}
}

func TestDecodedNamesAndOrder(t *testing.T) {
	h := `{"__metadata__":{"z":"1","a":"\u00e9\t"},"a\u00e9\ud83d\ude00":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},` +
		`"zero":{"dtype":"U8","shape":[0],"data_offsets":[1,1]},"first":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`
	r, err := readBytes(t, file(h, []byte{1, 2}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ti := range r.Tensors() {
		names = append(names, ti.Name)
	}
	if want := []string{"first", "zero", "aé😀"}; !reflect.DeepEqual(names, want) {
		t.Errorf("data order %q, want %q", names, want)
	}
	if want := []string{"__metadata__", "aé😀", "zero", "first"}; !reflect.DeepEqual(r.HeaderKeyOrder(), want) {
		t.Errorf("key order %q, want %q", r.HeaderKeyOrder(), want)
	}
	kvs := r.Meta().KVs()
	if len(kvs) != 2 || kvs[0].Key != "z" || kvs[1].Key != "a" || kvs[1].Value.V != "é\t" {
		t.Errorf("metadata %v", kvs)
	}
	if ti, ok := r.Tensor("aé😀"); !ok || ti.Offset != r.DataStart()+1 || ti.File != "mem.safetensors" {
		t.Errorf("Tensor: %+v %v", ti, ok)
	}
	// Meta is a copy: changing it leaves the reader alone.
	m := r.Meta()
	m.Set("z", formats.ValString("changed"))
	if v, _ := r.Meta().String("z"); v != "1" {
		t.Error("Meta shares state with the reader")
	}
}

func TestReaderErrors(t *testing.T) {
	r, err := Open("testdata/all_dtypes.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Section("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Section: %v", err)
	}
	if _, err := r.Bytes("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Bytes: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Bytes("f64"); !errors.Is(err, ErrClosed) {
		t.Errorf("Bytes after Close: %v", err)
	}
	if _, err := Open("testdata/no-such-file"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open missing: %v", err)
	}
	if _, err := Open("testdata"); err == nil || formats.IsInputError(err) {
		t.Errorf("Open folder: %v", err)
	}
	if _, err := NewReader(bytes.NewReader(nil), -1, "x", Options{}); err == nil {
		t.Error("negative size accepted")
	}
}

// failingReaderAt returns an I/O error, which must come back unchanged and
// not be reported as a format error.
type failingReaderAt struct{ b []byte }

var errDisk = errors.New("disk on fire")

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= 8 {
		return 0, errDisk
	}
	return copy(p, f.b[off:]), nil
}

func TestReaderIOError(t *testing.T) {
	b := file(`{}`, nil)
	_, err := NewReader(failingReaderAt{b}, int64(len(b)), "x", Options{})
	if !errors.Is(err, errDisk) || formats.IsInputError(err) {
		t.Errorf("got %v", err)
	}
}

func TestErrorLocation(t *testing.T) {
	h := `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,8]}}`
	_, err := readBytes(t, file(h, make([]byte, 8)), Options{})
	var fe *formats.FormatError
	if !errors.As(err, &fe) || !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("got %v", err)
	}
	if fe.File != "mem.safetensors" || fe.Tensor != "b" || fe.Offset != 8+int64(len(h))+4 || fe.Detail == "" {
		t.Errorf("location %+v", fe)
	}
	if !strings.Contains(err.Error(), `tensor "b"`) {
		t.Errorf("message %q", err)
	}
}

// TestSectionsArePrivate reads two sections interleaved: no shared cursor.
func TestSectionsArePrivate(t *testing.T) {
	r, err := Open("testdata/all_dtypes.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a, _ := r.Section("u8")
	b, _ := r.Section("i8")
	x := make([]byte, 2)
	y := make([]byte, 2)
	if _, err := io.ReadFull(a, x); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(b, y); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(a, x); err != nil || x[0] != 2 || x[1] != 127 {
		t.Errorf("u8 continued with %v %v", x, err)
	}
}

// TestLyingSize: a ReaderAt whose size claims far more than it holds, with
// a header length just under the limit. The header read must fail after
// the bytes that exist, allocating at most one chunk, not N bytes.
func TestLyingSize(t *testing.T) {
	b := binary.LittleEndian.AppendUint64(nil, 99_999_999)
	b = append(b, `{"a":`...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := NewReader(bytes.NewReader(b), 1<<40, "liar", Options{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) {
		t.Errorf("got %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("allocated %d bytes for a %d-byte input", grew, len(b))
	}
}
