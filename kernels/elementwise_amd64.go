//go:build amd64 && !noasm

package kernels

// Run-time dispatch of the element-wise kernels on amd64: the AVX-512 or
// AVX2+FMA assembly of elementwise_amd64.s, chosen by the level Features
// reports (SetFeatures lowers it in tests), else the reference loops.
// The assembly takes the length from its first slice argument; the
// wrappers have checked that the others are as long.

//go:noescape
func dotAVX512(a, b []float32) float32

//go:noescape
func dotAVX2(a, b []float32) float32

//go:noescape
func axpyAVX512(y []float32, alpha float32, x []float32)

//go:noescape
func axpyAVX2(y []float32, alpha float32, x []float32)

//go:noescape
func scaleAVX512(x []float32, alpha float32)

//go:noescape
func scaleAVX2(x []float32, alpha float32)

//go:noescape
func addAVX512(dst, a, b []float32)

//go:noescape
func addAVX2(dst, a, b []float32)

//go:noescape
func mulScaleAVX512(dst, x, w []float32, s float32)

//go:noescape
func mulScaleAVX2(dst, x, w []float32, s float32)

//go:noescape
func dot3AVX512(a, b, c []float32) float32

//go:noescape
func dot3AVX2(a, b, c []float32) float32

// rmsBackAVX512 and rmsBackAVX2 take their length from w.
//
//go:noescape
func rmsBackAVX512(dx, dy, x, w []float32, r, k float32)

//go:noescape
func rmsBackAVX2(dx, dy, x, w []float32, r, k float32)

//go:noescape
func mulAccAVX512(dst, a, b []float32, s float32)

//go:noescape
func mulAccAVX2(dst, a, b []float32, s float32)

//go:noescape
func subMulAVX512(dst, y, dy []float32, c float32)

//go:noescape
func subMulAVX2(dst, y, dy []float32, c float32)

// maxAVX512 and maxAVX2 need len(x) ≥ 1.
//
//go:noescape
func maxAVX512(x []float32) float32

//go:noescape
func maxAVX2(x []float32) float32

// expSubAVX512 and expSubAVX2 need x[i]-m ≤ 0 (or NaN) for every i.
//
//go:noescape
func expSubAVX512(x []float32, m float32) float32

//go:noescape
func expSubAVX2(x []float32, m float32) float32

//go:noescape
func siluMulAVX512(dst, gate, up []float32)

//go:noescape
func siluMulAVX2(dst, gate, up []float32)

//go:noescape
func siluMulBackwardAVX512(dgate, dup, dy, gate, up []float32)

//go:noescape
func siluMulBackwardAVX2(dgate, dup, dy, gate, up []float32)

func vdot(a, b []float32) float32 {
	switch Features() {
	case "avx512":
		return dotAVX512(a, b)
	case "avx2":
		return dotAVX2(a, b)
	}
	return dotRef(a, b)
}

func vaxpy(y []float32, alpha float32, x []float32) {
	switch Features() {
	case "avx512":
		axpyAVX512(y, alpha, x)
	case "avx2":
		axpyAVX2(y, alpha, x)
	default:
		axpyRef(y, alpha, x)
	}
}

func vscale(x []float32, alpha float32) {
	switch Features() {
	case "avx512":
		scaleAVX512(x, alpha)
	case "avx2":
		scaleAVX2(x, alpha)
	default:
		scaleRef(x, alpha)
	}
}

func vadd(dst, a, b []float32) {
	switch Features() {
	case "avx512":
		addAVX512(dst, a, b)
	case "avx2":
		addAVX2(dst, a, b)
	default:
		addRef(dst, a, b)
	}
}

func vmulScale(dst, x, w []float32, s float32) {
	switch Features() {
	case "avx512":
		mulScaleAVX512(dst, x, w, s)
	case "avx2":
		mulScaleAVX2(dst, x, w, s)
	default:
		mulScaleRef(dst, x, w, s)
	}
}

func vdot3(a, b, c []float32) float32 {
	switch Features() {
	case "avx512":
		return dot3AVX512(a, b, c)
	case "avx2":
		return dot3AVX2(a, b, c)
	}
	return dot3Ref(a, b, c)
}

func vrmsBack(dx, dy, x, w []float32, r, k float32) {
	switch Features() {
	case "avx512":
		rmsBackAVX512(dx, dy, x, w, r, k)
	case "avx2":
		rmsBackAVX2(dx, dy, x, w, r, k)
	default:
		rmsBackRef(dx, dy, x, w, r, k)
	}
}

func vmulAcc(dst, a, b []float32, s float32) {
	switch Features() {
	case "avx512":
		mulAccAVX512(dst, a, b, s)
	case "avx2":
		mulAccAVX2(dst, a, b, s)
	default:
		mulAccRef(dst, a, b, s)
	}
}

func vsubMul(dst, y, dy []float32, c float32) {
	switch Features() {
	case "avx512":
		subMulAVX512(dst, y, dy, c)
	case "avx2":
		subMulAVX2(dst, y, dy, c)
	default:
		subMulRef(dst, y, dy, c)
	}
}

func vmax(x []float32) float32 {
	switch Features() {
	case "avx512":
		return maxAVX512(x)
	case "avx2":
		return maxAVX2(x)
	}
	return maxRef(x)
}

func vexpSub(x []float32, m float32) float32 {
	switch Features() {
	case "avx512":
		return expSubAVX512(x, m)
	case "avx2":
		return expSubAVX2(x, m)
	}
	return expSubRef(x, m)
}

func vsiluMul(dst, gate, up []float32) {
	switch Features() {
	case "avx512":
		siluMulAVX512(dst, gate, up)
	case "avx2":
		siluMulAVX2(dst, gate, up)
	default:
		siluMulRef(dst, gate, up)
	}
}

func vsiluMulBackward(dgate, dup, dy, gate, up []float32) {
	switch Features() {
	case "avx512":
		siluMulBackwardAVX512(dgate, dup, dy, gate, up)
	case "avx2":
		siluMulBackwardAVX2(dgate, dup, dy, gate, up)
	default:
		siluMulBackwardRef(dgate, dup, dy, gate, up)
	}
}
