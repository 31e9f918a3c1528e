package tokenizer

import "unicode/utf8"

// The SentencePiece-style tokenizer of llama.cpp (llm_tokenizer_spm): the
// text, with spaces already replaced by "▁", starts as one symbol per UTF-8
// character; the adjacent pair whose concatenation is the vocabulary token
// with the highest score is merged first (ties: leftmost), until no pair
// forms a token. A symbol that is not a token (a character outside the
// vocabulary) becomes its bytes' <0xNN> tokens.

type spmSym struct {
	start, n   int32 // byte range in the text; n == 0 once merged away
	prev, next int32
}

type spmBigram struct {
	score       float32
	left, right int32
	size        int32
}

// before orders the work queue: highest score first, then leftmost.
func (a spmBigram) before(b spmBigram) bool {
	return a.score > b.score || a.score == b.score && a.left < b.left
}

// charLen is the byte length of the character at s[i]: a valid UTF-8
// sequence, or one byte that is not part of one. (llama.cpp trusts the lead
// byte's announced length instead, which on invalid UTF-8 can swallow the
// start of the next character; on valid UTF-8 the two agree.)
func charLen(s string, i int32) int32 {
	if s[i] < utf8.RuneSelf {
		return 1
	}
	_, size := utf8.DecodeRuneInString(s[i:])
	return int32(size)
}

func (t *Tokenizer) spmTokenize(st *encodeState, text string, out []int32) []int32 {
	if text == "" {
		return out
	}
	syms := st.spmSyms[:0]
	for off := int32(0); off < int32(len(text)); {
		n := charLen(text, off)
		i := int32(len(syms))
		syms = append(syms, spmSym{start: off, n: n, prev: i - 1, next: i + 1})
		off += n
	}
	syms[len(syms)-1].next = -1

	q := st.spmQueue[:0]
	tryAdd := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		s, e := syms[l].start, syms[r].start+syms[r].n
		id, ok := t.ids[text[s:e]]
		if !ok {
			return
		}
		q = heapPush(q, spmBigram{score: t.score(id), left: l, right: r, size: e - s})
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		tryAdd(i-1, i)
	}
	for len(q) > 0 {
		var b spmBigram
		b, q = heapPop(q)
		l, r := &syms[b.left], &syms[b.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != b.size {
			continue // one side was merged since
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		tryAdd(l.prev, b.left)
		tryAdd(b.left, l.next)
	}
	for i := int32(0); i != -1; i = syms[i].next {
		s := syms[i]
		piece := text[s.start : s.start+s.n]
		if id, ok := t.ids[piece]; ok {
			out = append(out, id)
			continue
		}
		for j := 0; j < len(piece); j++ {
			if id := t.byteTok[piece[j]]; id >= 0 {
				out = append(out, id)
			}
		}
	}
	st.spmSyms, st.spmQueue = syms, q
	return out
}
