package tokenizer

import "unicode/utf8"

// GPT-2's byte-to-unicode alphabet (byte-level BPE): the printable bytes
// '!'…'~', '¡'…'¬' and '®'…'ÿ' stand for themselves; the other 68 bytes map,
// in byte order, to U+0100, U+0101, … so that every byte is one printable
// character. A space (0x20) becomes 'Ġ' (U+0120), a newline 'Ċ' (U+010A).
var (
	byteToRune [256]rune
	byteToStr  [256]string
	runeToByte map[rune]byte
)

func init() {
	runeToByte = make(map[rune]byte, 256)
	next := rune(256)
	for b := 0; b < 256; b++ {
		r := rune(b)
		printable := '!' <= r && r <= '~' || '¡' <= r && r <= '¬' || '®' <= r && r <= 'ÿ'
		if !printable {
			r = next
			next++
		}
		byteToRune[b] = r
		byteToStr[b] = string(r)
		runeToByte[r] = byte(b)
	}
}

// appendByteLevel appends the byte-level spelling of s (one alphabet
// character per byte) to dst.
func appendByteLevel(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = append(dst, byteToStr[s[i]]...)
	}
	return dst
}

// appendByteLevelDecoded appends the bytes a byte-level token spells. A
// character outside the alphabet (added tokens written in plain text) is
// copied as its UTF-8.
func appendByteLevelDecoded(dst []byte, tok string) []byte {
	for i := 0; i < len(tok); {
		r, size := utf8.DecodeRuneInString(tok[i:])
		if b, ok := runeToByte[r]; ok {
			dst = append(dst, b)
		} else {
			dst = append(dst, tok[i:i+size]...)
		}
		i += size
	}
	return dst
}
