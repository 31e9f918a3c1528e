// Package formats is the shared vocabulary of qtool's file layer: element
// types (DType), tensor descriptions (TensorInfo), the Source interface that
// every reader implements, ordered typed metadata (Meta), the error classes
// every parser reports (ErrFormat, ErrUnsupported, ErrLimit, FormatError) and
// the parser limits (Limits).
//
// formats knows byte layouts, never numeric meaning: it says how many bytes a
// Q4_K block holds, not how to decode one. It imports only the standard
// library so that every other package can depend on it.
package formats
