package tokenizer

import (
	"fmt"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// Rank-based BPE, as llama.cpp's llm_tokenizer_bpe and the BPE model of
// Hugging Face tokenizers both do it: a word starts as one symbol per
// character; the adjacent pair with the lowest merge rank is merged first
// (ties: leftmost), until no adjacent pair has a merge.
//
// Symbols are numbered: vocabulary tokens by their id, and, for llama.cpp's
// behaviour, strings that merges name but the vocabulary lacks get numbers
// from nTokens up (llama.cpp merges by text, so such a merge still applies;
// the result is then written out byte by byte).

type bpeModel struct {
	nTokens int32
	virtual map[string]int32 // symbol numbers of non-token merge strings
	pairs   map[uint64]bpeMerge
	// byteSym[b] is the symbol of byte b's byte-level character (-1 when
	// the vocabulary lacks it).
	byteSym [256]int32
}

type bpeMerge struct{ rank, result int32 }

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// splitMerge splits a "left right" merge at the first space after the
// first byte (llama.cpp's word.find(' ', 1)).
func splitMerge(m string) (string, string, bool) {
	if len(m) < 3 {
		return "", "", false
	}
	k := strings.IndexByte(m[1:], ' ')
	if k < 0 {
		return "", "", false
	}
	return m[:k+1], m[k+2:], true
}

// newBPE builds the merge table. With strict (Hugging Face), both parts and
// their concatenation must be tokens, as tokenizers requires; otherwise
// (llama.cpp) missing strings get virtual symbols. The first of duplicate
// merges wins.
func (t *Tokenizer) newBPE(merges [][2]string, strict bool) (*bpeModel, error) {
	m := &bpeModel{nTokens: int32(len(t.tokens)), pairs: make(map[uint64]bpeMerge, len(merges))}
	var buf []byte
	intern := func(s string) (int32, bool) {
		if id, ok := t.ids[s]; ok {
			return id, true
		}
		if strict {
			return -1, false
		}
		if id, ok := m.virtual[s]; ok {
			return id, true
		}
		if m.virtual == nil {
			m.virtual = map[string]int32{}
		}
		id := m.nTokens + int32(len(m.virtual))
		m.virtual[s] = id
		return id, true
	}
	for rank, mg := range merges {
		a, okA := intern(mg[0])
		b, okB := intern(mg[1])
		buf = append(append(buf[:0], mg[0]...), mg[1]...)
		r, okR := t.ids[string(buf)]
		if !okR {
			r, okR = intern(string(buf))
		}
		if !okA || !okB || !okR {
			return nil, &formats.FormatError{Offset: -1, Key: "model.merges", Err: ErrTokenizer,
				Detail: fmt.Sprintf("merge %d (%q %q) names a string the vocabulary lacks", rank, mg[0], mg[1])}
		}
		k := pairKey(a, b)
		if _, dup := m.pairs[k]; !dup {
			m.pairs[k] = bpeMerge{rank: int32(rank), result: r}
		}
	}
	for b := range 256 {
		m.byteSym[b] = m.symbol(t, byteToStr[b])
	}
	return m, nil
}

// symbol returns the symbol number of s, -1 if it has none.
func (m *bpeModel) symbol(t *Tokenizer, s string) int32 {
	if id, ok := t.ids[s]; ok {
		return id
	}
	if id, ok := m.virtual[s]; ok {
		return id
	}
	return -1
}

type bpeSym struct {
	id         int32 // symbol number; -1: no symbol (never merges)
	start, end int32 // byte range in the word
	prev, next int32
}

type bpeBigram struct {
	rank, left int32
	a, b       int32 // the symbols the pair had when queued
}

// before orders the work queue: lowest rank first, then leftmost.
func (x bpeBigram) before(y bpeBigram) bool {
	return x.rank < y.rank || x.rank == y.rank && x.left < y.left
}

// initSymbols sets st.bpeSyms to the characters of word. Byte-level words
// have one symbol per alphabet character; otherwise a character outside
// the vocabulary becomes its <0xNN> byte tokens (byteFallback) or the
// unknown token (fused with a preceding one when fuseUnk).
func (t *Tokenizer) initSymbols(st *encodeState, word string) {
	syms := st.bpeSyms[:0]
	add := func(id, s, e int32) {
		i := int32(len(syms))
		syms = append(syms, bpeSym{id: id, start: s, end: e, prev: i - 1, next: i + 1})
	}
	for off := int32(0); off < int32(len(word)); {
		n := charLen(word, off)
		ch := word[off : off+n]
		id := t.bpe.symbol(t, ch)
		switch {
		case id >= 0 || t.hf == nil:
			add(id, off, off+n)
		case t.hf.byteFallback && t.hasByteTokens(ch):
			for j := int32(0); j < n; j++ {
				add(t.byteTok[ch[j]], off+j, off+j+1)
			}
		case t.hf.unk >= 0:
			if k := len(syms) - 1; t.hf.fuseUnk && k >= 0 && syms[k].id == t.hf.unk {
				syms[k].end = off + n
			} else {
				add(t.hf.unk, off, off+n)
			}
		}
		off += n
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	st.bpeSyms = syms
}

func (t *Tokenizer) hasByteTokens(s string) bool {
	for i := 0; i < len(s); i++ {
		if t.byteTok[s[i]] < 0 {
			return false
		}
	}
	return true
}

// bpeWord appends the tokens of one pre-tokenized word (already in the
// byte-level alphabet for byte-level vocabularies).
func (t *Tokenizer) bpeWord(st *encodeState, word string, out []int32) []int32 {
	if word == "" {
		return out
	}
	if t.ignoreMerges {
		if id, ok := t.ids[word]; ok {
			return append(out, id)
		}
	}
	t.initSymbols(st, word)
	syms := st.bpeSyms
	q := st.bpeQueue[:0]
	for i := int32(1); i < int32(len(syms)); i++ {
		q = t.bpe.queuePair(q, syms, i-1, i)
	}
	for len(q) > 0 {
		var b bpeBigram
		b, q = heapPop(q)
		l := &syms[b.left]
		if l.id != b.a || l.next < 0 || syms[l.next].id != b.b {
			continue // stale: one side was merged since
		}
		r := &syms[l.next]
		l.id = t.bpe.pairs[pairKey(b.a, b.b)].result
		l.end = r.end
		l.next = r.next
		r.id = -2 // merged away
		if l.next >= 0 {
			syms[l.next].prev = b.left
		}
		q = t.bpe.queuePair(q, syms, l.prev, b.left)
		q = t.bpe.queuePair(q, syms, b.left, l.next)
	}
	st.bpeQueue = q
	for i := int32(0); i >= 0 && int(i) < len(syms); i = syms[i].next {
		s := syms[i]
		if s.id >= 0 && s.id < t.bpe.nTokens {
			out = append(out, s.id)
			continue
		}
		// llama.cpp: a symbol that is no token is looked up byte by byte.
		for j := s.start; j < s.end; j++ {
			if id, ok := t.ids[word[j:j+1]]; ok {
				out = append(out, id)
			}
		}
	}
	return out
}

func (m *bpeModel) queuePair(q []bpeBigram, syms []bpeSym, l, r int32) []bpeBigram {
	if l < 0 || r < 0 {
		return q
	}
	a, b := syms[l].id, syms[r].id
	if a < 0 || b < 0 {
		return q
	}
	mg, ok := m.pairs[pairKey(a, b)]
	if !ok {
		return q
	}
	return heapPush(q, bpeBigram{rank: mg.rank, left: l, a: a, b: b})
}
