package vocab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/qtool-dev/qtool/formats"
)

// WriteHF writes the tokenizer files of a Hugging Face folder into dir
// (created if needed) and returns the names written:
//
//   - tokenizer.json, for both kinds. llama: a byte_fallback BPE model laid
//     out as Llama 2's tokenizer.json (Prepend/Replace normalizer,
//     Replace/ByteFallback/Fuse/Strip decoder, a TemplateProcessing
//     post-processor adding BOS/EOS), with merges rebuilt from the scores the
//     way HF's LlamaConverter does. gpt2: a byte-level BPE model with the
//     merges and the pre-tokenizer of v.Pre (llama-bpe, qwen2, gpt-2, smollm).
//   - tokenizer_config.json: add_bos/add_eos, the special tokens,
//     added_tokens_decoder and chat_template.
//   - special_tokens_map.json.
//   - tokenizer.model, for the llama kind where a SentencePiece model can be
//     rebuilt (one unknown token, all 256 byte tokens or none, no empty
//     token): BPE, byte_fallback, pieces with the scores and types, and an
//     identity normalizer that prepends "▁" unless AddSpacePrefix is false
//     and, like llama.cpp, does not collapse whitespace.
//
// For the llama kind, unset AddBOS/AddEOS are written as llama.cpp's
// defaults (true, false). Each file appears atomically (temporary file, then
// rename). Tokens must be valid UTF-8 and distinct (a tokenizer.json vocab
// is a map): otherwise ErrUnsupportedTokenizer, before anything is written.
func (v *Vocab) WriteHF(dir string) ([]string, error) {
	if err := v.check(); err != nil {
		return nil, err
	}
	if err := v.checkWritable(); err != nil {
		return nil, err
	}
	w := *v // flags defaulted for writing; v itself is not modified
	if w.Model == ModelLlama {
		if w.AddBOS == nil {
			w.AddBOS = boolPtr(true)
		}
		if w.AddEOS == nil {
			w.AddEOS = boolPtr(false)
		}
	}
	tj, err := w.tokenizerJSON()
	if err != nil {
		return nil, err
	}
	type out struct {
		name string
		data []byte
	}
	var files []out
	for _, f := range []struct {
		name string
		v    *jw
	}{{fileTokenizer, tj}, {fileConfig, w.tokenizerConfig()}, {fileSpecialMap, w.specialTokensMap()}} {
		var b bytes.Buffer
		if err := writeJSON(&b, f.v); err != nil {
			return nil, err
		}
		files = append(files, out{f.name, b.Bytes()})
	}
	if w.Model == ModelLlama {
		if m, ok := w.sentencePiece(); ok {
			files = append(files, out{fileModel, m.encode()})
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		if err := writeAtomic(filepath.Join(dir, f.name), f.data); err != nil {
			return names, err
		}
		names = append(names, f.name)
	}
	return names, nil
}

// checkWritable refuses what a tokenizer.json cannot hold.
func (v *Vocab) checkWritable() error {
	unsup := func(key, format string, args ...any) error {
		return &formats.FormatError{Offset: -1, Key: key, Err: ErrUnsupportedTokenizer, Detail: fmt.Sprintf(format, args...)}
	}
	seen := make(map[string]int, len(v.Tokens))
	for id, t := range v.Tokens {
		if !utf8.ValidString(t) {
			return unsup(KeyTokens, "token %d (%q) is not valid UTF-8, which JSON cannot hold", id, t)
		}
		if j, dup := seen[t]; dup {
			return unsup(KeyTokens, "tokens %d and %d are both %q; a tokenizer.json vocab holds each text once", j, id, t)
		}
		seen[t] = id
	}
	if !utf8.ValidString(v.ChatTemplate) {
		return unsup(KeyChatTemplate, "not valid UTF-8")
	}
	for i, m := range v.Merges {
		if strings.Count(m, " ") != 1 || !utf8.ValidString(m) {
			return &formats.FormatError{Offset: -1, Key: fmt.Sprintf("%s[%d]", KeyMerges, i), Err: ErrVocab,
				Detail: fmt.Sprintf("%q is not \"left right\"", m)}
		}
	}
	for i, s := range v.Scores {
		if s != s || s > 3.4e38 || s < -3.4e38 {
			return unsup(fmt.Sprintf("%s[%d]", KeyScores, i), "%v cannot be written to JSON", s)
		}
	}
	return nil
}

// isAdded reports whether token id goes to tokenizer.json's added_tokens
// (and, for gpt2, out of the model vocab), and whether it is special.
func (v *Vocab) isAdded(id int) (added, special bool) {
	switch v.tokenType(id) {
	case TypeControl, TypeUnknown:
		return true, true
	case TypeUserDefined:
		return true, false
	}
	return false, false
}

// isPadPlaceholder reports whether token id is a "[PADi]" filler the
// converters add for ids the tokenizer does not define.
func (v *Vocab) isPadPlaceholder(id int) bool {
	return v.tokenType(id) == TypeUnused && v.Tokens[id] == "[PAD"+strconv.Itoa(id)+"]"
}

func (v *Vocab) tokenText(id int64) any {
	if id < 0 {
		return nil
	}
	return v.Tokens[id]
}

func (v *Vocab) tokenizerJSON() (*jw, error) {
	added := arr()
	for id := range v.Tokens {
		if a, special := v.isAdded(id); a {
			added.push(obj2("id", id, "content", v.Tokens[id], "single_word", false, "lstrip", false,
				"rstrip", false, "normalized", false, "special", special))
		}
	}
	vocab := &jw{object: true}
	merges := arr()
	model := obj2("type", "BPE", "dropout", nil)
	root := obj2("version", "1.0", "truncation", nil, "padding", nil, "added_tokens", added)

	if v.Model == ModelLlama {
		for id, t := range v.Tokens {
			vocab.set(t, id)
		}
		for _, m := range mergesFromScores(v.Tokens, v.Scores) {
			merges.push(arr(m[0], m[1]))
		}
		prefix := v.AddSpacePrefix == nil || *v.AddSpacePrefix
		norm := arr()
		if prefix {
			norm.push(obj2("type", "Prepend", "prepend", "\u2581"))
		}
		norm.push(obj2("type", "Replace", "pattern", obj2("String", " "), "content", "\u2581"))
		dec := arr(obj2("type", "Replace", "pattern", obj2("String", "\u2581"), "content", " "),
			obj2("type", "ByteFallback"), obj2("type", "Fuse"))
		if prefix {
			dec.push(obj2("type", "Strip", "content", " ", "start", 1, "stop", 0))
		}
		root.set("normalizer", obj2("type", "Sequence", "normalizers", norm))
		root.set("pre_tokenizer", nil)
		root.set("post_processor", v.templateProcessing())
		root.set("decoder", obj2("type", "Sequence", "decoders", dec))
		unk := v.UNK
		if unk < 0 {
			unk = int64(v.unknownID())
		}
		model.set("unk_token", v.tokenText(unk)).set("continuing_subword_prefix", nil).set("end_of_word_suffix", nil).
			set("fuse_unk", true).set("byte_fallback", true).set("ignore_merges", false)
	} else {
		for id, t := range v.Tokens {
			if a, _ := v.isAdded(id); !a && !v.isPadPlaceholder(id) {
				vocab.set(t, id)
			}
		}
		for _, m := range v.Merges {
			l, r, _ := strings.Cut(m, " ")
			merges.push(arr(l, r))
		}
		pre, err := preTokenizerJSON(v.Pre)
		if err != nil {
			return nil, err
		}
		qwen := v.Pre == PreQwen2
		var norm any
		if qwen {
			norm = obj2("type", "NFC")
		}
		byteLevel := obj2("type", "ByteLevel", "add_prefix_space", !qwen, "trim_offsets", false, "use_regex", !qwen)
		var post any = byteLevel
		if (v.AddBOS != nil && *v.AddBOS) || (v.AddEOS != nil && *v.AddEOS) {
			post = obj2("type", "Sequence", "processors", arr(byteLevel, v.templateProcessing()))
		}
		root.set("normalizer", norm)
		root.set("pre_tokenizer", pre)
		root.set("post_processor", post)
		root.set("decoder", obj2("type", "ByteLevel", "add_prefix_space", !qwen, "trim_offsets", !qwen, "use_regex", !qwen))
		model.set("unk_token", nil).set("continuing_subword_prefix", nil).set("end_of_word_suffix", nil).
			set("fuse_unk", false).set("byte_fallback", false).set("ignore_merges", isLlama3Pre(v.Pre))
	}
	model.set("vocab", vocab).set("merges", merges)
	root.set("model", model)
	return root, nil
}

// isLlama3Pre reports the pre-tokenizer names for which llama.cpp sets
// ignore_merges (a pre-token found in the vocab is not split).
func isLlama3Pre(pre string) bool { return pre == PreLlama3 || pre == "llama3" || pre == "llama-v3" }

// templateProcessing is the post-processor adding BOS/EOS: single
// "[bos] $A [eos]", and a pair template chosen so that the converter reads
// add_sep back as it was: "[bos] $A [eos] [bos] $B [eos]" (transformers'
// LlamaTokenizerFast layout, which the converter reads as add_sep false),
// "[bos] $A eos $B" for add_sep true, "[bos] $A $B [eos]" when unset.
func (v *Vocab) templateProcessing() *jw {
	bos := v.AddBOS != nil && *v.AddBOS && v.BOS >= 0
	eos := v.AddEOS != nil && *v.AddEOS && v.EOS >= 0
	special := func(id int64, typeID int) *jw {
		return obj2("SpecialToken", obj2("id", v.Tokens[id], "type_id", typeID))
	}
	seq := func(name string, typeID int) *jw { return obj2("Sequence", obj2("id", name, "type_id", typeID)) }
	single, pair := arr(), arr()
	if bos {
		single.push(special(v.BOS, 0))
	}
	single.push(seq("A", 0))
	if eos {
		single.push(special(v.EOS, 0))
	}
	sepToken := v.addSEP != nil && *v.addSEP && !eos && v.EOS >= 0
	switch {
	case v.addSEP != nil && !*v.addSEP:
		for typeID, name := range []string{"A", "B"} {
			if bos {
				pair.push(special(v.BOS, typeID))
			}
			pair.push(seq(name, typeID))
			if eos {
				pair.push(special(v.EOS, typeID))
			}
		}
	default:
		if bos {
			pair.push(special(v.BOS, 0))
		}
		pair.push(seq("A", 0))
		if sepToken {
			pair.push(special(v.EOS, 0))
		}
		pair.push(seq("B", 1))
		if eos {
			pair.push(special(v.EOS, 1))
		}
	}
	specials := &jw{object: true}
	for _, use := range []struct {
		on bool
		id int64
	}{{bos, v.BOS}, {eos || sepToken, v.EOS}} {
		if use.on && !hasKey(specials, v.Tokens[use.id]) {
			t := v.Tokens[use.id]
			specials.set(t, obj2("id", t, "ids", arr(use.id), "tokens", arr(t)))
		}
	}
	return obj2("type", "TemplateProcessing", "single", single, "pair", pair, "special_tokens", specials)
}

func hasKey(o *jw, k string) bool {
	for _, x := range o.keys {
		if x == k {
			return true
		}
	}
	return false
}

func (v *Vocab) tokenizerConfig() *jw {
	c := &jw{object: true}
	if v.AddBOS != nil {
		c.set("add_bos_token", *v.AddBOS)
	}
	if v.AddEOS != nil {
		c.set("add_eos_token", *v.AddEOS)
	}
	if v.Model == ModelGPT2 && v.AddSpacePrefix != nil {
		c.set("add_prefix_space", *v.AddSpacePrefix)
	}
	dec := &jw{object: true}
	for id := range v.Tokens {
		if special, ok := v.decoderEntry(id); ok {
			dec.set(strconv.Itoa(id), obj2("content", v.Tokens[id], "lstrip", false, "normalized", false,
				"rstrip", false, "single_word", false, "special", special))
		}
	}
	c.set("added_tokens_decoder", dec)
	c.set("bos_token", v.tokenText(v.BOS))
	c.set("clean_up_tokenization_spaces", false)
	c.set("eos_token", v.tokenText(v.EOS))
	if v.Model == ModelLlama {
		c.set("legacy", true)
	}
	c.set("pad_token", v.tokenText(v.PAD))
	if v.Model == ModelLlama {
		c.set("sp_model_kwargs", &jw{object: true})
		c.set("tokenizer_class", "LlamaTokenizer")
	} else {
		c.set("tokenizer_class", "PreTrainedTokenizerFast")
	}
	c.set("unk_token", v.tokenText(v.UNK))
	if v.ChatTemplate != "" {
		c.set("chat_template", v.ChatTemplate)
	}
	return c
}

// decoderEntry decides whether token id is listed in tokenizer_config.json's
// added_tokens_decoder, and with which "special". For gpt2 every added
// token is. For llama, where the converter turns each listed entry into
// CONTROL or USER_DEFINED with score -1000 and tokenizer.model already
// carries types and scores, only the entries that reading back reproduces
// exactly are listed: CONTROL and USER_DEFINED tokens of score -1000 (the
// ones the converter itself made so).
func (v *Vocab) decoderEntry(id int) (special, ok bool) {
	added, special := v.isAdded(id)
	if !added {
		return false, false
	}
	if v.Model == ModelGPT2 {
		return special, true
	}
	if v.score(id) != -1000 {
		return false, false
	}
	switch v.tokenType(id) {
	case TypeControl:
		return true, true
	case TypeUserDefined:
		t := v.Tokens[id]
		return false, !looksSpecial(t) && !strings.Contains(t, "\u2581")
	}
	return false, false
}

func (v *Vocab) specialTokensMap() *jw {
	m := &jw{object: true}
	for _, s := range []struct {
		key string
		id  int64
	}{{"bos_token", v.BOS}, {"eos_token", v.EOS}, {"unk_token", v.UNK}, {"pad_token", v.PAD}} {
		if s.id >= 0 {
			m.set(s.key, v.Tokens[s.id])
		}
	}
	return m
}

// unknownID is the token that becomes the SentencePiece unknown piece: the
// one token of type UNKNOWN, else v.UNK, else the token "<unk>"; -1 when
// there is none or more than one UNKNOWN.
func (v *Vocab) unknownID() int {
	unk := -1
	for id := range v.Tokens {
		if v.tokenType(id) == TypeUnknown {
			if unk >= 0 {
				return -1
			}
			unk = id
		}
	}
	if unk >= 0 {
		return unk
	}
	if v.UNK >= 0 {
		return int(v.UNK)
	}
	for id, t := range v.Tokens {
		if t == "<unk>" {
			return id
		}
	}
	return -1
}

// sentencePiece rebuilds a ModelProto that sentencepiece loads, or reports
// false when the vocabulary breaks one of its load checks.
func (v *Vocab) sentencePiece() (*spModel, bool) {
	unk := v.unknownID()
	if unk < 0 {
		return nil, false
	}
	m := newSPModel()
	m.ModelType = spBPE
	m.VocabSize = int32(len(v.Tokens))
	m.Pieces = make([]spPiece, len(v.Tokens))
	var bytesSeen [256]bool
	nBytes := 0
	for id, t := range v.Tokens {
		if t == "" {
			return nil, false
		}
		typ := v.tokenType(id)
		if typ < TypeNormal || typ > TypeByte {
			typ = TypeNormal
		}
		if id == unk {
			typ = TypeUnknown
		}
		if typ == TypeByte {
			c, ok := pieceByte(t)
			if !ok || bytesSeen[c] {
				return nil, false
			}
			bytesSeen[c] = true
			nBytes++
		}
		m.Pieces[id] = spPiece{Piece: t, Score: v.score(id), Type: typ}
	}
	if nBytes != 0 && nBytes != 256 {
		return nil, false
	}
	m.ByteFallback = nBytes == 256
	m.UnkID, m.UnkPiece = int32(unk), v.Tokens[unk]
	m.BosID, m.EosID, m.PadID = -1, -1, -1
	if v.BOS >= 0 {
		m.BosID, m.BosPiece = int32(v.BOS), v.Tokens[v.BOS]
	}
	if v.EOS >= 0 {
		m.EosID, m.EosPiece = int32(v.EOS), v.Tokens[v.EOS]
	}
	if v.PAD >= 0 {
		m.PadID, m.PadPiece = int32(v.PAD), v.Tokens[v.PAD]
	}
	m.NormalizerName = "identity"
	m.AddDummyPrefix = v.AddSpacePrefix == nil || *v.AddSpacePrefix
	m.RemoveExtraWhitespaces = false
	m.EscapeWhitespaces = true
	return m, true
}

// writeAtomic writes data to path through a temporary file in the same
// directory, renamed into place once complete.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
