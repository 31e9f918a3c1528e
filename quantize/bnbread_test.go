package quantize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

// TestBNBWeightsGoldens reads back what Plan writes for the bitsandbytes
// goldens' inputs and compares each group's views with the goldens
// (computed by the independent numpy implementation): the packed codes,
// the absmax (for double quantization the golden reconstruction
// nf4dq.absmax_dequant), CB/SCB, the 8-bit codes, and DequantizeRange
// with the goldens' dequantized values. Every sub-range decodes to the
// same values as the whole.
func TestBNBWeightsGoldens(t *testing.T) {
	g := layoutGoldens(t)
	src := layoutSource(t, g)
	f32 := func(name string) []float32 {
		b := goldenBytes(t, g, name)
		v := make([]float32, len(b)/4)
		ToFloat32(v, b, formats.F32)
		return v
	}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"nf4", Config{Type: TypeNF4}},
		{"nf4+dq", Config{Type: TypeNF4, DoubleQuant: true}},
		{"fp4", Config{Type: TypeFP4}},
		{"int8", Config{Type: TypeInt8}},
		{"int8-block", Config{Type: TypeInt8Block, Block: 256}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, _ := planST(t, src, c.cfg)
			ws, err := BNBWeights(r)
			if err != nil {
				t.Fatal(err)
			}
			if len(ws) != len(layoutInputs) {
				t.Fatalf("%d groups, want %d", len(ws), len(layoutInputs))
			}
			for _, x := range layoutInputs {
				in, _ := g.Tensor(x + ".input")
				w := ws[layoutName(x)]
				if w == nil {
					t.Fatalf("%s: no group", x)
				}
				if w.Type != c.cfg.Type || w.DoubleQuant != c.cfg.DoubleQuant || !slices.Equal(w.Shape, in.Shape) || !w.StandardMap() {
					t.Errorf("%s: type %v dq %v shape %v standard %v", x, w.Type, w.DoubleQuant, w.Shape, w.StandardMap())
				}
				var stored int64
				for _, m := range w.Members {
					stored += m.Size
				}
				if w.StoredBytes() != stored || len(w.Companions()) != len(w.Members)-1 || w.Members[0].Name != w.Name {
					t.Errorf("%s: members %v", x, w.Members)
				}
				dec := make([]float32, in.Size/4)
				if err := w.DequantizeRange(dec, 0); err != nil {
					t.Fatal(err)
				}
				kind := c.cfg.Type.String()
				switch c.cfg.Type {
				case TypeNF4, TypeFP4:
					packed := x + "." + kind + ".packed"
					if x == "C" && kind == "nf4" {
						packed = "C.nf4.packed_zero7"
					}
					wantAbs := f32(x + ".nf4.absmax")
					if c.cfg.DoubleQuant {
						wantAbs = f32(x + ".nf4dq.absmax_dequant")
					}
					if !bytes.Equal(w.Codes, goldenBytes(t, g, packed)) || !sameTable(w.Absmax, wantAbs) || w.Blocksize != 64 {
						t.Errorf("%s: codes or absmax differ from the goldens", x)
					}
					want := x + "." + kind + ".dequant_f16"
					switch {
					case c.cfg.DoubleQuant && x == "C":
						want = "C.nf4dq.dequant_f16_zero7"
					case c.cfg.DoubleQuant:
						want = x + ".nf4dq.dequant_f16"
					case x == "C" && kind == "nf4":
						want = "" // GPU zero block (-0.0) vs qtool's exact code (+0.0)
					}
					if want != "" {
						h := make([]byte, 2*len(dec))
						FromFloat32(h, dec, formats.F16)
						if !bytes.Equal(h, goldenBytes(t, g, want)) {
							t.Errorf("%s: DequantizeRange differs from %s", x, want)
						}
					}
				case TypeInt8:
					if !bytes.Equal(w.Codes, goldenBytes(t, g, x+".int8.CB")) || !sameTable(w.SCB, f32(x+".int8.SCB")) || w.Absmax != nil || w.Blocksize != 0 {
						t.Errorf("%s: CB or SCB differ from the goldens", x)
					}
					if !sameTable(dec, f32(x+".int8.dequant_f32")) {
						t.Errorf("%s: DequantizeRange differs from int8.dequant_f32", x)
					}
				case TypeInt8Block:
					if !bytes.Equal(w.Codes, goldenBytes(t, g, x+".q8.codes")) || !sameTable(w.Absmax, f32(x+".q8.absmax")) || w.Blocksize != 256 {
						t.Errorf("%s: codes or absmax differ from the goldens", x)
					}
					if !sameTable(dec, f32(x+".q8.dequant_f32")) {
						t.Errorf("%s: DequantizeRange differs from q8.dequant_f32", x)
					}
				}
				rng := rand.New(rand.NewPCG(uint64(len(x)), 11))
				for range 20 {
					a := rng.IntN(len(dec))
					b := a + rng.IntN(len(dec)-a+1)
					part := make([]float32, b-a)
					if err := w.DequantizeRange(part, int64(a)); err != nil {
						t.Fatal(err)
					}
					if !sameTable(part, dec[a:b]) {
						t.Fatalf("%s: elements [%d, %d) decode differently alone", x, a, b)
					}
				}
				if err := w.DequantizeRange(make([]float32, 2), int64(len(dec)-1)); err == nil {
					t.Errorf("%s: a range past the end was accepted", x)
				}
			}
		})
	}
}

// TestBNBWeightsZeroCopy: from a memory-mapped file the codes and a plain
// F32 absmax are the mapping's bytes, not copies.
func TestBNBWeightsZeroCopy(t *testing.T) {
	src := &memSource{}
	src.add("a.weight", formats.F32, []int64{64, 96}, planRand(5, 64*96, 1))
	out, err := Plan(src, Config{Type: TypeNF4})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteMeta(context.Background(), f, out.Meta, out.Tensors); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ws, err := BNBWeights(r)
	if err != nil {
		t.Fatal(err)
	}
	w := ws["a.weight"]
	codes, _ := r.Bytes("a.weight")
	if &w.Codes[0] != &codes[0] {
		t.Error("codes were copied")
	}
	am, _ := r.Bytes("a.weight.absmax")
	if p := unsafe.Pointer(&am[0]); uintptr(p)%4 == 0 && p != unsafe.Pointer(&w.Absmax[0]) {
		t.Error("aligned absmax was copied")
	}
}

// bnbTestGroup plans one weight of 96×64 with cfg and returns its tensors
// as an editable in-memory source.
func bnbTestGroup(t *testing.T, cfg Config) *memSource {
	t.Helper()
	src := &memSource{}
	src.add("a.weight", formats.F16, []int64{96, 64}, planRand(3, 96*64, 1))
	src.add("a.norm", formats.F16, []int64{4}, []float32{1, 2, 3, 4})
	r, _ := planST(t, src, cfg)
	m := &memSource{meta: formats.NewMeta(), data: map[string][]byte{}}
	for _, ti := range r.Tensors() {
		m.data[ti.Name] = append([]byte(nil), goldenBytes(t, r, ti.Name)...)
		m.infos = append(m.infos, ti)
	}
	return m
}

// set replaces a tensor's bytes (and dtype/shape when d is valid), or
// removes it when b is nil.
func (m *memSource) set(name string, b []byte, d formats.DType, shape []int64) {
	for i, ti := range m.infos {
		if ti.Name != name {
			continue
		}
		if b == nil {
			m.infos = slices.Delete(m.infos, i, i+1)
			delete(m.data, name)
			return
		}
		m.data[name] = b
		m.infos[i].Size = int64(len(b))
		if d != formats.Invalid {
			m.infos[i].DType, m.infos[i].Shape = d, shape
		}
		return
	}
	m.data[name] = b
	m.infos = append(m.infos, formats.TensorInfo{Name: name, DType: d, Shape: shape, Size: int64(len(b))})
}

func (m *memSource) state(t *testing.T, name string, edit func(string) string) {
	t.Helper()
	b := []byte(edit(string(m.data[name])))
	m.set(name, b, formats.U8, []int64{int64(len(b))})
}

// TestBNBWeightsMalformed: one row per broken rule, each a valid group
// with one thing changed; the error is a *formats.FormatError naming the
// tensor and wrapping ErrBadQuantState (ErrFormat), or ErrUnsupportedBNB
// (ErrUnsupported) for the well-formed tiled int8 layout.
func TestBNBWeightsMalformed(t *testing.T) {
	const (
		w     = "a.weight"
		st4   = w + ".quant_state.bitsandbytes__nf4"
		st8   = w + ".quant_state.qtool__int8_block"
		scb   = "a.SCB"
		wfmt  = "a.weight_format"
		abs   = w + ".absmax"
		qmap  = w + ".quant_map"
		nest  = w + ".nested_absmax"
		nestQ = w + ".nested_quant_map"
	)
	nf4, dq := Config{Type: TypeNF4}, Config{Type: TypeNF4, DoubleQuant: true}
	i8, i8b := Config{Type: TypeInt8}, Config{Type: TypeInt8Block, Block: 256}
	repl := func(old, new string) func(string) string {
		return func(s string) string { return strings.Replace(s, old, new, 1) }
	}
	f32s := func(n int) []byte { return make([]byte, 4*n) }
	for _, c := range []struct {
		name   string
		cfg    Config
		break_ func(m *memSource, t *testing.T)
		tensor string
		unsup  bool
	}{
		{"state JSON truncated", nf4, func(m *memSource, t *testing.T) { m.state(t, st4, func(s string) string { return s[:len(s)-1] }) }, st4, false},
		{"state quant_type", nf4, func(m *memSource, t *testing.T) { m.state(t, st4, repl(`"nf4"`, `"fp4"`)) }, st4, false},
		{"state shape too big", nf4, func(m *memSource, t *testing.T) { m.state(t, st4, repl(`[96, 64]`, `[96, 65]`)) }, w, false},
		{"state shape negative", nf4, func(m *memSource, t *testing.T) { m.state(t, st4, repl(`[96, 64]`, `[-96, -64]`)) }, st4, false},
		{"state shape overflows", nf4, func(m *memSource, t *testing.T) {
			m.state(t, st4, repl(`[96, 64]`, `[9223372036854775807, 2]`))
		}, st4, false},
		{"state shape empty", nf4, func(m *memSource, t *testing.T) { m.state(t, st4, repl(`[96, 64]`, `[]`)) }, st4, false},
		{"blocksize not a power of two", nf4, func(m *memSource, t *testing.T) { m.state(t, st4, repl(`"blocksize": 64`, `"blocksize": 48`)) }, st4, false},
		{"blocksize 8192", nf4, func(m *memSource, t *testing.T) { m.state(t, st4, repl(`"blocksize": 64`, `"blocksize": 8192`)) }, st4, false},
		{"blocksize vs absmax", nf4, func(m *memSource, t *testing.T) { m.state(t, st4, repl(`"blocksize": 64`, `"blocksize": 128`)) }, abs, false},
		{"codes short", nf4, func(m *memSource, t *testing.T) { m.set(w, m.data[w][:100], formats.U8, []int64{100, 1}) }, w, false},
		{"quant_map missing", nf4, func(m *memSource, t *testing.T) { m.set(qmap, nil, 0, nil) }, qmap, false},
		{"quant_map length", nf4, func(m *memSource, t *testing.T) { m.set(qmap, f32s(15), formats.F32, []int64{15}) }, qmap, false},
		{"quant_map dtype", nf4, func(m *memSource, t *testing.T) { m.set(qmap, f32s(16), formats.I32, []int64{16}) }, qmap, false},
		{"absmax missing", nf4, func(m *memSource, t *testing.T) { m.set(abs, nil, 0, nil) }, abs, false},
		{"absmax short", nf4, func(m *memSource, t *testing.T) { m.set(abs, f32s(95), formats.F32, []int64{95}) }, abs, false},
		{"absmax U8 without nested state", nf4, func(m *memSource, t *testing.T) { m.set(abs, make([]byte, 96), formats.U8, []int64{96}) }, abs, false},
		{"dq absmax F32", dq, func(m *memSource, t *testing.T) { m.set(abs, f32s(96), formats.F32, []int64{96}) }, abs, false},
		{"dq nested_blocksize 0", dq, func(m *memSource, t *testing.T) {
			m.state(t, st4, repl(`"nested_blocksize": 256`, `"nested_blocksize": 0`))
		}, st4, false},
		{"dq nested_blocksize 96", dq, func(m *memSource, t *testing.T) {
			m.state(t, st4, repl(`"nested_blocksize": 256`, `"nested_blocksize": 96`))
		}, nest, false},
		{"dq nested_absmax length", dq, func(m *memSource, t *testing.T) { m.set(nest, f32s(2), formats.F32, []int64{2}) }, nest, false},
		{"dq nested_absmax U8", dq, func(m *memSource, t *testing.T) { m.set(nest, make([]byte, 4), formats.U8, []int64{4}) }, nest, false},
		{"dq nested_quant_map missing", dq, func(m *memSource, t *testing.T) { m.set(nestQ, nil, 0, nil) }, nestQ, false},
		{"dq nested_quant_map length", dq, func(m *memSource, t *testing.T) { m.set(nestQ, f32s(255), formats.F32, []int64{255}) }, nestQ, false},
		{"int8-block blocksize 32", i8b, func(m *memSource, t *testing.T) { m.state(t, st8, repl(`"blocksize": 256`, `"blocksize": 32`)) }, abs, false},
		{"int8-block blocksize 32, absmax fits", i8b, func(m *memSource, t *testing.T) {
			m.state(t, st8, repl(`"blocksize": 256`, `"blocksize": 32`))
			m.set(abs, f32s(192), formats.F32, []int64{192})
		}, st8, false},
		{"int8-block codes dtype", i8b, func(m *memSource, t *testing.T) { m.set(w, m.data[w], formats.I8, []int64{96, 64}) }, w, false},
		{"int8-block table length", i8b, func(m *memSource, t *testing.T) { m.set(qmap, f32s(16), formats.F32, []int64{16}) }, qmap, false},
		{"int8 weight not 2-D", i8, func(m *memSource, t *testing.T) { m.set(w, m.data[w], formats.I8, []int64{96 * 64}) }, w, false},
		{"int8 SCB length", i8, func(m *memSource, t *testing.T) { m.set(scb, f32s(95), formats.F32, []int64{95}) }, scb, false},
		{"int8 SCB dtype", i8, func(m *memSource, t *testing.T) { m.set(scb, make([]byte, 192), formats.F16, []int64{96}) }, scb, false},
		{"int8 weight_format two bytes", i8, func(m *memSource, t *testing.T) { m.set(wfmt, []byte{0, 0}, formats.U8, []int64{2}) }, wfmt, false},
		{"int8 weight_format col_turing", i8, func(m *memSource, t *testing.T) { m.set(wfmt, []byte{2}, formats.U8, []int64{}) }, wfmt, true},
		{"quant_state of an unknown type", nf4, func(m *memSource, t *testing.T) {
			b := m.data[st4]
			m.set(st4, nil, 0, nil)
			m.set(w+".quant_state.bitsandbytes__nf3", b, formats.U8, []int64{int64(len(b))})
		}, w + ".quant_state.bitsandbytes__nf3", true},
		{"a companion that is also a weight", dq, func(m *memSource, t *testing.T) {
			// a.weight.absmax (U8 [96]) as the packed codes of 192 values.
			m.set(abs+".quant_map", f32s(16), formats.F32, []int64{16})
			m.set(abs+".absmax", f32s(3), formats.F32, []int64{3})
			b := []byte(`{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [192]}`)
			m.set(abs+".quant_state.bitsandbytes__nf4", b, formats.U8, []int64{int64(len(b))})
		}, abs, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := bnbTestGroup(t, c.cfg)
			if _, err := BNBWeights(m); err != nil {
				t.Fatalf("unbroken group: %v", err)
			}
			c.break_(m, t)
			_, err := BNBWeights(m)
			want := ErrBadQuantState
			if c.unsup {
				want = ErrUnsupportedBNB
			}
			var fe *formats.FormatError
			switch {
			case !errors.Is(err, want):
				t.Errorf("err = %v, want %v", err, want)
			case c.unsup && (!errors.Is(err, formats.ErrUnsupported) || errors.Is(err, formats.ErrFormat)):
				t.Errorf("err = %v, want only ErrUnsupported", err)
			case !c.unsup && (!errors.Is(err, formats.ErrFormat) || errors.Is(err, formats.ErrUnsupported)):
				t.Errorf("err = %v, want only ErrFormat", err)
			case !errors.As(err, &fe) || fe.Tensor != c.tensor:
				t.Errorf("err = %v names %q, want %q", err, fe.Tensor, c.tensor)
			}
		})
	}
}

// TestBNBWeightsMutations breaks valid groups at random (truncated or
// grown tensors, flipped bytes, changed dtypes): BNBWeights must never
// panic, must fail only with input errors, and whatever it accepts must
// decode whole.
func TestBNBWeightsMutations(t *testing.T) {
	seed := uint64(1)
	r := rand.New(rand.NewPCG(seed, 99))
	bases := map[string]*memSource{}
	for _, c := range []Config{{Type: TypeNF4}, {Type: TypeFP4, DoubleQuant: true}, {Type: TypeInt8}, {Type: TypeInt8Block, Block: 64}} {
		bases[fmt.Sprint(c.Type, c.DoubleQuant)] = bnbTestGroup(t, c)
	}
	dtypes := []formats.DType{formats.U8, formats.I8, formats.F32, formats.F16}
	accepted := 0
	for name, base := range bases {
		for i := range 150 {
			m := &memSource{meta: base.meta, data: map[string][]byte{}, infos: slices.Clone(base.infos)}
			for k, v := range base.data {
				m.data[k] = slices.Clone(v)
			}
			for range 1 + r.IntN(2) {
				ti := m.infos[r.IntN(len(m.infos))]
				b := m.data[ti.Name]
				switch r.IntN(4) {
				case 0:
					if len(b) > 0 {
						b = b[:r.IntN(len(b))]
					}
					m.set(ti.Name, b, formats.U8, []int64{int64(len(b))})
				case 1:
					if len(b) > 0 {
						b[r.IntN(len(b))] ^= byte(1 << r.IntN(8))
						m.set(ti.Name, b, formats.Invalid, nil)
					}
				case 2:
					b = append(b, make([]byte, 1+r.IntN(8))...)
					m.set(ti.Name, b, formats.U8, []int64{int64(len(b))})
				case 3:
					d := dtypes[r.IntN(len(dtypes))]
					m.set(ti.Name, b, d, ti.Shape)
				}
			}
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("%s mutation %d (seed %d): panic %v", name, i, seed, p)
					}
				}()
				ws, err := BNBWeights(m)
				if err != nil {
					if !formats.IsInputError(err) {
						t.Fatalf("%s mutation %d: not an input error: %v", name, i, err)
					}
					return
				}
				for _, w := range ws {
					accepted++
					if n := w.NumElements(); n <= 1<<20 {
						if err := w.DequantizeRange(make([]float32, n), 0); err != nil {
							t.Fatalf("%s mutation %d: accepted %s does not decode: %v", name, i, w.Name, err)
						}
					}
				}
			}()
		}
	}
	t.Logf("%d mutated groups accepted (flipped code bytes and the like)", accepted)
}
