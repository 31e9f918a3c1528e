//go:build !amd64 || noasm

package kernels

func halfFusedLevel(feature) bool { return false }

func halfDotRows(out []float32, w []byte, ldw int, a []float32, bf bool, _ feature) {
	halfDotRowsGeneric(out, w, ldw, a, 0, bf)
}
