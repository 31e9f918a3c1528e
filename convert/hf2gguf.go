package convert

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/formats/vocab"
)

// HFModel is a Hugging Face model to convert: its tensors, config.json and
// tokenizer.
type HFModel struct {
	// Source holds the safetensors tensors (a *safetensors.Folder, or any
	// Source whose TensorInfo.File names the shard).
	Source formats.Source
	// Config is config.json.
	Config []byte
	// Vocab is the tokenizer; nil writes no tokenizer keys (llama.cpp
	// cannot load such a file, so the CLI requires one).
	Vocab *vocab.Vocab
	// Dir is the folder, whose name is general.name's fallback.
	Dir string
	// closer is the folder OpenHF opened.
	closer interface{ Close() error }
}

// OpenHF opens a model folder: its safetensors, config.json and tokenizer
// (vocab.FromHFFolder; a folder without tokenizer.model or tokenizer.json
// fails with its vocab.ErrNoTokenizer). Close releases it.
func OpenHF(dir string) (*HFModel, error) {
	f, err := safetensors.OpenFolder(dir)
	if err != nil {
		return nil, err
	}
	m := &HFModel{Source: f, Config: f.Config(), Dir: dir, closer: f}
	if len(m.Config) == 0 {
		f.Close()
		return nil, fmt.Errorf("convert: %s: no config.json: %w", dir, ErrConfig)
	}
	if m.Vocab, err = vocab.FromHFFolder(dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("convert: tokenizer of %s: %w", dir, err)
	}
	return m, nil
}

// Close closes what OpenHF opened.
func (m *HFModel) Close() error {
	if m.closer != nil {
		return m.closer.Close()
	}
	return nil
}

// hparams are the numbers a conversion needs besides the metadata.
type hparams struct {
	nHead, nHeadKV, hidden, headDim int64
}

func readHParams(c config) (hparams, error) {
	var h hparams
	var err error
	if h.hidden, err = c.count("hidden_size", 0); err != nil {
		return h, err
	}
	if h.nHead, err = c.count("num_attention_heads", 0); err != nil {
		return h, err
	}
	layers, err := c.count("num_hidden_layers", 0)
	if err != nil {
		return h, err
	}
	if h.hidden == 0 || h.nHead == 0 || layers == 0 {
		return h, fmt.Errorf("convert: config.json needs hidden_size, num_attention_heads and num_hidden_layers: %w", ErrConfig)
	}
	if h.nHeadKV, err = c.count("num_key_value_heads", h.nHead); err != nil {
		return h, err
	}
	if h.headDim, err = c.count("head_dim", h.hidden/h.nHead); err != nil {
		return h, err
	}
	return h, nil
}

// ToGGUF plans the GGUF file of an HF model: its metadata (in
// convert_hf_to_gguf.py's key order) and its tensors (lazy; nothing is
// read until each tensor's Data is written). Tensors come shard by shard,
// each shard's names sorted, after any generated rope_freqs.weight, as the
// converter writes them.
//
// Errors: an architecture without a table (arch.ErrUnknownArch), a tensor
// the table does not map (arch.ErrUnknownTensor), a source dtype that is
// not F32/F16/BF16/F64 or a rope scaling type the architecture does not
// convert (formats.ErrUnsupported); a bad config.json (ErrConfig).
func ToGGUF(m *HFModel, opts Options) (*formats.Meta, []formats.Tensor, *Report, error) {
	if err := checkDType(opts.DType); err != nil {
		return nil, nil, nil, err
	}
	c, err := parseConfig(m.Config)
	if err != nil {
		return nil, nil, nil, err
	}
	a, err := arch.ByHF(c.strs("architectures"), c.str("model_type"))
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := readHParams(c)
	if err != nil {
		return nil, nil, nil, err
	}
	rep := &Report{Architecture: a.Name, Class: a.Classes[0]}
	if cl := c.strs("architectures"); len(cl) > 0 {
		rep.Class = cl[0]
	}

	// Rope scaling decides a key or a generated tensor.
	rs, err := c.sub("rope_scaling")
	if err != nil {
		return nil, nil, nil, err
	}
	ropeType := ""
	if rs != nil {
		ropeType = rs.str("rope_type")
		if ropeType == "" {
			ropeType = rs.str("type")
		}
		ropeType = strings.ToLower(ropeType)
		if ropeType != "" && ropeType != "default" && !a.RopeScalingSupported(ropeType) {
			return nil, nil, nil, fmt.Errorf("convert: rope_scaling type %q is not supported for %s (supported: %s): %w",
				ropeType, rep.Class, strings.Join(a.RopeScaling, ", "), formats.ErrUnsupported)
		}
	}

	var ts []formats.Tensor
	if ropeType == "llama3" {
		p, err := parseLlama3Rope(rs, c)
		if err != nil {
			return nil, nil, nil, err
		}
		base, ok, err := c.num("rope_theta")
		if err != nil {
			return nil, nil, nil, err
		}
		if !ok {
			base = 10000
		}
		ts = append(ts, ropeFreqsTensor(arch.RopeFreqsTensor, ropeFreqs(p, base, h.headDim)))
		rep.Generated = append(rep.Generated, arch.RopeFreqsTensor)
	}

	weights, err := planGGUFTensors(m.Source, a, c, h, opts, rep)
	if err != nil {
		return nil, nil, nil, err
	}
	ts = append(ts, weights...)

	// file_type: the requested dtype, else that of the first matrix.
	ftDType := opts.DType
	if ftDType == formats.Invalid {
		ftDType = formats.F32
		for _, t := range ts {
			if len(t.Shape) >= 2 {
				ftDType = t.DType
				break
			}
		}
	}
	rep.FileType = fileTypeOf(ftDType)
	for _, t := range ts {
		rep.Tensors++
		rep.Bytes += t.Size
		n, _ := t.NumElements()
		rep.Params += n
	}

	meta, err := ggufMeta(a, c, h, ropeType, rs, rep, m, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	return meta, ts, rep, nil
}

// planGGUFTensors maps, orders and wraps the source tensors.
func planGGUFTensors(src formats.Source, a *arch.Arch, c config, h hparams, opts Options, rep *Report) ([]formats.Tensor, error) {
	tied := c.boolean("tie_word_embeddings", false)
	// Group by shard, in shard order; sort each shard's names.
	var order []string
	groups := map[string][]formats.TensorInfo{}
	for _, ti := range src.Tensors() {
		if _, ok := groups[ti.File]; !ok {
			order = append(order, ti.File)
		}
		groups[ti.File] = append(groups[ti.File], ti)
	}
	var out []formats.Tensor
	for _, file := range order {
		g := groups[file]
		sort.Slice(g, func(i, j int) bool { return g[i].Name < g[j].Name })
		for _, ti := range g {
			name, pair, dropped, ok := a.GGUFName(ti.Name)
			switch {
			case dropped:
				rep.Dropped = append(rep.Dropped, ti.Name+" (not used by llama.cpp)")
				continue
			case !ok:
				return nil, fmt.Errorf("convert: tensor %q has no %s name: %w", ti.Name, a.Name, arch.ErrUnknownTensor)
			case tied && name == "output.weight":
				rep.Dropped = append(rep.Dropped, ti.Name+" (tie_word_embeddings: llama.cpp reuses token_embd)")
				continue
			}
			t, err := ggufTensor(src, ti, name, pair, h, opts)
			if err != nil {
				return nil, err
			}
			if pair.Permute != arch.NoPermutation {
				rep.Permuted = append(rep.Permuted, name)
			}
			out = append(out, t)
		}
	}
	return out, nil
}

// ggufTensor plans one tensor: F32 for 1-D, norm and non-weight tensors
// (GGUF-LLAMACPP.md §2.1), else the requested (or source) dtype; q/k rows
// permuted.
func ggufTensor(src formats.Source, ti formats.TensorInfo, name string, pair arch.Pair, h hparams, opts Options) (formats.Tensor, error) {
	switch ti.DType {
	case formats.F32, formats.F16, formats.BF16, formats.F64:
	default:
		return formats.Tensor{}, fmt.Errorf("convert: tensor %q is %v; only F32, F16, BF16 and F64 weights are converted: %w", ti.Name, ti.DType, formats.ErrUnsupported)
	}
	to := opts.DType
	if to == formats.Invalid {
		to = ti.DType
		if to == formats.F64 {
			to = formats.F32
		}
	}
	if len(ti.Shape) <= 1 || strings.HasSuffix(name, "_norm.weight") || !strings.HasSuffix(name, ".weight") {
		to = formats.F32
	}
	return plannedTensor(src, ti, name, to, pair.Permute, h.nHead, h.nHeadKV, arch.QKRows.HFRow)
}

// ggufMeta builds the metadata in the converter's order: general.* (type,
// name, size label), the architecture's Params, general.file_type,
// PostParams, rope.dimension_count, rope scaling keys,
// general.quantization_version, then the tokenizer.
func ggufMeta(a *arch.Arch, c config, h hparams, ropeType string, rs config, rep *Report, m *HFModel, opts Options) (*formats.Meta, error) {
	meta := formats.NewMeta()
	meta.Set("general.architecture", formats.ValString(a.Name))
	meta.Set("general.type", formats.ValString("model"))
	name := opts.Name
	if name == "" {
		name = modelName(c, m.Dir)
	}
	meta.Set("general.name", formats.ValString(name))
	if rep.Params > 0 {
		meta.Set("general.size_label", formats.ValString(sizeLabel(rep.Params)))
	}
	if err := setParams(meta, a, a.Params, c); err != nil {
		return nil, err
	}
	meta.Set("general.file_type", formats.ValUint32(rep.FileType))
	if err := setParams(meta, a, a.PostParams, c); err != nil {
		return nil, err
	}
	key := func(k string) string { return a.Name + "." + k }
	if a.RopeDimension {
		meta.Set(key(arch.KeyRopeDimension), formats.ValUint32(uint32(h.headDim)))
	}
	switch ropeType {
	case "linear", "yarn":
		f, ok, err := rs.num("factor")
		if err != nil {
			return nil, err
		}
		if ok {
			meta.Set(key(arch.KeyRopeScalingType), formats.ValString(ropeType))
			meta.Set(key(arch.KeyRopeScalingFactor), formats.ValFloat32(float32(f)))
			if ropeType == "yarn" {
				o, ok, err := rs.num("original_max_position_embeddings")
				if err != nil {
					return nil, err
				}
				if !ok {
					return nil, fmt.Errorf("convert: yarn rope_scaling without original_max_position_embeddings: %w", ErrConfig)
				}
				u, err := uint32Of("rope_scaling.original_max_position_embeddings", o)
				if err != nil {
					return nil, err
				}
				meta.Set(key(arch.KeyRopeScalingOrigCtx), formats.ValUint32(u))
			}
		}
	}
	meta.Set("general.quantization_version", formats.ValUint32(2))
	if m.Vocab != nil {
		m.Vocab.ToMeta(meta)
	} else {
		rep.Notes = append(rep.Notes, "no tokenizer: the GGUF has no tokenizer.* keys")
	}
	return meta, nil
}

// setParams writes each Param whose config.json key is present.
func setParams(meta *formats.Meta, a *arch.Arch, ps []arch.Param, c config) error {
	for _, p := range ps {
		f, ok, err := c.num(p.HF)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		k := a.Name + "." + p.GGUF
		switch p.Type {
		case formats.TypeUint32:
			u, err := uint32Of(p.HF, f)
			if err != nil {
				return err
			}
			meta.Set(k, formats.ValUint32(u))
		case formats.TypeFloat32:
			meta.Set(k, formats.ValFloat32(float32(f)))
		default:
			return errors.New("convert: unsupported param type in arch table")
		}
	}
	return nil
}
