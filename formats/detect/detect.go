// Package detect opens any model input qtool reads — a GGUF file, a
// safetensors file or a Hugging Face model folder — as a formats.Source,
// choosing the reader by magic bytes and folder layout rather than by file
// name.
package detect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

// Format names the container of an input.
type Format string

// The formats detect knows.
const (
	GGUF        Format = "gguf"
	Safetensors Format = "safetensors"
	HFFolder    Format = "hf-folder"
)

// ErrUnknownFormat is returned for a file that is neither GGUF nor
// safetensors.
var ErrUnknownFormat = formats.NewRule("not a GGUF or safetensors file", formats.ErrUnsupported)

// Options tune the readers.
type Options struct {
	Limits formats.Limits
	// NestedArrays lets GGUF files with arrays of arrays open (ggml rejects
	// them; inspect shows them).
	NestedArrays bool
}

// Sniff reads the first bytes of a file and names its format.
func Sniff(path string) (Format, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return HFFolder, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var head [9]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	if n >= 4 && string(head[:4]) == "GGUF" {
		return GGUF, nil
	}
	if n >= 8 {
		hl := binary.LittleEndian.Uint64(head[:8])
		// A safetensors header is JSON, at least "{}" long; its first
		// byte is '{' or JSON whitespace.
		if hl >= 2 && hl < 1<<40 && (n < 9 || head[8] == '{' || head[8] == ' ' || head[8] == '\n' || head[8] == '\t' || head[8] == '\r') {
			return Safetensors, nil
		}
	}
	return "", &formats.FormatError{File: path, Offset: 0, Err: ErrUnknownFormat,
		Detail: fmt.Sprintf("first bytes % x", head[:n])}
}

// Open opens path with the reader its format needs.
func Open(path string, opts Options) (formats.Source, Format, error) {
	f, err := Sniff(path)
	if err != nil {
		return nil, "", err
	}
	var src formats.Source
	switch f {
	case GGUF:
		src, err = gguf.OpenWith(path, gguf.Options{Limits: opts.Limits, AllowNestedArrays: opts.NestedArrays})
	case Safetensors:
		src, err = safetensors.OpenWith(path, safetensors.Options{Limits: opts.Limits})
	case HFFolder:
		src, err = safetensors.OpenFolderWith(path, safetensors.Options{Limits: opts.Limits})
	}
	if err != nil {
		return nil, "", err
	}
	return src, f, nil
}
