//go:build !amd64 || noasm

package kernels

func q6KBlocks(dst []float32, src []byte, _ feature) { q6KBlocksGeneric(dst, src) }

func q4KBlocks(dst []float32, src []byte, _ feature) { q4KBlocksGeneric(dst, src) }

func q5KBlocks(dst []float32, src []byte, _ feature) { q5KBlocksGeneric(dst, src) }
