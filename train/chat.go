package train

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/vocab"
	"github.com/qtool-dev/qtool/tokenizer"
	"github.com/qtool-dev/qtool/tokenizer/chat"
)

// ChatTemplate returns the template that renders the "messages" samples
// for the model at modelPath. With goFile (--chat-template) it is that Go
// text/template; otherwise it is the model's own Jinja template
// (tokenizer_config.json, chat_template.jinja or chat_template.json of a
// Hugging Face folder; tokenizer.chat_template of a GGUF file) when
// chat.Recognise knows its family. A template it does not know (or a
// model without one) is refused with an error that wraps both
// chat.ErrUnknownTemplate and formats.ErrUnsupported.
func ChatTemplate(modelPath, goFile string) (*chat.Template, error) {
	if goFile != "" {
		b, err := os.ReadFile(goFile)
		if err != nil {
			return nil, err
		}
		t, err := chat.FromGoTemplate(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", goFile, err, formats.ErrFormat)
		}
		return t, nil
	}
	v, err := modelVocab(modelPath)
	if err != nil {
		return nil, err
	}
	special := map[string]string{}
	if v.BOS >= 0 && int(v.BOS) < len(v.Tokens) {
		special["bos_token"] = v.Tokens[v.BOS]
	}
	if v.EOS >= 0 && int(v.EOS) < len(v.Tokens) {
		special["eos_token"] = v.Tokens[v.EOS]
	}
	t, err := chat.Recognise(v.ChatTemplate, special)
	if err != nil {
		if errors.Is(err, chat.ErrUnknownTemplate) {
			hint := ""
			if !strings.Contains(err.Error(), "--chat-template") {
				hint = "; pass --chat-template FILE (a Go text/template)"
			}
			return nil, fmt.Errorf("%s: chat template refused: %w (%w)%s", modelPath, err, formats.ErrUnsupported, hint)
		}
		return nil, err
	}
	return t, nil
}

// modelVocab reads the vocabulary (with its chat template) of a Hugging
// Face folder or a GGUF file.
func modelVocab(path string) (*vocab.Vocab, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return vocab.FromHFFolder(path)
	}
	r, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return vocab.FromMeta(r.Meta())
}

// EncodeChat renders msgs with tpl (no generation prompt) and tokenizes
// the text. The ids are those of tokenizing the whole rendered text (with
// special tokens parsed), preceded by the tokenizer's BOS when the
// vocabulary adds one and the template did not write it.
//
// The mask is mapped from the template's assistant spans (byte offsets) to
// token positions: a span boundary at byte b sits after the tokens that
// the text before b and the whole text share when each is tokenized on
// its own (their longest common prefix). Where b falls on a token
// boundary, as after the header and end-of-turn markers of the Llama 3 and
// ChatML templates, this is exact and the masked tokens are those of the
// span's text; where a token straddles b, the token is counted in the span
// it ends in. With trainOnPrompt the mask covers every token but the BOS.
func EncodeChat(tok *tokenizer.Tokenizer, tpl *chat.Template, msgs []chat.Message, trainOnPrompt bool) ([]int32, []bool, error) {
	text, spans, err := tpl.Render(msgs, false)
	if err != nil {
		return nil, nil, err
	}
	no := false
	opts := tokenizer.EncodeOptions{ParseSpecial: true, AddBOS: &no, AddEOS: &no}
	ids := tok.Encode(text, opts)
	mask := make([]bool, len(ids))
	if trainOnPrompt {
		for i := range mask {
			mask[i] = true
		}
	} else {
		pos := func(b int) int {
			if b >= len(text) {
				return len(ids)
			}
			p := tok.Encode(text[:b], opts)
			n := 0
			for n < len(p) && n < len(ids) && p[n] == ids[n] {
				n++
			}
			return n
		}
		for _, s := range spans {
			for i, end := pos(s.Start), pos(s.End); i < end; i++ {
				mask[i] = true
			}
		}
	}
	if bos := tok.Encode("", tokenizer.EncodeOptions{AddEOS: &no}); len(bos) > 0 && !hasPrefix(ids, bos) {
		ids = append(append([]int32(nil), bos...), ids...)
		mask = append(make([]bool, len(bos)), mask...)
	}
	for i, id := range ids {
		if id == tok.BOS() {
			mask[i] = false
		}
	}
	return ids, mask, nil
}

func hasPrefix(s, p []int32) bool {
	if len(p) > len(s) {
		return false
	}
	for i := range p {
		if s[i] != p[i] {
			return false
		}
	}
	return true
}
