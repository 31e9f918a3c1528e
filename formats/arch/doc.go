// Package arch holds, as data, what qtool knows about each model
// architecture it converts between Hugging Face folders and GGUF: the
// tensor-name pairs (GGUF-LLAMACPP.md §2.1), which tensors carry the Q/K row
// permutation of llama.cpp's converter and with which head count (§2.2), and
// which config.json keys become which GGUF keys, with their GGUF types and in
// the order convert_hf_to_gguf.py writes them (§2).
//
// The tables are llama (Llama 2, Llama 3.x, TinyLlama, SmolLM), mistral
// (Hugging Face MistralForCausalLM, which llama.cpp stores as the llama
// architecture) and qwen2 (q/k/v biases, no permutation). Lookups that find
// nothing fail with ErrUnknownArch, which wraps formats.ErrUnsupported.
//
// The package knows names and numbers only; it moves no tensor bytes
// (package convert does, using these tables).
package arch
