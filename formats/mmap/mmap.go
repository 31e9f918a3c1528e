// Package mmap maps a file read-only and exposes it as an io.ReaderAt that
// cannot crash the process: a fault while reading (the file was truncated
// underneath) becomes an error instead of a SIGBUS.
package mmap

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"unsafe"
)

// ErrFault is returned by ReadAt when the mapping faults: the file shrank
// or changed while mapped.
var ErrFault = errors.New("mmap: memory fault reading mapped file (was it truncated?)")

// File is a read-only memory-mapped file.
type File struct {
	name  string
	data  []byte
	unmap func() error
}

// Open maps path read-only. An empty file maps to an empty File.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	size := st.Size()
	if size == 0 {
		return &File{name: path, unmap: func() error { return nil }}, nil
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("%s: file too large to map on this platform", path)
	}
	data, unmap, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return &File{name: path, data: data, unmap: unmap}, nil
}

// Name is the path given to Open.
func (m *File) Name() string { return m.name }

// Len is the mapped size in bytes.
func (m *File) Len() int64 { return int64(len(m.data)) }

// Bytes returns the whole mapping. Touching it after the file was truncated
// can fault; callers that must survive that use ReadAt.
func (m *File) Bytes() []byte { return m.data }

// ReadAt implements io.ReaderAt over the mapping, turning faults into
// ErrFault.
func (m *File) ReadAt(p []byte, off int64) (n int, err error) {
	if off < 0 {
		return 0, errors.New("mmap: negative offset")
	}
	if off >= int64(len(m.data)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			n, err = 0, ErrFault
		}
	}()
	n = copy(p, m.data[off:])
	if n < len(p) {
		err = io.EOF
	}
	return n, err
}

// DontNeed tells the kernel that the mapped bytes [off, off+n) are not
// needed for now (madvise MADV_DONTNEED on the pages covering them, the
// range widened to whole pages and clipped to the mapping), so that they
// stop counting in the process's resident memory. The mapping stays valid:
// reading the bytes again brings them back from the page cache or the
// file. It does nothing where files are not mapped, for an empty range or
// after Close.
func (m *File) DontNeed(off, n int64) error {
	if off < 0 || n < 0 {
		return errors.New("mmap: DontNeed: negative offset or length")
	}
	size := int64(len(m.data))
	if n == 0 || off >= size {
		return nil
	}
	end := min(off+n, size)
	page := int64(os.Getpagesize())
	start := off / page * page
	end = min((end+page-1)/page*page, size)
	if start >= end {
		return nil
	}
	return dontNeed(m.data[start:end])
}

// Close unmaps the file. The slices returned by Bytes are invalid after.
func (m *File) Close() error {
	if m.unmap == nil {
		return nil
	}
	err := m.unmap()
	m.unmap = nil
	m.data = nil
	return err
}

// Release advises the kernel that b, bytes a source gave for one of its
// tensors, are done with, so that their pages stop counting in the
// process's resident memory: through the source's file mapping (a
// Mapping() *File method, as gguf.Reader and safetensors.Reader made by
// Open have; or Mappings() []*File, a sharded folder's) that b lies
// inside, or else the source's own DontNeed(off, n) with the tensor's
// offset and size. Nothing happens for other sources or an empty b.
// Errors are ignored: it is advice, and the bytes read the same
// afterwards.
func Release(src any, b []byte, off, n int64) {
	switch s := src.(type) {
	case interface{ Mapping() *File }:
		s.Mapping().releaseSlice(b)
	case interface{ Mappings() []*File }:
		for _, mm := range s.Mappings() {
			if mm.releaseSlice(b) {
				return
			}
		}
	case interface{ DontNeed(off, n int64) error }:
		_ = s.DontNeed(off, n)
	}
}

// releaseSlice drops the pages of b when b lies inside m's mapping, and
// reports whether it does.
func (m *File) releaseSlice(b []byte) bool {
	if m == nil || len(b) == 0 || len(m.data) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(m.data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < start || p-start+uintptr(len(b)) > uintptr(len(m.data)) {
		return false // not a slice of this mapping
	}
	_ = m.DontNeed(int64(p-start), int64(len(b)))
	return true
}
