package lora

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

func TestPEFTMLXPEFTRoundTrip(t *testing.T) {
	base := openBaseModel(t, tdBaseHF)
	orig := loadAd(t, tdPEFT, nil)
	dir := t.TempDir()
	mlx := filepath.Join(dir, "mlx")
	info, err := WriteReport(mlx, orig, WriteOptions{Format: MLX, Base: base})
	if err != nil {
		t.Fatal(err)
	}
	if info.Scale != 2 || len(info.Folded)+len(info.Padded) != 0 {
		t.Errorf("info %+v", info)
	}
	var cfg struct {
		FineTuneType string `json:"fine_tune_type"`
		NumLayers    int    `json:"num_layers"`
		LoRA         struct {
			Rank  int      `json:"rank"`
			Scale float64  `json:"scale"`
			Keys  []string `json:"keys"`
		} `json:"lora_parameters"`
	}
	b, _ := os.ReadFile(filepath.Join(mlx, configFile))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.FineTuneType != "lora" || cfg.NumLayers != 5 || cfg.LoRA.Rank != 4 || cfg.LoRA.Scale != 2 || len(cfg.LoRA.Keys) != 7 {
		t.Errorf("config %s", b)
	}
	st, err := safetensors.Open(filepath.Join(mlx, mlxWeights))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := st.Tensor("model.layers.0.mlp.down_proj.lora_a")
	bb, _ := st.Tensor("model.layers.0.mlp.down_proj.lora_b")
	st.Close()
	if !shapeEq(a.Shape, []int64{172, 4}) || !shapeEq(bb.Shape, []int64{4, 64}) {
		t.Errorf("MLX shapes %v %v, want [172 4] [4 64]", a.Shape, bb.Shape)
	}

	m := loadAd(t, mlx, nil)
	if m.Format != MLX || m.Pairs[0].Scale != 2 || m.Pairs[0].Alpha != 0 {
		t.Fatalf("MLX read back: %s scale %v alpha %v", m.Format, m.Pairs[0].Scale, m.Pairs[0].Alpha)
	}
	samePairBytes(t, m, orig)
	peft := filepath.Join(dir, "peft")
	if err := Write(peft, m, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	back := loadAd(t, peft, nil)
	samePairBytes(t, back, orig)
	if back.Config.Rank != 4 || back.Config.Alpha != 8 {
		t.Errorf("config %+v", back.Config)
	}
	got, _ := os.ReadFile(filepath.Join(peft, peftWeights))
	want, _ := os.ReadFile(filepath.Join(tdPEFT, peftWeights))
	if !bytes.Equal(got, want) {
		t.Error("PEFT → MLX → PEFT: adapter_model.safetensors differs from the golden")
	}
}

// TestMLXOneScaleOneRank: differing scales are folded into B, lower ranks
// padded with zeros; the deltas survive (exactly where nothing is folded).
func TestMLXOneScaleOneRank(t *testing.T) {
	for _, c := range patternCases() {
		t.Run(c.name, func(t *testing.T) {
			ad := loadAd(t, writeSyntheticPEFT(t, c), nil)
			out := filepath.Join(t.TempDir(), "mlx")
			info, err := WriteReport(out, ad, WriteOptions{Format: MLX})
			if err != nil {
				t.Fatal(err)
			}
			back := loadAd(t, out, nil)
			sameEffDeltas(t, back, ad, 1e-6)
			folded := map[string]bool{}
			for _, f := range info.Folded {
				folded[f] = true
			}
			for i := range ad.Pairs {
				if !folded[ad.Pairs[i].Target] {
					if msg := deltaDiff(pairDelta(&back.Pairs[i]), pairDelta(&ad.Pairs[i]), 0); msg != "" {
						t.Errorf("%s (not folded): %s", ad.Pairs[i].Target, msg)
					}
				}
			}
			if c.folds != (len(info.Folded) > 0) {
				t.Errorf("folded %v", info.Folded)
			}
			if rep := Lint(back, openBaseModel(t, tdBaseHF)); rep.Errors() != 0 {
				t.Errorf("lint: %+v", rep.Problems)
			}
		})
	}
}

// TestLoadMLXLayout reads an adapter laid out as mlx-lm saves it and checks
// the delta against MLX's own formula, ΔWᵀ = scale·lora_a·lora_b.
func TestLoadMLXLayout(t *testing.T) {
	const in, out, r, scale = 64, 32, 3, 20.0
	rng := rand.New(rand.NewSource(3))
	la := make([]float32, in*r)
	lb := make([]float32, r*out)
	for i := range la {
		la[i] = float32(rng.NormFloat64())
	}
	for i := range lb {
		lb[i] = float32(rng.NormFloat64())
	}
	dir := writeMLXFolder(t, `{"fine_tune_type": "lora", "num_layers": 1, "lora_parameters": {"rank": 3, "dropout": 0.0, "keys": ["self_attn.v_proj"]}}`,
		[]formats.Tensor{
			f32Tensor("model.layers.4.self_attn.v_proj.lora_a", []int64{in, r}, la),
			f32Tensor("model.layers.4.self_attn.v_proj.lora_b", []int64{r, out}, lb)})
	ad := loadAd(t, dir, nil)
	if len(ad.Pairs) != 1 || ad.Format != MLX {
		t.Fatalf("%+v", ad)
	}
	p := &ad.Pairs[0]
	if p.Target != "model.layers.4.self_attn.v_proj.weight" || p.Scale != scale || p.Rank != r || p.In != in || p.Out != out {
		t.Fatalf("pair %s scale %v rank %d [%d,%d]", p.Target, p.Scale, p.Rank, p.Out, p.In)
	}
	want := make([]float64, out*in)
	for i := 0; i < in; i++ {
		for o := 0; o < out; o++ {
			var acc float64
			for k := 0; k < r; k++ {
				acc += float64(la[i*r+k]) * float64(lb[k*out+o])
			}
			want[o*in+i] = scale * acc
		}
	}
	if msg := deltaDiff(pairDelta(p), want, 1e-12); msg != "" {
		t.Error(msg)
	}
	if rep := Lint(ad, openBaseModel(t, tdBaseGGUF)); rep.Errors() != 0 || rep.Matched != 1 {
		t.Errorf("lint: %+v", rep)
	}
}

func writeMLXFolder(t *testing.T, config string, ts []formats.Tensor) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, mlxWeights))
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(t.Context(), f, map[string]string{"format": "mlx"}, ts); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, configFile), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMLXRefusals(t *testing.T) {
	a := f32Tensor("model.layers.0.self_attn.q_proj.lora_a", []int64{64, 2}, make([]float32, 128))
	b := f32Tensor("model.layers.0.self_attn.q_proj.lora_b", []int64{2, 64}, make([]float32, 128))
	cfg := `{"fine_tune_type": "lora", "lora_parameters": {"rank": 2, "scale": 10}}`
	cases := []struct {
		name   string
		config string
		extra  []formats.Tensor
	}{
		{"dora config", `{"fine_tune_type": "dora", "lora_parameters": {"rank": 2, "scale": 10}}`, nil},
		{"dora magnitude", cfg, []formats.Tensor{f32Tensor("model.layers.0.self_attn.q_proj.m", []int64{64}, make([]float32, 64))}},
		{"full fine-tune", `{"fine_tune_type": "full"}`, nil},
		{"full tensor", cfg, []formats.Tensor{f32Tensor("model.norm.weight", []int64{64}, make([]float32, 64))}},
		{"embedding", cfg, []formats.Tensor{
			f32Tensor("model.embed_tokens.lora_a", []int64{512, 2}, make([]float32, 1024)),
			f32Tensor("model.embed_tokens.lora_b", []int64{2, 64}, make([]float32, 128))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeMLXFolder(t, c.config, append([]formats.Tensor{a, b}, c.extra...)), LoadOptions{})
			if !errors.Is(err, ErrCannotRepresent) || !errors.Is(err, formats.ErrUnsupported) {
				t.Fatalf("Load: %v, want ErrCannotRepresent", err)
			}
		})
	}
	// MLX adapts the transformer blocks only: an lm_head pair is refused.
	ad := loadAd(t, writeMLXFolder(t, cfg, []formats.Tensor{a, b}), nil)
	if ad.Pairs[0].Scale != 10 {
		t.Errorf("scale %v, want 10", ad.Pairs[0].Scale)
	}
	ad.Pairs = append(ad.Pairs, Pair{Target: "lm_head.weight", Rank: 1, In: 64, Out: 512, A: make([]float32, 64), B: make([]float32, 512), Scale: 10})
	if err := Write(filepath.Join(t.TempDir(), "m"), ad, WriteOptions{Format: MLX}); !errors.Is(err, ErrCannotRepresent) {
		t.Errorf("lm_head to MLX: %v", err)
	}
	// Without lora_parameters.scale, mlx-lm's default 20 applies.
	ad = loadAd(t, writeMLXFolder(t, `{"lora_parameters": {"rank": 2}}`, []formats.Tensor{a, b}), nil)
	if ad.Pairs[0].Scale != 20 {
		t.Errorf("default scale %v", ad.Pairs[0].Scale)
	}
}
