package lora

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

// Test inputs: the goldens in testdata/ and the stories260K base model in
// both layouts.
var (
	tdPEFT     = filepath.Join("testdata", "stories260K-lora-peft")
	tdGGUF     = filepath.Join("testdata", "stories260K-lora-f32.gguf")
	tdBaseHF   = filepath.Join("..", "fixtures", "stories260K-hf")
	tdBaseGGUF = filepath.Join("..", "fixtures", "stories260K", "stories260K.gguf")
)

// openBase opens one of the base models for the test's lifetime.
func openBaseModel(t testing.TB, path string) formats.Source {
	t.Helper()
	var src formats.Source
	var err error
	if filepath.Ext(path) == ".gguf" {
		src, err = gguf.Open(path)
	} else {
		src, err = safetensors.OpenFolder(path)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func loadAd(t *testing.T, path string, base formats.Source) *Adapter {
	t.Helper()
	ad, err := Load(path, LoadOptions{Base: base})
	if err != nil {
		t.Fatalf("Load %s: %v", path, err)
	}
	return ad
}

// tensorBytes reads every tensor of a source, in file order.
func tensorBytesOf(t *testing.T, src formats.Source) ([]formats.TensorInfo, map[string][]byte) {
	t.Helper()
	out := map[string][]byte{}
	for _, ti := range src.Tensors() {
		sec, err := src.Section(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(sec)
		if err != nil {
			t.Fatal(err)
		}
		out[ti.Name] = b
	}
	return src.Tensors(), out
}

// sameTensors compares names, order, dtypes, shapes and bytes.
func sameTensorData(t *testing.T, got, want formats.Source) {
	t.Helper()
	gi, gb := tensorBytesOf(t, got)
	wi, wb := tensorBytesOf(t, want)
	if len(gi) != len(wi) {
		t.Fatalf("%d tensors, want %d", len(gi), len(wi))
	}
	for i := range wi {
		g, w := gi[i], wi[i]
		if g.Name != w.Name || g.DType != w.DType || !shapeEq(g.Shape, w.Shape) {
			t.Errorf("tensor %d: %s %v %v, want %s %v %v", i, g.Name, g.DType, g.Shape, w.Name, w.DType, w.Shape)
			continue
		}
		if !bytes.Equal(gb[g.Name], wb[w.Name]) {
			t.Errorf("tensor %s: bytes differ", w.Name)
		}
	}
}

func shapeEq(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPEFTToGGUFMatchesLlamaCpp(t *testing.T) {
	for _, basePath := range []string{tdBaseHF, tdBaseGGUF} {
		t.Run(filepath.Base(basePath), func(t *testing.T) {
			base := openBaseModel(t, basePath)
			ad := loadAd(t, tdPEFT, nil)
			out := filepath.Join(t.TempDir(), "lora.gguf")
			info, err := WriteReport(out, ad, WriteOptions{Format: GGUF, Base: base})
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Folded) != 0 || info.Alpha != 8 {
				t.Errorf("info %+v: want alpha 8, nothing folded", info)
			}
			got, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			want, err := gguf.Open(tdGGUF)
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			sameTensorData(t, got, want)

			naming := map[string]bool{"general.name": true, "general.finetune": true, "general.basename": true}
			var wantKVs []formats.KV
			for _, kv := range want.Meta().KVs() {
				if !naming[kv.Key] {
					wantKVs = append(wantKVs, kv)
				}
			}
			gotKVs := got.Meta().KVs()
			if len(gotKVs) != len(wantKVs) {
				t.Fatalf("KVs %v, want %v", gotKVs, wantKVs)
			}
			for i := range wantKVs {
				if gotKVs[i].Key != wantKVs[i].Key || gotKVs[i].Value.Type != wantKVs[i].Value.Type || gotKVs[i].Value.V != wantKVs[i].Value.V {
					t.Errorf("KV %d: %+v, want %+v", i, gotKVs[i], wantKVs[i])
				}
			}
		})
	}
}

func TestGGUFToPEFTMatchesGolden(t *testing.T) {
	for _, basePath := range []string{tdBaseHF, tdBaseGGUF} {
		t.Run(filepath.Base(basePath), func(t *testing.T) {
			base := openBaseModel(t, basePath)
			ad := loadAd(t, tdGGUF, base)
			if ad.Format != GGUF || ad.Arch != "llama" || len(ad.Pairs) != 35 {
				t.Fatalf("format %s arch %s pairs %d", ad.Format, ad.Arch, len(ad.Pairs))
			}
			for _, p := range ad.Pairs {
				if p.Rank != 4 || p.Alpha != 8 || p.Scale != 2 {
					t.Fatalf("%s: rank %d alpha %v scale %v", p.Target, p.Rank, p.Alpha, p.Scale)
				}
			}
			out := filepath.Join(t.TempDir(), "peft")
			if err := Write(out, ad, WriteOptions{Format: PEFT}); err != nil {
				t.Fatal(err)
			}
			got, err := safetensors.Open(filepath.Join(out, peftWeights))
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			want, err := safetensors.Open(filepath.Join(tdPEFT, peftWeights))
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			sameTensorData(t, got, want)

			back := loadAd(t, out, nil)
			if back.Config.Rank != 4 || back.Config.Alpha != 8 || back.Config.RSLoRA {
				t.Errorf("config %+v", back.Config)
			}
			sameEffDeltas(t, back, loadAd(t, tdPEFT, nil), 0)
		})
	}
}

func TestGGUFNeedsBaseForQK(t *testing.T) {
	_, err := Load(tdGGUF, LoadOptions{})
	if !errors.Is(err, ErrNeedBase) || !errors.Is(err, formats.ErrUnsupported) {
		t.Fatalf("Load without base: %v, want ErrNeedBase", err)
	}
	ad := loadAd(t, tdPEFT, nil)
	err = Write(filepath.Join(t.TempDir(), "x.gguf"), ad, WriteOptions{})
	if !errors.Is(err, ErrNeedBase) {
		t.Fatalf("Write without base: %v, want ErrNeedBase", err)
	}
}

// TestPEFTGGUFPEFTRoundTrip: the golden needs no folding, so the bytes
// survive; the permutation is undone exactly.
func TestPEFTGGUFPEFTRoundTrip(t *testing.T) {
	base := openBaseModel(t, tdBaseGGUF)
	orig := loadAd(t, tdPEFT, base)
	dir := t.TempDir()
	g := filepath.Join(dir, "a.gguf")
	if err := Write(g, orig, WriteOptions{Base: base}); err != nil {
		t.Fatal(err)
	}
	back := loadAd(t, g, base)
	samePairBytes(t, back, orig)
}

// TestGGUFFoldsDifferingScales: alpha_pattern and rsLoRA with mixed ranks
// give scales GGUF's single alpha cannot express; they are folded into B
// and the effective delta survives to float32 rounding.
func TestGGUFFoldsDifferingScales(t *testing.T) {
	base := openBaseModel(t, tdBaseHF)
	for _, c := range patternCases() {
		t.Run(c.name, func(t *testing.T) {
			dir := writeSyntheticPEFT(t, c)
			ad := loadAd(t, dir, nil)
			out := filepath.Join(t.TempDir(), "a.gguf")
			info, err := WriteReport(out, ad, WriteOptions{Base: base})
			if err != nil {
				t.Fatal(err)
			}
			if c.folds != (len(info.Folded) > 0) {
				t.Errorf("folded %v, want folding %v", info.Folded, c.folds)
			}
			back := loadAd(t, out, base)
			sameEffDeltas(t, back, ad, 1e-6)
			peft := filepath.Join(t.TempDir(), "p")
			if err := Write(peft, back, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			sameEffDeltas(t, loadAd(t, peft, nil), ad, 1e-6)
		})
	}
}

func TestGGUFRefusals(t *testing.T) {
	base := openBaseModel(t, tdBaseGGUF)
	ad := loadAd(t, tdPEFT, nil)
	emb := *ad
	emb.Pairs = append([]Pair{{Target: "model.embed_tokens.weight", Rank: 1, In: 64, Out: 512, A: make([]float32, 64), B: make([]float32, 512), Scale: 1}}, ad.Pairs...)
	err := Write(filepath.Join(t.TempDir(), "e.gguf"), &emb, WriteOptions{Base: base})
	if !errors.Is(err, ErrCannotRepresent) || !errors.Is(err, formats.ErrUnsupported) {
		t.Errorf("embedding target: %v", err)
	}
	odd := *ad
	odd.Pairs = append([]Pair{{Target: "model.layers.0.mlp.experts.0.w1.weight", Rank: 1, In: 2, Out: 2, A: make([]float32, 2), B: make([]float32, 2), Scale: 1}}, ad.Pairs...)
	err = Write(filepath.Join(t.TempDir(), "o.gguf"), &odd, WriteOptions{Base: base})
	if !errors.Is(err, ErrCannotRepresent) {
		t.Errorf("target without a GGUF name: %v", err)
	}

	// A GGUF that is a model, not an adapter.
	if _, err := Load(tdBaseGGUF, LoadOptions{Base: base}); !errors.Is(err, ErrNotAdapter) || !errors.Is(err, formats.ErrFormat) {
		t.Errorf("model GGUF: %v", err)
	}
	// Embedding adapters and norm tensors in a GGUF LoRA.
	for name, tensors := range map[string][]formats.Tensor{
		"token_embd": {f32Tensor("token_embd.weight.lora_a", []int64{4, 64}, make([]float32, 256)), f32Tensor("token_embd.weight.lora_b", []int64{512, 4}, make([]float32, 2048))},
		"norm":       {f32Tensor("blk.0.attn_norm.weight", []int64{64}, make([]float32, 64))},
	} {
		p := writeGGUFAdapter(t, "llama", 8, tensors)
		if _, err := Load(p, LoadOptions{Base: base}); !errors.Is(err, ErrCannotRepresent) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A lora_a without its lora_b, and a lora_b of the wrong rank.
	p := writeGGUFAdapter(t, "llama", 8, []formats.Tensor{f32Tensor("blk.0.attn_v.weight.lora_a", []int64{4, 64}, make([]float32, 256))})
	if _, err := Load(p, LoadOptions{Base: base}); !errors.Is(err, ErrBadAdapter) {
		t.Errorf("half pair: %v", err)
	}
	p = writeGGUFAdapter(t, "llama", 8, []formats.Tensor{
		f32Tensor("blk.0.attn_v.weight.lora_a", []int64{4, 64}, make([]float32, 256)),
		f32Tensor("blk.0.attn_v.weight.lora_b", []int64{32, 2}, make([]float32, 64))})
	if _, err := Load(p, LoadOptions{Base: base}); !errors.Is(err, ErrBadAdapter) {
		t.Errorf("rank mismatch: %v", err)
	}
	// An adapter for another architecture than the base.
	p = writeGGUFAdapter(t, "qwen2", 8, []formats.Tensor{
		f32Tensor("blk.0.attn_v.weight.lora_a", []int64{4, 64}, make([]float32, 256)),
		f32Tensor("blk.0.attn_v.weight.lora_b", []int64{32, 4}, make([]float32, 128))})
	if _, err := Load(p, LoadOptions{Base: base}); !errors.Is(err, formats.ErrFormat) {
		t.Errorf("architecture mismatch: %v", err)
	}
}

// TestGGUFAlphaZero: llama.cpp applies the user scale alone when alpha is
// 0, and qtool reads such an adapter with scale 1.
func TestGGUFAlphaZero(t *testing.T) {
	a := []float32{1, 2, 3, 4}
	b := make([]float32, 32*2)
	b[0] = 1
	p := writeGGUFAdapter(t, "llama", 0, []formats.Tensor{
		f32Tensor("blk.0.attn_v.weight.lora_a", []int64{2, 2}, a),
		f32Tensor("blk.0.attn_v.weight.lora_b", []int64{32, 2}, b)})
	ad := loadAd(t, p, nil)
	if len(ad.Pairs) != 1 || ad.Pairs[0].Scale != 1 || ad.Pairs[0].Target != "model.layers.0.self_attn.v_proj.weight" {
		t.Fatalf("%+v", ad.Pairs)
	}
}

// writeGGUFAdapter writes a GGUF LoRA with the given tensors.
func writeGGUFAdapter(t *testing.T, archName string, alpha float32, ts []formats.Tensor) string {
	t.Helper()
	meta := formats.NewMeta()
	meta.Set(keyArch, formats.ValString(archName))
	meta.Set(keyType, formats.ValString("adapter"))
	meta.Set(keyAdapterType, formats.ValString("lora"))
	meta.Set(keyAlpha, formats.ValFloat32(alpha))
	p := filepath.Join(t.TempDir(), "a.gguf")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := gguf.Write(t.Context(), f, meta, ts, gguf.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// delta is Scale·B·A in float64.
func pairDelta(p *Pair) []float64 {
	d := make([]float64, p.Out*p.In)
	for o := 0; o < p.Out; o++ {
		for k := 0; k < p.Rank; k++ {
			b := float64(p.B[o*p.Rank+k])
			if b == 0 {
				continue
			}
			row := p.A[k*p.In : (k+1)*p.In]
			for i, a := range row {
				d[o*p.In+i] += b * float64(a)
			}
		}
	}
	for i := range d {
		d[i] *= p.Scale
	}
	return d
}

// sameDeltas compares the effective deltas of two adapters, exactly when
// tol is 0, else within tol relative to the largest element of each delta.
func sameEffDeltas(t *testing.T, got, want *Adapter, tol float64) {
	t.Helper()
	if len(got.Pairs) != len(want.Pairs) {
		t.Fatalf("%d pairs, want %d", len(got.Pairs), len(want.Pairs))
	}
	for i := range want.Pairs {
		g, w := &got.Pairs[i], &want.Pairs[i]
		if g.Target != w.Target || g.In != w.In || g.Out != w.Out {
			t.Fatalf("pair %d: %s [%d,%d], want %s [%d,%d]", i, g.Target, g.Out, g.In, w.Target, w.Out, w.In)
		}
		dg, dw := pairDelta(g), pairDelta(w)
		if err := deltaDiff(dg, dw, tol); err != "" {
			t.Errorf("%s: %s", w.Target, err)
		}
	}
}

func deltaDiff(got, want []float64, tol float64) string {
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(v))
	}
	for i := range want {
		if tol == 0 {
			if got[i] != want[i] {
				return "element " + strconv.Itoa(i) + " differs"
			}
		} else if math.Abs(got[i]-want[i]) > tol*scale {
			return "element " + strconv.Itoa(i) + " differs beyond tolerance"
		}
	}
	return ""
}

// samePairs compares pairs exactly: rank, scale and the bytes of A and B.
func samePairBytes(t *testing.T, got, want *Adapter) {
	t.Helper()
	if len(got.Pairs) != len(want.Pairs) {
		t.Fatalf("%d pairs, want %d", len(got.Pairs), len(want.Pairs))
	}
	for i := range want.Pairs {
		g, w := got.Pairs[i], want.Pairs[i]
		if g.Target != w.Target || g.Rank != w.Rank || g.In != w.In || g.Out != w.Out || g.Scale != w.Scale {
			t.Errorf("pair %d: %s r%d %dx%d scale %v, want %s r%d %dx%d scale %v", i, g.Target, g.Rank, g.Out, g.In, g.Scale, w.Target, w.Rank, w.Out, w.In, w.Scale)
			continue
		}
		if !sameF32Bits(g.A, w.A) || !sameF32Bits(g.B, w.B) {
			t.Errorf("%s: factor bytes differ", w.Target)
		}
	}
}

func sameF32Bits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
