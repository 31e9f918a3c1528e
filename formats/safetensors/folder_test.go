package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/formattest"
)

const sharded = "testdata/stories260K-sharded"

var shardNames = []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}

func TestOpenFolder(t *testing.T) {
	f, err := OpenFolder(sharded)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	formattest.TestSource(t, f)
	if f.Dir() != sharded || !reflect.DeepEqual(f.Shards(), shardNames) {
		t.Errorf("dir %q shards %q", f.Dir(), f.Shards())
	}
	wantComp := []string{"config.json", "generation_config.json", "special_tokens_map.json", "tokenizer.model", "tokenizer_config.json"}
	if !reflect.DeepEqual(f.Companions(), wantComp) {
		t.Errorf("companions %q", f.Companions())
	}
	for name, got := range map[string][]byte{"config.json": f.Config(), "generation_config.json": f.GenerationConfig()} {
		want, _ := os.ReadFile(filepath.Join(sharded, name))
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs", name)
		}
	}
	// Tensors: shard by shard, each in its manifest's data order.
	var total int64
	i := 0
	for s, g := range goldens[2:] {
		m := loadManifest(t, g.manifest)
		for _, mt := range m.Tensors {
			ti := f.Tensors()[i]
			i++
			if ti.Name != mt.Name || ti.File != shardNames[s] || ti.Offset != mt.FileOffset || ti.Size != mt.NBytes {
				t.Errorf("tensor %d: %+v, manifest %s in %s", i, ti, mt.Name, shardNames[s])
			}
			b, err := f.Bytes(ti.Name)
			if err != nil || sha(b) != mt.SHA256 {
				t.Errorf("%s: bytes differ (%v)", ti.Name, err)
			}
			total += ti.Size
		}
	}
	if i != 48 || len(f.Tensors()) != 48 || total != 1171200 {
		t.Errorf("%d tensors, %d bytes", len(f.Tensors()), total)
	}
	if v, _ := f.Meta().String("format"); v != "pt" {
		t.Errorf("meta %v", f.Meta().KVs())
	}
	if r, ok := f.Shard(shardNames[1]); !ok || len(r.Tensors()) != 20 {
		t.Error("Shard lookup")
	}
	if !IsFolder(sharded) || IsFolder(sharded+"/config.json") || IsFolder(t.TempDir()) || IsFolder("testdata/nope") {
		t.Error("IsFolder")
	}
}

// variant builds a folder of links to the golden shards and companions,
// with the index replaced by edit's result (nil: no index).
func variant(t *testing.T, edit func(idx map[string]any)) string {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(sharded)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(abs)
	for _, e := range ents {
		if e.Name() != IndexFile {
			if err := os.Symlink(filepath.Join(abs, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	if edit == nil {
		return dir
	}
	b, _ := os.ReadFile(filepath.Join(abs, IndexFile))
	var idx map[string]any
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	edit(idx)
	out, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(dir, IndexFile), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func weightMap(idx map[string]any) map[string]any { return idx["weight_map"].(map[string]any) }

func writeRaw(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFolderMismatch(t *testing.T) {
	third := "model-00003-of-00003.safetensors"
	cases := []struct {
		name  string
		setup func(t *testing.T) string
		rule  error
		class error
	}{
		{"links and index unchanged", func(t *testing.T) string { return variant(t, func(map[string]any) {}) }, nil, nil},
		{"missing tensor", func(t *testing.T) string {
			return variant(t, func(idx map[string]any) { weightMap(idx)["extra.weight"] = shardNames[0] })
		}, ErrIndexMissingTensor, ErrIndexMismatch},
		{"extra tensor", func(t *testing.T) string {
			return variant(t, func(idx map[string]any) { delete(weightMap(idx), "lm_head.weight") })
		}, ErrIndexExtraTensor, ErrIndexMismatch},
		{"wrong shard", func(t *testing.T) string {
			return variant(t, func(idx map[string]any) { weightMap(idx)["lm_head.weight"] = shardNames[0] })
		}, ErrIndexWrongShard, ErrIndexMismatch},
		{"tensor in two shards", func(t *testing.T) string {
			dir := variant(t, func(idx map[string]any) { weightMap(idx)["x"] = third })
			writeRaw(t, filepath.Join(dir, third), file(`{"lm_head.weight":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}))
			return dir
		}, ErrTensorInTwoShards, ErrIndexMismatch},
		{"missing shard file", func(t *testing.T) string {
			return variant(t, func(idx map[string]any) { weightMap(idx)["lm_head.weight"] = third })
		}, ErrMissingShard, ErrIndexMismatch},
		{"total_size", func(t *testing.T) string {
			return variant(t, func(idx map[string]any) { idx["metadata"] = map[string]any{"total_size": 1171201} })
		}, ErrTotalSize, ErrIndexMismatch},
		{"total_size integral float", func(t *testing.T) string {
			return variant(t, func(idx map[string]any) { idx["metadata"] = map[string]any{"total_size": 1171200.0, "x": []any{1}} })
		}, nil, nil},
		{"no total_size", func(t *testing.T) string { return variant(t, func(idx map[string]any) { delete(idx, "metadata") }) }, nil, nil},
		{"shard outside folder", func(t *testing.T) string {
			return variant(t, func(idx map[string]any) { weightMap(idx)["lm_head.weight"] = "../" + shardNames[1] })
		}, ErrBadIndex, formats.ErrFormat},
		{"shard absolute", func(t *testing.T) string {
			return variant(t, func(idx map[string]any) { weightMap(idx)["lm_head.weight"] = "/etc/passwd" })
		}, ErrBadIndex, formats.ErrFormat},
		{"shard not a string", func(t *testing.T) string {
			return variant(t, func(idx map[string]any) { weightMap(idx)["lm_head.weight"] = 2 })
		}, ErrBadIndex, formats.ErrFormat},
		{"no weight_map", func(t *testing.T) string { return variant(t, func(idx map[string]any) { delete(idx, "weight_map") }) }, ErrBadIndex, formats.ErrFormat},
		{"negative total_size", func(t *testing.T) string {
			return variant(t, func(idx map[string]any) { idx["metadata"] = map[string]any{"total_size": -1} })
		}, ErrBadIndex, formats.ErrFormat},
		{"duplicate weight_map key", func(t *testing.T) string {
			dir := variant(t, nil)
			writeRaw(t, filepath.Join(dir, IndexFile), []byte(`{"weight_map":{"a":"`+shardNames[0]+`","a":"`+shardNames[1]+`"}}`))
			return dir
		}, ErrBadIndex, formats.ErrFormat},
		{"index not JSON", func(t *testing.T) string {
			dir := variant(t, nil)
			writeRaw(t, filepath.Join(dir, IndexFile), []byte(`{"weight_map":`))
			return dir
		}, ErrBadIndex, formats.ErrFormat},
		{"corrupt shard", func(t *testing.T) string {
			dir := variant(t, func(map[string]any) {})
			b, _ := os.ReadFile(filepath.Join(sharded, shardNames[1]))
			os.Remove(filepath.Join(dir, shardNames[1]))
			writeRaw(t, filepath.Join(dir, shardNames[1]), b[:len(b)-1])
			return dir
		}, ErrTruncated, ErrIncompleteBuffer},
		{"several files, no index", func(t *testing.T) string { return variant(t, nil) }, ErrNoIndex, formats.ErrFormat},
		{"no weights", func(t *testing.T) string { return t.TempDir() }, ErrNoWeights, formats.ErrFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.setup(t)
			f, err := OpenFolder(dir)
			if c.rule == nil {
				if err != nil {
					t.Fatal(err)
				}
				f.Close()
				return
			}
			if err == nil {
				f.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, c.rule) || !errors.Is(err, c.class) || !errors.Is(err, formats.ErrFormat) {
				t.Errorf("got %v, want %v", err, c.rule)
			}
		})
	}
}

func TestFolderLoneFile(t *testing.T) {
	b, _ := os.ReadFile("testdata/all_dtypes.safetensors")
	for _, name := range []string{SingleFile, "weights.safetensors"} {
		dir := t.TempDir()
		writeRaw(t, filepath.Join(dir, name), b)
		writeRaw(t, filepath.Join(dir, "tokenizer.json"), []byte(`{}`))
		writeRaw(t, filepath.Join(dir, ".gitattributes"), nil)
		f, err := OpenFolder(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f.Shards(), []string{name}) || len(f.Tensors()) != 20 || f.Config() != nil ||
			!reflect.DeepEqual(f.Companions(), []string{"tokenizer.json"}) || f.Tensors()[0].File != name {
			t.Errorf("%s: shards %q companions %q", name, f.Shards(), f.Companions())
		}
		formattest.TestSource(t, f)
		f.Close()
	}
}
