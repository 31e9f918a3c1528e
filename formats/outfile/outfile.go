// Package outfile makes outputs appear atomically: data goes to a temporary
// file (or folder) beside the destination, which is synced and renamed into
// place only when complete. On error or interrupt the temporary is removed,
// so no half-written output is ever left behind, and an existing output is
// never replaced unless Force is set.
package outfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// ErrExists is returned when the destination exists and Force is not set.
var ErrExists = errors.New("output already exists (use --force to overwrite)")

// Options control Create and CreateDir.
type Options struct {
	// Force allows replacing an existing destination.
	Force bool
	// Perm is the permission of the final file (default 0644; folders 0755).
	Perm os.FileMode
}

// live holds every uncommitted temporary so AbortAll can remove them when
// the process is interrupted.
var (
	liveMu sync.Mutex
	live   = map[string]func(){}
)

func track(path string, abort func()) {
	liveMu.Lock()
	live[path] = abort
	liveMu.Unlock()
}

func untrack(path string) {
	liveMu.Lock()
	delete(live, path)
	liveMu.Unlock()
}

// AbortAll removes every temporary not yet committed. The CLI calls it when
// it receives SIGINT or SIGTERM.
func AbortAll() {
	liveMu.Lock()
	fns := make([]func(), 0, len(live))
	for _, f := range live {
		fns = append(fns, f)
	}
	live = map[string]func(){}
	liveMu.Unlock()
	for _, f := range fns {
		f()
	}
}

func checkDest(path string, force bool) error {
	if _, err := os.Lstat(path); err == nil {
		if !force {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// File is an output file being written. It embeds the temporary *os.File,
// so it is an io.Writer and an io.WriterAt.
type File struct {
	*os.File
	dest    string
	opts    Options
	done    bool
	mu      sync.Mutex
	pending atomic.Int64 // bytes written since the last startWriteback
}

// writebackEvery is how many bytes File.Write passes on before it asks
// the kernel to start writing the file's dirty pages to disk (Linux; see
// startWriteback), so that the disk works while the output is produced and
// Commit's fsync finds little left to do: a multi-gigabyte file otherwise
// stays in the page cache, under the background writeback threshold, until
// the fsync writes all of it while nothing else runs.
const writebackEvery = 32 << 20

// Write writes p to the temporary file.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	if f.pending.Add(int64(n)) >= writebackEvery {
		f.pending.Store(0)
		startWriteback(f.File)
	}
	return n, err
}

// Create starts writing path: it creates a temporary file in path's folder.
func Create(path string, opts Options) (*File, error) {
	if err := checkDest(path, opts.Force); err != nil {
		return nil, err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create output %s: %w", path, err)
	}
	f := &File{File: tmp, dest: path, opts: opts}
	track(tmp.Name(), func() { f.Abort() })
	return f, nil
}

// Dest is the final path.
func (f *File) Dest() string { return f.dest }

// Commit syncs and closes the temporary, then renames it to the
// destination. After Commit, Abort does nothing.
func (f *File) Commit() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return errors.New("outfile: already committed or aborted")
	}
	name := f.File.Name()
	fail := func(err error) error {
		f.File.Close()
		os.Remove(name)
		f.done = true
		untrack(name)
		return fmt.Errorf("write %s: %w", f.dest, err)
	}
	perm := f.opts.Perm
	if perm == 0 {
		perm = 0o644
	}
	if err := f.File.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := f.File.Sync(); err != nil {
		return fail(err)
	}
	if err := f.File.Close(); err != nil {
		return fail(err)
	}
	if err := checkDest(f.dest, f.opts.Force); err != nil {
		os.Remove(name)
		f.done = true
		untrack(name)
		return err
	}
	if err := os.Rename(name, f.dest); err != nil {
		os.Remove(name)
		f.done = true
		untrack(name)
		return fmt.Errorf("write %s: %w", f.dest, err)
	}
	f.done = true
	untrack(name)
	syncDir(filepath.Dir(f.dest))
	return nil
}

// Abort closes and removes the temporary. It is safe to call after Commit
// (it then does nothing) and more than once; use it in a defer.
func (f *File) Abort() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return
	}
	f.done = true
	name := f.File.Name()
	f.File.Close()
	os.Remove(name)
	untrack(name)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Dir is an output folder being written (a Hugging Face model folder). Files
// are written under Path(); Commit renames the folder into place.
type Dir struct {
	tmp  string
	dest string
	opts Options
	done bool
	mu   sync.Mutex
}

// CreateDir starts writing the folder path.
func CreateDir(path string, opts Options) (*Dir, error) {
	path = filepath.Clean(path)
	if err := checkDest(path, opts.Force); err != nil {
		return nil, err
	}
	parent, base := filepath.Split(path)
	if parent == "" {
		parent = "."
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create output folder %s: %w", path, err)
	}
	d := &Dir{tmp: tmp, dest: path, opts: opts}
	track(tmp, func() { d.Abort() })
	return d, nil
}

// Path is the temporary folder to write into.
func (d *Dir) Path() string { return d.tmp }

// Dest is the final folder.
func (d *Dir) Dest() string { return d.dest }

// Commit renames the temporary folder to the destination. With Force, an
// existing destination is moved aside first and removed only once the new
// folder is in place.
func (d *Dir) Commit() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return errors.New("outfile: already committed or aborted")
	}
	d.done = true
	defer untrack(d.tmp)
	perm := d.opts.Perm
	if perm == 0 {
		perm = 0o755
	}
	os.Chmod(d.tmp, perm)
	syncDir(d.tmp)
	var aside string
	if _, err := os.Lstat(d.dest); err == nil {
		if !d.opts.Force {
			os.RemoveAll(d.tmp)
			return fmt.Errorf("%s: %w", d.dest, ErrExists)
		}
		aside = d.tmp + ".old"
		if err := os.Rename(d.dest, aside); err != nil {
			os.RemoveAll(d.tmp)
			return fmt.Errorf("replace %s: %w", d.dest, err)
		}
	}
	if err := os.Rename(d.tmp, d.dest); err != nil {
		if aside != "" {
			os.Rename(aside, d.dest)
		}
		os.RemoveAll(d.tmp)
		return fmt.Errorf("write %s: %w", d.dest, err)
	}
	if aside != "" {
		os.RemoveAll(aside)
	}
	syncDir(filepath.Dir(d.dest))
	return nil
}

// Abort removes the temporary folder; safe after Commit and in a defer.
func (d *Dir) Abort() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return
	}
	d.done = true
	os.RemoveAll(d.tmp)
	untrack(d.tmp)
}
