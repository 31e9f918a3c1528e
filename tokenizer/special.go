package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// fragment is a piece of the input: text [start, end) still to be
// tokenized (id < 0), or a special or added token already recognised.
type fragment struct {
	id         int32
	start, end int
}

// partitionLlama splits text around special-token text the way llama.cpp's
// tokenizer_st_partition does: each token of the cache (CONTROL,
// USER_DEFINED and UNKNOWN, longest text first) is searched for in the text
// fragments that remain, left to right; without parseSpecial only
// USER_DEFINED tokens are. The result is valid until the next call.
func (t *Tokenizer) partitionLlama(st *encodeState, text string, parseSpecial bool) []fragment {
	frags, tmp := st.frags[:0], st.frags2[:0]
	defer func() { st.frags, st.frags2 = frags, tmp }()
	if text == "" {
		return frags
	}
	frags = append(frags, fragment{-1, 0, len(text)})
	for _, id := range t.specials {
		if !parseSpecial && t.types[id] != typeUserDefined {
			continue
		}
		tok := t.tokens[id]
		if !strings.Contains(text, tok) {
			continue
		}
		tmp = tmp[:0]
		for _, f := range frags {
			if f.id >= 0 {
				tmp = append(tmp, f)
				continue
			}
			for f.start < f.end {
				k := strings.Index(text[f.start:f.end], tok)
				if k < 0 {
					break
				}
				if k > 0 {
					tmp = append(tmp, fragment{-1, f.start, f.start + k})
				}
				tmp = append(tmp, fragment{id, f.start + k, f.start + k + len(tok)})
				f.start += k + len(tok)
			}
			if f.start < f.end {
				tmp = append(tmp, f)
			}
		}
		frags, tmp = tmp, frags
	}
	return frags
}

// specialCache lists the ids llama.cpp searches for in the text: CONTROL,
// USER_DEFINED and UNKNOWN tokens with non-empty text, longest first (ties
// by id).
func specialCache(tokens []string, types []int32) []int32 {
	var ids []int32
	for id, ty := range types {
		if (ty == typeControl || ty == typeUserDefined || ty == typeUnknown) && tokens[id] != "" {
			ids = append(ids, int32(id))
		}
	}
	sort.SliceStable(ids, func(a, b int) bool { return len(tokens[ids[a]]) > len(tokens[ids[b]]) })
	return ids
}

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	id                                              int32
	content                                         string
	singleWord, lstrip, rstrip, normalized, special bool
}

// addedMatcher finds added tokens the way tokenizers' AddedVocabulary does:
// leftmost-longest matches (its Aho-Corasick automaton), skipping special
// tokens when they are not to be parsed, honouring single_word, lstrip and
// rstrip.
type addedMatcher struct {
	root  *trieNode
	first [256]bool // bytes that start some token
}

type trieNode struct {
	next map[byte]*trieNode
	tok  *addedToken // token ending here
}

func newAddedMatcher(toks []*addedToken) *addedMatcher {
	if len(toks) == 0 {
		return nil
	}
	m := &addedMatcher{root: &trieNode{}}
	for _, at := range toks {
		if at.content == "" {
			continue
		}
		n := m.root
		for i := 0; i < len(at.content); i++ {
			c := at.content[i]
			if n.next == nil {
				n.next = map[byte]*trieNode{}
			}
			child := n.next[c]
			if child == nil {
				child = &trieNode{}
				n.next[c] = child
			}
			n = child
		}
		if n.tok == nil {
			n.tok = at
		}
		m.first[at.content[0]] = true
	}
	return m
}

// longest returns the longest token (allowed by parseSpecial) that starts
// at text[i], nil if none.
func (m *addedMatcher) longest(text string, i int, parseSpecial bool) *addedToken {
	var best *addedToken
	n := m.root
	for j := i; j < len(text); j++ {
		n = n.next[text[j]]
		if n == nil {
			break
		}
		if n.tok != nil && (parseSpecial || !n.tok.special) {
			best = n.tok
		}
	}
	return best
}

// split appends the fragments of text[start:end] to dst.
func (m *addedMatcher) split(text string, start, end int, parseSpecial bool, dst []fragment) []fragment {
	if m == nil {
		return append(dst, fragment{-1, start, end})
	}
	sub := text[:end]
	gap := start // start of the text not yet emitted
	for i := start; i < end; {
		if !m.first[sub[i]] {
			i++
			continue
		}
		at := m.longest(sub, i, parseSpecial)
		if at == nil || at.singleWord && !m.isolated(sub, i, i+len(at.content)) {
			i++
			continue
		}
		s, e := i, i+len(at.content)
		if at.lstrip {
			for s > gap {
				r, w := utf8.DecodeLastRuneInString(sub[gap:s])
				if !unicode.IsSpace(r) {
					break
				}
				s -= w
			}
		}
		if at.rstrip {
			for e < end {
				r, w := utf8.DecodeRuneInString(sub[e:])
				if !unicode.IsSpace(r) {
					break
				}
				e += w
			}
		}
		if gap < s {
			dst = append(dst, fragment{-1, gap, s})
		}
		dst = append(dst, fragment{at.id, s, e})
		gap, i = e, e
	}
	if gap < end {
		dst = append(dst, fragment{-1, gap, end})
	}
	return dst
}

// isolated reports whether text[s:e] has no word character (letter, digit
// or '_') right before or after it (single_word tokens).
func (m *addedMatcher) isolated(text string, s, e int) bool {
	word := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' }
	if s > 0 {
		if r, _ := utf8.DecodeLastRuneInString(text[:s]); word(r) {
			return false
		}
	}
	if e < len(text) {
		if r, _ := utf8.DecodeRuneInString(text[e:]); word(r) {
			return false
		}
	}
	return true
}
