package lora

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

func TestLintGoldenIsClean(t *testing.T) {
	for _, bp := range []string{tdBaseHF, tdBaseGGUF} {
		base := openBaseModel(t, bp)
		for _, ap := range []string{tdPEFT, tdGGUF} {
			rep := Lint(loadAd(t, ap, base), base)
			if len(rep.Problems) != 0 || rep.Pairs != 35 || rep.Matched != 35 || rep.NoOp || rep.Err() != nil {
				t.Errorf("%s on %s: %+v", ap, bp, rep)
			}
		}
	}
}

// problem finds the problem of a severity about a target whose message
// contains text.
func hasProblem(rep LintReport, sev, target, text string) bool {
	for _, p := range rep.Problems {
		if p.Severity == sev && p.Target == target && strings.Contains(p.Message, text) {
			return true
		}
	}
	return false
}

func TestLintFindsProblems(t *testing.T) {
	const q0 = "model.layers.0.self_attn.q_proj.weight"
	for _, bp := range []string{tdBaseHF, tdBaseGGUF} {
		base := openBaseModel(t, bp)
		fresh := func() *Adapter { return loadAd(t, tdPEFT, nil) }

		// Wrong shape: a k_proj-sized delta on q_proj.
		ad := fresh()
		p := ad.Pair(q0)
		p.Out, p.B = 32, p.B[:32*p.Rank]
		rep := Lint(ad, base)
		if !hasProblem(rep, SeverityError, q0, "wrong shape") || rep.Matched != 34 || !errors.Is(rep.Err(), ErrLint) || !errors.Is(rep.Err(), formats.ErrFormat) {
			t.Errorf("%s wrong shape: %+v", bp, rep.Problems)
		}

		// Unknown target.
		ad = fresh()
		ad.Pairs = append(ad.Pairs, Pair{Target: "model.layers.9.self_attn.q_proj.weight", Rank: 1, In: 64, Out: 64, A: make([]float32, 64), B: onesF32(64), Alpha: 8, Scale: 8})
		ad.Config.RankPattern = map[string]int{"model.layers.9.self_attn.q_proj": 1}
		ad.Sort()
		rep = Lint(ad, base)
		if !hasProblem(rep, SeverityError, "model.layers.9.self_attn.q_proj.weight", "unknown target") || rep.Errors() != 1 {
			t.Errorf("%s unknown target: %+v", bp, rep.Problems)
		}

		// All-zero B: a warning, and NoOp when every pair is zero.
		ad = fresh()
		for i := range ad.Pairs[1:] {
			clear(ad.Pairs[i+1].B)
		}
		rep = Lint(ad, base)
		if !hasProblem(rep, SeverityWarning, ad.Pairs[1].Target, "no-op") || rep.Errors() != 0 || rep.NoOp || rep.Err() != nil {
			t.Errorf("%s zero B: %+v", bp, rep)
		}
		clear(ad.Pairs[0].B)
		rep = Lint(ad, base)
		if !rep.NoOp || rep.Errors() != 0 || !hasProblem(rep, SeverityWarning, "", "no-op") {
			t.Errorf("%s all zero: %+v", bp, rep)
		}

		// Rank that disagrees with the config (r 4, rank_pattern none).
		ad = fresh()
		ad.Config.Rank = 8
		rep = Lint(ad, base)
		if !hasProblem(rep, SeverityError, q0, "rank mismatch") {
			t.Errorf("%s rank mismatch: %+v", bp, rep.Problems)
		}
		ad = fresh()
		ad.Config.AlphaPattern = map[string]float64{"q_proj": 16}
		rep = Lint(ad, base)
		if !hasProblem(rep, SeverityError, q0, "alpha mismatch") || hasProblem(rep, SeverityError, "model.layers.0.self_attn.k_proj.weight", "alpha") {
			t.Errorf("%s alpha mismatch: %+v", bp, rep.Problems)
		}

		// Non-finite factors.
		ad = fresh()
		ad.Pair(q0).A[3] = float32(math.Inf(1))
		if rep = Lint(ad, base); !hasProblem(rep, SeverityError, q0, "NaN or infinite") {
			t.Errorf("%s inf: %+v", bp, rep.Problems)
		}

		// An adapter matching nothing, and one for another architecture.
		ad = &Adapter{Format: PEFT, Config: Config{Rank: 1, Alpha: 1}, Pairs: []Pair{{Target: "transformer.h.0.attn.c_attn.weight", Rank: 1, In: 2, Out: 2, A: onesF32(2), B: onesF32(2), Alpha: 1, Scale: 1}}}
		rep = Lint(ad, base)
		if !hasProblem(rep, SeverityError, "", "matches no tensor") || !rep.NoOp {
			t.Errorf("%s matches nothing: %+v", bp, rep)
		}
		ad = fresh()
		ad.Arch = "qwen2"
		if rep = Lint(ad, base); !hasProblem(rep, SeverityError, "", `"qwen2"`) {
			t.Errorf("%s arch: %+v", bp, rep.Problems)
		}
	}
	if rep := Lint(&Adapter{}, openBaseModel(t, tdBaseHF)); rep.Errors() != 1 || !rep.NoOp {
		t.Errorf("empty adapter: %+v", rep)
	}
}

func onesF32(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// TestLintQuantizedBase: a bitsandbytes 4-bit weight is stored packed; its
// shape comes from the quant_state.
func TestLintQuantizedBase(t *testing.T) {
	const target = "model.layers.0.self_attn.v_proj.weight"
	state := []byte(`{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [32, 64]}`)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	err = safetensors.Write(t.Context(), f, nil, []formats.Tensor{
		{TensorInfo: formats.TensorInfo{Name: target, DType: formats.U8, Shape: []int64{1024, 1}, Size: 1024}, Data: formats.BytesWriter(make([]byte, 1024))},
		{TensorInfo: formats.TensorInfo{Name: target + ".quant_state.bitsandbytes__nf4", DType: formats.U8, Shape: []int64{int64(len(state))}, Size: int64(len(state))}, Data: formats.BytesWriter(state)},
	})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	base, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	ad := &Adapter{Format: PEFT, Config: Config{Rank: 2, Alpha: 4}, Pairs: []Pair{{Target: target, Rank: 2, In: 64, Out: 32, A: onesF32(128), B: onesF32(64), Alpha: 4, Scale: 2}}}
	if rep := Lint(ad, base); len(rep.Problems) != 0 || rep.Matched != 1 {
		t.Errorf("%+v", rep)
	}
	ad.Pairs[0].In, ad.Pairs[0].Out, ad.Pairs[0].A, ad.Pairs[0].B = 32, 64, onesF32(64), onesF32(128)
	if rep := Lint(ad, base); !hasProblem(rep, SeverityError, target, "wrong shape") {
		t.Errorf("%+v", rep)
	}
}
