package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
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
