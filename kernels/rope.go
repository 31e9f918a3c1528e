package kernels

import "math"

// Rotary position embedding (TRAINER-DESIGN.md §2 step 3). Each head of q
// and k is split into headDim/2 pairs (a, b), and pair j at position p is
// rotated by the angle p·freqs[j]:
//
//	a' = a·cos − b·sin
//	b' = a·sin + b·cos
//
// Two conventions pick the pairs. Rotate-half (Hugging Face Llama) pairs
// element j with element j+headDim/2; interleaved (GGUF/ggml RoPE mode 0,
// the llama architecture of llama.cpp) pairs 2j with 2j+1. The two agree
// through the Q/K row permutation of GGUF-LLAMACPP.md §2.2: interleaved
// element 2j holds rotate-half element j and 2j+1 holds j+headDim/2, so
// permuting then rotating interleaved equals rotating rotate-half then
// permuting. The convention follows the source of the weights; the mapped
// weights are never permuted at load.

const (
	errRopeDim   = "kernels: RoPE head dimension must be even and positive"
	errRopeFreqs = "kernels: RoPE needs headDim/2 frequencies"
	errRopeMax   = "kernels: RoPE table needs maxPos > 0"
	errRopeHead  = "kernels: RoPE head dimension differs from the table's"
	errRopeLen   = "kernels: RoPE input is not nHeads×headDim long"
	errRopePos   = "kernels: RoPE position outside the table"
)

// RopeTable holds cos(p·freqs[j]) and sin(p·freqs[j]) for every position
// p < maxPos and pair j < headDim/2, in float32. The angles are evaluated
// in float64 from the float64 frequencies, so the entries are the correctly
// rounded values; Hugging Face forms the angle in float32, which differs by
// up to p·2⁻²⁴ radians at position p. A RopeTable is read-only once built
// and safe for concurrent use.
type RopeTable struct {
	headDim, maxPos int
	cos, sin        []float32 // [maxPos][headDim/2]
}

// RopeFreqs returns the standard inverse frequencies freqs[j] =
// theta^(−2j/headDim), j < headDim/2 (theta is rope_theta, GGUF
// rope.freq_base). Scaled variants (Llama 3 rope_scaling, linear, …) are
// the caller's business: pass their frequencies to NewRopeTable. To match
// Hugging Face's float32 inv_freq exactly, round each value to float32 first.
func RopeFreqs(headDim int, theta float64) []float64 {
	if headDim <= 0 || headDim%2 != 0 {
		panic(errRopeDim)
	}
	freqs := make([]float64, headDim/2)
	for j := range freqs {
		freqs[j] = math.Pow(theta, -float64(2*j)/float64(headDim))
	}
	return freqs
}

// NewRopeTable precomputes the rotations of positions 0 … maxPos−1 for
// heads of headDim elements, with len(freqs) == headDim/2 inverse
// frequencies (radians per position).
func NewRopeTable(headDim, maxPos int, freqs []float64) *RopeTable {
	if headDim <= 0 || headDim%2 != 0 {
		panic(errRopeDim)
	}
	if maxPos <= 0 {
		panic(errRopeMax)
	}
	half := headDim / 2
	if len(freqs) != half {
		panic(errRopeFreqs)
	}
	t := &RopeTable{
		headDim: headDim,
		maxPos:  maxPos,
		cos:     make([]float32, maxPos*half),
		sin:     make([]float32, maxPos*half),
	}
	for p := range maxPos {
		c, s := t.cos[p*half:(p+1)*half], t.sin[p*half:(p+1)*half]
		for j, f := range freqs {
			sn, cs := math.Sincos(float64(p) * f)
			c[j], s[j] = float32(cs), float32(sn)
		}
	}
	return t
}

// HeadDim returns the head dimension the table was built for.
func (t *RopeTable) HeadDim() int { return t.headDim }

// MaxPos returns the number of positions the table covers.
func (t *RopeTable) MaxPos() int { return t.maxPos }

// Apply rotates, in place, the nHeads heads of one token at position pos:
// x is [nHeads][headDim] (one row of q or k). interleaved selects the
// GGUF/ggml pairs (2j, 2j+1); otherwise the rotate-half pairs (j, j+D/2).
//
//	a, b := x[h][j], x[h][j+D/2]       // or x[h][2j], x[h][2j+1]
//	x[h][j], x[h][j+D/2] = a*cos - b*sin, a*sin + b*cos
func (t *RopeTable) Apply(x []float32, nHeads, headDim, pos int, interleaved bool) {
	t.rotate(x, nHeads, headDim, pos, interleaved, 1)
}

// ApplyInverse rotates by the opposite angle (−pos·freqs[j]): the backward
// pass of Apply, which is orthogonal, so the gradient with respect to its
// input is the gradient with respect to its output rotated back.
//
//	x[h][j], x[h][j+D/2] = a*cos + b*sin, b*cos - a*sin
func (t *RopeTable) ApplyInverse(x []float32, nHeads, headDim, pos int, interleaved bool) {
	t.rotate(x, nHeads, headDim, pos, interleaved, -1)
}

// rotate applies the rotation with sin multiplied by sgn (±1, exact).
func (t *RopeTable) rotate(x []float32, nHeads, headDim, pos int, interleaved bool, sgn float32) {
	if headDim != t.headDim {
		panic(errRopeHead)
	}
	if nHeads < 0 || len(x) != nHeads*headDim {
		panic(errRopeLen)
	}
	if pos < 0 || pos >= t.maxPos {
		panic(errRopePos)
	}
	half := headDim / 2
	c := t.cos[pos*half : (pos+1)*half]
	s := t.sin[pos*half : (pos+1)*half]
	for h := range nHeads {
		row := x[h*headDim : (h+1)*headDim]
		if interleaved {
			for j := range c {
				cj, sj := c[j], sgn*s[j]
				a, b := row[2*j], row[2*j+1]
				row[2*j] = a*cj - b*sj
				row[2*j+1] = a*sj + b*cj
			}
			continue
		}
		lo, hi := row[:half], row[half:]
		for j := range c {
			cj, sj := c[j], sgn*s[j]
			a, b := lo[j], hi[j]
			lo[j] = a*cj - b*sj
			hi[j] = a*sj + b*cj
		}
	}
}
