package chat

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
)

// Span delimiters written by the assistant function and removed after
// execution: Unicode noncharacters, refused in message content.
const (
	spanOpen  = "\uFDD0"
	spanClose = "\uFDD1"
)

type goTemplate struct{ t *template.Template }

// goData is the value a Go chat template executes on.
type goData struct {
	Messages            []Message
	AddGenerationPrompt bool
}

// FromGoTemplate parses a Go text/template chat template (--chat-template
// FILE). It executes on a value with .Messages (each with .Role and
// .Content) and .AddGenerationPrompt. The function assistant returns its
// arguments concatenated and marks them as an assistant span, for example
//
//	{{range .Messages}}<|{{.Role}}|>
//	{{if eq .Role "assistant"}}{{assistant .Content "</s>"}}{{else}}{{.Content}}</s>{{end}}
//	{{end}}{{if .AddGenerationPrompt}}<|assistant|>
//	{{end}}
//
// trim (strings.TrimSpace) is also available.
func FromGoTemplate(text string) (*Template, error) {
	funcs := template.FuncMap{
		"assistant": func(parts ...string) string {
			return spanOpen + strings.Join(parts, "") + spanClose
		},
		"trim": strings.TrimSpace,
	}
	t, err := template.New("chat").Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("chat: Go chat template: %w", err)
	}
	if !strings.Contains(text, "assistant") {
		return nil, errors.New("chat: Go chat template never calls assistant, so no turn would be trained on")
	}
	return &Template{Family: GoText, gotext: &goTemplate{t: t}}, nil
}

func (g *goTemplate) render(msgs []Message, gen bool) (string, []Span, error) {
	for i, m := range msgs {
		if strings.Contains(m.Content, spanOpen) || strings.Contains(m.Content, spanClose) {
			return "", nil, fmt.Errorf("chat: message %d contains a Unicode noncharacter (U+FDD0 or U+FDD1)", i)
		}
	}
	var b strings.Builder
	if err := g.t.Execute(&b, goData{Messages: msgs, AddGenerationPrompt: gen}); err != nil {
		return "", nil, fmt.Errorf("chat: Go chat template: %w", err)
	}
	raw := b.String()
	var out strings.Builder
	var spans []Span
	start := -1
	for len(raw) > 0 {
		i := strings.IndexAny(raw, spanOpen+spanClose)
		if i < 0 {
			out.WriteString(raw)
			break
		}
		out.WriteString(raw[:i])
		if strings.HasPrefix(raw[i:], spanOpen) {
			if start >= 0 {
				return "", nil, errors.New("chat: Go chat template: nested assistant spans")
			}
			start = out.Len()
			raw = raw[i+len(spanOpen):]
		} else {
			if start < 0 {
				return "", nil, errors.New("chat: Go chat template: unbalanced assistant span")
			}
			spans = append(spans, Span{Start: start, End: out.Len(), Role: "assistant"})
			start = -1
			raw = raw[i+len(spanClose):]
		}
	}
	return out.String(), spans, nil
}
