package tokenizer

import (
	"testing"
	"unicode/utf8"
)

// FuzzEncode (over the GGUF, synthetic and, when installed, tokenizer.json
// tokenizers): no input makes Encode or Decode panic, with or without
// special-token parsing; byte-level tokenizers decode every encoding back
// to the input (any bytes, valid UTF-8 or not); for all tokenizers
// Decode∘Encode is stable (applying it again changes nothing), and the
// pre-tokenizers cut the input into contiguous, non-empty pieces.
func FuzzEncode(f *testing.F) {
	for _, s := range hardStrings {
		f.Add(s)
	}
	f.Add("\xff\xfe invalid \xc3")
	f.Add("<s>\xe2\x96")
	f.Add("\xf0\x9f\xa6")
	toks := roundTripTokenizers(f, !testing.Short() && nodeAvailable() == "")
	f.Fuzz(func(t *testing.T, x string) {
		for _, nt := range toks {
			for _, parse := range []bool{false, true} {
				ids := nt.tk.Encode(x, EncodeOptions{AddBOS: boolp(false), ParseSpecial: parse})
				for _, id := range ids {
					if id < 0 || int(id) >= nt.tk.VocabSize() {
						t.Fatalf("%s: id %d out of range", nt.name, id)
					}
				}
				y := nt.tk.Decode(ids)
				if !parse && !nt.spm && !nt.nfc && y != x {
					t.Fatalf("%s: %q decodes to %q", nt.name, x, y)
				}
				if z := nt.tk.Decode(nt.tk.Encode(y, EncodeOptions{AddBOS: boolp(false), ParseSpecial: parse})); z != y {
					t.Fatalf("%s: %q → %q → %q", nt.name, x, y, z)
				}
			}
		}
		for name, sp := range map[string]splitter{"llama3": splitLlama3, "qwen2": splitQwen2, "gpt2": splitGPT2,
			"digits": splitDigits(true), "punct": splitPunct, "triples": splitDigitTriples, "meta": splitMetaspace("\u2581"), "runs": splitBeforeRuns("\u2581")} {
			end := 0
			for _, p := range sp(x, 0, nil) {
				if p.start != end || p.end <= p.start {
					t.Fatalf("%s: pieces of %q not contiguous at %v", name, x, p)
				}
				end = p.end
			}
			if end != len(x) {
				t.Fatalf("%s: pieces of %q end at %d", name, x, end)
			}
		}
		if utf8.ValidString(x) {
			if y := nfc(x); nfc(y) != y {
				t.Fatalf("nfc not idempotent on %q", x)
			}
		}
	})
}
