package chat

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecogniseRefuses(t *testing.T) {
	for _, c := range []struct{ name, tpl, want string }{
		{"empty", "  ", "empty"},
		{"zephyr", "{% for m in messages %}<|user|>\n{{ m.content }}</s>{% endfor %}", "<|user|>"},
		{"plain", "{% for m in messages %}{{ m.content }}{% endfor %}", "no known family"},
		{"llama3.1", "<|start_header_id|><|end_header_id|><|eot_id|>{{ bos_token }}Cutting Knowledge Date", "Cutting Knowledge Date"},
		{"mistral-system", "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% endif %}[INST] [/INST]", "system"},
		{"gemma3", "<start_of_turn><end_of_turn>{% set first_user_prefix = '' %}", "Gemma 3"},
		{"chatml-default-system", "<|im_start|>system\nYou are a pirate.<|im_end|>", "built-in system prompt"},
	} {
		_, err := Recognise(c.tpl, map[string]string{"bos_token": "<s>", "eos_token": "</s>"})
		if !errors.Is(err, ErrUnknownTemplate) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrUnknownTemplate naming %q", c.name, err, c.want)
		}
	}
}

func recogniseFile(t *testing.T, file string, special map[string]string) *Template {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "templates", file))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := Recognise(string(data), special)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestRenderErrors(t *testing.T) {
	sp := map[string]string{"bos_token": "<s>", "eos_token": "</s>"}
	mistral := recogniseFile(t, "mistral.jinja", sp)
	if _, _, err := mistral.Render([]Message{{"user", "a"}, {"user", "b"}}, false); err == nil || !strings.Contains(err.Error(), "alternate") {
		t.Errorf("non-alternating roles: %v", err)
	}
	if _, _, err := mistral.Render([]Message{{"system", "a"}, {"user", "b"}}, false); err == nil {
		t.Error("Mistral v0.1 accepted a system message")
	}
	chatml := recogniseFile(t, "chatml.jinja", sp)
	if _, _, err := chatml.Render([]Message{{"tool", "x"}}, false); err == nil || !strings.Contains(err.Error(), `"tool"`) {
		t.Errorf("tool role: %v", err)
	}
}

func TestQwen3Thinking(t *testing.T) {
	tpl := &Template{Family: Qwen3, EndOfTurn: "<|im_end|>"}
	text, spans, err := tpl.Render([]Message{
		{"user", "q1"}, {"assistant", "<think>\nr1\n</think>\n\na1"},
		{"user", "q2"}, {"assistant", "<think>r2</think>a2"},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	// The turn before the last query loses its reasoning; the last keeps it.
	want := "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n" +
		"<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\na2<|im_end|>\n"
	if text != want {
		t.Fatalf("got  %q\nwant %q", text, want)
	}
	if len(spans) != 2 || text[spans[0].Start:spans[0].End] != "a1<|im_end|>" ||
		text[spans[1].Start:spans[1].End] != "<think>\nr2\n</think>\n\na2<|im_end|>" {
		t.Fatalf("spans %+v", spans)
	}
}

func TestFromGoTemplate(t *testing.T) {
	src := `{{range .Messages}}<|{{.Role}}|>
{{if eq .Role "assistant"}}{{assistant (trim .Content) "</s>"}}{{else}}{{.Content}}</s>{{end}}
{{end}}{{if .AddGenerationPrompt}}<|assistant|>
{{end}}`
	tpl, err := FromGoTemplate(src)
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Family != GoText {
		t.Fatalf("family %q", tpl.Family)
	}
	msgs := []Message{{"user", "hi ✓"}, {"assistant", " hello "}, {"user", "bye"}, {"assistant", "ciao"}}
	text, spans, err := tpl.Render(msgs, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|user|>\nhi ✓</s>\n<|assistant|>\nhello</s>\n<|user|>\nbye</s>\n<|assistant|>\nciao</s>\n<|assistant|>\n"
	if text != want {
		t.Fatalf("got  %q\nwant %q", text, want)
	}
	if len(spans) != 2 || text[spans[0].Start:spans[0].End] != "hello</s>" || text[spans[1].Start:spans[1].End] != "ciao</s>" {
		t.Fatalf("spans %+v", spans)
	}
	if _, _, err := tpl.Render([]Message{{"user", "\uFDD0"}}, false); err == nil {
		t.Error("content with a span delimiter accepted")
	}
	if _, err := FromGoTemplate("{{range .Messages}}{{.Content}}{{end}}"); err == nil {
		t.Error("template without assistant accepted")
	}
	if _, err := FromGoTemplate("{{.Nope"); err == nil {
		t.Error("unparsable template accepted")
	}
}
