package llama

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/quantize"
)

// benchModel writes the fixtures "small" preset (stories15M's shape) as an
// f16 GGUF; "q8_0" re-encodes its projections to Q8_0 in memory.
func benchModel(b *testing.B, typ string) *Model {
	b.Helper()
	c, _ := fixtures.Preset("small")
	c.DType = formats.F16
	path := filepath.Join(b.TempDir(), "small.gguf")
	if err := fixtures.WriteGGUF(context.Background(), path, c, false); err != nil {
		b.Fatal(err)
	}
	m := openModel(b, path, Options{MaxContext: 256})
	if typ == "q8_0" {
		for i := range m.layers {
			l := &m.layers[i]
			for _, p := range []*linear{l.q, l.k, l.v, l.o, l.gate, l.up, l.down} {
				p.w = toQ8(b, p.w)
			}
		}
		m.output.w = toQ8(b, m.output.w)
	}
	return m
}

func toQ8(b *testing.B, w kernels.BMatrix) kernels.BMatrix {
	n, k := w.Rows(), w.Cols()
	f := make([]float32, n*k)
	for r := range n {
		w.Tile(f[r*k:(r+1)*k], r, r+1, 0, k)
	}
	q := make([]byte, n*k/32*34)
	if err := quantize.QuantizeGGML(formats.Q8_0, q, f); err != nil {
		b.Fatal(err)
	}
	m, err := kernels.NewQ8_0Matrix(q, n, k)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func BenchmarkPrompt(b *testing.B) {
	for _, typ := range []string{"f16", "q8_0"} {
		b.Run(typ, func(b *testing.B) {
			m := benchModel(b, typ)
			ids := make([]int32, 128)
			for i := range ids {
				ids[i] = int32(300 + i*7)
			}
			s := m.NewState(256)
			b.ResetTimer()
			for range b.N {
				s.Reset()
				if _, err := s.Forward(ids, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(ids))/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

func BenchmarkGenerate(b *testing.B) {
	for _, typ := range []string{"f16", "q8_0"} {
		b.Run(typ, func(b *testing.B) {
			m := benchModel(b, typ)
			s := m.NewState(256)
			prompt := make([]int32, 64)
			for i := range prompt {
				prompt[i] = int32(300 + i)
			}
			if _, err := s.Forward(prompt, false); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				s.Truncate(64)
				if _, err := s.Forward([]int32{int32(400 + i%100)}, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
