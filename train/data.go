package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/tokenizer"
)

// MaxDataBytes bounds the decompressed size of a dataset.
const MaxDataBytes = 1 << 30

// Sample is one training example: Text alone (loss on every token), or
// Prompt + Completion (loss on the completion and the EOS only).
type Sample struct {
	Text       string
	Prompt     string
	Completion string
}

// ReadSamples reads a dataset: plain text (the whole file is one sample)
// or JSONL (.jsonl / .json, one object a line with "text", or "prompt" and
// "completion"); a .gz or .zst suffix is decompressed first. A bad line is
// reported as "file:line: what" wrapping formats.ErrFormat.
func ReadSamples(path string) ([]Sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	name := path
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", path, err, formats.ErrFormat)
		}
		defer zr.Close()
		r, name = zr, strings.TrimSuffix(name, ".gz")
	case strings.HasSuffix(name, ".zst"):
		zr, err := zstd.NewReader(f, zstd.WithDecoderMaxMemory(MaxDataBytes))
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", path, err, formats.ErrFormat)
		}
		defer zr.Close()
		r, name = zr, strings.TrimSuffix(name, ".zst")
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxDataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", path, err, formats.ErrFormat)
	}
	if len(b) > MaxDataBytes {
		return nil, fmt.Errorf("%s: more than %d bytes: %w", path, MaxDataBytes, formats.ErrLimit)
	}
	if strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".json") {
		return jsonlSamples(b, path)
	}
	return []Sample{{Text: string(b)}}, nil
}

func jsonlSamples(b []byte, path string) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	line := 0
	for sc.Scan() {
		line++
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		var rec struct {
			Text       *string `json:"text"`
			Prompt     *string `json:"prompt"`
			Completion *string `json:"completion"`
		}
		if err := json.Unmarshal(l, &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %v: %w", path, line, err, formats.ErrFormat)
		}
		switch {
		case rec.Text != nil && rec.Prompt == nil && rec.Completion == nil:
			out = append(out, Sample{Text: *rec.Text})
		case rec.Text == nil && rec.Prompt != nil && rec.Completion != nil:
			out = append(out, Sample{Prompt: *rec.Prompt, Completion: *rec.Completion})
		default:
			return nil, fmt.Errorf("%s:%d: want a \"text\" field, or \"prompt\" and \"completion\": %w", path, line, formats.ErrFormat)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", path, err, formats.ErrFormat)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no samples: %w", path, formats.ErrFormat)
	}
	return out, nil
}

// Window is one packed training sequence: Inputs[i] predicts Targets[i],
// counted in the loss where Mask[i].
type Window struct {
	Inputs, Targets []int32
	Mask            []bool
}

// Pack tokenizes the samples into one stream — each sample as the
// vocabulary encodes it (BOS when it adds one), then EOS — and cuts it into
// windows of seqLen predictions (seqLen+1 tokens, consecutive windows
// sharing one token). BOS is never a target; prompt tokens are not
// targets. A tail shorter than a window is dropped.
func Pack(tok *tokenizer.Tokenizer, samples []Sample, seqLen int) []Window {
	var ids []int32
	var tgt []bool
	no := false
	for _, s := range samples {
		if s.Prompt != "" || s.Completion != "" {
			p := tok.Encode(s.Prompt, tokenizer.EncodeOptions{ParseSpecial: true})
			c := tok.Encode(s.Completion, tokenizer.EncodeOptions{ParseSpecial: true, AddBOS: &no, AddEOS: &no})
			ids = append(ids, p...)
			for range p {
				tgt = append(tgt, false)
			}
			ids = append(ids, c...)
			for range c {
				tgt = append(tgt, true)
			}
		} else {
			t := tok.Encode(s.Text, tokenizer.EncodeOptions{ParseSpecial: true, AddEOS: &no})
			ids = append(ids, t...)
			for _, id := range t {
				tgt = append(tgt, id != tok.BOS())
			}
		}
		ids = append(ids, tok.EOS())
		tgt = append(tgt, true)
	}
	var out []Window
	for s := 0; s+seqLen+1 <= len(ids); s += seqLen {
		out = append(out, Window{Inputs: ids[s : s+seqLen], Targets: ids[s+1 : s+seqLen+1], Mask: tgt[s+1 : s+seqLen+1]})
	}
	return out
}
