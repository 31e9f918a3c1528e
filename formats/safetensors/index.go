package safetensors

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/qtool-dev/qtool/formats/internal/bin"
)

// File names of a Hugging Face model folder.
const (
	// IndexFile maps every tensor of a sharded model to its shard file.
	IndexFile = "model.safetensors.index.json"
	// SingleFile is the weights file of an unsharded model.
	SingleFile = "model.safetensors"
	// ConfigFile is the model configuration (architecture, sizes).
	ConfigFile = "config.json"
	// GenerationConfigFile holds the default generation parameters.
	GenerationConfigFile = "generation_config.json"
)

// index is a decoded model.safetensors.index.json:
//
//	{"metadata": {"total_size": N, ...}, "weight_map": {"tensor": "shard", ...}}
//
// Other keys (at the top level and inside metadata) are allowed and
// ignored; repeated keys are not.
type index struct {
	totalSize int64
	hasTotal  bool
	weightMap map[string]string
	shards    []string // the distinct shard names, sorted
}

// indexParser decodes an index with the header scanner; errors are
// ErrBadIndex at the byte offset in the index file.
type indexParser struct {
	sc   scanner
	file string
}

func (p *indexParser) bad(pos int, key, detail string) error {
	return fail(p.file, int64(pos), "", key, ErrBadIndex, detail)
}

// parseIndex decodes and checks the index file's bytes.
func parseIndex(b []byte, file string) (*index, error) {
	if !utf8.Valid(b) || !json.Valid(b) {
		return nil, fail(file, -1, "", "", ErrBadIndex, "not valid UTF-8 JSON")
	}
	p := &indexParser{sc: scanner{b: b}, file: file}
	idx := &index{}
	err := p.object(0, func(key string, pos int) error {
		switch key {
		case "metadata":
			return p.metadata(idx)
		case "weight_map":
			idx.weightMap = make(map[string]string)
			return p.object(pos, func(name string, _ int) error {
				if p.sc.peek() != '"' {
					return p.bad(p.sc.pos, name, "shard is not a string")
				}
				spos := p.sc.pos
				shard, err := p.sc.str()
				if err != nil {
					return p.bad(p.sc.pos, name, "malformed string")
				}
				if !validShardName(shard) {
					return p.bad(spos, name, fmt.Sprintf("shard %q is not a file name in the folder", shard))
				}
				idx.weightMap[name] = shard
				return nil
			})
		default:
			return p.skip()
		}
	})
	if err != nil {
		return nil, err
	}
	if len(idx.weightMap) == 0 {
		return nil, p.bad(0, "weight_map", "missing or empty")
	}
	seen := map[string]bool{}
	for _, s := range idx.weightMap {
		if !seen[s] {
			seen[s] = true
			idx.shards = append(idx.shards, s)
		}
	}
	sort.Strings(idx.shards)
	return idx, nil
}

func (p *indexParser) skip() error {
	if err := p.sc.skip(); err != nil {
		return p.bad(p.sc.pos, "", "malformed value")
	}
	return nil
}

// object decodes an object, calling field for each key with the scanner
// positioned at its value; field must consume the value. Repeated keys
// fail. pos locates the object for errors.
func (p *indexParser) object(pos int, field func(key string, pos int) error) error {
	if !p.sc.eat('{') {
		return p.bad(pos, "", "not an object")
	}
	if p.sc.eat('}') {
		return nil
	}
	seen := map[string]struct{}{}
	for {
		p.sc.ws()
		kpos := p.sc.pos
		key, err := p.sc.str()
		if err != nil || !p.sc.eat(':') {
			return p.bad(p.sc.pos, "", "malformed object")
		}
		if _, dup := seen[key]; dup {
			return p.bad(kpos, key, "duplicate key")
		}
		seen[key] = struct{}{}
		if err := field(key, kpos); err != nil {
			return err
		}
		if p.sc.eat(',') {
			continue
		}
		if p.sc.eat('}') {
			return nil
		}
		return p.bad(p.sc.pos, "", "malformed object")
	}
}

// metadata decodes the index's metadata object (or null) and its
// total_size, an integer; HF writes it as an int, a few tools as an
// integral float, which is accepted when exact.
func (p *indexParser) metadata(idx *index) error {
	if p.sc.peek() == 'n' {
		return p.skip()
	}
	return p.object(p.sc.pos, func(key string, pos int) error {
		if key != "total_size" {
			return p.skip()
		}
		p.sc.ws()
		npos := p.sc.pos
		text, err := p.sc.number()
		if err != nil {
			return p.bad(npos, key, "not a number")
		}
		v, ok := parseTotal(text)
		if !ok {
			return p.bad(npos, key, fmt.Sprintf("%s is not a non-negative integer", text))
		}
		idx.totalSize, idx.hasTotal = v, true
		return nil
	})
}

func parseTotal(text string) (int64, bool) {
	if u, err := strconv.ParseUint(text, 10, 64); err == nil {
		return bin.ToInt64(u)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f < 0 || f > 1<<53 || f != math.Trunc(f) {
		return 0, false
	}
	return int64(f), true
}

// validShardName accepts a plain file name inside the folder: no path
// separators, no "." or "..", nothing absolute. A hostile index can thus
// never make OpenFolder open a file outside dir.
func validShardName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00") &&
		filepath.IsLocal(s) && filepath.Base(s) == s
}

// checkIndex compares the index with the opened shards (§1.12). A tensor
// in two shards was already refused while opening them (openShards); here
// every shard tensor must be indexed to that shard, every indexed tensor
// must be present, and total_size, when given, must equal the data bytes.
func checkIndex(idx *index, indexPath string, shards []string, readers []*Reader) error {
	var total int64
	found := 0
	for i, r := range readers {
		for _, t := range r.Tensors() {
			want, ok := idx.weightMap[t.Name]
			switch {
			case !ok:
				return fail(indexPath, -1, t.Name, "", ErrIndexExtraTensor, fmt.Sprintf("held by %s", shards[i]))
			case want != shards[i]:
				return fail(indexPath, -1, t.Name, "", ErrIndexWrongShard,
					fmt.Sprintf("indexed in %s, found in %s", want, shards[i]))
			}
			found++
			if total, ok = bin.AddI64(total, t.Size); !ok {
				return fail(indexPath, -1, t.Name, "", ErrOverflow, "total size of the shards")
			}
		}
	}
	if found != len(idx.weightMap) {
		// Every shard tensor is indexed and names are unique across
		// shards, so some indexed names were not found: report the first.
		present := make(map[string]struct{}, found)
		for _, r := range readers {
			for _, t := range r.Tensors() {
				present[t.Name] = struct{}{}
			}
		}
		var missing []string
		for name := range idx.weightMap {
			if _, ok := present[name]; !ok {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		return fail(indexPath, -1, missing[0], "", ErrIndexMissingTensor,
			fmt.Sprintf("indexed in %s; %d indexed tensors missing", idx.weightMap[missing[0]], len(missing)))
	}
	if idx.hasTotal && idx.totalSize != total {
		return fail(indexPath, -1, "", "metadata.total_size", ErrTotalSize,
			fmt.Sprintf("index says %d, shards hold %d", idx.totalSize, total))
	}
	return nil
}
