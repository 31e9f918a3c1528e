//go:build linux

package outfile

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback starts the writeback of f's dirty pages without waiting
// for it (sync_file_range with SYNC_FILE_RANGE_WRITE over the whole file).
// Errors are ignored: it is advice, and Commit's fsync still makes the
// file durable.
func startWriteback(f *os.File) {
	c, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = c.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	})
}
