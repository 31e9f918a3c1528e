package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// parseNoPanic opens b, failing the test (not crashing it) on a panic.
func parseNoPanic(t *testing.T, b []byte, opts Options) (r *Reader, err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("panic on %d input bytes: %v\n%s", len(b), p, debug.Stack())
		}
	}()
	return NewReader(bytes.NewReader(b), int64(len(b)), "malformed.gguf", opts)
}

func TestValidSpecParses(t *testing.T) {
	b, tie, ds := validSpec().build()
	r, err := parseNoPanic(t, b, Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.TensorInfoEnd() != tie || r.DataStart() != ds || len(r.Tensors()) != 3 || r.Meta().Len() != 6 {
		t.Fatalf("tie %d ds %d tensors %d kvs %d", r.TensorInfoEnd(), r.DataStart(), len(r.Tensors()), r.Meta().Len())
	}
	for i, want := range []int64{0, 32, 64} {
		if off, _ := r.RawOffset(r.Tensors()[i].Name); off != want {
			t.Errorf("tensor %d at %d, want %d", i, off, want)
		}
	}
}

// Field positions in validSpec's file.
const (
	atVersion  = 4
	atNTensors = 8
	atNKV      = 16
	atFirstKey = 24
)

// A row of the hostile-input table: one rule of PARSER-SAFETY.md §2/§3,
// one broken field.
type malformedCase struct {
	name  string
	edit  func(s *spec)
	opts  Options
	rule  error
	class error
	at    int64 // expected FormatError.Offset, -1 to skip
}

func malformedCases() []malformedCase {
	addKV := func(kv rawKV) func(*spec) { return func(s *spec) { s.kvs = append(s.kvs, kv) } }
	tensor := func(i int, f func(*rawTensor)) func(*spec) { return func(s *spec) { f(&s.tensors[i]) } }
	u64At := func(at int, v uint64) func(*spec) {
		return func(s *spec) { s.patch = func(b []byte) { binary.LittleEndian.PutUint64(b[at:], v) } }
	}
	fmtErr, unsup, limit := formats.ErrFormat, formats.ErrUnsupported, formats.ErrLimit
	long := strings.Repeat("n", 64)
	nested := func(depth int) []byte {
		var b []byte
		for range depth - 1 {
			b = append(b, arr(9, 1)...)
		}
		return append(b, arrU32(7)...)
	}
	return []malformedCase{
		// §2.1 magic
		{"bad magic", func(s *spec) { s.magic = "GGUX" }, Options{}, ErrBadMagic, fmtErr, 0},
		{"lower-case magic", func(s *spec) { s.magic = "gguf" }, Options{}, ErrBadMagic, fmtErr, 0},
		// §2.2 version
		{"version 0", func(s *spec) { s.version = badVersion }, Options{}, ErrBadVersion, unsup, atVersion},
		{"version 1", func(s *spec) { s.version = 1 }, Options{}, ErrBadVersion, unsup, atVersion},
		{"version 4", func(s *spec) { s.version = 4 }, Options{}, ErrBadVersion, unsup, atVersion},
		{"big-endian v3", func(s *spec) { s.version = 0x03000000 }, Options{}, ErrBigEndian, unsup, atVersion},
		{"big-endian v2", func(s *spec) { s.version = 0x02000000 }, Options{}, ErrBigEndian, unsup, atVersion},
		// §2.3 counts
		{"tensor count 2^62", func(s *spec) { s.nTensors = ptr(1 << 62) }, Options{}, ErrCountTooLarge, fmtErr, atNTensors},
		{"tensor count 2^63", func(s *spec) { s.nTensors = ptr(1 << 63) }, Options{}, ErrCountTooLarge, fmtErr, atNTensors},
		{"kv count 2^63", func(s *spec) { s.nKV = ptr(1 << 63) }, Options{}, ErrCountTooLarge, fmtErr, atNKV},
		{"kv count 2^62", func(s *spec) { s.nKV = ptr(1 << 62) }, Options{}, ErrCountTooLarge, fmtErr, atNKV},
		{"tensor count past remaining", func(s *spec) { s.nTensors = ptr(100) }, Options{}, ErrCountTooLarge, fmtErr, atNTensors},
		{"tensor count over limit", nil, Options{Limits: formats.Limits{MaxTensors: 2}}, ErrTooManyTensors, limit, atNTensors},
		{"kv count over limit", nil, Options{Limits: formats.Limits{MaxKVs: 5}}, ErrTooManyKVs, limit, atNKV},
		// §2.4 / §2.5 strings
		{"key length 2^62", u64At(atFirstKey, 1<<62), Options{}, ErrStringTooLong, limit, atFirstKey},
		{"key length 2^64-1", u64At(atFirstKey, math.MaxUint64), Options{}, ErrStringTooLong, limit, atFirstKey},
		{"string value 2^62", addKV(rawKV{"test.s", 8, le64(1 << 62)}), Options{}, ErrStringTooLong, limit, -1},
		{"string past end", addKV(rawKV{"test.s", 8, le64(1 << 20)}), Options{}, ErrTruncated, fmtErr, -1},
		{"string over limit option", nil, Options{Limits: formats.Limits{MaxStringLen: 8}}, ErrStringTooLong, limit, atFirstKey},
		// §2.6 arrays
		{"array 2^40 of u64", addKV(kvArr("test.a", arr(10, 1<<40))), Options{}, ErrArrayTooLong, limit, -1},
		{"array 2^64-1 of u64", addKV(kvArr("test.a", arr(10, math.MaxUint64))), Options{}, ErrArrayTooLong, limit, -1},
		{"array past end", addKV(kvArr("test.a", arr(10, 1<<20))), Options{}, ErrTruncated, fmtErr, -1},
		{"string array past end", addKV(kvArr("test.a", arr(8, 1<<25))), Options{}, ErrTruncated, fmtErr, -1},
		{"array over limit option", nil, Options{Limits: formats.Limits{MaxArrayLen: 2}}, ErrArrayTooLong, limit, -1},
		{"nested array", addKV(kvArr("test.n", nested(2))), Options{}, ErrNestedArray, unsup, -1},
		{"nested too deep", addKV(kvArr("test.n", nested(4))), Options{AllowNestedArrays: true, Limits: formats.Limits{MaxNesting: 3}}, ErrNestingTooDeep, limit, -1},
		{"nested array past end", addKV(kvArr("test.n", arr(9, 1<<20))), Options{AllowNestedArrays: true}, ErrTruncated, fmtErr, -1},
		// §2.8 value types
		{"value type 13", addKV(rawKV{"test.x", 13, []byte{0}}), Options{}, ErrBadValueType, fmtErr, -1},
		{"value type 2^31", addKV(rawKV{"test.x", 1 << 31, []byte{0}}), Options{}, ErrBadValueType, fmtErr, -1},
		{"array element type 13", addKV(kvArr("test.a", arr(13, 1))), Options{}, ErrBadValueType, fmtErr, -1},
		{"bool array 2 (strict)", addKV(kvArr("test.b", append(arr(7, 2), 1, 2))), Options{Strict: true}, ErrBadBool, fmtErr, -1},
		{"bool 255 (strict)", addKV(kvBool("test.b", 255)), Options{Strict: true}, ErrBadBool, fmtErr, -1},
		// §2.7 keys
		{"empty key", addKV(kvU32("", 1)), Options{}, ErrEmptyKey, fmtErr, -1},
		{"duplicate key", addKV(kvU32("llama.block_count", 3)), Options{}, ErrDuplicateKey, fmtErr, -1},
		{"key form (strict)", addKV(kvU32("Llama.Block-Count", 3)), Options{Strict: true}, ErrBadKey, fmtErr, -1},
		// §2.9 alignment
		{"alignment 0", addKV(kvU32(keyAlignment, 0)), Options{}, ErrBadAlignment, fmtErr, -1},
		{"alignment 3", addKV(kvU32(keyAlignment, 3)), Options{}, ErrBadAlignment, fmtErr, -1},
		{"alignment 48", addKV(kvU32(keyAlignment, 48)), Options{}, ErrBadAlignment, fmtErr, -1},
		{"alignment as u64", addKV(kvU64(keyAlignment, 32)), Options{}, ErrBadAlignment, fmtErr, -1},
		{"alignment as u8", addKV(kvU8(keyAlignment, 32)), Options{}, ErrBadAlignment, fmtErr, -1},
		{"alignment as string", addKV(kvStr(keyAlignment, "32")), Options{}, ErrBadAlignment, fmtErr, -1},
		// §2.10 names
		{"duplicate tensor", tensor(2, func(t *rawTensor) { t.name = "a.weight" }), Options{}, ErrDuplicateTensor, fmtErr, -1},
		{"64-byte name", tensor(0, func(t *rawTensor) { t.name = long }), Options{}, ErrNameTooLong, fmtErr, -1},
		// §2.11 dims
		{"n_dims 5", tensor(0, func(t *rawTensor) { t.ne = []uint64{1, 1, 1, 1, 8} }), Options{}, ErrTooManyDims, fmtErr, -1},
		{"rank over dims limit", nil, Options{Limits: formats.Limits{MaxDims: 1}}, ErrDimsLimit, limit, -1},
		{"negative dim", tensor(0, func(t *rawTensor) { t.ne = []uint64{4, 1 << 63} }), Options{}, ErrBadDim, fmtErr, -1},
		{"dim -1", tensor(2, func(t *rawTensor) { t.ne = []uint64{math.MaxUint64} }), Options{}, ErrBadDim, fmtErr, -1},
		{"element count overflow", tensor(0, func(t *rawTensor) { t.ne = []uint64{1 << 32, 1 << 32} }), Options{}, ErrOverflow, fmtErr, -1},
		{"element count overflow 4d", tensor(0, func(t *rawTensor) { t.ne = []uint64{1 << 20, 1 << 20, 1 << 20, 1 << 20} }), Options{}, ErrOverflow, fmtErr, -1},
		{"byte size overflow", tensor(0, func(t *rawTensor) { t.ne, t.typ = []uint64{1 << 31, 1 << 31}, 28 }), Options{}, ErrOverflow, fmtErr, -1},
		// §2.12 types and blocks
		{"type 4 (retired Q4_2)", tensor(0, func(t *rawTensor) { t.typ = 4 }), Options{}, ErrUnknownType, unsup, -1},
		{"type 99", tensor(0, func(t *rawTensor) { t.typ = 99 }), Options{}, ErrUnknownType, unsup, -1},
		{"Q4_0 ne0 31", tensor(1, func(t *rawTensor) { t.ne = []uint64{31} }), Options{}, ErrBlockMisaligned, fmtErr, -1},
		{"Q4_0 ne0 48", tensor(1, func(t *rawTensor) { t.ne = []uint64{48, 2} }), Options{}, ErrBlockMisaligned, fmtErr, -1},
		{"Q4_0 rank 0", tensor(1, func(t *rawTensor) { t.ne = nil }), Options{}, ErrBlockMisaligned, fmtErr, -1},
		// §2.14 offsets
		{"first offset not 0", tensor(0, func(t *rawTensor) { t.offset = ptr(32) }), Options{}, ErrBadOffset, fmtErr, -1},
		{"offsets out of order", func(s *spec) { s.tensors[1].offset, s.tensors[2].offset = ptr(64), ptr(32) }, Options{}, ErrBadOffset, fmtErr, -1},
		{"offset not aligned", tensor(1, func(t *rawTensor) { t.offset = ptr(40) }), Options{}, ErrBadOffset, fmtErr, -1},
		{"offsets overlap", tensor(1, func(t *rawTensor) { t.offset = ptr(16) }), Options{}, ErrBadOffset, fmtErr, -1},
		{"offsets equal", tensor(1, func(t *rawTensor) { t.offset = ptr(0) }), Options{}, ErrBadOffset, fmtErr, -1},
		{"offset gap", tensor(2, func(t *rawTensor) { t.offset = ptr(96) }), Options{}, ErrBadOffset, fmtErr, -1},
		{"offset 2^63", tensor(2, func(t *rawTensor) { t.offset = ptr(1 << 63) }), Options{}, ErrBadOffset, fmtErr, -1},
		{"offset 2^64-1", tensor(2, func(t *rawTensor) { t.offset = ptr(math.MaxUint64) }), Options{}, ErrBadOffset, fmtErr, -1},
		// §2.13 / §2.15 extent
		{"data past end", func(s *spec) {
			s.noPad = true
			s.cut = func(_, _ int64, n int) int { return n - 1 }
		}, Options{}, ErrDataPastEnd, fmtErr, -1},
		{"huge tensor past end", tensor(2, func(t *rawTensor) { t.ne, t.data = []uint64{1 << 40}, []byte{} }), Options{}, ErrDataPastEnd, fmtErr, -1},
		{"data start past end", func(s *spec) {
			s.cut = func(tie, _ int64, _ int) int { return int(tie) + 1 }
		}, Options{}, ErrDataStartPastEnd, fmtErr, -1},
		{"alignment 2^31 puts data past end", addKV(kvU32(keyAlignment, 1<<31)), Options{}, ErrDataStartPastEnd, fmtErr, -1},
	}
}

func TestMalformed(t *testing.T) {
	for _, c := range malformedCases() {
		t.Run(c.name, func(t *testing.T) {
			s := validSpec()
			if c.edit != nil {
				c.edit(&s)
			}
			b, _, _ := s.build()
			_, err := parseNoPanic(t, b, c.opts)
			if err == nil {
				t.Fatalf("accepted; want %v", c.rule)
			}
			if !errors.Is(err, c.rule) || !errors.Is(err, c.class) {
				t.Fatalf("err = %v; want rule %q of class %q", err, c.rule, c.class)
			}
			var fe *formats.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err %T is not a *formats.FormatError", err)
			}
			if fe.File != "malformed.gguf" || fe.Offset < 0 || fe.Offset > int64(len(b)) || fe.Detail == "" {
				t.Errorf("badly located: %+v", fe)
			}
			if c.at >= 0 && fe.Offset != c.at {
				t.Errorf("offset %d, want %d (%v)", fe.Offset, c.at, err)
			}
		})
	}
}

// TestTruncatedEverywhere cuts a valid file at every length. Inside the
// header every cut is ErrTruncated (or ErrCountTooLarge once the counts no
// longer fit); in the padding before the data ErrDataStartPastEnd; inside
// the data ErrDataPastEnd; the padding after the last tensor may be cut.
func TestTruncatedEverywhere(t *testing.T) {
	full, tie, ds := validSpec().build()
	lastEnd := ds + 64 + 6 // c.f16: three F16 values at offset 64
	for n := range len(full) {
		b := full[:n]
		_, err := parseNoPanic(t, b, Options{})
		var want []error
		switch {
		case int64(n) < tie:
			want = []error{ErrTruncated, ErrCountTooLarge}
		case int64(n) < ds:
			want = []error{ErrDataStartPastEnd}
		case int64(n) < lastEnd:
			want = []error{ErrDataPastEnd}
		}
		if want == nil {
			if err != nil {
				t.Errorf("cut at %d (after the last tensor): %v", n, err)
			}
			continue
		}
		if !errors.Is(err, formats.ErrFormat) || !(errors.Is(err, want[0]) || len(want) > 1 && errors.Is(err, want[1])) {
			t.Errorf("cut at %d: %v, want %v", n, err, want)
		}
	}
}

// TestZeroTensorsNoData: with no tensors the data start may lie past the
// end (no_tensors.gguf without its padding); with zero-size tensors it may
// equal the end.
func TestZeroSizeTensorsAtEnd(t *testing.T) {
	s := validSpec()
	s.tensors = []rawTensor{{name: "empty", ne: []uint64{0, 4}, typ: 0}}
	b, _, ds := s.build()
	r, err := parseNoPanic(t, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != ds || r.Tensors()[0].Size != 0 || r.Tensors()[0].Offset != ds {
		t.Errorf("size %d ds %d tensor %+v", len(b), ds, r.Tensors()[0])
	}
}
