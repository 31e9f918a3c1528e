package arch

// Qwen2 is Qwen2ForCausalLM (Qwen2, Qwen2.5): the Llama layout plus q/k/v
// biases. Its RoPE is NeoX style (rotate-half, like HF), so llama.cpp's
// converter keeps the rows in HF order: nothing is permuted. It writes no
// vocab_size and no rope.dimension_count; yarn rope scaling becomes
// rope.scaling.type/factor/original_context_length.
var Qwen2 = Arch{
	Name:      "qwen2",
	ModelType: "qwen2",
	Classes:   []string{"Qwen2ForCausalLM"},
	Tensors: []Pair{
		{"model.embed_tokens.weight", "token_embd.weight", NoPermutation},
		{"model.layers.#.input_layernorm.weight", "blk.#.attn_norm.weight", NoPermutation},
		{"model.layers.#.self_attn.q_proj.weight", "blk.#.attn_q.weight", NoPermutation},
		{"model.layers.#.self_attn.q_proj.bias", "blk.#.attn_q.bias", NoPermutation},
		{"model.layers.#.self_attn.k_proj.weight", "blk.#.attn_k.weight", NoPermutation},
		{"model.layers.#.self_attn.k_proj.bias", "blk.#.attn_k.bias", NoPermutation},
		{"model.layers.#.self_attn.v_proj.weight", "blk.#.attn_v.weight", NoPermutation},
		{"model.layers.#.self_attn.v_proj.bias", "blk.#.attn_v.bias", NoPermutation},
		{"model.layers.#.self_attn.o_proj.weight", "blk.#.attn_output.weight", NoPermutation},
		{"model.layers.#.post_attention_layernorm.weight", "blk.#.ffn_norm.weight", NoPermutation},
		{"model.layers.#.mlp.gate_proj.weight", "blk.#.ffn_gate.weight", NoPermutation},
		{"model.layers.#.mlp.up_proj.weight", "blk.#.ffn_up.weight", NoPermutation},
		{"model.layers.#.mlp.down_proj.weight", "blk.#.ffn_down.weight", NoPermutation},
		{"model.norm.weight", "output_norm.weight", NoPermutation},
		{"lm_head.weight", "output.weight", NoPermutation},
	},
	Drop:        []string{"model.layers.#.self_attn.rotary_emb.inv_freq"},
	Params:      baseParams,
	RopeScaling: []string{"yarn"},
	Defaults: []Default{
		{"attention_dropout", 0.0},
		{"hidden_act", "silu"},
		{"initializer_range", 0.02},
		{"rope_scaling", nil},
		{"use_cache", true},
		{"use_sliding_window", false},
	},
}

// Rope keys (GGUF-LLAMACPP.md §2), after "<architecture>.": the scaling
// type is a STRING, the factor a FLOAT32, the original context length and
// the dimension count UINT32.
const (
	KeyRopeScalingType    = "rope.scaling.type"
	KeyRopeScalingFactor  = "rope.scaling.factor"
	KeyRopeScalingOrigCtx = "rope.scaling.original_context_length"
	KeyRopeDimension      = "rope.dimension_count"
)
