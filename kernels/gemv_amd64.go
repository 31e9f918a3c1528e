//go:build !noasm

package kernels

// Block decoders (gemv_amd64.s). nb ≥ 1 blocks; n a positive multiple of
// 16 (AVX-512) or 8 (AVX2).

//go:noescape
func q8_0DecodeAVX512(dst *float32, src *byte, nb int)

//go:noescape
func q8_0DecodeAVX2(dst *float32, src *byte, nb int)

//go:noescape
func q4_0DecodeAVX512(dst *float32, src *byte, nb int)

//go:noescape
func q4_0DecodeAVX2(dst *float32, src *byte, nb int)

//go:noescape
func fourBitDecodeAVX512(dst *float32, src *byte, absmax *float32, table *[16]float32, nb, bs int)

//go:noescape
func fourBitDecodeAVX2(dst *float32, src *byte, absmax *float32, table *[16]float32, nb, bs int)

//go:noescape
func int8RowAVX512(dst *float32, src *byte, n int, scale float32)

//go:noescape
func int8RowAVX2(dst *float32, src *byte, n int, scale float32)

// Dot kernels: out[i*4+j] += a_i·b_j over k columns for the rows
// a_i = a[i*lda:], b_j = b[j*ldb:]. The AVX-512 ones take any k ≥ 0, the
// AVX2 ones a multiple of 8.

//go:noescape
func dot4x4AVX512(out *float32, a *float32, lda int, b *float32, ldb int, k int)

//go:noescape
func dot1x4AVX512(out *float32, a *float32, b *float32, ldb int, k int)

//go:noescape
func dot2x4AVX2(out *float32, a *float32, lda int, b *float32, ldb int, k int)

//go:noescape
func dot1x4AVX2(out *float32, a *float32, b *float32, ldb int, k int)

func q8_0Blocks(dst []float32, src []byte, lvl feature) {
	nb := len(dst) / ggmlQK
	if nb == 0 {
		return
	}
	_ = src[nb*q8_0Bytes-1]
	switch lvl {
	case featAVX512:
		q8_0DecodeAVX512(&dst[0], &src[0], nb)
	case featAVX2:
		q8_0DecodeAVX2(&dst[0], &src[0], nb)
	default:
		q8_0BlocksGeneric(dst, src)
	}
}

func q4_0Blocks(dst []float32, src []byte, lvl feature) {
	nb := len(dst) / ggmlQK
	if nb == 0 {
		return
	}
	_ = src[nb*q4_0Bytes-1]
	switch lvl {
	case featAVX512:
		q4_0DecodeAVX512(&dst[0], &src[0], nb)
	case featAVX2:
		q4_0DecodeAVX2(&dst[0], &src[0], nb)
	default:
		q4_0BlocksGeneric(dst, src)
	}
}

// fourBitBlocks decodes len(absmax) whole blocks of bs values (bs a power
// of two ≥ 32) from packed into dst.
func fourBitBlocks(dst []float32, packed []byte, absmax []float32, table *[16]float32, bs int, lvl feature) {
	nb := len(absmax)
	if nb == 0 {
		return
	}
	_ = dst[nb*bs-1]
	_ = packed[nb*bs/2-1]
	switch lvl {
	case featAVX512:
		fourBitDecodeAVX512(&dst[0], &packed[0], &absmax[0], table, nb, bs)
	case featAVX2:
		fourBitDecodeAVX2(&dst[0], &packed[0], &absmax[0], table, nb, bs)
	default:
		fourBitBlocksGeneric(dst, packed, absmax, table, bs)
	}
}

func int8Row(dst []float32, q []byte, scale float32, lvl feature) {
	n := len(dst)
	q = q[:n]
	m := 0
	switch lvl {
	case featAVX512:
		m = n &^ 15
		if m > 0 {
			int8RowAVX512(&dst[0], &q[0], m, scale)
		}
	case featAVX2:
		m = n &^ 7
		if m > 0 {
			int8RowAVX2(&dst[0], &q[0], m, scale)
		}
	}
	int8RowGeneric(dst[m:], q[m:], scale)
}

// dotRows computes out[i*4+j] += a_i·b_j for i < mb, j < 4 over k columns
// (dotRowsGeneric is the reference).
func dotRows(out []float32, a []float32, lda, mb int, b []float32, ldb, k int, lvl feature) {
	if k == 0 || mb == 0 {
		return
	}
	_ = a[(mb-1)*lda+k-1]
	_ = b[(gemvRB-1)*ldb+k-1]
	_ = out[mb*gemvRB-1]
	switch lvl {
	case featAVX512:
		i := 0
		for ; i+4 <= mb; i += 4 {
			dot4x4AVX512(&out[i*gemvRB], &a[i*lda], lda, &b[0], ldb, k)
		}
		for ; i < mb; i++ {
			dot1x4AVX512(&out[i*gemvRB], &a[i*lda], &b[0], ldb, k)
		}
	case featAVX2:
		k8 := k &^ 7
		if k8 > 0 {
			i := 0
			for ; i+2 <= mb; i += 2 {
				dot2x4AVX2(&out[i*gemvRB], &a[i*lda], lda, &b[0], ldb, k8)
			}
			for ; i < mb; i++ {
				dot1x4AVX2(&out[i*gemvRB], &a[i*lda], &b[0], ldb, k8)
			}
		}
		dotRowsGeneric(out, a, lda, mb, b, ldb, k8, k)
	default:
		dotRowsGeneric(out, a, lda, mb, b, ldb, 0, k)
	}
}
