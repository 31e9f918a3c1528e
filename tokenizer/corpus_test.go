package tokenizer

import (
	"os"
	"strings"
	"testing"
)

// hardStrings exercise whitespace runs, digits, accents, scripts, emoji,
// byte fallback, literal special tokens and contractions.
var hardStrings = []string{
	"", " ", "  ", "   ", "Hello world", "Hello  world", " Hello", "Hello ", "   leading", "trailing   ",
	"a  b   c    d", "\t", "\ttab", "a\tb", "a\t\tb", "\n", "\n\n", "line1\nline2", "line1\r\nline2\r\n",
	" \n ", "  \n\n  x", "x \t\n y", "end\n", "\n\nstart", "x  \n", "a \n\n b", "\r", "\r\r\n\n",
	"1234567", "12 345 6789 0", "3.14159", "1,000,000", "year 2024", "٣٤٥ ٦", "①②③ Ⅻ", "00001",
	"café", "cafe\u0301", "naïve Ünïcödé", "Ångström", "e\u0301\u0301", "a\u0323\u0302", "\u1100\u1161\u11a8",
	"ḱ\u0307", "Ω \u2126 K \u212a", "\uf900",
	"日本語のテキスト", "中文字符", "你好，世界！", "한국어", "Привет, мир", "مرحبا", "שלום", "ελληνικά", "हिन्दी",
	"🦙", "🦙🦙 ✅", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "❤️", "😀😃😄",
	"\x00", "nul\x00byte", "\x01\x7f", "\u0080\u009f", "\ufffd", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ꙮ", "𓀀", "\U0010fffd",
	"<s>", "</s>", "<unk>", "<s>Hello</s>", "a<s>b", "<s> spaced </s>", "<<s>>", "<s><s>",
	"<|begin_of_text|>hi<|eot_id|>", "<|begin_of_text|><|begin_of_text|>", "<|im_start|>user\nhi<|im_end|>\n",
	"<|endoftext|>", "x<|endoftext|>y", "<think>\nreason\n</think>\n\nanswer", "<tool_call>{}</tool_call>",
	"<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>", "<0x41>", "▁", "▁▁x", "x▁y", "<|im_start|", "<|",
	"don't", "I'LL", "I'll", "we've", "they're", "she'd", "it's", "'s", "'tis", "O'Neil", "rock'n'roll",
	"DON'T", "He's 'quoted'", "I'M", "y'all'd've", "'", "''", "' s",
	"Hello, world!", "...", "!!!???", "$100 + 5% = <=> ^~|", "a---b", "(x)", "\"quoted\"", "C++ and C#",
	"e-mail@example.com", "https://example.com/path?q=1&r=2", "#hashtag @mention", "a.b.c", "«guillemets»",
	"HELLO WORLD", "ThisIsCamelCase", "snake_case_name", "x", "The year 2024 was 365 days.",
	"\u00a0nbsp\u00a0", "zero\u200bwidth", "ﬁ ligature", "ｆｕｌｌ ｗｉｄｔｈ", "\u3000ideographic", "a\u2028b", "\u0085nel",
	"func main() {\n\tfmt.Println(\"hi\")\n}\n", "    indented code\n        more", "x = [1, 2, 3]  # comment",
	"supercalifragilisticexpialidocious supercalifragilisticexpialidocious",
	strings.Repeat("a", 80), strings.Repeat("ab ", 40), strings.Repeat(" ", 33), strings.Repeat("\n", 9),
	strings.Repeat("🦙", 12), strings.Repeat("9", 17),
}

// corpusFiles are the excerpts in testdata (testdata/README.md).
var corpusFiles = []string{
	"testdata/tinystories_sample.txt",
	"testdata/tinystories-head-175.txt",
	"testdata/tinyshakespeare-200.txt",
}

// corpus returns hardStrings, every non-empty line of the excerpts, and
// each excerpt whole.
func corpus(t testing.TB) []string {
	t.Helper()
	out := append([]string(nil), hardStrings...)
	for _, f := range corpusFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line != "" {
				out = append(out, line)
			}
		}
		out = append(out, string(b))
	}
	return out
}
