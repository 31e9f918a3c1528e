// Package train will hold the streaming LoRA/QLoRA trainer for
// Llama-family models, with frozen weights memory-mapped. It is empty until
// the finetune issue lands; see the open issues.
package train
