package tokenizer

import (
	"slices"
	"testing"
)

func pieces(sp splitter, s string) []string {
	var out []string
	for _, p := range sp(s, 0, nil) {
		out = append(out, s[p.start:p.end])
	}
	return out
}

// TestSplitters pins the pieces of each pattern on the cases where the
// alternatives interact (the tokenizer.json comparisons cover the rest).
func TestSplitters(t *testing.T) {
	for _, c := range []struct {
		name string
		sp   splitter
		in   string
		want []string
	}{
		{"llama3", splitLlama3, "Hello world", []string{"Hello", " world"}},
		{"llama3", splitLlama3, "a  b", []string{"a", " ", " b"}},
		{"llama3", splitLlama3, "x   ", []string{"x", "   "}},
		{"llama3", splitLlama3, "I'LL don't 'sup", []string{"I", "'LL", " don", "'t", " '", "sup"}},
		{"llama3", splitLlama3, "1234567", []string{"123", "456", "7"}},
		{"llama3", splitLlama3, "a\n\n  b", []string{"a", "\n\n", " ", " b"}},
		{"llama3", splitLlama3, "x \n y", []string{"x", " \n", " y"}},
		{"llama3", splitLlama3, "\tab ...\n\nc", []string{"\tab", " ...\n\n", "c"}},
		{"llama3", splitLlama3, "$5", []string{"$", "5"}},
		{"qwen2", splitQwen2, "1234", []string{"1", "2", "3", "4"}},
		{"gpt2", splitGPT2, "Hello  world 123!!", []string{"Hello", " ", " world", " 123", "!!"}},
		{"gpt2", splitGPT2, "don't DON'T", []string{"don", "'t", " DON", "'", "T"}},
		{"gpt2", splitGPT2, "a\n\nb", []string{"a", "\n", "\n", "b"}},
		{"gpt2", splitGPT2, "a \n", []string{"a", " \n"}},
		{"digits", splitDigits(true), "ab12c", []string{"ab", "1", "2", "c"}},
		{"digits", splitDigits(false), "ab12c", []string{"ab", "12", "c"}},
		{"triples", splitDigitTriples, "x12345", []string{"x", "123", "45"}},
		{"punct", splitPunct, "a+b...c", []string{"a", "+", "b", "...", "c"}},
		{"metaspace", splitMetaspace("▁"), "▁a▁▁b", []string{"▁a", "▁", "▁b"}},
		{"runs", splitBeforeRuns("▁"), "▁a▁▁b", []string{"▁a", "▁▁b"}},
	} {
		if got := pieces(c.sp, c.in); !slices.Equal(got, c.want) {
			t.Errorf("%s(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}
