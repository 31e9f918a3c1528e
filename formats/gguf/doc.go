// Package gguf reads and writes GGUF files, the container of ggml and
// llama.cpp, versions 2 and 3 (the two share one layout; version 1 and
// big-endian files are refused).
//
// # Layout (GGUF-LLAMACPP.md §1)
//
// All values are little-endian:
//
//	magic          4 bytes "GGUF"
//	version        u32 (2 or 3)
//	tensor_count   u64
//	kv_count       u64
//	kv pairs       kv_count × (key string, value type u32, value)
//	tensor infos   tensor_count × (name string, n_dims u32, n_dims × ne u64,
//	               ggml type u32, offset u64)
//	padding        zeros up to the next multiple of the alignment
//	data           tensor blobs, each at data_start + offset, each followed
//	               by zeros up to the alignment
//
// A string is a u64 byte length and that many bytes. An array value is an
// element type (u32), an element count (u64) and the elements back to back.
// The alignment is general.alignment (a UINT32 power of two) or 32.
//
// # Reading
//
// Open maps a file read-only and validates all of it before returning: every
// rule of PARSER-SAFETY.md §2 and §3 is checked, each failure is a
// *formats.FormatError that names the file, the byte offset of the offending
// field, the key or tensor, and wraps one of this package's rule sentinels
// (ErrBadMagic, ErrTruncated, …), which in turn wraps formats.ErrFormat,
// formats.ErrUnsupported or formats.ErrLimit. No input makes the reader
// panic or allocate more than a small multiple of the input's size.
//
// A *Reader implements formats.Source and formats.ByteSource. Tensor shapes
// are in numpy order (GGUF's ne reversed) with the stored rank; offsets are
// absolute file offsets.
//
// Arrays of arrays are legal in the GGUF description but ggml rejects them;
// so does this reader unless Options.AllowNestedArrays is set, in which case
// they are read as []formats.Value (what an inspector needs).
//
// # Writing
//
// Write plans the whole file first (header bytes, offsets, padding) and then
// streams the tensors one at a time through their io.WriterTo, so memory is
// bounded by the header plus one tensor's producer. It writes version 3 in
// the same byte layout as gguf-py and ggml, so a file read and written again
// is byte-identical to the original.
package gguf
