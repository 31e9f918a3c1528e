//go:build !amd64 || noasm

package kernels

// Without assembly there is no AMX path.
func amxAvailable() bool { return false }

func amxMatMulT(c []float32, ldc int, a []float32, lda, m int, b BMatrix, accumulate bool, threads int) {
	panic("kernels: AMX path without AMX")
}
