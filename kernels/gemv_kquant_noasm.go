//go:build !amd64 || noasm

package kernels

// Without assembly the fused K-quant products are their pure-Go
// references (kFusedRows sends MatVecT through the decoding path anyway).

func q4KDotRows(out []float32, w []byte, a []float32, _ feature) { q4KDotRowsGeneric(out, w, a) }

func q5KDotRows(out []float32, w []byte, a []float32, _ feature) { q5KDotRowsGeneric(out, w, a) }

func q6KDotRows(out []float32, w []byte, a []float32, _ feature) { q6KDotRowsGeneric(out, w, a) }
