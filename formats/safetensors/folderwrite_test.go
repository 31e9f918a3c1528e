package safetensors

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/formattest"
	"github.com/qtool-dev/qtool/formats/outfile"
)

// TestWriteFolderGolden: the golden folder's tensors, split at the data
// size of its first shard, come back byte-identical: both shards and the
// index (HF's json.dumps(indent=2, sort_keys=True) layout).
func TestWriteFolderGolden(t *testing.T) {
	src, err := OpenFolder(sharded)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	first, _ := src.Shard(shardNames[0])
	limit := first.Size() - first.DataStart()
	dir := t.TempDir()
	names, err := WriteFolder(context.Background(), dir, first.Metadata(), formattest.Tensors(t, src), FolderOptions{MaxShardSize: limit})
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]string(nil), shardNames...), IndexFile); !reflect.DeepEqual(names, want) {
		t.Errorf("wrote %q, want %q", names, want)
	}
	for _, name := range names {
		got, _ := os.ReadFile(filepath.Join(dir, name))
		want, _ := os.ReadFile(filepath.Join(sharded, name))
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden (%d vs %d bytes)", name, len(got), len(want))
		}
	}
	// Without Force, existing files are not replaced; with it they are.
	if _, err := WriteFolder(context.Background(), dir, nil, formattest.Tensors(t, src), FolderOptions{MaxShardSize: limit}); !errors.Is(err, outfile.ErrExists) {
		t.Errorf("overwrite without Force: %v", err)
	}
	if _, err := WriteFolder(context.Background(), dir, first.Metadata(), formattest.Tensors(t, src), FolderOptions{MaxShardSize: limit, Force: true}); err != nil {
		t.Errorf("Force: %v", err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 3 {
		t.Errorf("%d files in the folder, temporaries left behind?", len(left))
	}
}

// TestWriteFolderRoundTrip writes the golden folder with several shard
// limits and reopens it with OpenFolder.
func TestWriteFolderRoundTrip(t *testing.T) {
	src, err := OpenFolder(sharded)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, c := range []struct {
		max    int64
		shards int
	}{{0, 1}, {1 << 30, 1}, {300000, 5}, {1, 48}} {
		dir := t.TempDir()
		var names []string
		formattest.TestRoundTrip(t, src, func(ts []formats.Tensor) (formats.Source, error) {
			var err error
			names, err = WriteFolder(context.Background(), dir, map[string]string{"format": "pt"}, ts, FolderOptions{MaxShardSize: c.max})
			if err != nil {
				return nil, err
			}
			return OpenFolder(dir)
		}, false)
		f, err := OpenFolder(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Shards()) != c.shards {
			t.Errorf("max %d: %d shards, want %d", c.max, len(f.Shards()), c.shards)
		}
		if c.shards == 1 && (!reflect.DeepEqual(names, []string{SingleFile}) || !reflect.DeepEqual(f.Shards(), []string{SingleFile})) {
			t.Errorf("max %d: wrote %q", c.max, names)
		}
		for _, s := range f.Shards() {
			r, _ := f.Shard(s)
			if c.max > 0 && r.Size()-r.DataStart() > c.max && len(r.Tensors()) > 1 {
				t.Errorf("max %d: shard %s holds %d data bytes", c.max, s, r.Size()-r.DataStart())
			}
		}
		f.Close()
	}
}

func TestSplitShards(t *testing.T) {
	mk := func(sizes ...int64) []formats.Tensor {
		var ts []formats.Tensor
		for _, s := range sizes {
			ts = append(ts, formats.Tensor{TensorInfo: formats.TensorInfo{Size: s}})
		}
		return ts
	}
	sizes := func(gs [][]formats.Tensor) [][]int64 {
		var out [][]int64
		for _, g := range gs {
			var row []int64
			for _, t := range g {
				row = append(row, t.Size)
			}
			out = append(out, row)
		}
		return out
	}
	for _, c := range []struct {
		in   []int64
		max  int64
		want [][]int64
	}{
		{[]int64{1, 2, 3}, 0, [][]int64{{1, 2, 3}}},
		{[]int64{4, 4, 4}, 8, [][]int64{{4, 4}, {4}}},
		{[]int64{3, 20, 3}, 10, [][]int64{{3}, {20}, {3}}},
		{[]int64{0, 10, 0, 1}, 10, [][]int64{{0, 10, 0}, {1}}},
		{[]int64{5, 5, 5, 5}, 10, [][]int64{{5, 5}, {5, 5}}},
	} {
		if got := sizes(splitShards(mk(c.in...), c.max)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("split %v by %d = %v, want %v", c.in, c.max, got, c.want)
		}
	}
	if got := splitShards(nil, 5); len(got) != 1 || len(got[0]) != 0 {
		t.Errorf("empty input: %v", got)
	}
}

func TestWriteFolderErrors(t *testing.T) {
	ok := f32("a", 1, producer{n: 4})
	q4 := formats.Tensor{TensorInfo: formats.TensorInfo{Name: "q", DType: formats.Q4_0, Shape: []int64{32}, Size: 18}, Data: producer{n: 18}}
	for _, c := range []struct {
		name string
		ts   []formats.Tensor
		opts FolderOptions
		rule error
	}{
		{"Q4_0 in second shard", []formats.Tensor{ok, q4}, FolderOptions{MaxShardSize: 4}, ErrDTypeNotStorable},
		{"duplicate across shards", []formats.Tensor{ok, ok}, FolderOptions{MaxShardSize: 4}, ErrDuplicateName},
		{"nil data in second shard", []formats.Tensor{ok, f32("b", 1, nil)}, FolderOptions{MaxShardSize: 4}, ErrNoData},
		{"short producer", []formats.Tensor{ok, f32("b", 1, producer{n: 3})}, FolderOptions{MaxShardSize: 4}, ErrDataLength},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := WriteFolder(context.Background(), dir, nil, c.ts, c.opts)
			if !errors.Is(err, c.rule) {
				t.Fatalf("got %v, want %v", err, c.rule)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.Name()[0] == '.' {
					t.Errorf("temporary %s left behind", e.Name())
				}
			}
			if c.rule != ErrDataLength && len(ents) != 0 {
				t.Errorf("%d files written before the plan failed", len(ents))
			}
		})
	}
	if _, err := WriteFolder(context.Background(), t.TempDir(), nil, nil, FolderOptions{MaxShardSize: -1}); err == nil {
		t.Error("negative MaxShardSize accepted")
	}
}

func TestEncodeIndexASCII(t *testing.T) {
	groups := [][]formats.Tensor{{{TensorInfo: formats.TensorInfo{Name: "é"}}}, {{TensorInfo: formats.TensorInfo{Name: "b"}}}}
	got := string(encodeIndex(7, groups, []string{"s1", "s2"}))
	want := "{\n  \"metadata\": {\n    \"total_size\": 7\n  },\n  \"weight_map\": {\n    \"b\": \"s2\",\n    \"\\u00e9\": \"s1\"\n  }\n}\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1000000", 1000000, true}, {"0", 0, true}, {"5GB", 5e9, true}, {"500MB", 5e8, true},
		{"2GiB", 2 << 30, true}, {"10KiB", 10240, true}, {"1.5GB", 15e8, true}, {"5gb", 5e9, true},
		{" 3 MiB ", 3 << 20, true}, {"7B", 7, true}, {"2T", 2e12, true}, {"0.5KiB", 512, true},
		{"", 0, false}, {"-1", 0, false}, {"GB", 0, false}, {"1e9", 0, false}, {"0x10", 0, false},
		{"1..2MB", 0, false}, {"10000000000GB", 0, false}, {"5 XB", 0, false}, {"1/2GB", 0, false},
	} {
		got, err := ParseSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}
