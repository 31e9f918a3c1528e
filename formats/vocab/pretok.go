package vocab

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// Split regexes of the byte-level BPE pre-tokenizers qtool recognises. They
// are the patterns of the published tokenizer.json files (and of
// llama.cpp's llama-vocab.cpp for the same names).
const (
	// Llama 3, 3.1, 3.2 ("llama-bpe"): digits in runs of up to three.
	regexLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// Qwen2, Qwen2.5, Qwen3 ("qwen2"): single digits.
	regexQwen2 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// Pre-tokenizer names (tokenizer.ggml.pre).
const (
	PreDefault = "default"
	PreLlama3  = "llama-bpe"
	PreQwen2   = "qwen2"
	PreGPT2    = "gpt-2"
	PreSmolLM  = "smollm"
)

// ptNode is one pre-tokenizer of tokenizer.json.
type ptNode struct {
	Type             string            `json:"type"`
	Pretokenizers    []json.RawMessage `json:"pretokenizers"`
	Pattern          map[string]string `json:"pattern"`
	Behavior         string            `json:"behavior"`
	Invert           bool              `json:"invert"`
	UseRegex         *bool             `json:"use_regex"`
	AddPrefixSpace   bool              `json:"add_prefix_space"`
	IndividualDigits bool              `json:"individual_digits"`
}

// detectPre names the pre-tokenizer of a byte-level BPE tokenizer.json
// from its configuration:
//
//	Sequence[Split(Regex llama3, Isolated), ByteLevel(use_regex=false)]  llama-bpe
//	Sequence[Split(Regex qwen2, Isolated), ByteLevel(use_regex=false)]   qwen2
//	ByteLevel(use_regex=true)                                            gpt-2
//	Sequence[Digits(individual_digits), ByteLevel(use_regex=true)]      smollm
//
// (llama.cpp's "starcoder" and "refact" share smollm's rules; "smollm" is
// the one of the llama architecture.) Anything else is
// ErrUnsupportedTokenizer naming what was seen.
func detectPre(tj *tokenizerJSON) (string, error) {
	nodes, desc, err := flattenPre(tj.PreTokenizer)
	if err == nil {
		if name := matchPre(nodes); name != "" {
			return name, nil
		}
	}
	return "", &formats.FormatError{File: tj.file, Offset: -1, Key: "pre_tokenizer", Err: ErrUnsupportedTokenizer,
		Detail: "byte-level BPE pre-tokenizer not recognised (known: llama-bpe, qwen2, gpt-2, smollm): " + desc}
}

func flattenPre(raw json.RawMessage) ([]ptNode, string, error) {
	if len(raw) == 0 || isNull(raw) {
		return nil, "none", nil
	}
	var top ptNode
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, "unparsable", err
	}
	list := []ptNode{top}
	if top.Type == "Sequence" {
		list = list[:0]
		for _, r := range top.Pretokenizers {
			var n ptNode
			if err := json.Unmarshal(r, &n); err != nil {
				return nil, "unparsable", err
			}
			list = append(list, n)
		}
	}
	parts := make([]string, len(list))
	for i, n := range list {
		parts[i] = describePre(n)
	}
	desc := strings.Join(parts, ", ")
	if top.Type == "Sequence" {
		desc = "Sequence[" + desc + "]"
	}
	return list, desc, nil
}

func describePre(n ptNode) string {
	switch n.Type {
	case "Split":
		if r, ok := n.Pattern["Regex"]; ok {
			return fmt.Sprintf("Split(Regex %q, %s)", r, n.Behavior)
		}
		return fmt.Sprintf("Split(String %q, %s)", n.Pattern["String"], n.Behavior)
	case "ByteLevel":
		return fmt.Sprintf("ByteLevel(use_regex=%v)", n.UseRegex == nil || *n.UseRegex)
	case "Digits":
		return fmt.Sprintf("Digits(individual_digits=%v)", n.IndividualDigits)
	}
	return n.Type
}

func matchPre(ns []ptNode) string {
	useRegex := func(n ptNode) bool { return n.UseRegex == nil || *n.UseRegex } // tokenizers' default is true
	isSplit := func(n ptNode, re string) bool {
		return n.Type == "Split" && n.Pattern["Regex"] == re && n.Behavior == "Isolated" && !n.Invert
	}
	switch len(ns) {
	case 1:
		if ns[0].Type == "ByteLevel" && useRegex(ns[0]) && !ns[0].AddPrefixSpace {
			return PreGPT2
		}
	case 2:
		bl := ns[1]
		if bl.Type != "ByteLevel" || bl.AddPrefixSpace {
			return ""
		}
		switch {
		case isSplit(ns[0], regexLlama3) && !useRegex(bl):
			return PreLlama3
		case isSplit(ns[0], regexQwen2) && !useRegex(bl):
			return PreQwen2
		case ns[0].Type == "Digits" && ns[0].IndividualDigits && useRegex(bl):
			return PreSmolLM
		}
	}
	return ""
}

// preTokenizerJSON is the tokenizer.json pre_tokenizer for a pre name, as
// the published files of that family have it.
func preTokenizerJSON(pre string) (*jw, error) {
	byteLevel := func(useRegex, trim bool) *jw {
		return obj2("type", "ByteLevel", "add_prefix_space", false, "trim_offsets", trim, "use_regex", useRegex)
	}
	split := func(re string) *jw {
		return obj2("type", "Split", "pattern", obj2("Regex", re), "behavior", "Isolated", "invert", false)
	}
	switch pre {
	case PreLlama3, "llama3", "llama-v3": // llama.cpp's aliases of one pre-tokenizer
		return obj2("type", "Sequence", "pretokenizers", arr(split(regexLlama3), byteLevel(false, true))), nil
	case PreQwen2:
		return obj2("type", "Sequence", "pretokenizers", arr(split(regexQwen2), byteLevel(false, false))), nil
	case PreGPT2:
		return byteLevel(true, true), nil
	case PreSmolLM, "starcoder", "refact": // the same rules in llama.cpp
		return obj2("type", "Sequence", "pretokenizers", arr(obj2("type", "Digits", "individual_digits", true), byteLevel(true, true))), nil
	}
	return nil, &formats.FormatError{Offset: -1, Key: "tokenizer.ggml.pre", Err: ErrUnsupportedTokenizer,
		Detail: fmt.Sprintf("no tokenizer.json pre-tokenizer for %q (known: llama-bpe, qwen2, gpt-2, smollm)", pre)}
}
