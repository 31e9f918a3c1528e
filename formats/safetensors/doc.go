// Package safetensors reads and writes the safetensors format of Hugging
// Face (https://github.com/huggingface/safetensors, README "Format") and
// Hugging Face model folders sharded over several such files.
//
// # Format
//
// A file is three parts, all little-endian:
//
//	[8 bytes]  N, the header length, an unsigned 64-bit integer
//	[N bytes]  the header: a UTF-8 JSON object, possibly padded with spaces
//	[rest]     the data section: the tensors' bytes, back to back
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets"}.
// dtype is one of F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 I16 I8 U64 U32
// U16 U8 BOOL (formats.DTypeFromSafetensors); shape is the row-major list of
// dimensions, empty for a scalar; data_offsets is [begin, end) relative to
// the start of the data section (8+N). The optional key "__metadata__" maps
// strings to strings; the reader exposes it as formats.ValString entries in
// header order.
//
// # Reading
//
// Open memory-maps a file (formats/mmap) and NewReader reads any
// io.ReaderAt of known size; both validate the whole file before returning,
// following PARSER-SAFETY.md §1 and §3: header length against the limit and
// the file size before any read, UTF-8, JSON syntax, the schema of every
// entry (numbers parsed exactly, never through float64), duplicate keys
// (which encoding/json would silently merge), contiguous non-overlapping
// data starting at 0, checked size arithmetic, and a data section that ends
// exactly at the end of the file. A *Reader that exists is valid. Each rule
// has its own sentinel (ErrHeaderTooSmall … ErrTruncated), wrapped in a
// *formats.FormatError that names the file, the byte offset, the tensor or
// key, and the offending value; every sentinel also matches its class,
// formats.ErrFormat, formats.ErrLimit or formats.ErrUnsupported.
//
// Legal but unusual files are accepted: whitespace around the JSON object,
// headers not padded to 8, entries listed in any order, data not aligned to
// the element size, zero-size tensors and rank-0 scalars. Tensor values are
// never inspected (NaN and Inf are data, not errors).
//
// # Writing
//
// Write plans the file (order, offsets, header) and then streams each
// tensor through its Data io.WriterTo, so memory holds one tensor at a
// time and the output needs no seeking. The layout is deterministic and
// is HF's: data sorted by element size descending then by name, so that
// with the header padded to a multiple of 8 every tensor is aligned to its
// element size; a compact header with __metadata__ first. WriteMeta keeps
// the metadata order of a formats.Meta, so a file read and written back is
// byte-identical when it followed this convention.
//
// # Folders
//
// OpenFolder reads a Hugging Face model folder: the shards listed by
// model.safetensors.index.json, or a lone model.safetensors. Every shard
// is validated on its own, and the index must match the shards exactly
// (ErrIndexMismatch and its rules). Config, tokenizer and other companion
// files are listed, never parsed. WriteFolder writes such a folder,
// splitting tensors into shards of at most FolderOptions.MaxShardSize data
// bytes (ParseSize reads "5GB"-style values) and writing the index as
// transformers does.
package safetensors
