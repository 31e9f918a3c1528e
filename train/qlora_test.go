package train

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/quantize"
)

// heapNF4 re-encodes every projection of an opened trainer in the Go heap
// exactly as QLoRA did before the codes moved to mapped files: the f32
// matrix, quantize.Quantize4Bit(NF4, x, 64), a kernels.FourBitMatrix. It
// returns the codes, matrix by matrix.
func heapNF4(t *testing.T, tr *Trainer) [][]byte {
	t.Helper()
	var codes [][]byte
	for _, b := range tr.Model.blocks {
		for _, l := range b.lin {
			x := make([]float32, l.Out*l.In)
			l.W.Tile(x, 0, l.Out, 0, l.In)
			packed, absmax, err := quantize.Quantize4Bit(quantize.NF4, x, 64)
			if err != nil {
				t.Fatal(err)
			}
			if l.W, err = kernels.NewFourBitMatrix(kernels.NF4, packed, absmax, l.Out, l.In, 64); err != nil {
				t.Fatal(err)
			}
			codes = append(codes, append(f32Raw(absmax), packed...))
		}
	}
	return codes
}

func f32Raw(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, f := range v {
		b = append(b, byte(math.Float32bits(f)), byte(math.Float32bits(f)>>8), byte(math.Float32bits(f)>>16), byte(math.Float32bits(f)>>24))
	}
	return b
}

// qloraMappings counts the process's mappings of QLoRA code files (Linux;
// -1 where /proc/self/maps is missing).
func qloraMappings() int {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return -1
	}
	return strings.Count(string(b), "qtool-qlora-")
}

// TestQLoRAMappedMatchesHeap: with Quantize "nf4" the codes and absmax of
// the tiny models' projections (odd sizes: blocks straddle rows) live in
// mapped, already unlinked temporary files, hold the bytes
// quantize.Quantize4Bit gives in the heap, and one training step gives
// the same loss, the same updated adapters, the same next gradients and
// the same written adapter, bit for bit, as the in-heap NF4 matrices.
// Close unmaps them.
func TestQLoRAMappedMatchesHeap(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	for conv, path := range tinyModels(t) {
		t.Run(conv, func(t *testing.T) {
			r := newRand(4)
			ws := []Window{randomWindow(r, tinyConfig().Vocab, 17), randomWindow(r, tinyConfig().Vocab, 17)}
			cfg := Config{Rank: 3, Alpha: 6, SeqLen: 17, MaxSteps: 1, LR: 1e-2, Seed: 5, Threads: 2}
			type result struct {
				loss          float64
				params, grads []float32
				adapter       []byte
			}
			run := func(quant bool) (result, [][]byte) {
				c := cfg
				if quant {
					c.Quantize = "nf4"
				}
				tr, err := Open(path, c)
				if err != nil {
					t.Fatal(err)
				}
				var codes [][]byte
				if quant {
					if n := qloraMappings(); n >= 0 && n != len(tr.Model.codes.maps) {
						t.Errorf("%d code files mapped, the store holds %d", n, len(tr.Model.codes.maps))
					}
					if left, _ := filepath.Glob(filepath.Join(tmp, "qtool-qlora-*")); len(left) != 0 {
						t.Errorf("temporary files left: %v", left)
					}
					for _, v := range tr.Model.codes.views {
						codes = append(codes, append(f32Raw(v.absmax), v.packed...))
					}
				} else {
					codes = heapNF4(t, tr)
				}
				sum, err := tr.Run(context.Background(), ws[:1], nil)
				if err != nil {
					t.Fatal(err)
				}
				res := result{loss: sum.FinalLoss}
				for _, p := range tr.pairs {
					res.params = append(append(res.params, p.A...), p.B...)
				}
				tr.accumulate(ws[1])
				for _, p := range tr.pairs {
					res.grads = append(append(res.grads, p.GA...), p.GB...)
				}
				out := filepath.Join(t.TempDir(), "adapter")
				if err := tr.Write(out, false); err != nil {
					t.Fatal(err)
				}
				if res.adapter, err = os.ReadFile(filepath.Join(out, "adapter_model.safetensors")); err != nil {
					t.Fatal(err)
				}
				if err := tr.Close(); err != nil {
					t.Fatal(err)
				}
				if n := qloraMappings(); quant && n > 0 {
					t.Errorf("%d code files still mapped after Close", n)
				}
				return res, codes
			}
			mapped, mc := run(true)
			heap, hc := run(false)
			if len(mc) != 2*numModules || len(mc) != len(hc) {
				t.Fatalf("%d mapped matrices, %d in the heap", len(mc), len(hc))
			}
			for i := range mc {
				if !bytes.Equal(mc[i], hc[i]) {
					t.Errorf("matrix %d: mapped codes differ from the heap's", i)
				}
			}
			if mapped.loss != heap.loss || !slices.Equal(mapped.params, heap.params) || !slices.Equal(mapped.grads, heap.grads) {
				t.Errorf("the step differs: loss %v vs %v", mapped.loss, heap.loss)
			}
			if !bytes.Equal(mapped.adapter, heap.adapter) {
				t.Error("written adapters differ")
			}
			t.Logf("loss %.9f both ways; %d matrices, %d adapter bytes", mapped.loss, len(mc), len(mapped.adapter))
		})
	}
}

// rssAnon reads RssAnon from /proc/self/status in bytes, after returning
// the Go heap's free pages to the system (-1 off Linux).
func rssAnon() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return -1
}

// TestQLoRACodesNotAnonymous quantizes the projections of the "small"
// preset (stories15M's shape: 42 matrices, 3.4 MB of NF4 codes and
// absmax) through the code store and, for comparison, into the heap.
// Resident anonymous memory must grow by well under a quarter of the
// codes' size the first way (they are file pages), and by at least half
// of it the second way (showing that the measurement sees heap codes).
func TestQLoRACodesNotAnonymous(t *testing.T) {
	if rssAnon() < 0 {
		t.Skip("no /proc/self/status")
	}
	t.Setenv("TMPDIR", t.TempDir())
	c, _ := fixtures.Preset("small")
	path := filepath.Join(t.TempDir(), "small.gguf")
	if err := fixtures.WriteGGUF(context.Background(), path, c, false); err != nil {
		t.Fatal(err)
	}
	m, err := openModel(path, 32, 2, "")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var lins []*Linear
	for _, b := range m.blocks {
		lins = append(lins, b.lin[:]...)
	}

	var store codeStore
	defer store.close()
	before := rssAnon()
	var codes int64
	kept := make([]kernels.BMatrix, 0, len(lins))
	for _, l := range lins {
		w, err := store.quantizeMatrix(l.W, "nf4")
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, w)
	}
	store.release()
	for _, v := range store.views {
		codes += int64(len(v.packed) + 4*len(v.absmax))
	}
	mappedGrowth := rssAnon() - before

	// Return the freed scratch to the OS first, or the heap's new codes
	// may land in pages the first loop already made resident.
	debug.FreeOSMemory()
	before = rssAnon()
	var heap [][]byte
	for _, l := range lins {
		x := make([]float32, l.Out*l.In)
		l.W.Tile(x, 0, l.Out, 0, l.In)
		packed, absmax, err := quantize.Quantize4Bit(quantize.NF4, x, 64)
		if err != nil {
			t.Fatal(err)
		}
		heap = append(heap, packed, f32Raw(absmax))
	}
	heapGrowth := rssAnon() - before
	runtime.KeepAlive(kept)
	runtime.KeepAlive(heap)

	t.Logf("%d matrices, %d bytes of codes and absmax: RssAnon grew by %d bytes (mapped files), %d (heap)", len(lins), codes, mappedGrowth, heapGrowth)
	if mappedGrowth > codes/4 {
		t.Errorf("RssAnon grew by %d bytes while quantizing to mapped files; the codes are %d bytes", mappedGrowth, codes)
	}
	if heapGrowth < codes/2 {
		t.Errorf("RssAnon grew by only %d bytes with %d bytes of codes in the heap: the measurement is not sensitive", heapGrowth, codes)
	}
}
