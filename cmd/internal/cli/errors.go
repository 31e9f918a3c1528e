package cli

import (
	"context"
	"errors"
	"io/fs"

	"github.com/qtool-dev/qtool/formats"
)

// ExitCode is the process status qtool returns. The values are part of the
// scripting contract documented in README.md; never renumber them.
type ExitCode int

// Exit codes.
const (
	ExitOK          ExitCode = 0   // success
	ExitFailure     ExitCode = 1   // any other failure (I/O, output exists, internal)
	ExitUsage       ExitCode = 2   // bad flags or arguments
	ExitBadInput    ExitCode = 3   // an input is missing, malformed or over a limit
	ExitUnsupported ExitCode = 4   // a well-formed input uses something qtool does not handle
	ExitInterrupted ExitCode = 130 // SIGINT or SIGTERM; partial outputs removed
)

// FlagError is a usage error: bad flags, wrong argument count, invalid
// flag values. It maps to ExitUsage.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// flagErrorf builds a FlagError.
func flagErrorf(format string, args ...any) error {
	return &FlagError{Err: errorf(format, args...)}
}

// InputError marks a failure caused by the inputs (missing file, bad
// dataset line) that is not already a formats error.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// exitCodeFor decides the exit status of an error: the one place where
// errors become numbers.
func exitCodeFor(err error) ExitCode {
	var fe *FlagError
	var ie *InputError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.Canceled), errors.Is(err, errInterrupted):
		return ExitInterrupted
	case errors.As(err, &fe):
		return ExitUsage
	case errors.Is(err, formats.ErrUnsupported):
		return ExitUnsupported
	case errors.Is(err, formats.ErrFormat), errors.Is(err, formats.ErrLimit), errors.As(err, &ie):
		return ExitBadInput
	case errors.Is(err, fs.ErrNotExist):
		return ExitBadInput
	}
	return ExitFailure
}

var errInterrupted = errors.New("interrupted")
