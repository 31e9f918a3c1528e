package vocab

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// mergesFromScores rebuilds the BPE merges of a SentencePiece-style
// vocabulary from its scores, the way Hugging Face's LlamaConverter does
// (SentencePieceExtractor): for each token in id order, every split into two
// tokens of the vocabulary (at character boundaries), sorted by the ids of
// the left then the right part; then all of them stably sorted by the score
// of the token they form, highest first. As in LlamaConverter, tokens 0–2
// (unk, bos, eos) count with score 0.
func mergesFromScores(tokens []string, scores []float32) [][2]string {
	vocab := make(map[string]int, len(tokens))
	for id, t := range tokens {
		vocab[t] = id
	}
	type merge struct {
		l, r   string
		li, ri int
		score  float32
	}
	var all []merge
	var local []merge
	for id, t := range tokens {
		var sc float32
		if id >= 3 && scores != nil {
			sc = scores[id]
		}
		local = local[:0]
		for i := 0; i < len(t); {
			_, size := utf8.DecodeRuneInString(t[i:])
			i += size
			if i >= len(t) {
				break
			}
			li, okL := vocab[t[:i]]
			ri, okR := vocab[t[i:]]
			if okL && okR {
				local = append(local, merge{l: t[:i], r: t[i:], li: li, ri: ri, score: sc})
			}
		}
		sort.Slice(local, func(a, b int) bool {
			if local[a].li != local[b].li {
				return local[a].li < local[b].li
			}
			return local[a].ri < local[b].ri
		})
		all = append(all, local...)
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].score > all[b].score })
	out := make([][2]string, len(all))
	for i, m := range all {
		out[i] = [2]string{m.l, m.r}
	}
	return out
}

// scoresFromMerges sets the scores of a SentencePiece-style vocabulary read
// from a tokenizer.json (which has merges, not scores), so that llama.cpp's
// SentencePiece tokenizer, which merges the adjacent pair forming the
// highest-scoring token, follows the BPE merge order: a NORMAL token formed
// by merges gets minus the rank of its first merge, a NORMAL token no merge
// forms (single characters) minus the number of merges, and every other
// token -1000 as convert_hf_to_gguf.py's LlamaHfVocab gives.
func scoresFromMerges(v *Vocab, merges []string) {
	ids := make(map[string]int, len(v.Tokens))
	for id, t := range v.Tokens {
		ids[t] = id
	}
	rank := make([]int, len(v.Tokens))
	for i := range rank {
		rank[i] = -1
	}
	for r, m := range merges {
		l, rt, ok := strings.Cut(m, " ")
		if !ok {
			continue
		}
		if id, ok := ids[l+rt]; ok && rank[id] < 0 {
			rank[id] = r
		}
	}
	v.Scores = make([]float32, len(v.Tokens))
	for id := range v.Tokens {
		switch {
		case v.Types[id] != TypeNormal:
			v.Scores[id] = -1000
		case rank[id] >= 0:
			v.Scores[id] = float32(-rank[id])
		default:
			v.Scores[id] = float32(-len(merges))
		}
	}
}
