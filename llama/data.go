package llama

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/qtool-dev/qtool/formats"
)

// MaxDataBytes bounds the decompressed size ReadDocuments accepts.
const MaxDataBytes = 1 << 30

// ReadDocuments reads evaluation text: a plain text file is one document;
// a .jsonl file (or .json with one object a line) gives the "text" field of
// each line. A .gz or .zst suffix is decompressed first (then the name
// without it decides text or JSONL).
func ReadDocuments(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	name := path
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", path, err, formats.ErrFormat)
		}
		defer zr.Close()
		r, name = zr, strings.TrimSuffix(name, ".gz")
	case strings.HasSuffix(name, ".zst"):
		zr, err := zstd.NewReader(f, zstd.WithDecoderMaxMemory(MaxDataBytes))
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", path, err, formats.ErrFormat)
		}
		defer zr.Close()
		r, name = zr, strings.TrimSuffix(name, ".zst")
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxDataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", path, err, formats.ErrFormat)
	}
	if len(b) > MaxDataBytes {
		return nil, fmt.Errorf("%s: more than %d bytes of text: %w", path, MaxDataBytes, formats.ErrLimit)
	}
	if strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".json") {
		return jsonlTexts(b, path)
	}
	return []string{string(b)}, nil
}

func jsonlTexts(b []byte, path string) ([]string, error) {
	var docs []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	line := 0
	for sc.Scan() {
		line++
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		var rec struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(l, &rec); err != nil {
			return nil, fmt.Errorf("%s line %d: %v: %w", path, line, err, formats.ErrFormat)
		}
		if rec.Text == nil {
			return nil, fmt.Errorf("%s line %d: no \"text\" field: %w", path, line, formats.ErrFormat)
		}
		docs = append(docs, *rec.Text)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", path, err, formats.ErrFormat)
	}
	return docs, nil
}
