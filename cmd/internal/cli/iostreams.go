package cli

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are the process's standard streams, injected so tests can run
// commands against buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer // results: tables, --json documents, `-o -` data
	ErrOut io.Writer // messages and progress

	errTTY bool
	Quiet  bool // --quiet: no progress, no informational messages
	JSON   bool // --json: one JSON document on Out
}

// System returns the process's streams, detecting whether stderr is a
// terminal.
func System() *IOStreams {
	return &IOStreams{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		errTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
}

// Test returns streams backed by buffers, and the buffers.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// ProgressEnabled reports whether progress bars should be drawn: only on a
// terminal, and not with --quiet.
func (s *IOStreams) ProgressEnabled() bool { return s.errTTY && !s.Quiet }

// SetStderrTTY overrides terminal detection (tests).
func (s *IOStreams) SetStderrTTY(v bool) { s.errTTY = v }
