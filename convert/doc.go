// Package convert turns a Hugging Face model folder into a GGUF that
// llama.cpp loads, and a GGUF back into a Hugging Face folder, for the
// architectures of formats/arch (llama, mistral, qwen2).
//
// HF → GGUF (ToGGUF) does what llama.cpp's convert_hf_to_gguf.py does
// (GGUF-LLAMACPP.md §2): metadata from config.json in the converter's key
// order, tensor names from the architecture's table, the Q/K row
// permutation of the llama family, tied embeddings, F32 for 1-D and norm
// tensors, the requested dtype for the others, Llama 3's generated
// rope_freqs tensor, and the tokenizer keys of formats/vocab. Tensors come in
// the converter's order (shard by shard, names sorted within a shard), so
// that the output matches the converter's byte for byte where the metadata
// allows (see testdata/README.md).
//
// GGUF → HF (ToHF) is the inverse: the inverse permutation, config.json and
// generation_config.json rebuilt from the GGUF keys, the tokenizer from the
// vocabulary, quantized tensors dequantized.
//
// Both return lazy tensors: reading, permuting and casting happen in each
// tensor's WriteTo, a chunk of rows at a time, so memory stays bounded by a
// chunk (about a MiB) whatever the model's size.
package convert
