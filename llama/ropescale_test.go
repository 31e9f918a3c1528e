package llama

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/convert"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/internal/llamacpptest"
	"github.com/qtool-dev/qtool/kernels"
)

// ropeScaledFolder copies the stories260K HF folder into dir/name with
// config.json's rope_scaling set to rs, and converts it to dir/name.gguf
// the way `qtool convert` does. It returns the folder and the GGUF path.
func ropeScaledFolder(t *testing.T, dir, name string, rs map[string]any) (string, string) {
	t.Helper()
	hf := filepath.Join(dir, name)
	if err := os.MkdirAll(hf, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(storiesHF)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(storiesHF, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "config.json" {
			var c map[string]any
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			c["rope_scaling"] = rs
			if b, err = json.MarshalIndent(c, "", "  "); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(hf, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := convert.OpenHF(hf)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	meta, ts, _, err := convert.ToGGUF(m, convert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := hf + ".gguf"
	if err := gguf.WriteFile(context.Background(), out, meta, ts, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	return hf, out
}

// nextLogProbs returns log p(ids[j+1] | ids[:j+1]) for j = 0 … len(ids)−2
// from one forward pass over ids.
func nextLogProbs(t *testing.T, m *Model, ids []int32) []float64 {
	t.Helper()
	all, err := m.NewState(len(ids)).Forward(ids, true)
	if err != nil {
		t.Fatal(err)
	}
	v := m.Cfg.Vocab
	out := make([]float64, len(ids)-1)
	for j := range out {
		out[j] = logProb(all[j*v:(j+1)*v], ids[j+1])
	}
	return out
}

func meanOf(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func maxAbsDiff(a, b []float64) (float64, int) {
	worst, at := 0.0, -1
	for i := range a {
		if d := math.Abs(a[i] - b[i]); !(d <= worst) {
			worst, at = d, i
		}
	}
	return worst, at
}

// ropeRegimes classifies each rotary frequency by how scaling changed it:
// the ratio unscaled/scaled is 1 (kept), factor (divided) or in between
// (interpolated); any other ratio lands in odd.
func ropeRegimes(c Config) (kept, interp, divided, odd []int) {
	base := c
	base.RopeScaling = ""
	f0, f1 := base.RopeFreqs(nil, false), c.RopeFreqs(nil, false)
	for j := range f0 {
		r := f0[j] / f1[j]
		switch {
		case math.Abs(r-1) < 1e-12:
			kept = append(kept, j)
		case math.Abs(r-c.RopeFactor) < 1e-12*c.RopeFactor:
			divided = append(divided, j)
		case r > 1 && r < c.RopeFactor:
			interp = append(interp, j)
		default:
			odd = append(odd, j)
		}
	}
	return
}

// TestRopeScalingMatchesLlamaCpp checks rope scaling end to end against
// llama.cpp (node-llama-cpp 3.22.1). stories260K's HF folder gets
// rope_scaling linear (factor 4) or llama3 (factor 8, low 1, high 4,
// original context 1024) in config.json and is converted to GGUF as
// `qtool convert` does: linear becomes llama.rope.scaling.{type,factor}
// (llama.cpp: freq_scale = 1/factor), llama3 a generated rope_freqs.weight
// (llama.cpp divides each frequency by its factor). With head_dim 8 and
// theta 10000 the wavelengths are 2π·10000^(2j/8) ≈ 6.3, 63, 628, 6283
// against the llama3 cut-offs 1024/4 = 256 and 1024/1 = 1024, so the
// llama3 case keeps two frequencies, interpolates one and divides one by 8;
// the test asserts that all three regimes occur.
//
// For the first 160 tokens of the TinyStories text, the next-token
// log-probabilities are computed by qtool on the HF folder (rotate-half,
// scaling from config.json), qtool on the GGUF (interleaved pairs, scaling
// from the GGUF keys or rope_freqs.weight) and llama.cpp on the same GGUF,
// precise (F32 KV cache, flash attention off). qtool's two are compared at
// all 159 positions; llama.cpp (perplexity.mjs reports one sum per job) is
// compared on the mean over all 159 positions (one window) and position by
// position at 19 probes, every 8th (one prefix window each), which keeps
// the test near 3 s; scoring every position one by one took 17 s.
//
// Tolerances: all three keep activations in f32 and differ by the
// summation order of the dot products and by how the rotation angles are
// formed (Hugging Face rounds inv_freq to f32, llama.cpp builds angles in
// f32, qtool's GGUF path in float64). The scaled models run outside what
// they were trained for and are more sensitive to that noise than the
// unscaled one: HF against GGUF at 160 positions differs by at most 6e-6
// nats unscaled but 3e-5 (linear) and 5e-5 (llama3) scaled, and scoring
// every position with llama.cpp gave at most 7.6e-5. Hence 2e-4 nats per
// token, and 1e-5 nats on the mean (measured 1.3e-7 to 1.7e-6).
// Sensitivity: the unscaled model's log-probs differ from llama.cpp's by
// 11-16 nats at some probe and its mean by 0.5-2.3 nats (asserted ≥ 100×
// each tolerance), and for llama3 a model with only the interpolated
// frequency left unscaled, or divided by the full factor, is off by 11
// and 4.5 nats (asserted ≥ 10× the tolerance), so a mistake confined to
// any one regime fails the test.
func TestRopeScalingMatchesLlamaCpp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs llama.cpp through node; -short")
	}
	llamacpptest.Require(t)
	const (
		nTok    = 160
		tol     = 2e-4
		tolMean = 1e-5
	)
	var probes []int // positions compared one by one with llama.cpp
	for j := 7; j+1 < nTok; j += 8 {
		probes = append(probes, j)
	}
	dir := t.TempDir()
	docs, err := ReadDocuments(filepath.Join("testdata", "tinystories-head-24k.txt"))
	if err != nil {
		t.Fatal(err)
	}
	plain := openModel(t, storiesHF, Options{Threads: 2})
	ids := plain.Tokenize(docs)
	if len(ids) < nTok {
		t.Fatalf("only %d tokens of text", len(ids))
	}
	ids = ids[:nTok]
	unscaled := nextLogProbs(t, plain, ids)

	cases := []struct {
		name string
		rs   map[string]any
	}{
		{"linear", map[string]any{"type": "linear", "factor": 4}},
		{"llama3", map[string]any{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 1024}},
	}
	type side struct {
		cfg     Config
		hfLP    []float64
		ggLP    []float64
		hfModel *Model
	}
	sides := make([]side, len(cases))
	var jobs []shakePPLJob
	for i, tc := range cases {
		hf, gg := ropeScaledFolder(t, dir, tc.name, tc.rs)
		mh := openModel(t, hf, Options{Threads: 2})
		mg := openModel(t, gg, Options{Threads: 2})
		if mh.Cfg.RopeScaling != tc.name || mg.Cfg.RopeScaling != tc.name {
			t.Fatalf("%s: rope scaling read as %q (HF) and %q (GGUF)", tc.name, mh.Cfg.RopeScaling, mg.Cfg.RopeScaling)
		}
		if tc.name == "linear" && mg.Cfg.RopeFactor != 4 {
			t.Fatalf("linear: the GGUF's factor reads as %g, want 4", mg.Cfg.RopeFactor)
		}
		sides[i] = side{cfg: mh.Cfg, hfModel: mh,
			hfLP: nextLogProbs(t, mh, ids), ggLP: nextLogProbs(t, mg, ids)}
		// One window scoring every position (a sum), then one job per
		// probed position (perplexity.mjs reports sums per job).
		w := shakeWindow{Inputs: ids, Targets: make([]int32, nTok), Mask: make([]bool, nTok)}
		for j := 0; j+1 < nTok; j++ {
			w.Targets[j], w.Mask[j] = ids[j+1], true
		}
		jobs = append(jobs, shakePPLJob{Model: gg, Windows: []shakeWindow{w}, Precise: true})
		for _, j := range probes {
			w := shakeWindow{Inputs: ids[:j+1], Targets: make([]int32, j+1), Mask: make([]bool, j+1)}
			w.Targets[j], w.Mask[j] = ids[j+1], true
			jobs = append(jobs, shakePPLJob{Model: gg, Windows: []shakeWindow{w}, Precise: true})
		}
	}
	var out []shakePPLResult
	llamacpptest.RunScript(t, "perplexity.mjs", jobs, &out)

	// at picks the probed positions out of per-position log-probs.
	at := func(lp []float64) []float64 {
		v := make([]float64, len(probes))
		for k, j := range probes {
			v[k] = lp[j]
		}
		return v
	}
	for i, tc := range cases {
		s := sides[i]
		res := out[i*(1+len(probes)) : (i+1)*(1+len(probes))]
		for k, r := range res {
			want := 1
			if k == 0 {
				want = nTok - 1
			}
			if r.Error != "" || r.Count != want {
				t.Fatalf("%s: llama.cpp job %d: %q (%d scored, want %d)", tc.name, k, r.Error, r.Count, want)
			}
		}
		ref := make([]float64, len(probes))
		for k := range ref {
			ref[k] = -res[1+k].NLL
		}
		refMean := -res[0].NLL / float64(nTok-1)
		dHG, _ := maxAbsDiff(s.hfLP, s.ggLP)
		dGR, _ := maxAbsDiff(at(s.ggLP), ref)
		dHR, _ := maxAbsDiff(at(s.hfLP), ref)
		dU, _ := maxAbsDiff(at(unscaled), ref)
		mHF, mGG, mU := meanOf(s.hfLP), meanOf(s.ggLP), meanOf(unscaled)
		t.Logf("%s: max |Δ log-prob|: qtool HF vs GGUF %.2e (all %d positions); at %d probed positions qtool GGUF vs llama.cpp %.2e, qtool HF vs llama.cpp %.2e, unscaled model vs llama.cpp %.3f",
			tc.name, dHG, nTok-1, len(probes), dGR, dHR, dU)
		t.Logf("%s: mean log-prob over all positions: llama.cpp %.6f, qtool GGUF %.6f (Δ %.1e), qtool HF %.6f (Δ %.1e), unscaled %.6f",
			tc.name, refMean, mGG, mGG-refMean, mHF, mHF-refMean, mU)
		for _, d := range []struct {
			what     string
			v, limit float64
		}{
			{"qtool HF vs GGUF log-probs", dHG, tol}, {"qtool GGUF vs llama.cpp log-probs", dGR, tol}, {"qtool HF vs llama.cpp log-probs", dHR, tol},
			{"qtool GGUF vs llama.cpp mean log-prob", math.Abs(mGG - refMean), tolMean}, {"qtool HF vs llama.cpp mean log-prob", math.Abs(mHF - refMean), tolMean},
		} {
			if !(d.v <= d.limit) {
				t.Errorf("%s: %s differ by %.2e > %.0e", tc.name, d.what, d.v, d.limit)
			}
		}
		if d := math.Abs(mU - refMean); !(d >= 100*tolMean) {
			t.Errorf("%s: the unscaled model's mean log-prob is within %.2e of the scaled one's", tc.name, d)
		}
		if !(dU >= 100*tol) {
			t.Errorf("%s: the unscaled model is within %.2e of the scaled one; the prompt does not exercise scaling", tc.name, dU)
		}

		c := s.cfg
		kept, interp, divided, odd := ropeRegimes(c)
		if len(odd) > 0 {
			t.Errorf("%s: frequencies %v are scaled outside [1, factor %g]", tc.name, odd, c.RopeFactor)
		}
		switch tc.name {
		case "linear":
			if c.RopeFactor != 4 || len(divided) != c.HeadDim/2 {
				t.Errorf("linear: factor %g, %d of %d frequencies divided", c.RopeFactor, len(divided), c.HeadDim/2)
			}
		case "llama3":
			t.Logf("llama3 frequencies: kept %v, interpolated %v, divided %v", kept, interp, divided)
			if len(kept) == 0 || len(interp) == 0 || len(divided) == 0 {
				t.Fatalf("llama3: kept %v, interpolated %v, divided %v: not every regime occurs", kept, interp, divided)
			}
			// A fault confined to the interpolated band must show.
			base := c
			base.RopeScaling = ""
			f0 := base.RopeFreqs(nil, true)
			for _, v := range []struct {
				what string
				to   func(f float64) float64
			}{{"left unscaled", func(f float64) float64 { return f }}, {"divided by the factor", func(f float64) float64 { return f / c.RopeFactor }}} {
				fr := c.RopeFreqs(nil, true)
				for _, j := range interp {
					fr[j] = v.to(f0[j])
				}
				saved := s.hfModel.rope
				s.hfModel.rope = kernels.NewRopeTable(c.HeadDim, saved.MaxPos(), fr)
				wrong := nextLogProbs(t, s.hfModel, ids)
				s.hfModel.rope = saved
				d, _ := maxAbsDiff(at(wrong), ref)
				t.Logf("llama3 with the interpolated band %s: %.3f from llama.cpp", v.what, d)
				if !(d >= 10*tol) {
					t.Errorf("llama3: the interpolated band %s moves the log-probs by only %.2e", v.what, d)
				}
			}
		}
	}
}
