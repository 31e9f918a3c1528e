package quantize

import (
	"math"
	"sync"
)

// This file holds bitsandbytes' signed dynamic 8-bit code and the blockwise
// 8-bit quantizer built on it (NF4-BITSANDBYTES.md sections 2 and 4): the
// nested quantizer of double quantization, and `quantize_blockwise`.

// DefaultBlocksize8 is quantize_blockwise's default blocksize.
const DefaultBlocksize8 = 4096

// dynamicBits is create_dynamic_map(signed=True, max_exponent_bits=7,
// total_bits=8) as float32 bit patterns, as recent PyTorch computes it and
// as bitsandbytes serializes it in `weight.nested_quant_map`: 127 negative
// values (code 0 = -0.99296874), 0 at code 127, 128 positive values up to
// 1.0 at code 255. It is hardcoded because its last bits depend on how
// torch.linspace rounds (section 2, "Bit-exactness trap"); sha256 of the
// little-endian bytes e732639a65f497b4ad684bb166a4467708255edd5207757de8b8f0c7e1fda89c.
var dynamicBits = [256]uint32{
	0xbf7e3333, 0xbf7a999a, 0xbf770000, 0xbf736666, 0xbf6fcccd, 0xbf6c3333, 0xbf68999a, 0xbf650000,
	0xbf616666, 0xbf5dcccd, 0xbf5a3333, 0xbf56999a, 0xbf530000, 0xbf4f6666, 0xbf4bcccd, 0xbf483333,
	0xbf44999a, 0xbf410000, 0xbf3d6666, 0xbf39cccd, 0xbf363334, 0xbf32999a, 0xbf2f0000, 0xbf2b6666,
	0xbf27cccd, 0xbf243334, 0xbf20999a, 0xbf1d0000, 0xbf196666, 0xbf15cccd, 0xbf123334, 0xbf0e999a,
	0xbf0b0000, 0xbf076666, 0xbf03cccc, 0xbf003333, 0xbef93332, 0xbef20000, 0xbeeacccc, 0xbee3999a,
	0xbedc6666, 0xbed53333, 0xbece0000, 0xbec6cccc, 0xbebf999a, 0xbeb86666, 0xbeb13333, 0xbeaa0000,
	0xbea2cccc, 0xbe9b999a, 0xbe946666, 0xbe8d3334, 0xbe860000, 0xbe7d9999, 0xbe6f3333, 0xbe60cccd,
	0xbe526666, 0xbe440000, 0xbe35999a, 0xbe273333, 0xbe18cccd, 0xbe0a6666, 0xbdf80000, 0xbddb3334,
	0xbdc9eb85, 0xbdc428f7, 0xbdbe6667, 0xbdb8a3d7, 0xbdb2e148, 0xbdad1eb8, 0xbda75c2a, 0xbda1999a,
	0xbd9bd70a, 0xbd96147b, 0xbd9051eb, 0xbd8a8f5d, 0xbd84cccd, 0xbd7e147b, 0xbd728f5d, 0xbd670a3d,
	0xbd5b851f, 0xbd500000, 0xbd447ae1, 0xbd38f5c3, 0xbd2d70a3, 0xbd21eb85, 0xbd166667, 0xbd0ae148,
	0xbcfeb852, 0xbce7ae15, 0xbcd0a3d7, 0xbcb9999a, 0xbca28f5d, 0xbc8b851f, 0xbc68f5c3, 0xbc3ae148,
	0xbc1f3b64, 0xbc160418, 0xbc0ccccd, 0xbc039581, 0xbbf4bc6a, 0xbbe24dd3, 0xbbcfdf3b, 0xbbbd70a4,
	0xbbab020d, 0xbb989374, 0xbb8624dd, 0xbb676c8a, 0xbb428f5c, 0xbb1db22d, 0xbaf1a9fc, 0xbaa7ef9d,
	0xba7765ff, 0xba59e83e, 0xba3c6a80, 0xba1eecc1, 0xba016f01, 0xb9c7e283, 0xb98ce705, 0xb923d70b,
	0xb8ba1f4b, 0xb88aefb3, 0xb8378034, 0xb7b24206, 0xb70205ff, 0xb65a1a94, 0xb513a3b7, 0x00000000,
	0x3513a3b7, 0x365a1a94, 0x370205ff, 0x37b24206, 0x38378034, 0x388aefb3, 0x38ba1f4b, 0x3923d70b,
	0x398ce705, 0x39c7e283, 0x3a016f01, 0x3a1eecc1, 0x3a3c6a80, 0x3a59e83e, 0x3a7765ff, 0x3aa7ef9d,
	0x3af1a9fc, 0x3b1db22d, 0x3b428f5c, 0x3b676c8a, 0x3b8624dd, 0x3b989374, 0x3bab020d, 0x3bbd70a4,
	0x3bcfdf3b, 0x3be24dd3, 0x3bf4bc6a, 0x3c039581, 0x3c0ccccd, 0x3c160418, 0x3c1f3b64, 0x3c3ae148,
	0x3c68f5c3, 0x3c8b851f, 0x3ca28f5d, 0x3cb9999a, 0x3cd0a3d7, 0x3ce7ae15, 0x3cfeb852, 0x3d0ae148,
	0x3d166667, 0x3d21eb85, 0x3d2d70a3, 0x3d38f5c3, 0x3d447ae1, 0x3d500000, 0x3d5b851f, 0x3d670a3d,
	0x3d728f5d, 0x3d7e147b, 0x3d84cccd, 0x3d8a8f5d, 0x3d9051eb, 0x3d96147b, 0x3d9bd70a, 0x3da1999a,
	0x3da75c2a, 0x3dad1eb8, 0x3db2e148, 0x3db8a3d7, 0x3dbe6667, 0x3dc428f7, 0x3dc9eb85, 0x3ddb3334,
	0x3df80000, 0x3e0a6666, 0x3e18cccd, 0x3e273333, 0x3e35999a, 0x3e440000, 0x3e526666, 0x3e60cccd,
	0x3e6f3333, 0x3e7d9999, 0x3e860000, 0x3e8d3334, 0x3e946666, 0x3e9b999a, 0x3ea2cccc, 0x3eaa0000,
	0x3eb13333, 0x3eb86666, 0x3ebf999a, 0x3ec6cccc, 0x3ece0000, 0x3ed53333, 0x3edc6666, 0x3ee3999a,
	0x3eeacccc, 0x3ef20000, 0x3ef93332, 0x3f003333, 0x3f03cccc, 0x3f076666, 0x3f0b0000, 0x3f0e999a,
	0x3f123334, 0x3f15cccd, 0x3f196666, 0x3f1d0000, 0x3f20999a, 0x3f243334, 0x3f27cccd, 0x3f2b6666,
	0x3f2f0000, 0x3f32999a, 0x3f363334, 0x3f39cccd, 0x3f3d6666, 0x3f410000, 0x3f44999a, 0x3f483333,
	0x3f4bcccd, 0x3f4f6666, 0x3f530000, 0x3f56999a, 0x3f5a3333, 0x3f5dcccd, 0x3f616666, 0x3f650000,
	0x3f68999a, 0x3f6c3333, 0x3f6fcccd, 0x3f736666, 0x3f770000, 0x3f7a999a, 0x3f7e3333, 0x3f800000,
}

var (
	dynamicTable = func() (t [256]float32) {
		for i, b := range dynamicBits {
			t[i] = math.Float32frombits(b)
		}
		return t
	}()
	// dynamicThresholds are the float32 midpoints of adjacent entries:
	// code = number of them strictly below s (the exact nearest entry, ties
	// to the lower one).
	dynamicThresholds = func() (t [255]float32) {
		for i := range t {
			t[i] = (dynamicTable[i] + dynamicTable[i+1]) / 2
		}
		return t
	}()
	dynLUT = sync.OnceValue(func() *dynamicLUT {
		l := &dynamicLUT{}
		fillLUT(l[:], dynamicThresholds[:], dynShift)
		return l
	})
)

// dynamicLUT is codeLUT with 7 mantissa bits of resolution: the dynamic
// code's entries near ±1 are 1/71 apart, so 1/128-octave buckets are needed
// for each to hold at most one threshold.
type dynamicLUT [1 << 16]uint32

const dynShift = 16

// DynamicMap returns the signed dynamic 8-bit code (`nested_quant_map`).
func DynamicMap() [256]float32 { return dynamicTable }

// QuantizeBlockwise8 is bitsandbytes' quantize_blockwise with the default
// (signed dynamic) code: per block of blocksize elements (0 means 4096;
// otherwise a power of two in 64..4096), absmax = max|x| and code = the
// entry of DynamicMap nearest to x * float32(1/absmax) (ties to the lower
// entry). An all-zero block gets code 0 everywhere, as on the GPU (0 * inf
// is NaN); it dequantizes to -0.0. NaN and ±Inf inputs are refused with
// ErrNonFinite.
func QuantizeBlockwise8(x []float32, blocksize int) (codes []uint8, absmax []float32, err error) {
	if blocksize == 0 {
		blocksize = DefaultBlocksize8
	}
	if err := checkBlocksize(blocksize, 64); err != nil {
		return nil, nil, err
	}
	codes = make([]uint8, len(x))
	absmax = make([]float32, numBlocks(len(x), blocksize))
	if bad := quantize8Range(codes, absmax, x, blocksize); bad >= 0 {
		return nil, nil, nonFiniteError(bad, x[bad])
	}
	return codes, absmax, nil
}

// quantize8Range quantizes every block of x and returns the index of the
// first non-finite element met, or -1.
func quantize8Range(codes []uint8, absmax, x []float32, bs int) int {
	n := len(x)
	l := dynLUT()
	for b := range absmax {
		lo := b * bs
		xs := x[lo:min(lo+bs, n)]
		cs := codes[lo : lo+len(xs)]
		m := absMaxBits(xs)
		if m >= 0x7f800000 {
			return lo + firstNonFinite(xs)
		}
		amax := math.Float32frombits(m)
		absmax[b] = amax
		inv := 1 / amax
		if inv > math.MaxFloat32 {
			// Zero or subnormal absmax: s is NaN or ±Inf, take the
			// literal rule.
			for i, v := range xs {
				cs[i] = uint8(countBelow(dynamicThresholds[:], v*inv))
			}
			continue
		}
		quantize8(cs, xs, inv, l)
	}
	return -1
}

// quantize8 writes the dynamic-code index of each x*inv.
//
// Reference: dst[i] = countBelow(dynamicThresholds, x[i]*inv).
func quantize8(dst []uint8, x []float32, inv float32, l *dynamicLUT) {
	x = x[:len(dst)]
	for i, v := range x {
		b := math.Float32bits(v * inv)
		e := l[b>>dynShift]
		dst[i] = uint8(e) + uint8((e>>8-bucketLocal(b, 1<<dynShift-1))>>31)
	}
}

// DequantizeBlockwise8 writes len(dst) values dst[i] =
// float32(DynamicMap()[codes[i]] * absmax[i/blocksize]); codes must hold
// len(dst) entries and absmax ceil(len(dst)/blocksize).
func DequantizeBlockwise8(dst []float32, codes []uint8, absmax []float32, blocksize int) error {
	if blocksize == 0 {
		blocksize = DefaultBlocksize8
	}
	if err := checkBlocksize(blocksize, 64); err != nil {
		return err
	}
	if len(codes) != len(dst) {
		return lengthError("codes", len(codes), len(dst))
	}
	if len(absmax) != numBlocks(len(dst), blocksize) {
		return lengthError("absmax", len(absmax), numBlocks(len(dst), blocksize))
	}
	dequantize8Blocks(dst, codes, absmax, blocksize, &dynamicTable)
	return nil
}

// dequantize8Blocks is the trusting kernel of DequantizeBlockwise8 over an
// arbitrary 256-entry code.
//
// Reference: dst[i] = code[codes[i]] * absmax[i/bs].
func dequantize8Blocks(dst []float32, codes []uint8, absmax []float32, bs int, code *[256]float32) {
	n := len(dst)
	for b, a := range absmax {
		lo := b * bs
		ds := dst[lo:min(lo+bs, n)]
		cs := codes[lo : lo+len(ds)]
		for i, c := range cs {
			ds[i] = code[c] * a
		}
	}
}
