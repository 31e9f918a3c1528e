package convert

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/qtool-dev/qtool/formats"
)

// llama3Rope holds the parameters of rope_scaling {"rope_type": "llama3"}
// (Llama 3.1 and later), with the defaults llama.cpp's converter uses for
// missing entries.
type llama3Rope struct {
	factor, low, high, origCtx float64
}

func parseLlama3Rope(rs config, top config) (llama3Rope, error) {
	p := llama3Rope{factor: 8, low: 1, high: 4, origCtx: 8192}
	for _, f := range []struct {
		key string
		dst *float64
	}{{"factor", &p.factor}, {"low_freq_factor", &p.low}, {"high_freq_factor", &p.high}, {"original_max_position_embeddings", &p.origCtx}} {
		v, ok, err := rs.num(f.key)
		if err != nil {
			return p, err
		}
		if !ok && f.key == "original_max_position_embeddings" {
			// Some configs keep it at the top level.
			if v, ok, err = top.num(f.key); err != nil {
				return p, err
			}
		}
		if ok {
			*f.dst = v
		}
	}
	if !(p.factor > 0) || !(p.low > 0) || !(p.high > 0) || !(p.origCtx > 0) {
		return p, fmt.Errorf("convert: rope_scaling llama3 parameters must be positive: %w", ErrConfig)
	}
	return p, nil
}

// ropeFreqs computes rope_freqs.weight, the per-frequency divisors llama.cpp
// applies on top of the base frequencies for Llama 3 rope scaling, as
// convert_hf_to_gguf.py does in float32 (torch) arithmetic:
//
//	freq[i]   = 1 / base^(2i/dim)                     i = 0 … dim/2-1
//	wavelen   = 2π / freq[i]
//	factor[i] = 1                                     if wavelen < origCtx/high
//	          = factor                                if wavelen > origCtx/low
//	          = 1 / ((1-smooth)/factor + smooth)      otherwise, with
//	  smooth  = (origCtx/wavelen - low) / (high - low)
//
// Each operation is rounded to float32 like the reference's tensors; the
// power is computed in float64 and rounded once, so a value in the smooth
// band may differ from torch's powf by an ulp.
func ropeFreqs(p llama3Rope, base float64, dim int64) []float32 {
	out := make([]float32, dim/2)
	b := float32(base)
	twoPi := float32(2 * math.Pi)
	highWave := float32(p.origCtx / p.high)
	lowWave := float32(p.origCtx / p.low)
	factor := float32(p.factor)
	for i := range out {
		e := float32(2*i) / float32(dim)
		pw := float32(math.Pow(float64(b), float64(e)))
		freq := float32(1) / pw
		wave := twoPi / freq
		switch {
		case wave < highWave:
			out[i] = 1
		case wave > lowWave:
			out[i] = factor
		default:
			smooth := float32(float32(p.origCtx)/wave-float32(p.low)) / float32(p.high-p.low)
			out[i] = float32(1) / (float32((1-smooth)/factor) + smooth)
		}
	}
	return out
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func ropeFreqsTensor(name string, v []float32) formats.Tensor {
	b := f32Bytes(v)
	return formats.Tensor{
		TensorInfo: formats.TensorInfo{Name: name, DType: formats.F32, Shape: []int64{int64(len(v))}, Size: int64(len(b))},
		Data:       formats.BytesWriter(b),
	}
}
