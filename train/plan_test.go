package train

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/formats"
)

// heapNow collects garbage and returns the live heap and the bytes
// allocated so far.
func heapNow() (live, total uint64) {
	runtime.GC()
	runtime.GC() // and what sync.Pools kept through the first

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.TotalAlloc
}

// allocated is the bytes allocated so far (no collection, which would
// empty the kernels' sync.Pools and make the next step refill them).
func allocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// TestPlanMatchesHeap checks the dry-run's memory terms against the Go
// heap of real steps on a small f16 model with a 32000-token vocabulary
// (logits and tokenizer of a Llama 2 size): the heap kept after a step
// (opened model, adapters, optimizer, activations, tile) and the bytes one
// step allocates (its garbage, what fills the collector's headroom) must
// each be within 10% of the plan's, with and without checkpointing,
// dropout and NF4.
func TestPlanMatchesHeap(t *testing.T) {
	c, _ := fixtures.Preset("small")
	c.Layers, c.DType = 3, formats.F16
	path := filepath.Join(t.TempDir(), "small.gguf")
	if err := fixtures.WriteGGUF(context.Background(), path, c, false); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{
		{SeqLen: 64, Targets: []string{"q_proj", "v_proj"}, GradCheckpoint: true},
		{SeqLen: 64, Batch: 2, Dropout: 0.1},
		{SeqLen: 64, GradAccum: 2, Targets: []string{"k_proj", "o_proj", "down_proj"}, Quantize: "nf4", GradCheckpoint: true, Dropout: 0.2, Threads: 2},
	} {
		cfg.Threads, cfg.Seed, cfg.MaxSteps = max(cfg.Threads, 1), 1, 5
		// The bytes allocated by the end of each step: step 1 allocates
		// the pass, the others run on it. The least a step allocates is
		// taken (a step may also refill the kernels' pools after a
		// collection emptied them).
		var ends []uint64
		cfg.Progress = func(StepStats) { ends = append(ends, allocated()) }
		before, _ := heapNow()
		tr, err := Open(path, cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := newRand(2)
		var ws []Window
		for range 4 {
			ws = append(ws, randomWindow(r, c.Vocab, cfg.SeqLen))
		}
		if _, err := tr.Run(context.Background(), ws, nil); err != nil {
			t.Fatal(err)
		}
		live, _ := heapNow()
		gotGarbage := int64(math.MaxInt64)
		for i := 1; i < len(ends); i++ {
			gotGarbage = min(gotGarbage, int64(ends[i]-ends[i-1]))
		}
		p, tile := tr.plan()
		kept := p.AdapterBytes + p.OptimizerBytes + p.ActivationBytes + tile + p.ModelHeapBytes
		gotKept := int64(live) - int64(before)
		t.Logf("%s threads %d: kept %d (plan %d), step garbage %d (plan %d), estimate %d",
			cfg.Targets, cfg.Threads, gotKept, kept, gotGarbage, p.StepGarbageBytes, p.EstimatedAnonBytes)
		if d := float64(gotKept-kept) / float64(kept); d < -0.1 || d > 0.1 {
			t.Errorf("%+v: heap kept after a step %d, plan %d (%+.0f%%)", cfg, gotKept, kept, 100*d)
		}
		if d := float64(gotGarbage-p.StepGarbageBytes) / float64(p.StepGarbageBytes); d < -0.1 || d > 0.1 {
			t.Errorf("%+v: one step allocated %d, plan %d (%+.0f%%)", cfg, gotGarbage, p.StepGarbageBytes, 100*d)
		}
		if p.LiveHeapBytes != kept+p.BufferBytes-tile || p.EstimatedAnonBytes < p.LiveHeapBytes+p.RuntimeBytes {
			t.Errorf("%+v: inconsistent plan %+v", cfg, p)
		}
		if (cfg.Quantize != "") != (p.QuantizedBytes > 0) {
			t.Errorf("%+v: quantized bytes %d", cfg, p.QuantizedBytes)
		}
		tr.Close()
	}
}

// TestReadMemKeepsPeaks: readMem reports the largest anonymous RSS that
// its sampler saw, after the memory has gone back to the system.
func TestReadMemKeepsPeaks(t *testing.T) {
	if _, ok := readStatus(); !ok {
		t.Skip("no /proc/self/status")
	}
	readMem()
	const n = 64 << 20
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	cur, _ := readStatus()
	time.Sleep(3 * memSampleEvery)
	runtime.KeepAlive(b)
	b = nil
	debug.FreeOSMemory()
	after, _ := readStatus()
	got := readMem()
	if after.PeakRSSAnon > cur.PeakRSSAnon-n/2 {
		t.Skipf("the runtime kept the memory (RssAnon %d, then %d)", cur.PeakRSSAnon, after.PeakRSSAnon)
	}
	if got.PeakRSSAnon < cur.PeakRSSAnon-n/4 {
		t.Errorf("peak anonymous RSS %d, well below the %d measured with the buffer", got.PeakRSSAnon, cur.PeakRSSAnon)
	}
}

// TestPlanOnly: a trainer opened with PlanOnly (the CLI's --dry-run) does
// not quantize, yet its plan equals the one of a trainer that did, for
// f32 and f16 models with and without --quantize nf4; it refuses to train.
func TestPlanOnly(t *testing.T) {
	c, _ := fixtures.Preset("small")
	c.Layers, c.DType = 2, formats.F16
	f16 := filepath.Join(t.TempDir(), "small.gguf")
	if err := fixtures.WriteGGUF(context.Background(), f16, c, false); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{f16, storiesHF} {
		for _, q := range []string{"", "nf4"} {
			cfg := Config{SeqLen: 64, Quantize: q, Threads: 1, Seed: 1}
			full, err := Open(path, cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := full.Plan()
			full.Close()
			cfg.PlanOnly = true
			only, err := Open(path, cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := only.Plan()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s quantize=%q: PlanOnly plan\n%+v\nwant\n%+v", path, q, got, want)
			}
			if _, err := only.Run(context.Background(), []Window{{}}, nil); !errors.Is(err, ErrConfig) {
				t.Errorf("%s: Run on a PlanOnly trainer: %v, want ErrConfig", path, err)
			}
			only.Close()
		}
	}
}
