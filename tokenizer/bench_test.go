package tokenizer

import (
	"fmt"
	"os"
	"testing"
)

// BenchmarkEncode measures Encode throughput (MB/s of input) on the
// TinyStories excerpts (22 kB), for each kind: the two SentencePiece GGUF
// vocabularies (llama.cpp's SPM) and the three tokenizer.json files.
// "warm" keeps the word cache between iterations (as for a long corpus,
// whose words repeat); "cold" empties it before each.
func BenchmarkEncode(b *testing.B) {
	var text []byte
	for _, f := range corpusFiles[:2] {
		t, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		text = append(text, t...)
	}
	s := string(text)
	type bench struct {
		name string
		load func() (*Tokenizer, error)
	}
	var benches []bench
	for _, gv := range goldenVocabs {
		benches = append(benches, bench{"gguf-" + gv.name, func() (*Tokenizer, error) { return FromGGUF(gv.gguf) }})
	}
	for _, name := range hfNames {
		dir := fmt.Sprintf(lenmlFmt, name)
		benches = append(benches, bench{"hf-" + name, func() (*Tokenizer, error) {
			if _, err := os.Stat(dir); err != nil {
				return nil, nil
			}
			return FromHFFolder(dir)
		}})
	}
	for _, bc := range benches {
		b.Run(bc.name, func(b *testing.B) {
			tk, err := bc.load()
			if err != nil {
				b.Fatal(err)
			}
			if tk == nil {
				b.Skipf("not installed (install: %s)", nodeInstall)
			}
			for _, cold := range []bool{false, true} {
				name := "warm"
				if cold {
					name = "cold"
				}
				b.Run(name, func(b *testing.B) {
					b.SetBytes(int64(len(s)))
					b.ReportAllocs()
					for b.Loop() {
						if cold {
							tk.cache.reset()
						}
						tk.Encode(s, EncodeOptions{ParseSpecial: true})
					}
				})
			}
		})
	}
}

// BenchmarkDecode measures Decode on the same text's ids.
func BenchmarkDecode(b *testing.B) {
	t, err := os.ReadFile(corpusFiles[1])
	if err != nil {
		b.Fatal(err)
	}
	tk, err := FromGGUF(goldenVocabs[1].gguf)
	if err != nil {
		b.Fatal(err)
	}
	ids := tk.Encode(string(t), EncodeOptions{})
	b.SetBytes(int64(len(t)))
	b.ReportAllocs()
	for b.Loop() {
		tk.Decode(ids)
	}
}
