package llama

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/internal/bnbtest"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/quantize"
)

// patchTensor rewrites the bytes of one tensor of dir/model.safetensors.
func patchTensor(t testing.TB, dir, name string, edit func([]byte)) {
	t.Helper()
	path := filepath.Join(dir, "model.safetensors")
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ti, ok := r.Tensor(name)
	r.Close()
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(b[ti.Offset : ti.Offset+ti.Size])
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// scaleQuantMaps multiplies every X.weight.quant_map of a folder by 0.9,
// so that no table is bitsandbytes' own.
func scaleQuantMaps(t testing.TB, dir string) {
	r, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ti := range r.Tensors() {
		if strings.HasSuffix(ti.Name, ".weight.quant_map") {
			names = append(names, ti.Name)
		}
	}
	r.Close()
	for _, n := range names {
		patchTensor(t, dir, n, func(b []byte) {
			for i := 0; i < len(b); i += 4 {
				v := math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))
				binary.LittleEndian.PutUint32(b[i:], math.Float32bits(v*0.9))
			}
		})
	}
}

// TestBNBFolders opens stories260K quantized to every bitsandbytes type
// and the same folder dequantized to f32 by quantize.Dequant: the fused
// path (the kernels' NF4/FP4 and int8 matrices over the mapped codes, or
// the tile decoder for int8-block and foreign quant_maps) must compute
// the f32 model's logits. Both hold the same weights bit for bit (every
// decoder reproduces Dequant's float32 products), so the only difference
// allowed is the float32 summation order inside the matrix kernels, which
// the fused types tile differently: |Δlogit| ≤ 1e-5·max|logit|, about 80
// float32 ulps of the largest logit (measured: at most 1.5e-5 on logits
// up to 20, i.e. 8e-7 relative; 0 for the tile decoder). Quantizing moves
// the logits by 0.2 to 6, so the bound cannot be met by the wrong weights.
// Greedy generation must be identical.
func TestBNBFolders(t *testing.T) {
	base := openModel(t, storiesHF, Options{})
	prompt := base.Tok.Encode("Once upon a time, there was a little dog who", EncodeDefaults())
	baseLogits := forwardAll(t, base, prompt)
	for _, c := range []struct {
		name  string
		cfg   quantize.Config
		edit  func(testing.TB, string)
		fused any // the Matrix type of the projections
	}{
		{"nf4", quantize.Config{Type: quantize.TypeNF4}, nil, &kernels.FourBitMatrix{}},
		{"nf4+dq", quantize.Config{Type: quantize.TypeNF4, DoubleQuant: true}, nil, &kernels.FourBitMatrix{}},
		{"fp4", quantize.Config{Type: quantize.TypeFP4}, nil, &kernels.FourBitMatrix{}},
		{"fp4+dq, blocks of 128", quantize.Config{Type: quantize.TypeFP4, DoubleQuant: true, Block: 128}, nil, &kernels.FourBitMatrix{}},
		{"int8", quantize.Config{Type: quantize.TypeInt8}, nil, &kernels.Int8RowMatrix{}},
		{"int8-block", quantize.Config{Type: quantize.TypeInt8Block, Block: 64}, nil, &bnbTileMatrix{}},
		{"nf4, quant_map of its own", quantize.Config{Type: quantize.TypeNF4}, scaleQuantMaps, &bnbTileMatrix{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			qpath, dpath := bnbtest.Folders(t, storiesHF, c.cfg, c.edit)
			q, d := openModel(t, qpath, Options{}), openModel(t, dpath, Options{})
			for _, name := range []string{"blk.0.attn_q.weight", "blk.4.ffn_down.weight"} {
				g, ok := q.W.BNB(name)
				ti, _ := q.W.Info(name)
				if !ok || g.Type != c.cfg.Type || len(ti.Shape) != 2 {
					t.Fatalf("%s: not seen as a %v group: %v %v", name, c.cfg.Type, ok, ti.Shape)
				}
				di, _ := d.W.Info(name)
				if ti.Shape[0] != di.Shape[0] || ti.Shape[1] != di.Shape[1] {
					t.Errorf("%s: shape %v, the dequantized %v", name, ti.Shape, di.Shape)
				}
			}
			if got, want := typeName(q.layers[2].down.w), typeName(c.fused); got != want {
				t.Errorf("projection matrix is %s, want %s", got, want)
			}
			ql, dl := forwardAll(t, q, prompt), forwardAll(t, d, prompt)
			worst, scale, moved := 0.0, 0.0, 0.0
			for i := range ql {
				worst = math.Max(worst, math.Abs(float64(ql[i]-dl[i])))
				scale = math.Max(scale, math.Abs(float64(dl[i])))
				moved = math.Max(moved, math.Abs(float64(dl[i]-baseLogits[i])))
			}
			t.Logf("max |Δlogit| fused vs dequantized %.3g (max |logit| %.3g); quantization moved logits by up to %.3g", worst, scale, moved)
			if worst > 1e-5*scale {
				t.Errorf("fused and dequantized logits differ by %.3g > 1e-5·%.3g", worst, scale)
			}
			if moved < 1e-2 {
				t.Errorf("quantization moved the logits by only %.3g: the weights were not quantized?", moved)
			}
			gq, gd := greedy(t, q, prompt, 32), greedy(t, d, prompt, 32)
			for i := range gq {
				if gq[i] != gd[i] {
					t.Fatalf("greedy ids differ at %d:\n fused %v\n f32   %v", i, gq, gd)
				}
			}
		})
	}
}

func forwardAll(t testing.TB, m *Model, ids []int32) []float32 {
	t.Helper()
	out, err := m.NewState(0).Forward(ids, true)
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), out...)
}

func typeName(v any) string {
	switch v.(type) {
	case *kernels.FourBitMatrix:
		return "FourBitMatrix"
	case *kernels.Int8RowMatrix:
		return "Int8RowMatrix"
	case *bnbTileMatrix:
		return "bnbTileMatrix"
	}
	return "other"
}

// TestBNBFolderRefused: a well-formed layout qtool does not read (an
// LLM.int8() weight_format other than row) is ErrUnsupported, exit code 4
// in the CLI; a malformed group (a quant_state blocksize that disagrees
// with the absmax) is ErrFormat.
func TestBNBFolderRefused(t *testing.T) {
	const wf = "model.layers.1.mlp.up_proj.weight_format"
	tiled := bnbtest.Quantize(t, storiesHF, quantize.Config{Type: quantize.TypeInt8}, func(t testing.TB, dir string) {
		patchTensor(t, dir, wf, func(b []byte) { b[0] = 1 })
	})
	_, err := Open(tiled, Options{})
	if !errors.Is(err, formats.ErrUnsupported) || errors.Is(err, formats.ErrFormat) || !errors.Is(err, quantize.ErrUnsupportedBNB) {
		t.Errorf("weight_format col32: %v, want ErrUnsupported", err)
	}
	const st = "model.layers.3.self_attn.k_proj.weight.quant_state.bitsandbytes__nf4"
	bad := bnbtest.Quantize(t, storiesHF, quantize.Config{Type: quantize.TypeNF4}, func(t testing.TB, dir string) {
		patchTensor(t, dir, st, func(b []byte) {
			i := strings.Index(string(b), `"blocksize": 64`)
			copy(b[i:], `"blocksize": 32`)
		})
	})
	_, err = Open(bad, Options{})
	var fe *formats.FormatError
	if !errors.Is(err, formats.ErrFormat) || errors.Is(err, formats.ErrUnsupported) || !errors.As(err, &fe) || !strings.HasPrefix(fe.Tensor, "model.layers.3.self_attn.k_proj.weight") {
		t.Errorf("blocksize 32 with the absmax of 64: %v, want ErrFormat naming the group", err)
	}
}
