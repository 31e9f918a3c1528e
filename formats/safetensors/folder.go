package safetensors

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/mmap"
)

// Folder is a validated Hugging Face model folder: one model.safetensors,
// or shards listed by model.safetensors.index.json, plus the companion
// files (config.json, tokenizer files, …) kept as opaque names. Every shard
// is a Reader validated on its own, and the index matched the shards
// exactly. Folder implements formats.Source and formats.ByteSource over all
// shards.
type Folder struct {
	dir        string
	shards     []string  // shard file names, in shard order
	readers    []*Reader // one per shard
	tensors    []formats.TensorInfo
	where      map[string]int // tensor name → shard
	config     []byte
	genConfig  []byte
	companions []string
}

var (
	_ formats.Source     = (*Folder)(nil)
	_ formats.ByteSource = (*Folder)(nil)
)

// OpenFolder opens the model folder dir with default options.
func OpenFolder(dir string) (*Folder, error) { return OpenFolderWith(dir, Options{}) }

// OpenFolderWith opens the model folder dir. The weights are, in order of
// preference:
//
//  1. the shards named by model.safetensors.index.json (sorted by name,
//     which for HF's zero-padded model-0000N-of-0000M names is shard
//     order); the index must match them exactly (ErrIndexMismatch family);
//  2. model.safetensors;
//  3. the only *.safetensors file of the folder (ErrNoIndex if there are
//     several, ErrNoWeights if there is none).
//
// Symbolic links are followed, so a Hugging Face cache snapshot (links
// into the blob store) opens like a plain folder. Each shard is mapped with
// OpenWith(path, opts).
func OpenFolderWith(dir string, opts Options) (*Folder, error) {
	lim := opts.Limits.WithDefaults()
	files, err := listFiles(dir)
	if err != nil {
		return nil, err
	}
	f := &Folder{dir: dir, where: make(map[string]int)}
	var idx *index
	indexPath := filepath.Join(dir, IndexFile)
	switch {
	case files[IndexFile]:
		b, err := readSidecar(indexPath, lim)
		if err != nil {
			return nil, err
		}
		if idx, err = parseIndex(b, indexPath); err != nil {
			return nil, err
		}
		f.shards = idx.shards
	case files[SingleFile]:
		f.shards = []string{SingleFile}
	default:
		for name := range files {
			if isWeights(name) {
				f.shards = append(f.shards, name)
			}
		}
		switch len(f.shards) {
		case 0:
			return nil, fail(dir, -1, "", "", ErrNoWeights, "no "+IndexFile+", "+SingleFile+" or *.safetensors")
		case 1:
		default:
			return nil, fail(dir, -1, "", "", ErrNoIndex, fmt.Sprintf("%d .safetensors files", len(f.shards)))
		}
	}
	if err := f.openShards(files, indexPath, opts); err != nil {
		f.Close()
		return nil, err
	}
	if idx != nil {
		if err := checkIndex(idx, indexPath, f.shards, f.readers); err != nil {
			f.Close()
			return nil, err
		}
	}
	if f.config, err = optionalSidecar(dir, ConfigFile, files, lim); err == nil {
		f.genConfig, err = optionalSidecar(dir, GenerationConfigFile, files, lim)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	for name := range files {
		if !isWeights(name) && name != IndexFile {
			f.companions = append(f.companions, name)
		}
	}
	sort.Strings(f.companions)
	return f, nil
}

// openShards opens every shard and builds the merged tensor list.
func (f *Folder) openShards(files map[string]bool, indexPath string, opts Options) error {
	for i, name := range f.shards {
		if !files[name] {
			return fail(indexPath, -1, "", name, ErrMissingShard, "no such file in "+f.dir)
		}
		r, err := OpenWith(filepath.Join(f.dir, name), opts)
		if err != nil {
			return err
		}
		f.readers = append(f.readers, r)
		for _, t := range r.Tensors() {
			if _, dup := f.where[t.Name]; dup {
				return fail(indexPath, -1, t.Name, "", ErrTensorInTwoShards,
					fmt.Sprintf("in %s and %s", f.shards[f.where[t.Name]], name))
			}
			f.where[t.Name] = i
			t.File = name
			f.tensors = append(f.tensors, t)
		}
	}
	return nil
}

// listFiles returns the regular files of dir (links followed), skipping
// hidden names (".gitattributes", temporaries of formats/outfile).
func listFiles(dir string) (map[string]bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := make(map[string]bool, len(ents))
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if !e.Type().IsRegular() {
			st, err := os.Stat(filepath.Join(dir, name))
			if err != nil || !st.Mode().IsRegular() {
				continue // a directory, a dangling link, a device
			}
		}
		files[name] = true
	}
	return files, nil
}

func isWeights(name string) bool { return strings.HasSuffix(name, ".safetensors") }

// readSidecar reads a small JSON file of the folder, refusing one larger
// than the header limit before reading it.
func readSidecar(path string, lim formats.Limits) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > lim.MaxHeaderBytes {
		return nil, fail(path, -1, "", "", ErrFileTooLarge,
			fmt.Sprintf("%d bytes, limit %d", st.Size(), lim.MaxHeaderBytes))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > lim.MaxHeaderBytes { // grew since Stat
		return nil, fail(path, -1, "", "", ErrFileTooLarge, fmt.Sprintf("limit %d", lim.MaxHeaderBytes))
	}
	return b, nil
}

func optionalSidecar(dir, name string, files map[string]bool, lim formats.Limits) ([]byte, error) {
	if !files[name] {
		return nil, nil
	}
	return readSidecar(filepath.Join(dir, name), lim)
}

// IsFolder reports whether path is a directory that OpenFolder would read:
// it holds model.safetensors.index.json or at least one *.safetensors file.
func IsFolder(path string) bool {
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return false
	}
	files, err := listFiles(path)
	if err != nil {
		return false
	}
	for name := range files {
		if name == IndexFile || isWeights(name) {
			return true
		}
	}
	return false
}

// Dir is the folder path given to OpenFolder.
func (f *Folder) Dir() string { return f.dir }

// Shards lists the weight files in shard order, relative to Dir.
func (f *Folder) Shards() []string { return append([]string(nil), f.shards...) }

// Shard returns the reader of one shard file, by its name in Shards.
func (f *Folder) Shard(name string) (*Reader, bool) {
	for i, s := range f.shards {
		if s == name {
			return f.readers[i], true
		}
	}
	return nil, false
}

// Config returns the raw bytes of config.json, nil when absent.
func (f *Folder) Config() []byte { return f.config }

// GenerationConfig returns the raw bytes of generation_config.json, nil
// when absent.
func (f *Folder) GenerationConfig() []byte { return f.genConfig }

// Companions lists, sorted, the folder's other files, relative to Dir:
// every regular, non-hidden file that is neither a .safetensors file nor
// the index (config.json, generation_config.json, tokenizer.json,
// tokenizer.model, tokenizer_config.json, special_tokens_map.json, …).
// Subfolders are not listed. qtool treats them as opaque bytes to copy.
func (f *Folder) Companions() []string { return append([]string(nil), f.companions...) }

// Tensors lists all tensors, shard by shard, each shard in data order.
// File is the shard's name. The slice must not be modified.
func (f *Folder) Tensors() []formats.TensorInfo { return f.tensors }

// Meta returns the __metadata__ of the first shard (HF writes the same
// {"format": "pt"} into every shard).
func (f *Folder) Meta() *formats.Meta {
	if len(f.readers) == 0 {
		return formats.NewMeta()
	}
	return f.readers[0].Meta()
}

// Section returns a private reader over one tensor's bytes in its shard.
func (f *Folder) Section(name string) (*io.SectionReader, error) {
	i, ok := f.where[name]
	if !ok {
		return nil, fmt.Errorf("%s: %q: %w", f.dir, name, ErrNotFound)
	}
	return f.readers[i].Section(name)
}

// Bytes returns one tensor's bytes zero-copy from its shard's mapping.
func (f *Folder) Bytes(name string) ([]byte, error) {
	i, ok := f.where[name]
	if !ok {
		return nil, fmt.Errorf("%s: %q: %w", f.dir, name, ErrNotFound)
	}
	return f.readers[i].Bytes(name)
}

// Mappings returns the shards' file mappings (nil entries for shards not
// mapped), for mmap.Release.
func (f *Folder) Mappings() []*mmap.File {
	ms := make([]*mmap.File, len(f.readers))
	for i, r := range f.readers {
		ms[i] = r.Mapping()
	}
	return ms
}

// Close unmaps every shard. It is safe to call more than once.
func (f *Folder) Close() error {
	var errs []error
	for _, r := range f.readers {
		if err := r.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
