// Package train fine-tunes Llama-family models with LoRA adapters on the
// CPU (TRAINER-DESIGN.md). The frozen weights stay memory-mapped in their
// stored type (f32, f16, bf16, Q8_0, Q4_0, or NF4 for QLoRA); only the
// low-rank matrices A and B of each adapted projection are trained:
//
//	Y = X·W0ᵀ + s·(X·Aᵀ)·Bᵀ,  s = α/r (α/√r with rsLoRA)
//
// The forward pass mirrors package llama's (it opens the model through
// llama.Open for the configuration and the tokenizer) and keeps the
// activations the backward pass needs; the backward pass computes
// gradients for the adapters only, with G·W0 products against the stored
// weight dequantized tile by tile. AdamW, warmup + constant/linear/cosine
// schedules, gradient accumulation and clipping by global norm, packing of
// text and prompt/completion samples into fixed windows and the PEFT/GGUF
// adapter outputs complete the trainer.
package train
