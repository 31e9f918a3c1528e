package cli

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats/safetensors"
)

// patchFolderTensor rewrites the bytes of one tensor of
// dir/model.safetensors in place.
func patchFolderTensor(t *testing.T, dir, name string, edit func([]byte)) {
	t.Helper()
	path := filepath.Join(dir, "model.safetensors")
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ti, ok := r.Tensor(name)
	r.Close()
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(b[ti.Offset : ti.Offset+ti.Size])
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBNBFolderCommands: generate, eval and finetune read a bitsandbytes
// folder (NF4 with double quantization, as `qtool quantize` writes it)
// directly, and give what they give on that folder dequantized to f32
// (`qtool dequantize --dtype f32`, the same weights): the same greedy
// text, the same perplexity and the same fine-tuning losses to float32
// summation order (1e-5 relative). A tiled LLM.int8() layout exits 4, a
// malformed quant_state 3.
func TestBNBFolderCommands(t *testing.T) {
	dir := t.TempDir()
	nf4, f32 := filepath.Join(dir, "nf4"), filepath.Join(dir, "f32")
	for _, argv := range [][]string{
		{"quantize", storiesHF, "-o", nf4, "--type", "nf4", "--double-quant"},
		{"dequantize", nf4, "-o", f32, "--dtype", "f32"},
	} {
		if code, _, errOut := run(t, argv...); code != ExitOK {
			t.Fatalf("%v: exit %d: %s", argv, code, errOut)
		}
	}

	type gen struct {
		IDs  []int32 `json:"ids"`
		Text string  `json:"text"`
	}
	var gens [2]gen
	for i, m := range []string{nf4, f32} {
		code, out, errOut := run(t, "generate", "--model", m, "--prompt", "Once upon a time", "-n", "32", "--json")
		if code != ExitOK {
			t.Fatalf("generate %s: exit %d: %s", m, code, errOut)
		}
		if err := json.Unmarshal([]byte(out), &gens[i]); err != nil {
			t.Fatal(err)
		}
	}
	if len(gens[0].IDs) != 32 || !reflect.DeepEqual(gens[0], gens[1]) {
		t.Errorf("generate on the NF4 folder: %q %v\non the dequantized folder: %q %v", gens[0].Text, gens[0].IDs, gens[1].Text, gens[1].IDs)
	}
	t.Logf("greedy text on both: %q", gens[0].Text)

	var nll [2]float64
	for i, m := range []string{nf4, f32} {
		code, out, errOut := run(t, "eval", "--model", m, "--data", storiesText, "--ctx", "128", "--max-chunks", "8", "--json")
		if code != ExitOK {
			t.Fatalf("eval %s: exit %d: %s", m, code, errOut)
		}
		var doc struct {
			MeanNLL float64 `json:"mean_nll"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		nll[i] = doc.MeanNLL
	}
	if nll[0] <= 0 || math.Abs(nll[0]-nll[1]) > 1e-5*nll[1] {
		t.Errorf("eval mean NLL %.9f on the NF4 folder, %.9f dequantized", nll[0], nll[1])
	}

	var losses [2][]float64
	var mapped [2]int64
	for i, m := range []string{nf4, f32} {
		code, out, errOut := run(t, "finetune", "--model", m, "--data", shakespeareData, "-o", filepath.Join(dir, "lora"+m[len(m)-3:]),
			"--max-steps", "2", "--seq-len", "32", "--seed", "3", "--json", "-t", "1")
		if code != ExitOK {
			t.Fatalf("finetune %s: exit %d: %s", m, code, errOut)
		}
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var line struct {
				Loss *float64 `json:"loss"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Loss != nil {
				losses[i] = append(losses[i], *line.Loss)
			}
		}
		code, out, errOut = run(t, "finetune", "--model", m, "--data", shakespeareData, "--dry-run", "--json")
		if code != ExitOK {
			t.Fatalf("finetune --dry-run %s: exit %d: %s", m, code, errOut)
		}
		var plan struct {
			Mapped int64 `json:"mapped_weight_bytes"`
		}
		json.Unmarshal([]byte(out), &plan)
		mapped[i] = plan.Mapped
	}
	if len(losses[0]) != 2 || len(losses[1]) != 2 {
		t.Fatalf("step losses %v and %v", losses[0], losses[1])
	}
	for s := range losses[0] {
		if math.Abs(losses[0][s]-losses[1][s]) > 1e-5*losses[1][s] {
			t.Errorf("finetune step %d: loss %.9f on the NF4 folder, %.9f dequantized", s+1, losses[0][s], losses[1][s])
		}
	}
	if mapped[0] <= 0 || mapped[0] >= mapped[1]/2 {
		t.Errorf("mapped weight bytes: %d for the NF4 folder, %d dequantized", mapped[0], mapped[1])
	}

	tiled := filepath.Join(dir, "int8")
	if code, _, errOut := run(t, "quantize", storiesHF, "-o", tiled, "--type", "int8"); code != ExitOK {
		t.Fatalf("quantize int8: exit %d: %s", code, errOut)
	}
	patchFolderTensor(t, tiled, "model.layers.0.self_attn.q_proj.weight_format", func(b []byte) { b[0] = 1 })
	if code, _, errOut := run(t, "generate", "--model", tiled, "--prompt", "Once", "-n", "4"); code != ExitUnsupported {
		t.Errorf("generate on a col32 LLM.int8() folder: exit %d, want %d: %s", code, ExitUnsupported, errOut)
	}
	patchFolderTensor(t, nf4, "model.layers.2.mlp.up_proj.weight.quant_state.bitsandbytes__nf4", func(b []byte) {
		i := strings.Index(string(b), `"blocksize": 64`)
		copy(b[i:], `"blocksize": 32`)
	})
	for _, argv := range [][]string{
		{"generate", "--model", nf4, "--prompt", "Once", "-n", "4"},
		{"eval", "--model", nf4, "--data", storiesText, "--max-chunks", "1"},
		{"finetune", "--model", nf4, "--data", shakespeareData, "--dry-run"},
	} {
		if code, _, errOut := run(t, argv...); code != ExitBadInput {
			t.Errorf("%s on a malformed NF4 folder: exit %d, want %d: %s", argv[0], code, ExitBadInput, errOut)
		}
	}
}
