//go:build !noasm

package kernels

// K-quant block decoders (kquant_amd64.s): nb ≥ 1 whole blocks, the
// values of q4KBlocksGeneric, q5KBlocksGeneric and q6KBlocksGeneric bit
// for bit.

//go:noescape
func q4KDecodeAVX512(dst *float32, src *byte, nb int)

//go:noescape
func q4KDecodeAVX2(dst *float32, src *byte, nb int)

//go:noescape
func q5KDecodeAVX512(dst *float32, src *byte, nb int)

//go:noescape
func q5KDecodeAVX2(dst *float32, src *byte, nb int)

//go:noescape
func q6KDecodeAVX512(dst *float32, src *byte, nb int)

//go:noescape
func q6KDecodeAVX2(dst *float32, src *byte, nb int)

func q6KBlocks(dst []float32, src []byte, lvl feature) {
	nb := len(dst) / kQK
	if nb == 0 {
		return
	}
	_ = src[nb*q6KBytes-1]
	switch lvl {
	case featAVX512:
		q6KDecodeAVX512(&dst[0], &src[0], nb)
	case featAVX2:
		q6KDecodeAVX2(&dst[0], &src[0], nb)
	default:
		q6KBlocksGeneric(dst, src)
	}
}

func q4KBlocks(dst []float32, src []byte, lvl feature) {
	nb := len(dst) / kQK
	if nb == 0 {
		return
	}
	_ = src[nb*q4KBytes-1]
	switch lvl {
	case featAVX512:
		q4KDecodeAVX512(&dst[0], &src[0], nb)
	case featAVX2:
		q4KDecodeAVX2(&dst[0], &src[0], nb)
	default:
		q4KBlocksGeneric(dst, src)
	}
}

func q5KBlocks(dst []float32, src []byte, lvl feature) {
	nb := len(dst) / kQK
	if nb == 0 {
		return
	}
	_ = src[nb*q5KBytes-1]
	switch lvl {
	case featAVX512:
		q5KDecodeAVX512(&dst[0], &src[0], nb)
	case featAVX2:
		q5KDecodeAVX2(&dst[0], &src[0], nb)
	default:
		q5KBlocksGeneric(dst, src)
	}
}
