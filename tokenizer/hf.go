package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/vocab"
)

// The Hugging Face tokenizers pipeline of a tokenizer.json (tokenizers'
// TokenizerImpl::encode_single_sequence): added tokens are split out of the
// raw text (those with normalized=false), each remaining piece is
// normalized, added tokens with normalized=true are split out of that, the
// pre-tokenizer cuts the rest into words, and the BPE model encodes each
// word; the post-processor adds the special tokens around the result.

// hfPipeline holds what a tokenizer.json adds to the vocabulary.
type hfPipeline struct {
	normalizers []func(string) string
	// Metaspace pre-tokenizer (when it is the first one): spaces become
	// repl, which is prepended per prepend ("always", "first", "never").
	metaRepl, metaPrepend string
	added, addedNorm      *addedMatcher
	byteFallback, fuseUnk bool
	unk                   int32
}

// hfFile is the part of tokenizer.json the pipeline reads; model.vocab is
// taken from the vocab.Vocab.
type hfFile struct {
	AddedTokens []struct {
		ID         int64  `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         struct {
		Type                    string          `json:"type"`
		Dropout                 *float64        `json:"dropout"`
		UnkToken                *string         `json:"unk_token"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		FuseUnk                 bool            `json:"fuse_unk"`
		ByteFallback            bool            `json:"byte_fallback"`
		IgnoreMerges            bool            `json:"ignore_merges"`
		Merges                  json.RawMessage `json:"merges"` // read only when vocab has none

	} `json:"model"`
}

// node is one normalizer, pre-tokenizer or post-processor object.
type node struct {
	Type string `json:"type"`
	// Sequence
	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
	Processors    []json.RawMessage `json:"processors"`
	// Prepend, Replace, Split
	Prepend  string            `json:"prepend"`
	Pattern  map[string]string `json:"pattern"`
	Content  string            `json:"content"`
	Behavior string            `json:"behavior"`
	Invert   bool              `json:"invert"`
	// ByteLevel, Metaspace, Digits
	AddPrefixSpace   *bool  `json:"add_prefix_space"`
	UseRegex         *bool  `json:"use_regex"`
	Replacement      string `json:"replacement"`
	PrependScheme    string `json:"prepend_scheme"`
	Split            *bool  `json:"split"`
	IndividualDigits bool   `json:"individual_digits"`
	// TemplateProcessing, RobertaProcessing, BertProcessing
	Single        []map[string]struct{ ID string } `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int64 `json:"ids"`
	} `json:"special_tokens"`
	Cls []any `json:"cls"`
	Sep []any `json:"sep"`
}

func unsupported(file, key, format string, args ...any) error {
	return &formats.FormatError{File: file, Offset: -1, Key: key, Err: ErrUnsupported, Detail: fmt.Sprintf(format, args...)}
}

func malformed(file, key, format string, args ...any) error {
	return &formats.FormatError{File: file, Offset: -1, Key: key, Err: ErrTokenizer, Detail: fmt.Sprintf(format, args...)}
}

func parseNode(raw json.RawMessage, file, key string) (*node, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var n node
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, malformed(file, key, "%v", err)
	}
	return &n, nil
}

// flatten expands a Sequence into its members.
func flatten(raw json.RawMessage, file, key string, members func(*node) []json.RawMessage) ([]*node, error) {
	n, err := parseNode(raw, file, key)
	if n == nil || err != nil {
		return nil, err
	}
	if n.Type != "Sequence" {
		return []*node{n}, nil
	}
	var out []*node
	for i, r := range members(n) {
		sub, err := flatten(r, file, fmt.Sprintf("%s[%d]", key, i), members)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return out, nil
}

// newHF builds a tokenizer with the behaviour of Hugging Face tokenizers for
// the tokenizer.json at file, whose vocabulary v is (as vocab.FromHFFolder
// reads it).
func newHF(v *vocab.Vocab, data []byte, file string) (*Tokenizer, error) {
	var f hfFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, malformed(file, "", "%v", err)
	}
	t, err := newBase(v)
	if err != nil {
		return nil, err
	}
	hf := &hfPipeline{unk: -1}
	t.hf = hf
	all := make(map[string]int32, len(t.tokens))
	for id, tok := range t.tokens {
		if _, dup := all[tok]; !dup {
			all[tok] = int32(id)
		}
	}

	// Added tokens. They leave the model vocabulary when special (the
	// model never produces them) and are matched in the text instead.
	specialID := map[int32]bool{}
	var raw, norm []*addedToken
	for i, a := range f.AddedTokens {
		if a.ID < 0 || a.ID >= int64(len(t.tokens)) {
			return nil, malformed(file, fmt.Sprintf("added_tokens[%d]", i), "id %d outside the %d tokens", a.ID, len(t.tokens))
		}
		at := &addedToken{id: int32(a.ID), content: a.Content, singleWord: a.SingleWord, lstrip: a.LStrip,
			rstrip: a.RStrip, normalized: a.Normalized, special: a.Special}
		// The file's special flag decides, not the converter's guess
		// (which makes "<|fim_prefix|>" CONTROL).
		if a.Special {
			specialID[at.id] = true
			t.types[at.id] = typeControl
		} else {
			t.types[at.id] = typeUserDefined
		}
		if a.Normalized {
			norm = append(norm, at)
		} else {
			raw = append(raw, at)
		}
	}
	t.ids = make(map[string]int32, len(t.tokens))
	for id, tok := range t.tokens {
		if !specialID[int32(id)] && t.types[id] != typeUnused {
			if _, dup := t.ids[tok]; !dup {
				t.ids[tok] = int32(id)
			}
		}
	}

	if hf.normalizers, err = normalizers(f.Normalizer, file); err != nil {
		return nil, err
	}
	for _, at := range norm { // tokenizers normalizes their content first
		at.content = hf.normalize(at.content)
	}
	hf.added, hf.addedNorm = newAddedMatcher(raw), newAddedMatcher(norm)
	if err := t.hfPreTokenizer(f.PreTokenizer, file); err != nil {
		return nil, err
	}

	m := f.Model
	switch {
	case m.Type != "" && m.Type != "BPE":
		return nil, unsupported(file, "model.type", "%q (only BPE)", m.Type)
	case m.Dropout != nil && *m.Dropout != 0:
		return nil, unsupported(file, "model.dropout", "BPE dropout %g", *m.Dropout)
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "",
		m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return nil, unsupported(file, "model", "subword prefix or suffix")
	case t.byteLevel != (v.Model == vocab.ModelGPT2):
		return nil, unsupported(file, "pre_tokenizer", "ByteLevel pre-tokenizer with a %q vocabulary", v.Model)
	}
	hf.byteFallback, hf.fuseUnk, t.ignoreMerges = m.ByteFallback, m.FuseUnk, m.IgnoreMerges
	if m.UnkToken != nil {
		if id, ok := all[*m.UnkToken]; ok {
			hf.unk = id
		}
	}
	var merges [][2]string
	if v.Model == vocab.ModelGPT2 {
		merges, err = parseMerges(v.Merges)
	} else {
		merges, err = jsonMerges(m.Merges, file)
	}
	if err != nil {
		return nil, err
	}
	if t.bpe, err = t.newBPE(merges, true); err != nil {
		var fe *formats.FormatError
		if errors.As(err, &fe) {
			fe.File = file
		}
		return nil, err
	}
	t.setByteTokens()
	if v.Model == vocab.ModelLlama && chunkable(t.tokens) {
		t.splitters = append(t.splitters, spmChunker...)
	}

	if t.prefix, t.suffix, err = postProcessor(f.PostProcessor, file); err != nil {
		return nil, err
	}
	t.addBOS, t.addEOS = len(t.prefix) > 0, len(t.suffix) > 0
	if len(t.prefix) == 0 {
		t.prefix = single(t.bos)
	}
	if len(t.suffix) == 0 {
		t.suffix = single(t.eos)
	}
	for _, id := range append(append([]int32{}, t.prefix...), t.suffix...) {
		if id < 0 || int(id) >= len(t.tokens) {
			return nil, malformed(file, "post_processor", "special token id %d outside the %d tokens", id, len(t.tokens))
		}
	}
	t.addSpacePrefix = v.Model == vocab.ModelLlama && flag(v.AddSpacePrefix, true)
	return t, nil
}

// jsonMerges reads model.merges in either form, "a b" or ["a", "b"].
func jsonMerges(all json.RawMessage, file string) ([][2]string, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(all, &raw); err != nil {
		return nil, malformed(file, "model.merges", "%v", err)
	}
	out := make([][2]string, len(raw))
	for i, r := range raw {
		var s string
		if json.Unmarshal(r, &s) == nil {
			a, b, ok := splitMerge(s)
			if !ok {
				return nil, malformed(file, fmt.Sprintf("model.merges[%d]", i), "%q is not \"left right\"", s)
			}
			out[i] = [2]string{a, b}
			continue
		}
		var p []string
		if json.Unmarshal(r, &p) != nil || len(p) != 2 {
			return nil, malformed(file, fmt.Sprintf("model.merges[%d]", i), "neither \"a b\" nor [\"a\", \"b\"]")
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

// normalizers supports Prepend, Replace with a string pattern and NFC, in
// a Sequence or alone.
func normalizers(raw json.RawMessage, file string) ([]func(string) string, error) {
	nodes, err := flatten(raw, file, "normalizer", func(n *node) []json.RawMessage { return n.Normalizers })
	if err != nil {
		return nil, err
	}
	var out []func(string) string
	for _, n := range nodes {
		switch n.Type {
		case "Prepend":
			p := n.Prepend
			out = append(out, func(s string) string {
				if s == "" {
					return s
				}
				return p + s
			})
		case "Replace":
			pat, ok := n.Pattern["String"]
			if !ok || pat == "" {
				return nil, unsupported(file, "normalizer", "Replace with pattern %v (only a non-empty String)", n.Pattern)
			}
			content := n.Content
			out = append(out, func(s string) string { return strings.ReplaceAll(s, pat, content) })
		case "NFC":
			out = append(out, nfc)
		default:
			return nil, unsupported(file, "normalizer", "%s (supported: Prepend, Replace, NFC, Sequence)", n.Type)
		}
	}
	return out, nil
}

func (hf *hfPipeline) normalize(s string) string {
	for _, f := range hf.normalizers {
		s = f(s)
	}
	return s
}

// Split patterns with a hand-written splitter.
var knownSplits = map[string]splitter{
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: splitLlama3,
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:      splitQwen2,
	`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`:                                          splitGPT2,
}

// hfPreTokenizer supports Split (Isolated, with one of knownSplits),
// ByteLevel, Digits and, first, Metaspace, in a Sequence or alone.
func (t *Tokenizer) hfPreTokenizer(raw json.RawMessage, file string) error {
	nodes, err := flatten(raw, file, "pre_tokenizer", func(n *node) []json.RawMessage { return n.Pretokenizers })
	if err != nil {
		return err
	}
	for i, n := range nodes {
		switch n.Type {
		case "Split":
			re, isRegex := n.Pattern["Regex"]
			sp, ok := knownSplits[re]
			if !isRegex || !ok || n.Behavior != "Isolated" || n.Invert {
				return unsupported(file, "pre_tokenizer", "Split %v, %s, invert %v (supported: Isolated splits by the Llama 3, Qwen2 and GPT-2 patterns)",
					n.Pattern, n.Behavior, n.Invert)
			}
			t.splitters = append(t.splitters, sp)
		case "ByteLevel":
			if n.AddPrefixSpace != nil && *n.AddPrefixSpace {
				return unsupported(file, "pre_tokenizer", "ByteLevel with add_prefix_space")
			}
			if n.UseRegex == nil || *n.UseRegex {
				t.splitters = append(t.splitters, splitGPT2)
			}
			t.byteLevel = true
		case "Digits":
			t.splitters = append(t.splitters, splitDigits(n.IndividualDigits))
		case "Metaspace":
			if i != 0 {
				return unsupported(file, "pre_tokenizer", "Metaspace after another pre-tokenizer")
			}
			repl := n.Replacement
			if repl == "" {
				repl = "\u2581"
			}
			scheme := n.PrependScheme
			if scheme == "" {
				scheme = "always"
				if n.AddPrefixSpace != nil && !*n.AddPrefixSpace {
					scheme = "never"
				}
			}
			if scheme != "always" && scheme != "first" && scheme != "never" {
				return unsupported(file, "pre_tokenizer", "Metaspace prepend_scheme %q", scheme)
			}
			t.hf.metaRepl, t.hf.metaPrepend = repl, scheme
			if n.Split == nil || *n.Split {
				t.splitters = append(t.splitters, splitMetaspace(repl))
			}
		default:
			return unsupported(file, "pre_tokenizer", "%s (supported: Split, ByteLevel, Digits, Metaspace, Sequence)", n.Type)
		}
	}
	return nil
}

// postProcessor returns the ids the post-processor puts before and after a
// single sequence: TemplateProcessing, RobertaProcessing, BertProcessing,
// ByteLevel (none), in a Sequence or alone.
func postProcessor(raw json.RawMessage, file string) (prefix, suffix []int32, err error) {
	nodes, err := flatten(raw, file, "post_processor", func(n *node) []json.RawMessage { return n.Processors })
	if err != nil {
		return nil, nil, err
	}
	for _, n := range nodes {
		switch n.Type {
		case "ByteLevel":
		case "TemplateProcessing":
			seen := false
			for _, item := range n.Single {
				if _, ok := item["Sequence"]; ok {
					seen = true
					continue
				}
				st, ok := item["SpecialToken"]
				if !ok {
					return nil, nil, malformed(file, "post_processor.single", "item %v", item)
				}
				sp, ok := n.SpecialTokens[st.ID]
				if !ok {
					return nil, nil, malformed(file, "post_processor.special_tokens", "%q missing", st.ID)
				}
				for _, id := range sp.IDs {
					if seen {
						suffix = append(suffix, int32(id))
					} else {
						prefix = append(prefix, int32(id))
					}
				}
			}
		case "RobertaProcessing", "BertProcessing":
			idOf := func(p []any) (int32, bool) {
				if len(p) != 2 {
					return 0, false
				}
				f, ok := p[1].(float64)
				return int32(f), ok
			}
			cls, ok1 := idOf(n.Cls)
			sep, ok2 := idOf(n.Sep)
			if !ok1 || !ok2 {
				return nil, nil, malformed(file, "post_processor", "%s without cls/sep ids", n.Type)
			}
			prefix, suffix = append(prefix, cls), append(suffix, sep)
		default:
			return nil, nil, unsupported(file, "post_processor", "%s", n.Type)
		}
	}
	return prefix, suffix, nil
}

// encodeHF is tokenizers' encode of one sequence, without the
// post-processor.
func (t *Tokenizer) encodeHF(st *encodeState, text string, parseSpecial bool, out []int32) []int32 {
	hf := t.hf
	frags := hf.added.split(text, 0, len(text), parseSpecial, st.frags[:0])
	st.frags = frags
	for _, f := range frags {
		if f.id >= 0 {
			out = append(out, f.id)
			continue
		}
		normed := hf.normalize(text[f.start:f.end])
		if hf.addedNorm == nil {
			out = t.hfWords(st, normed, f.start == 0, out)
			continue
		}
		sub := hf.addedNorm.split(normed, 0, len(normed), parseSpecial, st.frags2[:0])
		st.frags2 = sub
		for _, g := range sub {
			if g.id >= 0 {
				out = append(out, g.id)
			} else {
				out = t.hfWords(st, normed[g.start:g.end], f.start == 0 && g.start == 0, out)
			}
		}
	}
	return out
}

// hfWords pre-tokenizes a normalized piece (first: it begins the input)
// and appends the BPE tokens of its words.
func (t *Tokenizer) hfWords(st *encodeState, s string, first bool, out []int32) []int32 {
	if s == "" {
		return out
	}
	if r := t.hf.metaRepl; r != "" {
		s = strings.ReplaceAll(s, " ", r)
		if !strings.HasPrefix(s, r) && (t.hf.metaPrepend == "always" || t.hf.metaPrepend == "first" && first) {
			s = r + s
		}
	}
	return t.bpeText(st, s, out)
}
