package gguf

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/formattest"
)

// maxFuzzOutput skips the re-encoding of inputs whose planned output is
// huge (a zero-tensor file may declare a 2 GiB alignment legally).
const maxFuzzOutput = 16 << 20

// maxFuzzSeed cuts larger seeds to their first bytes (most of
// tiny_llama.gguf's KV section): the engine minimizes every new interesting
// input for up to a minute, and on inputs of hundreds of KiB that takes
// over a short run.
const maxFuzzSeed = 4 << 10

// FuzzReader feeds arbitrary bytes to the reader. Property: no panic; a
// rejection is a located input error; whatever parses re-encodes with
// Write (nested arrays allowed when they were read) and re-parses to the
// same ordered content.
func FuzzReader(f *testing.F) {
	for _, g := range goldens {
		b, err := os.ReadFile(filepath.Join("testdata", g.name))
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > maxFuzzSeed {
			b = b[:maxFuzzSeed]
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	valid, _, _ := validSpec().build()
	f.Add(valid, false)
	for _, c := range malformedCases() {
		s := validSpec()
		if c.edit != nil {
			c.edit(&s)
		}
		b, _, _ := s.build()
		f.Add(b, c.opts.AllowNestedArrays)
	}
	f.Fuzz(func(t *testing.T, data []byte, nested bool) {
		opts := Options{AllowNestedArrays: nested}
		r, err := NewReader(bytes.NewReader(data), int64(len(data)), "fuzz.gguf", opts)
		if err != nil {
			var fe *formats.FormatError
			if !errors.As(err, &fe) || !formats.IsInputError(err) {
				t.Fatalf("rejection is not a located input error: %v", err)
			}
			return
		}
		ts := formattest.Tensors(t, r)
		wopts := WriteOptions{AllowNestedArrays: nested}
		lay, err := Plan(r.Meta(), ts, wopts)
		if err != nil {
			t.Fatalf("parsed but cannot be planned: %v", err)
		}
		if lay.Size > maxFuzzOutput {
			return
		}
		var buf bytes.Buffer
		if err := Write(context.Background(), &buf, r.Meta(), ts, wopts); err != nil {
			t.Fatalf("parsed but cannot be written: %v", err)
		}
		if int64(buf.Len()) != lay.Size {
			t.Fatalf("wrote %d bytes, planned %d", buf.Len(), lay.Size)
		}
		r2, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "rewritten.gguf", opts)
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v", err)
		}
		if d := formattest.Equal(rank0AsOne{r}, r2, true); d != "" {
			t.Fatalf("re-encoded content differs: %s", d)
		}
	})
}

// rank0AsOne presents rank-0 tensors with shape [1], which is how Write
// stores them (ggml has no rank-0 tensors); it is the writer's only
// normalisation of what the reader accepts.
type rank0AsOne struct{ *Reader }

func (s rank0AsOne) Tensors() []formats.TensorInfo {
	ts := append([]formats.TensorInfo(nil), s.Reader.Tensors()...)
	for i := range ts {
		if len(ts[i].Shape) == 0 {
			ts[i].Shape = []int64{1}
		}
	}
	return ts
}
