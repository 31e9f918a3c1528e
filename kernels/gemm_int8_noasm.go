//go:build !amd64 || noasm

package kernels

const haveInt8Gemm = false

func packQ4_0PanelVNNI(dst *byte, src *byte, ldb int, nb int, offs *[16]int32) {
	panic("kernels: no VNNI kernels in this build")
}

func packQ8_0PanelVNNI(dst *byte, src *byte, ldb int, nb int, offs *[16]int32) {
	panic("kernels: no VNNI kernels in this build")
}

func int8Kern8x16VNNI(c *float32, ldc int, a *byte, b *byte, nb int, rows int, mask uint16, accum bool) {
	panic("kernels: no VNNI kernels in this build")
}
