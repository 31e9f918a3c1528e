package tokenizer

import (
	"strings"
	"unicode/utf8"

	"github.com/qtool-dev/qtool/formats/vocab"
)

// appendPiece appends the bytes token id stands for, as llama.cpp's
// token_to_piece: CONTROL and UNKNOWN tokens give their text only with
// special (nothing otherwise); USER_DEFINED tokens their text; NORMAL
// tokens their text with "▁" as a space (SentencePiece) or their
// byte-level bytes (GPT-2); BYTE tokens <0xNN> the byte NN (SentencePiece);
// anything else (UNUSED, ids out of range) nothing.
func (t *Tokenizer) appendPiece(dst []byte, id int32, special bool) []byte {
	if id < 0 || int(id) >= len(t.tokens) {
		return dst
	}
	tok := t.tokens[id]
	switch t.types[id] {
	case typeControl, typeUnknown:
		if special {
			dst = append(dst, tok...)
		}
	case typeUserDefined:
		dst = append(dst, tok...)
	case typeNormal:
		if t.model == vocab.ModelGPT2 {
			return appendByteLevelDecoded(dst, tok)
		}
		for {
			k := strings.Index(tok, "\u2581")
			if k < 0 {
				return append(dst, tok...)
			}
			dst = append(dst, tok[:k]...)
			dst = append(dst, ' ')
			tok = tok[k+len("\u2581"):]
		}
	case typeByte:
		if t.model == vocab.ModelLlama && len(tok) == 6 && tok[:3] == "<0x" {
			if b, ok := hexByte(tok[3], tok[4]); ok {
				dst = append(dst, b)
			}
		}
	}
	return dst
}

func hexByte(a, b byte) (byte, bool) {
	h := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'a' <= c && c <= 'f':
			return c - 'a' + 10, true
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	x, ok1 := h(a)
	y, ok2 := h(b)
	return x<<4 | y, ok1 && ok2
}

// Piece returns the bytes token id stands for (llama.cpp's token_to_piece
// with special tokens rendered): "▁the" gives " the", <0x0A> a newline,
// Ġthe " the", <s> "<s>". It may be a partial UTF-8 sequence. An id out of
// range gives "".
func (t *Tokenizer) Piece(id int32) string { return string(t.appendPiece(nil, id, true)) }

// Decode returns the text of ids as llama.cpp's detokenize does (special
// tokens not rendered): the pieces concatenated, byte tokens reassembled,
// CONTROL and UNKNOWN tokens left out. When the vocabulary adds a space
// prefix (SentencePiece with add_space_prefix), one leading space is
// removed from the first token's piece; a BOS (or any special token) in
// first place takes that removal, so the text after it keeps its space.
// Thus, without BOS, Decode(Encode(x)) == x for SentencePiece vocabularies
// whenever x holds no "▁" and no special-token text; byte-level
// vocabularies decode every encoding back to its input (after NFC, for a
// tokenizer.json with that normalizer). Bytes that do not form valid UTF-8
// are kept as they are. No clean-up of spaces before punctuation is done.
func (t *Tokenizer) Decode(ids []int32) string {
	var b []byte
	for i, id := range ids {
		n := len(b)
		b = t.appendPiece(b, id, false)
		if i == 0 && t.addSpacePrefix && len(b) > n && b[n] == ' ' {
			b = append(b[:n], b[n+1:]...)
		}
	}
	return string(b)
}

// StreamDecoder turns ids into text one at a time (for generation): Push
// returns only whole UTF-8 characters and keeps an incomplete trailing
// sequence (an emoji split over byte tokens) until the bytes that complete
// it arrive. Unlike Decode it removes no leading space, as a continuation
// is joined to text already shown.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte
}

// NewStreamDecoder returns a decoder with nothing pending.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder { return &StreamDecoder{t: t} }

// Push adds id and returns the text that is now complete ("" while a
// character is incomplete). Bytes that can never become valid UTF-8 are
// passed through as they are.
func (d *StreamDecoder) Push(id int32) string {
	d.pending = d.t.appendPiece(d.pending, id, false)
	cut := len(d.pending)
	// Keep back a trailing sequence that could still become a character.
	for k := 1; k <= utf8.UTFMax-1 && k <= len(d.pending); k++ {
		c := d.pending[len(d.pending)-k]
		if c < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(d.pending[len(d.pending)-k:]) {
				cut = len(d.pending) - k
			}
			break
		}
	}
	out := string(d.pending[:cut])
	d.pending = append(d.pending[:0], d.pending[cut:]...)
	return out
}

// Flush returns whatever is pending (an incomplete sequence at the end of
// the stream) and empties the decoder.
func (d *StreamDecoder) Flush() string {
	out := string(d.pending)
	d.pending = d.pending[:0]
	return out
}
