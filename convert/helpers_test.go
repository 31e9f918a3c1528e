package convert

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/formats/vocab"
)

var (
	storiesGGUF = filepath.Join("..", "fixtures", "stories260K", "stories260K.gguf")
	storiesHF   = filepath.Join("..", "fixtures", "stories260K-hf")
	goldenF32   = filepath.Join("testdata", "stories260K-from-hf-f32.gguf")
	goldenF16   = filepath.Join("testdata", "stories260K-from-hf-f16.gguf")
)

func openGGUF(t testing.TB, path string) *gguf.Reader {
	t.Helper()
	r, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func openFolder(t testing.TB, dir string) *safetensors.Folder {
	t.Helper()
	f, err := safetensors.OpenFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// hfToGGUFFile converts an HF model to a GGUF file in a temp folder.
func hfToGGUFFile(t testing.TB, m *HFModel, opts Options) (string, *Report) {
	t.Helper()
	meta, ts, rep, err := ToGGUF(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "out.gguf")
	if err := gguf.WriteFile(context.Background(), p, meta, ts, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	return p, rep
}

// ggufToHFFolder converts a GGUF source to an HF folder in a temp folder
// named name.
func ggufToHFFolder(t testing.TB, src formats.Source, opts Options, name string, shard int64) (string, *HFOutput) {
	t.Helper()
	out, err := ToHF(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write(context.Background(), dir, shard); err != nil {
		t.Fatal(err)
	}
	return dir, out
}

// openHF opens a folder with OpenHF, or without a tokenizer when it has
// none (synthetic folders).
func openHF(t testing.TB, dir string) *HFModel {
	t.Helper()
	m, err := OpenHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func tensorBytes(t testing.TB, src formats.Source, name string) []byte {
	t.Helper()
	sec, err := src.Section(name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(sec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameTensors checks that b holds every tensor of a under rename(name) with
// the same dtype, shape and bytes, and nothing else.
func sameTensors(t testing.TB, a, b formats.Source, rename func(string) string) {
	t.Helper()
	if rename == nil {
		rename = func(s string) string { return s }
	}
	if len(a.Tensors()) != len(b.Tensors()) {
		t.Errorf("%d tensors vs %d", len(a.Tensors()), len(b.Tensors()))
	}
	for _, ta := range a.Tensors() {
		name := rename(ta.Name)
		tb, ok := formats.Lookup(b, name)
		if !ok {
			t.Errorf("%s (%s) missing", name, ta.Name)
			continue
		}
		if ta.DType != tb.DType || !equalShape(ta.Shape, tb.Shape) {
			t.Errorf("%s: %v %v vs %v %v", name, ta.DType, ta.Shape, tb.DType, tb.Shape)
			continue
		}
		if !bytes.Equal(tensorBytes(t, a, ta.Name), tensorBytes(t, b, name)) {
			t.Errorf("%s: bytes differ", name)
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

// syntheticHF writes a fixtures model as an HF folder with a tokenizer
// made from the fixtures' GGUF vocabulary.
func syntheticHF(t testing.TB, c fixtures.ModelConfig, shard int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), c.Name)
	if _, err := fixtures.WriteHFFolder(context.Background(), dir, c, shard, false); err != nil {
		t.Fatal(err)
	}
	addTokenizer(t, c, dir)
	return dir
}

// addTokenizer writes the fixtures vocabulary of c into dir.
func addTokenizer(t testing.TB, c fixtures.ModelConfig, dir string) {
	t.Helper()
	meta, err := fixtures.GGUFMeta(c)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vocab.FromMeta(meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.WriteHF(dir); err != nil {
		t.Fatal(err)
	}
}

// syntheticGGUF writes a fixtures model as a GGUF file.
func syntheticGGUF(t testing.TB, c fixtures.ModelConfig) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), c.Name+".gguf")
	if err := fixtures.WriteGGUF(context.Background(), p, c, false); err != nil {
		t.Fatal(err)
	}
	return p
}

// hfName and ggufName map names with the llama table.
func hfName(g string) string {
	n, _, ok := arch.Llama.HFName(g)
	if !ok {
		panic("no HF name for " + g)
	}
	return n
}

func ggufName(h string) string {
	n, _, _, ok := arch.Llama.GGUFName(h)
	if !ok {
		panic("no GGUF name for " + h)
	}
	return n
}
