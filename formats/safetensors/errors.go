package safetensors

import (
	"errors"

	"github.com/qtool-dev/qtool/formats"
)

// The rules below are the checks of PARSER-SAFETY.md §1 (safetensors) and
// §3 (common), one sentinel each. A reader or writer error is a
// *formats.FormatError whose Err is one of them, so that
//
//	errors.Is(err, ErrOffsetGap)      // the precise rule
//	errors.Is(err, ErrInvalidOffset)  // its family, where it has one
//	errors.Is(err, formats.ErrFormat) // its class
//
// all hold. Family sentinels (ErrInvalidOffset, ErrIncompleteBuffer,
// ErrIndexMismatch) are never returned on their own; they exist so callers
// can match a group of related rules.

// Header framing (§1.1–§1.3).
var (
	// ErrHeaderTooSmall: the file is shorter than the 8-byte header length
	// prefix (§1.1; reference HeaderTooSmall).
	ErrHeaderTooSmall = formats.NewRule("file shorter than the 8-byte header length", formats.ErrFormat)
	// ErrHeaderTooLarge: the header length N exceeds Limits.MaxHeaderBytes
	// or cannot be represented as an int64 (§1.2, §3.1). It is checked
	// before anything is read. The writer reports it for a header it would
	// produce above the default limit (§1.13).
	ErrHeaderTooLarge = formats.NewRule("header length above the limit", formats.ErrLimit)
	// ErrInvalidHeaderLength: 8+N overflows or passes the end of the file
	// (§1.3; reference InvalidHeaderLength).
	ErrInvalidHeaderLength = formats.NewRule("header length passes the end of the file", formats.ErrFormat)
)

// Header text (§1.4–§1.7).
var (
	// ErrInvalidUTF8: the header bytes are not valid UTF-8 (§1.4; reference
	// InvalidHeader). The writer also refuses names and metadata that are
	// not valid UTF-8 with this rule.
	ErrInvalidUTF8 = formats.NewRule("header is not valid UTF-8", formats.ErrFormat)
	// ErrInvalidJSON: the header is not one JSON value, or a string holds a
	// lone UTF-16 surrogate escape (§1.4; reference
	// InvalidHeaderDeserialization).
	ErrInvalidJSON = formats.NewRule("header is not valid JSON", formats.ErrFormat)
	// ErrNotObject: the header is valid JSON but not an object (§1.5).
	ErrNotObject = formats.NewRule("header is not a JSON object", formats.ErrFormat)
	// ErrBadMetadata: __metadata__ is not an object of string values, or
	// repeats a key (§1.5).
	ErrBadMetadata = formats.NewRule("__metadata__ is not an object of strings", formats.ErrFormat)
	// ErrBadEntry: a tensor entry is not an object holding exactly dtype,
	// shape and data_offsets once each, or its dtype is not a string (§1.6).
	ErrBadEntry = formats.NewRule("tensor entry is not {dtype, shape, data_offsets}", formats.ErrFormat)
	// ErrUnknownDType: the dtype string is not one qtool knows (§1.6). The
	// entry is well formed, so the class is ErrUnsupported.
	ErrUnknownDType = formats.NewRule("unknown dtype", formats.ErrUnsupported)
	// ErrBadShape: shape is not an array of integers in [0, MaxInt64]
	// (§1.6, §3.1).
	ErrBadShape = formats.NewRule("shape is not an array of non-negative integers", formats.ErrFormat)
	// ErrBadOffsets: data_offsets is not exactly two integers in
	// [0, MaxInt64] with begin ≤ end (§1.6, §3.1).
	ErrBadOffsets = formats.NewRule("data_offsets is not [begin, end] with begin <= end", formats.ErrFormat)
	// ErrDuplicateName: a top-level key (a tensor name or __metadata__)
	// appears twice (§1.7). The writer refuses repeated names with it too.
	ErrDuplicateName = formats.NewRule("duplicate name", formats.ErrFormat)
	// ErrTooManyTensors: the header lists more than Limits.MaxTensors
	// tensors (§3.2).
	ErrTooManyTensors = formats.NewRule("more tensors than the limit", formats.ErrLimit)
	// ErrTooManyDims: a shape has more than Limits.MaxDims dimensions
	// (§3.2).
	ErrTooManyDims = formats.NewRule("more dimensions than the limit", formats.ErrLimit)
)

// Data layout (§1.8–§1.10).
var (
	// ErrInvalidOffset is the family of ErrOffsetGap and ErrOffsetOverlap
	// (§1.8; reference InvalidOffset).
	ErrInvalidOffset = formats.NewRule("tensor data not contiguous", formats.ErrFormat)
	// ErrOffsetGap: sorted by offset, a tensor starts after the previous
	// one ended (or the first one does not start at 0).
	ErrOffsetGap = formats.NewRule("gap before tensor data", ErrInvalidOffset)
	// ErrOffsetOverlap: sorted by offset, a tensor starts before the
	// previous one ended (the overlap DoS of attacks/README.md).
	ErrOffsetOverlap = formats.NewRule("tensor data overlaps the previous tensor", ErrInvalidOffset)
	// ErrOverflow: the element count or byte size of a tensor, or an
	// absolute offset, overflows int64 (§1.9; reference
	// ValidationOverflow).
	ErrOverflow = formats.NewRule("tensor size overflows", formats.ErrFormat)
	// ErrSizeMismatch: end−begin differs from elements × dtype size (§1.9;
	// reference TensorInvalidInfo). The writer uses it for a Tensor whose
	// Size disagrees with its dtype and shape.
	ErrSizeMismatch = formats.NewRule("byte range does not match dtype and shape", formats.ErrFormat)
	// ErrIncompleteBuffer is the family of ErrTrailingBytes and
	// ErrTruncated: 8+N+last_end must equal the file size (§1.10; reference
	// MetadataIncompleteBuffer).
	ErrIncompleteBuffer = formats.NewRule("data section does not match the file size", formats.ErrFormat)
	// ErrTrailingBytes: bytes follow the last tensor (no polyglot files).
	ErrTrailingBytes = formats.NewRule("trailing bytes after the last tensor", ErrIncompleteBuffer)
	// ErrTruncated: the file ends before the last tensor does.
	ErrTruncated = formats.NewRule("file ends before the tensor data", ErrIncompleteBuffer)
)

// Sharded folders (§1.12).
var (
	// ErrIndexMismatch is the family of the rules comparing
	// model.safetensors.index.json with the shard files.
	ErrIndexMismatch = formats.NewRule("index does not match the shards", formats.ErrFormat)
	// ErrIndexMissingTensor: the index names a tensor no shard holds.
	ErrIndexMissingTensor = formats.NewRule("indexed tensor missing from its shard", ErrIndexMismatch)
	// ErrIndexExtraTensor: a shard holds a tensor the index does not name.
	ErrIndexExtraTensor = formats.NewRule("shard holds a tensor absent from the index", ErrIndexMismatch)
	// ErrIndexWrongShard: a tensor is in another shard than the index says.
	ErrIndexWrongShard = formats.NewRule("tensor is in another shard than indexed", ErrIndexMismatch)
	// ErrTensorInTwoShards: two shards hold a tensor of the same name.
	ErrTensorInTwoShards = formats.NewRule("tensor present in two shards", ErrIndexMismatch)
	// ErrMissingShard: the index names a shard file that does not exist.
	ErrMissingShard = formats.NewRule("indexed shard file missing", ErrIndexMismatch)
	// ErrTotalSize: metadata.total_size differs from the sum of the tensor
	// sizes of the shards.
	ErrTotalSize = formats.NewRule("index total_size differs from the shards", ErrIndexMismatch)
	// ErrBadIndex: the index is not valid UTF-8 JSON of the form
	// {"metadata": {"total_size": N}, "weight_map": {name: shard}}, repeats
	// a key, or names a shard that is not a plain file name in the folder.
	ErrBadIndex = formats.NewRule("malformed model.safetensors.index.json", formats.ErrFormat)
	// ErrFileTooLarge: the index, config.json or generation_config.json is
	// larger than Limits.MaxHeaderBytes.
	ErrFileTooLarge = formats.NewRule("folder JSON file above the header size limit", formats.ErrLimit)
	// ErrNoWeights: the folder holds neither an index nor a .safetensors
	// file.
	ErrNoWeights = formats.NewRule("no safetensors weights in folder", formats.ErrFormat)
	// ErrNoIndex: the folder holds several .safetensors files, no
	// model.safetensors and no index, so which ones form the model is
	// unknown.
	ErrNoIndex = formats.NewRule("several safetensors files and no index", formats.ErrFormat)
)

// Writer (§1.13).
var (
	// ErrDTypeNotStorable: a tensor's dtype has no safetensors name (the
	// ggml block types such as Q4_0).
	ErrDTypeNotStorable = formats.NewRule("dtype cannot be stored in safetensors", formats.ErrUnsupported)
	// ErrMetaNotString: a metadata value given to WriteMeta is not a
	// string; safetensors __metadata__ holds strings only.
	ErrMetaNotString = formats.NewRule("safetensors metadata values must be strings", formats.ErrUnsupported)
	// ErrReservedName: a tensor is named __metadata__.
	ErrReservedName = formats.NewRule(`tensor name "__metadata__" is reserved`, formats.ErrFormat)
	// ErrNoData: a tensor to be written has a nil Data.
	ErrNoData = formats.NewRule("tensor has no data producer", formats.ErrFormat)
)

// ErrDataLength is returned (inside a *formats.FormatError naming the
// tensor) when a Tensor's Data.WriteTo produced more or fewer bytes than its
// Size. It is a fault of the producer, not of any input file, so it wraps
// none of the input classes.
var ErrDataLength = errors.New("tensor data length differs from its size")

// ErrClosed is returned by Bytes after Close.
var ErrClosed = errors.New("safetensors: reader closed")

// ErrNotFound is returned by Section and Bytes for a name the source does
// not hold.
var ErrNotFound = errors.New("safetensors: no such tensor")

// fail builds the located error of one rule.
func fail(file string, off int64, tensor, key string, rule error, detail string) error {
	return &formats.FormatError{File: file, Offset: off, Tensor: tensor, Key: key, Detail: detail, Err: rule}
}
