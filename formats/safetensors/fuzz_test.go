package safetensors

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/formattest"
)

// fuzzLimits keep a fuzzed header from asking for much: the reader never
// allocates beyond the input anyway, these only bound the work per input.
var fuzzLimits = Options{Limits: formats.Limits{MaxHeaderBytes: 1 << 20, MaxTensors: 1 << 12, MaxDims: 16}}

// FuzzReader: no input panics; every error is a located input error; what
// parses re-encodes with WriteMeta, re-parses to equal content, and a
// second write is byte-identical to the first (STYLE rule 9).
func FuzzReader(f *testing.F) {
	for _, g := range goldens[:2] { // the shards are large; their layout is the same as all_dtypes'
		b, err := os.ReadFile(g.path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, c := range malformedCases() {
		f.Add(c.file)
	}
	f.Add(valid().bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), int64(len(data)), "fuzz", fuzzLimits)
		if err != nil {
			if !formats.IsInputError(err) {
				t.Fatalf("not an input error: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := WriteMeta(context.Background(), &buf, r.Meta(), formattest.Tensors(t, r)); err != nil {
			t.Fatalf("rewrite of a valid file failed: %v", err)
		}
		r2, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "rewrite", fuzzLimits)
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		if d := formattest.Equal(r, r2, false); d != "" {
			t.Fatalf("rewrite changed content: %s", d)
		}
		if r.Meta().Len() > 0 && r2.HeaderKeyOrder()[0] != metadataKey {
			t.Fatal("rewritten metadata is not first")
		}
		var buf2 bytes.Buffer
		if err := WriteMeta(context.Background(), &buf2, r2.Meta(), formattest.Tensors(t, r2)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatal("write → read → write is not a fixed point")
		}
	})
}
