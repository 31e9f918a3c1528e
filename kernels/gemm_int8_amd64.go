//go:build !noasm

package kernels

// haveInt8Gemm reports that this build has the VNNI GEMM kernels.
const haveInt8Gemm = true

// packQ4_0PanelVNNI lays out nb blocks of 16 Q4_0 rows (row c at
// src + c·ldb; offs[c] must be c·ldb, the gather's indices) for
// int8Kern8x16VNNI: per block 576
// bytes, for g < 8 the 64 bytes
//
//	dst[64g + 4c + t] = code of value 4g+t of row c (the nibble, 0…15)
//
// then dst[512 + 4c:] = float32 scale of row c. nb ≥ 1.
//
//go:noescape
func packQ4_0PanelVNNI(dst *byte, src *byte, ldb int, nb int, offs *[16]int32)

// packQ8_0PanelVNNI is packQ4_0PanelVNNI for Q8_0 rows: the codes are
// stored as unsigned bytes, code+128.
//
//go:noescape
func packQ8_0PanelVNNI(dst *byte, src *byte, ldb int, nb int, offs *[16]int32)

// int8Kern8x16VNNI multiplies 8 activation rows packed by packInt8Rows with
// 16 weight rows packed by packQ4_0PanelVNNI over nb blocks and stores
// rows < rows, columns in mask of C (row stride ldc), adding to C with
// accum. See gemm_int8_amd64.s for the arithmetic. nb ≥ 1, 1 ≤ rows ≤ 8.
//
//go:noescape
func int8Kern8x16VNNI(c *float32, ldc int, a *byte, b *byte, nb int, rows int, mask uint16, accum bool)
