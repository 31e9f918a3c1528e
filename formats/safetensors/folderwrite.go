package safetensors

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/big"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/internal/bin"
	"github.com/qtool-dev/qtool/formats/outfile"
)

// FolderOptions control WriteFolder.
type FolderOptions struct {
	// MaxShardSize caps the tensor data bytes of one shard (headers not
	// counted, as in HF's save_pretrained). 0 writes a single
	// model.safetensors. A tensor larger than the cap gets a shard of its
	// own.
	MaxShardSize int64
	// Force lets the files replace existing ones of the same name.
	Force bool
}

// WriteFolder writes the weights of a Hugging Face model folder into dir,
// which must exist (the caller makes it a temporary folder with
// outfile.CreateDir and commits it, so the whole folder appears at once).
//
// The tensors are split, in the order given, into consecutive shards whose
// data stay within opts.MaxShardSize; each shard is a file written by Write
// (same layout rules, meta in every shard) through outfile.Create, so each
// file appears atomically. With more than one shard the files are named
// model-0000N-of-0000M.safetensors and model.safetensors.index.json is
// written as HF does (json.dumps(indent=2, sort_keys=True) + "\n":
// {"metadata": {"total_size": N}, "weight_map": {...}}); a single shard is
// named model.safetensors and gets no index, as in HF.
//
// Everything is planned before the first file is created. It returns the
// names of the files written, relative to dir, shards first. On error the
// file being written is removed; files already committed stay (the
// caller's temporary folder is then discarded as a whole).
func WriteFolder(ctx context.Context, dir string, meta map[string]string, ts []formats.Tensor, opts FolderOptions) ([]string, error) {
	if opts.MaxShardSize < 0 {
		return nil, fmt.Errorf("safetensors: negative MaxShardSize %d", opts.MaxShardSize)
	}
	seen := make(map[string]struct{}, len(ts))
	for i := range ts {
		if _, dup := seen[ts[i].Name]; dup {
			return nil, fail("", -1, ts[i].Name, "", ErrDuplicateName, "")
		}
		seen[ts[i].Name] = struct{}{}
	}
	if err := checkData(ts); err != nil {
		return nil, err
	}
	groups := splitShards(ts, opts.MaxShardSize)
	pairs := sortedMeta(meta)
	plans := make([]*plan, len(groups))
	names := make([]string, len(groups))
	var total int64
	for i, g := range groups {
		p, err := makePlan(pairs, g)
		if err != nil {
			return nil, err
		}
		plans[i] = p
		var ok bool
		if total, ok = bin.AddI64(total, p.data); !ok {
			return nil, fail("", -1, "", "", ErrOverflow, "total data size of the shards")
		}
		names[i] = SingleFile
		if len(groups) > 1 {
			names[i] = fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(groups))
		}
	}
	var written []string
	for i, p := range plans {
		err := writeFile(filepath.Join(dir, names[i]), opts.Force, func(w io.Writer) error {
			return stream(ctx, w, p)
		})
		if err != nil {
			return written, err
		}
		written = append(written, names[i])
	}
	if len(groups) > 1 {
		idx := encodeIndex(total, groups, names)
		err := writeFile(filepath.Join(dir, IndexFile), opts.Force, func(w io.Writer) error {
			_, err := w.Write(idx)
			return err
		})
		if err != nil {
			return written, err
		}
		written = append(written, IndexFile)
	}
	return written, nil
}

// splitShards cuts ts, in order, into groups of at most max data bytes (a
// tensor above max alone in its group); max 0 means one group. A group is
// never empty, except the single group of an empty ts.
func splitShards(ts []formats.Tensor, max int64) [][]formats.Tensor {
	if max == 0 || len(ts) == 0 {
		return [][]formats.Tensor{ts}
	}
	var groups [][]formats.Tensor
	var cur []formats.Tensor
	var size int64
	for _, t := range ts {
		if len(cur) > 0 && (t.Size > max-size || t.Size < 0) {
			groups = append(groups, cur)
			cur, size = nil, 0
		}
		cur = append(cur, t)
		if t.Size > 0 {
			size += t.Size // ≤ max, or the tensor alone: no overflow
		}
	}
	return append(groups, cur)
}

// writeFile writes one output file atomically.
func writeFile(path string, force bool, fill func(io.Writer) error) (err error) {
	f, err := outfile.Create(path, outfile.Options{Force: force})
	if err != nil {
		return err
	}
	defer f.Abort() // no-op after Commit
	if err := fill(f); err != nil {
		return err
	}
	return f.Commit()
}

// encodeIndex renders model.safetensors.index.json byte for byte as
// transformers does: json.dumps(index, indent=2, sort_keys=True) + "\n",
// whose default ensure_ascii=True escapes every non-ASCII character.
func encodeIndex(total int64, groups [][]formats.Tensor, names []string) []byte {
	type pair struct{ tensor, shard string }
	var wm []pair
	for i, g := range groups {
		for _, t := range g {
			wm = append(wm, pair{t.Name, names[i]})
		}
	}
	sort.Slice(wm, func(i, j int) bool { return wm[i].tensor < wm[j].tensor })
	b := []byte("{\n  \"metadata\": {\n    \"total_size\": ")
	b = strconv.AppendInt(b, total, 10)
	b = append(b, "\n  },\n  \"weight_map\": {"...)
	if len(wm) == 0 {
		b = append(b, '}')
	} else {
		for i, p := range wm {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, "\n    "...)
			b = appendString(b, p.tensor, true)
			b = append(b, ": "...)
			b = appendString(b, p.shard, true)
		}
		b = append(b, "\n  }"...)
	}
	return append(b, "\n}\n"...)
}

// sizeUnits are the suffixes ParseSize accepts, longest first so that
// "GIB" is tried before "B". Decimal units follow HF's
// convert_file_size_to_int ("5GB" = 5·10⁹); the "i" units are binary.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KIB", 1 << 10},
	{"MIB", 1 << 20},
	{"GIB", 1 << 30},
	{"TIB", 1 << 40},
	{"KB", 1e3},
	{"MB", 1e6},
	{"GB", 1e9},
	{"TB", 1e12},
	{"K", 1e3},
	{"M", 1e6},
	{"G", 1e9},
	{"T", 1e12},
	{"B", 1},
}

// ParseSize parses a shard size such as a --max-shard-size flag value:
// a plain byte count ("1000000"), or a number with a unit, case-insensitive,
// optionally separated by a space: decimal KB, MB, GB, TB (and K, M, G, T),
// binary KiB, MiB, GiB, TiB, or B. The number may have a fraction
// ("1.5GB"); the result is rounded down to whole bytes. "0" is allowed
// (no sharding); negative values and values above MaxInt64 are not.
//
// Unlike HF, a trailing lower-case "b" means bytes, not bits: "5Gb" is
// 5·10⁹ bytes.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	r, ok := new(big.Rat), decimal(t)
	if ok {
		_, ok = r.SetString(t)
	}
	if !ok {
		return 0, fmt.Errorf("invalid size %q: want a non-negative number with an optional unit (500MB, 2GiB, 1000000)", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	v := new(big.Int).Quo(r.Num(), r.Denom())
	if !v.IsInt64() {
		return 0, fmt.Errorf("invalid size %q: above %d bytes", s, int64(math.MaxInt64))
	}
	return v.Int64(), nil
}

// decimal reports whether t is digits with at most one '.', and at least
// one digit: no sign, exponent, base prefix or fraction bar.
func decimal(t string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case '0' <= c && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}
