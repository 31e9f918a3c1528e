package safetensors

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// manifest is a golden's manifest (see testdata/README.md and the
// goldens README, "Manifests").
type manifest struct {
	File           string          `json:"file"`
	Size           int64           `json:"size"`
	SHA256         string          `json:"sha256"`
	HeaderLength   int64           `json:"header_length"`
	DataStart      int64           `json:"data_start"`
	HeaderKeyOrder []string        `json:"header_key_order"`
	Metadata       json.RawMessage `json:"metadata"`
	Tensors        []struct {
		Name        string   `json:"name"`
		DType       string   `json:"dtype"`
		Shape       []int64  `json:"shape"`
		NElements   int64    `json:"n_elements"`
		DataOffsets [2]int64 `json:"data_offsets"`
		FileOffset  int64    `json:"file_offset"`
		NBytes      int64    `json:"nbytes"`
		SHA256      string   `json:"sha256"`
		RawValues   []any    `json:"values"`
	} `json:"tensors"`
}

// goldenFile pairs a golden with its manifest.
type goldenFile struct{ path, manifest string }

var goldens = []goldenFile{
	{"testdata/all_dtypes.safetensors", "testdata/all_dtypes.safetensors.manifest.json"},
	{"testdata/unpadded_unsorted.safetensors", "testdata/unpadded_unsorted.safetensors.manifest.json"},
	{"testdata/stories260K-sharded/model-00001-of-00002.safetensors", "testdata/stories260K-sharded.model-00001-of-00002.safetensors.manifest.json"},
	{"testdata/stories260K-sharded/model-00002-of-00002.safetensors", "testdata/stories260K-sharded.model-00002-of-00002.safetensors.manifest.json"},
}

func loadManifest(t testing.TB, path string) *manifest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // u64 max and i64 min must survive exactly
	var m manifest
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &m
}

// orderedMetadata decodes the manifest's metadata object keeping key order.
func orderedMetadata(t *testing.T, raw json.RawMessage) [][2]string {
	t.Helper()
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var out [][2]string
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err1 := dec.Token()
		v, err2 := dec.Token()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		out = append(out, [2]string{k.(string), v.(string)})
	}
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestManifests checks the reader against every manifest: layout, metadata,
// key order, bytes, and the decoded values where the manifest lists them.
func TestManifests(t *testing.T) {
	for _, g := range goldens {
		t.Run(filepath.Base(g.path), func(t *testing.T) {
			m := loadManifest(t, g.manifest)
			r, err := Open(g.path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Size() != m.Size || r.HeaderLen() != m.HeaderLength || r.DataStart() != m.DataStart {
				t.Errorf("size %d N %d start %d, manifest %d %d %d", r.Size(), r.HeaderLen(), r.DataStart(), m.Size, m.HeaderLength, m.DataStart)
			}
			if !reflect.DeepEqual(r.HeaderKeyOrder(), m.HeaderKeyOrder) {
				t.Errorf("key order %q, want %q", r.HeaderKeyOrder(), m.HeaderKeyOrder)
			}
			want := orderedMetadata(t, m.Metadata)
			var got [][2]string
			for _, kv := range r.Meta().KVs() {
				if kv.Value.Type != formats.TypeString {
					t.Errorf("metadata %q has type %v", kv.Key, kv.Value.Type)
				}
				got = append(got, [2]string{kv.Key, kv.Value.V.(string)})
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("metadata %q, want %q", got, want)
			}
			if md := r.Metadata(); len(md) != len(want) {
				t.Errorf("Metadata() has %d keys, want %d", len(md), len(want))
			}
			ts := r.Tensors()
			if len(ts) != len(m.Tensors) {
				t.Fatalf("%d tensors, manifest %d", len(ts), len(m.Tensors))
			}
			for i, mt := range m.Tensors {
				ti := ts[i]
				if ti.Name != mt.Name || ti.DType.String() != mt.DType || !reflect.DeepEqual(ti.Shape, mt.Shape) {
					t.Errorf("tensor %d: %q %v %v, manifest %q %s %v", i, ti.Name, ti.DType, ti.Shape, mt.Name, mt.DType, mt.Shape)
				}
				if n, _ := ti.NumElements(); n != mt.NElements {
					t.Errorf("%s: %d elements, manifest %d", mt.Name, n, mt.NElements)
				}
				if ti.Offset != mt.FileOffset || ti.Size != mt.NBytes || ti.Offset-r.DataStart() != mt.DataOffsets[0] ||
					ti.Offset+ti.Size-r.DataStart() != mt.DataOffsets[1] {
					t.Errorf("%s: offset %d size %d, manifest file_offset %d nbytes %d data_offsets %v", mt.Name, ti.Offset, ti.Size, mt.FileOffset, mt.NBytes, mt.DataOffsets)
				}
				if ti.File != filepath.Base(g.path) {
					t.Errorf("%s: File %q", mt.Name, ti.File)
				}
				b, err := r.Bytes(ti.Name)
				if err != nil {
					t.Fatal(err)
				}
				if sha(b) != mt.SHA256 {
					t.Errorf("%s: sha256 differs", mt.Name)
				}
				if mt.RawValues != nil {
					checkValues(t, ti, b, mt.RawValues)
				}
			}
		})
	}
}

// checkValues compares decoded tensor bytes with the manifest's values,
// exactly (floats bit for bit, with NaN equal to NaN).
func checkValues(t *testing.T, ti formats.TensorInfo, b []byte, want []any) {
	t.Helper()
	w := ti.DType.BlockBytes()
	if int64(len(want))*w != int64(len(b)) {
		t.Errorf("%s: %d values for %d bytes", ti.Name, len(want), len(b))
		return
	}
	for i, v := range want {
		e := b[int64(i)*w : int64(i+1)*w]
		var ok bool
		switch ti.DType {
		case formats.Bool:
			ok = e[0] <= 1 && (e[0] == 1) == v.(bool)
		case formats.I8, formats.I16, formats.I32, formats.I64:
			x, err := strconv.ParseInt(string(v.(json.Number)), 10, 64)
			ok = err == nil && x == signedLE(e)
		case formats.U8, formats.U16, formats.U32, formats.U64:
			x, err := strconv.ParseUint(string(v.(json.Number)), 10, 64)
			ok = err == nil && x == unsignedLE(e)
		default:
			ok = sameFloat(decodeFloat(ti.DType, e), v)
		}
		if !ok {
			t.Errorf("%s[%d]: bytes %x, manifest %v", ti.Name, i, e, v)
		}
	}
}

func unsignedLE(e []byte) uint64 {
	var buf [8]byte
	copy(buf[:], e)
	return binary.LittleEndian.Uint64(buf[:])
}

func signedLE(e []byte) int64 {
	u := unsignedLE(e)
	shift := 64 - 8*len(e)
	return int64(u<<shift) >> shift
}

// sameFloat compares a decoded value with a manifest value: a number
// (exactly, sign of zero included) or "nan", "inf", "-inf".
func sameFloat(got float64, want any) bool {
	switch w := want.(type) {
	case string:
		switch w {
		case "nan":
			return math.IsNaN(got)
		case "inf":
			return math.IsInf(got, 1)
		case "-inf":
			return math.IsInf(got, -1)
		}
		return false
	case json.Number:
		f, err := strconv.ParseFloat(string(w), 64)
		return err == nil && math.Float64bits(f) == math.Float64bits(got)
	}
	return false
}

// decodeFloat is the test oracle for the float dtypes, used only to compare
// with the manifests (formats moves bytes; it never decodes them).
func decodeFloat(d formats.DType, e []byte) float64 {
	u := unsignedLE(e)
	switch d {
	case formats.F64:
		return math.Float64frombits(u)
	case formats.F32:
		return float64(math.Float32frombits(uint32(u)))
	case formats.BF16:
		return float64(math.Float32frombits(uint32(u) << 16))
	case formats.F16:
		return minifloat(u, 5, 10, true)
	case formats.F8E5M2:
		return minifloat(u, 5, 2, true)
	case formats.F8E4M3:
		return minifloat(u, 4, 3, false)
	}
	return math.NaN()
}

// minifloat decodes a sign/exponent/mantissa float of the given widths.
// ieee selects IEEE special values (all-ones exponent = Inf or NaN);
// otherwise it is the OCP E4M3FN rule: only all-ones exponent and mantissa
// is NaN, and there is no infinity.
func minifloat(u uint64, ebits, mbits uint, ieee bool) float64 {
	sign := 1.0
	if u>>(ebits+mbits)&1 == 1 {
		sign = -1
	}
	emax := uint64(1)<<ebits - 1
	e := u >> mbits & emax
	m := u & (1<<mbits - 1)
	bias := int(1)<<(ebits-1) - 1
	switch {
	case ieee && e == emax && m == 0:
		return math.Inf(int(sign))
	case ieee && e == emax, !ieee && e == emax && m == 1<<mbits-1:
		return math.NaN()
	case e == 0:
		return sign * math.Ldexp(float64(m), 1-bias-int(mbits))
	}
	return sign * math.Ldexp(float64(m|1<<mbits), int(e)-bias-int(mbits))
}

// TestOracle pins the decoders on values whose bits are known by heart.
func TestOracle(t *testing.T) {
	for _, c := range []struct {
		d    formats.DType
		bits []byte
		want float64
	}{
		{formats.F16, []byte{0x00, 0x3c}, 1},
		{formats.F16, []byte{0xff, 0x7b}, 65504},
		{formats.F16, []byte{0x01, 0x00}, math.Ldexp(1, -24)},
		{formats.BF16, []byte{0x80, 0x3f}, 1},
		{formats.F8E4M3, []byte{0x7e}, 448},
		{formats.F8E4M3, []byte{0x01}, math.Ldexp(1, -9)},
		{formats.F8E5M2, []byte{0x7b}, 57344},
		{formats.F8E5M2, []byte{0x3c}, 1},
	} {
		if got := decodeFloat(c.d, c.bits); got != c.want {
			t.Errorf("%v %x = %v, want %v", c.d, c.bits, got, c.want)
		}
	}
	if !math.IsNaN(decodeFloat(formats.F8E4M3, []byte{0xff})) || !math.IsInf(decodeFloat(formats.F8E5M2, []byte{0xfc}), -1) {
		t.Error("F8 special values")
	}
}
