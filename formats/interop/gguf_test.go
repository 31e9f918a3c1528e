package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/formattest"
	"github.com/qtool-dev/qtool/formats/gguf"
)

// nodeDump is what dump-gguf.mjs prints.
type nodeDump struct {
	Metadata map[string]json.RawMessage `json:"metadata"`
	Types    map[string]struct {
		Type    formats.ValueType  `json:"type"`
		SubType *formats.ValueType `json:"subType"`
	} `json:"types"`
	TensorInfos []struct {
		Name   string   `json:"name"`
		NDims  int      `json:"n_dims"`
		Shape  []string `json:"shape"`
		DType  uint32   `json:"dtype"`
		Offset string   `json:"offset"`
	} `json:"tensorInfos"`
	TensorDataOffset string `json:"tensorDataOffset"`
}

// pseudoKeys are header fields @huggingface/gguf reports among the
// metadata; they are not KV pairs.
var pseudoKeys = map[string]bool{"version": true, "tensor_count": true, "kv_count": true}

// checkGGUF reads path with qtool and with @huggingface/gguf and requires
// them to agree on every tensor info and every KV.
func checkGGUF(t *testing.T, path string) {
	t.Helper()
	r, err := gguf.Open(path)
	if err != nil {
		t.Fatalf("gguf.Open: %v", err)
	}
	defer r.Close()
	var d nodeDump
	runJSON(t, &d, false, "node", nodeScript, path)

	if got := string(d.Metadata["version"]); got != strconv.Itoa(int(r.Version())) {
		t.Errorf("version: node %s, qtool %d", got, r.Version())
	}
	if d.TensorDataOffset != strconv.FormatInt(r.DataStart(), 10) {
		t.Errorf("data start: node %s, qtool %d", d.TensorDataOffset, r.DataStart())
	}

	ts := r.Tensors()
	if len(d.TensorInfos) != len(ts) {
		t.Fatalf("node sees %d tensors, qtool %d", len(d.TensorInfos), len(ts))
	}
	for i, ti := range ts {
		n := d.TensorInfos[i]
		if n.Name != ti.Name {
			t.Errorf("tensor %d: node %q, qtool %q", i, n.Name, ti.Name)
			continue
		}
		if id, ok := ti.DType.GGMLType(); !ok || id != n.DType {
			t.Errorf("%s: node type %d, qtool %v (ggml %d)", ti.Name, n.DType, ti.DType, id)
		}
		// GGUF stores ne0 (innermost) first; qtool's Shape is row-major.
		want := make([]string, len(ti.Shape))
		for j, s := range ti.Shape {
			want[len(ti.Shape)-1-j] = strconv.FormatInt(s, 10)
		}
		if n.NDims != len(n.Shape) || !reflect.DeepEqual(n.Shape, want) {
			t.Errorf("%s: node dims %v (n_dims %d), qtool shape %v", ti.Name, n.Shape, n.NDims, ti.Shape)
		}
		off, err := strconv.ParseInt(n.Offset, 10, 64)
		if err != nil || r.DataStart()+off != ti.Offset {
			t.Errorf("%s: node offset %s + %s, qtool absolute offset %d", ti.Name, d.TensorDataOffset, n.Offset, ti.Offset)
		}
	}

	kvs := r.Meta().KVs()
	var nodeKeys int
	for k := range d.Metadata {
		if !pseudoKeys[k] {
			nodeKeys++
		}
	}
	if nodeKeys != len(kvs) || string(d.Metadata["kv_count"]) != fmt.Sprintf("%q", strconv.Itoa(len(kvs))) {
		t.Errorf("node sees %d keys (kv_count %s), qtool %d", nodeKeys, d.Metadata["kv_count"], len(kvs))
	}
	for _, kv := range kvs {
		raw, ok := d.Metadata[kv.Key]
		if !ok {
			t.Errorf("%s: missing for node", kv.Key)
			continue
		}
		ty := d.Types[kv.Key]
		if ty.Type != kv.Value.Type {
			t.Errorf("%s: node type %v, qtool %v", kv.Key, ty.Type, kv.Value.Type)
		}
		if kv.Value.Type == formats.TypeArray && (ty.SubType == nil || *ty.SubType != kv.Value.Elem) {
			t.Errorf("%s: node element type %v, qtool %v", kv.Key, ty.SubType, kv.Value.Elem)
		}
		if err := sameJSON(kv.Value, raw); err != nil {
			t.Errorf("%s: %v", kv.Key, err)
		}
	}
}

// sameJSON compares a qtool value with the JSON node printed for it.
func sameJSON(v formats.Value, raw json.RawMessage) error {
	if v.Type == formats.TypeArray {
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return fmt.Errorf("node value %.40s is not an array: %v", raw, err)
		}
		if len(elems) != v.Len() {
			return fmt.Errorf("node has %d elements, qtool %d", len(elems), v.Len())
		}
		s := reflect.ValueOf(v.V)
		for i := range elems {
			var e formats.Value
			if v.Elem == formats.TypeArray {
				e = s.Index(i).Interface().(formats.Value)
			} else {
				e = formats.Value{Type: v.Elem, V: s.Index(i).Interface()}
			}
			if err := sameJSON(e, elems[i]); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return nil
	}
	var got any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		return err
	}
	var want any
	switch x := v.V.(type) {
	case string, bool:
		want = x
	case uint64, int64: // BigInt, printed as a string
		want = fmt.Sprint(x)
	case float32, float64:
		f := reflect.ValueOf(x).Float()
		switch {
		case math.IsNaN(f):
			want = "NaN"
		case math.IsInf(f, 1):
			want = "Infinity"
		case math.IsInf(f, -1):
			want = "-Infinity"
		}
		if want != nil {
			break
		}
		n, ok := got.(json.Number)
		if !ok {
			return fmt.Errorf("node %s, qtool %v", raw, f)
		}
		g, err := strconv.ParseFloat(string(n), 64)
		if err != nil || g != f {
			return fmt.Errorf("node %s, qtool %v", raw, f)
		}
		return nil
	default: // 8- to 32-bit integers: JSON numbers
		want = json.Number(fmt.Sprint(x))
	}
	if got != want {
		return fmt.Errorf("node %s, qtool %#v", raw, v.V)
	}
	return nil
}

func TestGGUFSynthetic(t *testing.T) {
	requireNode(t)
	for _, d := range []formats.DType{formats.F32, formats.F16, formats.BF16} {
		t.Run(d.String(), func(t *testing.T) {
			c, _ := fixtures.Preset("tiny")
			c.DType = d
			c.TiedEmbeddings = d == formats.BF16
			path := filepath.Join(t.TempDir(), "tiny.gguf")
			if err := fixtures.WriteGGUF(context.Background(), path, c, false); err != nil {
				t.Fatal(err)
			}
			checkGGUF(t, path)
		})
	}
}

// TestGGUFStories260K runs the real model through gguf.Open → gguf.Write
// and checks both the original (written by llama.cpp's tools) and the copy.
func TestGGUFStories260K(t *testing.T) {
	requireNode(t)
	orig := filepath.Join("..", "..", "fixtures", "stories260K", "stories260K.gguf")
	src, err := gguf.Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), "copy.gguf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := gguf.Write(context.Background(), f, src.Meta(), formattest.Tensors(t, src), gguf.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("original", func(t *testing.T) { checkGGUF(t, orig) })
	t.Run("rewritten", func(t *testing.T) { checkGGUF(t, path) })
	cp, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if diff := formattest.Equal(src, cp, true); diff != "" {
		t.Errorf("rewrite differs: %s", diff)
	}
	a, _ := os.ReadFile(orig)
	b, _ := os.ReadFile(path)
	if sha256.Sum256(a) != sha256.Sum256(b) {
		t.Errorf("rewrite is not byte-identical to the llama.cpp-written original (%d vs %d bytes)", len(a), len(b))
	}
}
