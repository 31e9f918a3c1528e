package tokenizer

import (
	"slices"
	"strings"
	"testing"
)

// spmNeutral reports whether sentencepiece's remove_extra_whitespaces and
// its treatment of "▁" leave text alone, so that llama.cpp's tokenizer and
// sentencepiece are expected to agree on it (shared/goldens/tokenize
// README: they differ only there and on special-token text).
func spmNeutral(text string) bool {
	return !strings.Contains(text, "  ") && !strings.HasPrefix(text, " ") && !strings.HasSuffix(text, " ") &&
		!strings.Contains(text, "\u2581")
}

// TestSentencePieceCorpus: on the corpus texts where they are expected to
// agree, ours (from the .model file) equal Debian's python3-sentencepiece.
func TestSentencePieceCorpus(t *testing.T) {
	var texts []string
	for _, s := range corpus(t) {
		if spmNeutral(s) {
			texts = append(texts, s)
		}
	}
	for _, gv := range goldenVocabs {
		t.Run(gv.name, func(t *testing.T) {
			want := encodeSPM(t, texts, gv.model)
			tk, err := FromHFFolder(modelFolder(t, gv.model))
			if err != nil {
				t.Fatal(err)
			}
			agree, bad := 0, 0
			for i, text := range texts {
				got := tk.Encode(text, EncodeOptions{AddBOS: boolp(false)})
				if slices.Equal(got, want[i]) {
					agree++
					continue
				}
				if bad++; bad <= 10 {
					t.Errorf("%q: got %v, sentencepiece %v", clip(text), got, want[i])
				}
			}
			t.Logf("%s: %d/%d texts encode as sentencepiece does", gv.name, agree, len(texts))
		})
	}
}
