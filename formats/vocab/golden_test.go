package vocab

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
)

var update = flag.Bool("update", false, "regenerate testdata/golden-*.json from the GGUFs under ../../../shared/goldens")

// sharedGoldens is where the reference GGUFs live (outside the module); only
// -update reads them.
const sharedGoldens = "../../../shared/goldens"

// keyRecord is one tokenizer key of a GGUF as the golden files record it:
// its exact GGUF type, and its value (scalars) or element count, first
// elements and a sha256 over the GGUF encoding of the elements (arrays).
type keyRecord struct {
	Key    string          `json:"key"`
	Type   string          `json:"type"`
	Elem   string          `json:"elem,omitempty"`
	Count  int             `json:"count,omitempty"`
	Head   json.RawMessage `json:"head,omitempty"`
	SHA256 string          `json:"sha256,omitempty"`
	Value  json.RawMessage `json:"value,omitempty"`
}

type goldenFile struct {
	Source string      `json:"source"`
	SHA256 string      `json:"source_sha256"`
	Note   string      `json:"note"`
	Keys   []keyRecord `json:"keys"`
}

// tokenizerRecords lists m's tokenizer keys in order.
func tokenizerRecords(t *testing.T, m *formats.Meta) []keyRecord {
	t.Helper()
	var out []keyRecord
	for _, kv := range m.KVs() {
		if !isTokenizerKey(kv.Key) {
			continue
		}
		v := kv.Value
		r := keyRecord{Key: kv.Key, Type: v.Type.String()}
		if v.Type != formats.TypeArray {
			r.Value = mustJSON(t, v.V)
		} else {
			r.Elem = v.Elem.String()
			r.Count = v.Len()
			r.SHA256 = arrayDigest(t, v)
			r.Head = mustJSON(t, head(v.V))
		}
		out = append(out, r)
	}
	return out
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		t.Fatal(err)
	}
	return json.RawMessage(bytes.TrimSpace(b.Bytes()))
}

func head(s any) any {
	const n = 8
	switch x := s.(type) {
	case []string:
		return x[:min(n, len(x))]
	case []float32:
		return x[:min(n, len(x))]
	case []int32:
		return x[:min(n, len(x))]
	}
	return nil
}

// arrayDigest hashes the elements as GGUF stores them: strings as a u64
// length and the bytes, numbers little-endian.
func arrayDigest(t *testing.T, v formats.Value) string {
	t.Helper()
	h := sha256.New()
	var buf [8]byte
	switch x := v.V.(type) {
	case []string:
		for _, s := range x {
			binary.LittleEndian.PutUint64(buf[:], uint64(len(s)))
			h.Write(buf[:])
			h.Write([]byte(s))
		}
	case []float32:
		for _, f := range x {
			binary.LittleEndian.PutUint32(buf[:4], math.Float32bits(f))
			h.Write(buf[:4])
		}
	case []int32:
		for _, i := range x {
			binary.LittleEndian.PutUint32(buf[:4], uint32(i))
			h.Write(buf[:4])
		}
	default:
		t.Fatalf("unexpected array %T", v.V)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkGolden compares the tokenizer keys ToMeta writes for v with the
// golden's, type for type, value for value, in order. With -update it first
// rewrites the golden from the reference GGUF.
func checkGolden(t *testing.T, v *Vocab, golden, source, note string) {
	t.Helper()
	path := filepath.Join("testdata", golden)
	if *update {
		src := filepath.Join(sharedGoldens, source)
		r, err := gguf.Open(src)
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(raw)
		g := goldenFile{Source: "shared/goldens/" + source, SHA256: hex.EncodeToString(sum[:]), Note: note,
			Keys: tokenizerRecords(t, r.Meta())}
		r.Close()
		var b bytes.Buffer
		e := json.NewEncoder(&b)
		e.SetEscapeHTML(false)
		e.SetIndent("", "  ")
		if err := e.Encode(g); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	m := formats.NewMeta()
	m.Set("general.architecture", formats.ValString("llama"))
	v.ToMeta(m)
	got := tokenizerRecords(t, m)
	var gotKeys, wantKeys []string
	for _, r := range got {
		gotKeys = append(gotKeys, r.Key)
	}
	for _, r := range g.Keys {
		wantKeys = append(wantKeys, r.Key)
	}
	if strings.Join(gotKeys, ",") != strings.Join(wantKeys, ",") {
		t.Fatalf("key order differs from %s:\n got %v\nwant %v", g.Source, gotKeys, wantKeys)
	}
	for i := range got {
		a, b := mustJSON(t, got[i]), mustJSON(t, canonical(t, g.Keys[i]))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s:\n got %s\nwant %s", got[i].Key, g.Source, a, b)
		}
	}
}

// canonical re-encodes a record read from JSON so that it compares byte for
// byte with a freshly computed one.
func canonical(t *testing.T, r keyRecord) keyRecord {
	if r.Value != nil {
		var x any
		if err := json.Unmarshal(r.Value, &x); err != nil {
			t.Fatal(err)
		}
		r.Value = mustJSON(t, x)
	}
	if r.Head != nil {
		var x any
		if err := json.Unmarshal(r.Head, &x); err != nil {
			t.Fatal(err)
		}
		r.Head = mustJSON(t, x)
	}
	return r
}

// stories260K-hf (the fixture folder) converts to exactly the tokenizer
// keys llama.cpp's convert_hf_to_gguf.py wrote into
// stories260K-from-hf-f32.gguf.
func TestGoldenStories260KFromHF(t *testing.T) {
	v, err := FromHFFolder("../../fixtures/stories260K-hf")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, v, "golden-stories260K-from-hf.json", "convert/stories260K-from-hf-f32.gguf",
		"tokenizer.* keys of llama.cpp convert_hf_to_gguf.py's output for fixtures/stories260K-hf, extracted with qtool's gguf reader")
}

// The OpenLLaMA tokenizer.model with the config described in
// shared/goldens/tokenize/README.md converts to exactly the tokenizer keys of
// openllama-vocab.gguf (convert_hf_to_gguf.py --vocab-only).
func TestGoldenOpenLLaMA(t *testing.T) {
	v, err := FromHFFolder("testdata/openllama")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, v, "golden-openllama-vocab.json", "tokenize/openllama-vocab.gguf",
		"tokenizer.* keys of llama.cpp convert_hf_to_gguf.py --vocab-only's output for the OpenLLaMA tokenizer.model, extracted with qtool's gguf reader")
}
