//go:build !unix

package mmap

import (
	"io"
	"os"
)

// mapFile falls back to reading the whole file where mmap is unavailable.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}

// dontNeed does nothing where the file is read into memory.
func dontNeed([]byte) error { return nil }
