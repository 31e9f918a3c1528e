//go:build !amd64 || noasm

package kernels

// Without assembly every element-wise kernel is its reference loop.

func vdot(a, b []float32) float32                   { return dotRef(a, b) }
func vaxpy(y []float32, alpha float32, x []float32) { axpyRef(y, alpha, x) }
func vscale(x []float32, alpha float32)             { scaleRef(x, alpha) }
func vadd(dst, a, b []float32)                      { addRef(dst, a, b) }
func vmulScale(dst, x, w []float32, s float32)      { mulScaleRef(dst, x, w, s) }
func vdot3(a, b, c []float32) float32               { return dot3Ref(a, b, c) }
func vrmsBack(dx, dy, x, w []float32, r, k float32) { rmsBackRef(dx, dy, x, w, r, k) }
func vmulAcc(dst, a, b []float32, s float32)        { mulAccRef(dst, a, b, s) }
func vsubMul(dst, y, dy []float32, c float32)       { subMulRef(dst, y, dy, c) }
func vmax(x []float32) float32                      { return maxRef(x) }
func vexpSub(x []float32, m float32) float32        { return expSubRef(x, m) }
func vsiluMul(dst, gate, up []float32)              { siluMulRef(dst, gate, up) }
func vsiluMulBackward(dgate, dup, dy, gate, up []float32) {
	siluMulBackwardRef(dgate, dup, dy, gate, up)
}
