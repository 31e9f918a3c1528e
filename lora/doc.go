// Package lora holds LoRA adapters: reading and writing the PEFT, MLX and
// GGUF (llama.cpp) layouts, converting between them, checking an adapter
// against its base model, and merging adapters into a base — the base in
// any dtype qtool reads, quantized ones included — tensor by tensor.
//
// The in-memory model is Adapter: one Pair per adapted base weight, in
// PEFT orientation and Hugging Face naming (A is r×in, B is out×r with
// rows in HF order), with the effective scale already resolved, so that
// every format converts through it without losing the per-module alpha,
// rank or rsLoRA information.
package lora
