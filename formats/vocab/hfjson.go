package vocab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/qtool-dev/qtool/formats"
)

// readFile reads dir/name whole, refusing files above MaxFileBytes before
// allocating. A missing file returns (nil, nil).
func readFile(dir, name string) ([]byte, error) {
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, &formats.FormatError{File: path, Offset: -1, Err: ErrNoTokenizer, Detail: "is a directory"}
	}
	if st.Size() > MaxFileBytes {
		return nil, &formats.FormatError{File: path, Offset: -1, Err: ErrTooLarge,
			Detail: fmt.Sprintf("%d bytes (limit %d)", st.Size(), MaxFileBytes)}
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileBytes {
		return nil, &formats.FormatError{File: path, Offset: -1, Err: ErrTooLarge, Detail: "file grew past the limit while reading"}
	}
	return b, nil
}

// decodeJSON unmarshals b into v, turning syntax and type errors into
// ErrJSON errors that name the file, the byte offset and the field.
func decodeJSON(b []byte, file string, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return jsonErr(file, "", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return &formats.FormatError{File: file, Offset: d.InputOffset(), Err: ErrJSON, Detail: "data after the top-level value"}
	}
	return nil
}

func jsonErr(file, key string, err error) error {
	fe := &formats.FormatError{File: file, Offset: -1, Key: key, Err: ErrJSON, Detail: err.Error()}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		fe.Offset = se.Offset
	case errors.As(err, &te):
		fe.Offset = te.Offset
		if fe.Key == "" {
			fe.Key = te.Field
		}
		fe.Detail = fmt.Sprintf("JSON %s where %s was expected", te.Value, te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		fe.Detail = "unexpected end of JSON"
	}
	return fe
}

// vocabErr is an ErrVocab error for a field of a file.
func vocabErr(file, key, format string, args ...any) error {
	return &formats.FormatError{File: file, Offset: -1, Key: key, Err: ErrVocab, Detail: fmt.Sprintf(format, args...)}
}

// obj is a JSON object whose members are decoded on demand.
type obj map[string]json.RawMessage

// has reports whether key is present and not null.
func (o obj) has(key string) bool {
	raw, ok := o[key]
	return ok && !isNull(raw)
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// str returns a string member; absent or null gives ok false, any other
// JSON type an error.
func (o obj) str(file, key string) (s string, ok bool, err error) {
	if !o.has(key) {
		return "", false, nil
	}
	if err := json.Unmarshal(o[key], &s); err != nil {
		return "", false, jsonErr(file, key, err)
	}
	return s, true, nil
}

// optBool returns a bool member; any other JSON type (or null) gives ok
// false, as the converter only honours real booleans (isinstance bool).
func (o obj) optBool(key string) (b bool, ok bool) {
	if !o.has(key) {
		return false, false
	}
	if json.Unmarshal(o[key], &b) != nil {
		return false, false
	}
	return b, true
}

// optInt returns an integer member; other JSON types give ok false (the
// converter ignores values that are not ints).
func (o obj) optInt(key string) (int64, bool) {
	if !o.has(key) {
		return 0, false
	}
	raw := bytes.TrimSpace(o[key])
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, false // a string "7" is not an int to the converter
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&n) != nil {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

// object decodes a member that must be an object (absent or null: nil).
func (o obj) object(file, key string) (obj, error) {
	if !o.has(key) {
		return nil, nil
	}
	var sub obj
	if err := json.Unmarshal(o[key], &sub); err != nil {
		return nil, jsonErr(file, key, err)
	}
	if sub == nil {
		sub = obj{}
	}
	return sub, nil
}

// tokenContent is a special-token entry of tokenizer_config.json or
// special_tokens_map.json: a string, or an object with a string "content".
func tokenContent(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var o struct {
		Content *string `json:"content"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Content != nil {
		return *o.Content, true
	}
	return "", false
}

// readObject reads dir/name as a JSON object; a missing file gives nil.
func readObject(dir, name string) (obj, error) {
	b, err := readFile(dir, name)
	if err != nil || b == nil {
		return nil, err
	}
	var o obj
	if err := decodeJSON(b, filepath.Join(dir, name), &o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, &formats.FormatError{File: filepath.Join(dir, name), Offset: -1, Err: ErrJSON, Detail: "top level is null, not an object"}
	}
	return o, nil
}

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	ID         int64  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// tokenizerJSON is the part of a Hugging Face tokenizer.json used here.
type tokenizerJSON struct {
	file          string
	AddedTokens   []addedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         struct {
		Type         string       `json:"type"`
		Vocab        vocabField   `json:"vocab"`
		Merges       []mergeEntry `json:"merges"`
		ByteFallback bool         `json:"byte_fallback"`
		IgnoreMerges bool         `json:"ignore_merges"`
	} `json:"model"`

	vocab map[string]int64 // model.vocab
}

// vocabField decodes model.vocab as a BPE token → id map, keeping a
// decoding error for later: a Unigram model's vocab is a list, and the
// model type decides which error to report.
type vocabField struct {
	m       map[string]int64
	present bool
	err     error
}

func (f *vocabField) UnmarshalJSON(b []byte) error {
	f.present = !isNull(b)
	f.err = json.Unmarshal(b, &f.m)
	return nil
}

// mergeEntry is one element of model.merges: a "left right" string or a
// ["left", "right"] pair. Decoding keeps the raw text; merges() interprets
// it (most entries take a fast path without escapes).
type mergeEntry struct{ raw []byte }

func (m *mergeEntry) UnmarshalJSON(b []byte) error {
	m.raw = b // encoding/json passes a fresh, already validated slice
	return nil
}

// str returns the entry as a JSON string, if it is one.
func (m mergeEntry) str() (string, bool) {
	b := m.raw
	if len(b) == 0 || b[0] != '"' {
		return "", false
	}
	if len(b) >= 2 && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		return string(b[1 : len(b)-1]), true
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return "", false
	}
	return s, true
}

// pair returns the entry as a two-string array, if it is one.
func (m mergeEntry) pair() ([2]string, bool) {
	if p, ok := fastPair(m.raw); ok {
		return p, true
	}
	var p []string
	if json.Unmarshal(m.raw, &p) != nil || len(p) != 2 {
		return [2]string{}, false
	}
	return [2]string{p[0], p[1]}, true
}

// parseTokenizerJSON decodes tokenizer.json and checks the model vocab: a
// BPE model, ids non-negative, below MaxTokens and used once.
func parseTokenizerJSON(b []byte, file string) (*tokenizerJSON, error) {
	tj := &tokenizerJSON{file: file}
	if err := decodeJSON(b, file, tj); err != nil {
		return nil, err
	}
	if tj.Model.Type == "" && tj.Model.Vocab.present {
		// Older files omit "type"; a vocab plus merges is a BPE model.
		if tj.Model.Merges != nil {
			tj.Model.Type = "BPE"
		}
	}
	if tj.Model.Type == "" && !tj.Model.Vocab.present {
		return nil, vocabErr(file, "model", "missing")
	}
	if tj.Model.Type != "BPE" {
		return nil, &formats.FormatError{File: file, Offset: -1, Key: "model.type", Err: ErrUnsupportedTokenizer,
			Detail: fmt.Sprintf("tokenizer model %q (only BPE models convert)", tj.Model.Type)}
	}
	if !tj.Model.Vocab.present {
		return nil, vocabErr(file, "model.vocab", "missing")
	}
	if err := tj.Model.Vocab.err; err != nil {
		return nil, jsonErr(file, "model.vocab", err)
	}
	tj.vocab = tj.Model.Vocab.m
	if len(tj.vocab) > MaxTokens || len(tj.AddedTokens) > MaxTokens {
		return nil, &formats.FormatError{File: file, Offset: -1, Key: "model.vocab", Err: ErrTooLarge,
			Detail: fmt.Sprintf("%d tokens (limit %d)", len(tj.vocab), MaxTokens)}
	}
	seen := make(map[int64]string, len(tj.vocab))
	for tok, id := range tj.vocab {
		if id < 0 || id >= MaxTokens {
			return nil, vocabErr(file, "model.vocab", "token %q has id %d", tok, id)
		}
		if other, dup := seen[id]; dup {
			return nil, vocabErr(file, "model.vocab", "id %d used by %q and %q", id, other, tok)
		}
		seen[id] = tok
	}
	for i, at := range tj.AddedTokens {
		if at.ID < 0 || at.ID >= MaxTokens {
			return nil, vocabErr(file, fmt.Sprintf("added_tokens[%d]", i), "id %d", at.ID)
		}
	}
	return tj, nil
}

// isLlama reports whether the tokenizer is SentencePiece-style BPE (the
// byte_fallback models HF's LlamaConverter writes), which
// convert_hf_to_gguf.py converts as tokenizer.ggml.model "llama".
func (tj *tokenizerJSON) isLlama() bool { return tj.Model.ByteFallback }

// merges returns model.merges as "left right" strings. The pair form
// ["a", "b"] (tokenizers ≥ 0.20) is joined with one space after each space
// inside a part is replaced by U+0120, as gguf-py does.
func (tj *tokenizerJSON) merges() ([]string, error) {
	out := make([]string, 0, len(tj.Model.Merges))
	var pairs bool
	for i, e := range tj.Model.Merges {
		if s, ok := e.str(); ok {
			if i > 0 && pairs {
				return nil, vocabErr(tj.file, fmt.Sprintf("model.merges[%d]", i), "string among pairs")
			}
			out = append(out, s)
			continue
		}
		p, ok := e.pair()
		if !ok {
			return nil, vocabErr(tj.file, fmt.Sprintf("model.merges[%d]", i), "neither \"a b\" nor [\"a\", \"b\"]: %.40s", string(e.raw))
		}
		if i > 0 && !pairs {
			return nil, vocabErr(tj.file, fmt.Sprintf("model.merges[%d]", i), "pair among strings")
		}
		pairs = true
		out = append(out, spaceToG(p[0])+" "+spaceToG(p[1]))
	}
	return out, nil
}

// fastPair parses ["a", "b"] when neither string has an escape; ok false
// sends the caller to encoding/json.
func fastPair(b []byte) (p [2]string, ok bool) {
	i := 0
	ws := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
			i++
		}
	}
	expect := func(c byte) bool {
		ws()
		if i < len(b) && b[i] == c {
			i++
			return true
		}
		return false
	}
	str := func() (string, bool) {
		if !expect('"') {
			return "", false
		}
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 || bytes.IndexByte(b[i:i+j], '\\') >= 0 {
			return "", false
		}
		s := string(b[i : i+j])
		i += j + 1
		return s, true
	}
	var okA, okB bool
	if !expect('[') {
		return p, false
	}
	if p[0], okA = str(); !okA || !expect(',') {
		return p, false
	}
	if p[1], okB = str(); !okB || !expect(']') {
		return p, false
	}
	ws()
	return p, okA && okB && i == len(b)
}

// spaceToG replaces ' ' with U+0120 ('Ġ'), gguf-py's encoding of a space
// inside a merge part.
func spaceToG(s string) string {
	if !bytes.ContainsRune([]byte(s), ' ') {
		return s
	}
	r := []rune(s)
	for i, c := range r {
		if c == ' ' {
			r[i] = ' ' + 256
		}
	}
	return string(r)
}
