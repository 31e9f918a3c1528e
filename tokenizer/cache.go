package tokenizer

import (
	"strings"
	"sync"
)

// wordCache remembers the tokens of words already encoded (tokenizers
// keeps such a cache too): natural text repeats its words, and BPE on a
// word costs far more than a map lookup. It is safe for concurrent use and
// starts over when full.
type wordCache struct {
	mu sync.RWMutex
	m  map[string][]int32
}

const (
	cacheMaxWords   = 1 << 16
	cacheMaxWordLen = 128
)

func (c *wordCache) get(word string) ([]int32, bool) {
	if len(word) > cacheMaxWordLen {
		return nil, false
	}
	c.mu.RLock()
	ids, ok := c.m[word]
	c.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(word string, ids []int32) {
	if len(word) > cacheMaxWordLen {
		return
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= cacheMaxWords {
		c.m = make(map[string][]int32)
	}
	c.m[strings.Clone(word)] = append([]int32(nil), ids...)
	c.mu.Unlock()
}

// reset empties the cache.
func (c *wordCache) reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// chunkable reports whether no token has "▁" after a character other than
// "▁". Then no token spans the start of a run of "▁", and SentencePiece-
// style merging can run on the pieces between such starts one at a time
// (the merges inside a piece, and their order, are the same as on the
// whole text).
func chunkable(tokens []string) bool {
	for _, tok := range tokens {
		if strings.Contains(strings.TrimLeft(tok, "\u2581"), "\u2581") {
			return false
		}
	}
	return true
}
