package arch

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// Every pair maps both ways, for blocks 0, 7 and 123, and no two pairs
// share a name on either side.
func TestNamesMapBack(t *testing.T) {
	for _, a := range All() {
		seenHF, seenGGUF := map[string]bool{}, map[string]bool{}
		for _, p := range a.Tensors {
			if seenHF[p.HF] || seenGGUF[p.GGUF] {
				t.Errorf("%s: duplicate pair %v", a.ModelType, p)
			}
			seenHF[p.HF], seenGGUF[p.GGUF] = true, true
			if strings.Contains(p.HF, Block) != strings.Contains(p.GGUF, Block) {
				t.Errorf("%s: %v: block placeholder on one side only", a.ModelType, p)
			}
			for _, blk := range []string{"0", "7", "123"} {
				hf, gg := strings.Replace(p.HF, Block, blk, 1), strings.Replace(p.GGUF, Block, blk, 1)
				if len(gg) > 63 {
					t.Errorf("%s: GGUF name %q is longer than 63 bytes", a.ModelType, gg)
				}
				got, q, dropped, ok := a.GGUFName(hf)
				if !ok || dropped || got != gg || q != p {
					t.Errorf("%s: GGUFName(%q) = %q, %v, %v; want %q", a.ModelType, hf, got, ok, dropped, gg)
				}
				back, q, ok := a.HFName(gg)
				if !ok || back != hf || q != p {
					t.Errorf("%s: HFName(%q) = %q, %v; want %q", a.ModelType, gg, back, ok, hf)
				}
				if want := -1; !strings.Contains(p.HF, Block) && BlockOf(hf) != want {
					t.Errorf("BlockOf(%q) = %d", hf, BlockOf(hf))
				}
			}
		}
		if _, _, _, ok := a.GGUFName("model.layers.3.self_attn.fused.weight"); ok {
			t.Errorf("%s: an unknown name mapped", a.ModelType)
		}
		if _, _, dropped, _ := a.GGUFName("model.layers.3.self_attn.rotary_emb.inv_freq"); !dropped {
			t.Errorf("%s: inv_freq not dropped", a.ModelType)
		}
	}
	if BlockOf("blk.12.attn_q.weight") != 12 || BlockOf("model.layers.4.mlp.up_proj.weight") != 4 {
		t.Error("BlockOf")
	}
}

// Only the llama family permutes, q with the heads and k with the KV heads.
func TestPermutedTensors(t *testing.T) {
	for _, a := range []*Arch{&Llama, &Mistral} {
		for _, p := range a.Tensors {
			var want Permutation
			switch {
			case strings.Contains(p.HF, "q_proj"):
				want = PermuteHeads
			case strings.Contains(p.HF, "k_proj"):
				want = PermuteKVHeads
			}
			if p.Permute != want {
				t.Errorf("%s %s: permutation %v, want %v", a.ModelType, p.HF, p.Permute, want)
			}
		}
	}
	if Qwen2.HasPermutation() {
		t.Error("qwen2 must not permute (NeoX RoPE)")
	}
	if !Llama.HasPermutation() || PermuteHeads.Heads(8, 4) != 8 || PermuteKVHeads.Heads(8, 4) != 4 || NoPermutation.Heads(8, 4) != 0 {
		t.Error("heads")
	}
}

func TestParamTypes(t *testing.T) {
	for _, a := range All() {
		for _, p := range append(append([]Param(nil), a.Params...), a.PostParams...) {
			if p.Type != formats.TypeUint32 && p.Type != formats.TypeFloat32 {
				t.Errorf("%s: %s has type %v", a.ModelType, p.GGUF, p.Type)
			}
		}
	}
}

func TestLookup(t *testing.T) {
	for _, c := range []struct {
		classes []string
		mt      string
		want    *Arch
	}{
		{[]string{"LlamaForCausalLM"}, "llama", &Llama},
		{[]string{"MistralForCausalLM"}, "mistral", &Mistral},
		{[]string{"Qwen2ForCausalLM"}, "qwen2", &Qwen2},
		{nil, "qwen2", &Qwen2},
	} {
		a, err := ByHF(c.classes, c.mt)
		if err != nil || a != c.want {
			t.Errorf("ByHF(%v, %q) = %v, %v", c.classes, c.mt, a, err)
		}
	}
	if a, err := ByGGUF("llama"); err != nil || a != &Llama {
		t.Errorf("ByGGUF(llama) = %v, %v", a, err)
	}
	if a, err := ByGGUF("qwen2"); err != nil || a != &Qwen2 {
		t.Errorf("ByGGUF(qwen2) = %v, %v", a, err)
	}
	_, err := ByHF([]string{"GemmaForCausalLM"}, "gemma")
	if !errors.Is(err, ErrUnknownArch) || !errors.Is(err, formats.ErrUnsupported) || !strings.Contains(err.Error(), "GemmaForCausalLM") {
		t.Errorf("ByHF(gemma) error %v", err)
	}
	_, err = ByGGUF("phi3")
	if !errors.Is(err, formats.ErrUnsupported) || !strings.Contains(err.Error(), "phi3") {
		t.Errorf("ByGGUF(phi3) error %v", err)
	}
}

// swapAxes12 is numpy's a.reshape(n, 2, D/2, C).swapaxes(1, 2).reshape(R, C)
// computed with explicit strides, the definition of §2.2.
func swapAxes12(src []float32, n, rows, cols int) []float32 {
	d := rows / n
	out := make([]float32, 0, len(src))
	// Iterate the swapped shape (n, D/2, 2, C) in row-major order; element
	// (h, j, s, c) is the source element (h, s, j, c).
	for h := 0; h < n; h++ {
		for j := 0; j < d/2; j++ {
			for s := 0; s < 2; s++ {
				for c := 0; c < cols; c++ {
					out = append(out, src[((h*2+s)*(d/2)+j)*cols+c])
				}
			}
		}
	}
	return out
}

// The row maps agree with the reshape definition and are inverses of
// each other, on random matrices of several shapes.
func TestPermutationInverse(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ n, rows, cols int }{
		{1, 2, 1}, {8, 64, 64}, {4, 32, 64}, {2, 12, 5}, {3, 18, 7}, {32, 2048, 3}, {6, 36, 1},
	} {
		q, err := NewQKRows(int64(c.rows), int64(c.n))
		if err != nil {
			t.Fatal(err)
		}
		hf := make([]float32, c.rows*c.cols)
		for i := range hf {
			hf[i] = r.Float32()
		}
		gg := make([]float32, len(hf))
		for g := 0; g < c.rows; g++ {
			copy(gg[g*c.cols:(g+1)*c.cols], hf[int(q.HFRow(int64(g)))*c.cols:])
		}
		want := swapAxes12(hf, c.n, c.rows, c.cols)
		for i := range want {
			if gg[i] != want[i] {
				t.Fatalf("n=%d rows=%d: forward differs from the reshape definition at %d", c.n, c.rows, i)
			}
		}
		back := make([]float32, len(hf))
		for x := 0; x < c.rows; x++ {
			copy(back[x*c.cols:(x+1)*c.cols], gg[int(q.GGUFRow(int64(x)))*c.cols:])
		}
		for i := range hf {
			if back[i] != hf[i] {
				t.Fatalf("n=%d rows=%d: inverse does not restore element %d", c.n, c.rows, i)
			}
		}
		seen := make([]bool, c.rows)
		for g := int64(0); g < int64(c.rows); g++ {
			x := q.HFRow(g)
			if seen[x] || q.GGUFRow(x) != g {
				t.Fatalf("not a bijection at row %d", g)
			}
			seen[x] = true
		}
	}
	for _, bad := range []struct{ rows, n int64 }{{0, 1}, {10, 4}, {12, 4}, {8, 0}, {6, 6}} {
		if _, err := NewQKRows(bad.rows, bad.n); err == nil {
			t.Errorf("NewQKRows(%d, %d) accepted", bad.rows, bad.n)
		}
	}
}
