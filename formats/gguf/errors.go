package gguf

import (
	"errors"

	"github.com/qtool-dev/qtool/formats"
)

// Rule sentinels. Each is one check of PARSER-SAFETY.md (section number in
// brackets) and wraps its class, so errors.Is(err, ErrTruncated) and
// errors.Is(err, formats.ErrFormat) both hold for a truncated file. The
// reader returns them inside a *formats.FormatError giving the file, the
// byte offset of the field, and the key or tensor; the writer returns them
// inside a *formats.FormatError with Offset -1.
var (
	// ErrBadMagic: the file does not start with the bytes "GGUF" [§2.1].
	ErrBadMagic = formats.NewRule("gguf: bad magic", formats.ErrFormat)
	// ErrBigEndian: the version's low 16 bits are zero, which is what a
	// big-endian (byte-swapped) file looks like; qtool reads little-endian
	// files only [§2.2].
	ErrBigEndian = formats.NewRule("gguf: big-endian file (byte-order mismatch)", formats.ErrUnsupported)
	// ErrBadVersion: the version is 0, 1 (GGUF v1, no longer supported) or
	// above 3 [§2.2].
	ErrBadVersion = formats.NewRule("gguf: unsupported version", formats.ErrUnsupported)
	// ErrCountTooLarge: a tensor or KV count is negative as an int64, or
	// more entries than the remaining bytes could hold at their minimum
	// encoded size [§2.3].
	ErrCountTooLarge = formats.NewRule("gguf: count larger than the file can hold", formats.ErrFormat)
	// ErrTooManyTensors: the tensor count exceeds Limits.MaxTensors.
	ErrTooManyTensors = formats.NewRule("gguf: too many tensors", formats.ErrLimit)
	// ErrTooManyKVs: the KV count exceeds Limits.MaxKVs.
	ErrTooManyKVs = formats.NewRule("gguf: too many metadata pairs", formats.ErrLimit)
	// ErrTruncated: a field, string or array extends past the end of the
	// input [§2.4].
	ErrTruncated = formats.NewRule("gguf: truncated", formats.ErrFormat)
	// ErrStringTooLong: a string length exceeds Limits.MaxStringLen [§2.5].
	ErrStringTooLong = formats.NewRule("gguf: string too long", formats.ErrLimit)
	// ErrArrayTooLong: an array count exceeds Limits.MaxArrayLen [§2.6].
	ErrArrayTooLong = formats.NewRule("gguf: array too long", formats.ErrLimit)
	// ErrNestedArray: an array of arrays, which ggml rejects; allowed only
	// with Options.AllowNestedArrays / WriteOptions.AllowNestedArrays [§2.6].
	ErrNestedArray = formats.NewRule("gguf: array of arrays", formats.ErrUnsupported)
	// ErrNestingTooDeep: arrays of arrays nested deeper than
	// Limits.MaxNesting.
	ErrNestingTooDeep = formats.NewRule("gguf: arrays nested too deep", formats.ErrLimit)
	// ErrBadValueType: a value or element type outside 0–12 [§2.8].
	ErrBadValueType = formats.NewRule("gguf: invalid value type", formats.ErrFormat)
	// ErrBadBool: under Options.Strict, a bool byte other than 0 or 1
	// (ggml reads any non-zero byte as true) [§2.8].
	ErrBadBool = formats.NewRule("gguf: bool is neither 0 nor 1", formats.ErrFormat)
	// ErrEmptyKey: a metadata key of length zero [§2.7].
	ErrEmptyKey = formats.NewRule("gguf: empty key", formats.ErrFormat)
	// ErrDuplicateKey: a metadata key that occurs twice [§2.7].
	ErrDuplicateKey = formats.NewRule("gguf: duplicate key", formats.ErrFormat)
	// ErrBadKey: under Options.Strict, a key not in the spec's form (ASCII
	// lower_snake_case segments joined by dots, at most 65,535 bytes) [§2.7].
	ErrBadKey = formats.NewRule("gguf: key not in lower_snake_case dotted form", formats.ErrFormat)
	// ErrBadAlignment: general.alignment is not a UINT32, is zero, or is not
	// a power of two [§2.9].
	ErrBadAlignment = formats.NewRule("gguf: bad general.alignment", formats.ErrFormat)
	// ErrDuplicateTensor: two tensors with the same name [§2.10].
	ErrDuplicateTensor = formats.NewRule("gguf: duplicate tensor name", formats.ErrFormat)
	// ErrNameTooLong: a tensor name of 64 bytes or more (GGML_MAX_NAME)
	// [§2.10].
	ErrNameTooLong = formats.NewRule("gguf: tensor name too long", formats.ErrFormat)
	// ErrTooManyDims: n_dims above 4 (GGML_MAX_DIMS) [§2.11].
	ErrTooManyDims = formats.NewRule("gguf: too many dimensions", formats.ErrFormat)
	// ErrDimsLimit: n_dims above Limits.MaxDims when that is below 4.
	ErrDimsLimit = formats.NewRule("gguf: rank exceeds the dims limit", formats.ErrLimit)
	// ErrBadDim: a dimension that is negative as an int64 [§2.11].
	ErrBadDim = formats.NewRule("gguf: negative dimension", formats.ErrFormat)
	// ErrOverflow: an element count, byte size, offset or end position
	// that does not fit an int64 [§2.11, §2.12, §2.14, §3.1].
	ErrOverflow = formats.NewRule("gguf: size overflows int64", formats.ErrFormat)
	// ErrUnknownType: a ggml type id that is unknown or retired (4, 5,
	// 31–33, 36–38, ≥ 43) [§2.12].
	ErrUnknownType = formats.NewRule("gguf: unknown ggml type", formats.ErrUnsupported)
	// ErrBlockMisaligned: ne[0] is not a multiple of the type's block size
	// [§2.12].
	ErrBlockMisaligned = formats.NewRule("gguf: first dimension not a multiple of the block size", formats.ErrFormat)
	// ErrDataStartPastEnd: the data section would start past the end of
	// the file (checked when there are tensors) [§2.13].
	ErrDataStartPastEnd = formats.NewRule("gguf: data section starts past end of file", formats.ErrFormat)
	// ErrBadOffset: a tensor offset differs from the running sum of the
	// previous tensors' sizes, each padded to the alignment: out of order,
	// unaligned, overlapping or with a gap [§2.14].
	ErrBadOffset = formats.NewRule("gguf: tensor offset out of sequence", formats.ErrFormat)
	// ErrDataPastEnd: a tensor's data ends past the end of the file
	// [§2.15].
	ErrDataPastEnd = formats.NewRule("gguf: tensor data past end of file", formats.ErrFormat)
)

// Writer-only rules.
var (
	// ErrNotStorable: the writer was given a dtype GGUF has no ggml type
	// for (U8, U16, U32, U64, BOOL, F8_*).
	ErrNotStorable = formats.NewRule("gguf: dtype cannot be stored in GGUF", formats.ErrUnsupported)
	// ErrBadValue: the writer was given a formats.Value whose Go value does
	// not match its Type or Elem.
	ErrBadValue = formats.NewRule("gguf: value does not match its type", formats.ErrFormat)
	// ErrSizeMismatch: the writer was given a tensor whose Size differs from
	// what its dtype and shape imply.
	ErrSizeMismatch = formats.NewRule("gguf: tensor size does not match dtype and shape", formats.ErrFormat)
)

// ErrDataSize is returned by Write when a tensor's Data produced more or
// fewer bytes than the tensor's Size. It is a producer bug, not bad input.
var ErrDataSize = errors.New("gguf: tensor data length differs from its size")

// errAt builds the located error every check returns.
func errAt(file string, off int64, rule error, detail string) *formats.FormatError {
	return &formats.FormatError{File: file, Offset: off, Detail: detail, Err: rule}
}
