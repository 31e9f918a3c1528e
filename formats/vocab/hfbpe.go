package vocab

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// fromLlamaHF is LlamaHfVocab: a byte_fallback BPE tokenizer.json without a
// tokenizer.model. Scores are derived from the merge ranks (see
// scoresFromMerges) instead of the converter's constant -1000.
func (f *hfFolder) fromLlamaHF() (*Vocab, error) {
	tj := f.tokJSON
	base := len(tj.vocab)
	reverse := make([]string, base)
	have := make([]bool, base)
	for tok, id := range tj.vocab {
		if id >= int64(base) {
			return nil, vocabErr(tj.file, "model.vocab", "token %q has id %d but the vocab has %d tokens", tok, id, base)
		}
		reverse[id], have[id] = tok, true
	}
	// Added tokens beyond the model vocab, in id order, must follow it
	// without gaps (LlamaHfVocab appends them).
	var extra []addedToken
	seen := map[int64]bool{}
	for _, at := range tj.AddedTokens {
		if at.ID >= int64(base) && !seen[at.ID] {
			seen[at.ID] = true
			extra = append(extra, at)
		}
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].ID < extra[j].ID })
	for i, at := range extra {
		if at.ID != int64(base+i) {
			return nil, vocabErr(tj.file, "added_tokens", "added token %q has id %d, expected %d", at.Content, at.ID, base+i)
		}
	}
	n := base + len(extra)
	if n > MaxTokens {
		return nil, &formats.FormatError{File: tj.file, Offset: -1, Key: "added_tokens", Err: ErrTooLarge, Detail: fmt.Sprintf("%d tokens", n)}
	}
	lookup := func(s string) (int64, bool) {
		if id, ok := tj.vocab[s]; ok {
			return id, true
		}
		for _, at := range tj.AddedTokens {
			if at.Content == s {
				return at.ID, true
			}
		}
		return 0, false
	}
	specialIDs := map[int64]bool{}
	for _, s := range f.specialTokenStrings() {
		if id, ok := lookup(s); ok {
			specialIDs[id] = true
		}
	}

	v := newVocab(ModelLlama)
	v.Pre = "default"
	v.Tokens = make([]string, n)
	v.Scores = make([]float32, n)
	v.Types = make([]int32, n)
	for id := range base {
		if !have[id] {
			return nil, vocabErr(tj.file, "model.vocab", "no token has id %d", id)
		}
		v.Tokens[id] = reverse[id]
		switch {
		case isByteToken(reverse[id]):
			v.Types[id] = TypeByte
		case specialIDs[int64(id)]:
			v.Types[id] = TypeControl
		default:
			v.Types[id] = TypeNormal
		}
	}
	for i, at := range extra {
		id := base + i
		v.Tokens[id] = at.Content
		v.Types[id] = TypeUserDefined
		if specialIDs[int64(id)] {
			v.Types[id] = TypeControl
		}
	}
	merges, err := tj.merges()
	if err != nil {
		return nil, err
	}
	scoresFromMerges(v, merges)
	f.llamaSpacePrefix(v)
	return v, nil
}

// llamaSpacePrefix sets AddSpacePrefix false when a SentencePiece-style
// tokenizer.json prepends no "▁" (neither a Prepend normalizer nor a
// Metaspace pre-tokenizer that prepends).
func (f *hfFolder) llamaSpacePrefix(v *Vocab) {
	tj := f.tokJSON
	prepends := false
	var walk func(raw json.RawMessage)
	walk = func(raw json.RawMessage) {
		var node map[string]any
		if json.Unmarshal(raw, &node) != nil || node == nil {
			return
		}
		switch node["type"] {
		case "Prepend":
			prepends = prepends || node["prepend"] == "\u2581"
		case "Metaspace":
			if s, ok := node["prepend_scheme"].(string); ok {
				prepends = prepends || s != "never"
			} else if b, ok := node["add_prefix_space"].(bool); ok {
				prepends = prepends || b
			}
		case "Sequence":
			for _, k := range []string{"normalizers", "pretokenizers"} {
				var list []json.RawMessage
				if sub, ok := node[k]; ok {
					b, _ := json.Marshal(sub)
					if json.Unmarshal(b, &list) == nil {
						for _, r := range list {
							walk(r)
						}
					}
				}
			}
		}
	}
	walk(tj.Normalizer)
	walk(tj.PreTokenizer)
	if !prepends {
		v.AddSpacePrefix = boolPtr(false)
	}
}

// fromGPT2 is get_vocab_base + _set_vocab_gpt2: a byte-level BPE
// tokenizer.json.
func (f *hfFolder) fromGPT2() (*Vocab, error) {
	tj := f.tokJSON
	pre, err := detectPre(tj)
	if err != nil {
		return nil, err
	}
	// get_vocab(): the model vocab plus the added tokens.
	byID := make(map[int64]string, len(tj.vocab)+len(tj.AddedTokens))
	var maxID int64 = -1
	for tok, id := range tj.vocab {
		byID[id] = tok
		maxID = max(maxID, id)
	}
	addedByID := map[int64]addedToken{}
	for _, at := range tj.AddedTokens {
		if old, ok := byID[at.ID]; ok && old != at.Content {
			return nil, vocabErr(tj.file, "added_tokens", "id %d is both %q and %q", at.ID, old, at.Content)
		}
		byID[at.ID] = at.Content
		addedByID[at.ID] = at
		maxID = max(maxID, at.ID)
	}
	n, err := f.vocabSize()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		// Without config.json the converter takes len(vocab): the ids must
		// then be 0…len-1 without holes.
		n = len(byID)
		if maxID >= int64(n) {
			return nil, vocabErr(tj.file, "model.vocab", "%d tokens but id %d; ids with holes need config.json's vocab_size", n, maxID)
		}
	} else if maxID >= int64(n) {
		return nil, vocabErr(f.path(fileModelConfig), "vocab_size", "%d, but the tokenizer has id %d", n, maxID)
	}
	dec, err := f.addedTokensDecoder()
	if err != nil {
		return nil, err
	}
	decSpecial := map[int64]bool{}
	for _, e := range dec {
		decSpecial[e.id] = e.special
	}

	v := newVocab(ModelGPT2)
	v.Pre = pre
	v.Tokens = make([]string, n)
	v.Types = make([]int32, n)
	for i := range n {
		id := int64(i)
		tok, ok := byID[id]
		if !ok {
			v.Tokens[i], v.Types[i] = "[PAD"+strconv.Itoa(i)+"]", TypeUnused
			continue
		}
		at, added := addedByID[id]
		if !added {
			v.Tokens[i], v.Types[i] = tok, TypeNormal
			continue
		}
		special := at.Special
		if s, ok := decSpecial[id]; ok {
			special = s
		}
		if special || looksSpecial(tok) {
			v.Types[i] = TypeControl
		} else {
			tok = strings.ReplaceAll(tok, "\u2581", " ")
			v.Types[i] = TypeUserDefined
		}
		v.Tokens[i] = tok
	}
	if v.Merges, err = tj.merges(); err != nil {
		return nil, err
	}
	return v, nil
}
