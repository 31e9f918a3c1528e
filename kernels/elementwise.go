package kernels

import "math"

// Element-wise kernels of the Llama block (TRAINER-DESIGN.md §2): RMSNorm,
// SiLU·mul (SwiGLU), softmax, their backward passes, and the vector helpers
// the trainer composes them with. RoPE is in rope.go, AdamW in adamw.go.
//
// Every function works on one row: slices in, destination first, no
// allocation. The wrappers below check lengths and panic with a "kernels: "
// message on a programmer error; the kernels they call (assembly on amd64
// with AVX2+FMA or AVX-512, the loops of elementwise_ref.go elsewhere) trust
// them. An output may be the very same slice as an input where the doc says
// so; partially overlapping slices are never allowed.
//
// Accuracy. Sums (Dot, the sum of squares of RMSNorm, the softmax
// denominator) are accumulated in float32 in several lanes, so they differ
// from the sequential reference loop in rounding only; the tests bound both
// against a float64 sum by γ_n = n·2⁻²⁴/(1−n·2⁻²⁴) times Σ|terms|. The
// assembly exp (used by SiLUMul, SiLUMulBackward and Softmax, always on
// arguments ≤ 0) is a Cody–Waite reduction with ln 2 split in two float32
// parts, then the degree-7 Taylor polynomial of e^r on |r| ≤ ln2/2
// (truncation below 6·10⁻⁹ relative) and a scaling by 2ⁿ: within 2 ulp of
// e^x over the normal range, which the tests check on a dense sweep
// (measured 0.9 ulp). SiLUMul is then within 6 ulp (measured 2.8). Results below 2⁻¹²⁶ are subnormal (the AVX2 path
// returns 0 for arguments under −87.6): an absolute error under 2⁻¹²⁶.
// The reference loops evaluate exp in float64.

const (
	errEWLen      = "kernels: slice lengths differ"
	errEWEmptyRow = "kernels: RMSNorm of an empty row"
	errEWCausal   = "kernels: softmax length out of range"
)

// ewSameLen panics unless every length in lens equals n.
func ewSameLen(n int, lens ...int) {
	for _, l := range lens {
		if l != n {
			panic(errEWLen)
		}
	}
}

// Dot returns Σ a[i]·b[i].
//
//	for i := range a { s += a[i] * b[i] }
func Dot(a, b []float32) float32 {
	ewSameLen(len(a), len(b))
	return vdot(a, b)
}

// Axpy adds alpha·x to y.
//
//	for i := range x { y[i] += alpha * x[i] }
func Axpy(y []float32, alpha float32, x []float32) {
	ewSameLen(len(y), len(x))
	vaxpy(y, alpha, x)
}

// Scale multiplies x by alpha in place.
//
//	for i := range x { x[i] *= alpha }
func Scale(x []float32, alpha float32) {
	vscale(x, alpha)
}

// Add sets dst = a + b; dst may be a or b.
//
//	for i := range dst { dst[i] = a[i] + b[i] }
func Add(dst, a, b []float32) {
	ewSameLen(len(dst), len(a), len(b))
	vadd(dst, a, b)
}

// RMSNorm normalises one row: dst = x / rms(x) ⊙ weight with
// rms(x) = sqrt(mean(x²) + eps), and returns invRMS = 1/rms(x), the value
// RMSNormBackward needs. dst may be x. The sum of squares is accumulated in
// float32, mean+eps and the square root in float64; the products are
// rounded as Hugging Face's LlamaRMSNorm rounds them, (x·invRMS)·weight.
//
//	inv := 1 / sqrt(Σ x[i]² / n + eps)
//	for i := range x { dst[i] = (x[i] * inv) * weight[i] }
func RMSNorm(dst, x, weight []float32, eps float32) (invRMS float32) {
	n := len(x)
	if n == 0 {
		panic(errEWEmptyRow)
	}
	ewSameLen(n, len(dst), len(weight))
	ss := vdot(x, x)
	invRMS = float32(1 / math.Sqrt(float64(ss)/float64(n)+float64(eps)))
	vmulScale(dst, x, weight, invRMS)
	return invRMS
}

// RMSNormBackward is the gradient of RMSNorm for one row (TRAINER-DESIGN.md
// §2): with r = invRMS (as returned by RMSNorm on x), x̂ = r·x and
// z = weight ⊙ dy,
//
//	dx      = r·(z − x̂·mean(z ⊙ x̂)) = r·weight⊙dy − x·(r³/n)·Σ weight⊙dy⊙x
//	dweight += dy ⊙ x̂
//
// dweight may be nil when the gain is frozen (the LoRA trainer's case); dx
// may be dy or x; dweight must be none of the others. The sum is
// accumulated in float32 lanes like Dot's, k = r³·sum/n in float64.
//
//	k := r*r*r * Σ (weight[i]*dy[i])*x[i] / n
//	for i { dweight[i] += (x[i]*r)*dy[i]; dx[i] = (weight[i]*dy[i])*r - k*x[i] }
func RMSNormBackward(dx, dweight, dy, x, weight []float32, invRMS float32) {
	n := len(x)
	if n == 0 {
		panic(errEWEmptyRow)
	}
	ewSameLen(n, len(dx), len(dy), len(weight))
	if dweight != nil {
		ewSameLen(n, len(dweight))
	}
	r := float64(invRMS)
	k := float32(r * r * r * float64(vdot3(weight, dy, x)) / float64(n))
	if dweight != nil {
		vmulAcc(dweight, x, dy, invRMS)
	}
	vrmsBack(dx, dy, x, weight, invRMS, k)
}

// SiLUMul is the SwiGLU gate: dst = silu(gate) ⊙ up with
// silu(g) = g·σ(g) = g/(1+e^(−g)). dst may be gate or up.
//
//	for i := range dst { dst[i] = gate[i] / (1 + exp(-gate[i])) * up[i] }
func SiLUMul(dst, gate, up []float32) {
	ewSameLen(len(dst), len(gate), len(up))
	vsiluMul(dst, gate, up)
}

// SiLUMulBackward is the gradient of SiLUMul (TRAINER-DESIGN.md §2, SwiGLU):
// with s = σ(gate),
//
//	dgate = dy ⊙ up ⊙ s·(1 + gate·(1 − s))
//	dup   = dy ⊙ gate·s
//
// dgate and dup must be distinct; either may be dy, gate or up.
func SiLUMulBackward(dgate, dup, dy, gate, up []float32) {
	ewSameLen(len(gate), len(dgate), len(dup), len(dy), len(up))
	vsiluMulBackward(dgate, dup, dy, gate, up)
}

// Softmax replaces x by softmax(x), computed stably as
// exp(x − max x) / Σ exp(x − max x). An empty x is left as is; −Inf
// entries (masked scores) become 0; a row of only −Inf, or one holding a NaN
// or +Inf, becomes NaN, as in PyTorch.
func Softmax(x []float32) {
	SoftmaxCausal(x, len(x))
}

// SoftmaxCausal applies the softmax to x[:n] and sets x[n:] to zero: one row
// of causally masked attention scores, where n = position+1 keys are
// visible. 0 ≤ n ≤ len(x).
//
//	m := max(x[:n]); s := Σ exp(x[i]-m)
//	for i < n { x[i] = exp(x[i]-m) / s }; for i ≥ n { x[i] = 0 }
func SoftmaxCausal(x []float32, n int) {
	if n < 0 || n > len(x) {
		panic(errEWCausal)
	}
	clear(x[n:])
	if n == 0 {
		return
	}
	x = x[:n]
	m := vmax(x)
	s := vexpSub(x, m)
	vscale(x, 1/s)
}

// SoftmaxBackward is the gradient of y = softmax(x) (TRAINER-DESIGN.md §2):
// dx = y ⊙ (dy − Σ dy⊙y). dx may be dy. For a causal row pass the n-element
// prefixes (the masked entries have y = 0 and so dx = 0).
func SoftmaxBackward(dx, y, dy []float32) {
	ewSameLen(len(y), len(dx), len(dy))
	c := vdot(dy, y)
	vsubMul(dx, y, dy, c)
}
