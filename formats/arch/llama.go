package arch

import "github.com/qtool-dev/qtool/formats"

// llamaTensors is the Llama name table (GGUF-LLAMACPP.md §2.1) with the
// optional biases of attention_bias / mlp_bias checkpoints. q and k rows
// (weights and biases) are permuted, q with head_count and k with
// head_count_kv (§2.2).
var llamaTensors = []Pair{
	{"model.embed_tokens.weight", "token_embd.weight", NoPermutation},
	{"model.layers.#.input_layernorm.weight", "blk.#.attn_norm.weight", NoPermutation},
	{"model.layers.#.self_attn.q_proj.weight", "blk.#.attn_q.weight", PermuteHeads},
	{"model.layers.#.self_attn.q_proj.bias", "blk.#.attn_q.bias", PermuteHeads},
	{"model.layers.#.self_attn.k_proj.weight", "blk.#.attn_k.weight", PermuteKVHeads},
	{"model.layers.#.self_attn.k_proj.bias", "blk.#.attn_k.bias", PermuteKVHeads},
	{"model.layers.#.self_attn.v_proj.weight", "blk.#.attn_v.weight", NoPermutation},
	{"model.layers.#.self_attn.v_proj.bias", "blk.#.attn_v.bias", NoPermutation},
	{"model.layers.#.self_attn.o_proj.weight", "blk.#.attn_output.weight", NoPermutation},
	{"model.layers.#.self_attn.o_proj.bias", "blk.#.attn_output.bias", NoPermutation},
	{"model.layers.#.post_attention_layernorm.weight", "blk.#.ffn_norm.weight", NoPermutation},
	{"model.layers.#.mlp.gate_proj.weight", "blk.#.ffn_gate.weight", NoPermutation},
	{"model.layers.#.mlp.gate_proj.bias", "blk.#.ffn_gate.bias", NoPermutation},
	{"model.layers.#.mlp.up_proj.weight", "blk.#.ffn_up.weight", NoPermutation},
	{"model.layers.#.mlp.up_proj.bias", "blk.#.ffn_up.bias", NoPermutation},
	{"model.layers.#.mlp.down_proj.weight", "blk.#.ffn_down.weight", NoPermutation},
	{"model.layers.#.mlp.down_proj.bias", "blk.#.ffn_down.bias", NoPermutation},
	{"model.norm.weight", "output_norm.weight", NoPermutation},
	{"lm_head.weight", "output.weight", NoPermutation},
}

// RopeFreqsTensor is the GGUF tensor llama.cpp's converter generates for
// Llama 3.1+ rope scaling (rope_type llama3): head_dim/2 F32 factors.
const RopeFreqsTensor = "rope_freqs.weight"

// baseParams are the keys convert_hf_to_gguf.py's TextModel writes for
// every architecture, in its order, each only when config.json has it.
var baseParams = []Param{
	{"num_hidden_layers", "block_count", formats.TypeUint32},
	{"max_position_embeddings", "context_length", formats.TypeUint32},
	{"hidden_size", "embedding_length", formats.TypeUint32},
	{"intermediate_size", "feed_forward_length", formats.TypeUint32},
	{"num_attention_heads", "attention.head_count", formats.TypeUint32},
	{"num_key_value_heads", "attention.head_count_kv", formats.TypeUint32},
	{"rope_theta", "rope.freq_base", formats.TypeFloat32},
	{"rms_norm_eps", "attention.layer_norm_rms_epsilon", formats.TypeFloat32},
	{"head_dim", "attention.key_length", formats.TypeUint32},
	{"head_dim", "attention.value_length", formats.TypeUint32},
}

// llamaDefaults are LlamaConfig entries GGUF does not store.
var llamaDefaults = []Default{
	{"attention_bias", false},
	{"attention_dropout", 0.0},
	{"hidden_act", "silu"},
	{"initializer_range", 0.02},
	{"mlp_bias", false},
	{"pretraining_tp", 1},
	{"rope_scaling", nil},
	{"use_cache", true},
}

// Llama is the llama architecture: LlamaForCausalLM (Llama 2, Llama 3.x,
// TinyLlama, SmolLM, …).
var Llama = Arch{
	Name:          "llama",
	ModelType:     "llama",
	Classes:       []string{"LlamaForCausalLM"},
	Tensors:       llamaTensors,
	Drop:          []string{"model.layers.#.self_attn.rotary_emb.inv_freq"},
	Params:        baseParams,
	PostParams:    []Param{{"vocab_size", "vocab_size", formats.TypeUint32}},
	RopeDimension: true,
	RopeScaling:   []string{"linear", "llama3"},
	HeadDim:       true,
	Defaults:      llamaDefaults,
}

// Mistral is Hugging Face's MistralForCausalLM. llama.cpp's converter
// handles it with its Llama class, so the GGUF architecture is llama (and
// a GGUF converts back as LlamaForCausalLM); sliding_window is not stored.
var Mistral = Arch{
	Name:          "llama",
	ModelType:     "mistral",
	Classes:       []string{"MistralForCausalLM"},
	Tensors:       llamaTensors,
	Drop:          []string{"model.layers.#.self_attn.rotary_emb.inv_freq"},
	Params:        baseParams,
	PostParams:    []Param{{"vocab_size", "vocab_size", formats.TypeUint32}},
	RopeDimension: true,
	RopeScaling:   []string{"linear", "llama3"},
	HeadDim:       true,
	Defaults: []Default{
		{"attention_dropout", 0.0},
		{"hidden_act", "silu"},
		{"initializer_range", 0.02},
		{"rope_scaling", nil},
		{"sliding_window", nil},
		{"use_cache", true},
	},
}
