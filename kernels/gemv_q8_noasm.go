//go:build !amd64 || noasm

package kernels

func qDotRows(out []float32, w []byte, ldw int, a []float32, q8 bool, _ feature) {
	qDotRowsGeneric(out, w, ldw, a, q8)
}

func q4DotRows(out []float32, w []byte, ldw int, a *q8Act, _ feature) {
	q4DotRowsGeneric(out, w, ldw, a)
}

func q4CorrOffset(feature) int32 { return 0 }

func prefetch([]byte) {}

func q4PairLayout(feature) bool { return false }

func q8Int8Level(feature) bool { return false }

const q8CorrOffset = 128

func q8DotRowsInt8(out []float32, w []byte, ldw int, a *q8Act, _ feature) {
	q8DotRowsInt8Generic(out, w, ldw, a)
}
