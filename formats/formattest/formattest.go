// Package formattest is the conformance suite every formats.Source
// implementation runs: the invariants a validated source promises, and a
// write → read round trip that must preserve names, dtypes, shapes, bytes
// and metadata.
package formattest

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// TestSource checks the promises of an opened, validated source: unique
// names, sizes consistent with dtype and shape, sections of exactly Size
// bytes that read completely, zero-copy Bytes equal to Section contents,
// and a clear error for an unknown tensor name.
func TestSource(t *testing.T, src formats.Source) {
	t.Helper()
	seen := map[string]bool{}
	bs, _ := src.(formats.ByteSource)
	for _, ti := range src.Tensors() {
		if seen[ti.Name] {
			t.Errorf("tensor %q listed twice", ti.Name)
		}
		seen[ti.Name] = true
		if !ti.DType.Valid() {
			t.Errorf("tensor %q: invalid dtype %v", ti.Name, ti.DType)
		}
		n, ok := ti.NumBytes()
		if !ok || n != ti.Size {
			t.Errorf("tensor %q: Size %d, dtype %v shape %v implies %d (ok=%v)", ti.Name, ti.Size, ti.DType, ti.Shape, n, ok)
		}
		sec, err := src.Section(ti.Name)
		if err != nil {
			t.Errorf("Section(%q): %v", ti.Name, err)
			continue
		}
		if sec.Size() != ti.Size {
			t.Errorf("Section(%q).Size() = %d, want %d", ti.Name, sec.Size(), ti.Size)
		}
		data, err := io.ReadAll(sec)
		if err != nil || int64(len(data)) != ti.Size {
			t.Errorf("read %q: %d bytes, err %v", ti.Name, len(data), err)
		}
		if bs != nil {
			b, err := bs.Bytes(ti.Name)
			if err != nil {
				t.Errorf("Bytes(%q): %v", ti.Name, err)
			} else if !bytes.Equal(b, data) {
				t.Errorf("Bytes(%q) differs from Section contents", ti.Name)
			}
		}
	}
	if _, err := src.Section("\x00no such tensor"); err == nil {
		t.Errorf("Section of an unknown name returned no error")
	}
	if bs != nil {
		if _, err := bs.Bytes("\x00no such tensor"); err == nil {
			t.Errorf("Bytes of an unknown name returned no error")
		}
	}
}

// Tensors turns every tensor of src into a formats.Tensor whose data is a
// straight copy of the stored bytes, for round-trip writes.
func Tensors(t testing.TB, src formats.Source) []formats.Tensor {
	t.Helper()
	var out []formats.Tensor
	for _, ti := range src.Tensors() {
		sec, err := src.Section(ti.Name)
		if err != nil {
			t.Fatalf("Section(%q): %v", ti.Name, err)
		}
		out = append(out, formats.Tensor{TensorInfo: ti, Data: formats.SectionWriter{R: sec}})
	}
	return out
}

// Equal compares two sources: the same tensors (names, dtypes, shapes and
// bytes; in the same order when ordered is true) and equal metadata. It
// returns a description of the first difference, or "".
func Equal(a, b formats.Source, ordered bool) string {
	ta, tb := a.Tensors(), b.Tensors()
	if len(ta) != len(tb) {
		return fmt.Sprintf("tensor count %d vs %d", len(ta), len(tb))
	}
	byName := map[string]formats.TensorInfo{}
	for _, ti := range tb {
		byName[ti.Name] = ti
	}
	for i, x := range ta {
		y, ok := byName[x.Name]
		if !ok {
			return fmt.Sprintf("tensor %q missing", x.Name)
		}
		if ordered && tb[i].Name != x.Name {
			return fmt.Sprintf("tensor %d is %q vs %q", i, x.Name, tb[i].Name)
		}
		if x.DType != y.DType || !reflect.DeepEqual(normShape(x.Shape), normShape(y.Shape)) {
			return fmt.Sprintf("tensor %q: %v%v vs %v%v", x.Name, x.DType, x.Shape, y.DType, y.Shape)
		}
		da, err1 := readAll(a, x.Name)
		db, err2 := readAll(b, x.Name)
		if err1 != nil || err2 != nil {
			return fmt.Sprintf("tensor %q: read: %v / %v", x.Name, err1, err2)
		}
		if !bytes.Equal(da, db) {
			return fmt.Sprintf("tensor %q: bytes differ", x.Name)
		}
	}
	ma, mb := a.Meta(), b.Meta()
	if ma.Len() != mb.Len() {
		return fmt.Sprintf("metadata count %d vs %d", ma.Len(), mb.Len())
	}
	for i, kv := range ma.KVs() {
		v, ok := mb.Get(kv.Key)
		if !ok {
			return fmt.Sprintf("metadata key %q missing", kv.Key)
		}
		if ordered && mb.KVs()[i].Key != kv.Key {
			return fmt.Sprintf("metadata %d is %q vs %q", i, kv.Key, mb.KVs()[i].Key)
		}
		if !sameValue(kv.Value, v) {
			return fmt.Sprintf("metadata %q: %#v vs %#v", kv.Key, kv.Value, v)
		}
	}
	return ""
}

func normShape(s []int64) []int64 {
	if len(s) == 0 {
		return []int64{}
	}
	return s
}

// sameValue compares values bit for bit (so NaN equals NaN and -0 ≠ +0).
func sameValue(a, b formats.Value) bool {
	return a.Type == b.Type && a.Elem == b.Elem && fmt.Sprintf("%#v", bitsOf(a.V)) == fmt.Sprintf("%#v", bitsOf(b.V))
}

func readAll(src formats.Source, name string) ([]byte, error) {
	sec, err := src.Section(name)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(sec)
}

// TestRoundTrip writes src with write, reopens the result with open, and
// requires Equal (ordered when the format keeps order).
func TestRoundTrip(t *testing.T, src formats.Source, write func(ts []formats.Tensor) (formats.Source, error), ordered bool) formats.Source {
	t.Helper()
	out, err := write(Tensors(t, src))
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	if d := Equal(src, out, ordered); d != "" {
		t.Errorf("round trip differs: %s", d)
	}
	TestSource(t, out)
	return out
}
