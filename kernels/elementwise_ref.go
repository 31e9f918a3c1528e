package kernels

import "math"

// Pure-Go reference loops of the element-wise kernels. They are the
// implementation on CPUs without AVX2+FMA, on other architectures and under
// the noasm build tag, and the yardstick the tests hold the assembly to.
// Callers (the exported wrappers in elementwise.go) have checked every
// length; these loops trust them.

func dotRef(a, b []float32) float32 {
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func axpyRef(y []float32, alpha float32, x []float32) {
	for i, v := range x {
		y[i] += alpha * v
	}
}

func scaleRef(x []float32, alpha float32) {
	for i := range x {
		x[i] *= alpha
	}
}

func addRef(dst, a, b []float32) {
	for i, v := range a {
		dst[i] = v + b[i]
	}
}

// mulScaleRef sets dst[i] = (x[i]*s)*w[i], the two roundings of the
// reference RMSNorm (normalise, then apply the gain).
func mulScaleRef(dst, x, w []float32, s float32) {
	for i, v := range x {
		dst[i] = (v * s) * w[i]
	}
}

// dot3Ref returns Σ (a[i]·b[i])·c[i], the reduction of RMSNormBackward.
func dot3Ref(a, b, c []float32) float32 {
	var s float32
	for i, v := range a {
		s += (v * b[i]) * c[i]
	}
	return s
}

// rmsBackRef sets dx[i] = (w[i]·dy[i])·r − k·x[i], the body of
// RMSNormBackward.
func rmsBackRef(dx, dy, x, w []float32, r, k float32) {
	for i, v := range w {
		dx[i] = (v*dy[i])*r - k*x[i]
	}
}

// mulAccRef adds (a[i]·s)·b[i] to dst[i] (the gain gradient of RMSNorm).
func mulAccRef(dst, a, b []float32, s float32) {
	for i, v := range a {
		dst[i] += (v * s) * b[i]
	}
}

// subMulRef sets dst[i] = y[i]*(dy[i]-c), the body of the softmax backward.
func subMulRef(dst, y, dy []float32, c float32) {
	for i, v := range y {
		dst[i] = v * (dy[i] - c)
	}
}

// maxRef returns the largest element of a non-empty x (NaN elements other
// than x[0] are skipped; Softmax turns any NaN into NaN outputs anyway).
func maxRef(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

// expSubRef sets x[i] = exp(x[i]-m) and returns the sum of the new values.
func expSubRef(x []float32, m float32) float32 {
	var s float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		s += float64(e)
	}
	return float32(s)
}

// sigmoid64 is the logistic function evaluated without overflow: exp is only
// ever taken of −|g|.
func sigmoid64(g float64) float64 {
	if g >= 0 {
		return 1 / (1 + math.Exp(-g))
	}
	e := math.Exp(g)
	return e / (1 + e)
}

func siluMulRef(dst, gate, up []float32) {
	for i, g := range gate {
		g64 := float64(g)
		dst[i] = float32(g64 * sigmoid64(g64) * float64(up[i]))
	}
}

func siluMulBackwardRef(dgate, dup, dy, gate, up []float32) {
	for i, g := range gate {
		g64, u, d := float64(g), float64(up[i]), float64(dy[i])
		s := sigmoid64(g64)
		dgate[i] = float32(d * u * s * (1 + g64*(1-s)))
		dup[i] = float32(d * g64 * s)
	}
}
