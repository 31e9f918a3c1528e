//go:build !linux

package outfile

import "os"

// startWriteback does nothing where sync_file_range is unavailable.
func startWriteback(*os.File) {}
