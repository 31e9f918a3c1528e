package formats

import (
	"errors"
	"fmt"
	"strings"
)

// Error classes. Every error a parser returns for bad input wraps exactly
// one of them, so that callers (and the CLI's exit codes) can tell bad input
// from unsupported input from input that hit a configured limit.
var (
	// ErrFormat: the bytes violate the format (truncated, inconsistent,
	// overlapping, malformed JSON, …). Exit code 3 in the CLI.
	ErrFormat = errors.New("malformed input")
	// ErrUnsupported: the input is well formed but uses something qtool does
	// not handle (big-endian GGUF, GGUF v1, an unknown dtype). Exit code 4.
	ErrUnsupported = errors.New("unsupported input")
	// ErrLimit: a header value exceeds one of the Limits (header size,
	// string length, array length, tensor count). Exit code 3.
	ErrLimit = errors.New("input exceeds a parser limit")
)

// Rule is the sentinel for one named check of a parser (see
// PARSER-SAFETY.md). It wraps its class, so errors.Is matches both the rule
// and ErrFormat/ErrUnsupported/ErrLimit.
type Rule struct {
	name  string
	class error
}

// NewRule declares a rule sentinel of the given class.
func NewRule(name string, class error) *Rule { return &Rule{name: name, class: class} }

func (r *Rule) Error() string { return r.name }

// Unwrap returns the rule's class.
func (r *Rule) Unwrap() error { return r.class }

// FormatError locates a failure: the file, the byte offset, the tensor or
// key, and the rule it broke. Err is the rule (or an underlying I/O error).
type FormatError struct {
	File   string // path or name of the input, "" if unknown
	Offset int64  // byte offset in File, -1 if not applicable
	Tensor string // tensor name, if any
	Key    string // metadata key, if any
	Detail string // the offending value and what was expected
	Err    error  // the rule sentinel or wrapped cause
}

func (e *FormatError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, "offset %d: ", e.Offset)
	}
	if e.Tensor != "" {
		fmt.Fprintf(&b, "tensor %q: ", e.Tensor)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "key %q: ", e.Key)
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the rule or cause.
func (e *FormatError) Unwrap() error { return e.Err }

// IsInputError reports whether err is a bad-input, unsupported or limit
// error from a parser (as opposed to an I/O or programming failure).
func IsInputError(err error) bool {
	return errors.Is(err, ErrFormat) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrLimit)
}
