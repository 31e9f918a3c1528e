package train

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/quantize"
)

// python is the interpreter Debian's python3-torch installs into.
const python = "/usr/bin/python3"

// needTorch skips the test when PyTorch is not importable, unless CI is
// set (.ci/run installs python3-torch), where it fails.
func needTorch(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import torch, numpy").Run(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("PyTorch unavailable (%v): apt-get install python3-torch", err)
		}
		t.Fatalf("PyTorch unavailable under CI: %v", err)
	}
}

// writeNPY writes x as a float64 .npy file (format 1.0, C order).
func writeNPY(t *testing.T, path string, x []float32, shape ...int) {
	t.Helper()
	dims := make([]string, len(shape))
	for i, s := range shape {
		dims[i] = fmt.Sprint(s)
	}
	sh := strings.Join(dims, ", ")
	if len(shape) == 1 {
		sh += ","
	}
	hdr := fmt.Sprintf("{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }", sh)
	// magic (6) + version (2) + header length (2) + header, padded with
	// spaces to a multiple of 64 and ended by a newline.
	pad := 64 - (10+len(hdr)+1)%64
	if pad == 64 {
		pad = 0
	}
	hdr += strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	for _, v := range x {
		binary.Write(&b, binary.LittleEndian, float64(v))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dumpForTorch writes the trainer's model (frozen weights dequantized from
// their stored type, in stored row order), adapters and window for
// testdata/torch_ref.py.
func dumpForTorch(t *testing.T, tr *Trainer, w Window, hf bool) string {
	t.Helper()
	dir := t.TempDir()
	m, c := tr.Model, &tr.Model.Cfg
	if c.RopeScaling != "" && c.RopeScaling != "none" {
		t.Fatalf("rope scaling %q: the reference does not implement it", c.RopeScaling)
	}
	mat := func(name string, w interface {
		Rows() int
		Cols() int
		Tile([]float32, int, int, int, int)
	}) {
		n, k := w.Rows(), w.Cols()
		x := make([]float32, n*k)
		w.Tile(x, 0, n, 0, k)
		writeNPY(t, filepath.Join(dir, name), x, n, k)
	}
	mat("embed.npy", m.embed)
	mat("output.npy", m.output)
	writeNPY(t, filepath.Join(dir, "out_norm.npy"), m.outNorm, len(m.outNorm))
	type adapter struct {
		Layer  int    `json:"layer"`
		Module string `json:"module"`
	}
	var ads []adapter
	for li, b := range m.blocks {
		writeNPY(t, filepath.Join(dir, fmt.Sprintf("L%d.attn_norm.npy", li)), b.attnNorm, len(b.attnNorm))
		writeNPY(t, filepath.Join(dir, fmt.Sprintf("L%d.ffn_norm.npy", li)), b.ffnNorm, len(b.ffnNorm))
		for j, l := range b.lin {
			key := fmt.Sprintf("L%d.%s", li, moduleNames[j])
			mat(key+".W.npy", l.W)
			if l.Bias != nil {
				writeNPY(t, filepath.Join(dir, key+".bias.npy"), l.Bias, len(l.Bias))
			}
			if p := l.LoRA; p != nil {
				writeNPY(t, filepath.Join(dir, key+".A.npy"), p.A, p.Rank, l.In)
				writeNPY(t, filepath.Join(dir, key+".B.npy"), p.B, l.Out, p.Rank)
				ads = append(ads, adapter{li, moduleNames[j]})
			}
		}
	}
	cfg := map[string]any{
		"hidden": c.Hidden, "heads": c.Heads, "kv_heads": c.KVHeads, "head_dim": c.HeadDim, "ffn": c.FFN,
		"layers": c.Layers, "vocab": c.Vocab, "eps": c.Eps, "rope_theta": c.RopeTheta,
		"interleaved": c.Interleaved, "hf_freqs": hf, "scale": float64(tr.pairs[0].Scale),
		"tokens": w.Inputs, "targets": w.Targets, "mask": w.Mask, "adapters": ads,
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTorchReference compares the summed loss and every adapter gradient
// (all seven targets in both layers, B random so every path carries
// gradient) with an independent PyTorch float64 implementation
// (testdata/torch_ref.py), for both RoPE conventions with grouped-query
// attention, and for a Q4_0 base (dequantized weights handed to torch):
// |loss_go − loss_torch| ≤ 1e-4·|loss_torch| and, per gradient tensor,
// ‖g_go − g_torch‖₂ ≤ 1e-4·‖g_torch‖₂. Each model is run twice: with the
// logits of all counted rows at once on 1 thread, and 4 rows at a time
// (lossFloats lowered) on 2 threads.
func TestTorchReference(t *testing.T) {
	needTorch(t)
	models := tinyModels(t)
	models["q4_0"] = quantizedGGUF(t, quantConfig(), quantize.TypeQ4_0)
	for name, path := range models {
		t.Run(name, func(t *testing.T) {
			tr, err := Open(path, Config{Rank: 3, Alpha: 6, SeqLen: 21, Seed: 5, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			r := newRand(11)
			for _, p := range tr.pairs {
				for i := range p.B {
					p.B[i] = float32(r.Float64()*0.6 - 0.3)
				}
			}
			w := randomWindow(r, tr.Model.Cfg.Vocab, 21)
			dir := dumpForTorch(t, tr, w, name == "hf")

			var stderr bytes.Buffer
			cmd := exec.Command(python, "testdata/torch_ref.py", dir)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("torch_ref.py: %v\n%s", err, stderr.Bytes())
			}
			var ref torchResult
			if err := json.Unmarshal(out, &ref); err != nil {
				t.Fatal(err)
			}
			compareTorch(t, tr, w, ref)
			defer func(f int) { lossFloats = f }(lossFloats)
			lossFloats = 4 * tr.Model.Cfg.Vocab
			tr.Cfg.Threads, tr.pass = 2, nil
			for _, p := range tr.pairs {
				clear(p.GA)
				clear(p.GB)
			}
			compareTorch(t, tr, w, ref)
		})
	}
}

// torchResult is what torch_ref.py prints.
type torchResult struct {
	Loss  float64                         `json:"loss"`
	Count int                             `json:"count"`
	Grads map[string]map[string][]float64 `json:"grads"`
}

// compareTorch accumulates the gradients of window w (into zero
// gradients) and compares the loss and every adapter gradient with
// torch's.
func compareTorch(t *testing.T, tr *Trainer, w Window, ref torchResult) {
	t.Helper()
	loss, count := tr.accumulate(w)
	if ref.Count != count || math.Abs(loss-ref.Loss) > 1e-4*math.Abs(ref.Loss) {
		t.Errorf("loss %.9g over %d, torch %.9g over %d", loss, count, ref.Loss, ref.Count)
	}
	worst := 0.0
	for _, l := range tr.lins {
		key := fmt.Sprintf("L%d.%s", l.Layer, moduleNames[l.Module])
		g, ok := ref.Grads[key]
		if !ok {
			t.Fatalf("torch has no gradient for %s", key)
		}
		for _, m := range []struct {
			name string
			got  []float32
		}{{"A", l.LoRA.GA}, {"B", l.LoRA.GB}} {
			want := g[m.name]
			if len(want) != len(m.got) {
				t.Fatalf("%s.%s: %d values, torch %d", key, m.name, len(m.got), len(want))
			}
			var dd, nn float64
			for i, x := range want {
				dd += (float64(m.got[i]) - x) * (float64(m.got[i]) - x)
				nn += x * x
			}
			rel := math.Sqrt(dd / math.Max(nn, 1e-300))
			worst = math.Max(worst, rel)
			if rel > 1e-4 {
				t.Errorf("%s.%s: relative L2 difference %.3g from torch", key, m.name, rel)
			}
		}
	}
	t.Logf("loss %.9g (torch %.9g, rel %.2e); %d gradient tensors, worst relative L2 difference %.2e; logits %d rows at a time, %d threads",
		loss, ref.Loss, math.Abs(loss-ref.Loss)/ref.Loss, 2*len(tr.lins), worst, lossChunk(len(w.Inputs), tr.Model.Cfg.Vocab), tr.Cfg.Threads)
}
