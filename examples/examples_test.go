package examples_test

// These tests build qtool, run every script in this folder and the demo
// (scripts/demo.sh) the way a user would, and check what they promise:
// exit codes, JSON summaries, and output files that qtool inspect accepts.
// They need bash and python3 (the scripts parse qtool's --json with it) and
// skip without them.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var (
	qtool string // the binary built by TestMain
	root  = ".." // the repository root, seen from this folder
)

var (
	gguf        = filepath.Join(root, "fixtures", "stories260K", "stories260K.gguf")
	hfFolder    = filepath.Join(root, "fixtures", "stories260K-hf")
	shakespeare = filepath.Join(root, "train", "testdata", "shakespeare-30k.txt")
	tinystories = filepath.Join(root, "llama", "testdata", "tinystories-head-24k.txt")
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "qtool-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	qtool = filepath.Join(dir, "qtool")
	cmd := exec.Command("go", "build", "-o", qtool, "./cmd/qtool")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building qtool:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"bash", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: the example scripts need it", tool)
		}
	}
}

// run executes a command with QTOOL pointing at the built binary and returns
// its exit code, stdout and stderr.
func run(t *testing.T, env []string, name string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(append(os.Environ(), "QTOOL="+qtool), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: %v", name, err)
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

func script(t *testing.T, env []string, name string, args ...string) (int, string, string) {
	t.Helper()
	needTools(t)
	return run(t, env, "bash", append([]string{name}, args...)...)
}

// inspectOK checks that path exists and qtool inspect reads it.
func inspectOK(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Error(err)
		return
	}
	code, out, errOut := run(t, nil, qtool, "inspect", path, "--json")
	var d struct {
		Totals struct {
			Bytes int64 `json:"bytes"`
		} `json:"totals"`
	}
	if code != 0 {
		t.Errorf("qtool inspect %s: exit %d: %s", path, code, errOut)
	} else if err := json.Unmarshal([]byte(out), &d); err != nil || d.Totals.Bytes <= 0 {
		t.Errorf("qtool inspect %s --json: %v, totals %+v", path, err, d.Totals)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type quantRow struct {
	Type         string  `json:"type"`
	OK           bool    `json:"ok"`
	Output       string  `json:"output"`
	ExitCode     int     `json:"exit_code"`
	BitsPerParam float64 `json:"bits_per_param"`
	MaxRMSE      float64 `json:"max_rmse"`
}

func TestQuantizeTable(t *testing.T) {
	t.Run("gguf", func(t *testing.T) {
		dir := t.TempDir()
		code, out, errOut := script(t, nil, "quantize-table.sh", gguf, dir, "q8_0", "q4_0", "nf4")
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		t.Logf("\n%s", out)
		var rows []quantRow
		readJSON(t, filepath.Join(dir, "summary.json"), &rows)
		if len(rows) != 3 {
			t.Fatalf("%d rows, want 3: %+v", len(rows), rows)
		}
		q8, q4, nf4 := rows[0], rows[1], rows[2]
		if !q8.OK || !q4.OK || !(q4.BitsPerParam < q8.BitsPerParam && q8.BitsPerParam < 32) {
			t.Errorf("q8_0 %+v, q4_0 %+v: want both written, q4_0 smaller", q8, q4)
		}
		if !(q4.MaxRMSE > q8.MaxRMSE && q8.MaxRMSE > 0) {
			t.Errorf("RMSE: q8_0 %g, q4_0 %g", q8.MaxRMSE, q4.MaxRMSE)
		}
		if nf4.OK || nf4.ExitCode != 4 || !strings.Contains(out, "nf4      skipped (exit 4)") {
			t.Errorf("nf4 into GGUF: %+v, want skipped with exit 4", nf4)
		}
		for _, r := range rows[:2] {
			inspectOK(t, r.Output)
		}
	})
	t.Run("hf-folder", func(t *testing.T) {
		dir := t.TempDir()
		code, out, errOut := script(t, nil, "quantize-table.sh", hfFolder, dir, "nf4+dq", "int8")
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		var rows []quantRow
		readJSON(t, filepath.Join(dir, "summary.json"), &rows)
		if len(rows) != 2 || !rows[0].OK || !rows[1].OK {
			t.Fatalf("rows %+v", rows)
		}
		for _, r := range rows {
			inspectOK(t, r.Output)
		}
		var cfg struct {
			Q map[string]any `json:"quantization_config"`
		}
		readJSON(t, filepath.Join(rows[0].Output, "config.json"), &cfg)
		if cfg.Q["bnb_4bit_quant_type"] != "nf4" || cfg.Q["bnb_4bit_use_double_quant"] != true {
			t.Errorf("nf4+dq quantization_config %v", cfg.Q)
		}
	})
	t.Run("errors", func(t *testing.T) {
		dir := t.TempDir()
		if code, _, _ := script(t, nil, "quantize-table.sh", gguf); code != 2 {
			t.Errorf("missing OUTDIR: exit %d, want 2", code)
		}
		code, _, errOut := script(t, nil, "quantize-table.sh", filepath.Join(dir, "none.gguf"), dir, "q8_0")
		if code != 3 || !strings.Contains(errOut, "exit 3") {
			t.Errorf("missing model: exit %d, want 3: %s", code, errOut)
		}
	})
}

func TestPerplexitySweep(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := script(t, []string{"CTX=128", "CHUNKS=20"}, "perplexity-sweep.sh", gguf, tinystories, dir, "q8_0", "q4_0")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("\n%s", out)
	type row struct {
		Type       string  `json:"type"`
		Bytes      int64   `json:"bytes"`
		MeanNLL    float64 `json:"mean_nll"`
		Perplexity float64 `json:"perplexity"`
	}
	f, err := os.Open(filepath.Join(dir, "results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		rows = append(rows, r)
	}
	if len(rows) != 3 || rows[0].Type != "base" || rows[1].Type != "q8_0" || rows[2].Type != "q4_0" {
		t.Fatalf("rows %+v", rows)
	}
	// The script's defaults (128-token windows, 20 of them) are the settings
	// of the llama-perplexity reference for the base model.
	var ref struct {
		Results []struct {
			Model string  `json:"model"`
			PPL   float64 `json:"ppl"`
		} `json:"results"`
	}
	readJSON(t, filepath.Join(root, "llama", "testdata", "perplexity.json"), &ref)
	if ref.Results[0].Model != "base:stories260K.gguf" || math.Abs(rows[0].Perplexity-ref.Results[0].PPL) > 1e-3 {
		t.Errorf("base perplexity %.5f, llama-perplexity %+v", rows[0].Perplexity, ref.Results[0])
	}
	base, q8, q4 := rows[0], rows[1], rows[2]
	if math.Abs(q8.MeanNLL-base.MeanNLL) > 0.02 || !(q4.MeanNLL > q8.MeanNLL) {
		t.Errorf("mean NLL: base %.4f, q8_0 %.4f, q4_0 %.4f", base.MeanNLL, q8.MeanNLL, q4.MeanNLL)
	}
	if !(q4.Bytes < q8.Bytes && q8.Bytes < base.Bytes) {
		t.Errorf("bytes: base %d, q8_0 %d, q4_0 %d", base.Bytes, q8.Bytes, q4.Bytes)
	}
	for _, q := range []string{"q8_0", "q4_0"} {
		inspectOK(t, filepath.Join(dir, q+".gguf"))
	}
}

func TestAdapterPipeline(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	adapter := filepath.Join(dir, "lora")
	if code, _, errOut := run(t, nil, qtool, "finetune", "--model", gguf, "--data", shakespeare, "-o", adapter,
		"--max-steps", "8", "--seq-len", "64", "--batch", "2", "--lr", "3e-3", "--seed", "1", "-t", "2", "-q"); code != 0 {
		t.Fatalf("finetune: exit %d: %s", code, errOut)
	}
	for _, base := range []string{gguf, hfFolder} {
		t.Run(filepath.Base(base), func(t *testing.T) {
			out := t.TempDir()
			code, stdout, errOut := script(t, nil, "adapter-pipeline.sh", base, adapter, out, tinystories)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, stdout, errOut)
			}
			if !strings.Contains(stdout, "perplexity check:") || !strings.Contains(stdout, "ok: ") {
				t.Errorf("stdout:\n%s", stdout)
			}
			for _, f := range []string{"adapter.gguf", "merged-f16.gguf"} {
				inspectOK(t, filepath.Join(out, f))
			}
			code, lint, _ := run(t, nil, qtool, "lint-adapter", "--model", gguf, "--adapter", filepath.Join(out, "adapter.gguf"), "--json")
			if code != 0 || !strings.Contains(lint, `"ok": true`) {
				t.Errorf("lint of adapter.gguf: exit %d\n%s", code, lint)
			}
		})
	}
	t.Run("bad-rank", func(t *testing.T) {
		// An adapter_config.json whose r disagrees with the factors: the lint
		// fails, the script stops there with exit 3 and names the problem.
		bad := filepath.Join(t.TempDir(), "lora")
		os.MkdirAll(bad, 0o755)
		for _, f := range []string{"adapter_config.json", "adapter_model.safetensors"} {
			b, err := os.ReadFile(filepath.Join(adapter, f))
			if err != nil {
				t.Fatal(err)
			}
			if f == "adapter_config.json" {
				var cfg map[string]any
				if err := json.Unmarshal(b, &cfg); err != nil {
					t.Fatal(err)
				}
				cfg["r"] = 4
				b, _ = json.Marshal(cfg)
			}
			os.WriteFile(filepath.Join(bad, f), b, 0o644)
		}
		out := t.TempDir()
		code, _, errOut := script(t, nil, "adapter-pipeline.sh", gguf, bad, out)
		if code != 3 || !strings.Contains(errOut, "exit 3 (bad input)") || !strings.Contains(errOut, "rank mismatch") {
			t.Errorf("exit %d, want 3 with the lint problem: %s", code, errOut)
		}
		if _, err := os.Stat(filepath.Join(out, "merged-f16.gguf")); err == nil {
			t.Error("a merged model was written for an adapter that failed the lint")
		}
	})
	t.Run("missing", func(t *testing.T) {
		code, _, errOut := script(t, nil, "adapter-pipeline.sh", gguf, filepath.Join(dir, "none"), t.TempDir())
		if code != 3 {
			t.Errorf("missing adapter: exit %d, want 3: %s", code, errOut)
		}
	})
}

// TestDemo runs `make demo`'s script end to end and checks, independently of
// the demo's own checks, its key outcomes and that it shows the QLoRA story's
// commands in order.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo fine-tunes for a few seconds")
	}
	needTools(t)
	out := t.TempDir()
	code, stdout, errOut := run(t, []string{"DEMO_DIR=" + out}, "bash", filepath.Join(root, "scripts", "demo.sh"), qtool)
	if code != 0 || !strings.Contains(stdout, "demo: ok") || strings.Contains(stdout, "FAIL") {
		t.Fatalf("demo: exit %d\n%s\n%s", code, stdout, errOut)
	}

	// Every step prints the command it runs, without the binary's path, and
	// the story comes in this order.
	var cmds []string
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "$ ") {
			if strings.Contains(line, qtool) {
				t.Errorf("shown command keeps the binary's path: %s", line)
			}
			if f := strings.Fields(line); len(f) > 2 && f[1] == "qtool" {
				cmds = append(cmds, f[2])
			}
		}
	}
	want := []string{"inspect", "convert", "quantize", "finetune", "generate", "merge-adapter", "eval", "convert-adapter", "lint-adapter"}
	i := 0
	for _, c := range cmds {
		if i < len(want) && c == want[i] {
			i++
		}
	}
	if i != len(want) {
		t.Errorf("demo commands %v do not show %v in order", cmds, want)
	}

	for _, p := range []string{"stories260K-hf", "stories260K-nf4", "qlora", "merged-f16.gguf", "merged-nf4", "qlora.gguf"} {
		inspectOK(t, filepath.Join(out, p))
	}
	nll := func(name string) float64 {
		var d struct {
			MeanNLL float64 `json:"mean_nll"`
			Tokens  int     `json:"tokens"`
		}
		readJSON(t, filepath.Join(out, "eval", name+".json"), &d)
		if d.Tokens <= 0 || d.MeanNLL <= 0 {
			t.Errorf("%s: %+v", name, d)
		}
		return d.MeanNLL
	}
	base, adapted, merged := nll("base-f32"), nll("base-f32+qlora"), nll("merged-f16")
	if !(adapted < base-0.5) {
		t.Errorf("held-out NLL: base %.4f, with the adapter %.4f: want a drop of over 0.5", base, adapted)
	}
	if d := math.Abs(merged - adapted); d > 1e-4 {
		t.Errorf("merged f16 NLL %.6f vs base+adapter %.6f: |Δ| %.2e > 1e-4", merged, adapted, d)
	}
	if nf4, mq := nll("base-nf4"), nll("merged-nf4"); !(mq < nf4) {
		t.Errorf("re-quantized merge %.4f does not beat the NF4 base %.4f", mq, nf4)
	}
	code, lint, _ := run(t, nil, qtool, "lint-adapter", "--model", gguf, "--adapter", filepath.Join(out, "qlora.gguf"), "--json")
	var l struct {
		OK       bool `json:"ok"`
		Errors   int  `json:"errors"`
		Warnings int  `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(lint), &l); code != 0 || err != nil || !l.OK || l.Errors != 0 || l.Warnings != 0 {
		t.Errorf("lint of the GGUF adapter: exit %d, %+v, %v", code, l, err)
	}
}
