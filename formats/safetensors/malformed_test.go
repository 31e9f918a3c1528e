package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// spec is a small valid file kept as raw JSON pieces, so a malformed case
// can break exactly one thing in it and still be built by the same code.
type spec struct {
	meta    string // raw JSON value of __metadata__; "" for none
	entries [][2]string
	data    []byte
}

// valid returns the file every case starts from: metadata and three
// tensors of different widths, contiguous, 24 data bytes.
func valid() *spec {
	return &spec{
		meta: `{"format":"pt"}`,
		entries: [][2]string{
			{`"w"`, `{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`},
			{`"b"`, `{"dtype":"I16","shape":[3],"data_offsets":[16,22]}`},
			{`"m"`, `{"dtype":"U8","shape":[2],"data_offsets":[22,24]}`},
		},
		data: bytes.Repeat([]byte{0x5a}, 24),
	}
}

// set replaces the raw value of the entry whose raw key is key.
func (s *spec) set(key, value string) *spec {
	for i := range s.entries {
		if s.entries[i][0] == key {
			s.entries[i][1] = value
			return s
		}
	}
	panic("test bug: no entry " + key)
}

func (s *spec) add(key, value string) *spec {
	s.entries = append(s.entries, [2]string{key, value})
	return s
}

func (s *spec) header() string {
	var parts []string
	if s.meta != "" {
		parts = append(parts, `"__metadata__":`+s.meta)
	}
	for _, e := range s.entries {
		parts = append(parts, e[0]+":"+e[1])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func (s *spec) bytes() []byte { return file(s.header(), s.data) }

// withN returns the valid file with its header length replaced.
func withN(n uint64) []byte {
	b := valid().bytes()
	binary.LittleEndian.PutUint64(b, n)
	return b
}

func withData(data []byte) []byte {
	s := valid()
	s.data = data
	return s.bytes()
}

// malformed is one row: a file that breaks one rule of PARSER-SAFETY §1/§3.
type malformed struct {
	name   string
	file   []byte
	opts   Options
	rule   error // the precise sentinel
	family error // its family, or nil
	class  error // formats.ErrFormat, ErrLimit or ErrUnsupported
}

func ent(dtype, shape, offsets string) string {
	return fmt.Sprintf(`{"dtype":%s,"shape":%s,"data_offsets":%s}`, dtype, shape, offsets)
}

func malformedCases() []malformed {
	F, L, U := formats.ErrFormat, formats.ErrLimit, formats.ErrUnsupported
	ok := valid().bytes()
	hdr := valid().header()
	w := func(v string) []byte { return valid().set(`"w"`, v).bytes() }
	meta := func(v string) []byte { s := valid(); s.meta = v; return s.bytes() }
	return []malformed{
		// §1.1–§1.3 framing.
		{name: "empty file", file: nil, rule: ErrHeaderTooSmall, class: F},
		{name: "short file", file: ok[:7], rule: ErrHeaderTooSmall, class: F},
		{name: "N 1<<62", file: withN(1 << 62), rule: ErrHeaderTooLarge, class: L},
		{name: "N 2^64-1", file: withN(math.MaxUint64), rule: ErrHeaderTooLarge, class: L},
		{name: "N above configured limit", file: ok, opts: Options{Limits: formats.Limits{MaxHeaderBytes: 64}}, rule: ErrHeaderTooLarge, class: L},
		{name: "N past end of file", file: withN(uint64(len(ok))), rule: ErrInvalidHeaderLength, class: F},
		{name: "8+N overflows", file: withN(math.MaxInt64), opts: Options{Limits: formats.Limits{MaxHeaderBytes: math.MaxInt64}}, rule: ErrInvalidHeaderLength, class: F},
		{name: "file ends inside header", file: ok[:8+len(hdr)-1], rule: ErrInvalidHeaderLength, class: F},
		// §1.4 text.
		{name: "invalid UTF-8", file: valid().add("\"x\xff\"", `{}`).bytes(), rule: ErrInvalidUTF8, class: F},
		{name: "overlong UTF-8", file: meta("{\"a\":\"\xc0\xaf\"}"), rule: ErrInvalidUTF8, class: F},
		{name: "empty header", file: file("", nil), rule: ErrInvalidJSON, class: F},
		{name: "invalid JSON: missing brace", file: file(strings.TrimSuffix(hdr, "}"), valid().data), rule: ErrInvalidJSON, class: F},
		{name: "invalid JSON: trailing comma", file: file(strings.TrimSuffix(hdr, "}")+",}", valid().data), rule: ErrInvalidJSON, class: F},
		{name: "invalid JSON: text after object", file: file(hdr+" x", valid().data), rule: ErrInvalidJSON, class: F},
		{name: "invalid JSON: two objects", file: file(hdr+"{}", valid().data), rule: ErrInvalidJSON, class: F},
		{name: "invalid JSON: raw control char", file: meta("{\"a\":\"\x01\"}"), rule: ErrInvalidJSON, class: F},
		{name: "invalid JSON: lone surrogate", file: valid().add(`"\ud800"`, `{}`).bytes(), rule: ErrInvalidJSON, class: F},
		{name: "invalid JSON: reversed surrogates", file: meta(`{"a":"\udc00\ud800"}`), rule: ErrInvalidJSON, class: F},
		// §1.5 top level and metadata.
		{name: "top-level array", file: file(`[]`, nil), rule: ErrNotObject, class: F},
		{name: "top-level string", file: file(`"{}"`, nil), rule: ErrNotObject, class: F},
		{name: "metadata value not string", file: meta(`{"a":1}`), rule: ErrBadMetadata, class: F},
		{name: "metadata value null", file: meta(`{"a":null}`), rule: ErrBadMetadata, class: F},
		{name: "metadata value object", file: meta(`{"a":{"b":"c"}}`), rule: ErrBadMetadata, class: F},
		{name: "metadata not object", file: meta(`["a"]`), rule: ErrBadMetadata, class: F},
		{name: "metadata string", file: meta(`"a"`), rule: ErrBadMetadata, class: F},
		{name: "metadata duplicate key", file: meta(`{"a":"1","a":"2"}`), rule: ErrBadMetadata, class: F},
		// §1.6 entries.
		{name: "entry missing data_offsets", file: w(`{"dtype":"F32","shape":[2,2]}`), rule: ErrBadEntry, class: F},
		{name: "entry missing dtype", file: w(`{"shape":[2,2],"data_offsets":[0,16]}`), rule: ErrBadEntry, class: F},
		{name: "entry missing shape", file: w(`{"dtype":"F32","data_offsets":[0,16]}`), rule: ErrBadEntry, class: F},
		{name: "entry empty", file: w(`{}`), rule: ErrBadEntry, class: F},
		{name: "entry extra key", file: w(`{"dtype":"F32","shape":[2,2],"data_offsets":[0,16],"extra":1}`), rule: ErrBadEntry, class: F},
		{name: "entry repeated field", file: w(`{"dtype":"F32","dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`), rule: ErrBadEntry, class: F},
		{name: "entry not object", file: w(`[1]`), rule: ErrBadEntry, class: F},
		{name: "entry null", file: w(`null`), rule: ErrBadEntry, class: F},
		{name: "dtype not string", file: w(ent(`4`, `[2,2]`, `[0,16]`)), rule: ErrBadEntry, class: F},
		{name: "unknown dtype", file: w(ent(`"F4"`, `[2,2]`, `[0,16]`)), rule: ErrUnknownDType, class: U},
		{name: "dtype lower case", file: w(ent(`"f32"`, `[2,2]`, `[0,16]`)), rule: ErrUnknownDType, class: U},
		{name: "ggml dtype name", file: w(ent(`"Q4_0"`, `[2,2]`, `[0,16]`)), rule: ErrUnknownDType, class: U},
		{name: "negative dim", file: w(ent(`"F32"`, `[-2,-2]`, `[0,16]`)), rule: ErrBadShape, class: F},
		{name: "float dim", file: w(ent(`"F32"`, `[2.0,2]`, `[0,16]`)), rule: ErrBadShape, class: F},
		{name: "exponent dim", file: w(ent(`"F32"`, `[2e0,2]`, `[0,16]`)), rule: ErrBadShape, class: F},
		{name: "dim above int64", file: w(ent(`"F32"`, `[9223372036854775808,0]`, `[0,16]`)), rule: ErrBadShape, class: F},
		{name: "dim above uint64", file: w(ent(`"F32"`, `[18446744073709551616]`, `[0,16]`)), rule: ErrBadShape, class: F},
		{name: "dim string", file: w(ent(`"F32"`, `["2",2]`, `[0,16]`)), rule: ErrBadShape, class: F},
		{name: "shape not array", file: w(ent(`"F32"`, `4`, `[0,16]`)), rule: ErrBadShape, class: F},
		{name: "data_offsets 3 numbers", file: w(ent(`"F32"`, `[2,2]`, `[0,16,16]`)), rule: ErrBadOffsets, class: F},
		{name: "data_offsets 1 number", file: w(ent(`"F32"`, `[2,2]`, `[16]`)), rule: ErrBadOffsets, class: F},
		{name: "data_offsets empty", file: w(ent(`"F32"`, `[2,2]`, `[]`)), rule: ErrBadOffsets, class: F},
		{name: "data_offsets negative", file: w(ent(`"F32"`, `[2,2]`, `[-0,16]`)), rule: ErrBadOffsets, class: F},
		{name: "data_offsets float", file: w(ent(`"F32"`, `[2,2]`, `[0,16.0]`)), rule: ErrBadOffsets, class: F},
		{name: "data_offsets not array", file: w(ent(`"F32"`, `[2,2]`, `"0-16"`)), rule: ErrBadOffsets, class: F},
		{name: "data_offsets above int64", file: w(ent(`"F32"`, `[2,2]`, `[0,9223372036854775808]`)), rule: ErrBadOffsets, class: F},
		{name: "begin > end", file: w(ent(`"F32"`, `[2,2]`, `[16,0]`)), rule: ErrBadOffsets, class: F},
		// §1.7 names.
		{name: "duplicate tensor name", file: valid().add(`"w"`, ent(`"U8"`, `[0]`, `[24,24]`)).bytes(), rule: ErrDuplicateName, class: F},
		{name: "duplicate name via escape", file: valid().add(`"\u0077"`, ent(`"U8"`, `[0]`, `[24,24]`)).bytes(), rule: ErrDuplicateName, class: F},
		{name: "duplicate __metadata__", file: valid().add(`"__metadata__"`, `{}`).bytes(), rule: ErrDuplicateName, class: F},
		// §1.8 contiguity.
		{name: "first tensor not at 0", file: func() []byte { s := valid(); s.entries = s.entries[1:]; return s.bytes() }(), rule: ErrOffsetGap, family: ErrInvalidOffset, class: F},
		{name: "gap", file: func() []byte {
			s := valid().set(`"m"`, ent(`"U8"`, `[2]`, `[24,26]`))
			s.data = append(s.data, 0, 0)
			return s.bytes()
		}(), rule: ErrOffsetGap, family: ErrInvalidOffset, class: F},
		{name: "overlap", file: valid().set(`"b"`, ent(`"I16"`, `[3]`, `[14,20]`)).bytes(), rule: ErrOffsetOverlap, family: ErrInvalidOffset, class: F},
		{name: "all tensors at 0", file: func() []byte {
			s := valid().set(`"b"`, ent(`"I16"`, `[3]`, `[0,6]`)).set(`"m"`, ent(`"U8"`, `[2]`, `[0,2]`))
			s.data = s.data[:16]
			return s.bytes()
		}(), rule: ErrOffsetOverlap, family: ErrInvalidOffset, class: F},
		// §1.9 sizes.
		{name: "shape overflow 2^40 x 2^40", file: w(ent(`"F32"`, `[1099511627776,1099511627776]`, `[0,16]`)), rule: ErrOverflow, class: F},
		{name: "byte size overflow", file: w(ent(`"F64"`, `[2305843009213693952]`, `[0,16]`)), rule: ErrOverflow, class: F},
		{name: "size mismatch", file: w(ent(`"F32"`, `[2,3]`, `[0,16]`)), rule: ErrSizeMismatch, class: F},
		{name: "size mismatch dtype", file: w(ent(`"F64"`, `[2,2]`, `[0,16]`)), rule: ErrSizeMismatch, class: F},
		{name: "zero-size with bytes", file: w(ent(`"F32"`, `[0,4]`, `[0,16]`)), rule: ErrSizeMismatch, class: F},
		// §1.10 file size.
		{name: "trailing bytes", file: withData(append(valid().data, 0)), rule: ErrTrailingBytes, family: ErrIncompleteBuffer, class: F},
		{name: "polyglot zip after data", file: withData(append(valid().data, "PK\x03\x04"...)), rule: ErrTrailingBytes, family: ErrIncompleteBuffer, class: F},
		{name: "missing bytes", file: withData(valid().data[:23]), rule: ErrTruncated, family: ErrIncompleteBuffer, class: F},
		{name: "no data at all", file: withData(nil), rule: ErrTruncated, family: ErrIncompleteBuffer, class: F},
		// §3.2 limits.
		{name: "too many tensors", file: ok, opts: Options{Limits: formats.Limits{MaxTensors: 2}}, rule: ErrTooManyTensors, class: L},
		{name: "too many dims", file: ok, opts: Options{Limits: formats.Limits{MaxDims: 1}}, rule: ErrTooManyDims, class: L},
	}
}

// TestMalformed runs every row through NewReader (plain io.ReaderAt) and
// OpenWith (mapping), each guarded by recover: a panic fails the test.
func TestMalformed(t *testing.T) {
	if _, err := readBytes(t, valid().bytes(), Options{}); err != nil {
		t.Fatalf("the base file is invalid: %v", err)
	}
	dir := t.TempDir()
	for i, c := range malformedCases() {
		t.Run(c.name, func(t *testing.T) {
			check := func(how string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s: accepted", how)
				}
				if !errors.Is(err, c.rule) || !errors.Is(err, c.class) || (c.family != nil && !errors.Is(err, c.family)) {
					t.Errorf("%s: got %v, want rule %q of class %q", how, err, c.rule, c.class)
				}
				var fe *formats.FormatError
				if !errors.As(err, &fe) || fe.File == "" || fe.Offset < 0 || fe.Offset > int64(len(c.file))+8 {
					t.Errorf("%s: error not located: %#v", how, fe)
				}
			}
			check("NewReader", guard(t, func() error {
				_, err := NewReader(bytes.NewReader(c.file), int64(len(c.file)), c.name, c.opts)
				return err
			}))
			path := filepath.Join(dir, fmt.Sprintf("case%03d.safetensors", i))
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			check("OpenWith", guard(t, func() error {
				r, err := OpenWith(path, c.opts)
				if err == nil {
					r.Close()
				}
				return err
			}))
		})
	}
}

// guard runs f and turns a panic into a test failure.
func guard(t *testing.T, f func() error) (err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("panic: %v", p)
		}
	}()
	return f()
}
