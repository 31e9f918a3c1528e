package vocab

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/qtool-dev/qtool/formats"
)

// SentencePiece's tokenizer.model is a serialized ModelProto
// (sentencepiece_model.proto, proto2). The fields read and written here:
//
//	ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec,
//	                3 normalizer_spec
//	SentencePiece   1 piece (string), 2 score (float, default 0),
//	                3 type (enum, default NORMAL = 1)
//	TrainerSpec     3 model_type (enum: 1 UNIGRAM default, 2 BPE, 3 WORD,
//	                4 CHAR), 4 vocab_size, 35 byte_fallback (bool),
//	                40 unk_id (0), 41 bos_id (1), 42 eos_id (2), 43 pad_id (-1),
//	                45 unk_piece, 46 bos_piece, 47 eos_piece, 48 pad_piece
//	NormalizerSpec  1 name, 3 add_dummy_prefix (true),
//	                4 remove_extra_whitespaces (true), 5 escape_whitespaces (true)
//
// Every other field is skipped on reading. Wire types: 0 varint, 1 fixed64,
// 2 length-delimited, 5 fixed32; groups (3, 4) never occur in this schema
// and are refused.

// SentencePiece model types (TrainerSpec.ModelType).
const (
	spUnigram int32 = 1
	spBPE     int32 = 2
	spWord    int32 = 3
	spChar    int32 = 4
)

// spPiece is one ModelProto.SentencePiece.
type spPiece struct {
	Piece string
	Score float32
	Type  int32 // 1–6; values outside the enum read as NORMAL, as proto2 does
}

// spModel is the part of a ModelProto that qtool uses.
type spModel struct {
	Pieces []spPiece

	ModelType    int32
	VocabSize    int32
	ByteFallback bool
	UnkID        int32
	BosID        int32
	EosID        int32
	PadID        int32
	UnkPiece     string
	BosPiece     string
	EosPiece     string
	PadPiece     string

	NormalizerName         string
	AddDummyPrefix         bool
	RemoveExtraWhitespaces bool
	EscapeWhitespaces      bool
}

// newSPModel returns a model holding the proto2 defaults.
func newSPModel() *spModel {
	return &spModel{
		ModelType: spUnigram, VocabSize: 8000, UnkID: 0, BosID: 1, EosID: 2, PadID: -1,
		UnkPiece: "<unk>", BosPiece: "<s>", EosPiece: "</s>", PadPiece: "<pad>",
		AddDummyPrefix: true, RemoveExtraWhitespaces: true, EscapeWhitespaces: true,
	}
}

// pbReader is a bounded cursor over one protobuf message. base is the
// message's offset in the file, for error positions.
type pbReader struct {
	b    []byte
	off  int
	base int64
	file string
	path string // field path of this message, for errors ("pieces[3]")
}

func (r *pbReader) fail(at int, field, format string, args ...any) error {
	key := r.path
	if field != "" {
		if key != "" {
			key += "."
		}
		key += field
	}
	return &formats.FormatError{File: r.file, Offset: r.base + int64(at), Key: key, Err: ErrProtobuf, Detail: fmt.Sprintf(format, args...)}
}

func (r *pbReader) done() bool { return r.off >= len(r.b) }

// varint reads a base-128 varint of at most 10 bytes.
func (r *pbReader) varint(field string) (uint64, error) {
	start := r.off
	var v uint64
	for i := 0; i < 10; i++ {
		if r.off >= len(r.b) {
			return 0, r.fail(start, field, "varint truncated")
		}
		c := r.b[r.off]
		r.off++
		if i == 9 && c > 1 {
			return 0, r.fail(start, field, "varint overflows 64 bits")
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, r.fail(start, field, "varint longer than 10 bytes")
}

// tag reads a field key: field number and wire type.
func (r *pbReader) tag() (num uint64, wt uint8, at int, err error) {
	at = r.off
	k, err := r.varint("")
	if err != nil {
		return 0, 0, at, err
	}
	num, wt = k>>3, uint8(k&7)
	if num == 0 || num > 1<<29-1 {
		return 0, 0, at, r.fail(at, "", "invalid field number %d", num)
	}
	return num, wt, at, nil
}

// bytes reads a length-delimited payload; the length is checked against the
// bytes that remain before anything is sliced.
func (r *pbReader) bytes(field string) ([]byte, int, error) {
	at := r.off
	n, err := r.varint(field)
	if err != nil {
		return nil, at, err
	}
	if n > uint64(len(r.b)-r.off) {
		return nil, at, r.fail(at, field, "length %d past the end of the message (%d bytes left)", n, len(r.b)-r.off)
	}
	start := r.off
	r.off += int(n)
	return r.b[start:r.off], start, nil
}

func (r *pbReader) fixed32(field string) (uint32, error) {
	if len(r.b)-r.off < 4 {
		return 0, r.fail(r.off, field, "fixed32 truncated")
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, nil
}

// skip passes over one field of wire type wt.
func (r *pbReader) skip(num uint64, wt uint8, at int) error {
	field := fmt.Sprintf("field %d", num)
	switch wt {
	case 0:
		_, err := r.varint(field)
		return err
	case 1:
		if len(r.b)-r.off < 8 {
			return r.fail(r.off, field, "fixed64 truncated")
		}
		r.off += 8
		return nil
	case 2:
		_, _, err := r.bytes(field)
		return err
	case 5:
		_, err := r.fixed32(field)
		return err
	}
	return r.fail(at, field, "unsupported wire type %d", wt)
}

// sub returns a reader for an embedded message.
func (r *pbReader) sub(b []byte, start int, path string) *pbReader {
	return &pbReader{b: b, base: r.base + int64(start), file: r.file, path: path}
}

// parseSentencePiece decodes a ModelProto. file names the input in errors.
// Pieces are appended as they are read; the slice cannot hold more entries
// than the input has bytes, since every piece takes at least two.
func parseSentencePiece(b []byte, file string) (*spModel, error) {
	m := newSPModel()
	r := &pbReader{b: b, file: file}
	for !r.done() {
		num, wt, at, err := r.tag()
		if err != nil {
			return nil, err
		}
		if wt != 2 || num > 3 {
			if err := r.skip(num, wt, at); err != nil {
				return nil, err
			}
			continue
		}
		payload, start, err := r.bytes(fieldName(num))
		if err != nil {
			return nil, err
		}
		switch num {
		case 1:
			if len(m.Pieces) >= MaxTokens {
				return nil, &formats.FormatError{File: file, Offset: int64(at), Key: "pieces", Err: ErrTooLarge,
					Detail: fmt.Sprintf("more than %d pieces", MaxTokens)}
			}
			p, err := r.sub(payload, start, fmt.Sprintf("pieces[%d]", len(m.Pieces))).piece()
			if err != nil {
				return nil, err
			}
			m.Pieces = append(m.Pieces, p)
		case 2:
			if err := r.sub(payload, start, "trainer_spec").trainer(m); err != nil {
				return nil, err
			}
		case 3:
			if err := r.sub(payload, start, "normalizer_spec").normalizer(m); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func fieldName(num uint64) string {
	switch num {
	case 1:
		return "pieces"
	case 2:
		return "trainer_spec"
	case 3:
		return "normalizer_spec"
	}
	return fmt.Sprintf("field %d", num)
}

func (r *pbReader) piece() (spPiece, error) {
	p := spPiece{Type: TypeNormal}
	for !r.done() {
		num, wt, at, err := r.tag()
		if err != nil {
			return p, err
		}
		switch {
		case num == 1 && wt == 2:
			s, _, err := r.bytes("piece")
			if err != nil {
				return p, err
			}
			p.Piece = string(s)
		case num == 2 && wt == 5:
			u, err := r.fixed32("score")
			if err != nil {
				return p, err
			}
			p.Score = math.Float32frombits(u)
		case num == 3 && wt == 0:
			t, err := r.varint("type")
			if err != nil {
				return p, err
			}
			p.Type = TypeNormal
			if t >= uint64(TypeNormal) && t <= uint64(TypeByte) {
				p.Type = int32(t)
			}
		default:
			if err := r.skip(num, wt, at); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

func (r *pbReader) trainer(m *spModel) error {
	for !r.done() {
		num, wt, at, err := r.tag()
		if err != nil {
			return err
		}
		var str *string
		var i32 *int32
		switch num {
		case 3:
			i32 = &m.ModelType
		case 4:
			i32 = &m.VocabSize
		case 40:
			i32 = &m.UnkID
		case 41:
			i32 = &m.BosID
		case 42:
			i32 = &m.EosID
		case 43:
			i32 = &m.PadID
		case 45:
			str = &m.UnkPiece
		case 46:
			str = &m.BosPiece
		case 47:
			str = &m.EosPiece
		case 48:
			str = &m.PadPiece
		}
		switch {
		case num == 35 && wt == 0:
			v, err := r.varint("byte_fallback")
			if err != nil {
				return err
			}
			m.ByteFallback = v != 0
		case i32 != nil && wt == 0:
			v, err := r.varint(fmt.Sprintf("field %d", num))
			if err != nil {
				return err
			}
			*i32 = int32(v) // proto int32/enum: the low 32 bits of the varint
		case str != nil && wt == 2:
			s, _, err := r.bytes(fmt.Sprintf("field %d", num))
			if err != nil {
				return err
			}
			*str = string(s)
		default:
			if err := r.skip(num, wt, at); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *pbReader) normalizer(m *spModel) error {
	for !r.done() {
		num, wt, at, err := r.tag()
		if err != nil {
			return err
		}
		var flag *bool
		switch num {
		case 3:
			flag = &m.AddDummyPrefix
		case 4:
			flag = &m.RemoveExtraWhitespaces
		case 5:
			flag = &m.EscapeWhitespaces
		}
		switch {
		case num == 1 && wt == 2:
			s, _, err := r.bytes("name")
			if err != nil {
				return err
			}
			m.NormalizerName = string(s)
		case flag != nil && wt == 0:
			v, err := r.varint(fmt.Sprintf("field %d", num))
			if err != nil {
				return err
			}
			*flag = v != 0
		default:
			if err := r.skip(num, wt, at); err != nil {
				return err
			}
		}
	}
	return nil
}

// pbWriter appends protobuf fields.
type pbWriter struct{ b []byte }

func (w *pbWriter) varint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }

func (w *pbWriter) tag(num uint64, wt uint8) { w.varint(num<<3 | uint64(wt)) }

func (w *pbWriter) bytesField(num uint64, p []byte) {
	w.tag(num, 2)
	w.varint(uint64(len(p)))
	w.b = append(w.b, p...)
}

func (w *pbWriter) stringField(num uint64, s string) {
	w.tag(num, 2)
	w.varint(uint64(len(s)))
	w.b = append(w.b, s...)
}

// int32Field writes an int32 or enum: negative values as the 10-byte
// sign-extended varint proto requires.
func (w *pbWriter) int32Field(num uint64, v int32) {
	w.tag(num, 0)
	w.varint(uint64(int64(v)))
}

func (w *pbWriter) boolField(num uint64, v bool) {
	w.tag(num, 0)
	if v {
		w.varint(1)
	} else {
		w.varint(0)
	}
}

// encode serializes m. Every kept field is written explicitly, defaults
// included, so that parseSentencePiece(m.encode()) equals m.
func (m *spModel) encode() []byte {
	var out pbWriter
	var p pbWriter
	for _, pc := range m.Pieces {
		p.b = p.b[:0]
		p.stringField(1, pc.Piece)
		p.tag(2, 5)
		p.b = binary.LittleEndian.AppendUint32(p.b, math.Float32bits(pc.Score))
		p.int32Field(3, pc.Type)
		out.bytesField(1, p.b)
	}
	var t pbWriter
	t.int32Field(3, m.ModelType)
	t.int32Field(4, m.VocabSize)
	t.boolField(35, m.ByteFallback)
	t.int32Field(40, m.UnkID)
	t.int32Field(41, m.BosID)
	t.int32Field(42, m.EosID)
	t.int32Field(43, m.PadID)
	t.stringField(45, m.UnkPiece)
	t.stringField(46, m.BosPiece)
	t.stringField(47, m.EosPiece)
	t.stringField(48, m.PadPiece)
	out.bytesField(2, t.b)
	var n pbWriter
	n.stringField(1, m.NormalizerName)
	n.boolField(3, m.AddDummyPrefix)
	n.boolField(4, m.RemoveExtraWhitespaces)
	n.boolField(5, m.EscapeWhitespaces)
	out.bytesField(3, n.b)
	return out.b
}
