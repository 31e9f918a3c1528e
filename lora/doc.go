// Package lora will hold LoRA adapters: PEFT adapter_model.safetensors +
// adapter_config.json and GGUF LoRA adapters as llama.cpp reads them,
// conversion between them, and merging into a base model. It is empty until
// the adapters issue lands; see the open issues.
package lora
