package lora

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// ErrLint is returned (by LintReport.Err) for an adapter whose lint found
// errors: it does not fit its base model. It is an input error
// (formats.ErrFormat; exit code 3 in the CLI).
var ErrLint = formats.NewRule("adapter does not fit its base model", formats.ErrFormat)

// Problem severities.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Problem is one finding of Lint. Target is the base weight (HF name) it
// concerns, "" for the adapter as a whole.
type Problem struct {
	Severity string `json:"severity"`
	Target   string `json:"target,omitempty"`
	Message  string `json:"message"`
}

// LintReport is what Lint found.
type LintReport struct {
	Problems []Problem `json:"problems"`
	// Pairs is the number of LoRA pairs; Matched those whose base tensor
	// exists with the pair's shape.
	Pairs   int `json:"pairs"`
	Matched int `json:"matched"`
	// NoOp: applying the adapter would change nothing (every pair is
	// unmatched, has an all-zero factor or a zero scale).
	NoOp   bool   `json:"no_op"`
	Format Format `json:"format,omitempty"`
	Arch   string `json:"arch,omitempty"`
}

// Errors counts the error problems.
func (r *LintReport) Errors() int { return r.count(SeverityError) }

// Warnings counts the warning problems.
func (r *LintReport) Warnings() int { return r.count(SeverityWarning) }

func (r *LintReport) count(sev string) int {
	n := 0
	for _, p := range r.Problems {
		if p.Severity == sev {
			n++
		}
	}
	return n
}

// Err is nil when Lint found no error, else an error wrapping ErrLint
// that quotes the first error and counts the others.
func (r *LintReport) Err() error {
	n := r.Errors()
	if n == 0 {
		return nil
	}
	var first Problem
	for _, p := range r.Problems {
		if p.Severity == SeverityError {
			first = p
			break
		}
	}
	msg := first.Message
	if first.Target != "" {
		msg = first.Target + ": " + msg
	}
	if n > 1 {
		msg += fmt.Sprintf(" (and %d more errors)", n-1)
	}
	return fmt.Errorf("%w: %s", ErrLint, msg)
}

func (r *LintReport) add(sev, target, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Severity: sev, Target: target, Message: fmt.Sprintf(format, args...)})
}

// Lint checks an adapter against its base model:
//
//   - every pair's target exists in the base (by its GGUF name for a GGUF
//     base) with the shape [Out, In] (a bitsandbytes 4-bit base by the
//     shape in its quant_state);
//   - ranks and alphas agree with the adapter's config (PEFT r,
//     rank_pattern, lora_alpha, alpha_pattern, use_rslora; MLX
//     lora_parameters.rank) and every Scale with its alpha and rank;
//   - factors are finite;
//   - an all-zero A or B, or a zero scale, is a warning: the pair is a
//     no-op; an adapter that matches no base tensor is an error.
//
// A base of another architecture than the adapter's is an error.
func Lint(ad *Adapter, base formats.Source) LintReport {
	r := LintReport{Pairs: len(ad.Pairs), Format: ad.Format, Arch: ad.Arch}
	if len(ad.Pairs) == 0 {
		r.add(SeverityError, "", "the adapter has no LoRA pairs")
		r.NoOp = true
		return r
	}
	if base == nil {
		r.add(SeverityError, "", "no base model to check the adapter against")
		return r
	}
	bi, err := describeBase(base)
	if err != nil {
		r.add(SeverityError, "", "base model: %v", err)
		return r
	}
	if bi.arch != nil && ad.Arch != "" && ad.Arch != bi.arch.Name {
		r.add(SeverityError, "", "the adapter is for %q, the base model is %q", ad.Arch, bi.arch.Name)
	}
	byName := map[string]formats.TensorInfo{}
	for _, ti := range base.Tensors() {
		byName[ti.Name] = ti
	}
	effective, zero := 0, 0
	for i := range ad.Pairs {
		p := &ad.Pairs[i]
		if err := p.Validate(); err != nil {
			r.add(SeverityError, p.Target, "%v", err)
			continue
		}
		matched := lintMatch(&r, p, bi, byName, base)
		if matched {
			r.Matched++
		}
		lintConfig(&r, ad, p)
		if bad := nonFinite(p.A) + nonFinite(p.B); bad > 0 {
			r.add(SeverityError, p.Target, "%d NaN or infinite values in lora_A/lora_B", bad)
		}
		noop := true
		switch {
		case allZeroF32(p.B):
			r.add(SeverityWarning, p.Target, "no-op: lora_B is all zeros (an untrained adapter?)")
		case allZeroF32(p.A):
			r.add(SeverityWarning, p.Target, "no-op: lora_A is all zeros")
		case p.Scale == 0:
			r.add(SeverityWarning, p.Target, "no-op: scale is 0")
		default:
			noop = false
		}
		if noop {
			zero++
		}
		if matched && !noop {
			effective++
		}
	}
	if r.Matched == 0 {
		r.add(SeverityError, "", "the adapter matches no tensor of the base model: applying it would change nothing")
	} else if zero == len(ad.Pairs) {
		r.add(SeverityWarning, "", "no-op: every pair has a zero factor or scale; applying the adapter changes nothing")
	}
	r.NoOp = effective == 0
	return r
}

// lintMatch checks a pair's base tensor, reporting what is wrong.
func lintMatch(r *LintReport, p *Pair, bi *baseInfo, byName map[string]formats.TensorInfo, base formats.Source) bool {
	name := p.Target
	if bi.gguf {
		n, _, _, ok := bi.arch.GGUFName(p.Target)
		if !ok {
			r.add(SeverityError, p.Target, "unknown target: no %s tensor has this name", bi.arch.Name)
			return false
		}
		name = n
	}
	ti, ok := byName[name]
	if !ok {
		r.add(SeverityError, p.Target, "unknown target: the base model has no tensor %s", name)
		return false
	}
	shape, err := weightShape(base, ti, byName)
	if err != nil {
		r.add(SeverityError, p.Target, "base tensor %s: %v", name, err)
		return false
	}
	if len(shape) != 2 || shape[0] != int64(p.Out) || shape[1] != int64(p.In) {
		r.add(SeverityError, p.Target, "wrong shape: the adapter's delta is [%d, %d] (out, in), base tensor %s is %v", p.Out, p.In, name, shape)
		return false
	}
	return true
}

// lintConfig checks a pair's rank, alpha and scale against the config.
func lintConfig(r *LintReport, ad *Adapter, p *Pair) {
	module := moduleOf(p.Target)
	switch ad.Format {
	case PEFT:
		// The Adapter keeps the patterns as maps, without their JSON order,
		// so a value any matching key gives is accepted.
		c := &ad.Config
		if want := patternCandidates(c.RankPattern, module, c.Rank); !containsValue(want, p.Rank) {
			r.add(SeverityError, p.Target, "rank mismatch: the factors have rank %d, adapter_config.json gives %v (r / rank_pattern)", p.Rank, want)
		}
		if want := patternCandidates(c.AlphaPattern, module, c.Alpha); !containsValue(want, p.Alpha) {
			r.add(SeverityError, p.Target, "alpha mismatch: the pair has alpha %g, adapter_config.json gives %v (lora_alpha / alpha_pattern)", p.Alpha, want)
		}
		if want := Scale(p.Alpha, p.Rank, c.RSLoRA); !sameScale(want, p.Scale) {
			r.add(SeverityError, p.Target, "scale %g does not follow from alpha %g and rank %d (use_rslora %v): want %g", p.Scale, p.Alpha, p.Rank, c.RSLoRA, want)
		}
	case MLX:
		if ad.Config.Rank > 0 && ad.Config.Rank != p.Rank {
			r.add(SeverityError, p.Target, "rank mismatch: the factors have rank %d, lora_parameters.rank is %d", p.Rank, ad.Config.Rank)
		}
	case GGUF:
		want := 1.0
		if p.Alpha != 0 {
			want = p.Alpha / float64(p.Rank)
		}
		if !sameScale(want, p.Scale) {
			r.add(SeverityError, p.Target, "scale %g does not follow from adapter.lora.alpha %g and rank %d: want %g", p.Scale, p.Alpha, p.Rank, want)
		}
	}
}

// weightShape is a base weight's logical [out, in]: its Shape, or for a
// bitsandbytes / qtool int8-block weight the shape its quant_state records.
func weightShape(base formats.Source, ti formats.TensorInfo, byName map[string]formats.TensorInfo) ([]int64, error) {
	for _, sfx := range []string{".quant_state.bitsandbytes__nf4", ".quant_state.bitsandbytes__fp4", ".quant_state.qtool__int8_block"} {
		qs, ok := byName[ti.Name+sfx]
		if !ok {
			continue
		}
		if qs.Size > 1<<16 {
			return nil, fmt.Errorf("quant_state %s is %d bytes", qs.Name, qs.Size)
		}
		sec, err := base.Section(qs.Name)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(sec)
		if err != nil {
			return nil, err
		}
		var st struct {
			Shape []int64 `json:"shape"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("quant_state %s: %v", qs.Name, err)
		}
		return st.Shape, nil
	}
	if strings.HasSuffix(ti.Name, ".weight") && ti.DType == formats.U8 && len(ti.Shape) == 2 && ti.Shape[1] == 1 {
		return nil, fmt.Errorf("packed U8 weight %v without a quant_state", ti.Shape)
	}
	return ti.Shape, nil
}

func allZeroF32(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

func nonFinite(v []float32) int {
	n := 0
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			n++
		}
	}
	return n
}

// candidates are the values of every pattern key selecting module, or def
// when none does.
func patternCandidates[V comparable](pat map[string]V, module string, def V) []V {
	var out []V
	for _, k := range specificFirst(pat) {
		if matchPattern(k, module) {
			out = append(out, pat[k])
		}
	}
	if len(out) == 0 {
		out = append(out, def)
	}
	return out
}

func containsValue[V comparable](vs []V, v V) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}
