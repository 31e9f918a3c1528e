//go:build !amd64 || noasm

package kernels

// Without assembly every decoder and dot kernel is its pure-Go reference.

func q8_0Blocks(dst []float32, src []byte, _ feature) { q8_0BlocksGeneric(dst, src) }

func q4_0Blocks(dst []float32, src []byte, _ feature) { q4_0BlocksGeneric(dst, src) }

func fourBitBlocks(dst []float32, packed []byte, absmax []float32, table *[16]float32, bs int, _ feature) {
	fourBitBlocksGeneric(dst, packed, absmax, table, bs)
}

func int8Row(dst []float32, q []byte, scale float32, _ feature) { int8RowGeneric(dst, q, scale) }

func dotRows(out []float32, a []float32, lda, mb int, b []float32, ldb, k int, _ feature) {
	dotRowsGeneric(out, a, lda, mb, b, ldb, 0, k)
}
