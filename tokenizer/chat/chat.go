// Package chat renders chat conversations with a model's chat template.
//
// The Jinja templates that Hugging Face models ship (tokenizer_config.json
// chat_template, GGUF tokenizer.chat_template) are not executed: Recognise
// identifies the template family from its distinctive markers and Render
// reproduces that family's output natively. Templates outside the known
// families (and known variants whose output this package does not
// reproduce) are refused with an error wrapping ErrUnknownTemplate;
// FromGoTemplate takes a Go text/template instead.
//
// Render also reports, for each assistant message, the byte span of its
// content plus the family's end-of-turn marker in the rendered text, so a
// trainer can put loss on assistant turns only.
package chat

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownTemplate is wrapped by the errors of Recognise for templates it
// does not render natively.
var ErrUnknownTemplate = errors.New("chat: unknown chat template")

// Message is one turn of a conversation; Role is "system", "user" or
// "assistant".
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Span is a byte range [Start, End) of the rendered text, the output of
// one assistant message.
type Span struct {
	Start, End int
	Role       string
}

// Families rendered natively.
const (
	Llama3  = "llama3"
	ChatML  = "chatml"
	Qwen3   = "qwen3"
	Mistral = "mistral"
	Llama2  = "llama2"
	Gemma   = "gemma"
	GoText  = "gotemplate"
)

// Template renders conversations in one template family.
type Template struct {
	// Family is one of the family constants above.
	Family string
	// EndOfTurn is the text that closes an assistant turn (included in its
	// span): "<|eot_id|>", "<|im_end|>", "<end_of_turn>", the EOS token, …
	// Empty for Go templates.
	EndOfTurn string

	bos, eos      string
	alwaysPrompt  bool   // llama3: the original template appends the assistant header unconditionally
	defaultSystem string // chatml: system prompt used when the conversation has none
	gotext        *goTemplate
}

// Recognise identifies the family of a Jinja chat template. special holds
// the tokenizer's special tokens by their tokenizer_config.json names
// (bos_token, eos_token).
func Recognise(jinja string, special map[string]string) (*Template, error) {
	bos, eos := special["bos_token"], special["eos_token"]
	has := func(s ...string) bool {
		for _, x := range s {
			if !strings.Contains(jinja, x) {
				return false
			}
		}
		return true
	}
	refuse := func(what string) (*Template, error) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTemplate, what)
	}
	if strings.TrimSpace(jinja) == "" {
		return refuse("the template is empty (use --chat-template FILE)")
	}
	// Tool definitions, default system prompts with dates, and the like
	// change the output in ways the native renderers do not reproduce.
	for _, x := range []string{"Cutting Knowledge Date", "[AVAILABLE_TOOLS]", "[SYSTEM_PROMPT]", "<|python_tag|>"} {
		if has(x) {
			return refuse(fmt.Sprintf("a template variant with %q (tools or dated system prompts), not rendered natively", x))
		}
	}
	switch {
	case has("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"):
		if !has("bos_token") {
			return refuse("a Llama 3 style template (<|start_header_id|>) that does not emit bos_token")
		}
		return &Template{Family: Llama3, EndOfTurn: "<|eot_id|>", bos: bos, eos: eos,
			alwaysPrompt: !has("add_generation_prompt")}, nil
	case has("<|im_start|>", "<|im_end|>"):
		if has("<think>") || has("</think>") {
			if !has("last_query_index") {
				return refuse("a ChatML template with <think> handling other than Qwen3's")
			}
			return &Template{Family: Qwen3, EndOfTurn: "<|im_end|>", bos: bos, eos: eos}, nil
		}
		t := &Template{Family: ChatML, EndOfTurn: "<|im_end|>", bos: bos, eos: eos}
		if d := qwenDefaultSystem; has(d) {
			t.defaultSystem = d
		} else if has("You are ") {
			return refuse("a ChatML template with a built-in system prompt")
		}
		return t, nil
	case has("<start_of_turn>", "<end_of_turn>"):
		if has("first_user_prefix") || has("image") {
			return refuse("a Gemma 3 style template (system folded into the first turn, images)")
		}
		return &Template{Family: Gemma, EndOfTurn: "<end_of_turn>", bos: bos, eos: eos}, nil
	case has("[INST]", "[/INST]", "<<SYS>>"):
		if bos == "" || eos == "" {
			return refuse("a Llama 2 template (<<SYS>>) without bos_token and eos_token")
		}
		return &Template{Family: Llama2, EndOfTurn: " " + eos, bos: bos, eos: eos}, nil
	case has("[INST]", "[/INST]"):
		if has("system") {
			return refuse("a Mistral template ([INST]) with system-message handling, not rendered natively")
		}
		if eos == "" {
			return refuse("a Mistral template ([INST]) without eos_token")
		}
		return &Template{Family: Mistral, EndOfTurn: eos, bos: bos, eos: eos}, nil
	}
	var seen []string
	for _, m := range []string{"<|im_start|>", "<|start_header_id|>", "[INST]", "<start_of_turn>", "<|user|>", "<|assistant|>", "<|system|>", "### Instruction", "USER:", "<|start|>", "<|turn>"} {
		if has(m) {
			seen = append(seen, m)
		}
	}
	if len(seen) > 0 {
		return refuse(fmt.Sprintf("markers %s match no supported family (Llama 3, ChatML/Qwen, Mistral, Gemma, Llama 2)", strings.Join(seen, " ")))
	}
	head := jinja
	if len(head) > 60 {
		head = head[:60] + "…"
	}
	return refuse(fmt.Sprintf("no known family's markers in %q", head))
}

const qwenDefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

// renderer accumulates text and spans.
type renderer struct {
	b     strings.Builder
	spans []Span
}

func (r *renderer) add(s ...string) {
	for _, x := range s {
		r.b.WriteString(x)
	}
}

// assistant writes s as the output of an assistant turn.
func (r *renderer) assistant(s ...string) {
	start := r.b.Len()
	r.add(s...)
	r.spans = append(r.spans, Span{Start: start, End: r.b.Len(), Role: "assistant"})
}

// Render renders msgs and, with addGenerationPrompt, the header of the next
// assistant turn. The spans mark each assistant message's output (its
// content and EndOfTurn) in the text, as byte offsets.
func (t *Template) Render(msgs []Message, addGenerationPrompt bool) (string, []Span, error) {
	if t.gotext != nil {
		return t.gotext.render(msgs, addGenerationPrompt)
	}
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return "", nil, fmt.Errorf("chat: message %d: role %q is not supported (system, user, assistant)", i, m.Role)
		}
	}
	var r renderer
	var err error
	switch t.Family {
	case Llama3:
		t.llama3(&r, msgs, addGenerationPrompt)
	case ChatML:
		t.chatml(&r, msgs, addGenerationPrompt)
	case Qwen3:
		t.qwen3(&r, msgs, addGenerationPrompt)
	case Gemma:
		err = t.gemma(&r, msgs, addGenerationPrompt)
	case Llama2:
		err = t.llama2(&r, msgs, addGenerationPrompt)
	case Mistral:
		err = t.mistral(&r, msgs, addGenerationPrompt)
	default:
		err = fmt.Errorf("%w: family %q", ErrUnknownTemplate, t.Family)
	}
	if err != nil {
		return "", nil, err
	}
	return r.b.String(), r.spans, nil
}

// jinjaTrim is Jinja's trim / Python's str.strip() on whitespace.
func jinjaTrim(s string) string { return strings.TrimSpace(s) }

func (t *Template) llama3(r *renderer, msgs []Message, gen bool) {
	for i, m := range msgs {
		if i == 0 {
			r.add(t.bos)
		}
		r.add("<|start_header_id|>", m.Role, "<|end_header_id|>\n\n")
		if m.Role == "assistant" {
			r.assistant(jinjaTrim(m.Content), "<|eot_id|>")
		} else {
			r.add(jinjaTrim(m.Content), "<|eot_id|>")
		}
	}
	if gen || t.alwaysPrompt {
		r.add("<|start_header_id|>assistant<|end_header_id|>\n\n")
	}
}

func (t *Template) chatml(r *renderer, msgs []Message, gen bool) {
	if t.defaultSystem != "" && (len(msgs) == 0 || msgs[0].Role != "system") {
		r.add("<|im_start|>system\n", t.defaultSystem, "<|im_end|>\n")
	}
	for _, m := range msgs {
		r.add("<|im_start|>", m.Role, "\n")
		if m.Role == "assistant" {
			r.assistant(m.Content, "<|im_end|>")
		} else {
			r.add(m.Content, "<|im_end|>")
		}
		r.add("\n")
	}
	if gen {
		r.add("<|im_start|>assistant\n")
	}
}

// qwen3 follows the Qwen3 template: the assistant turns after the last
// user query carry a <think> block (empty when the content has none) when
// they are the last message or have reasoning.
func (t *Template) qwen3(r *renderer, msgs []Message, gen bool) {
	if len(msgs) > 0 && msgs[0].Role == "system" {
		r.add("<|im_start|>system\n", msgs[0].Content, "<|im_end|>\n")
	}
	lastQuery := len(msgs) - 1
	for i := len(msgs) - 1; i >= 0; i-- {
		c := msgs[i].Content
		if msgs[i].Role == "user" && !(strings.HasPrefix(c, "<tool_response>") && strings.HasSuffix(c, "</tool_response>")) {
			lastQuery = i
			break
		}
	}
	for i, m := range msgs {
		switch {
		case m.Role == "user" || (m.Role == "system" && i > 0):
			r.add("<|im_start|>", m.Role, "\n", m.Content, "<|im_end|>\n")
		case m.Role == "assistant":
			content, reasoning := m.Content, ""
			if k := strings.LastIndex(m.Content, "</think>"); k >= 0 {
				content = strings.TrimLeft(m.Content[k+len("</think>"):], "\n")
				before := strings.TrimRight(m.Content[:strings.Index(m.Content, "</think>")], "\n")
				if j := strings.LastIndex(before, "<think>"); j >= 0 {
					before = before[j+len("<think>"):]
				}
				reasoning = strings.TrimLeft(before, "\n")
			}
			r.add("<|im_start|>assistant\n")
			if i > lastQuery && (i == len(msgs)-1 || reasoning != "") {
				r.assistant("<think>\n", strings.Trim(reasoning, "\n"), "\n</think>\n\n", strings.TrimLeft(content, "\n"), "<|im_end|>")
			} else {
				r.assistant(content, "<|im_end|>")
			}
			r.add("\n")
		}
	}
	if gen {
		r.add("<|im_start|>assistant\n")
	}
}

// alternate checks that msgs alternate user/assistant starting with user,
// as the Llama 2, Mistral and Gemma templates require.
func alternate(msgs []Message) error {
	for i, m := range msgs {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if m.Role != want {
			return fmt.Errorf("chat: message %d has role %q: conversation roles must alternate user/assistant/user/assistant/...", i, m.Role)
		}
	}
	return nil
}

func (t *Template) gemma(r *renderer, msgs []Message, gen bool) error {
	if len(msgs) > 0 && msgs[0].Role == "system" {
		return errors.New("chat: the Gemma template does not support the system role")
	}
	if err := alternate(msgs); err != nil {
		return err
	}
	r.add(t.bos)
	for _, m := range msgs {
		if m.Role == "assistant" {
			r.add("<start_of_turn>model\n")
			r.assistant(jinjaTrim(m.Content), "<end_of_turn>")
		} else {
			r.add("<start_of_turn>", m.Role, "\n", jinjaTrim(m.Content), "<end_of_turn>")
		}
		r.add("\n")
	}
	if gen {
		r.add("<start_of_turn>model\n")
	}
	return nil
}

// llama2 follows the Llama 2 chat template: a system message goes, inside
// <<SYS>> markers, at the start of the first user turn.
func (t *Template) llama2(r *renderer, msgs []Message, gen bool) error {
	system, hasSystem := "", false
	if len(msgs) > 0 && msgs[0].Role == "system" {
		system, hasSystem, msgs = msgs[0].Content, true, msgs[1:]
	}
	if err := alternate(msgs); err != nil {
		return err
	}
	for i, m := range msgs {
		content := m.Content
		if i == 0 && hasSystem {
			content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content
		}
		if m.Role == "user" {
			r.add(t.bos, "[INST] ", jinjaTrim(content), " [/INST]")
		} else {
			r.add(" ")
			r.assistant(jinjaTrim(content), " ", t.eos)
		}
	}
	_ = gen // the Llama 2 template has no generation prompt: "[/INST]" ends the prompt
	return nil
}

// mistral follows the Mistral Instruct v0.1 template (no system role).
func (t *Template) mistral(r *renderer, msgs []Message, gen bool) error {
	if len(msgs) > 0 && msgs[0].Role == "system" {
		return errors.New("chat: this Mistral template does not support the system role")
	}
	if err := alternate(msgs); err != nil {
		return err
	}
	r.add(t.bos)
	for _, m := range msgs {
		if m.Role == "user" {
			r.add("[INST] ", m.Content, " [/INST]")
		} else {
			r.assistant(m.Content, t.eos)
		}
	}
	_ = gen
	return nil
}
