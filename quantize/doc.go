// Package quantize holds every numeric transform of tensor bytes: casts
// between f32, f16 and bf16, bitsandbytes-compatible NF4/FP4 (with double
// quantization) and int8, and ggml's block quantizers, each bit-exact with
// its reference implementation, plus the dequantizers back to 16/32-bit.
//
// quantize knows numbers, never file layouts: it reads formats.Source
// tensors and produces formats.Tensor values whose data is computed lazily
// in WriteTo.
package quantize
