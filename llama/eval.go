package llama

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// EvalOptions control Perplexity.
type EvalOptions struct {
	Ctx       int // window length in tokens (default 512, at most the model's context)
	Stride    int // distance between window starts (default Ctx)
	MaxChunks int // windows scored at most (0: all)
	// Progress, when set, is called after each window.
	Progress func(done, total int)
}

// EvalResult is a perplexity measurement.
type EvalResult struct {
	MeanNLL    float64 `json:"mean_nll"`
	Perplexity float64 `json:"perplexity"`
	Tokens     int     `json:"tokens"`
	Chunks     int     `json:"chunks"`
	Ctx        int     `json:"ctx"`
	Stride     int     `json:"stride"`
	Seconds    float64 `json:"seconds"`
	TokensPerS float64 `json:"tokens_per_s"` // positions evaluated per second
}

// ErrTooShort is returned when the data holds fewer tokens than one window.
var ErrTooShort = errors.New("llama: data shorter than one context window")

// Tokenize encodes documents into one stream, each document starting with
// the vocabulary's BOS when it adds one (llama-perplexity's tokenization
// for a single text).
func (m *Model) Tokenize(docs []string) []int32 {
	var ids []int32
	for _, d := range docs {
		ids = append(ids, m.Tok.Encode(d, EncodeDefaults())...)
	}
	return ids
}

// Perplexity scores a token stream the way llama.cpp's llama-perplexity
// does: windows of Ctx tokens starting every Stride tokens, the first
// token of each replaced by BOS (when the vocabulary adds one), and the
// negative log-likelihood summed over the predictions of the window's
// second half (positions Ctx/2 … Ctx−2 predicting the next token), so
// every scored token sees at least Ctx/2 tokens of context.
func (m *Model) Perplexity(ctx context.Context, ids []int32, opts EvalOptions) (EvalResult, error) {
	n := opts.Ctx
	if n <= 0 {
		n = 512
	}
	n = min(n, m.MaxContext())
	if n < 4 {
		return EvalResult{}, fmt.Errorf("llama: context %d is too small to score", n)
	}
	stride := opts.Stride
	if stride <= 0 {
		stride = n
	}
	windows := 0
	if len(ids) >= n {
		windows = (len(ids)-n)/stride + 1
	}
	if opts.MaxChunks > 0 {
		windows = min(windows, opts.MaxChunks)
	}
	if windows == 0 {
		return EvalResult{}, fmt.Errorf("%w: %d tokens, context %d", ErrTooShort, len(ids), n)
	}
	bos, addBOS := m.Tok.BOS(), m.addsBOS()
	st := m.NewState(n)
	buf := make([]int32, n)
	first := n / 2
	var nll float64
	count := 0
	start := time.Now()
	for w := range windows {
		if err := ctx.Err(); err != nil {
			return EvalResult{}, err
		}
		copy(buf, ids[w*stride:w*stride+n])
		if addBOS {
			buf[0] = bos
		}
		st.Reset()
		logits, err := st.Forward(buf, true)
		if err != nil {
			return EvalResult{}, err
		}
		v := m.Cfg.Vocab
		for p := first; p < n-1; p++ {
			lp := logProb(logits[p*v:(p+1)*v], buf[p+1])
			nll -= lp
			count++
		}
		if opts.Progress != nil {
			opts.Progress(w+1, windows)
		}
	}
	sec := time.Since(start).Seconds()
	mean := nll / float64(count)
	return EvalResult{MeanNLL: mean, Perplexity: math.Exp(mean), Tokens: count, Chunks: windows, Ctx: n,
		Stride: stride, Seconds: sec, TokensPerS: float64(windows*n) / sec}, nil
}

// addsBOS reports whether encoding adds a BOS token.
func (m *Model) addsBOS() bool {
	ids := m.Tok.Encode("a", EncodeDefaults())
	return len(ids) > 0 && ids[0] == m.Tok.BOS()
}

// logProb is log softmax(logits)[id], accumulated in float64.
func logProb(logits []float32, id int32) float64 {
	mx := float64(logits[0])
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - mx)
	}
	return float64(logits[id]) - mx - math.Log(sum)
}
