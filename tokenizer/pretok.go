package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pre-tokenizers split text into words before BPE. Each splitter is written
// by hand to give exactly the pieces of a regular expression's find-all
// (matches plus the text between them), because the published patterns use
// look-ahead, which Go's regexp lacks. The patterns, from the
// tokenizer.json files and llama.cpp's llm_tokenizer_bpe:
//
//	llama3 (llama-bpe):  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//	qwen2:               the same with \p{N} instead of \p{N}{1,3}
//	gpt-2 (ByteLevel):   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// \s is Unicode White_Space (unicode.IsSpace), \p{L} unicode.IsLetter,
// \p{N} unicode.IsNumber. A byte that is not valid UTF-8 counts as one
// character of its own that is none of these, so that byte-level
// tokenizers stay lossless on any input.

// span is the byte range [start, end) of one piece.
type span struct{ start, end int }

// splitter appends the pieces of s[start:] to dst; s ends where the piece
// being split ends (look-ahead sees nothing beyond it).
type splitter func(s string, start int, dst []span) []span

type charClass uint8

const (
	clsOther   charClass = iota
	clsLetter            // \p{L}
	clsNumber            // \p{N}
	clsSpace             // \s other than \r and \n
	clsNewline           // \r or \n
)

var asciiClass [utf8.RuneSelf]charClass

func init() {
	for c := range utf8.RuneSelf {
		r := rune(c)
		switch {
		case r == '\r' || r == '\n':
			asciiClass[c] = clsNewline
		case unicode.IsSpace(r):
			asciiClass[c] = clsSpace
		case unicode.IsLetter(r):
			asciiClass[c] = clsLetter
		case unicode.IsNumber(r):
			asciiClass[c] = clsNumber
		}
	}
}

// classAt returns the class and byte length of the character at s[i].
func classAt(s string, i int) (charClass, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	switch {
	case r == utf8.RuneError && size == 1:
		return clsOther, 1
	case unicode.IsLetter(r):
		return clsLetter, size
	case unicode.IsNumber(r):
		return clsNumber, size
	case unicode.IsSpace(r):
		return clsSpace, size
	}
	return clsOther, size
}

// runOf returns the end of the run of characters of class c from i.
func runOf(s string, i int, c charClass) int {
	for i < len(s) {
		ci, w := classAt(s, i)
		if ci != c {
			break
		}
		i += w
	}
	return i
}

// contraction returns the length of the contraction suffix at the start of
// rest ('s, 't, 're, 've, 'm, 'll, 'd after the apostrophe), 0 if none;
// fold makes it ASCII case-insensitive.
func contraction(rest string, fold bool) int {
	if rest == "" {
		return 0
	}
	lower := func(b byte) byte {
		if fold && 'A' <= b && b <= 'Z' {
			return b + 'a' - 'A'
		}
		return b
	}
	switch c := lower(rest[0]); c {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v', 'l':
		if len(rest) >= 2 {
			c2 := lower(rest[1])
			if c2 == 'e' && c != 'l' || c == 'l' && c2 == 'l' {
				return 2
			}
		}
	}
	return 0
}

// whitespace matches \s*[\r\n]+ | \s+(?!\S) | \s+ (in that order) at i,
// where s[i] is whitespace; withNewline false drops the first alternative
// (the GPT-2 pattern has none).
func whitespace(s string, i int, withNewline bool) int {
	e, lastNL, lastStart := i, -1, i
	for e < len(s) {
		c, w := classAt(s, e)
		if c != clsSpace && c != clsNewline {
			break
		}
		if c == clsNewline {
			lastNL = e
		}
		lastStart = e
		e += w
	}
	switch {
	case withNewline && lastNL >= 0:
		return lastNL + 1
	case e == len(s) || lastStart == i:
		return e
	}
	return lastStart // \s+(?!\S): leave the last space to the next word
}

// llama3Match is the end of the Llama 3 / Qwen2 pattern's match at i
// (maxDigits 3 for Llama 3, 1 for Qwen2). Every character starts a match.
func llama3Match(s string, i, maxDigits int) int {
	if s[i] == '\'' {
		if n := contraction(s[i+1:], true); n > 0 {
			return i + 1 + n
		}
	}
	c0, w0 := classAt(s, i)
	switch c0 {
	case clsLetter:
		return runOf(s, i, clsLetter)
	case clsNumber:
		e := i
		for k := 0; k < maxDigits && e < len(s); k++ {
			c, w := classAt(s, e)
			if c != clsNumber {
				break
			}
			e += w
		}
		return e
	}
	if c0 != clsNewline && i+w0 < len(s) {
		if c1, _ := classAt(s, i+w0); c1 == clsLetter {
			return runOf(s, i+w0, clsLetter)
		}
	}
	start, c := i, c0
	if s[i] == ' ' && i+1 < len(s) {
		if c1, _ := classAt(s, i+1); c1 == clsOther {
			start, c = i+1, clsOther
		}
	}
	if c == clsOther {
		e := runOf(s, start, clsOther)
		for e < len(s) && (s[e] == '\r' || s[e] == '\n') {
			e++
		}
		return e
	}
	return whitespace(s, i, true)
}

// gpt2Match is the end of the GPT-2 pattern's match at i.
func gpt2Match(s string, i int) int {
	if s[i] == '\'' {
		if n := contraction(s[i+1:], false); n > 0 {
			return i + 1 + n
		}
	}
	start := i
	c, _ := classAt(s, i)
	if s[i] == ' ' && i+1 < len(s) {
		if c1, _ := classAt(s, i+1); c1 == clsLetter || c1 == clsNumber || c1 == clsOther {
			start, c = i+1, c1
		}
	}
	if c == clsSpace || c == clsNewline {
		return whitespace(s, i, false)
	}
	return runOf(s, start, c)
}

func splitLlama3(s string, start int, dst []span) []span {
	for i := start; i < len(s); {
		e := llama3Match(s, i, 3)
		dst = append(dst, span{i, e})
		i = e
	}
	return dst
}

func splitQwen2(s string, start int, dst []span) []span {
	for i := start; i < len(s); {
		e := llama3Match(s, i, 1)
		dst = append(dst, span{i, e})
		i = e
	}
	return dst
}

func splitGPT2(s string, start int, dst []span) []span {
	for i := start; i < len(s); {
		e := gpt2Match(s, i)
		dst = append(dst, span{i, e})
		i = e
	}
	return dst
}

// splitRuns splits s[start:] into maximal runs of characters that do and
// do not satisfy match; with single, each matching character is a piece of
// its own (a pattern without +).
func splitRuns(s string, start int, dst []span, match func(r rune) bool, single bool) []span {
	i := start
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		m := match(r) && !(r == utf8.RuneError && w == 1)
		e := i + w
		if !m || !single {
			for e < len(s) {
				r2, w2 := utf8.DecodeRuneInString(s[e:])
				if (match(r2) && !(r2 == utf8.RuneError && w2 == 1)) != m {
					break
				}
				e += w2
			}
		}
		dst = append(dst, span{i, e})
		i = e
	}
	return dst
}

// splitDigits is tokenizers' Digits pre-tokenizer (and llama.cpp's \p{N}
// pass): numbers isolated, one per piece when individual.
func splitDigits(individual bool) splitter {
	return func(s string, start int, dst []span) []span {
		return splitRuns(s, start, dst, unicode.IsNumber, individual)
	}
}

// llama.cpp's "default" BPE pre-tokenizer applies four patterns in turn,
// each to the pieces of the one before: [\p{P}\$\+<=>\^~\|]+, the GPT-2
// pattern, \p{N}+ and [0-9][0-9][0-9].
func splitPunct(s string, start int, dst []span) []span {
	return splitRuns(s, start, dst, func(r rune) bool {
		return unicode.IsPunct(r) || strings.ContainsRune("$+<=>^~|", r)
	}, false)
}

func splitNumberRuns(s string, start int, dst []span) []span {
	return splitRuns(s, start, dst, unicode.IsNumber, false)
}

func splitDigitTriples(s string, start int, dst []span) []span {
	gap := start
	for i := start; i+3 <= len(s); {
		if isDigit(s[i]) && isDigit(s[i+1]) && isDigit(s[i+2]) {
			if gap < i {
				dst = append(dst, span{gap, i})
			}
			dst = append(dst, span{i, i + 3})
			i += 3
			gap = i
			continue
		}
		i++
	}
	if gap < len(s) {
		dst = append(dst, span{gap, len(s)})
	}
	return dst
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// splitMetaspace splits before each replacement character (tokenizers'
// Metaspace with split: the delimiter merged with the piece after it).
func splitMetaspace(repl string) splitter {
	return func(s string, start int, dst []span) []span {
		return splitBefore(s, start, dst, repl, false)
	}
}

// splitBeforeRuns splits before each run of the replacement character
// (spmChunker).
func splitBeforeRuns(repl string) splitter {
	return func(s string, start int, dst []span) []span {
		return splitBefore(s, start, dst, repl, true)
	}
}

func splitBefore(s string, start int, dst []span, repl string, runs bool) []span {
	piece := start
	for i := start; i < len(s); {
		if strings.HasPrefix(s[i:], repl) {
			if i > piece && !(runs && strings.HasSuffix(s[:i], repl)) {
				dst = append(dst, span{piece, i})
				piece = i
			}
			i += len(repl)
			continue
		}
		i++
	}
	if piece < len(s) {
		dst = append(dst, span{piece, len(s)})
	}
	return dst
}

// preSplitters returns llama.cpp's splitters for a tokenizer.ggml.pre name.
func preSplitters(pre string) ([]splitter, bool) {
	switch pre {
	case "llama-bpe", "llama3", "llama-v3":
		return []splitter{splitLlama3}, true
	case "qwen2":
		return []splitter{splitQwen2}, true
	case "gpt-2":
		return []splitter{splitGPT2}, true
	case "smollm":
		return []splitter{splitDigits(true), splitGPT2}, true
	case "default", "":
		return []splitter{splitPunct, splitGPT2, splitNumberRuns, splitDigitTriples}, true
	}
	return nil, false
}

// preTokenize applies the splitters in turn to text and returns the pieces
// (valid until the next call).
func (st *encodeState) preTokenize(text string, steps []splitter) []span {
	cur := append(st.spans[:0], span{0, len(text)})
	tmp := st.spans2[:0]
	for _, step := range steps {
		tmp = tmp[:0]
		for _, sp := range cur {
			tmp = step(text[:sp.end], sp.start, tmp)
		}
		cur, tmp = tmp, cur
	}
	st.spans, st.spans2 = cur, tmp
	return cur
}
