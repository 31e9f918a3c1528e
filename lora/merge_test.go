package lora

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/fixtures"
	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/arch"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/quantize"
)

var (
	mergeStoriesGGUF = filepath.Join("..", "fixtures", "stories260K", "stories260K.gguf")
	mergeStoriesHF   = filepath.Join("..", "fixtures", "stories260K-hf")
	mergeAdapterPEFT = filepath.Join("testdata", "stories260K-lora-peft")
	mergeGolden      = filepath.Join("testdata", "merge", "stories260K-merged-f32.gguf")
)

func mergeOpenGGUF(t testing.TB, path string) *gguf.Reader {
	t.Helper()
	r, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func mergeOpenFolder(t testing.TB, dir string) *safetensors.Folder {
	t.Helper()
	f, err := safetensors.OpenFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// storiesAdapter loads the golden PEFT adapter (scale alpha/r = 2).
func storiesAdapter(t testing.TB, base formats.Source) *Adapter {
	t.Helper()
	ad, err := Load(mergeAdapterPEFT, LoadOptions{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	return ad
}

// mergeToGGUF merges and writes a GGUF file, returning it opened.
func mergeToGGUF(t testing.TB, base formats.Source, cfg MergeConfig) (*gguf.Reader, *MergeOutput) {
	t.Helper()
	out, err := Merge(base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "merged.gguf")
	if err := gguf.WriteFile(context.Background(), p, out.Meta, out.Tensors, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	return mergeOpenGGUF(t, p), out
}

// writeTensors writes planned tensors into memory, by name.
func writeTensors(t testing.TB, ts []formats.Tensor) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	for _, x := range ts {
		var b bytes.Buffer
		if _, err := x.Data.WriteTo(&b); err != nil {
			t.Fatalf("%s: %v", x.Name, err)
		}
		if int64(b.Len()) != x.Size {
			t.Fatalf("%s: wrote %d bytes, planned %d", x.Name, b.Len(), x.Size)
		}
		got[x.Name] = b.Bytes()
	}
	return got
}

func rawBytes(t testing.TB, src formats.Source, name string) []byte {
	t.Helper()
	b, err := readRaw(src, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func floats(t testing.TB, b []byte, d formats.DType) []float32 {
	t.Helper()
	n := len(b) / int(d.BlockBytes()) * int(d.BlockSize())
	x := make([]float32, n)
	if err := decodeFloats(x, b, d); err != nil {
		t.Fatal(err)
	}
	return x
}

// refMerge is the reference of the merge arithmetic, written straight
// from its definition (delta.go): per element a chain of fused
// multiply-adds in k order, scaled, added, one adapter after the other.
// bRow maps an output row to B's row (nil: identity).
func refMerge(w []float32, out, in int, terms []term) []float32 {
	y := append([]float32(nil), w...)
	for _, t := range terms {
		p := t.pair
		for i := 0; i < out; i++ {
			br := int64(i)
			if t.bRow != nil {
				br = t.bRow(br)
			}
			for j := 0; j < in; j++ {
				var d float32
				for k := 0; k < p.Rank; k++ {
					d = fma32(float64(p.B[int(br)*p.Rank+k]), p.A[k*in+j], d)
				}
				y[i*in+j] += float32(t.scale * d)
			}
		}
	}
	return y
}

// qkRows is the GGUF permutation of a stories260K q/k target (8 heads, 4
// KV heads), or nil.
func qkRows(t testing.TB, target string, out int) func(int64) int64 {
	_, pair, _, ok := arch.Llama.GGUFName(target)
	if !ok || pair.Permute == arch.NoPermutation {
		return nil
	}
	q, err := arch.NewQKRows(int64(out), pair.Permute.Heads(8, 4))
	if err != nil {
		t.Fatal(err)
	}
	return q.HFRow
}

// qtool's merge of the golden adapter into stories260K.gguf has the
// tensors of llama-export-lora's output byte for byte, in its order, and
// its KVs except the general.file_type = 1 export-lora appends.
func TestMergeMatchesExportLora(t *testing.T) {
	base := mergeOpenGGUF(t, mergeStoriesGGUF)
	ad := storiesAdapter(t, base)
	got, out := mergeToGGUF(t, base, MergeConfig{Adapters: []*Adapter{ad}})
	want := mergeOpenGGUF(t, mergeGolden)

	gt, wt := got.Tensors(), want.Tensors()
	if len(gt) != len(wt) {
		t.Fatalf("%d tensors, want %d", len(gt), len(wt))
	}
	for i := range wt {
		g, w := gt[i], wt[i]
		if g.Name != w.Name || g.DType != w.DType || !reflect.DeepEqual(g.Shape, w.Shape) {
			t.Fatalf("tensor %d: %s %v %v, want %s %v %v", i, g.Name, g.DType, g.Shape, w.Name, w.DType, w.Shape)
		}
		if !bytes.Equal(rawBytes(t, got, g.Name), rawBytes(t, want, w.Name)) {
			t.Errorf("%s: bytes differ from llama-export-lora's", g.Name)
		}
	}
	wm := want.Meta().Clone()
	wm.Delete("general.file_type")
	if !reflect.DeepEqual(got.Meta().KVs(), wm.KVs()) {
		t.Errorf("KVs differ from the golden's (modulo general.file_type):\n got %v\nwant %v", got.Meta().KVs(), wm.KVs())
	}
	if !reflect.DeepEqual(got.Meta().KVs(), base.Meta().KVs()) {
		t.Errorf("KVs are not the base's")
	}

	rep := out.Report()
	if rep.Merged != 35 || rep.Measured != 35 || rep.Warnings != 0 {
		t.Fatalf("report: %d merged, %d measured, %d warnings; want 35, 35, 0", rep.Merged, rep.Measured, rep.Warnings)
	}
	for _, r := range rep.Tensors {
		if r.From != "f32" || r.To != "f32" || r.Adapters != 1 || r.Rank != 4 || r.Relative <= 0 || r.Survived == nil ||
			math.Abs(*r.Survived-1) > 1e-3 || r.Changed == 0 {
			t.Errorf("report row %+v", r)
		}
	}
}

// fma32 is C's fmaf: checked against exact arithmetic on random and
// halfway cases.
func TestFMA32(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	exact := func(b, x, acc float32) float32 {
		v := new(big.Float).SetPrec(256).SetFloat64(float64(b))
		v.Mul(v, new(big.Float).SetPrec(256).SetFloat64(float64(x)))
		v.Add(v, new(big.Float).SetPrec(256).SetFloat64(float64(acc)))
		f, _ := v.Float32()
		return f
	}
	check := func(b, x, acc float32) {
		if got, want := fma32(float64(b), x, acc), exact(b, x, acc); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%g, %g, %g) = %g, want %g", b, x, acc, got, want)
		}
	}
	for range 200000 {
		b := float32(r.NormFloat64() * math.Ldexp(1, r.Intn(40)-20))
		x := float32(r.NormFloat64() * math.Ldexp(1, r.Intn(40)-20))
		check(b, x, float32(r.NormFloat64()*math.Ldexp(1, r.Intn(80)-40)))
		// A float64 sum that lands on a float32 halfway point while the
		// exact sum does not: acc is the product's float32 midpoint
		// offset by less than float64 resolution.
		p := float64(b) * float64(x)
		lo := float64(float32(p))
		up := math.Nextafter32(float32(p), float32(math.Inf(1)))
		mid := (lo + float64(up)) / 2
		check(b, x, float32(mid-p))
	}
	// Products exactly on a float32 halfway point, nudged by less than
	// float64 resolution: rounding the float64 sum again goes to even,
	// the wrong way half the time.
	for i := 1; i < 40; i += 2 {
		for j := 1; j < 40; j += 2 {
			b, x := float32(1+float64(i)*0x1p-12), float32(1+float64(j)*0x1p-12)
			check(b, x, 0x1p-60)
			check(b, x, -0x1p-60)
			check(-b, x, 0x1p-61)
		}
	}
	check(0, 1, 0)
	check(-1, 0, float32(math.Copysign(0, -1)))
	check(1e-30, 1e-10, 1e-45)
	check(3, float32(math.Inf(1)), 1)
}

// mergedTerms are the golden adapter's terms for one HF target, with the
// GGUF permutation when gguf is set.
func mergedTerms(t testing.TB, ads []*Adapter, scales []float64, target string, gguf bool) []term {
	t.Helper()
	var ts []term
	for i, ad := range ads {
		p := ad.Pair(target)
		if p == nil {
			continue
		}
		s := 1.0
		if scales != nil {
			s = scales[i]
		}
		tm := term{pair: p, scale: float32(s * p.Scale)}
		if gguf {
			tm.bRow = qkRows(t, target, p.Out)
		}
		ts = append(ts, tm)
	}
	return ts
}

// deltaRow equals the fmaf chain element by element, signed zeros,
// subnormals and halfway cases included.
func TestDeltaRowEdges(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	pick := func() float32 {
		switch r.Intn(8) {
		case 0:
			return 0
		case 1:
			return float32(math.Copysign(0, -1))
		case 2:
			return float32(r.NormFloat64() * 1e-22) // products in float32's subnormal range
		case 3:
			return float32(1 + float64(r.Intn(64))*0x1p-12) // products on halfway points
		}
		return float32(r.NormFloat64())
	}
	for _, rank := range []int{1, 2, 5, 16} {
		const cols = 257
		a, b := make([]float32, rank*cols), make([]float32, rank)
		for i := range a {
			a[i] = pick()
		}
		for i := range b {
			b[i] = pick()
		}
		acc := make([]float32, cols)
		deltaRow(acc, b, a)
		for j := range acc {
			var d float32
			for k := range b {
				d = fma32(float64(b[k]), a[k*cols+j], d)
			}
			if math.Float32bits(acc[j]) != math.Float32bits(d) {
				t.Fatalf("rank %d column %d: %g (%08x), want %g (%08x)", rank, j, acc[j], math.Float32bits(acc[j]), d, math.Float32bits(d))
			}
		}
	}
}

// The HF folder and the GGUF file of stories260K give the same merged
// weights, rows permuted for q/k, each equal to the reference arithmetic.
func TestMergeHFAndGGUFAgree(t *testing.T) {
	hf := mergeOpenFolder(t, mergeStoriesHF)
	gg := mergeOpenGGUF(t, mergeStoriesGGUF)
	adHF, adGG := storiesAdapter(t, hf), storiesAdapter(t, gg)
	outHF, err := Merge(hf, MergeConfig{Adapters: []*Adapter{adHF}})
	if err != nil {
		t.Fatal(err)
	}
	outGG, err := Merge(gg, MergeConfig{Adapters: []*Adapter{adGG}})
	if err != nil {
		t.Fatal(err)
	}
	if outHF.Format != quantize.Safetensors || outGG.Format != quantize.GGUF {
		t.Fatalf("formats %s, %s", outHF.Format, outGG.Format)
	}
	bh, bg := writeTensors(t, outHF.Tensors), writeTensors(t, outGG.Tensors)
	for _, p := range adHF.Pairs {
		g, pair, _, _ := arch.Llama.GGUFName(p.Target)
		yh, yg := floats(t, bh[p.Target], formats.F32), floats(t, bg[g], formats.F32)
		want := refMerge(floats(t, rawBytes(t, hf, p.Target), formats.F32), p.Out, p.In, mergedTerms(t, []*Adapter{adHF}, nil, p.Target, false))
		if !reflect.DeepEqual(yh, want) {
			t.Errorf("%s: HF merge differs from the reference", p.Target)
		}
		q := func(r int64) int64 { return r }
		if pair.Permute != arch.NoPermutation {
			q = qkRows(t, p.Target, p.Out)
		}
		for r := 0; r < p.Out; r++ {
			hr := int(q(int64(r)))
			if !reflect.DeepEqual(yg[r*p.In:(r+1)*p.In], yh[hr*p.In:(hr+1)*p.In]) {
				t.Fatalf("%s: GGUF row %d differs from HF row %d", g, r, hr)
			}
		}
	}
	// Untouched tensors are copied.
	for name, b := range bh {
		if adHF.Pair(name) == nil && !bytes.Equal(b, rawBytes(t, hf, name)) {
			t.Errorf("%s: not copied unchanged", name)
		}
	}
}

// Two adapters with their own scales: W + s1·Δ1 + s2·Δ2, in order; the
// result does not depend on Workers.
func TestMergeTwoAdaptersScales(t *testing.T) {
	base := mergeOpenFolder(t, mergeStoriesHF)
	ad1 := storiesAdapter(t, base)
	ad2 := randomAdapter(ad1, 2, 3, 0.75, func(target string) bool { return !strings.HasSuffix(target, ".up_proj.weight") })
	scales := []float64{0.5, -1.25}
	var first map[string][]byte
	for _, workers := range []int{1, 3} {
		out, err := Merge(base, MergeConfig{Adapters: []*Adapter{ad1, ad2}, Scales: scales, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		got := writeTensors(t, out.Tensors)
		if first == nil {
			first = got
		} else if !reflect.DeepEqual(first, got) {
			t.Fatalf("Workers %d changes the output", workers)
		}
		rep := out.Report()
		if rep.Merged != 35 || rep.Measured != 35 {
			t.Fatalf("report %d merged %d measured", rep.Merged, rep.Measured)
		}
	}
	for _, p := range ad1.Pairs {
		terms := mergedTerms(t, []*Adapter{ad1, ad2}, scales, p.Target, false)
		want := refMerge(floats(t, rawBytes(t, base, p.Target), formats.F32), p.Out, p.In, terms)
		if !reflect.DeepEqual(floats(t, first[p.Target], formats.F32), want) {
			t.Errorf("%s (%d adapters): differs from the reference", p.Target, len(terms))
		}
	}
}

// randomAdapter makes an adapter of the given rank for the targets of like
// that keep says yes to, with seeded values and Scale scale.
func randomAdapter(like *Adapter, rank int, seed int64, scale float64, keep func(string) bool) *Adapter {
	r := rand.New(rand.NewSource(seed))
	ad := &Adapter{Format: PEFT, Arch: like.Arch}
	for _, p := range like.Pairs {
		if !keep(p.Target) {
			continue
		}
		q := Pair{Target: p.Target, Rank: rank, In: p.In, Out: p.Out, Alpha: scale * float64(rank), Scale: scale,
			A: make([]float32, rank*p.In), B: make([]float32, p.Out*rank)}
		for i := range q.A {
			q.A[i] = float32(r.NormFloat64() * 0.1)
		}
		for i := range q.B {
			q.B[i] = float32(r.NormFloat64() * 0.05)
		}
		ad.Pairs = append(ad.Pairs, q)
	}
	ad.Config = Config{Rank: rank, Alpha: scale * float64(rank)}
	ad.Format = GGUF // Lint checks Scale against Alpha/Rank
	ad.Sort()
	return ad
}

// bnbBase writes stories260K-hf quantized with quantize.Plan as a Hugging
// Face folder and opens it.
func bnbBase(t testing.TB, cfg quantize.Config) *safetensors.Folder {
	t.Helper()
	return bnbFolder(t, mergeStoriesHF, cfg)
}

// bnbFolder quantizes the Hugging Face folder hfDir into a temporary one.
func bnbFolder(t testing.TB, hfDir string, cfg quantize.Config) *safetensors.Folder {
	t.Helper()
	hf := mergeOpenFolder(t, hfDir)
	cfg.Format = quantize.Safetensors
	o, err := quantize.Plan(hf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bnb")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{}
	for _, kv := range o.Meta.KVs() {
		meta[kv.Key], _ = kv.Value.V.(string)
	}
	if _, err := safetensors.WriteFolder(context.Background(), dir, meta, o.Tensors, safetensors.FolderOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := o.RewriteConfig(hf.Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), c, 0o644); err != nil {
		t.Fatal(err)
	}
	return mergeOpenFolder(t, dir)
}

// dequantized returns a bitsandbytes base's weights as float32 (what
// training saw), by name.
func dequantized(t testing.TB, src formats.Source) map[string][]float32 {
	t.Helper()
	o, err := quantize.Dequant(src, quantize.DequantConfig{DType: formats.F32, Format: quantize.Safetensors})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for name, b := range writeTensors(t, o.Tensors) {
		out[name] = floats(t, b, formats.F32)
	}
	return out
}

// Merging into an NF4 base (with and without double quantization) and
// re-quantizing equals, bit for bit, quantizing dequant(W_nf4) + Δ with
// the NF4 kernel; untouched groups are copied byte for byte.
func TestMergeNF4Requantize(t *testing.T) {
	for _, dq := range []bool{false, true} {
		base := bnbBase(t, quantize.Config{Type: quantize.TypeNF4, DoubleQuant: dq})
		full := storiesAdapter(t, base)
		ad := &Adapter{Format: full.Format, Config: full.Config, Arch: full.Arch}
		for _, p := range full.Pairs {
			if arch.BlockOf(p.Target) < 3 { // layers 3 and 4 stay untouched
				ad.Pairs = append(ad.Pairs, p)
			}
		}
		out, err := Merge(base, MergeConfig{Adapters: []*Adapter{ad}, Requantize: true})
		if err != nil {
			t.Fatal(err)
		}
		got := writeTensors(t, out.Tensors)
		w := dequantized(t, base)
		for _, p := range ad.Pairs {
			y := refMerge(w[p.Target], p.Out, p.In, mergedTerms(t, []*Adapter{ad}, nil, p.Target, false))
			packed := make([]byte, (len(y)+1)/2)
			absmax := make([]float32, (len(y)+63)/64)
			if err := quantize.Quantize4BitTo(quantize.NF4, packed, absmax, y, 64, quantize.Options4Bit{ExactZeroBlocks: true}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[p.Target], packed) {
				t.Errorf("dq=%v %s: codes differ from the NF4 kernel's", dq, p.Target)
			}
			wantAbsmax := f32Bytes(absmax)
			if dq {
				d := quantize.DoubleQuantize(absmax)
				wantAbsmax = d.Codes
				if !bytes.Equal(got[p.Target+".nested_absmax"], f32Bytes(d.NestedAbsmax)) {
					t.Errorf("dq %s: nested_absmax differs", p.Target)
				}
			}
			if !bytes.Equal(got[p.Target+".absmax"], wantAbsmax) {
				t.Errorf("dq=%v %s: absmax differs", dq, p.Target)
			}
		}
		for _, ti := range base.Tensors() {
			if arch.BlockOf(ti.Name) >= 3 || arch.BlockOf(ti.Name) < 0 {
				if !bytes.Equal(got[ti.Name], rawBytes(t, base, ti.Name)) {
					t.Errorf("dq=%v %s: untouched tensor not copied", dq, ti.Name)
				}
			}
		}
		if len(got) != len(base.Tensors()) {
			t.Errorf("dq=%v: %d tensors written, the base has %d", dq, len(got), len(base.Tensors()))
		}
		rep := out.Report()
		want := "nf4"
		if dq {
			want = "nf4+dq"
		}
		for _, r := range rep.Tensors {
			if r.From != want || r.To != want || !r.Measured || r.Survived == nil || *r.Survived <= 0 || *r.Survived > 2 || r.Changed == 0 {
				t.Errorf("report row %+v", r)
			}
		}
		if c, _ := out.RewriteConfig([]byte(`{"a": 1}`)); string(c) != `{"a": 1}` {
			t.Errorf("re-quantized output changes config.json: %s", c)
		}
	}
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	if err := quantize.FromFloat32(b, v, formats.F32); err != nil {
		panic(err)
	}
	return b
}

// Every bitsandbytes type re-quantizes exactly as qtool quantize quantizes
// the merged weights; without --requantize the model comes out dequantized
// with quantization_config removed.
func TestMergeBNBTypes(t *testing.T) {
	for _, c := range []quantize.Config{
		{Type: quantize.TypeFP4, Block: 128},
		{Type: quantize.TypeInt8},
		{Type: quantize.TypeInt8Block, Block: 256},
	} {
		base := bnbBase(t, c)
		ad := storiesAdapter(t, base)
		w := dequantized(t, base)
		// The reference: the merged weights, quantized by quantize.Plan.
		var ts []formats.Tensor
		for _, ti := range mergeOpenFolder(t, mergeStoriesHF).Tensors() {
			y := w[ti.Name]
			if p := ad.Pair(ti.Name); p != nil {
				y = refMerge(y, p.Out, p.In, mergedTerms(t, []*Adapter{ad}, nil, p.Target, false))
			}
			b := f32Bytes(y)
			ts = append(ts, formats.Tensor{TensorInfo: formats.TensorInfo{Name: ti.Name, DType: formats.F32, Shape: ti.Shape, Size: int64(len(b))}, Data: formats.BytesWriter(b)})
		}
		c.Format = quantize.Safetensors
		ref, err := quantize.Plan(newTensorSource(formats.NewMeta(), ts, nil), c)
		if err != nil {
			t.Fatal(err)
		}
		want := writeTensors(t, ref.Tensors)

		out, err := Merge(base, MergeConfig{Adapters: []*Adapter{ad}, Requantize: true})
		if err != nil {
			t.Fatal(err)
		}
		got := writeTensors(t, out.Tensors)
		if len(got) != len(want) {
			t.Fatalf("%v: %d tensors, want %d", c.Type, len(got), len(want))
		}
		for name, b := range want {
			if !bytes.Equal(got[name], b) {
				t.Errorf("%v: %s differs from quantizing the merged weights", c.Type, name)
			}
		}
		for _, r := range out.Report().Tensors {
			if r.To != c.Type.String() || r.Survived == nil || *r.Survived <= 0 {
				t.Errorf("%v: report %+v", c.Type, r)
			}
		}

		// Dequantized output: the merged float32 weights exactly.
		out, err = Merge(base, MergeConfig{Adapters: []*Adapter{ad}, DType: formats.F32})
		if err != nil {
			t.Fatal(err)
		}
		got = writeTensors(t, out.Tensors)
		for _, x := range ts {
			var b bytes.Buffer
			x.Data.WriteTo(&b)
			if !bytes.Equal(got[x.Name], b.Bytes()) {
				t.Errorf("%v dequantized: %s differs", c.Type, x.Name)
			}
		}
		if len(got) != len(ts) {
			t.Errorf("%v dequantized: %d tensors, want %d", c.Type, len(got), len(ts))
		}
		cfg, err := out.RewriteConfig(base.Config())
		if err != nil || bytes.Contains(cfg, []byte("quantization_config")) {
			t.Errorf("%v dequantized: config.json keeps quantization_config (%v)", c.Type, err)
		}
	}
}

// quantizedGGUF writes stories260K.gguf quantized to t (llama-quantize
// --pure) and opens it.
func quantizedGGUF(t testing.TB, typ quantize.Type) *gguf.Reader {
	t.Helper()
	o, err := quantize.Plan(mergeOpenGGUF(t, mergeStoriesGGUF), quantize.Config{Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "q.gguf")
	if err := gguf.WriteFile(context.Background(), p, o.Meta, o.Tensors, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	return mergeOpenGGUF(t, p)
}

// A ggml-quantized base: the delta lands on dequant(W); merged tensors
// come out F16 (as llama-export-lora writes them), in --dtype, or
// re-quantized to their own type; the others are copied.
func TestMergeGGUFQuantizedBase(t *testing.T) {
	for _, typ := range []quantize.Type{quantize.TypeQ8_0, quantize.TypeQ4K} {
		base := quantizedGGUF(t, typ)
		ad := storiesAdapter(t, base)
		for _, c := range []struct {
			cfg  MergeConfig
			want func(stored formats.DType) formats.DType
		}{
			{MergeConfig{}, func(d formats.DType) formats.DType {
				if d.Quantized() {
					return formats.F16
				}
				return d
			}},
			{MergeConfig{DType: formats.BF16}, func(formats.DType) formats.DType { return formats.BF16 }},
			{MergeConfig{Requantize: true}, func(d formats.DType) formats.DType { return d }},
		} {
			c.cfg.Adapters = []*Adapter{ad}
			out, err := Merge(base, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := writeTensors(t, out.Tensors)
			quantized := 0
			for _, ti := range base.Tensors() {
				hf, _, _ := arch.Llama.HFName(ti.Name)
				p := ad.Pair(hf)
				if p == nil {
					if !bytes.Equal(got[ti.Name], rawBytes(t, base, ti.Name)) {
						t.Errorf("%v %+v: %s not copied", typ, c.cfg.DType, ti.Name)
					}
					continue
				}
				if ti.DType.Quantized() {
					quantized++
				}
				y := refMerge(floats(t, rawBytes(t, base, ti.Name), ti.DType), p.Out, p.In, mergedTerms(t, []*Adapter{ad}, nil, hf, true))
				d := c.want(ti.DType)
				want, err := encode(d, y, 1)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got[ti.Name], want) {
					t.Errorf("%v → %v: %s differs from encoding dequant(W)+Δ", ti.DType, d, ti.Name)
				}
			}
			if quantized == 0 {
				t.Fatalf("%v: no quantized tensor merged", typ)
			}
			rep := out.Report()
			for _, r := range rep.Tensors {
				if !r.Measured || r.Survived == nil || *r.Survived <= 0 || r.Changed == 0 {
					t.Errorf("%v: report %+v", typ, r)
				}
				if c.cfg.Requantize && r.From != r.To {
					t.Errorf("%v re-quantized: %s → %s", typ, r.From, r.To)
				}
			}
			if !c.cfg.Requantize && len(out.Notes) == 0 {
				t.Errorf("%v: no note that merged tensors leave their quantized type", typ)
			}
		}
	}
}

// --quantize quantizes the merged model in the same pass: the output is
// what qtool quantize makes of the F32 merge.
func TestMergeQuantizeOption(t *testing.T) {
	base := mergeOpenGGUF(t, mergeStoriesGGUF)
	ad := storiesAdapter(t, base)
	f32, _ := mergeToGGUF(t, base, MergeConfig{Adapters: []*Adapter{ad}})
	for _, typ := range []quantize.Type{quantize.TypeQ4_0, quantize.TypeIQ4NL} {
		ref, err := quantize.Plan(f32, quantize.Config{Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		var done, total int64
		out, err := Merge(base, MergeConfig{Adapters: []*Adapter{ad}, Quantize: typ.String(), Progress: func(d, t int64) { done, total = d, t }})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(out.Meta.KVs(), ref.Meta.KVs()) {
			t.Errorf("%v: KVs differ from qtool quantize's", typ)
		}
		if len(out.Tensors) != len(ref.Tensors) {
			t.Fatalf("%v: %d tensors, want %d", typ, len(out.Tensors), len(ref.Tensors))
		}
		got, want := writeTensors(t, out.Tensors), writeTensors(t, ref.Tensors)
		for i, x := range ref.Tensors {
			if out.Tensors[i].Name != x.Name || out.Tensors[i].DType != x.DType || !bytes.Equal(got[x.Name], want[x.Name]) {
				t.Errorf("%v: tensor %d (%s) differs from quantizing the merged model", typ, i, x.Name)
			}
		}
		if done != total || total == 0 {
			t.Errorf("%v: progress ended at %d of %d", typ, done, total)
		}
		rep := out.Report()
		if rep.Merged != 35 || rep.Measured != 35 {
			t.Fatalf("%v: report %d merged %d measured", typ, rep.Merged, rep.Measured)
		}
		for _, r := range rep.Tensors {
			if r.From != "f32" || r.To == "" {
				t.Errorf("%v: report %+v", typ, r)
			}
			if r.Survived == nil || *r.Survived <= 0 || *r.Survived > 3 {
				t.Errorf("%v: report %+v", typ, r)
			}
		}
	}
}

// Settings that contradict each other or the base, and adapters that do
// not fit it, are refused before anything is written.
func TestMergeRefuses(t *testing.T) {
	gg := mergeOpenGGUF(t, mergeStoriesGGUF)
	ad := storiesAdapter(t, gg)
	moved := randomAdapter(ad, 2, 1, 1, func(string) bool { return true })
	moved.Pairs[0].Target = "model.layers.9.self_attn.q_proj.weight"
	moved.Sort()
	wide := randomAdapter(ad, 2, 1, 1, func(string) bool { return true })
	for i := range wide.Pairs {
		p := &wide.Pairs[i]
		p.In *= 2
		p.A = make([]float32, p.Rank*p.In)
	}
	for _, c := range []struct {
		name string
		cfg  MergeConfig
		want error
	}{
		{"no adapter", MergeConfig{}, ErrMergeConfig},
		{"scales", MergeConfig{Adapters: []*Adapter{ad}, Scales: []float64{1, 2}}, ErrMergeConfig},
		{"nan scale", MergeConfig{Adapters: []*Adapter{ad}, Scales: []float64{math.NaN()}}, ErrMergeConfig},
		{"dtype", MergeConfig{Adapters: []*Adapter{ad}, DType: formats.Q8_0}, ErrMergeConfig},
		{"quantize and dtype", MergeConfig{Adapters: []*Adapter{ad}, Quantize: "q8_0", DType: formats.F16}, ErrMergeConfig},
		{"quantize and requantize", MergeConfig{Adapters: []*Adapter{ad}, Quantize: "q8_0", Requantize: true}, ErrMergeConfig},
		{"unknown type", MergeConfig{Adapters: []*Adapter{ad}, Quantize: "q3_xyz"}, ErrMergeConfig},
		{"float quantize", MergeConfig{Adapters: []*Adapter{ad}, Quantize: "f16"}, ErrMergeConfig},
		{"nf4 into gguf", MergeConfig{Adapters: []*Adapter{ad}, Quantize: "nf4"}, ErrMergeConfig},
		{"requantize f32", MergeConfig{Adapters: []*Adapter{ad}, Requantize: true}, ErrMergeConfig},
		{"unknown target", MergeConfig{Adapters: []*Adapter{ad, moved}}, ErrAdapterMismatch},
		{"wrong shape", MergeConfig{Adapters: []*Adapter{wide}}, ErrAdapterMismatch},
	} {
		_, err := Merge(gg, c.cfg)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	hf := mergeOpenFolder(t, mergeStoriesHF)
	if _, err := Merge(hf, MergeConfig{Adapters: []*Adapter{ad}, Quantize: "q4_0"}); !errors.Is(err, ErrMergeConfig) {
		t.Errorf("q4_0 into a Hugging Face folder: %v", err)
	}
}

// f16Source is stories260K.gguf with every F32 weight matrix in F16.
func f16Source(t testing.TB) formats.Source {
	t.Helper()
	base := mergeOpenGGUF(t, mergeStoriesGGUF)
	var ts []formats.Tensor
	for _, ti := range base.Tensors() {
		b := rawBytes(t, base, ti.Name)
		if len(ti.Shape) == 2 {
			h := make([]byte, len(b)/2)
			if err := quantize.FromFloat32(h, floats(t, b, formats.F32), formats.F16); err != nil {
				t.Fatal(err)
			}
			b, ti.DType = h, formats.F16
		}
		ti.Size = int64(len(b))
		ts = append(ts, formats.Tensor{TensorInfo: ti, Data: formats.BytesWriter(b)})
	}
	return newTensorSource(base.Meta(), ts, nil)
}

// The report warns where the merge changes nothing: an all-zero update,
// and an update too small for F16 next to the weights; values F16 cannot
// hold leave the report finite (JSON has no Inf).
func TestMergeReportWarnings(t *testing.T) {
	base := f16Source(t)
	ad := storiesAdapter(t, mergeOpenGGUF(t, mergeStoriesGGUF))
	zero := randomAdapter(ad, 2, 1, 1, func(s string) bool { return strings.Contains(s, "layers.0.") })
	for i := range zero.Pairs {
		clear(zero.Pairs[i].B)
	}
	for _, c := range []struct {
		name   string
		cfg    MergeConfig
		warn   int
		survOK func(float64) bool
	}{
		{"f16", MergeConfig{Adapters: []*Adapter{ad}}, 0, func(s float64) bool { return s > 0.9 && s < 1.1 }},
		{"tiny", MergeConfig{Adapters: []*Adapter{ad}, Scales: []float64{1e-7}}, 35, func(s float64) bool { return s == 0 }},
		{"tiny f32", MergeConfig{Adapters: []*Adapter{ad}, Scales: []float64{1e-7}, DType: formats.F32}, 0, func(s float64) bool { return s > 0.5 }},
		{"zero", MergeConfig{Adapters: []*Adapter{zero}}, 7, nil},
		{"overflow", MergeConfig{Adapters: []*Adapter{ad}, Scales: []float64{1e30}}, 35, nil},
	} {
		out, err := Merge(base, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		writeTensors(t, out.Tensors)
		rep := out.Report()
		if _, err := json.Marshal(rep); err != nil {
			t.Errorf("%s: report does not encode: %v", c.name, err)
		}
		if rep.Warnings != c.warn || rep.Measured != rep.Merged {
			t.Errorf("%s: %d warnings (want %d), %d of %d measured", c.name, rep.Warnings, c.warn, rep.Measured, rep.Merged)
		}
		for _, r := range rep.Tensors {
			switch {
			case c.survOK == nil && (r.Survived != nil || r.Warning == "" || r.DeltaNorm != 0 || r.WeightNorm != 0 && c.name == "overflow"):
				t.Errorf("%s: %+v", c.name, r)
			case c.survOK != nil && (r.Survived == nil || !c.survOK(*r.Survived)):
				t.Errorf("%s: survived %v: %+v", c.name, r.Survived, r)
			}
		}
	}
}

// Source views the output as a formats.Source: produced tensors read
// back as written, copies straight from the base.
func TestMergeOutputSource(t *testing.T) {
	base := mergeOpenGGUF(t, mergeStoriesGGUF)
	out, err := Merge(base, MergeConfig{Adapters: []*Adapter{storiesAdapter(t, base)}, DType: formats.F16})
	if err != nil {
		t.Fatal(err)
	}
	want := writeTensors(t, out.Tensors)
	src := out.Source()
	if len(src.Tensors()) != len(out.Tensors) {
		t.Fatalf("%d tensors", len(src.Tensors()))
	}
	for _, ti := range src.Tensors() {
		sec, err := src.Section(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, sec.Size())
		if _, err := sec.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want[ti.Name]) {
			t.Errorf("%s: Section differs from the written tensor", ti.Name)
		}
	}
}

// synthAdapter is a seeded rank-r adapter on every attention and MLP
// projection of a generated model.
func synthAdapter(c fixtures.ModelConfig, rank int, seed int64) *Adapter {
	r := rand.New(rand.NewSource(seed))
	ad := &Adapter{Format: GGUF, Arch: "llama", Config: Config{Rank: rank, Alpha: float64(2 * rank)}}
	kv := c.Embd / c.Heads * c.KVHeads
	for l := range c.Layers {
		for _, m := range []struct {
			name    string
			out, in int
		}{
			{"self_attn.q_proj", c.Embd, c.Embd}, {"self_attn.k_proj", kv, c.Embd}, {"self_attn.v_proj", kv, c.Embd},
			{"self_attn.o_proj", c.Embd, c.Embd}, {"mlp.gate_proj", c.FF, c.Embd}, {"mlp.up_proj", c.FF, c.Embd},
			{"mlp.down_proj", c.Embd, c.FF},
		} {
			p := Pair{Target: fmt.Sprintf("model.layers.%d.%s.weight", l, m.name), Rank: rank, In: m.in, Out: m.out,
				Alpha: float64(2 * rank), Scale: 2, A: make([]float32, rank*m.in), B: make([]float32, m.out*rank)}
			for i := range p.A {
				p.A[i] = float32(r.NormFloat64() * 0.02)
			}
			for i := range p.B {
				p.B[i] = float32(r.NormFloat64() * 0.02)
			}
			ad.Pairs = append(ad.Pairs, p)
		}
	}
	ad.Sort()
	return ad
}

// smallGGUF writes the fixtures' "small" preset (about 60 MB of F32).
func smallGGUF(t testing.TB) (string, fixtures.ModelConfig) {
	t.Helper()
	c, _ := fixtures.Preset("small")
	p := filepath.Join(t.TempDir(), "small.gguf")
	if err := fixtures.WriteGGUF(context.Background(), p, c, false); err != nil {
		t.Fatal(err)
	}
	return p, c
}

// heapProbe samples the live heap after every MiB written and after every
// tensor.
type heapProbe struct {
	peak    uint64
	pending int64
}

func (p *heapProbe) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.peak = max(p.peak, ms.HeapAlloc)
}

func (p *heapProbe) Write(b []byte) (int, error) {
	p.pending += int64(len(b))
	if p.pending >= 1<<20 {
		p.pending = 0
		p.sample()
	}
	return len(b), nil
}

// Merging into the "small" preset keeps the heap growth to a few MiB, far
// below the model's size: one merged tensor at a time, copies streamed.
func TestMergeMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 60 MB model")
	}
	path, c := smallGGUF(t)
	base := mergeOpenGGUF(t, path)
	var model int64
	for _, ti := range base.Tensors() {
		model += ti.Size
	}
	ad := synthAdapter(c, 8, 1)
	var done, total int64
	out, err := Merge(base, MergeConfig{Adapters: []*Adapter{ad}, Workers: 2, Progress: func(d, t int64) { done, total = d, t }})
	if err != nil {
		t.Fatal(err)
	}
	growth := writeProbed(t, out.Tensors)
	t.Logf("F32 GGUF: model %d MiB, heap growth %.2f MiB", model>>20, float64(growth)/(1<<20))
	if growth > 16<<20 {
		t.Errorf("heap grew %d bytes merging a %d-byte model", growth, model)
	}
	if done != total || total != model {
		t.Errorf("progress %d of %d, model %d bytes", done, total, model)
	}
	if rep := out.Report(); rep.Measured != 7*c.Layers || rep.Warnings != 0 {
		t.Errorf("report: %d measured, %d warnings", rep.Measured, rep.Warnings)
	}

	// NF4 with double quantization, re-quantized: the groups' sources
	// share one slot, so one merged weight is held at a time.
	hfDir := filepath.Join(t.TempDir(), "small-hf")
	if _, err := fixtures.WriteHFFolder(context.Background(), hfDir, c, 0, false); err != nil {
		t.Fatal(err)
	}
	nf4 := bnbFolder(t, hfDir, quantize.Config{Type: quantize.TypeNF4, DoubleQuant: true})
	out, err = Merge(nf4, MergeConfig{Adapters: []*Adapter{ad}, Requantize: true, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	growth = writeProbed(t, out.Tensors)
	t.Logf("NF4+DQ re-quantized: heap growth %.2f MiB", float64(growth)/(1<<20))
	if growth > 16<<20 {
		t.Errorf("NF4 re-quantization: heap grew %d bytes", growth)
	}
}

// writeProbed writes tensors to a probe and returns the heap's growth.
func writeProbed(t testing.TB, ts []formats.Tensor) int64 {
	t.Helper()
	p := &heapProbe{}
	runtime.GC()
	p.sample()
	start := p.peak
	for _, x := range ts {
		if _, err := x.Data.WriteTo(p); err != nil {
			t.Fatal(err)
		}
		p.sample()
	}
	return int64(p.peak) - int64(start)
}
