package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// writeJSON writes v as one indented JSON document followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// infof prints an informational message on stderr unless --quiet.
func (s *IOStreams) infof(format string, args ...any) {
	if s.Quiet {
		return
	}
	fmt.Fprintf(s.ErrOut, format, args...)
}

// isStdout reports whether an output path means standard output.
func isStdout(path string) bool { return path == "-" }

// inputExists turns a missing input into an InputError naming it.
func inputExists(path string) error {
	if _, err := os.Stat(path); err != nil {
		return &InputError{Err: err}
	}
	return nil
}
