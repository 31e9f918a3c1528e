package kernels

// This file holds the pure-Go side of the matrix products: the reference
// loops the tests compare against, and the generic level (a 4×4 Go
// micro-kernel and a scalar transpose) used where no assembly runs.

// sgemmRef is the reference for every float32 product in this package:
//
//	C[i][j] = Σ_p opA(i,p)·opB(p,j)  (+ C[i][j] when accumulate)
//
// for i < m, j < n, with opA(i,p) = a[i*lda+p], or a[p*lda+i] when transA
// (A stored k×m), and opB(p,j) = b[j*ldb+p] when transB (B stored n×k, the
// C = A·Bᵀ of SgemmNT), or b[p*ldb+j]. The sum runs over p in order in
// float32.
func sgemmRef(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				var x, y float32
				if transA {
					x = a[p*lda+i]
				} else {
					x = a[i*lda+p]
				}
				if transB {
					y = b[j*ldb+p]
				} else {
					y = b[p*ldb+j]
				}
				s += x * y
			}
			if accumulate {
				c[i*ldc+j] += s
			} else {
				c[i*ldc+j] = s
			}
		}
	}
}

// genericLevel is the pure-Go implementation of the engine.
var genericLevel = *newGemmLevel("generic", 4, 16, transposeGeneric, kernVariant{4, sgemmKernGeneric})

// sgemmKernGeneric is the 4×4 Go micro-kernel; it computes what
// sgemmKern14x32 documents (gemm_amd64.go), with 4 rows and 4 columns (b holds 4 float32s
// per k), for 1 ≤ mr ≤ 4 and 1 ≤ nc ≤ 4.
func sgemmKernGeneric(kc int, a, b, c []float32, ldc, mr, nc int, accum bool) {
	a0 := a[0*aStride : 0*aStride+kc]
	a1 := a[1*aStride : 1*aStride+kc]
	a2 := a[2*aStride : 2*aStride+kc]
	a3 := a[3*aStride : 3*aStride+kc]
	b = b[:4*kc]
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	for k := range kc {
		bk := b[4*k : 4*k+4 : 4*k+4]
		b0, b1, b2, b3 := bk[0], bk[1], bk[2], bk[3]
		x := a0[k]
		c00 += x * b0
		c01 += x * b1
		c02 += x * b2
		c03 += x * b3
		x = a1[k]
		c10 += x * b0
		c11 += x * b1
		c12 += x * b2
		c13 += x * b3
		x = a2[k]
		c20 += x * b0
		c21 += x * b1
		c22 += x * b2
		c23 += x * b3
		x = a3[k]
		c30 += x * b0
		c31 += x * b1
		c32 += x * b2
		c33 += x * b3
	}
	t := [4][4]float32{
		{c00, c01, c02, c03},
		{c10, c11, c12, c13},
		{c20, c21, c22, c23},
		{c30, c31, c32, c33},
	}
	for r := range mr {
		row := c[r*ldc : r*ldc+nc]
		if accum {
			for j := range row {
				row[j] += t[r][j]
			}
		} else {
			copy(row, t[r][:nc])
		}
	}
}

// transposeGeneric transposes a block: dst[j*ldd+i] = src[i*lds+j] for
// i < rows, j < cols.
func transposeGeneric(dst []float32, ldd int, src []float32, lds int, rows, cols int) {
	for i := range rows {
		s := src[i*lds : i*lds+cols]
		for j, v := range s {
			dst[j*ldd+i] = v
		}
	}
}
