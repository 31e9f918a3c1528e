package tokenizer

import (
	"slices"
	"sync"
	"testing"
)

// TestModelFolderEqualsGGUF: a folder with only tokenizer.model gives the
// same ids as the GGUF made from it (both with llama.cpp's behaviour).
func TestModelFolderEqualsGGUF(t *testing.T) {
	texts := corpus(t)
	for _, c := range []struct{ name, folder, gguf string }{
		{"stories260K", "../fixtures/stories260K-hf", goldenVocabs[0].gguf},
		{"openllama", "../formats/vocab/testdata/openllama", goldenVocabs[1].gguf},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := FromHFFolder(c.folder)
			if err != nil {
				t.Fatal(err)
			}
			b, err := FromGGUF(c.gguf)
			if err != nil {
				t.Fatal(err)
			}
			if a.VocabSize() != b.VocabSize() || a.BOS() != b.BOS() || a.EOS() != b.EOS() {
				t.Fatalf("folder: %d tokens, bos %d, eos %d; gguf: %d, %d, %d",
					a.VocabSize(), a.BOS(), a.EOS(), b.VocabSize(), b.BOS(), b.EOS())
			}
			for _, x := range texts {
				for _, parse := range []bool{false, true} {
					opts := EncodeOptions{ParseSpecial: parse}
					if ga, gb := a.Encode(x, opts), b.Encode(x, opts); !slices.Equal(ga, gb) {
						t.Fatalf("%q: folder %v, gguf %v", clip(x), ga, gb)
					}
				}
			}
		})
	}
}

// TestConcurrentEncode: one tokenizer used from several goroutines (run
// with -race) gives the same ids as used from one.
func TestConcurrentEncode(t *testing.T) {
	texts := corpus(t)
	for _, nt := range roundTripTokenizers(t, false)[:3] {
		want := make([][]int32, len(texts))
		for i, x := range texts {
			want[i] = nt.tk.Encode(x, EncodeOptions{})
		}
		nt.tk.cache.reset()
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range texts {
					k := (i + g*len(texts)/4) % len(texts)
					if got := nt.tk.Encode(texts[k], EncodeOptions{}); !slices.Equal(got, want[k]) {
						t.Errorf("%s: %q differs when concurrent", nt.name, clip(texts[k]))
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

// TestAccessors covers the small methods on tok512.
func TestAccessors(t *testing.T) {
	tk, err := FromGGUF(goldenVocabs[0].gguf)
	if err != nil {
		t.Fatal(err)
	}
	if tk.VocabSize() != 512 || tk.BOS() != 1 || tk.EOS() != 2 {
		t.Fatalf("size %d bos %d eos %d", tk.VocabSize(), tk.BOS(), tk.EOS())
	}
	for id, want := range map[int32]bool{0: true, 1: true, 2: true, 3: false, 300: false, -1: false, 512: false} {
		if got := tk.IsSpecial(id); got != want {
			t.Errorf("IsSpecial(%d) = %v", id, got)
		}
	}
	for id, want := range map[int32]string{1: "<s>", 13: "\n", 0x41 + 3: "A", 410: " ", -1: "", 999: ""} {
		if got := tk.Piece(id); got != want {
			t.Errorf("Piece(%d) = %q, want %q", id, got, want)
		}
	}
	ids := tk.Encode("Hello", EncodeOptions{AddEOS: boolp(true)})
	if ids[0] != 1 || ids[len(ids)-1] != 2 {
		t.Fatalf("Encode with BOS and EOS: %v", ids)
	}
	if got := tk.Decode(ids); got != " Hello" {
		t.Fatalf("Decode(%v) = %q (BOS first keeps the space)", ids, got)
	}
	if got := tk.Decode(ids[1:]); got != "Hello" {
		t.Fatalf("Decode(%v) = %q", ids[1:], got)
	}
}
