package llama

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/qtool-dev/qtool/tokenizer"
)

// EncodeDefaults are the options generation uses for a prompt: the
// vocabulary's BOS/EOS defaults and special tokens parsed from the text.
func EncodeDefaults() tokenizer.EncodeOptions {
	return tokenizer.EncodeOptions{ParseSpecial: true}
}

// Argmax returns the index of the largest logit (the first on ties).
func Argmax(logits []float32) int32 {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return int32(best)
}

// Sampler picks the next token from logits. Temp 0 is greedy; otherwise
// the logits are divided by Temp, cut to the TopK most likely (0: all),
// then to the smallest set whose probability reaches TopP (0 or 1: all),
// and a token is drawn with the seeded generator.
type Sampler struct {
	Temp float64
	TopK int
	TopP float64
	rng  *rand.Rand
	idx  []int
	prob []float64
}

// NewSampler returns a sampler whose draws depend only on seed.
func NewSampler(temp float64, topK int, topP float64, seed uint64) *Sampler {
	return &Sampler{Temp: temp, TopK: topK, TopP: topP, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Sample returns the next token.
func (s *Sampler) Sample(logits []float32) int32 {
	if s.Temp <= 0 {
		return Argmax(logits)
	}
	n := len(logits)
	s.idx = s.idx[:0]
	for i := range n {
		s.idx = append(s.idx, i)
	}
	sort.SliceStable(s.idx, func(a, b int) bool { return logits[s.idx[a]] > logits[s.idx[b]] })
	k := n
	if s.TopK > 0 && s.TopK < k {
		k = s.TopK
	}
	idx := s.idx[:k]
	s.prob = s.prob[:0]
	mx := float64(logits[idx[0]])
	var sum float64
	for _, i := range idx {
		p := math.Exp((float64(logits[i]) - mx) / s.Temp)
		s.prob = append(s.prob, p)
		sum += p
	}
	if s.TopP > 0 && s.TopP < 1 {
		var acc float64
		for j, p := range s.prob {
			acc += p / sum
			if acc >= s.TopP {
				s.prob = s.prob[:j+1]
				idx = idx[:j+1]
				break
			}
		}
		sum = 0
		for _, p := range s.prob {
			sum += p
		}
	}
	r := s.rng.Float64() * sum
	for j, p := range s.prob {
		r -= p
		if r < 0 {
			return int32(idx[j])
		}
	}
	return int32(idx[len(idx)-1])
}
