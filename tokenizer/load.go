package tokenizer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/vocab"
)

// FromHFFolder reads the tokenizer of a Hugging Face model folder. With a
// tokenizer.json it behaves as Hugging Face tokenizers does with that file
// (its normalizer, pre-tokenizer, added tokens and post-processor), the ids
// being those vocab.FromHFFolder reads; with only a tokenizer.model it
// behaves as llama.cpp does with the converted vocabulary (see New).
// tokenizers recognises special tokens in the text by default: pass
// EncodeOptions.ParseSpecial for its ids.
func FromHFFolder(dir string) (*Tokenizer, error) {
	v, err := vocab.FromHFFolder(dir)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "tokenizer.json")
	data, err := readLimited(file)
	if errors.Is(err, fs.ErrNotExist) {
		return New(v)
	}
	if err != nil {
		return nil, err
	}
	return newHF(v, data, file)
}

// FromGGUF reads the tokenizer.ggml.* metadata of a GGUF file and returns a
// tokenizer with llama.cpp's behaviour (see New).
func FromGGUF(path string) (*Tokenizer, error) {
	r, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	v, err := vocab.FromMeta(r.Meta())
	if err != nil {
		var fe *formats.FormatError
		if errors.As(err, &fe) && fe.File == "" {
			fe.File = path
		}
		return nil, err
	}
	return New(v)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, vocab.MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > vocab.MaxFileBytes {
		return nil, &formats.FormatError{File: path, Offset: -1, Err: vocab.ErrTooLarge,
			Detail: fmt.Sprintf("more than %d bytes", vocab.MaxFileBytes)}
	}
	return b, nil
}
