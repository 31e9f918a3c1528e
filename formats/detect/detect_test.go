package detect

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

var root = filepath.Join("..", "..")

func TestSniffAndOpen(t *testing.T) {
	cases := []struct {
		path string
		want Format
		n    int
	}{
		{filepath.Join(root, "fixtures", "stories260K", "stories260K.gguf"), GGUF, 48},
		{filepath.Join(root, "fixtures", "stories260K-hf"), HFFolder, 48},
		{filepath.Join(root, "fixtures", "stories260K-hf", "model.safetensors"), Safetensors, 48},
		{filepath.Join(root, "formats", "safetensors", "testdata", "unpadded_unsorted.safetensors"), Safetensors, 3},
	}
	for _, c := range cases {
		src, f, err := Open(c.path, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if f != c.want || len(src.Tensors()) != c.n {
			t.Errorf("%s: %s with %d tensors, want %s with %d", c.path, f, len(src.Tensors()), c.want, c.n)
		}
		if d := Details(src); len(d) == 0 {
			t.Errorf("%s: no details", c.path)
		}
		src.Close()
	}
}

func TestUnknownFormat(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"text":  []byte("hello, world, this is text"),
		"empty": nil,
		"short": []byte("GG"),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		_, _, err := Open(p, Options{})
		if !errors.Is(err, ErrUnknownFormat) || !errors.Is(err, formats.ErrUnsupported) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, _, err := Open(filepath.Join(dir, "missing"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestNestedArraysNeedOption(t *testing.T) {
	p := filepath.Join(root, "formats", "gguf", "testdata", "nested_array.gguf")
	if _, _, err := Open(p, Options{}); !errors.Is(err, formats.ErrUnsupported) {
		t.Errorf("nested arrays opened without the option: %v", err)
	}
	src, _, err := Open(p, Options{NestedArrays: true})
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
}
