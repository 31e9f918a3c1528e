package lora

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/quantize"
)

func TestLoadPEFTGolden(t *testing.T) {
	ad := loadAd(t, tdPEFT, openBaseModel(t, tdBaseHF))
	if ad.Format != PEFT || ad.Arch != "llama" || len(ad.Pairs) != 35 {
		t.Fatalf("format %s arch %q pairs %d", ad.Format, ad.Arch, len(ad.Pairs))
	}
	if ad.Config.Rank != 4 || ad.Config.Alpha != 8 || ad.Config.RSLoRA || ad.Config.BaseModel != "stories260K-hf" || len(ad.Config.TargetModules) != 7 {
		t.Errorf("config %+v", ad.Config)
	}
	shapes := map[string][2]int{"q_proj": {64, 64}, "k_proj": {32, 64}, "v_proj": {32, 64}, "o_proj": {64, 64},
		"gate_proj": {172, 64}, "up_proj": {172, 64}, "down_proj": {64, 172}}
	for i, p := range ad.Pairs {
		if i > 0 && ad.Pairs[i-1].Target >= p.Target {
			t.Errorf("pairs not sorted at %s", p.Target)
		}
		s := shapes[leafOf(moduleOf(p.Target))]
		if p.Rank != 4 || p.Out != s[0] || p.In != s[1] || p.Alpha != 8 || p.Scale != 2 {
			t.Errorf("%s: rank %d [%d,%d] alpha %v scale %v", p.Target, p.Rank, p.Out, p.In, p.Alpha, p.Scale)
		}
	}
	if ad.Pair("model.layers.4.mlp.down_proj.weight") == nil || ad.Pair("model.layers.5.mlp.down_proj.weight") != nil {
		t.Error("Pair lookup")
	}
}

// TestPEFTRewriteIsByteIdentical: reading the golden and writing it back
// reproduces adapter_model.safetensors exactly (sorted names, F32,
// {"format": "pt"}), and the config's values.
func TestPEFTRewriteIsByteIdentical(t *testing.T) {
	ad := loadAd(t, tdPEFT, nil)
	out := filepath.Join(t.TempDir(), "peft")
	if err := Write(out, ad, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(out, peftWeights))
	want, _ := os.ReadFile(filepath.Join(tdPEFT, peftWeights))
	if !bytes.Equal(got, want) {
		t.Error("adapter_model.safetensors differs from the golden")
	}
	var gc, wc map[string]any
	b, _ := os.ReadFile(filepath.Join(out, configFile))
	json.Unmarshal(b, &gc)
	b, _ = os.ReadFile(filepath.Join(tdPEFT, configFile))
	json.Unmarshal(b, &wc)
	for k, v := range wc {
		if g, _ := json.Marshal(gc[k]); string(g) != jsonText(v) {
			t.Errorf("config %s = %s, want %s", k, g, jsonText(v))
		}
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// synthModule is one adapted module of a synthetic adapter, with the rank
// and alpha PEFT's rules give it (worked out by hand in patternCases).
type synthModule struct {
	module        string
	in, out, rank int
	alpha         float64
	zeroB         bool
}

type patternCase struct {
	name    string
	config  string // adapter_config.json, verbatim (key order matters)
	rslora  bool
	modules []synthModule
	folds   bool // GGUF must fold some scale into B
}

// patternCases are small adapters on stories260K's shapes exercising
// rsLoRA, rank_pattern and alpha_pattern (first matching key in JSON
// order, PEFT's (.*\.)?(key)$ rule).
func patternCases() []patternCase {
	const l0, l1 = "model.layers.0.", "model.layers.1."
	return []patternCase{
		{
			name:   "rslora",
			config: `{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "use_rslora": true, "target_modules": ["q_proj", "v_proj"]}`,
			rslora: true,
			modules: []synthModule{
				{module: l0 + "self_attn.q_proj", in: 64, out: 64, rank: 8, alpha: 16},
				{module: l0 + "self_attn.v_proj", in: 64, out: 32, rank: 8, alpha: 16},
				{module: l1 + "self_attn.q_proj", in: 64, out: 64, rank: 8, alpha: 16},
			},
		},
		{
			name: "patterns",
			config: `{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_rslora": false,
				"rank_pattern": {"model.layers.1.self_attn.q_proj": 8, "q_proj": 2, "k_proj": 6},
				"alpha_pattern": {"v_proj": 3.5, "layers.0.mlp.down_proj": 5},
				"target_modules": ["q_proj", "k_proj", "v_proj", "down_proj"]}`,
			modules: []synthModule{
				{module: l0 + "self_attn.q_proj", in: 64, out: 64, rank: 2, alpha: 8},
				{module: l1 + "self_attn.q_proj", in: 64, out: 64, rank: 8, alpha: 8},
				{module: l0 + "self_attn.k_proj", in: 64, out: 32, rank: 6, alpha: 8},
				{module: l0 + "self_attn.v_proj", in: 64, out: 32, rank: 4, alpha: 3.5},
				{module: l0 + "mlp.down_proj", in: 172, out: 64, rank: 4, alpha: 5},
				{module: l1 + "mlp.down_proj", in: 172, out: 64, rank: 4, alpha: 8},
			},
			folds: true,
		},
		{
			name: "rslora-patterns-order",
			config: `{"peft_type": "LORA", "r": 4, "lora_alpha": 6.5, "use_rslora": true,
				"rank_pattern": {"q_proj": 2, "model.layers.1.self_attn.q_proj": 8, "down_proj": 16},
				"alpha_pattern": {"model.layers.0.self_attn.q_proj": 12},
				"target_modules": ["q_proj", "k_proj", "v_proj", "down_proj"]}`,
			rslora: true,
			modules: []synthModule{
				{module: l0 + "self_attn.q_proj", in: 64, out: 64, rank: 2, alpha: 12},
				{module: l1 + "self_attn.q_proj", in: 64, out: 64, rank: 2, alpha: 6.5},
				{module: l0 + "self_attn.k_proj", in: 64, out: 32, rank: 4, alpha: 6.5},
				{module: l0 + "self_attn.v_proj", in: 64, out: 32, rank: 4, alpha: 6.5},
				{module: l0 + "mlp.down_proj", in: 172, out: 64, rank: 16, alpha: 6.5},
				{module: l1 + "mlp.down_proj", in: 172, out: 64, rank: 16, alpha: 6.5},
			},
			folds: true,
		},
	}
}

// writeSyntheticPEFT writes a case's adapter with seeded random factors.
func writeSyntheticPEFT(t *testing.T, c patternCase) string {
	t.Helper()
	rng := rand.New(rand.NewSource(int64(len(c.name)) + 9))
	var ts []formats.Tensor
	for _, m := range c.modules {
		a := make([]float32, m.rank*m.in)
		for i := range a {
			a[i] = float32(rng.NormFloat64() * 0.1)
		}
		b := make([]float32, m.out*m.rank)
		if !m.zeroB {
			for i := range b {
				b[i] = float32(rng.NormFloat64() * 0.05)
			}
		}
		ts = append(ts,
			f32Tensor(peftPrefix+m.module+".lora_A.weight", []int64{int64(m.rank), int64(m.in)}, a),
			f32Tensor(peftPrefix+m.module+".lora_B.weight", []int64{int64(m.out), int64(m.rank)}, b))
	}
	return writePEFTFolder(t, c.config, ts)
}

func writePEFTFolder(t *testing.T, config string, ts []formats.Tensor) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, peftWeights))
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(t.Context(), f, map[string]string{"format": "pt"}, ts); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, configFile), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// refDelta is the reference delta of one module: PEFT's formula
// (α/r, α/√r with rsLoRA) with the hand-derived rank and alpha, in float64
// over the stored factors.
func refDelta(p *Pair, m synthModule, rslora bool) []float64 {
	s := m.alpha / float64(m.rank)
	if rslora {
		s = m.alpha / math.Sqrt(float64(m.rank))
	}
	d := make([]float64, m.out*m.in)
	for o := 0; o < m.out; o++ {
		for i := 0; i < m.in; i++ {
			var acc float64
			for k := 0; k < m.rank; k++ {
				acc += float64(p.B[o*m.rank+k]) * float64(p.A[k*m.in+i])
			}
			d[o*m.in+i] = s * acc
		}
	}
	return d
}

func TestPEFTPatternsAndRSLoRA(t *testing.T) {
	for _, c := range patternCases() {
		t.Run(c.name, func(t *testing.T) {
			dir := writeSyntheticPEFT(t, c)
			ad := loadAd(t, dir, nil)
			if len(ad.Pairs) != len(c.modules) {
				t.Fatalf("%d pairs, want %d", len(ad.Pairs), len(c.modules))
			}
			for _, m := range c.modules {
				p := ad.Pair(m.module + ".weight")
				if p == nil {
					t.Fatalf("no pair for %s", m.module)
				}
				if p.Rank != m.rank || p.Alpha != m.alpha {
					t.Errorf("%s: rank %d alpha %v, want %d %v", m.module, p.Rank, p.Alpha, m.rank, m.alpha)
				}
				if msg := deltaDiff(pairDelta(p), refDelta(p, m, c.rslora), 1e-6); msg != "" {
					t.Errorf("%s: %s", m.module, msg)
				}
			}
			if rep := Lint(ad, openBaseModel(t, tdBaseHF)); rep.Errors() != 0 {
				t.Errorf("lint: %+v", rep.Problems)
			}
			numpyCheck(t, dir, ad)

			// PEFT → PEFT keeps ranks, alphas and bytes.
			out := filepath.Join(t.TempDir(), "p")
			if err := Write(out, ad, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			samePairBytes(t, loadAd(t, out, nil), ad)
			numpyCheck(t, out, ad)
		})
	}
}

// numpyCheck compares every pair's delta with testdata/peft_delta.py,
// which applies PEFT's formula (rank_pattern / alpha_pattern by
// re.match(rf"(.*\.)?({key})$"), first key wins) with NumPy in float64.
// It is skipped when Debian's python3-numpy is not installed.
func numpyCheck(t *testing.T, dir string, ad *Adapter) {
	t.Helper()
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Logf("skipping the NumPy check: %s is missing", python)
		return
	}
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Logf("skipping the NumPy check: numpy is missing (apt-get install -y python3-numpy)")
		return
	}
	cmd := exec.Command(python, filepath.Join("testdata", "peft_delta.py"), dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("peft_delta.py: %v\n%s", err, stderr.Bytes())
	}
	var ref map[string][]float64
	if err := json.Unmarshal(stdout.Bytes(), &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref) != len(ad.Pairs) {
		t.Fatalf("numpy: %d modules, want %d", len(ref), len(ad.Pairs))
	}
	for i := range ad.Pairs {
		p := &ad.Pairs[i]
		want, ok := ref[moduleOf(p.Target)]
		if !ok || len(want) != p.Out*p.In {
			t.Fatalf("numpy: no delta for %s", p.Target)
		}
		if msg := deltaDiff(pairDelta(p), want, 1e-6); msg != "" {
			t.Errorf("numpy: %s: %s", p.Target, msg)
		}
	}
}

func TestPEFTRefusals(t *testing.T) {
	a := f32Tensor(peftPrefix+"model.layers.0.self_attn.q_proj.lora_A.weight", []int64{2, 64}, make([]float32, 128))
	b := f32Tensor(peftPrefix+"model.layers.0.self_attn.q_proj.lora_B.weight", []int64{64, 2}, make([]float32, 128))
	cfg := `{"peft_type": "LORA", "r": 2, "lora_alpha": 4}`
	cases := []struct {
		name   string
		config string
		extra  []formats.Tensor
	}{
		{"dora config", `{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "use_dora": true}`, nil},
		{"dora magnitude", cfg, []formats.Tensor{f32Tensor(peftPrefix+"model.layers.0.self_attn.q_proj.lora_magnitude_vector", []int64{64}, make([]float32, 64))}},
		{"embedding", cfg, []formats.Tensor{
			f32Tensor(peftPrefix+"model.embed_tokens.lora_embedding_A", []int64{2, 512}, make([]float32, 1024)),
			f32Tensor(peftPrefix+"model.embed_tokens.lora_embedding_B", []int64{64, 2}, make([]float32, 128))}},
		{"modules_to_save", cfg, []formats.Tensor{f32Tensor(peftPrefix+"lm_head.modules_to_save.default.weight", []int64{512, 64}, make([]float32, 512*64))}},
		{"saved full tensor", cfg, []formats.Tensor{f32Tensor(peftPrefix+"lm_head.weight", []int64{512, 64}, make([]float32, 512*64))}},
		{"lora bias", cfg, []formats.Tensor{f32Tensor(peftPrefix+"model.layers.0.self_attn.q_proj.lora_B.bias", []int64{64}, make([]float32, 64))}},
		{"not lora", `{"peft_type": "IA3"}`, nil},
		{"pissa", `{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "init_lora_weights": "pissa_niter_4"}`, nil},
		{"fan_in_fan_out", `{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "fan_in_fan_out": true}`, nil},
		{"3-D factor", cfg, []formats.Tensor{
			f32Tensor(peftPrefix+"model.layers.0.mlp.experts.lora_A.weight", []int64{2, 2, 2}, make([]float32, 8)),
			f32Tensor(peftPrefix+"model.layers.0.mlp.experts.lora_B.weight", []int64{2, 2}, make([]float32, 4))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writePEFTFolder(t, c.config, append([]formats.Tensor{a, b}, c.extra...))
			_, err := Load(dir, LoadOptions{})
			if !errors.Is(err, ErrCannotRepresent) || !errors.Is(err, formats.ErrUnsupported) {
				t.Fatalf("Load: %v, want ErrCannotRepresent", err)
			}
		})
	}
}

func TestPEFTMalformed(t *testing.T) {
	a := f32Tensor(peftPrefix+"model.layers.0.self_attn.q_proj.lora_A.weight", []int64{2, 64}, make([]float32, 128))
	b := f32Tensor(peftPrefix+"model.layers.0.self_attn.q_proj.lora_B.weight", []int64{64, 2}, make([]float32, 128))
	b3 := f32Tensor(peftPrefix+"model.layers.0.self_attn.q_proj.lora_B.weight", []int64{64, 3}, make([]float32, 192))
	cfg := `{"peft_type": "LORA", "r": 2, "lora_alpha": 4}`
	cases := []struct {
		name   string
		config string
		ts     []formats.Tensor
	}{
		{"A without B", cfg, []formats.Tensor{a}},
		{"B without A", cfg, []formats.Tensor{b}},
		{"rank mismatch", cfg, []formats.Tensor{a, b3}},
		{"config not JSON", `{"r": `, []formats.Tensor{a, b}},
		{"rank not integer", `{"r": 2.5, "lora_alpha": 4}`, []formats.Tensor{a, b}},
		{"alpha not a number", `{"r": 2, "lora_alpha": "four"}`, []formats.Tensor{a, b}},
		{"bad rank_pattern", `{"r": 2, "lora_alpha": 4, "rank_pattern": {"q_proj": -1}}`, []formats.Tensor{a, b}},
		{"no tensors", cfg, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writePEFTFolder(t, c.config, c.ts)
			_, err := Load(dir, LoadOptions{})
			var fe *formats.FormatError
			if !errors.Is(err, formats.ErrFormat) || !errors.As(err, &fe) || fe.File == "" {
				t.Fatalf("Load: %v, want a located ErrFormat", err)
			}
		})
	}
	// No config at all, a folder without an adapter, a pickled adapter.
	dir := writePEFTFolder(t, cfg, []formats.Tensor{a, b})
	os.Remove(filepath.Join(dir, configFile))
	if _, err := Load(dir, LoadOptions{}); !errors.Is(err, ErrNotAdapter) {
		t.Errorf("no config: %v", err)
	}
	if _, err := Load(t.TempDir(), LoadOptions{}); !errors.Is(err, ErrNotAdapter) {
		t.Errorf("empty folder: %v", err)
	}
	pk := t.TempDir()
	os.WriteFile(filepath.Join(pk, peftPickle), []byte("PK"), 0o644)
	if _, err := Load(pk, LoadOptions{}); !errors.Is(err, formats.ErrUnsupported) {
		t.Errorf("pickle: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing"), LoadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

// TestPEFTHalfPrecision: F16 and BF16 factors are decoded, and the file
// path of the weights works as well as the folder.
func TestPEFTHalfPrecision(t *testing.T) {
	ad := loadAd(t, filepath.Join(tdPEFT, peftWeights), nil)
	for _, dt := range []formats.DType{formats.F16, formats.BF16} {
		var ts []formats.Tensor
		for _, p := range ad.Pairs[:2] {
			for _, h := range []struct {
				half  byte
				shape []int64
				v     []float32
			}{{'A', []int64{int64(p.Rank), int64(p.In)}, p.A}, {'B', []int64{int64(p.Out), int64(p.Rank)}, p.B}} {
				raw := make([]byte, 2*len(h.v))
				if err := quantize.FromFloat32(raw, h.v, dt); err != nil {
					t.Fatal(err)
				}
				ts = append(ts, formats.Tensor{TensorInfo: formats.TensorInfo{Name: peftName(p.Target, h.half), DType: dt, Shape: h.shape, Size: int64(len(raw))}, Data: formats.BytesWriter(raw)})
			}
		}
		got := loadAd(t, writePEFTFolder(t, `{"peft_type": "LORA", "r": 4, "lora_alpha": 8}`, ts), nil)
		for i, p := range got.Pairs {
			for j, v := range p.A {
				if math.Abs(float64(v-ad.Pairs[i].A[j])) > 1e-2*math.Abs(float64(ad.Pairs[i].A[j]))+1e-6 {
					t.Fatalf("%v: %s A[%d] = %v, want ≈ %v", dt, p.Target, j, v, ad.Pairs[i].A[j])
				}
			}
		}
	}
}
