package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var (
	storiesText = filepath.Join("..", "..", "..", "llama", "testdata", "tinystories-head-24k.txt")
)

// TestGenerateGreedyJSON: llama.cpp's greedy ids on stories260K, from the
// GGUF and the HF folder, with the prompt in one forward pass and in
// batches of 1 and 3 tokens (--batch; the KV cache carries the rest).
func TestGenerateGreedyJSON(t *testing.T) {
	want := []int32{432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337}
	type tc struct{ model, batch string }
	for _, c := range []tc{{stories, "512"}, {storiesHF, "512"}, {stories, "1"}, {storiesHF, "3"}} {
		model := c.model
		code, out, errOut := run(t, "generate", "--model", model, "--prompt", "Once upon a time", "-n", "16", "--json", "--batch", c.batch)
		if code != ExitOK {
			t.Fatalf("%s: exit %d: %s", model, code, errOut)
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"prompt_ids", "ids", "text", "tokens", "tokens_per_s", "prompt_tokens_per_s", "generation_seconds"} {
			if _, ok := doc[k]; !ok {
				t.Errorf("--json lacks %q", k)
			}
		}
		var got struct {
			IDs  []int32 `json:"ids"`
			Text string  `json:"text"`
		}
		json.Unmarshal([]byte(out), &got)
		if !reflect.DeepEqual(got.IDs, want) {
			t.Errorf("%s --batch %s: ids %v, want %v", model, c.batch, got.IDs, want)
		}
		if got.Text != ", there was a little girl named Lily. She loved to play" {
			t.Errorf("%s --batch %s: text %q", model, c.batch, got.Text)
		}
	}
	if code, _, _ := run(t, "generate", "--model", stories, "--prompt", "x", "--batch", "0"); code != ExitUsage {
		t.Errorf("--batch 0: exit %d, want %d", code, ExitUsage)
	}
}

func TestGenerateStreamsAndSeeds(t *testing.T) {
	code, out, _ := run(t, "generate", "--model", stories, "--prompt", "Once upon a time", "-n", "8", "--temp", "0")
	if code != ExitOK || out != ", there was a little girl\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	args := []string{"generate", "--model", stories, "--prompt", "Once", "-n", "24", "--temp", "1", "--top-k", "20", "--top-p", "0.9", "--seed", "7", "--json"}
	_, a, _ := run(t, args...)
	_, b, _ := run(t, args...)
	var da, db struct{ IDs []int32 }
	json.Unmarshal([]byte(a), &da)
	json.Unmarshal([]byte(b), &db)
	if len(da.IDs) == 0 || !reflect.DeepEqual(da.IDs, db.IDs) {
		t.Errorf("same seed gave %v and %v", da.IDs, db.IDs)
	}
}

func TestGenerateWithAdapter(t *testing.T) {
	want := []int32{432, 261, 376, 298, 315, 421, 395, 317}
	code, out, errOut := run(t, "generate", "--model", storiesHF, "--adapter", peftGolden, "--prompt", "Once upon a time", "-n", "8", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct{ IDs []int32 }
	json.Unmarshal([]byte(out), &got)
	if !reflect.DeepEqual(got.IDs, want) {
		t.Errorf("ids %v, want %v", got.IDs, want)
	}
}

func TestEvalJSON(t *testing.T) {
	code, out, errOut := run(t, "eval", "--model", stories, "--data", storiesText, "--ctx", "128", "--max-chunks", "20", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		MeanNLL    *float64 `json:"mean_nll"`
		Perplexity *float64 `json:"perplexity"`
		Tokens     *int     `json:"tokens"`
		TokensPerS *float64 `json:"tokens_per_s"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.MeanNLL == nil || doc.Perplexity == nil || doc.Tokens == nil || doc.TokensPerS == nil {
		t.Fatalf("--json %s (%v)", out, err)
	}
	if *doc.Tokens != 1260 || *doc.Perplexity < 4.364 || *doc.Perplexity > 4.368 {
		t.Errorf("tokens %d, perplexity %.4f (llama-perplexity: 1260, 4.3660)", *doc.Tokens, *doc.Perplexity)
	}
}

func TestInferExitCodes(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.bin")
	os.WriteFile(garbage, []byte("this is not a model file at all"), 0o644)
	short := filepath.Join(dir, "short.txt")
	os.WriteFile(short, []byte("Once upon a time"), 0o644)
	badJSONL := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(badJSONL, []byte("{\"x\": 1}\n"), 0o644)
	cases := []struct {
		args []string
		want ExitCode
	}{
		{[]string{"eval", "--data", storiesText}, ExitUsage},
		{[]string{"eval", "--model", stories}, ExitUsage},
		{[]string{"eval", "--model", stories, "--data", storiesText, "--ctx", "-1"}, ExitUsage},
		{[]string{"generate", "--prompt", "x"}, ExitUsage},
		{[]string{"generate", "--model", stories, "--top-p", "2"}, ExitUsage},
		{[]string{"generate", "--model", filepath.Join(dir, "missing.gguf"), "--prompt", "x"}, ExitBadInput},
		{[]string{"generate", "--model", garbage, "--prompt", "x"}, ExitUnsupported},
		{[]string{"eval", "--model", stories, "--data", filepath.Join(dir, "missing.txt")}, ExitBadInput},
		{[]string{"eval", "--model", stories, "--data", short, "--ctx", "128"}, ExitBadInput},
		{[]string{"eval", "--model", stories, "--data", badJSONL}, ExitBadInput},
		{[]string{"generate", "--model", stories, "--adapter", filepath.Join(dir, "nope"), "--prompt", "x"}, ExitBadInput},
	}
	for _, c := range cases {
		if code, _, errOut := run(t, c.args...); code != c.want {
			t.Errorf("%v: exit %d, want %d (%s)", c.args, code, c.want, errOut)
		}
	}
}
