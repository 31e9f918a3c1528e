package tokenizer

import (
	"slices"
	"testing"
)

// TestLlamaCppBehaviourOnHFVocabs: the vocabularies converted from the
// three tokenizer.json files, tokenized with llama.cpp's behaviour (New, as
// for a GGUF), against tokenizers' ids. They agree except where llama.cpp
// is known to differ: it applies no NFC (Qwen3), so texts that NFC changes
// are left out.
func TestLlamaCppBehaviourOnHFVocabs(t *testing.T) {
	hfTokenizers(t)
	texts := corpus(t)
	ref := referenceHF(t, "corpus", texts)
	for _, name := range hfNames {
		t.Run(name, func(t *testing.T) {
			tk := hfCpp[name]
			agree, skipped, bad := 0, 0, 0
			for i, text := range texts {
				if name == "qwen3" && nfc(text) != text {
					skipped++
					continue
				}
				got := tk.Encode(text, EncodeOptions{AddBOS: boolp(false), AddEOS: boolp(false), ParseSpecial: true})
				if slices.Equal(got, ref[name].Plain[i]) {
					agree++
					continue
				}
				if bad++; bad <= 10 {
					t.Errorf("%q: got %v, tokenizers %v", clip(text), got, ref[name].Plain[i])
				}
			}
			t.Logf("%s: %d/%d texts agree (%d changed by NFC left out)", name, agree, len(texts)-skipped, skipped)
		})
	}
}
