package gguf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/formattest"
)

// goldens are the gguf-py files with manifests, and the options each needs.
var goldens = []struct {
	name string
	opts Options
}{
	{"kv_all_types.gguf", Options{}},
	{"no_tensors.gguf", Options{}},
	{"nested_array.gguf", Options{AllowNestedArrays: true}},
	{"tiny_llama.gguf", Options{}},
}

const stories = "stories260K.gguf"

func testdata(name string) string { return filepath.Join("testdata", name) }

func openT(t testing.TB, name string, opts Options) *Reader {
	t.Helper()
	r, err := OpenWith(testdata(name), opts)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func readFileT(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testdata(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenManifests(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			m := loadManifest(t, g.name)
			r := openT(t, g.name, g.opts)
			checkManifest(t, r, m)
			formattest.TestSource(t, r)

			// The ReadAt path (no mapping) must agree with the mmap path.
			raw := readFileT(t, g.name)
			r2, err := NewReader(bytes.NewReader(raw), int64(len(raw)), testdata(g.name), g.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkManifest(t, r2, m)
			formattest.TestSource(t, r2)
			if d := formattest.Equal(r, r2, true); d != "" {
				t.Errorf("mmap and ReadAt readers differ: %s", d)
			}
		})
	}
}

// TestGoldensAreStrict: the reference files follow the spec's
// recommendations too (key form, bools stored as 0 or 1).
func TestGoldensAreStrict(t *testing.T) {
	for _, name := range []string{"kv_all_types.gguf", "no_tensors.gguf", "nested_array.gguf", "tiny_llama.gguf", stories} {
		r, err := OpenWith(testdata(name), Options{Strict: true, AllowNestedArrays: true})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		r.Close()
	}
}

func TestNestedArrayRejectedByDefault(t *testing.T) {
	_, err := Open(testdata("nested_array.gguf"))
	var fe *formats.FormatError
	if !errors.Is(err, ErrNestedArray) || !errors.Is(err, formats.ErrUnsupported) || !errors.As(err, &fe) {
		t.Fatalf("err = %v, want ErrNestedArray", err)
	}
	// test.nested_i32 starts at 140 (manifest); its element type follows
	// the key (8+15 bytes) and the value type (4).
	if fe.Key != "test.nested_i32" || fe.Offset != 140+8+15+4 || fe.File != testdata("nested_array.gguf") {
		t.Errorf("located at %+v", fe)
	}
}

func TestNoTensorsWithoutPadding(t *testing.T) {
	raw := readFileT(t, "no_tensors.gguf")
	for _, n := range []int{237, 250, 256} {
		r, err := NewReader(bytes.NewReader(raw[:n]), int64(n), "no_tensors", Options{})
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if r.TensorInfoEnd() != 237 || r.DataStart() != 256 || len(r.Tensors()) != 0 || r.Meta().Len() != 4 {
			t.Errorf("%d bytes: tie %d ds %d", n, r.TensorInfoEnd(), r.DataStart())
		}
	}
}

func TestVersion2(t *testing.T) {
	raw := bytes.Clone(readFileT(t, "tiny_llama.gguf"))
	raw[4] = 2
	r2, err := NewReader(bytes.NewReader(raw), int64(len(raw)), "v2", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Version() != 2 {
		t.Errorf("version %d", r2.Version())
	}
	if d := formattest.Equal(openT(t, "tiny_llama.gguf", Options{}), r2, true); d != "" {
		t.Error(d)
	}
}

func TestStories260K(t *testing.T) {
	r := openT(t, stories, Options{})
	formattest.TestSource(t, r)
	if r.Version() != 3 || r.Alignment() != 32 || r.Meta().Len() != 19 || r.Size() != 1185376 {
		t.Errorf("version %d alignment %d kvs %d", r.Version(), r.Alignment(), r.Meta().Len())
	}
	ts := r.Tensors()
	if len(ts) != 48 {
		t.Fatalf("%d tensors, want 48", len(ts))
	}
	var total int64
	for _, ti := range ts {
		if ti.DType != formats.F32 {
			t.Errorf("%s: %v, want F32", ti.Name, ti.DType)
		}
		total += ti.Size
	}
	// The same sum as the sharded HF copy's metadata.total_size.
	if total != 1171200 {
		t.Errorf("tensor bytes %d, want 1171200", total)
	}
	if ti, _ := r.Tensor("token_embd.weight"); !equalShape(ti.Shape, []int64{512, 64}) || ti.Offset != r.DataStart() {
		t.Errorf("token_embd.weight: %+v", ti)
	}
	m := r.Meta()
	for key, want := range map[string]uint64{
		"llama.context_length": 2048, "llama.embedding_length": 64, "llama.feed_forward_length": 172,
		"llama.attention.head_count": 8, "llama.attention.head_count_kv": 4, "llama.block_count": 5,
		"llama.rope.dimension_count": 8, "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
	} {
		if got, ok := m.Uint(key); !ok || got != want {
			t.Errorf("%s = %d (%v), want %d", key, got, ok, want)
		}
	}
	for key, want := range map[string]string{"general.architecture": "llama", "tokenizer.ggml.model": "llama"} {
		if got, _ := m.String(key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if eps, _ := m.Float("llama.attention.layer_norm_rms_epsilon"); float32(eps) != 1e-5 {
		t.Errorf("rms eps %g", eps)
	}
	toks, _ := m.Strings("tokenizer.ggml.tokens")
	if len(toks) != 512 || toks[0] != "<unk>" || toks[1] != "<s>" || toks[2] != "</s>" || toks[3] != "<0x00>" {
		t.Errorf("tokens: %d, first %q", len(toks), toks[:min(4, len(toks))])
	}
	for _, key := range []string{"tokenizer.ggml.scores", "tokenizer.ggml.token_type"} {
		if v, _ := m.Get(key); v.Len() != 512 {
			t.Errorf("%s has %d elements", key, v.Len())
		}
	}
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestUnknownTensor(t *testing.T) {
	r := openT(t, "tiny_llama.gguf", Options{})
	if _, err := r.Section("nope"); !errors.Is(err, ErrNoTensor) {
		t.Errorf("Section: %v", err)
	}
	if _, err := r.Bytes("nope"); !errors.Is(err, ErrNoTensor) {
		t.Errorf("Bytes: %v", err)
	}
	if _, ok := r.GGMLType("nope"); ok {
		t.Error("GGMLType of unknown name")
	}
	if _, ok := r.RawOffset("nope"); ok {
		t.Error("RawOffset of unknown name")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOpenMissingFile(t *testing.T) {
	if _, err := Open(testdata("does-not-exist.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.gguf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(empty); !errors.Is(err, ErrTruncated) {
		t.Errorf("empty file: %v", err)
	}
}

// TestLenientByDefault checks what ggml accepts and Strict refuses.
func TestLenientByDefault(t *testing.T) {
	cases := []struct {
		name string
		kv   rawKV
		rule error
	}{
		{"bool 2", kvBool("test.flag2", 2), ErrBadBool},
		{"bool array 2", kvArr("test.flags", append(arr(7, 3), 0, 1, 2)), ErrBadBool},
		{"upper-case key", kvU32("General.Count", 1), ErrBadKey},
		{"empty segment", kvU32("a..b", 1), ErrBadKey},
		{"trailing dot", kvU32("a.b.", 1), ErrBadKey},
		{"space", kvU32("a b", 1), ErrBadKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := validSpec()
			s.kvs = append(s.kvs, c.kv)
			b, _, _ := s.build()
			r, err := NewReader(bytes.NewReader(b), int64(len(b)), "lenient", Options{})
			if err != nil {
				t.Fatalf("default options: %v", err)
			}
			if v, _ := r.Meta().Get(c.kv.key); c.kv.typ == 7 && v.V != true {
				t.Errorf("bool byte 2 read as %v, want true", v.V)
			}
			_, err = NewReader(bytes.NewReader(b), int64(len(b)), "strict", Options{Strict: true})
			if !errors.Is(err, c.rule) || !errors.Is(err, formats.ErrFormat) {
				t.Errorf("strict: %v, want %v", err, c.rule)
			}
		})
	}
}

// failingReaderAt serves data but fails every read that reaches past
// limit, like a disk error or a mapped file truncated underneath.
type failingReaderAt struct {
	data  []byte
	limit int64
}

var errIO = errors.New("input/output error")

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.limit {
		return 0, errIO
	}
	return bytes.NewReader(f.data).ReadAt(p, off)
}

func TestReadErrorPropagates(t *testing.T) {
	raw := readFileT(t, "tiny_llama.gguf")
	_, err := NewReader(failingReaderAt{raw, 100}, int64(len(raw)), "disk", Options{})
	var fe *formats.FormatError
	if !errors.Is(err, errIO) || !errors.As(err, &fe) || formats.IsInputError(err) {
		t.Errorf("err = %v, want the I/O error, located, not an input error", err)
	}
}
