package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// manifest is the part of the golden manifests (written by independent
// Python readers, see formats/*/testdata/README.md) that inspect reports.
type manifest struct {
	Metadata json.RawMessage `json:"metadata"`
	Tensors  []struct {
		Name       string  `json:"name"`
		GGMLType   string  `json:"ggml_type"`
		DType      string  `json:"dtype"`
		Shape      []int64 `json:"shape"`
		FileOffset int64   `json:"file_offset"`
		NBytes     int64   `json:"nbytes"`
	} `json:"tensors"`
}

type inspectDoc struct {
	Format   string `json:"format"`
	Metadata []struct {
		Key         string          `json:"key"`
		Type        string          `json:"type"`
		ElementType string          `json:"element_type"`
		Count       *int            `json:"count"`
		Value       json.RawMessage `json:"value"`
	} `json:"metadata"`
	Tensors []struct {
		Name   string  `json:"name"`
		DType  string  `json:"dtype"`
		Shape  []int64 `json:"shape"`
		Bytes  int64   `json:"bytes"`
		Offset int64   `json:"offset"`
	} `json:"tensors"`
	Totals struct {
		Tensors int   `json:"tensors"`
		Params  int64 `json:"parameters"`
		Bytes   int64 `json:"bytes"`
	} `json:"totals"`
}

func decode(t *testing.T, raw []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		t.Fatalf("decode: %v\n%.500s", err, raw)
	}
}

func inspectJSON(t *testing.T, path string) inspectDoc {
	t.Helper()
	code, out, errOut := run(t, "inspect", "--json", path)
	if code != ExitOK {
		t.Fatalf("inspect %s: exit %d: %s", path, code, errOut)
	}
	var doc inspectDoc
	decode(t, []byte(out), &doc)
	return doc
}

// sameJSON compares two decoded JSON values; numbers of a FLOAT32 key are
// compared after rounding both to float32 (Python prints the float64
// spelling of a float32, qtool the shortest float32 one).
func sameJSON(a, b any, f32 bool) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x.String() == y.String() {
			return true
		}
		fx, e1 := strconv.ParseFloat(x.String(), 64)
		fy, e2 := strconv.ParseFloat(y.String(), 64)
		if e1 != nil || e2 != nil {
			return false
		}
		if f32 {
			return math.Float32bits(float32(fx)) == math.Float32bits(float32(fy))
		}
		return math.Float64bits(fx) == math.Float64bits(fy)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i], f32) {
				return false
			}
		}
		return true
	default:
		return fmt.Sprint(a) == fmt.Sprint(b)
	}
}

func TestInspectJSONMatchesGGUFManifests(t *testing.T) {
	files := []string{"kv_all_types.gguf", "no_tensors.gguf", "nested_array.gguf", "tiny_llama.gguf"}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(ggufGoldens, name+".manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			var m manifest
			decode(t, raw, &m)
			var meta []struct {
				Key         string `json:"key"`
				Type        string `json:"type"`
				ElementType string `json:"element_type"`
				Value       any    `json:"value"`
			}
			decode(t, m.Metadata, &meta)
			doc := inspectJSON(t, filepath.Join(ggufGoldens, name))
			if doc.Format != "gguf" {
				t.Errorf("format %q", doc.Format)
			}
			if len(doc.Metadata) != len(meta) {
				t.Fatalf("%d metadata keys, manifest has %d", len(doc.Metadata), len(meta))
			}
			for i, want := range meta {
				got := doc.Metadata[i]
				if got.Key != want.Key || got.Type != want.Type || (want.ElementType != "" && got.ElementType != want.ElementType) {
					t.Errorf("kv %d: %s %s[%s], want %s %s[%s]", i, got.Key, got.Type, got.ElementType, want.Key, want.Type, want.ElementType)
					continue
				}
				var gv any
				decode(t, got.Value, &gv)
				f32 := want.Type == "FLOAT32" || want.ElementType == "FLOAT32" || want.ElementType == "ARRAY"
				if !sameJSON(gv, want.Value, f32) {
					t.Errorf("kv %s: value %.200v, want %.200v", want.Key, gv, want.Value)
				}
			}
			compareTensors(t, doc, m)
		})
	}
}

func compareTensors(t *testing.T, doc inspectDoc, m manifest) {
	t.Helper()
	if len(doc.Tensors) != len(m.Tensors) {
		t.Fatalf("%d tensors, manifest has %d", len(doc.Tensors), len(m.Tensors))
	}
	var total int64
	for i, want := range m.Tensors {
		got := doc.Tensors[i]
		dt := want.GGMLType
		if dt == "" {
			dt = want.DType
		}
		if got.Name != want.Name || got.DType != dt || fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) ||
			got.Offset != want.FileOffset || got.Bytes != want.NBytes {
			t.Errorf("tensor %d: %s %s %v @%d %dB; want %s %s %v @%d %dB", i,
				got.Name, got.DType, got.Shape, got.Offset, got.Bytes, want.Name, dt, want.Shape, want.FileOffset, want.NBytes)
		}
		total += want.NBytes
	}
	if doc.Totals.Bytes != total || doc.Totals.Tensors != len(m.Tensors) {
		t.Errorf("totals %+v, want %d bytes", doc.Totals, total)
	}
}

func TestInspectJSONMatchesSafetensorsManifests(t *testing.T) {
	cases := map[string]string{
		"all_dtypes.safetensors":        "all_dtypes.safetensors.manifest.json",
		"unpadded_unsorted.safetensors": "unpadded_unsorted.safetensors.manifest.json",
		filepath.Join("stories260K-sharded", "model-00001-of-00002.safetensors"): "stories260K-sharded.model-00001-of-00002.safetensors.manifest.json",
	}
	for file, man := range cases {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(stGoldens, man))
			if err != nil {
				t.Fatal(err)
			}
			var m manifest
			decode(t, raw, &m)
			doc := inspectJSON(t, filepath.Join(stGoldens, file))
			if doc.Format != "safetensors" {
				t.Errorf("format %q", doc.Format)
			}
			compareTensors(t, doc, m)
			var meta map[string]string
			if string(m.Metadata) != "null" {
				decode(t, m.Metadata, &meta)
			}
			if len(doc.Metadata) != len(meta) {
				t.Fatalf("metadata: %d keys, want %d", len(doc.Metadata), len(meta))
			}
			for _, e := range doc.Metadata {
				var s string
				json.Unmarshal(e.Value, &s)
				if meta[e.Key] != s || e.Type != "STRING" {
					t.Errorf("metadata %s = %q, want %q", e.Key, s, meta[e.Key])
				}
			}
		})
	}
}

func TestInspectFolderAndFilter(t *testing.T) {
	doc := inspectJSON(t, filepath.Join(stGoldens, "stories260K-sharded"))
	if doc.Format != "hf-folder" || doc.Totals.Tensors != 48 || doc.Totals.Bytes != 1171200 {
		t.Fatalf("folder: %s, %+v", doc.Format, doc.Totals)
	}
	code, out, _ := run(t, "inspect", "--json", "--tensors", "model.layers.0.*", filepath.Join(stGoldens, "stories260K-sharded"))
	var f inspectDoc
	decode(t, []byte(out), &f)
	if code != ExitOK || f.Totals.Tensors != 9 {
		t.Errorf("glob filter kept %d tensors, want 9", f.Totals.Tensors)
	}
	code, out, _ = run(t, "inspect", "--json", "--tensors", `^model\.layers\.(0|1)\.mlp\.`, filepath.Join(stGoldens, "stories260K-sharded"))
	decode(t, []byte(out), &f)
	if code != ExitOK || f.Totals.Tensors != 6 {
		t.Errorf("regexp filter kept %d tensors, want 6", f.Totals.Tensors)
	}
}
