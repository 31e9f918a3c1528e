package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// harmless lists the metadata keys in which qtool's conversion of
// fixtures/stories260K-hf may differ from llama.cpp's converter output
// (testdata/README.md says why). Every other key must be equal in type,
// value and position, and then the files must be byte-identical.
var harmless = map[string]string{}

// The HF folder converts to llama.cpp's converter output: the same tensors
// in the same order with the same bytes, and the same metadata except the
// keys in harmless; the f32 and f16 outputs.
func TestStoriesHFMatchesLlamaCppConverter(t *testing.T) {
	for _, c := range []struct {
		golden string
		dtype  formats.DType
	}{{goldenF32, formats.F32}, {goldenF16, formats.F16}} {
		t.Run(c.dtype.String(), func(t *testing.T) {
			m := openHF(t, storiesHF)
			out, rep := hfToGGUFFile(t, m, Options{DType: c.dtype})
			want, got := openGGUF(t, c.golden), openGGUF(t, out)
			if len(rep.Permuted) != 10 {
				t.Errorf("%d tensors permuted, want 10 (q and k of 5 layers)", len(rep.Permuted))
			}
			wt, gt := want.Tensors(), got.Tensors()
			if len(wt) != len(gt) {
				t.Fatalf("%d tensors, want %d", len(gt), len(wt))
			}
			for i := range wt {
				if wt[i].Name != gt[i].Name || wt[i].DType != gt[i].DType || !equalShape(wt[i].Shape, gt[i].Shape) {
					t.Errorf("tensor %d: %s %v %v, want %s %v %v", i, gt[i].Name, gt[i].DType, gt[i].Shape, wt[i].Name, wt[i].DType, wt[i].Shape)
					continue
				}
				if !bytes.Equal(tensorBytes(t, want, wt[i].Name), tensorBytes(t, got, gt[i].Name)) {
					t.Errorf("tensor %s: bytes differ from llama.cpp's converter", wt[i].Name)
				}
			}
			diffs := compareMeta(want.Meta(), got.Meta())
			for _, d := range diffs {
				if _, ok := harmless[d.key]; !ok {
					t.Errorf("metadata %s: %s", d.key, d.what)
				} else {
					t.Logf("metadata %s (allowed: %s): %s", d.key, harmless[d.key], d.what)
				}
			}
			if len(diffs) == 0 {
				a, _ := os.ReadFile(c.golden)
				b, _ := os.ReadFile(out)
				if !bytes.Equal(a, b) {
					t.Errorf("metadata and tensors equal but the files differ (%d vs %d bytes)", len(b), len(a))
				} else {
					t.Logf("byte-identical to llama.cpp's %s", filepath.Base(c.golden))
				}
			}
		})
	}
}

type metaDiff struct{ key, what string }

// compareMeta lists the keys that differ between want and got: missing,
// extra, of another type or value, or in another position.
func compareMeta(want, got *formats.Meta) []metaDiff {
	var out []metaDiff
	pos := map[string]int{}
	for i, kv := range got.KVs() {
		pos[kv.Key] = i
	}
	for i, kv := range want.KVs() {
		g, ok := got.Get(kv.Key)
		switch {
		case !ok:
			out = append(out, metaDiff{kv.Key, "missing"})
		case g.Type != kv.Value.Type || g.Elem != kv.Value.Elem:
			out = append(out, metaDiff{kv.Key, fmt.Sprintf("type %v/%v, want %v/%v", g.Type, g.Elem, kv.Value.Type, kv.Value.Elem)})
		case !reflect.DeepEqual(g.V, kv.Value.V) && !sameFloatBits(g.V, kv.Value.V):
			out = append(out, metaDiff{kv.Key, fmt.Sprintf("value %s, want %s", short(g.V), short(kv.Value.V))})
		case pos[kv.Key] != i:
			out = append(out, metaDiff{kv.Key, fmt.Sprintf("at position %d, want %d", pos[kv.Key], i)})
		}
	}
	for _, kv := range got.KVs() {
		if !want.Has(kv.Key) {
			out = append(out, metaDiff{kv.Key, "extra: " + short(kv.Value.V)})
		}
	}
	return out
}

// sameFloatBits compares float arrays by bits (NaN-safe).
func sameFloatBits(a, b any) bool {
	x, ok1 := a.([]float32)
	y, ok2 := b.([]float32)
	if !ok1 || !ok2 || len(x) != len(y) {
		return false
	}
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			return false
		}
	}
	return true
}

func short(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// Issue requirement 4: stories260K.gguf → HF folder → GGUF reproduces every
// tensor byte for byte, and the hyper-parameters survive.
func TestStoriesGGUFRoundTrip(t *testing.T) {
	orig := openGGUF(t, storiesGGUF)
	dir, out := ggufToHFFolder(t, orig, Options{}, "stories260K-rt", 0)
	if len(out.Report.Permuted) != 10 {
		t.Errorf("%d tensors un-permuted, want 10", len(out.Report.Permuted))
	}
	// The HF tensors equal the independently written HF folder's; its
	// safetensors file, config.json and generation_config.json are even
	// byte-identical.
	sameTensors(t, openFolder(t, storiesHF), openFolder(t, dir), nil)
	for _, f := range []string{"model.safetensors", "config.json", "generation_config.json"} {
		a, _ := os.ReadFile(filepath.Join(storiesHF, f))
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from fixtures/stories260K-hf/%s", f, f)
		}
	}

	m := openHF(t, dir)
	back, _ := hfToGGUFFile(t, m, Options{})
	got := openGGUF(t, back)
	sameTensors(t, orig, got, nil)

	// Hyper-parameters and vocabulary keys survive.
	for _, kv := range orig.Meta().KVs() {
		if lost[kv.Key] != "" {
			continue
		}
		g, ok := got.Meta().Get(kv.Key)
		if !ok || g.Type != kv.Value.Type || (!reflect.DeepEqual(g.V, kv.Value.V) && !sameFloatBits(g.V, kv.Value.V)) {
			t.Errorf("metadata %s did not survive GGUF → HF → GGUF: %v → %v", kv.Key, short(kv.Value.V), short(g.V))
		}
	}
}

// lost are the keys of stories260K.gguf that a Hugging Face folder cannot
// carry (testdata/README.md).
var lost = map[string]string{
	"general.name": "HF folders have no model name; the GGUF gets the folder's",
	// 4294967295 is -1 as UINT32: "no such token", which is also what
	// llama.cpp assumes when the key is absent. Hugging Face tokenizer
	// files have no separator token for Llama and express "no padding
	// token" as null, which the converter does not write.
	"tokenizer.ggml.seperator_token_id": "llama.cpp's 'none' value; HF has no separator token",
	"tokenizer.ggml.padding_token_id":   "llama.cpp's 'none' value; HF writes no pad token",
}

// HF → GGUF → HF gives back the same tensors and config values.
func TestStoriesHFRoundTrip(t *testing.T) {
	src := openHF(t, storiesHF)
	p, _ := hfToGGUFFile(t, src, Options{})
	dir, _ := ggufToHFFolder(t, openGGUF(t, p), Options{}, "stories260K-back", 0)
	sameTensors(t, openFolder(t, storiesHF), openFolder(t, dir), nil)
	sameConfig(t, filepath.Join(storiesHF, "config.json"), filepath.Join(dir, "config.json"))
	sameConfig(t, filepath.Join(storiesHF, "generation_config.json"), filepath.Join(dir, "generation_config.json"))
}

// sameConfig checks that every key of the original config.json has an
// equal value in the converted one (numbers compared as numbers).
func sameConfig(t testing.TB, origPath, gotPath string) {
	t.Helper()
	var a, b map[string]any
	for _, x := range []struct {
		p string
		v *map[string]any
	}{{origPath, &a}, {gotPath, &b}} {
		raw, err := os.ReadFile(x.p)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, x.v); err != nil {
			t.Fatalf("%s: %v", x.p, err)
		}
	}
	for k, v := range a {
		if !reflect.DeepEqual(v, b[k]) {
			t.Errorf("%s: %s = %v, want %v", filepath.Base(gotPath), k, b[k], v)
		}
	}
}
