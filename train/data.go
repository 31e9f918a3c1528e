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
	"github.com/qtool-dev/qtool/tokenizer/chat"
)

// MaxDataBytes bounds the decompressed size of a dataset.
const MaxDataBytes = 1 << 30

// Sample is one training example: Text alone (loss on every token),
// Prompt + Completion (loss on the completion and the EOS only), or a
// conversation, Messages, rendered with a chat template (loss on the
// assistant turns only, see EncodeChat).
type Sample struct {
	Text       string
	Prompt     string
	Completion string
	Messages   []chat.Message
	// Where is "file:line" for a JSONL sample, for error messages.
	Where string
}

// ReadSamples reads a dataset: plain text (the whole file is one sample)
// or JSONL (.jsonl / .json, one object a line with "text", "prompt" and
// "completion", or "messages": a list of {"role", "content"} objects with
// role system, user or assistant); a .gz or .zst suffix is decompressed first. A bad line is
// reported as "file:line: what" wrapping formats.ErrFormat.
func ReadSamples(path string) ([]Sample, error) {
	out, _, err := ReadSamplesWith(path, ReadOptions{})
	return out, err
}

// ReadOptions control ReadSamplesWith.
type ReadOptions struct {
	// SkipBad skips a bad JSONL line instead of failing, reporting it
	// ("file:line: what") to OnBad when set.
	SkipBad bool
	OnBad   func(msg string)
}

// ReadSamplesWith is ReadSamples with options; it also returns the number
// of bad lines skipped.
func ReadSamplesWith(path string, o ReadOptions) ([]Sample, int, error) {
	s, n, err := readSamples(path, o)
	return s, n, err
}

func readSamples(path string, o ReadOptions) ([]Sample, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var r io.Reader = f
	name := path
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %v: %w", path, err, formats.ErrFormat)
		}
		defer zr.Close()
		r, name = zr, strings.TrimSuffix(name, ".gz")
	case strings.HasSuffix(name, ".zst"):
		zr, err := zstd.NewReader(f, zstd.WithDecoderMaxMemory(MaxDataBytes))
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %v: %w", path, err, formats.ErrFormat)
		}
		defer zr.Close()
		r, name = zr, strings.TrimSuffix(name, ".zst")
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxDataBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %v: %w", path, err, formats.ErrFormat)
	}
	if len(b) > MaxDataBytes {
		return nil, 0, fmt.Errorf("%s: more than %d bytes: %w", path, MaxDataBytes, formats.ErrLimit)
	}
	if strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".json") {
		return jsonlSamples(b, path, o)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, 0, fmt.Errorf("%s: empty dataset: %w", path, formats.ErrFormat)
	}
	return []Sample{{Text: string(b)}}, 0, nil
}

func jsonlSamples(b []byte, path string, o ReadOptions) ([]Sample, int, error) {
	var out []Sample
	skipped := 0
	bad := func(err error) error {
		if !o.SkipBad {
			return err
		}
		skipped++
		if o.OnBad != nil {
			o.OnBad(err.Error())
		}
		return nil
	}
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
			Messages   *[]struct {
				Role    *string `json:"role"`
				Content *string `json:"content"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(l, &rec); err != nil {
			if err := bad(fmt.Errorf("%s:%d: %v: %w", path, line, err, formats.ErrFormat)); err != nil {
				return nil, skipped, err
			}
			continue
		}
		where := fmt.Sprintf("%s:%d", path, line)
		switch {
		case rec.Messages != nil && rec.Text == nil && rec.Prompt == nil && rec.Completion == nil:
			msgs, err := chatMessages(*rec.Messages)
			if err != nil {
				if err := bad(fmt.Errorf("%s: %v: %w", where, err, formats.ErrFormat)); err != nil {
					return nil, skipped, err
				}
				continue
			}
			out = append(out, Sample{Messages: msgs, Where: where})
		case rec.Text != nil && rec.Prompt == nil && rec.Completion == nil && rec.Messages == nil:
			out = append(out, Sample{Text: *rec.Text})
		case rec.Text == nil && rec.Prompt != nil && rec.Completion != nil && rec.Messages == nil:
			out = append(out, Sample{Prompt: *rec.Prompt, Completion: *rec.Completion})
		default:
			if err := bad(fmt.Errorf("%s:%d: want a \"text\" field, \"prompt\" and \"completion\", or \"messages\": %w", path, line, formats.ErrFormat)); err != nil {
				return nil, skipped, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, skipped, fmt.Errorf("%s: %v: %w", path, err, formats.ErrFormat)
	}
	if len(out) == 0 {
		return nil, skipped, fmt.Errorf("%s: empty dataset (no samples; %d bad lines skipped): %w", path, skipped, formats.ErrFormat)
	}
	return out, skipped, nil
}

// chatMessages checks the "messages" of a JSONL line.
func chatMessages(raw []struct {
	Role    *string `json:"role"`
	Content *string `json:"content"`
}) ([]chat.Message, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("\"messages\" is empty")
	}
	out := make([]chat.Message, len(raw))
	for i, m := range raw {
		if m.Role == nil || m.Content == nil {
			return nil, fmt.Errorf("message %d: want string \"role\" and \"content\"", i)
		}
		switch *m.Role {
		case "system", "user", "assistant":
		default:
			return nil, fmt.Errorf("message %d: role %q (want system, user or assistant)", i, *m.Role)
		}
		out[i] = chat.Message{Role: *m.Role, Content: *m.Content}
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
	ws, _, _ := PackWith(tok, samples, seqLen, "")
	return ws
}

// PackStats counts the samples PackWith saw and what it did with the
// ones longer than a window (seqLen+1 tokens with BOS and EOS).
type PackStats struct {
	Samples   int `json:"samples"`
	Long      int `json:"long_samples"`
	Truncated int `json:"truncated"`
	Split     int `json:"split"`
	Dropped   int `json:"dropped"`
}

// PackWith is Pack with a policy for long samples: "split" (or "") lets
// a sample run on across consecutive windows, "truncate" keeps its first
// seqLen+1 tokens, "drop" leaves it out.
func PackWith(tok *tokenizer.Tokenizer, samples []Sample, seqLen int, long string) ([]Window, PackStats, error) {
	return PackOpts(tok, samples, seqLen, PackOptions{Long: long})
}

// PackOptions control PackOpts.
type PackOptions struct {
	// Long is the long-sample policy of PackWith.
	Long string
	// Chat renders the Messages samples (required when there are any).
	Chat *chat.Template
	// TrainOnPrompt puts the loss on every token of a conversation, not
	// only on its assistant turns.
	TrainOnPrompt bool
}

// HasMessages reports whether any sample is a conversation.
func HasMessages(samples []Sample) bool {
	for _, s := range samples {
		if s.Messages != nil {
			return true
		}
	}
	return false
}

// PackOpts is PackWith with options. A conversation is encoded by
// EncodeChat and ends with the template's end of turn: no EOS is added
// after it. A conversation the template cannot render is an error naming
// its file:line, wrapping formats.ErrFormat.
func PackOpts(tok *tokenizer.Tokenizer, samples []Sample, seqLen int, o PackOptions) ([]Window, PackStats, error) {
	long := o.Long
	var st PackStats
	switch long {
	case "", "split", "truncate", "drop":
	default:
		return nil, st, fmt.Errorf("train: long-samples %q (want truncate, split or drop): %w", long, ErrConfig)
	}
	var ids []int32
	var tgt []bool
	no := false
	for _, s := range samples {
		st.Samples++
		mark := len(ids)
		if s.Messages != nil {
			if o.Chat == nil {
				return nil, st, fmt.Errorf("train: %s: a \"messages\" sample needs a chat template: %w", s.Where, ErrConfig)
			}
			c, m, err := EncodeChat(tok, o.Chat, s.Messages, o.TrainOnPrompt)
			if err != nil {
				return nil, st, fmt.Errorf("%s: %v: %w", s.Where, err, formats.ErrFormat)
			}
			ids = append(ids, c...)
			tgt = append(tgt, m...)
		} else if s.Prompt != "" || s.Completion != "" {
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
		if s.Messages == nil {
			ids = append(ids, tok.EOS())
			tgt = append(tgt, true)
		}
		if n := len(ids) - mark; n > seqLen+1 {
			st.Long++
			switch long {
			case "truncate":
				ids, tgt = ids[:mark+seqLen+1], tgt[:mark+seqLen+1]
				st.Truncated++
			case "drop":
				ids, tgt = ids[:mark], tgt[:mark]
				st.Dropped++
			default:
				st.Split++
			}
		}
	}
	var out []Window
	for s := 0; s+seqLen+1 <= len(ids); s += seqLen {
		out = append(out, Window{Inputs: ids[s : s+seqLen], Targets: ids[s+1 : s+seqLen+1], Mask: tgt[s+1 : s+seqLen+1]})
	}
	return out, st, nil
}
