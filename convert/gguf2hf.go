package convert

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/formats/vocab"
	"github.com/qtool-dev/qtool/quantize"
)

// HFOutput is a planned Hugging Face folder: its files' contents and lazy
// tensors. Write puts it in a folder.
type HFOutput struct {
	Config           []byte // config.json
	GenerationConfig []byte // generation_config.json
	Tensors          []formats.Tensor
	Vocab            *vocab.Vocab // nil when the GGUF has no tokenizer
	Report           *Report
}

// ToHF plans the Hugging Face folder of a GGUF model: tensors renamed by
// the architecture's table with the inverse Q/K permutation, in model order
// (embedding, blocks, final norm, lm_head); config.json and
// generation_config.json rebuilt from the metadata; the vocabulary.
//
// rope_freqs.weight is not a tensor in HF: it becomes config.json's llama3
// rope_scaling when it matches Llama 3.1's parameters (factor = its largest
// value, low 1, high 4, original context 8192), and is refused otherwise.
// Quantized tensors are dequantized (quantize.DequantizeGGML) to the
// requested dtype, F32 under auto; a type it cannot decode is refused with
// formats.ErrUnsupported naming the tensor.
func ToHF(src formats.Source, opts Options) (*HFOutput, error) {
	if err := checkDType(opts.DType); err != nil {
		return nil, err
	}
	meta := src.Meta()
	archName, _ := meta.String("general.architecture")
	a, err := arch.ByGGUF(archName)
	if err != nil {
		return nil, err
	}
	key := func(k string) string { return a.Name + "." + k }
	nHead, err := metaCount(meta, key("attention.head_count"), 0)
	if err != nil {
		return nil, err
	}
	if nHead == 0 {
		return nil, fmt.Errorf("convert: GGUF has no %s: %w", key("attention.head_count"), formats.ErrFormat)
	}
	nHeadKV, err := metaCount(meta, key("attention.head_count_kv"), nHead)
	if err != nil {
		return nil, err
	}
	rep := &Report{Architecture: a.Name, Class: a.Classes[0]}

	var ts []formats.Tensor
	var ropeFreqsInfo *formats.TensorInfo
	present := map[string]formats.TensorInfo{}
	for _, ti := range src.Tensors() {
		if ti.Name == arch.RopeFreqsTensor {
			ti := ti
			ropeFreqsInfo = &ti
			rep.Dropped = append(rep.Dropped, ti.Name+" (becomes config.json rope_scaling)")
			continue
		}
		name, pair, ok := a.HFName(ti.Name)
		if !ok {
			return nil, fmt.Errorf("convert: tensor %q has no Hugging Face name: %w", ti.Name, arch.ErrUnknownTensor)
		}
		present[ti.Name] = ti
		t, err := hfTensor(src, ti, name, pair, nHead, nHeadKV, opts)
		if err != nil {
			return nil, err
		}
		if pair.Permute != arch.NoPermutation {
			rep.Permuted = append(rep.Permuted, name)
		}
		ts = append(ts, t)
	}
	sortModelOrder(a, ts)
	for _, t := range ts {
		rep.Tensors++
		rep.Bytes += t.Size
		n, _ := t.NumElements()
		rep.Params += n
	}

	out := &HFOutput{Tensors: ts, Report: rep}
	if _, ok := meta.String("tokenizer.ggml.model"); ok {
		if out.Vocab, err = vocab.FromMeta(meta); err != nil {
			return nil, fmt.Errorf("convert: vocabulary: %w", err)
		}
	} else {
		rep.Notes = append(rep.Notes, "the GGUF has no tokenizer: no tokenizer files written")
	}
	cfg, err := hfConfig(src, a, meta, present, ropeFreqsInfo, nHead, nHeadKV, ts, out.Vocab, rep)
	if err != nil {
		return nil, err
	}
	if out.Config, err = marshalConfig(cfg); err != nil {
		return nil, err
	}
	gen := map[string]any{}
	if out.Vocab != nil {
		if out.Vocab.BOS >= 0 {
			gen["bos_token_id"] = out.Vocab.BOS
		}
		if out.Vocab.EOS >= 0 {
			gen["eos_token_id"] = out.Vocab.EOS
		}
		if out.Vocab.PAD >= 0 {
			gen["pad_token_id"] = out.Vocab.PAD
		}
	}
	if out.GenerationConfig, err = marshalConfig(gen); err != nil {
		return nil, err
	}
	return out, nil
}

// metaCount reads a positive UINT32-like count; def when absent.
func metaCount(meta *formats.Meta, key string, def int64) (int64, error) {
	v, ok := meta.Get(key)
	if !ok {
		return def, nil
	}
	if v.Type == formats.TypeArray {
		return 0, fmt.Errorf("convert: %s is a per-layer array; only uniform models are converted: %w", key, formats.ErrUnsupported)
	}
	u, ok := v.AsUint()
	if !ok || u == 0 || u > math.MaxUint32 {
		return 0, fmt.Errorf("convert: %s = %v is not a positive count: %w", key, v.V, formats.ErrFormat)
	}
	return int64(u), nil
}

// hfTensor plans one tensor of the HF folder.
func hfTensor(src formats.Source, ti formats.TensorInfo, name string, pair arch.Pair, nHead, nHeadKV int64, opts Options) (formats.Tensor, error) {
	to := opts.DType
	switch {
	case ti.DType == formats.F32, ti.DType == formats.F16, ti.DType == formats.BF16:
		if to == formats.Invalid {
			to = ti.DType
		}
	case ti.DType.Quantized() && quantize.GGMLDequantizable(ti.DType):
		if to == formats.Invalid {
			to = formats.F32
		}
	default:
		return formats.Tensor{}, fmt.Errorf("convert: tensor %q is %v, which qtool cannot dequantize: %w", ti.Name, ti.DType, formats.ErrUnsupported)
	}
	return plannedTensor(src, ti, name, to, pair.Permute, nHead, nHeadKV, arch.QKRows.GGUFRow)
}

// sortModelOrder orders HF tensors as transformers' state dict does: the
// embedding, then each block in table order, then the final norm and
// lm_head; this keeps a block's tensors in one shard.
func sortModelOrder(a *arch.Arch, ts []formats.Tensor) {
	type key struct{ group, block, index int }
	k := func(name string) key {
		b, i := arch.BlockOf(name), a.Index(name, true)
		switch {
		case b >= 0:
			return key{1, b, i}
		case i == 0:
			return key{0, 0, i}
		}
		return key{2, 0, i}
	}
	sort.SliceStable(ts, func(i, j int) bool {
		x, y := k(ts[i].Name), k(ts[j].Name)
		if x.group != y.group {
			return x.group < y.group
		}
		if x.block != y.block {
			return x.block < y.block
		}
		return x.index < y.index
	})
}

// hfConfig rebuilds config.json from the GGUF keys, the tensors present
// and the architecture's defaults.
func hfConfig(src formats.Source, a *arch.Arch, meta *formats.Meta, present map[string]formats.TensorInfo, ropeInfo *formats.TensorInfo,
	nHead, nHeadKV int64, ts []formats.Tensor, v *vocab.Vocab, rep *Report) (map[string]any, error) {
	key := func(k string) string { return a.Name + "." + k }
	c := map[string]any{
		"architectures": []string{a.Classes[0]},
		"model_type":    a.ModelType,
	}
	for _, p := range append(append([]arch.Param(nil), a.Params...), a.PostParams...) {
		if _, done := c[p.HF]; done {
			continue
		}
		val, ok := meta.Get(key(p.GGUF))
		if !ok {
			continue
		}
		switch p.Type {
		case formats.TypeUint32:
			u, ok := val.AsUint()
			if !ok {
				return nil, fmt.Errorf("convert: %s is %v, want an unsigned count: %w", key(p.GGUF), val.Type, formats.ErrFormat)
			}
			c[p.HF] = u
		case formats.TypeFloat32:
			f, ok := val.AsFloat()
			if !ok {
				return nil, fmt.Errorf("convert: %s is %v, want a float: %w", key(p.GGUF), val.Type, formats.ErrFormat)
			}
			if val.Type == formats.TypeFloat64 {
				c[p.HF] = jsonFloat64(f)
			} else {
				c[p.HF] = jsonFloat32(float32(f))
			}
		}
	}
	c["num_attention_heads"] = nHead
	if _, ok := c["head_dim"]; !ok && a.HeadDim {
		if d, ok := meta.Uint(key(arch.KeyRopeDimension)); ok {
			c["head_dim"] = d
		} else if h, ok := c["hidden_size"].(uint64); ok {
			c["head_dim"] = int64(h) / nHead
		}
	}
	c["num_key_value_heads"] = nHeadKV
	for _, req := range []string{"hidden_size", "num_hidden_layers", "intermediate_size", "rms_norm_eps"} {
		if _, ok := c[req]; !ok {
			return nil, fmt.Errorf("convert: the GGUF lacks the key that gives config.json %q: %w", req, formats.ErrFormat)
		}
	}
	if _, ok := c["rope_theta"]; !ok {
		c["rope_theta"] = jsonFloat32(10000) // llama.cpp's default freq_base
	}
	if _, ok := c["max_position_embeddings"]; !ok {
		return nil, fmt.Errorf("convert: the GGUF has no %s: %w", key("context_length"), formats.ErrFormat)
	}
	if emb, ok := present["token_embd.weight"]; ok && len(emb.Shape) == 2 {
		if _, ok := c["vocab_size"]; !ok {
			c["vocab_size"] = emb.Shape[0]
		}
	}
	if _, ok := c["vocab_size"]; !ok && v != nil {
		c["vocab_size"] = len(v.Tokens)
	}
	_, hasOutput := present["output.weight"]
	c["tie_word_embeddings"] = !hasOutput
	dt := formats.F32
	for _, t := range ts {
		if len(t.Shape) >= 2 {
			dt = t.DType
			break
		}
	}
	c["torch_dtype"] = torchDType(dt)
	rep.TorchDType = torchDType(dt)
	if v != nil {
		if v.BOS >= 0 {
			c["bos_token_id"] = v.BOS
		}
		if v.EOS >= 0 {
			c["eos_token_id"] = v.EOS
		}
	}
	if a.Name == "llama" {
		_, qb := present["blk.0.attn_q.bias"]
		_, ob := present["blk.0.attn_output.bias"]
		_, mb := present["blk.0.ffn_gate.bias"]
		c["attention_bias"] = qb || ob
		c["mlp_bias"] = mb
		if qb != ob {
			rep.Notes = append(rep.Notes, "attention biases are partial: transformers' attention_bias covers q, k, v and o together")
		}
	}
	if a == &arch.Qwen2 {
		n := c["num_hidden_layers"]
		c["max_window_layers"] = n
		c["sliding_window"] = c["max_position_embeddings"]
	}
	rs, err := ropeScaling(src, a, meta, ropeInfo, c)
	if err != nil {
		return nil, err
	}
	if rs != nil {
		c["rope_scaling"] = rs
	}
	for _, d := range a.Defaults {
		if _, ok := c[d.Key]; !ok {
			if f, isFloat := d.Value.(float64); isFloat {
				c[d.Key] = jsonFloat64(f) // 0.0, as Python writes it
			} else {
				c[d.Key] = d.Value
			}
		}
	}
	return c, nil
}

// ropeScaling rebuilds config.json's rope_scaling from the GGUF scaling
// keys or from rope_freqs.weight.
func ropeScaling(src formats.Source, a *arch.Arch, meta *formats.Meta, ropeInfo *formats.TensorInfo, c map[string]any) (map[string]any, error) {
	key := func(k string) string { return a.Name + "." + k }
	if typ, ok := meta.String(key(arch.KeyRopeScalingType)); ok && typ != "none" {
		if !a.RopeScalingSupported(typ) || typ == "llama3" {
			return nil, fmt.Errorf("convert: %s %q: %w", key(arch.KeyRopeScalingType), typ, formats.ErrUnsupported)
		}
		f, ok := meta.Float(key(arch.KeyRopeScalingFactor))
		if !ok {
			return nil, fmt.Errorf("convert: %s without %s: %w", key(arch.KeyRopeScalingType), key(arch.KeyRopeScalingFactor), formats.ErrFormat)
		}
		rs := map[string]any{"factor": jsonFloat32(float32(f))}
		if typ == "yarn" {
			rs["type"] = typ
			if o, ok := meta.Uint(key(arch.KeyRopeScalingOrigCtx)); ok {
				rs["original_max_position_embeddings"] = o
			}
		} else {
			rs["rope_type"] = typ
		}
		return rs, nil
	}
	if ropeInfo == nil {
		return nil, nil
	}
	if !a.RopeScalingSupported("llama3") {
		return nil, fmt.Errorf("convert: %s in a %s model: %w", arch.RopeFreqsTensor, a.Name, formats.ErrUnsupported)
	}
	got, err := readF32(src, *ropeInfo)
	if err != nil {
		return nil, err
	}
	var factor float32
	for _, f := range got {
		factor = max(factor, f)
	}
	base := 10000.0
	if b, ok := meta.Float(key("rope.freq_base")); ok {
		base = b
	}
	hidden, _ := c["hidden_size"].(uint64)
	heads, _ := c["num_attention_heads"].(int64)
	dim := int64(len(got)) * 2
	if hd, ok := c["head_dim"].(uint64); ok {
		dim = int64(hd)
	} else if heads > 0 && int64(hidden)/heads != dim {
		return nil, fmt.Errorf("convert: %s has %d values for head size %d: %w", arch.RopeFreqsTensor, len(got), int64(hidden)/heads, formats.ErrFormat)
	}
	p := llama3Rope{factor: float64(factor), low: 1, high: 4, origCtx: 8192}
	want := ropeFreqs(p, base, dim)
	for i := range want {
		if len(got) != len(want) || math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			return nil, fmt.Errorf("convert: %s does not match Llama 3 rope scaling (factor %v, low 1, high 4, original context 8192), so config.json cannot express it: %w",
				arch.RopeFreqsTensor, factor, formats.ErrUnsupported)
		}
	}
	return map[string]any{
		"factor":                           jsonFloat32(factor),
		"high_freq_factor":                 jsonFloat64(p.high),
		"low_freq_factor":                  jsonFloat64(p.low),
		"original_max_position_embeddings": int64(p.origCtx),
		"rope_type":                        "llama3",
	}, nil
}

// readF32 reads a small F32 tensor.
func readF32(src formats.Source, ti formats.TensorInfo) ([]float32, error) {
	if ti.DType != formats.F32 || len(ti.Shape) != 1 || ti.Size > 1<<20 {
		return nil, fmt.Errorf("convert: %s must be a small 1-D F32 tensor: %w", ti.Name, formats.ErrFormat)
	}
	sec, err := src.Section(ti.Name)
	if err != nil {
		return nil, err
	}
	b := make([]byte, ti.Size)
	if _, err := io.ReadFull(sec, b); err != nil {
		return nil, err
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// Write writes the folder's files into dir, which must exist (the CLI
// makes it a temporary folder with outfile.CreateDir and commits it):
// safetensors shards of at most maxShardSize bytes (0: one file),
// config.json, generation_config.json and the tokenizer files. It returns
// the names written.
func (o *HFOutput) Write(ctx context.Context, dir string, maxShardSize int64) ([]string, error) {
	files, err := safetensors.WriteFolder(ctx, dir, map[string]string{"format": "pt"}, o.Tensors,
		safetensors.FolderOptions{MaxShardSize: maxShardSize})
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"config.json", o.Config}, {"generation_config.json", o.GenerationConfig}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return nil, err
		}
		files = append(files, f.name)
	}
	if o.Vocab != nil {
		tok, err := o.Vocab.WriteHF(dir)
		if err != nil {
			return nil, fmt.Errorf("convert: tokenizer: %w", err)
		}
		files = append(files, tok...)
	}
	return files, nil
}
