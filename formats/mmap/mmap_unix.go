//go:build unix

package mmap

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	data, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}

// dontNeed drops the pages of b (page-aligned) from the process: the
// mapping is shared and read-only, so a later touch reads them again from
// the page cache or the file.
func dontNeed(b []byte) error {
	return unix.Madvise(b, unix.MADV_DONTNEED)
}
