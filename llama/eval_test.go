package llama

import (
	"bytes"
	"compress/gzip"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestPerplexityMatchesLlamaPerplexity: llama-perplexity -c 128 -b 128
// --chunks 20 -fa off -ctk f32 -ctv f32 on the TinyStories head gives PPL
// 4.3660 (testdata/perplexity.json); the first 24 KB of that text hold
// the 2,560 tokens those 20 chunks read.
func TestPerplexityMatchesLlamaPerplexity(t *testing.T) {
	m := openModel(t, storiesGGUF, Options{})
	docs, err := ReadDocuments(filepath.Join("testdata", "tinystories-head-24k.txt"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Perplexity(context.Background(), m.Tokenize(docs), EvalOptions{Ctx: 128, MaxChunks: 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mean NLL %.5f, PPL %.5f over %d tokens, %.0f tok/s", res.MeanNLL, res.Perplexity, res.Tokens, res.TokensPerS)
	if res.Tokens != 20*63 {
		t.Errorf("scored %d tokens, want %d", res.Tokens, 20*63)
	}
	if math.Abs(res.Perplexity-4.3660) > 2e-3 {
		t.Errorf("perplexity %.5f, llama-perplexity 4.3660", res.Perplexity)
	}
	if res.MeanNLL < 1.3 || res.MeanNLL > 1.6 {
		t.Errorf("mean NLL %.4f outside 1.3–1.6", res.MeanNLL)
	}
}

func TestReadDocumentsFormats(t *testing.T) {
	dir := t.TempDir()
	jl := "{\"text\": \"Once upon a time\"}\n\n{\"text\": \"there was a cat\"}\n"
	os.WriteFile(filepath.Join(dir, "d.jsonl"), []byte(jl), 0o644)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(jl))
	zw.Close()
	os.WriteFile(filepath.Join(dir, "d.jsonl.gz"), gz.Bytes(), 0o644)
	zw2, _ := zstd.NewWriter(nil)
	os.WriteFile(filepath.Join(dir, "d.txt.zst"), zw2.EncodeAll([]byte("plain text"), nil), 0o644)
	zw2.Close()
	os.WriteFile(filepath.Join(dir, "d.txt"), []byte("plain text"), 0o644)
	for _, c := range []struct {
		name string
		n    int
	}{{"d.jsonl", 2}, {"d.jsonl.gz", 2}, {"d.txt", 1}, {"d.txt.zst", 1}} {
		docs, err := ReadDocuments(filepath.Join(dir, c.name))
		if err != nil || len(docs) != c.n {
			t.Errorf("%s: %d docs, %v", c.name, len(docs), err)
		}
	}
	os.WriteFile(filepath.Join(dir, "bad.jsonl"), []byte("{\"x\": 1}\n"), 0o644)
	if _, err := ReadDocuments(filepath.Join(dir, "bad.jsonl")); err == nil {
		t.Error("a JSONL line without text was accepted")
	}
}
