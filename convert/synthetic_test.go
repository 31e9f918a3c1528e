package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/quantize"
)

// syntheticConfigs are small shapes with GQA, odd sizes, every dtype,
// tied and untied embeddings.
func syntheticConfigs(t testing.TB) []fixtures.ModelConfig {
	tiny, ok := fixtures.Preset("tiny")
	if !ok {
		t.Fatal("no tiny preset")
	}
	odd := fixtures.ModelConfig{Name: "odd-f16", Vocab: 300, Embd: 48, FF: 100, Layers: 3, Heads: 6, KVHeads: 2,
		Ctx: 64, DType: formats.F16, Seed: 3, RopeTheta: 500000, RMSEps: 1e-6}
	tied := fixtures.ModelConfig{Name: "tied-bf16", Vocab: 270, Embd: 48, FF: 80, Layers: 2, Heads: 3, KVHeads: 1,
		Ctx: 32, TiedEmbeddings: true, DType: formats.BF16, Seed: 4, RopeTheta: 10000, RMSEps: 1e-5}
	return []fixtures.ModelConfig{tiny, odd, tied}
}

// The fixtures' HF and GGUF files of one config are the same model (q/k
// permuted as llama.cpp's converter does): HF → GGUF gives the GGUF's
// tensors, and GGUF → HF the HF folder's, byte for byte.
func TestSyntheticBothWays(t *testing.T) {
	for _, c := range syntheticConfigs(t) {
		t.Run(c.Name, func(t *testing.T) {
			hfDir := syntheticHF(t, c, 0)
			ref := openGGUF(t, syntheticGGUF(t, c))

			out, rep := hfToGGUFFile(t, openHF(t, hfDir), Options{})
			got := openGGUF(t, out)
			sameTensors(t, ref, got, nil)
			if ft, _ := got.Meta().Uint("general.file_type"); uint32(ft) != fileTypeOf(c.DType) {
				t.Errorf("file_type %d for %v", ft, c.DType)
			}
			if want := 2 * c.Layers; len(rep.Permuted) != want {
				t.Errorf("%d permuted, want %d", len(rep.Permuted), want)
			}
			if _, ok := formats.Lookup(got, "output.weight"); ok == c.TiedEmbeddings {
				t.Errorf("output.weight present = %v with tied = %v", ok, c.TiedEmbeddings)
			}
			for _, k := range []string{"llama.attention.head_count_kv", "llama.rope.dimension_count", "llama.vocab_size"} {
				if !got.Meta().Has(k) {
					t.Errorf("no %s", k)
				}
			}

			// GGUF → HF with the HF dtype gives the HF folder back exactly
			// (F32 norms narrow back to F16/BF16 without loss: they are ones).
			back, _ := ggufToHFFolder(t, ref, Options{DType: c.DType}, "back", 0)
			sameTensors(t, openFolder(t, hfDir), openFolder(t, back), nil)
			sameConfig(t, filepath.Join(hfDir, "config.json"), filepath.Join(back, "config.json"))
		})
	}
}

// Sharded input: tensor order follows the shards (names sorted in each),
// as the converter writes it; the bytes do not depend on the sharding.
func TestShardedInputOrder(t *testing.T) {
	c := syntheticConfigs(t)[0]
	dir := syntheticHF(t, c, 60000)
	f := openFolder(t, dir)
	if len(f.Shards()) < 2 {
		t.Fatalf("%d shards", len(f.Shards()))
	}
	_, ts, _, err := ToGGUF(openHF(t, dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	shard := ""
	var group []string
	flush := func() {
		sortStrings(group)
		for _, n := range group {
			want = append(want, ggufName(n))
		}
		group = nil
	}
	for _, ti := range f.Tensors() {
		if ti.File != shard {
			flush()
			shard = ti.File
		}
		group = append(group, ti.Name)
	}
	flush()
	for i := range ts {
		if ts[i].Name != want[i] {
			t.Fatalf("tensor %d is %s, want %s", i, ts[i].Name, want[i])
		}
	}
	one, _ := hfToGGUFFile(t, openHF(t, syntheticHF(t, c, 0)), Options{})
	many, _ := hfToGGUFFile(t, openHF(t, dir), Options{})
	sameTensors(t, openGGUF(t, one), openGGUF(t, many), nil)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// --dtype casts the matrices with round-to-nearest-even and keeps 1-D and
// norm tensors F32.
func TestDTypeCasts(t *testing.T) {
	c := syntheticConfigs(t)[0] // F32
	m := openHF(t, syntheticHF(t, c, 0))
	for _, d := range []formats.DType{formats.F16, formats.BF16} {
		p, rep := hfToGGUFFile(t, m, Options{DType: d})
		g := openGGUF(t, p)
		if rep.FileType != fileTypeOf(d) {
			t.Errorf("%v: file type %d", d, rep.FileType)
		}
		for _, ti := range g.Tensors() {
			want := d
			if len(ti.Shape) == 1 {
				want = formats.F32
			}
			if ti.DType != want {
				t.Errorf("%v: %s is %v, want %v", d, ti.Name, ti.DType, want)
				continue
			}
			if want == formats.F32 {
				continue
			}
			src := tensorBytes(t, m.Source, hfName(ti.Name))
			vals := make([]float32, len(src)/4)
			quantize.ToFloat32(vals, src, formats.F32)
			if pair := pairOf(ti.Name); pair.Permute != arch.NoPermutation {
				vals = permuteRows(t, vals, ti.Shape, pair.Permute.Heads(int64(c.Heads), int64(c.KVHeads)))
			}
			exp := make([]byte, len(vals)*2)
			quantize.FromFloat32(exp, vals, d)
			if !bytes.Equal(exp, tensorBytes(t, g, ti.Name)) {
				t.Errorf("%v: %s is not the RNE cast of the source", d, ti.Name)
			}
		}
	}
}

func pairOf(gguf string) arch.Pair {
	_, p, _ := arch.Llama.HFName(gguf)
	return p
}

// permuteRows applies the HF → GGUF row permutation to a float matrix.
func permuteRows(t testing.TB, v []float32, shape []int64, n int64) []float32 {
	q, err := arch.NewQKRows(shape[0], n)
	if err != nil {
		t.Fatal(err)
	}
	cols := int64(len(v)) / shape[0]
	out := make([]float32, len(v))
	for g := int64(0); g < shape[0]; g++ {
		copy(out[g*cols:(g+1)*cols], v[q.HFRow(g)*cols:])
	}
	return out
}

// writeFolder writes tensors and config.json as an HF folder.
func writeFolder(t testing.TB, dir string, ts []formats.Tensor, cfg map[string]any) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := safetensors.WriteFolder(context.Background(), dir, map[string]string{"format": "pt"}, ts, safetensors.FolderOptions{}); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// randTensor is a deterministic F16 or F32 tensor of small values.
func randTensor(name string, d formats.DType, shape []int64, seed uint32) formats.Tensor {
	n := int64(1)
	for _, s := range shape {
		n *= s
	}
	vals := make([]float32, n)
	x := seed*2654435761 + 1
	for i := range vals {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		vals[i] = float32(int32(x%2001)-1000) / 16384
	}
	b := make([]byte, n*int64(d.Bits()/8))
	quantize.FromFloat32(b, vals, d)
	return formats.Tensor{TensorInfo: formats.TensorInfo{Name: name, DType: d, Shape: shape, Size: int64(len(b))}, Data: formats.BytesWriter(b)}
}

// qwen2Folder writes a Qwen2-shaped model: the tiny llama tensors plus
// q/k/v biases, F16, tied embeddings (no lm_head), yarn rope scaling.
func qwen2Folder(t testing.TB) (string, fixtures.ModelConfig) {
	c := fixtures.ModelConfig{Name: "qwen2-tiny", Vocab: 300, Embd: 64, FF: 96, Layers: 2, Heads: 4, KVHeads: 2,
		Ctx: 256, TiedEmbeddings: true, DType: formats.F16, Seed: 9, RopeTheta: 1000000, RMSEps: 1e-6}
	ts, err := fixtures.Tensors(c, fixtures.HF)
	if err != nil {
		t.Fatal(err)
	}
	for l := 0; l < c.Layers; l++ {
		for i, p := range []struct {
			proj string
			rows int
		}{{"q", c.Embd}, {"k", c.KVDim()}, {"v", c.KVDim()}} {
			ts = append(ts, randTensor("model.layers."+itoa(l)+".self_attn."+p.proj+"_proj.bias", formats.F16, []int64{int64(p.rows)}, uint32(10*l+i+1)))
		}
	}
	cfg := map[string]any{
		"architectures": []string{"Qwen2ForCausalLM"}, "model_type": "qwen2",
		"attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
		"hidden_size": c.Embd, "initializer_range": 0.02, "intermediate_size": c.FF,
		"max_position_embeddings": c.Ctx, "max_window_layers": c.Layers,
		"num_attention_heads": c.Heads, "num_hidden_layers": c.Layers, "num_key_value_heads": c.KVHeads,
		"rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": c.Ctx,
		"rope_scaling":        map[string]any{"factor": 4.0, "original_max_position_embeddings": 64, "type": "yarn"},
		"tie_word_embeddings": true, "torch_dtype": "float16", "use_cache": true, "use_sliding_window": false,
		"vocab_size": c.Vocab,
	}
	dir := filepath.Join(t.TempDir(), c.Name)
	writeFolder(t, dir, ts, cfg)
	addTokenizer(t, c, dir)
	return dir, c
}

func itoa(i int) string { return strconv.Itoa(i) }

// Qwen2: biases kept (F32 in GGUF), nothing permuted, no output.weight for
// tied embeddings, qwen2 keys (no vocab_size, no rope.dimension_count),
// yarn scaling; and back to the same HF tensors and config.
func TestQwen2WithBiases(t *testing.T) {
	dir, c := qwen2Folder(t)
	src := openHF(t, dir)
	p, rep := hfToGGUFFile(t, src, Options{})
	g := openGGUF(t, p)
	if rep.Architecture != "qwen2" || len(rep.Permuted) != 0 {
		t.Errorf("report %+v", rep)
	}
	if a, _ := g.Meta().String("general.architecture"); a != "qwen2" {
		t.Errorf("architecture %q", a)
	}
	for _, k := range []string{"qwen2.vocab_size", "qwen2.rope.dimension_count"} {
		if g.Meta().Has(k) {
			t.Errorf("%s written; llama.cpp's converter writes none for qwen2", k)
		}
	}
	if s, _ := g.Meta().String("qwen2.rope.scaling.type"); s != "yarn" {
		t.Errorf("rope scaling type %q", s)
	}
	if o, _ := g.Meta().Uint("qwen2.rope.scaling.original_context_length"); o != 64 {
		t.Errorf("original context %d", o)
	}
	if _, ok := formats.Lookup(g, "output.weight"); ok {
		t.Error("output.weight written for tied embeddings")
	}
	for l := 0; l < c.Layers; l++ {
		for _, proj := range []string{"q", "k", "v"} {
			name := "blk." + itoa(l) + ".attn_" + proj + ".bias"
			ti, ok := formats.Lookup(g, name)
			if !ok || ti.DType != formats.F32 {
				t.Errorf("%s: %v %v", name, ok, ti.DType)
				continue
			}
			// Not permuted: the F32 widening of the HF bias, row for row.
			hf := tensorBytes(t, src.Source, "model.layers."+itoa(l)+".self_attn."+proj+"_proj.bias")
			vals := make([]float32, len(hf)/2)
			quantize.ToFloat32(vals, hf, formats.F16)
			if !bytes.Equal(f32Bytes(vals), tensorBytes(t, g, name)) {
				t.Errorf("%s differs from the HF bias", name)
			}
		}
		name := "blk." + itoa(l) + ".attn_q.weight"
		if !bytes.Equal(tensorBytes(t, src.Source, "model.layers."+itoa(l)+".self_attn.q_proj.weight"), tensorBytes(t, g, name)) {
			t.Errorf("%s was permuted", name)
		}
	}
	back, out := ggufToHFFolder(t, g, Options{DType: formats.F16}, "qwen2-back", 0)
	if !strings.Contains(string(out.Config), `"Qwen2ForCausalLM"`) {
		t.Errorf("config %s", out.Config)
	}
	sameTensors(t, src.Source, openFolder(t, back), nil)
	sameConfig(t, filepath.Join(dir, "config.json"), filepath.Join(back, "config.json"))
}

// llama3Folder is a synthetic HF folder with Llama 3.1-style rope
// scaling: theta 500000, head_dim 64, factor 32.
func llama3Folder(t testing.TB) string {
	c := fixtures.ModelConfig{Name: "llama3-rope", Vocab: 300, Embd: 128, FF: 64, Layers: 1, Heads: 2, KVHeads: 1,
		Ctx: 512, DType: formats.BF16, Seed: 5, RopeTheta: 500000, RMSEps: 1e-5}
	dir := syntheticHF(t, c, 0)
	var cfg map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	json.Unmarshal(raw, &cfg)
	cfg["rope_scaling"] = map[string]any{"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
		"original_max_position_embeddings": 8192, "rope_type": "llama3"}
	raw, _ = json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Llama 3 rope scaling generates rope_freqs.weight (first, F32, head_dim/2
// values) by the converter's formula, and GGUF → HF restores rope_scaling.
func TestLlama3RopeFreqs(t *testing.T) {
	dir := llama3Folder(t)
	var cfg map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	json.Unmarshal(raw, &cfg)
	p, rep := hfToGGUFFile(t, openHF(t, dir), Options{})
	g := openGGUF(t, p)
	if len(rep.Generated) != 1 || g.Tensors()[0].Name != arch.RopeFreqsTensor {
		t.Fatalf("rope_freqs not generated first: %v", rep.Generated)
	}
	ti := g.Tensors()[0]
	if ti.DType != formats.F32 || !equalShape(ti.Shape, []int64{32}) {
		t.Fatalf("rope_freqs %v %v", ti.DType, ti.Shape)
	}
	b := tensorBytes(t, g, ti.Name)
	// Reference in float64: the three bands of the formula.
	smooth := 0
	for i := 0; i < 32; i++ {
		got := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		freq := 1 / math.Pow(500000, float64(2*i)/64)
		wave := 2 * math.Pi / freq
		var want float64
		switch {
		case wave < 8192/4.0:
			want = 1
		case wave > 8192/1.0:
			want = 32
		default:
			s := (8192/wave - 1) / (4 - 1)
			want = 1 / ((1-s)/32 + s)
			smooth++
		}
		if math.Abs(float64(got)-want) > 1e-5*want {
			t.Errorf("rope_freqs[%d] = %v, want %v", i, got, want)
		}
	}
	if smooth == 0 {
		t.Error("no value in the smooth band: the test does not cover it")
	}
	_, out := ggufToHFFolder(t, g, Options{}, "llama3-back", 0)
	var back map[string]any
	json.Unmarshal(out.Config, &back)
	rs, _ := back["rope_scaling"].(map[string]any)
	var want map[string]any
	raw, _ = json.Marshal(cfg["rope_scaling"])
	json.Unmarshal(raw, &want)
	for k, v := range want {
		if rs[k] != v {
			t.Errorf("rope_scaling.%s = %v, want %v", k, rs[k], v)
		}
	}
	for _, tt := range out.Tensors {
		if tt.Name == arch.RopeFreqsTensor {
			t.Error("rope_freqs written to the HF folder")
		}
	}
}

// Architectures without a table are refused, naming the architecture.
func TestUnknownArchitectureRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gemma")
	writeFolder(t, dir, []formats.Tensor{randTensor("model.embed_tokens.weight", formats.F32, []int64{4, 4}, 1)},
		map[string]any{"architectures": []string{"GemmaForCausalLM"}, "model_type": "gemma", "hidden_size": 4, "num_attention_heads": 1})
	f := openFolder(t, dir)
	_, _, _, err := ToGGUF(&HFModel{Source: f, Config: f.Config(), Dir: dir}, Options{})
	if !errors.Is(err, formats.ErrUnsupported) || !errors.Is(err, arch.ErrUnknownArch) || !strings.Contains(err.Error(), "GemmaForCausalLM") {
		t.Errorf("HF gemma: %v", err)
	}

	meta := formats.NewMeta()
	meta.Set("general.architecture", formats.ValString("phi3"))
	p := filepath.Join(t.TempDir(), "phi3.gguf")
	ts := []formats.Tensor{randTensor("token_embd.weight", formats.F32, []int64{4, 4}, 1)}
	if err := gguf.WriteFile(context.Background(), p, meta, ts, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	_, err = ToHF(openGGUF(t, p), Options{})
	if !errors.Is(err, formats.ErrUnsupported) || !strings.Contains(err.Error(), "phi3") {
		t.Errorf("GGUF phi3: %v", err)
	}
}

// A tensor the table does not know, and unsupported rope scaling, are
// refused by name.
func TestUnknownTensorAndRopeRefused(t *testing.T) {
	c := syntheticConfigs(t)[0]
	dir := syntheticHF(t, c, 0)
	f := openFolder(t, dir)
	extra := &extraSource{Source: f, extra: formats.TensorInfo{Name: "model.layers.0.mlp.fused.weight", DType: formats.F32, Shape: []int64{2}, Size: 8}}
	_, _, _, err := ToGGUF(&HFModel{Source: extra, Config: f.Config(), Dir: dir}, Options{})
	if !errors.Is(err, arch.ErrUnknownTensor) || !strings.Contains(err.Error(), "mlp.fused") {
		t.Errorf("unknown tensor: %v", err)
	}
	cfg := strings.Replace(string(f.Config()), `"rope_scaling": null`, `"rope_scaling": {"type": "dynamic", "factor": 2.0}`, 1)
	_, _, _, err = ToGGUF(&HFModel{Source: f, Config: []byte(cfg), Dir: dir}, Options{})
	if !errors.Is(err, formats.ErrUnsupported) || !strings.Contains(err.Error(), "dynamic") {
		t.Errorf("dynamic rope: %v", err)
	}
	_, _, _, err = ToGGUF(&HFModel{Source: f, Config: []byte(`{"architectures": ["LlamaForCausalLM"], "hidden_size": "big"}`), Dir: dir}, Options{})
	if !errors.Is(err, ErrConfig) || !errors.Is(err, formats.ErrFormat) {
		t.Errorf("bad config: %v", err)
	}
}

type extraSource struct {
	formats.Source
	extra formats.TensorInfo
}

func (e *extraSource) Tensors() []formats.TensorInfo {
	return append(append([]formats.TensorInfo(nil), e.Source.Tensors()...), e.extra)
}

// Quantized GGUF tensors are dequantized (q/k rows un-permuted after
// dequantization); a type qtool cannot decode is refused by name.
func TestQuantizedToHF(t *testing.T) {
	c := syntheticConfigs(t)[0]
	ref := openGGUF(t, syntheticGGUF(t, c))
	meta := ref.Meta().Clone()
	var ts []formats.Tensor
	for _, ti := range ref.Tensors() {
		b := tensorBytes(t, ref, ti.Name)
		if len(ti.Shape) == 2 {
			vals := make([]float32, len(b)/4)
			quantize.ToFloat32(vals, b, formats.F32)
			q := make([]byte, int64(len(vals))/32*34)
			if err := quantize.QuantizeGGML(formats.Q8_0, q, vals); err != nil {
				t.Fatal(err)
			}
			ti.DType, ti.Size, b = formats.Q8_0, int64(len(q)), q
		}
		ts = append(ts, formats.Tensor{TensorInfo: ti, Data: formats.BytesWriter(b)})
	}
	p := filepath.Join(t.TempDir(), "q8.gguf")
	if err := gguf.WriteFile(context.Background(), p, meta, ts, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	q8 := openGGUF(t, p)
	dir, _ := ggufToHFFolder(t, q8, Options{}, "q8-hf", 0)
	hf := openFolder(t, dir)
	for _, ti := range q8.Tensors() {
		got, ok := formats.Lookup(hf, hfName(ti.Name))
		if !ok {
			t.Fatalf("%s missing", ti.Name)
		}
		if got.DType != formats.F32 {
			t.Errorf("%s: %v, want F32 under auto", got.Name, got.DType)
		}
		n, _ := ti.NumElements()
		vals := make([]float32, n)
		if err := quantize.DequantizeGGML(ti.DType, vals, tensorBytes(t, q8, ti.Name)); err != nil {
			t.Fatal(err)
		}
		if pair := pairOf(ti.Name); pair.Permute != arch.NoPermutation {
			vals = unpermuteRows(t, vals, ti.Shape, pair.Permute.Heads(int64(c.Heads), int64(c.KVHeads)))
		}
		if !bytes.Equal(f32Bytes(vals), tensorBytes(t, hf, got.Name)) {
			t.Errorf("%s: not the dequantized GGUF tensor", got.Name)
		}
	}

	// Q2_K has no dequantizer in qtool yet: refused, naming the tensor.
	ts[1].DType = formats.Q2_K
	ts[1].Shape = []int64{256}
	ts[1].Size = formats.Q2_K.BlockBytes()
	ts[1].Data = formats.BytesWriter(make([]byte, ts[1].Size))
	if quantize.GGMLDequantizable(formats.Q2_K) {
		t.Skip("Q2_K became dequantizable")
	}
	p2 := filepath.Join(t.TempDir(), "q2k.gguf")
	if err := gguf.WriteFile(context.Background(), p2, meta, ts, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	_, err := ToHF(openGGUF(t, p2), Options{})
	if !errors.Is(err, formats.ErrUnsupported) || !strings.Contains(err.Error(), ts[1].Name) {
		t.Errorf("Q2_K: %v", err)
	}
}

func unpermuteRows(t testing.TB, v []float32, shape []int64, n int64) []float32 {
	q, err := arch.NewQKRows(shape[0], n)
	if err != nil {
		t.Fatal(err)
	}
	cols := int64(len(v)) / shape[0]
	out := make([]float32, len(v))
	for x := int64(0); x < shape[0]; x++ {
		copy(out[x*cols:(x+1)*cols], v[q.GGUFRow(x)*cols:])
	}
	return out
}

// plainSource hides formats.ByteSource, forcing the ReadAt path.
type plainSource struct{ formats.Source }

// The mapped (zero-copy) and ReadAt paths of the lazy tensors agree.
func TestMappedAndReadAtAgree(t *testing.T) {
	c := syntheticConfigs(t)[1]
	dir := syntheticHF(t, c, 0)
	f := openFolder(t, dir)
	for _, d := range []formats.DType{formats.Invalid, formats.F32, formats.BF16} {
		_, a, _, err := ToGGUF(&HFModel{Source: f, Config: f.Config(), Dir: dir}, Options{DType: d})
		if err != nil {
			t.Fatal(err)
		}
		_, b, _, err := ToGGUF(&HFModel{Source: plainSource{f}, Config: f.Config(), Dir: dir}, Options{DType: d})
		if err != nil {
			t.Fatal(err)
		}
		for i := range a {
			var x, y bytes.Buffer
			if _, err := a[i].Data.WriteTo(&x); err != nil {
				t.Fatal(err)
			}
			if _, err := b[i].Data.WriteTo(&y); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(x.Bytes(), y.Bytes()) || int64(x.Len()) != a[i].Size {
				t.Errorf("%v %s: mapped and ReadAt outputs differ", d, a[i].Name)
			}
		}
	}
}

// MistralForCausalLM converts as llama.cpp's converter does it: the llama
// architecture and tables (sliding_window is not stored); linear rope
// scaling becomes rope.scaling.type/factor and comes back.
func TestMistralAndLinearRope(t *testing.T) {
	c := syntheticConfigs(t)[0]
	dir := syntheticHF(t, c, 0)
	f := openFolder(t, dir)
	var cfg map[string]any
	json.Unmarshal(f.Config(), &cfg)
	cfg["architectures"] = []string{"MistralForCausalLM"}
	cfg["model_type"] = "mistral"
	cfg["sliding_window"] = 4096
	cfg["rope_scaling"] = map[string]any{"type": "linear", "factor": 2.0}
	raw, _ := json.Marshal(cfg)
	m := &HFModel{Source: f, Config: raw, Dir: dir}
	meta, ts, rep, err := ToGGUF(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := meta.String("general.architecture"); a != "llama" || rep.Class != "MistralForCausalLM" || len(rep.Permuted) != 2*c.Layers {
		t.Errorf("architecture %q, report %+v", a, rep)
	}
	if s, _ := meta.String("llama.rope.scaling.type"); s != "linear" {
		t.Errorf("rope.scaling.type %q", s)
	}
	if f, _ := meta.Float("llama.rope.scaling.factor"); f != 2 {
		t.Errorf("rope.scaling.factor %v", f)
	}
	p := filepath.Join(t.TempDir(), "mistral.gguf")
	if err := gguf.WriteFile(context.Background(), p, meta, ts, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	sameTensors(t, openGGUF(t, syntheticGGUF(t, c)), openGGUF(t, p), nil)
	out, err := ToHF(openGGUF(t, p), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	json.Unmarshal(out.Config, &back)
	rs, _ := back["rope_scaling"].(map[string]any)
	if back["architectures"].([]any)[0] != "LlamaForCausalLM" || rs["rope_type"] != "linear" || rs["factor"] != 2.0 {
		t.Errorf("config back: %s", out.Config)
	}
}

// Llama with attention_bias: the q and k biases are permuted like their
// weights' rows (q with the heads, k with the KV heads), v and o kept; the
// round trip restores the HF bytes and attention_bias.
func TestLlamaBiasesPermuted(t *testing.T) {
	c := syntheticConfigs(t)[0] // 4 heads, 2 KV heads, head dim 16
	ts, err := fixtures.Tensors(c, fixtures.HF)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{"q": c.Embd, "k": c.KVDim(), "v": c.KVDim(), "o": c.Embd}
	for l := 0; l < c.Layers; l++ {
		for i, proj := range []string{"q", "k", "v", "o"} {
			ts = append(ts, randTensor("model.layers."+itoa(l)+".self_attn."+proj+"_proj.bias", formats.F32, []int64{int64(rows[proj])}, uint32(7*l+i+1)))
		}
	}
	var cfg map[string]any
	raw, _ := fixtures.HFConfigJSON(c)
	json.Unmarshal(raw, &cfg)
	cfg["attention_bias"] = true
	dir := filepath.Join(t.TempDir(), "llama-bias")
	writeFolder(t, dir, ts, cfg)
	addTokenizer(t, c, dir)
	src := openHF(t, dir)
	p, rep := hfToGGUFFile(t, src, Options{})
	g := openGGUF(t, p)
	if len(rep.Permuted) != 4*c.Layers {
		t.Errorf("%d permuted, want %d (q, k weights and biases)", len(rep.Permuted), 4*c.Layers)
	}
	for _, proj := range []string{"q", "k", "v", "o"} {
		hf := tensorBytes(t, src.Source, "model.layers.1.self_attn."+proj+"_proj.bias")
		vals := make([]float32, len(hf)/4)
		quantize.ToFloat32(vals, hf, formats.F32)
		name := map[string]string{"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output"}[proj]
		if n := map[string]int64{"q": int64(c.Heads), "k": int64(c.KVHeads)}[proj]; n > 0 {
			vals = permuteRows(t, vals, []int64{int64(len(vals))}, n)
		}
		if !bytes.Equal(f32Bytes(vals), tensorBytes(t, g, "blk.1."+name+".bias")) {
			t.Errorf("blk.1.%s.bias is not the (permuted) HF bias", name)
		}
	}
	back, out := ggufToHFFolder(t, g, Options{}, "llama-bias-back", 0)
	sameTensors(t, src.Source, openFolder(t, back), nil)
	if !strings.Contains(string(out.Config), `"attention_bias": true`) {
		t.Errorf("attention_bias lost: %s", out.Config)
	}
}
