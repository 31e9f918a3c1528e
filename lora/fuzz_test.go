package lora

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// FuzzPEFTConfig: adapter_config.json never panics the parser, and what
// parses has a positive rank and pattern ranks.
func FuzzPEFTConfig(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(tdPEFT, configFile)); err == nil {
		f.Add(b)
	}
	for _, c := range patternCases() {
		f.Add([]byte(c.config))
	}
	f.Add([]byte(`{"r": 1e400}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		pc, err := parsePEFTConfig(b, "adapter_config.json")
		if err != nil {
			if !formats.IsInputError(err) {
				t.Fatalf("error of no class: %v", err)
			}
			return
		}
		if pc.Rank <= 0 {
			t.Fatalf("rank %d", pc.Rank)
		}
		for k, r := range pc.RankPattern {
			if r <= 0 {
				t.Fatalf("rank_pattern %q: %d", k, r)
			}
			matchPattern(k, "model.layers.0.self_attn.q_proj")
		}
	})
}

// FuzzLoadGGUF: a mutated GGUF LoRA never panics Load (with the base whose
// head counts permute q/k), and what loads lints and writes back.
func FuzzLoadGGUF(f *testing.F) {
	golden, err := os.ReadFile(tdGGUF)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden[:6000])
	f.Add(golden)
	base := openBaseModel(f, tdBaseGGUF)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "a.gguf")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		ad, err := Load(p, LoadOptions{Base: base})
		if err != nil {
			if !formats.IsInputError(err) && !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("error of no class: %v", err)
			}
			return
		}
		Lint(ad, base)
		if err := Write(filepath.Join(dir, "out.gguf"), ad, WriteOptions{Base: base, Force: true}); err != nil && !formats.IsInputError(err) {
			t.Fatalf("write: %v", err)
		}
	})
}
