package interop

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// TestPythonCheckerRejects makes sure the independent checker is not
// vacuous: each hand-made file breaks one rule and must be reported.
func TestPythonCheckerRejects(t *testing.T) {
	requirePython(t)
	for name, c := range map[string]struct {
		header string
		data   int
		want   string
	}{
		"gap":       {`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, 12, "gap"},
		"overlap":   {`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12, "overlaps"},
		"size":      {`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4, "expected 8"},
		"trailing":  {`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, 6, "data ends at"},
		"duplicate": {`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1, "more than once"},
		"dtype":     {`{"a":{"dtype":"Q4_0","shape":[1],"data_offsets":[0,1]}}`, 1, "unknown dtype"},
	} {
		t.Run(name, func(t *testing.T) {
			h := []byte(c.header)
			for len(h)%8 != 0 {
				h = append(h, ' ')
			}
			b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
			b = append(append(b, h...), make([]byte, c.data)...)
			path := filepath.Join(t.TempDir(), "bad.safetensors")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var p pyReport
			runJSON(t, &p, true, python, pyChecker, path)
			if !strings.Contains(strings.Join(p.Errors, "\n"), c.want) {
				t.Errorf("errors %q, want one mentioning %q", p.Errors, c.want)
			}
		})
	}
}

// TestSameJSON makes sure the GGUF comparison notices differences.
func TestSameJSON(t *testing.T) {
	for _, c := range []struct {
		v    formats.Value
		raw  string
		same bool
	}{
		{formats.ValUint32(7), `7`, true},
		{formats.ValUint32(7), `8`, false},
		{formats.ValUint64(1 << 60), `"1152921504606846976"`, true},
		{formats.ValInt64(-1), `"-2"`, false},
		{formats.ValFloat32(1e-5), `0.000009999999747378752`, true},
		{formats.ValFloat32(1e-5), `0.00001`, false},
		{formats.ValString("llama"), `"llama"`, true},
		{formats.ValString("llama"), `"llam"`, false},
		{formats.ValBool(true), `true`, true},
		{formats.ValBool(true), `false`, false},
		{formats.ValArray([]string{"a", "b"}), `["a","b"]`, true},
		{formats.ValArray([]string{"a", "b"}), `["a"]`, false},
		{formats.ValArray([]int32{1, 2}), `[1,3]`, false},
		{formats.ValArray([]float32{0.5}), `[0.5]`, true},
	} {
		err := sameJSON(c.v, json.RawMessage(c.raw))
		if (err == nil) != c.same {
			t.Errorf("sameJSON(%#v, %s) = %v, want same=%v", c.v, c.raw, err, c.same)
		}
	}
}
