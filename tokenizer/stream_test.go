package tokenizer

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestStreamDecoderBytes: an emoji that tok512 spells with four byte
// tokens comes out whole, once its last byte arrives.
func TestStreamDecoderBytes(t *testing.T) {
	tk, err := FromGGUF(goldenVocabs[0].gguf)
	if err != nil {
		t.Fatal(err)
	}
	ids := tk.Encode("a🦙b", EncodeOptions{AddBOS: boolp(false)})
	d := tk.NewStreamDecoder()
	var got []string
	for _, id := range ids {
		got = append(got, d.Push(id))
	}
	// ▁a, then <0xF0> <0x9F> <0xA6> <0x99>, then b.
	want := []string{" a", "", "", "", "🦙", "b"}
	if !slices.Equal(got, want) {
		t.Fatalf("pushes %q (ids %v), want %q", got, ids, want)
	}
	if rest := d.Flush(); rest != "" {
		t.Fatalf("Flush %q", rest)
	}
}

// TestStreamDecoderTruncated: bytes that can never complete a character
// are passed on; an incomplete sequence at the end comes out of Flush.
func TestStreamDecoderTruncated(t *testing.T) {
	tk, err := FromGGUF(goldenVocabs[0].gguf)
	if err != nil {
		t.Fatal(err)
	}
	b := func(x byte) int32 { return tk.byteTok[x] }
	d := tk.NewStreamDecoder()
	for _, step := range []struct {
		id   int32
		want string
	}{{b(0xF0), ""}, {b(0x9F), ""}, {b('x'), "\xf0\x9fx"}, {b(0xFF), "\xff"}, {b(0xE2), ""}} {
		if got := d.Push(step.id); got != step.want {
			t.Fatalf("Push(%d) = %q, want %q", step.id, got, step.want)
		}
	}
	if got := d.Flush(); got != "\xe2" {
		t.Fatalf("Flush = %q", got)
	}
}

// TestStreamDecoderCorpus: over the corpus and every tokenizer, each push
// is valid UTF-8 and the pushes add up to Decode (with the leading space
// Decode removes).
func TestStreamDecoderCorpus(t *testing.T) {
	texts := corpus(t)
	for _, nt := range roundTripTokenizers(t, !testing.Short() && nodeAvailable() == "") {
		t.Run(nt.name, func(t *testing.T) {
			for _, x := range texts {
				ids := nt.tk.Encode(x, EncodeOptions{AddBOS: boolp(false), ParseSpecial: true})
				d := nt.tk.NewStreamDecoder()
				var sb strings.Builder
				for _, id := range ids {
					s := d.Push(id)
					if !utf8.ValidString(s) {
						t.Fatalf("%q: push of %d gave invalid UTF-8 %q", clip(x), id, s)
					}
					sb.WriteString(s)
				}
				sb.WriteString(d.Flush())
				want := nt.tk.Decode(ids)
				got := sb.String()
				if got != want && got != " "+want {
					t.Fatalf("%q: stream %q, Decode %q", clip(x), clip(got), clip(want))
				}
			}
		})
	}
}
