package gguf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// The manifests beside the golden files were computed by the golden
// generator's own parser (see testdata/README.md); this file checks the
// reader against them field by field.

type manifest struct {
	Version       uint32           `json:"version"`
	NKV           int              `json:"n_kv"`
	NTensors      int              `json:"n_tensors"`
	Alignment     int64            `json:"alignment"`
	TensorInfoEnd int64            `json:"tensor_info_end"`
	DataStart     int64            `json:"data_start"`
	Metadata      []manifestKV     `json:"metadata"`
	Tensors       []manifestTensor `json:"tensors"`
}

type manifestKV struct {
	Key           string          `json:"key"`
	Type          string          `json:"type"`
	Value         any             `json:"value"`
	Hex           any             `json:"hex"`
	Raw           *int            `json:"raw"`
	ElementType   string          `json:"element_type"`
	Count         *int            `json:"count"`
	PayloadSHA256 string          `json:"payload_sha256"`
	Elements      []manifestInner `json:"elements"`
	FileOffset    int64           `json:"file_offset"`
	NBytes        int64           `json:"nbytes"`
}

// manifestInner describes one inner array of an array of arrays.
type manifestInner struct {
	ElementType string          `json:"element_type"`
	Count       int             `json:"count"`
	Elements    []manifestInner `json:"elements"`
}

type manifestTensor struct {
	Name       string  `json:"name"`
	GGMLType   string  `json:"ggml_type"`
	GGMLTypeID uint32  `json:"ggml_type_id"`
	NDims      int     `json:"n_dims"`
	NE         []int64 `json:"ne"`
	Shape      []int64 `json:"shape"`
	Offset     int64   `json:"offset"`
	FileOffset int64   `json:"file_offset"`
	NBytes     int64   `json:"nbytes"`
	SHA256     string  `json:"sha256"`
}

func loadManifest(t *testing.T, name string) manifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m manifest
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s manifest: %v", name, err)
	}
	return m
}

func checkManifest(t *testing.T, r *Reader, m manifest) {
	t.Helper()
	if r.Version() != m.Version || r.Alignment() != m.Alignment ||
		r.TensorInfoEnd() != m.TensorInfoEnd || r.DataStart() != m.DataStart {
		t.Errorf("header: version %d align %d tie %d ds %d; manifest %d %d %d %d",
			r.Version(), r.Alignment(), r.TensorInfoEnd(), r.DataStart(),
			m.Version, m.Alignment, m.TensorInfoEnd, m.DataStart)
	}
	raw, err := os.ReadFile(r.Name())
	if err != nil {
		t.Fatal(err)
	}
	kvs := r.Meta().KVs()
	if len(kvs) != m.NKV || len(m.Metadata) != m.NKV {
		t.Fatalf("%d KVs, manifest %d", len(kvs), m.NKV)
	}
	for i, want := range m.Metadata {
		got := kvs[i]
		if got.Key != want.Key {
			t.Errorf("KV %d: key %q, want %q", i, got.Key, want.Key)
			continue
		}
		if err := checkKV(got.Value, want); err != nil {
			t.Errorf("KV %q: %v", want.Key, err)
		}
		// The pair re-encodes to exactly the bytes it was read from.
		e := &encoder{allowNested: true, maxNesting: 8}
		if err := e.kv(got.Key, got.Value); err != nil {
			t.Errorf("KV %q: encode: %v", want.Key, err)
		} else if end := want.FileOffset + want.NBytes; end > int64(len(raw)) || !bytes.Equal(e.b, raw[want.FileOffset:end]) {
			t.Errorf("KV %q: re-encodes to %d bytes that differ from the file's [%d, %d)", want.Key, len(e.b), want.FileOffset, end)
		}
	}
	ts := r.Tensors()
	if len(ts) != m.NTensors || len(m.Tensors) != m.NTensors {
		t.Fatalf("%d tensors, manifest %d", len(ts), m.NTensors)
	}
	for i, want := range m.Tensors {
		if err := checkManifestTensor(r, ts[i], want); err != nil {
			t.Errorf("tensor %d %q: %v", i, want.Name, err)
		}
	}
}

func checkKV(v formats.Value, want manifestKV) error {
	if v.Type.String() != want.Type {
		return fmt.Errorf("type %v, want %s", v.Type, want.Type)
	}
	if v.Type != formats.TypeArray {
		return checkScalar(v.V, want.Value, want.Hex, want.Raw)
	}
	if v.Elem.String() != want.ElementType || want.Count == nil || v.Len() != *want.Count {
		return fmt.Errorf("array of %d %v, want %v of %s", v.Len(), v.Elem, want.Count, want.ElementType)
	}
	e := &encoder{allowNested: true, maxNesting: 8}
	if err := e.array(v, 1); err != nil {
		return err
	}
	sum := sha256.Sum256(e.b[12:]) // after element type and count
	if hex.EncodeToString(sum[:]) != want.PayloadSHA256 {
		return fmt.Errorf("payload sha256 %x, want %s", sum, want.PayloadSHA256)
	}
	return checkArray(v, want.Value, want.Hex, want.Elements)
}

// checkArray compares an array's elements with the manifest's values
// (floats by their hex bits; nested arrays by their element structure).
func checkArray(v formats.Value, value, hexes any, inner []manifestInner) error {
	vals, _ := value.([]any)
	if len(vals) != v.Len() {
		return fmt.Errorf("%d elements, manifest lists %d", v.Len(), len(vals))
	}
	if nested, ok := v.V.([]formats.Value); ok {
		if len(inner) != len(nested) {
			return fmt.Errorf("%d inner arrays, manifest describes %d", len(nested), len(inner))
		}
		for i, in := range nested {
			if in.Type != formats.TypeArray || in.Elem.String() != inner[i].ElementType || in.Len() != inner[i].Count {
				return fmt.Errorf("inner %d: %v of %d, want %s of %d", i, in.Elem, in.Len(), inner[i].ElementType, inner[i].Count)
			}
			if err := checkArray(in, vals[i], nil, inner[i].Elements); err != nil {
				return fmt.Errorf("inner %d: %w", i, err)
			}
		}
		return nil
	}
	hs, _ := hexes.([]any)
	for i := range vals {
		var h any
		if i < len(hs) {
			h = hs[i]
		}
		if err := checkScalar(element(v.V, i), vals[i], h, nil); err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
	}
	return nil
}

// element returns element i of a typed slice as an interface value.
func element(s any, i int) any {
	switch x := s.(type) {
	case []uint8:
		return x[i]
	case []int8:
		return x[i]
	case []uint16:
		return x[i]
	case []int16:
		return x[i]
	case []uint32:
		return x[i]
	case []int32:
		return x[i]
	case []uint64:
		return x[i]
	case []int64:
		return x[i]
	case []float32:
		return x[i]
	case []float64:
		return x[i]
	case []bool:
		return x[i]
	case []string:
		return x[i]
	}
	return nil
}

// checkScalar compares one Go value with a manifest value: integers as
// exact decimal text, floats by IEEE bits, bools also by their raw byte.
func checkScalar(got, want, hexBits any, raw *int) error {
	switch g := got.(type) {
	case float32:
		if hexBits == nil { // inner arrays carry no hex: compare the parsed number
			f, err := parseNumber(want, 32)
			if err != nil || math.Float32bits(float32(f)) != math.Float32bits(g) {
				return fmt.Errorf("float32 %v, want %v", g, want)
			}
			return nil
		}
		if h := fmt.Sprintf("%08x", math.Float32bits(g)); h != hexBits {
			return fmt.Errorf("float32 bits %s, want %v", h, hexBits)
		}
	case float64:
		if hexBits == nil {
			f, err := parseNumber(want, 64)
			if err != nil || math.Float64bits(f) != math.Float64bits(g) {
				return fmt.Errorf("float64 %v, want %v", g, want)
			}
			return nil
		}
		if h := fmt.Sprintf("%016x", math.Float64bits(g)); h != hexBits {
			return fmt.Errorf("float64 bits %s, want %v", h, hexBits)
		}
	case bool:
		if w, ok := want.(bool); !ok || w != g {
			return fmt.Errorf("bool %v, want %v", g, want)
		}
		if raw != nil && (*raw != 0) != g {
			return fmt.Errorf("bool %v, raw byte %d", g, *raw)
		}
	case string:
		if w, ok := want.(string); !ok || w != g {
			return fmt.Errorf("string %q, want %q", g, want)
		}
	case uint8, int8, uint16, int16, uint32, int32, uint64, int64:
		if n, ok := want.(json.Number); !ok || n.String() != fmt.Sprint(g) {
			return fmt.Errorf("integer %v, want %v", g, want)
		}
	default:
		return fmt.Errorf("unexpected Go type %T", got)
	}
	return nil
}

func checkManifestTensor(r *Reader, ti formats.TensorInfo, want manifestTensor) error {
	id, _ := r.GGMLType(ti.Name)
	raw, _ := r.RawOffset(ti.Name)
	ne := make([]int64, len(ti.Shape))
	for i, d := range ti.Shape {
		ne[len(ne)-1-i] = d
	}
	got := fmt.Sprintln(ti.Name, ti.DType.String(), id, len(ti.Shape), ne, ti.Shape, raw, ti.Offset, ti.Size, ti.File)
	exp := fmt.Sprintln(want.Name, want.GGMLType, want.GGMLTypeID, want.NDims, want.NE, want.Shape, want.Offset, want.FileOffset, want.NBytes, filepath.Base(r.Name()))
	if got != exp {
		return fmt.Errorf("got  %s\nwant %s", got, exp)
	}
	b, err := r.Bytes(ti.Name)
	if err != nil {
		return err
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != want.SHA256 {
		return fmt.Errorf("sha256 %x, want %s", sum, want.SHA256)
	}
	return nil
}

func parseNumber(v any, bits int) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v is not a number", v)
	}
	return strconv.ParseFloat(n.String(), bits)
}
