package interop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

// pyReport is what check_safetensors.py prints.
type pyReport struct {
	FileSize     int64             `json:"file_size"`
	HeaderLength int64             `json:"header_length"`
	DataStart    int64             `json:"data_start"`
	Metadata     map[string]string `json:"metadata"`
	Tensors      []struct {
		Name        string   `json:"name"`
		DType       string   `json:"dtype"`
		Shape       []int64  `json:"shape"`
		DataOffsets [2]int64 `json:"data_offsets"`
		SHA256      string   `json:"sha256"`
	} `json:"tensors"`
	Errors []string `json:"errors"`
}

// checkSafetensors reads path with qtool and with the Python checker and
// requires the file to be valid for both and both to agree on the header
// length, metadata, and every tensor's dtype, shape, offsets and bytes.
func checkSafetensors(t *testing.T, path string) {
	t.Helper()
	var p pyReport
	runJSON(t, &p, true, python, pyChecker, path)
	for _, e := range p.Errors {
		t.Errorf("python: %s", e)
	}
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatalf("safetensors.Open: %v", err)
	}
	defer r.Close()
	if p.FileSize != r.Size() || p.HeaderLength != r.HeaderLen() || p.DataStart != r.DataStart() {
		t.Errorf("python: size %d, header %d, data at %d; qtool: %d, %d, %d",
			p.FileSize, p.HeaderLength, p.DataStart, r.Size(), r.HeaderLen(), r.DataStart())
	}
	meta := r.Metadata()
	if len(meta) == 0 {
		meta = nil
	}
	if len(p.Metadata) == 0 {
		p.Metadata = nil
	}
	if !reflect.DeepEqual(p.Metadata, meta) {
		t.Errorf("metadata: python %v, qtool %v", p.Metadata, meta)
	}
	ts := r.Tensors()
	if len(p.Tensors) != len(ts) {
		t.Fatalf("python sees %d tensors, qtool %d", len(p.Tensors), len(ts))
	}
	// Both lists are in data order.
	for i, ti := range ts {
		q := p.Tensors[i]
		name, _ := ti.DType.SafetensorsName()
		shape := ti.Shape
		if shape == nil {
			shape = []int64{}
		}
		if q.Name != ti.Name || q.DType != name || !reflect.DeepEqual(q.Shape, shape) {
			t.Errorf("tensor %d: python %q %s %v, qtool %q %s %v", i, q.Name, q.DType, q.Shape, ti.Name, name, shape)
			continue
		}
		if r.DataStart()+q.DataOffsets[0] != ti.Offset || q.DataOffsets[1]-q.DataOffsets[0] != ti.Size {
			t.Errorf("%s: python offsets %v, qtool offset %d size %d", ti.Name, q.DataOffsets, ti.Offset, ti.Size)
		}
		sec, err := r.Section(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, sec); err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != q.SHA256 {
			t.Errorf("%s: python sha256 %s, qtool %s", ti.Name, q.SHA256, got)
		}
	}
}

// TestSafetensorsFixture checks the committed stories260K-hf weights (made
// outside qtool) the same way.
func TestSafetensorsFixture(t *testing.T) {
	requirePython(t)
	checkSafetensors(t, filepath.Join("..", "..", "fixtures", "stories260K-hf", "model.safetensors"))
}

func TestSafetensorsShardedFolder(t *testing.T) {
	requirePython(t)
	c, _ := fixtures.Preset("tiny")
	c.DType = formats.F16
	dir := filepath.Join(t.TempDir(), "tiny-hf")
	files, err := fixtures.WriteHFFolder(context.Background(), dir, c, 40<<10, false)
	if err != nil {
		t.Fatal(err)
	}
	var shards []string
	for _, f := range files {
		if strings.HasSuffix(f, ".safetensors") {
			shards = append(shards, f)
		}
	}
	if len(shards) < 3 {
		t.Fatalf("40 KiB shards of a %d-parameter F16 model gave %v", c.NumParams(), files)
	}
	seen := map[string]string{}
	var total int64
	for _, s := range shards {
		t.Run(s, func(t *testing.T) { checkSafetensors(t, filepath.Join(dir, s)) })
		r, err := safetensors.Open(filepath.Join(dir, s))
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range r.Tensors() {
			seen[ti.Name] = s
			total += ti.Size
		}
		r.Close()
	}
	// The index, read as plain JSON, must map every tensor to its shard.
	raw, err := os.ReadFile(filepath.Join(dir, "model.safetensors.index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Metadata struct {
			TotalSize int64 `json:"total_size"`
		} `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(idx.WeightMap, seen) || idx.Metadata.TotalSize != total {
		t.Errorf("index: total_size %d (want %d), weight_map %v, shards hold %v", idx.Metadata.TotalSize, total, idx.WeightMap, seen)
	}
	f, err := safetensors.OpenFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Tensors()) != len(seen) {
		t.Errorf("folder lists %d tensors, the shards hold %d", len(f.Tensors()), len(seen))
	}
}

// TestSafetensorsManyDTypes writes every dtype safetensors can hold, with
// scalar, empty and odd shapes and names that need JSON escaping.
func TestSafetensorsManyDTypes(t *testing.T) {
	requirePython(t)
	shapes := [][]int64{{}, {0}, {3, 0}, {5}, {2, 3, 4}, {7, 1}, {1, 1, 1, 3}}
	var ts []formats.Tensor
	seed := byte(1)
	for _, d := range formats.AllDTypes() {
		st, ok := d.SafetensorsName()
		if !ok {
			continue
		}
		for i, shape := range shapes {
			size, ok := formats.DataSize(d, shape)
			if !ok {
				t.Fatalf("%v %v: no size", d, shape)
			}
			data := make([]byte, size)
			for j := range data {
				seed = seed*167 + 13
				data[j] = seed
				if d == formats.Bool {
					data[j] &= 1
				}
			}
			ts = append(ts, formats.Tensor{
				TensorInfo: formats.TensorInfo{Name: st + "/" + string(rune('a'+i)), DType: d, Shape: shape, Size: size},
				Data:       formats.BytesWriter(data),
			})
		}
	}
	for _, name := range []string{"quote\"back\\slash", "ünïcødé.weight", "tab\tnewline\n", "\u2581piece", "ctl\x01"} {
		ts = append(ts, formats.Tensor{
			TensorInfo: formats.TensorInfo{Name: name, DType: formats.F32, Shape: []int64{3}, Size: 12},
			Data:       formats.BytesWriter([]byte("0123456789ab")),
		})
	}
	path := filepath.Join(t.TempDir(), "dtypes.safetensors")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{"format": "pt", "note": "ünï \"quoted\" \\ \n", "empty": ""}
	if err := safetensors.Write(context.Background(), f, meta, ts); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	checkSafetensors(t, path)
}
