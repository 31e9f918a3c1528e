//go:build !amd64 || noasm

package kernels

// Without assembly the fused 4-bit product is its pure-Go reference, which
// serves every level.

func fourBitDotRows(out []float32, packed []byte, absmax []float32, table *[16]float32, a []float32, bs int, _ feature) {
	fourBitDotRowsGeneric(out, packed, absmax, table, a, bs)
}
