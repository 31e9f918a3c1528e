package quantize

import (
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/qtool-dev/qtool/formats"
)

// This file holds bitsandbytes' 4-bit quantizers (NF4-BITSANDBYTES.md
// sections 1 and 3): blockwise absmax, the NF4 and FP4 code tables, the
// CUDA kernels' decision rules, nibble packing and the dequantizer.

// Error sentinels of the bitsandbytes-compatible quantizers. Both wrap a
// formats error class, so errors.Is(err, formats.ErrFormat) and the CLI's
// exit codes work unchanged; callers add the tensor name.
var (
	// ErrNonFinite: an input value is NaN or ±Inf (or, for LLM.int8(), does
	// not fit fp16). bitsandbytes would silently write garbage codes.
	ErrNonFinite = formats.NewRule("non-finite value", formats.ErrFormat)
	// ErrBlocksize: a blocksize or group size outside what the format
	// allows (4-bit: 32..4096, 8-bit blockwise: 64..4096, powers of two).
	ErrBlocksize = formats.NewRule("unsupported blocksize", formats.ErrUnsupported)
)

// FourBit names a bitsandbytes 4-bit data type (`bnb_4bit_quant_type`).
type FourBit int

const (
	// NF4 is 4-bit NormalFloat (QLoRA): 16 quantiles of N(0,1) scaled to
	// [-1, 1], with an exact zero at code 7.
	NF4 FourBit = iota
	// FP4 is bitsandbytes' 4-bit float: sign bit 3, 2 exponent bits, 1
	// mantissa bit, values /12 so that the largest magnitude is 1.
	FP4
)

// DefaultBlocksize4Bit is the blocksize of every Hugging Face 4-bit
// checkpoint (Params4bit's default; transformers never changes it).
const DefaultBlocksize4Bit = 64

// String returns the name used in quant_state keys and JSON ("nf4", "fp4").
func (k FourBit) String() string {
	switch k {
	case NF4:
		return "nf4"
	case FP4:
		return "fp4"
	}
	return fmt.Sprintf("FourBit(%d)", int(k))
}

// nf4Bits is the NF4 table (functional.py get_4bit_type("nf4"), equal to
// kernels.cu nf4_dequantization_lut) as float32 bit patterns.
var nf4Bits = [16]uint32{
	0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
	0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000,
}

// nf4ThresholdBits are the 15 constants of the CUDA dQuantizeNF4 decision
// tree, ascending. They equal the float32 midpoints of adjacent nf4Bits
// entries bit for bit (checked by the tests).
var nf4ThresholdBits = [15]uint32{
	0xbf591cd8, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871,
	0x3d22faff, 0x3df64862, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d04, 0x3f248daf, 0x3f5c89da,
}

// fp4Bits is the FP4 table in bit-pattern order: magnitudes
// [0, 0.0625, 8, 12, 4, 6, 2, 3]/12 for codes 0..7, their negatives for
// 8..15. Code 8 is +0.0 as serialized in quant_map; the CUDA dequantizer
// produces -0.0 for it (fp4DequantBits).
var fp4Bits = [16]uint32{
	0x00000000, 0x3baaaaab, 0x3f2aaaab, 0x3f800000, 0x3eaaaaab, 0x3f000000, 0x3e2aaaab, 0x3e800000,
	0x00000000, 0xbbaaaaab, 0xbf2aaaab, 0xbf800000, 0xbeaaaaab, 0xbf000000, 0xbe2aaaab, 0xbe800000,
}

// fp4Thresholds are the CUDA dQuantizeFP4 tree constants on |s|, ascending
// (several are a few ulps off the true midpoints; they are what the GPU
// uses). fp4RankCode maps the number of constants exceeded to the 3-bit
// magnitude pattern.
var (
	fp4Thresholds = [7]float32{0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333}
	fp4RankCode   = [8]uint8{0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011}
)

// Table returns the 16 code values as serialized in `weight.quant_map`
// (FP4 code 8 is +0.0 there).
func (k FourBit) Table() [16]float32 {
	src := &nf4Bits
	if k == FP4 {
		src = &fp4Bits
	}
	var t [16]float32
	for i, b := range src {
		t[i] = math.Float32frombits(b)
	}
	return t
}

// dequantTable is the table the CUDA dequantizer multiplies by: Table()
// except that FP4 code 8 is -0.0 (lut[0] * -1).
func (k FourBit) dequantTable() *[16]float32 {
	if k == FP4 {
		return &fp4Dequant
	}
	return &nf4Dequant
}

var (
	nf4Dequant = NF4.Table()
	fp4Dequant = func() [16]float32 {
		t := FP4.Table()
		t[8] = float32(math.Copysign(0, -1))
		return t
	}()
)

// Options4Bit tunes Quantize4BitTo and Dequantize4BitTo. The zero value
// reproduces the bitsandbytes CUDA kernels on one goroutine.
type Options4Bit struct {
	// ExactZeroBlocks gives all-zero blocks the code of 0.0 (NF4 code 7,
	// bytes 0x77), as bitsandbytes' pure-PyTorch backend does, instead of
	// the CUDA kernel's code 0 (0 * inf = NaN → code 0). The bytes differ
	// only for NF4, and matter only under double quantization, where the
	// reconstructed absmax of a zero block is not 0 and GPU codes then
	// dequantize to -absmax' (NF4-BITSANDBYTES.md section 1).
	ExactZeroBlocks bool
	// Workers > 1 splits the blocks into that many contiguous ranges run
	// concurrently; the output is identical for every value.
	Workers int
}

// numBlocks is ceil(n/bs).
func numBlocks(n, bs int) int { return (n + bs - 1) / bs }

// checkBlocksize accepts powers of two in [lo, 4096].
func checkBlocksize(bs, lo int) error {
	if bs < lo || bs > 4096 || bs&(bs-1) != 0 {
		return fmt.Errorf("quantize: blocksize %d (want a power of two in %d..4096): %w", bs, lo, ErrBlocksize)
	}
	return nil
}

func lengthError(what string, got, want int) error {
	return fmt.Errorf("quantize: %s has %d elements, want %d: %w", what, got, want, formats.ErrFormat)
}

// Quantize4Bit quantizes x (a row-major flattened tensor) to 4-bit codes in
// blocks of blocksize consecutive elements (0 means 64; otherwise a power of
// two in 32..4096), exactly as bitsandbytes' CUDA quantize_4bit does:
// absmax[b] = max|x| over the block, s = x * float32(1/absmax[b]), the code
// chosen by the kernel's decision tree. It returns the packed codes
// ((len(x)+1)/2 bytes, element 2j in the high nibble, an odd count padded
// with the code of 0.0) and the float32 absmax of each block. An all-zero
// block gets code 0 everywhere, as on the GPU (Options4Bit.ExactZeroBlocks
// gives the PyTorch backend's code of 0.0 instead). NaN and ±Inf inputs are
// refused with ErrNonFinite.
func Quantize4Bit(kind FourBit, x []float32, blocksize int) (packed []byte, absmax []float32, err error) {
	if blocksize == 0 {
		blocksize = DefaultBlocksize4Bit
	}
	if err := checkBlocksize(blocksize, 32); err != nil {
		return nil, nil, err
	}
	packed = make([]byte, (len(x)+1)/2)
	absmax = make([]float32, numBlocks(len(x), blocksize))
	if err := Quantize4BitTo(kind, packed, absmax, x, blocksize, Options4Bit{}); err != nil {
		return nil, nil, err
	}
	return packed, absmax, nil
}

// Quantize4BitTo is Quantize4Bit into caller buffers: packed must have
// exactly (len(x)+1)/2 bytes and absmax ceil(len(x)/blocksize) values. A
// tensor may be fed in pieces whose lengths are multiples of blocksize.
func Quantize4BitTo(kind FourBit, packed []byte, absmax []float32, x []float32, blocksize int, opt Options4Bit) error {
	if kind != NF4 && kind != FP4 {
		return fmt.Errorf("quantize: unknown 4-bit type %v: %w", kind, formats.ErrUnsupported)
	}
	if err := checkBlocksize(blocksize, 32); err != nil {
		return err
	}
	n := len(x)
	if len(packed) != (n+1)/2 {
		return lengthError("packed", len(packed), (n+1)/2)
	}
	if len(absmax) != numBlocks(n, blocksize) {
		return lengthError("absmax", len(absmax), numBlocks(n, blocksize))
	}
	lut := nf4LUT()
	if kind == FP4 {
		lut = fp4LUT()
	}
	var bad int
	if opt.Workers <= 1 {
		bad = quantize4Range(kind, lut, packed, absmax, x, blocksize, 0, len(absmax), opt.ExactZeroBlocks)
	} else {
		bad = parallelBlocks(len(absmax), opt.Workers, func(b0, b1 int) int {
			return quantize4Range(kind, lut, packed, absmax, x, blocksize, b0, b1, opt.ExactZeroBlocks)
		})
	}
	if bad >= 0 {
		return nonFiniteError(bad, x[bad])
	}
	return nil
}

func nonFiniteError(i int, v float32) error {
	return fmt.Errorf("quantize: element %d is %v: %w", i, v, ErrNonFinite)
}

// parallelBlocks runs fn over [0, nblocks) split into at most workers
// contiguous ranges and returns the smallest non-negative value any range
// returned (the first bad element index), or -1.
func parallelBlocks(nblocks, workers int, fn func(b0, b1 int) int) int {
	if workers > nblocks {
		workers = nblocks
	}
	if workers <= 1 {
		return fn(0, nblocks)
	}
	bad := make([]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			bad[w] = fn(nblocks*w/workers, nblocks*(w+1)/workers)
		})
	}
	wg.Wait()
	for _, b := range bad {
		if b >= 0 {
			return b
		}
	}
	return -1
}

// quantize4Range quantizes blocks [b0, b1) and returns the index of the
// first non-finite element met, or -1 (the blocks from there on are left
// unwritten).
func quantize4Range(kind FourBit, lut *codeLUT, packed []byte, absmax, x []float32, bs, b0, b1 int, exactZero bool) int {
	n := len(x)
	for b := b0; b < b1; b++ {
		lo := b * bs
		xs := x[lo:min(lo+bs, n)]
		m := absMaxBits(xs)
		if m >= 0x7f800000 {
			return lo + firstNonFinite(xs)
		}
		amax := math.Float32frombits(m)
		absmax[b] = amax
		ps := packed[lo/2 : (lo+len(xs)+1)/2]
		inv := 1 / amax
		even := xs[:len(xs)&^1]
		switch {
		case amax == 0:
			// 0 * (1/0) is NaN on the GPU: code 0 everywhere.
			fill := byte(0)
			if exactZero && kind == NF4 {
				fill = 0x77
			}
			for i := range ps {
				ps[i] = fill
			}
			continue
		case inv > math.MaxFloat32:
			// A subnormal absmax: 1/absmax overflows; take the slow,
			// literal path (s is ±Inf or NaN).
			for j := range len(even) / 2 {
				ps[j] = code4Ref(kind, xs[2*j]*inv)<<4 | code4Ref(kind, xs[2*j+1]*inv)
			}
		case kind == NF4:
			quantizeNF4Pairs(ps[:len(even)/2], even, inv, lut)
		default:
			quantizeFP4Pairs(ps[:len(even)/2], even, inv, lut)
		}
		if len(xs)&1 == 1 {
			// The missing partner is a 0.0 input.
			var zero float32
			ps[len(ps)-1] = code4Ref(kind, xs[len(xs)-1]*inv)<<4 | code4Ref(kind, zero*inv)
		}
	}
	return -1
}

// absMaxBits returns the largest float32 bit pattern of |v| over x: the
// bits of max|x| when every value is finite, and >= 0x7f800000 when some
// value is NaN or ±Inf (non-negative floats order like their bits).
//
// Reference: for _, v := range x { m = max(m, bits(v) &^ 1<<31) }.
func absMaxBits(x []float32) uint32 {
	var m0, m1, m2, m3 uint32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a0 := math.Float32bits(x[i]) &^ (1 << 31)
		a1 := math.Float32bits(x[i+1]) &^ (1 << 31)
		a2 := math.Float32bits(x[i+2]) &^ (1 << 31)
		a3 := math.Float32bits(x[i+3]) &^ (1 << 31)
		m0 = max(m0, a0)
		m1 = max(m1, a1)
		m2 = max(m2, a2)
		m3 = max(m3, a3)
	}
	for ; i < len(x); i++ {
		m0 = max(m0, math.Float32bits(x[i])&^(1<<31))
	}
	return max(m0, m1, m2, m3)
}

// firstNonFinite returns the index of the first NaN or ±Inf in x, or -1.
func firstNonFinite(x []float32) int {
	for i, v := range x {
		if math.Float32bits(v)&^(1<<31) >= 0x7f800000 {
			return i
		}
	}
	return -1
}

// codeLUT finds the number of sorted thresholds strictly below a float32 s
// with one table load and no branch. The table is indexed by the top bits
// of s (sign, exponent, 4 mantissa bits: 1/16-octave buckets); each entry
// holds the code of the bucket's smallest value (low 8 bits) and, above,
// the low bits of the one threshold inside the bucket in bucketLocal form,
// or all ones when the bucket holds none:
//
//	e := lut[bits(s)>>19]; code = e&0xff + (bucketLocal(s) > e>>8)
//
// No bucket holds two thresholds (newCodeLUT panics otherwise, and the
// tests check the premise). NaN, ±Inf and s from a zero absmax never reach
// it.
type codeLUT [1 << 13]uint32

// lutShift drops all but sign, exponent and 4 mantissa bits.
const lutShift = 19

func newCodeLUT(thr []float32, abs bool) *codeLUT {
	l := &codeLUT{}
	e := l[:]
	if abs {
		e = e[:len(e)/2] // FP4 indexes by |s|
	}
	fillLUT(e, thr, lutShift)
	return l
}

// bucketLocal is the low shift bits of a float's bits, flipped for
// negatives so that within one bucket a larger value has a larger local.
func bucketLocal(bits uint32, mask uint32) uint32 {
	return (bits ^ uint32(int32(bits)>>31)) & mask
}

// fillLUT builds the entries of a codeLUT-style table over buckets of
// 2^shift float32 bit patterns.
func fillLUT(e []uint32, thr []float32, shift uint) {
	mask := uint32(1)<<shift - 1
	for i := range e {
		lo := uint32(i) << shift
		smallest := math.Float32frombits(lo)
		if lo>>31 == 1 {
			smallest = math.Float32frombits(lo | mask)
		}
		e[i] = uint32(countBelow(thr, smallest)) | mask<<8
	}
	for _, t := range thr {
		tb := math.Float32bits(t)
		i := tb >> shift
		if int(i) >= len(e) {
			continue
		}
		if e[i]>>8 != mask {
			panic("quantize: two thresholds in one table bucket")
		}
		e[i] = e[i]&0xff | bucketLocal(tb, mask)<<8
	}
}

// lutCode4 looks up the code of s (as bits) in a codeLUT.
func lutCode4(l *codeLUT, bits uint32) uint32 {
	e := l[bits>>lutShift]
	return e&0xff + (e>>8-bucketLocal(bits, 1<<lutShift-1))>>31
}

// countBelow is the number of entries of the ascending thr strictly less
// than s (0 for NaN): the reference rule for NF4 and the 8-bit code.
func countBelow(thr []float32, s float32) int {
	return sort.Search(len(thr), func(i int) bool { return !(thr[i] < s) })
}

var (
	nf4Thresholds = func() (t [15]float32) {
		for i, b := range nf4ThresholdBits {
			t[i] = math.Float32frombits(b)
		}
		return t
	}()
	nf4LUT = sync.OnceValue(func() *codeLUT { return newCodeLUT(nf4Thresholds[:], false) })
	// fp4LUT is indexed by |s| and holds, instead of the rank r, the
	// magnitude patterns of ranks r (bits 0..3) and r+1 (bits 4..7).
	fp4LUT = sync.OnceValue(func() *codeLUT {
		l := newCodeLUT(fp4Thresholds[:], true)
		for i, e := range l[:len(l)/2] {
			r := e & 0xff
			l[i] = e&^0xff | uint32(fp4RankCode[r]) | uint32(fp4RankCode[min(r+1, 7)])<<4
		}
		return l
	})
)

// nf4CodeRef is dQuantizeNF4: the number of thresholds below s.
func nf4CodeRef(s float32) uint8 { return uint8(countBelow(nf4Thresholds[:], s)) }

// fp4CodeRef is dQuantizeFP4 written as its tree: sign = s < 0, then
// strictly-greater comparisons on |s|.
func fp4CodeRef(s float32) uint8 {
	var sign uint8
	if s < 0 {
		sign = 8
	}
	a := float32(math.Abs(float64(s)))
	t := &fp4Thresholds
	if a > t[3] {
		if a > t[5] {
			if a > t[6] {
				return 0b011 | sign
			}
			return 0b010 | sign
		}
		if a > t[4] {
			return 0b101 | sign
		}
		return 0b100 | sign
	}
	if a > t[1] {
		if a > t[2] {
			return 0b111 | sign
		}
		return 0b110 | sign
	}
	if a > t[0] {
		return 0b001 | sign
	}
	return sign
}

func code4Ref(kind FourBit, s float32) uint8 {
	if kind == NF4 {
		return nf4CodeRef(s)
	}
	return fp4CodeRef(s)
}

// quantizeNF4Pairs writes the NF4 codes of x*inv, two per byte, high nibble
// first; len(x) == 2*len(dst).
//
// Reference: dst[j] = nf4CodeRef(x[2j]*inv)<<4 | nf4CodeRef(x[2j+1]*inv).
func quantizeNF4Pairs(dst []byte, x []float32, inv float32, l *codeLUT) {
	x = x[:2*len(dst)]
	for j := range dst {
		c0 := lutCode4(l, math.Float32bits(x[2*j]*inv))
		c1 := lutCode4(l, math.Float32bits(x[2*j+1]*inv))
		dst[j] = byte(c0<<4 | c1)
	}
}

// quantizeFP4Pairs is quantizeNF4Pairs for FP4.
//
// Reference: dst[j] = fp4CodeRef(x[2j]*inv)<<4 | fp4CodeRef(x[2j+1]*inv).
func quantizeFP4Pairs(dst []byte, x []float32, inv float32, l *codeLUT) {
	x = x[:2*len(dst)]
	for j := range dst {
		dst[j] = fp4Code(x[2*j]*inv, l)<<4 | fp4Code(x[2*j+1]*inv, l)
	}
}

// fp4Code is dQuantizeFP4 through fp4LUT: the pattern of the rank of |s|
// among the tree constants, with the sign bit set for s < 0 (not for
// -0.0).
func fp4Code(s float32, l *codeLUT) uint8 {
	bits := math.Float32bits(s)
	a := bits &^ (1 << 31)
	e := l[a>>lutShift]
	above := (e>>8 - bucketLocal(a, 1<<lutShift-1)) >> 31
	neg := bits >> 31 & ((a + 0x7fffffff) >> 31) // s < 0
	return uint8(e>>(above<<2)&7 | neg<<3)
}

// Dequantize4Bit writes len(dst) values decoded from packed codes and the
// per-block absmax (stored, or reconstructed by DoubleQuant.Absmax), as the
// CUDA kernel does: dst[i] = float32(table[code] * absmax[i/blocksize]),
// with -0.0 for FP4 code 8. Round to fp16/bf16 with F32ToF16/F32ToBF16.
// packed must hold (len(dst)+1)/2 bytes and absmax ceil(len(dst)/blocksize)
// values.
func Dequantize4Bit(kind FourBit, dst []float32, packed []byte, absmax []float32, blocksize int) error {
	if blocksize == 0 {
		blocksize = DefaultBlocksize4Bit
	}
	return Dequantize4BitTo(kind, dst, packed, absmax, blocksize, Options4Bit{})
}

// Dequantize4BitTo is Dequantize4Bit with options (only Workers applies).
func Dequantize4BitTo(kind FourBit, dst []float32, packed []byte, absmax []float32, blocksize int, opt Options4Bit) error {
	if kind != NF4 && kind != FP4 {
		return fmt.Errorf("quantize: unknown 4-bit type %v: %w", kind, formats.ErrUnsupported)
	}
	if err := checkBlocksize(blocksize, 32); err != nil {
		return err
	}
	n := len(dst)
	if len(packed) != (n+1)/2 {
		return lengthError("packed", len(packed), (n+1)/2)
	}
	if len(absmax) != numBlocks(n, blocksize) {
		return lengthError("absmax", len(absmax), numBlocks(n, blocksize))
	}
	table := kind.dequantTable()
	if opt.Workers <= 1 {
		dequantize4Range(table, dst, packed, absmax, blocksize, 0, len(absmax))
		return nil
	}
	parallelBlocks(len(absmax), opt.Workers, func(b0, b1 int) int {
		dequantize4Range(table, dst, packed, absmax, blocksize, b0, b1)
		return -1
	})
	return nil
}

// dequantize4Range dequantizes blocks [b0, b1).
func dequantize4Range(table *[16]float32, dst []float32, packed []byte, absmax []float32, bs, b0, b1 int) {
	n := len(dst)
	var lut [16]float32
	for b := b0; b < b1; b++ {
		lo := b * bs
		ds := dst[lo:min(lo+bs, n)]
		for c, v := range table {
			lut[c] = v * absmax[b]
		}
		ps := packed[lo/2 : (lo+len(ds)+1)/2]
		dequantize4Pairs(ds[:len(ds)&^1], ps[:len(ds)/2], &lut)
		if len(ds)&1 == 1 {
			ds[len(ds)-1] = lut[ps[len(ps)-1]>>4]
		}
	}
}

// dequantize4Pairs expands bytes to two values each through lut (the
// per-block products table[c]*absmax); len(dst) == 2*len(src).
//
// Reference: dst[2j], dst[2j+1] = lut[src[j]>>4], lut[src[j]&15].
func dequantize4Pairs(dst []float32, src []byte, lut *[16]float32) {
	dst = dst[:2*len(src)]
	for j, b := range src {
		dst[2*j] = lut[b>>4]
		dst[2*j+1] = lut[b&15]
	}
}
