package tokenizer

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// The llama.cpp goldens (testdata/README.md): 94 cases per vocabulary, each
// with llama-tokenize's ids with and without special-token parsing and
// sentencepiece's ids.

type goldenFile struct {
	Tokenizer string       `json:"tokenizer"`
	Cases     []goldenCase `json:"cases"`
}

type goldenCase struct {
	String           string  `json:"string"`
	What             string  `json:"what"`
	AddBOS           bool    `json:"add_bos"`
	LlamaCpp         []int32 `json:"llama_cpp_ids"`
	LlamaCppNoSpec   []int32 `json:"llama_cpp_ids_no_parse_special"`
	SentencePiece    []int32 `json:"sentencepiece_ids"`
	Agree            bool    `json:"agree"`
	AgreeNoParseSpec bool    `json:"agree_no_parse_special"`
}

// goldenVocabs pairs each golden with the GGUF whose vocabulary llama.cpp
// read and the sentencepiece model.
var goldenVocabs = []struct {
	name, golden, gguf, model string
}{
	{"tok512", "testdata/tok512.json", "../fixtures/stories260K/stories260K.gguf", "../fixtures/stories260K/tok512.model"},
	{"openllama", "testdata/openllama.json", "testdata/openllama-vocab.gguf", "../formats/vocab/testdata/openllama/tokenizer.model"},
}

func readGolden(t testing.TB, path string) goldenFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) != 94 {
		t.Fatalf("%s: %d cases, want 94", path, len(g.Cases))
	}
	return g
}

func boolp(b bool) *bool { return &b }

// TestLlamaCppGoldens: every case of both goldens, with and without
// special-token parsing, on the GGUF vocabularies llama.cpp read.
func TestLlamaCppGoldens(t *testing.T) {
	for _, gv := range goldenVocabs {
		t.Run(gv.name, func(t *testing.T) {
			g := readGolden(t, gv.golden)
			tk, err := FromGGUF(gv.gguf)
			if err != nil {
				t.Fatal(err)
			}
			agree := 0
			for _, c := range g.Cases {
				for _, parse := range []bool{true, false} {
					want := c.LlamaCpp
					if !parse {
						want = c.LlamaCppNoSpec
					}
					got := tk.Encode(c.String, EncodeOptions{AddBOS: boolp(c.AddBOS), ParseSpecial: parse})
					if slices.Equal(got, want) {
						agree++
					} else {
						t.Errorf("%s %q (bos %v, parse special %v): got %v, want %v", c.What, c.String, c.AddBOS, parse, got, want)
					}
				}
			}
			t.Logf("%s: %d/%d encodings equal llama.cpp's", gv.name, agree, 2*len(g.Cases))
		})
	}
}

// TestSentencePieceGoldens: where llama.cpp and sentencepiece agree (the
// goldens' agree flags), ours equal sentencepiece's ids too, read both from
// the GGUF and from the .model file.
func TestSentencePieceGoldens(t *testing.T) {
	for _, gv := range goldenVocabs {
		t.Run(gv.name, func(t *testing.T) {
			g := readGolden(t, gv.golden)
			fromModel, err := FromHFFolder(modelFolder(t, gv.model))
			if err != nil {
				t.Fatal(err)
			}
			fromGGUF, err := FromGGUF(gv.gguf)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, c := range g.Cases {
				for _, parse := range []bool{true, false} {
					if parse && !c.Agree || !parse && !c.AgreeNoParseSpec {
						continue
					}
					n++
					opts := EncodeOptions{AddBOS: boolp(c.AddBOS), ParseSpecial: parse}
					for name, tk := range map[string]*Tokenizer{"gguf": fromGGUF, "model": fromModel} {
						if got := tk.Encode(c.String, opts); !slices.Equal(got, c.SentencePiece) {
							t.Errorf("%s: %s %q (bos %v, parse %v): got %v, sentencepiece %v", name, c.What, c.String, c.AddBOS, parse, got, c.SentencePiece)
						}
					}
				}
			}
			t.Logf("%s: %d agreeing encodings checked against sentencepiece", gv.name, n)
		})
	}
}

// modelFolder returns a temporary folder holding only a copy of the
// sentencepiece model as tokenizer.model.
func modelFolder(t testing.TB, model string) string {
	t.Helper()
	b, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/tokenizer.model", b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
