package tokenizer

import (
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
)

func TestNFCTable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"plain ascii", "plain ascii"},
		{"cafe\u0301", "café"},
		{"e\u0301\u0301", "é\u0301"},
		{"a\u0302\u0323", "\u1ead"}, // ordering puts the dot below first: ậ
		{"\u1100\u1161\u11a8", "각"},
		{"\u1100\u1161", "가"},
		{"가\u11a8", "각"},
		{"\u2126", "Ω"},            // singleton decomposition
		{"\u0958", "\u0915\u093c"}, // excluded from composition
		{"\u212b", "Å"},
		{"Å", "Å"},
		{"\u0301e", "\u0301e"}, // a leading combining mark stays
		{"\xff e\u0301", "\xff é"},
		{"\uf900", "\u8c48"},
	} {
		if got := nfc(c.in); got != c.want {
			t.Errorf("nfc(%+q) = %+q, want %+q", c.in, got, c.want)
		}
	}
}

// TestNFCPython compares with Python's unicodedata (the tables' source) on
// the corpus and on random strings of characters that normalization
// touches.
func TestNFCPython(t *testing.T) {
	if _, err := exec.LookPath(pythonSPM); err != nil {
		missing(t, pythonSPM, "apt-get install -y python3")
	}
	pool := []rune{'a', 'e', 'o', 'A', 'U', ' ', 0x300, 0x301, 0x302, 0x308, 0x323, 0x327, 0x328, 0x31b, 0x345,
		0x5b0, 0x5bc, 0x93c, 0x915, 0x1100, 0x1161, 0x11a8, 0xac00, 0xac01, 0x3099, 0x304b, 0x30a6, 0x212b, 0x2126,
		0xf900, 0x1e0a, 0x1e0c, 0x0958, 0x2adc, 0x1d15e, 0x0344, 0x0f73, 0x0cc6, 0x0cd5, 0x0cc2, 0x09c7, 0x09be}
	rng := rand.New(rand.NewPCG(1, 2))
	texts := corpus(t)
	for range 2000 {
		var b strings.Builder
		for range 1 + rng.IntN(8) {
			b.WriteRune(pool[rng.IntN(len(pool))])
		}
		texts = append(texts, b.String())
	}
	var want []string
	runJSON(t, exec.Command(pythonSPM, "testdata/nfc.py"), texts, &want)
	if version := want[len(want)-1]; version != nfcUnicodeVersion {
		t.Logf("python's unicodedata is Unicode %s, the tables %s", version, nfcUnicodeVersion)
	}
	bad := 0
	for i, x := range texts {
		if got := nfc(x); got != want[i] {
			if bad++; bad <= 10 {
				t.Errorf("nfc(%+q) = %+q, python %+q", clip(x), clip(got), clip(want[i]))
			}
		}
	}
}
