package gguf

import (
	"encoding/binary"
	"math"

	"github.com/qtool-dev/qtool/formats"
)

// This file builds GGUF bytes field by field, independently of the
// package's writer, so that the reader is tested against layouts the writer
// could never produce (the malformed table breaks one field at a time).

// rawKV is one metadata pair as raw bytes: key, value type, encoded value.
type rawKV struct {
	key string
	typ uint32
	val []byte
}

// rawTensor is one tensor info. offset nil means "the running padded sum";
// data holds the bytes placed in the data section (nil: size derived from
// the type and dims, filled with a pattern).
type rawTensor struct {
	name   string
	ne     []uint64
	typ    uint32
	offset *uint64
	data   []byte
}

// spec is a whole file. Zero values give a valid little-endian v3 file.
type spec struct {
	magic    string  // "" = "GGUF"
	version  uint32  // 0 = 3 (use badVersion to write 0)
	nTensors *uint64 // nil = len(tensors)
	nKV      *uint64 // nil = len(kvs)
	kvs      []rawKV
	tensors  []rawTensor
	align    int64 // alignment used to place data; 0 = 32
	noPad    bool  // omit the padding after the last tensor
	// cut, when set, gives the length to truncate the built file to.
	cut func(tie, dataStart int64, size int) int
	// patch, when set, edits the built bytes (before any cut).
	patch func(b []byte)
}

// badVersion asks build to write version 0.
const badVersion = math.MaxUint32

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func ptr(v uint64) *uint64 { return &v }

func rawString(s string) []byte { return append(le64(uint64(len(s))), s...) }

// Value constructors for rawKV.
func kvU8(k string, v uint8) rawKV     { return rawKV{k, 0, []byte{v}} }
func kvU32(k string, v uint32) rawKV   { return rawKV{k, 4, le32(v)} }
func kvU64(k string, v uint64) rawKV   { return rawKV{k, 10, le64(v)} }
func kvF32(k string, v float32) rawKV  { return rawKV{k, 6, le32(math.Float32bits(v))} }
func kvBool(k string, v uint8) rawKV   { return rawKV{k, 7, []byte{v}} }
func kvStr(k, v string) rawKV          { return rawKV{k, 8, rawString(v)} }
func kvArr(k string, a []byte) rawKV   { return rawKV{k, 9, a} }
func arr(elem uint32, n uint64) []byte { return append(le32(elem), le64(n)...) }

func arrStrings(ss ...string) []byte {
	b := arr(8, uint64(len(ss)))
	for _, s := range ss {
		b = append(b, rawString(s)...)
	}
	return b
}

func arrU32(vs ...uint32) []byte {
	b := arr(4, uint64(len(vs)))
	for _, v := range vs {
		b = append(b, le32(v)...)
	}
	return b
}

// rawSize is the data size of a tensor info as the reader will compute it,
// or 0 when the info is invalid.
func rawSize(t rawTensor) int64 {
	dt, ok := formats.DTypeFromGGML(t.typ)
	if !ok {
		return 0
	}
	shape := make([]int64, len(t.ne))
	for i, d := range t.ne {
		if d > math.MaxInt64 {
			return 0
		}
		shape[len(t.ne)-1-i] = int64(d)
	}
	n, ok := formats.DataSize(dt, shape)
	if !ok || n > 1<<20 {
		return 0
	}
	return n
}

func padTo(n, align int64) int64 { return (n + align - 1) / align * align }

// build encodes s. It also returns the tensor-info end and the data start.
func (s spec) build() (b []byte, tie, dataStart int64) {
	align := s.align
	if align == 0 {
		align = 32
	}
	m := s.magic
	if m == "" {
		m = "GGUF"
	}
	b = append(b, m...)
	switch v := s.version; v {
	case 0:
		b = append(b, le32(3)...)
	case badVersion:
		b = append(b, le32(0)...)
	default:
		b = append(b, le32(v)...)
	}
	nT, nKV := uint64(len(s.tensors)), uint64(len(s.kvs))
	if s.nTensors != nil {
		nT = *s.nTensors
	}
	if s.nKV != nil {
		nKV = *s.nKV
	}
	b = append(b, le64(nT)...)
	b = append(b, le64(nKV)...)
	for _, kv := range s.kvs {
		b = append(b, rawString(kv.key)...)
		b = append(b, le32(kv.typ)...)
		b = append(b, kv.val...)
	}
	datas := make([][]byte, len(s.tensors))
	var next uint64
	for i, t := range s.tensors {
		d := t.data
		if d == nil {
			d = make([]byte, rawSize(t))
			for j := range d {
				d[j] = byte(i*31 + j)
			}
		}
		datas[i] = d
		off := next
		if t.offset != nil {
			off = *t.offset
		}
		b = append(b, rawString(t.name)...)
		b = append(b, le32(uint32(len(t.ne)))...)
		for _, d := range t.ne {
			b = append(b, le64(d)...)
		}
		b = append(b, le32(t.typ)...)
		b = append(b, le64(off)...)
		next = uint64(padTo(int64(next)+int64(len(d)), align))
	}
	tie = int64(len(b))
	dataStart = padTo(tie, align)
	b = append(b, make([]byte, dataStart-tie)...)
	for i, d := range datas {
		b = append(b, d...)
		if i < len(datas)-1 || !s.noPad {
			b = append(b, make([]byte, padTo(int64(len(d)), align)-int64(len(d)))...)
		}
	}
	if s.patch != nil {
		s.patch(b)
	}
	if s.cut != nil {
		b = b[:s.cut(tie, dataStart, len(b))]
	}
	return b, tie, dataStart
}

// validSpec is a small valid file: several KV types and three tensors
// (F32, a Q4_0 block, F16) so that offsets, padding and block sizes all
// come into play.
func validSpec() spec {
	return spec{
		kvs: []rawKV{
			kvStr("general.architecture", "llama"),
			kvU32("llama.block_count", 2),
			kvF32("llama.rope.freq_base", 10000),
			kvArr("tokenizer.ggml.tokens", arrStrings("<unk>", "a", "")),
			kvArr("test.ids", arrU32(1, 2, 3)),
			kvBool("test.flag", 1),
		},
		tensors: []rawTensor{
			{name: "a.weight", ne: []uint64{4, 2}, typ: 0},
			{name: "b.q4", ne: []uint64{32}, typ: 2},
			{name: "c.f16", ne: []uint64{3}, typ: 1},
		},
	}
}
