package tokenizer

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/vocab"
)

func TestNewErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(v *vocab.Vocab) *vocab.Vocab
		want error
	}{
		{"nil", func(*vocab.Vocab) *vocab.Vocab { return nil }, ErrTokenizer},
		{"model", func(v *vocab.Vocab) *vocab.Vocab { v.Model = "t5"; return v }, ErrUnsupported},
		{"pre", func(v *vocab.Vocab) *vocab.Vocab { v.Pre = "deepseek-llm"; return v }, ErrUnsupported},
		{"no tokens", func(v *vocab.Vocab) *vocab.Vocab { v.Tokens, v.Types = nil, nil; return v }, ErrTokenizer},
		{"types", func(v *vocab.Vocab) *vocab.Vocab { v.Types = v.Types[:3]; return v }, ErrTokenizer},
		{"scores", func(v *vocab.Vocab) *vocab.Vocab { v.Scores = []float32{1}; return v }, ErrTokenizer},
		{"bos", func(v *vocab.Vocab) *vocab.Vocab { v.BOS = int64(len(v.Tokens)); return v }, ErrTokenizer},
		{"no merges", func(v *vocab.Vocab) *vocab.Vocab { v.Merges = nil; return v }, ErrTokenizer},
		{"bad merge", func(v *vocab.Vocab) *vocab.Vocab { v.Merges = append(v.Merges, "nospace"); return v }, ErrTokenizer},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.edit(synthGPT2("gpt-2")))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			var fe *formats.FormatError
			if c.name != "nil" && !errors.As(err, &fe) {
				t.Fatalf("err %v is not a *formats.FormatError", err)
			}
		})
	}
}

// tinyTokenizerJSON writes a folder with a byte-level tokenizer.json built
// from synthGPT2, with the given normalizer, pre-tokenizer and model
// fields overriding the defaults.
func tinyTokenizerJSON(t *testing.T, override map[string]any) string {
	t.Helper()
	v := synthGPT2("gpt-2")
	vocabMap := map[string]int{}
	for id, tok := range v.Tokens[:len(v.Tokens)-2] {
		vocabMap[tok] = id
	}
	n := len(v.Tokens)
	model := map[string]any{"type": "BPE", "vocab": vocabMap, "merges": v.Merges}
	tj := map[string]any{
		"version": "1.0",
		"added_tokens": []map[string]any{
			{"id": n - 2, "content": "<|endoftext|>", "special": true},
			{"id": n - 1, "content": "<|user|>", "special": false},
		},
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"post_processor": nil,
		"decoder":        nil,
		"model":          model,
	}
	for k, val := range override {
		if field, ok := strings.CutPrefix(k, "model."); ok {
			model[field] = val
			continue
		}
		tj[k] = val
	}
	b, err := json.Marshal(tj)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFromHFFolderTiny(t *testing.T) {
	tk, err := FromHFFolder(tinyTokenizerJSON(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	text := "the<|endoftext|>and<|user|> was on 123"
	ids := tk.Encode(text, EncodeOptions{ParseSpecial: true})
	if got := tk.Decode(ids); got != "theand<|user|> was on 123" {
		t.Fatalf("Decode = %q (ids %v)", got, ids)
	}
	plain := tk.Encode(text, EncodeOptions{})
	if got := tk.Decode(plain); got != text {
		t.Fatalf("without special parsing: Decode = %q (ids %v)", got, plain)
	}
}

func TestFromHFFolderErrors(t *testing.T) {
	for _, c := range []struct {
		name     string
		override map[string]any
		want     error
	}{
		{"normalizer", map[string]any{"normalizer": map[string]any{"type": "Lowercase"}}, ErrUnsupported},
		{"replace regex", map[string]any{"normalizer": map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": " +"}, "content": " "}}, ErrUnsupported},
		{"split regex", map[string]any{"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\s+`}, "behavior": "Isolated"},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}}}}, nil},
		{"dropout", map[string]any{"model.dropout": 0.1}, ErrUnsupported},
		{"prefix space", map[string]any{"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}}, nil},
		{"post", map[string]any{"post_processor": map[string]any{"type": "Whatever"}}, ErrUnsupported},
		{"merge", map[string]any{"model.merges": []string{"Ġ t", "x yz"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromHFFolder(tinyTokenizerJSON(t, c.override))
			if err == nil {
				t.Fatal("no error")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !formats.IsInputError(err) {
				t.Fatalf("err = %v is not an input error", err)
			}
		})
	}
}
