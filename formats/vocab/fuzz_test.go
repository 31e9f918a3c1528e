package vocab

import (
	"bytes"
	"errors"
	"math"
	"os"
	"reflect"
	"testing"
)

// FuzzSentencePiece: no input makes the ModelProto reader panic; whatever
// parses re-encodes to bytes that parse to the same model and re-encode
// identically; validation and conversion of a parsed model do not panic.
func FuzzSentencePiece(f *testing.F) {
	if b, err := os.ReadFile("testdata/tok512.model"); err == nil {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add(miniSP().encode())
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseSentencePiece(b, "fuzz")
		if err != nil {
			return
		}
		enc := m.encode()
		m2, err := parseSentencePiece(enc, "fuzz")
		if err != nil {
			t.Fatalf("re-encoded model does not parse: %v", err)
		}
		if !sameSP(m, m2) {
			t.Fatalf("re-encoded model differs")
		}
		if !bytes.Equal(enc, m2.encode()) {
			t.Fatalf("encoding is not stable")
		}
		if m.validate("fuzz") == nil {
			dir := t.TempDir()
			if err := os.WriteFile(dir+"/"+fileModel, b, 0o644); err != nil {
				t.Fatal(err)
			}
			v, err := FromHFFolder(dir)
			if err != nil {
				t.Fatalf("valid model does not convert: %v", err)
			}
			if _, err := v.WriteHF(dir + "/out"); err != nil && !isWriteRefusal(err) {
				t.Fatalf("WriteHF: %v", err)
			}
		}
	})
}

// isWriteRefusal reports the documented WriteHF refusals (invalid UTF-8,
// duplicates, non-finite scores).
func isWriteRefusal(err error) bool {
	return errors.Is(err, ErrUnsupportedTokenizer) || errors.Is(err, ErrVocab)
}

func sameSP(a, b *spModel) bool {
	if len(a.Pieces) != len(b.Pieces) {
		return false
	}
	for i := range a.Pieces {
		p, q := a.Pieces[i], b.Pieces[i]
		if p.Piece != q.Piece || p.Type != q.Type || math.Float32bits(p.Score) != math.Float32bits(q.Score) {
			return false
		}
	}
	ac, bc := *a, *b
	ac.Pieces, bc.Pieces = nil, nil
	return reflect.DeepEqual(ac, bc)
}

// FuzzTokenizerJSON: no tokenizer.json makes the reader panic, and one that
// converts writes back out without panicking.
func FuzzTokenizerJSON(f *testing.F) {
	f.Add(gpt2JSON(`{"a": 0, "b": 1, "ab": 2}`, `["a b"]`, byteLevelPre))
	f.Add(gpt2JSON(`{"a": 0, "b": 1, "ab": 2}`, `[["a", "b"]]`, `{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, {"type": "ByteLevel", "use_regex": true}]}`))
	f.Add([]byte(`{"added_tokens": [{"id": 0, "content": "<unk>", "special": true}], "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}]},
		"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<unk>"}}, {"Sequence": {"id": "A"}}], "pair": []},
		"model": {"type": "BPE", "byte_fallback": true, "vocab": {"<unk>": 0, "▁": 1, "a": 2, "▁a": 3}, "merges": ["▁ a"]}}`))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": -1}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(dir+"/"+fileTokenizer, b, 0o644); err != nil {
			t.Fatal(err)
		}
		v, err := FromHFFolder(dir)
		if err != nil {
			return
		}
		if _, err := v.WriteHF(dir + "/out"); err != nil && !isWriteRefusal(err) {
			t.Fatalf("WriteHF: %v", err)
		}
	})
}
