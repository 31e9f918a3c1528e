package quantize

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

var bnbSeed = flag.Uint64("bnb.seed", 1, "seed of the randomized bitsandbytes quantizer tests")

// bnbRand returns the seeded generator, logging a non-default seed.
func bnbRand(t testing.TB) *rand.Rand {
	if *bnbSeed != 1 {
		t.Logf("-bnb.seed=%d", *bnbSeed)
	}
	return rand.New(rand.NewPCG(*bnbSeed, 0x6e6634))
}

// goldens wraps the golden file and counts the tensors it matched.
type goldens struct {
	t       *testing.T
	r       *safetensors.Reader
	matched map[string]bool
}

func openGoldens(t *testing.T) *goldens {
	t.Helper()
	r, err := safetensors.Open(filepath.Join("testdata", "bnb", "bnb_goldens.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &goldens{t: t, r: r, matched: map[string]bool{}}
}

func (g *goldens) raw(name string) []byte {
	g.t.Helper()
	b, err := g.r.Bytes(name)
	if err != nil {
		g.t.Fatal(err)
	}
	return b
}

func (g *goldens) shape(name string) []int64 {
	ti, ok := g.r.Tensor(name)
	if !ok {
		g.t.Fatalf("no tensor %q", name)
	}
	return ti.Shape
}

func (g *goldens) f32(name string) []float32 {
	b := g.raw(name)
	v := make([]float32, len(b)/4)
	if err := ToFloat32(v, b, formats.F32); err != nil {
		g.t.Fatal(err)
	}
	return v
}

// same compares got with the golden tensor's bytes and records a match.
func (g *goldens) same(name string, got []byte) {
	g.t.Helper()
	want := g.raw(name)
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		g.t.Errorf("%s: %d bytes differ from golden (%d bytes), first at byte %d", name, len(got), len(want), i)
		return
	}
	g.matched[name] = true
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func f16Bytes(v []float32, d formats.DType) []byte {
	b := make([]byte, 2*len(v))
	for i, f := range v {
		h := F32ToF16(f)
		if d == formats.BF16 {
			h = F32ToBF16(f)
		}
		binary.LittleEndian.PutUint16(b[2*i:], h)
	}
	return b
}

func i8Bytes(v []int8) []byte {
	b := make([]byte, len(v))
	for i, c := range v {
		b[i] = byte(c)
	}
	return b
}

func unpack4(packed []byte, n int) []byte {
	c := make([]byte, n)
	for i := range c {
		b := packed[i/2]
		if i%2 == 0 {
			c[i] = b >> 4
		} else {
			c[i] = b & 15
		}
	}
	return c
}

func TestBnbTables(t *testing.T) {
	g := openGoldens(t)
	nf4, fp4, dyn := NF4.Table(), FP4.Table(), DynamicMap()
	g.same("table.nf4", f32Bytes(nf4[:]))
	g.same("table.fp4", f32Bytes(fp4[:]))
	g.same("table.nf4_thresholds", f32Bytes(nf4Thresholds[:]))
	g.same("table.fp4_tree_thresholds", f32Bytes(fp4Thresholds[:]))
	g.same("table.dynamic", f32Bytes(dyn[:]))
	g.same("table.dynamic_thresholds", f32Bytes(dynamicThresholds[:]))
	sum := sha256.Sum256(f32Bytes(dyn[:]))
	if got, want := hex.EncodeToString(sum[:]), g.r.Metadata()["dynamic_map_sha256"]; got != want {
		t.Errorf("dynamic map sha256 %s, want %s", got, want)
	}
	for i, thr := range nf4Thresholds {
		if mid := (nf4[i] + nf4[i+1]) / 2; mid != thr {
			t.Errorf("NF4 threshold %d = %v, float32 midpoint %v", i, thr, mid)
		}
	}
	if NF4.String() != "nf4" || FP4.String() != "fp4" {
		t.Error("FourBit names")
	}
	if d := FP4.dequantTable(); math.Float32bits(d[8]) != 0x80000000 || math.Float32bits(fp4[8]) != 0 {
		t.Error("FP4 code 8: want +0 serialized, -0 dequantized")
	}
}

// TestBnbGoldens reproduces every tensor group of the golden file.
func TestBnbGoldens(t *testing.T) {
	g := openGoldens(t)
	for _, x := range []string{"A", "B", "C", "D", "E"} {
		in := g.f32(x + ".input")
		shape := g.shape(x + ".input")
		n := len(in)

		// NF4 without double quantization.
		packed, absmax, err := Quantize4Bit(NF4, in, 64)
		if err != nil {
			t.Fatal(err)
		}
		g.same(x+".nf4.packed", packed)
		g.same(x+".nf4.codes", unpack4(packed, n))
		g.same(x+".nf4.absmax", f32Bytes(absmax))
		deq := make([]float32, n)
		if err := Dequantize4Bit(NF4, deq, packed, absmax, 64); err != nil {
			t.Fatal(err)
		}
		g.same(x+".nf4.dequant_f16", f16Bytes(deq, formats.F16))
		g.same(x+".nf4.dequant_bf16", f16Bytes(deq, formats.BF16))
		checkQuantState(t, g, x+".nf4.quant_state", shape, nil)

		// Double quantization.
		dq := DoubleQuantize(absmax)
		g.same(x+".nf4dq.absmax_q", dq.Codes)
		g.same(x+".nf4dq.nested_absmax", f32Bytes(dq.NestedAbsmax))
		g.same(x+".nf4dq.offset", f32Bytes([]float32{dq.Offset}))
		centred := make([]float32, len(absmax))
		centre(centred, absmax, dq.Offset)
		g.same(x+".nf4dq.absmax_centered", f32Bytes(centred))
		rec := make([]float32, len(absmax))
		dq.Absmax(rec)
		g.same(x+".nf4dq.absmax_dequant", f32Bytes(rec))
		if err := Dequantize4Bit(NF4, deq, packed, rec, 64); err != nil {
			t.Fatal(err)
		}
		g.same(x+".nf4dq.dequant_f16", f16Bytes(deq, formats.F16))
		checkQuantState(t, g, x+".nf4dq.quant_state", shape, &dq)

		if x == "C" { // the PyTorch backend's zero blocks
			p7 := make([]byte, len(packed))
			if err := Quantize4BitTo(NF4, p7, make([]float32, len(absmax)), in, 64, Options4Bit{ExactZeroBlocks: true}); err != nil {
				t.Fatal(err)
			}
			g.same(x+".nf4.packed_zero7", p7)
			if err := Dequantize4Bit(NF4, deq, p7, rec, 64); err != nil {
				t.Fatal(err)
			}
			g.same(x+".nf4dq.dequant_f16_zero7", f16Bytes(deq, formats.F16))
		}

		// FP4.
		packed, absmax4, err := Quantize4Bit(FP4, in, 64)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f32Bytes(absmax4), f32Bytes(absmax)) {
			t.Errorf("%s: FP4 absmax differs from NF4 absmax", x)
		}
		g.same(x+".fp4.packed", packed)
		g.same(x+".fp4.codes", unpack4(packed, n))
		if err := Dequantize4Bit(FP4, deq, packed, absmax, 64); err != nil {
			t.Fatal(err)
		}
		g.same(x+".fp4.dequant_f16", f16Bytes(deq, formats.F16))

		// Blockwise 8-bit, blocksize 256.
		codes, absmax8, err := QuantizeBlockwise8(in, 256)
		if err != nil {
			t.Fatal(err)
		}
		g.same(x+".q8.codes", codes)
		g.same(x+".q8.absmax", f32Bytes(absmax8))
		if err := DequantizeBlockwise8(deq, codes, absmax8, 256); err != nil {
			t.Fatal(err)
		}
		g.same(x+".q8.dequant_f32", f32Bytes(deq))

		// LLM.int8() row-wise.
		rows := int(shape[0])
		cb, scb, err := QuantizeInt8Rows(in, rows, n/rows)
		if err != nil {
			t.Fatal(err)
		}
		g.same(x+".int8.CB", i8Bytes(cb))
		g.same(x+".int8.SCB", f32Bytes(scb))
		if err := DequantizeInt8Rows(deq, cb, scb, rows, n/rows); err != nil {
			t.Fatal(err)
		}
		g.same(x+".int8.dequant_f32", f32Bytes(deq))
	}
	inputs := 0
	for _, ti := range g.r.Tensors() {
		switch {
		case strings.HasSuffix(ti.Name, ".input"):
			inputs++
		case !strings.HasPrefix(ti.Name, "table.") && !g.matched[ti.Name]:
			t.Errorf("golden %s not checked", ti.Name)
		}
	}
	t.Logf("%d golden tensors reproduced (of %d; %d are inputs, the tables are in TestBnbTables)", len(g.matched), len(g.r.Tensors()), inputs)
}

// checkQuantState checks the fields of a golden quant_state JSON blob that
// the quantizer determines (the blob itself is written by the file layer).
func checkQuantState(t *testing.T, g *goldens, name string, shape []int64, dq *DoubleQuant) {
	t.Helper()
	var qs struct {
		QuantType       string   `json:"quant_type"`
		Blocksize       int      `json:"blocksize"`
		Shape           []int64  `json:"shape"`
		NestedBlocksize int      `json:"nested_blocksize"`
		NestedOffset    *float64 `json:"nested_offset"`
	}
	if err := json.Unmarshal(g.raw(name), &qs); err != nil {
		t.Fatal(err)
	}
	ok := qs.QuantType == NF4.String() && qs.Blocksize == DefaultBlocksize4Bit && fmt.Sprint(qs.Shape) == fmt.Sprint(shape)
	if dq != nil {
		ok = ok && qs.NestedBlocksize == dq.Blocksize && qs.NestedOffset != nil && float32(*qs.NestedOffset) == dq.Offset &&
			float64(dq.Offset) == *qs.NestedOffset
	}
	if !ok {
		t.Errorf("%s: %s disagrees with the quantizer", name, g.raw(name))
		return
	}
	g.matched[name] = true
}

// ref4 is the plain reference 4-bit quantizer (one element at a time, the
// literal decision rules).
func ref4(kind FourBit, x []float32, bs int, exactZero bool) ([]byte, []float32) {
	n := len(x)
	codes := make([]byte, n+1)
	absmax := make([]float32, numBlocks(n, bs))
	for b := range absmax {
		var m float32
		for _, v := range x[b*bs : min(b*bs+bs, n)] {
			m = max(m, float32(math.Abs(float64(v))))
		}
		absmax[b] = m
		inv := 1 / m
		for i := b * bs; i < min(b*bs+bs, n); i++ {
			codes[i] = code4Ref(kind, x[i]*inv)
			if m == 0 && exactZero {
				codes[i] = code4Ref(kind, 0)
			}
		}
		if n%2 == 1 && b == len(absmax)-1 {
			var zero float32
			codes[n] = code4Ref(kind, zero*inv)
			if m == 0 && exactZero {
				codes[n] = code4Ref(kind, 0)
			}
		}
	}
	packed := make([]byte, (n+1)/2)
	for j := range packed {
		packed[j] = codes[2*j]<<4 | codes[2*j+1]
	}
	return packed, absmax
}

// extremeInput mixes normal data with the cases quantizers get wrong:
// zero, constant, tiny and huge blocks, -0.0, values on and next to every
// decision threshold, fp16 subnormals and float32 subnormals.
func extremeInput(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	edges := []float32{}
	for _, th := range append(append(nf4Thresholds[:], fp4Thresholds[:]...), dynamicThresholds[:]...) {
		edges = append(edges, th, math.Nextafter32(th, 2), math.Nextafter32(th, -2), -th)
	}
	kind := 0
	for i := range x {
		if i%64 == 0 {
			kind = r.IntN(8)
		}
		switch kind {
		case 0: // zero block (with -0.0)
			x[i] = float32(math.Copysign(0, float64(r.IntN(2)*2-1)))
		case 1: // constant block
			x[i] = 0.5
		case 2: // thresholds, with a 1.0 somewhere to fix absmax
			x[i] = edges[r.IntN(len(edges))]
			if i%64 == 5 {
				x[i] = 1
			}
		case 3: // fp16 subnormals
			x[i] = F16ToF32(uint16(r.IntN(1024)) | uint16(r.IntN(2))<<15)
		case 4: // float32 subnormals: 1/absmax overflows
			x[i] = math.Float32frombits(uint32(r.IntN(1<<20)) | uint32(r.IntN(2))<<31)
		case 5: // huge
			x[i] = float32(r.NormFloat64() * 1e37)
		default:
			x[i] = float32(r.NormFloat64())
		}
	}
	return x
}

// TestNF4FP4MatchReference compares the table-driven kernels with the
// literal CUDA rules, with 1 and N goroutines, inside guard bands.
func TestNF4FP4MatchReference(t *testing.T) {
	r := bnbRand(t)
	for _, n := range []int{0, 1, 2, 63, 64, 65, 1000, 4097, 6401} {
		x := extremeInput(r, n)
		for _, kind := range []FourBit{NF4, FP4} {
			for _, bs := range []int{32, 64, 128, 4096} {
				for _, ez := range []bool{false, true} {
					wantP, wantA := ref4(kind, x, bs, ez)
					for _, workers := range []int{1, 3} {
						const guard = 8
						pbuf := bytes.Repeat([]byte{0xA5}, len(wantP)+2*guard)
						abuf := make([]float32, len(wantA)+2*guard)
						for i := range abuf {
							abuf[i] = -7
						}
						p, a := pbuf[guard:guard+len(wantP)], abuf[guard:guard+len(wantA)]
						if err := Quantize4BitTo(kind, p, a, x, bs, Options4Bit{ExactZeroBlocks: ez, Workers: workers}); err != nil {
							t.Fatal(err)
						}
						what := fmt.Sprintf("%v n=%d bs=%d zero7=%v workers=%d", kind, n, bs, ez, workers)
						if !bytes.Equal(p, wantP) || !bytes.Equal(f32Bytes(a), f32Bytes(wantA)) {
							t.Errorf("%s: kernel differs from reference", what)
						}
						for i := range guard {
							if pbuf[i] != 0xA5 || pbuf[len(pbuf)-1-i] != 0xA5 || abuf[i] != -7 || abuf[len(abuf)-1-i] != -7 {
								t.Fatalf("%s: guard band overwritten", what)
							}
						}
						ybuf := make([]float32, n+2*guard)
						for i := range ybuf {
							ybuf[i] = -7
						}
						if err := Dequantize4BitTo(kind, ybuf[guard:guard+n], p, a, bs, Options4Bit{Workers: workers}); err != nil {
							t.Fatal(err)
						}
						tab := kind.dequantTable()
						for i, c := range unpack4(p, n) {
							if y := ybuf[guard+i]; math.Float32bits(y) != math.Float32bits(tab[c]*a[i/bs]) {
								t.Fatalf("%s: dequant of element %d = %v", what, i, y)
							}
						}
						for i := range guard {
							if ybuf[i] != -7 || ybuf[len(ybuf)-1-i] != -7 {
								t.Fatalf("%s: dequant guard band overwritten", what)
							}
						}
					}
				}
			}
		}
	}
}

// TestBnbLUTBuckets checks the premise of codeLUT: no bucket of finite
// values spans two thresholds, so one comparison after the table suffices.
func TestBnbLUTBuckets(t *testing.T) {
	check := func(name string, thr []float32, shift uint, buckets int) {
		for i := range buckets {
			lo := uint32(i) << shift
			hi := lo | (1<<shift - 1)
			if lo&^(1<<31) >= 0x7f800000 {
				continue
			}
			a, b := math.Float32frombits(lo), math.Float32frombits(min(hi&^(1<<31), 0x7f7fffff)|lo&(1<<31))
			if c := countBelow(thr, a) - countBelow(thr, b); c > 1 || c < -1 {
				t.Fatalf("%s: bucket %#x spans %d thresholds", name, i, c)
			}
		}
	}
	check("nf4", nf4Thresholds[:], lutShift, 1<<13)
	check("fp4", fp4Thresholds[:], lutShift, 1<<12)
	check("dynamic", dynamicThresholds[:], dynShift, 1<<16)

	// Every threshold, its neighbours and random values, directly.
	r := bnbRand(t)
	nf, fp, dl := nf4LUT(), fp4LUT(), dynLUT()
	var vals []float32
	for _, th := range append(append(nf4Thresholds[:], fp4Thresholds[:]...), dynamicThresholds[:]...) {
		for _, v := range []float32{th, math.Nextafter32(th, 2), math.Nextafter32(th, -2)} {
			vals = append(vals, v, -v)
		}
	}
	for range 100000 {
		vals = append(vals, float32(r.Float64()*2-1), math.Float32frombits(r.Uint32()&0xbf800000|r.Uint32()&0x007fffff))
	}
	for _, s := range vals {
		var p [1]byte
		quantizeNF4Pairs(p[:], []float32{s, 0}, 1, nf)
		if p[0]>>4 != nf4CodeRef(s) {
			t.Fatalf("NF4 code of %v: %d, want %d", s, p[0]>>4, nf4CodeRef(s))
		}
		if fp4Code(s, fp) != fp4CodeRef(s) {
			t.Fatalf("FP4 code of %v: %d, want %d", s, fp4Code(s, fp), fp4CodeRef(s))
		}
		var c [1]uint8
		quantize8(c[:], []float32{s}, 1, dl)
		if int(c[0]) != countBelow(dynamicThresholds[:], s) {
			t.Fatalf("dynamic code of %v: %d, want %d", s, c[0], countBelow(dynamicThresholds[:], s))
		}
	}
}

func TestBnbNonFiniteRefused(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		x := make([]float32, 300)
		for i := range x {
			x[i] = float32(i) / 7
		}
		x[201] = bad
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, ErrNonFinite) || !errors.Is(err, formats.ErrFormat) {
				t.Errorf("%s with %v: err = %v, want ErrNonFinite", what, bad, err)
			}
		}
		_, _, err := Quantize4Bit(NF4, x, 64)
		check("NF4", err)
		_, _, err = Quantize4Bit(FP4, x, 32)
		check("FP4", err)
		err = Quantize4BitTo(NF4, make([]byte, 150), make([]float32, 5), x, 64, Options4Bit{Workers: 4})
		check("NF4 parallel", err)
		_, _, err = QuantizeBlockwise8(x, 64)
		check("blockwise 8-bit", err)
		_, _, err = QuantizeInt8Rows(x, 3, 100)
		check("int8 rows", err)
		_, _, err = QuantizeAbsmaxInt8(x, 8)
		check("absmax int8", err)
	}
	_, _, err := QuantizeInt8Rows([]float32{1, 70000}, 1, 2)
	if !errors.Is(err, ErrNonFinite) {
		t.Errorf("int8 rows beyond fp16: err = %v", err)
	}
}

func TestBnbBadArguments(t *testing.T) {
	x := make([]float32, 100)
	for _, bs := range []int{-64, 16, 48, 8192} {
		if _, _, err := Quantize4Bit(NF4, x, bs); !errors.Is(err, ErrBlocksize) {
			t.Errorf("4-bit blocksize %d: err = %v", bs, err)
		}
		if err := Dequantize4Bit(NF4, x, make([]byte, 50), make([]float32, 2), bs); !errors.Is(err, ErrBlocksize) {
			t.Errorf("4-bit dequant blocksize %d: err = %v", bs, err)
		}
	}
	if _, _, err := QuantizeBlockwise8(x, 32); !errors.Is(err, ErrBlocksize) {
		t.Errorf("8-bit blocksize 32: err = %v", err)
	}
	if _, _, err := QuantizeAbsmaxInt8(x, 0); !errors.Is(err, ErrBlocksize) {
		t.Errorf("group 0: err = %v", err)
	}
	if _, _, err := Quantize4Bit(FourBit(7), x, 64); !errors.Is(err, formats.ErrUnsupported) {
		t.Errorf("unknown kind: err = %v", err)
	}
	lengthErr := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, formats.ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", what, err)
		}
	}
	lengthErr("packed", Dequantize4Bit(NF4, x, make([]byte, 49), make([]float32, 2), 64))
	lengthErr("absmax", Dequantize4Bit(NF4, x, make([]byte, 50), make([]float32, 1), 64))
	lengthErr("quantize absmax", Quantize4BitTo(NF4, make([]byte, 50), make([]float32, 3), x, 64, Options4Bit{}))
	lengthErr("8-bit codes", DequantizeBlockwise8(x, make([]uint8, 99), make([]float32, 2), 64))
	lengthErr("8-bit absmax", DequantizeBlockwise8(x, make([]uint8, 100), make([]float32, 1), 64))
	_, _, err := QuantizeInt8Rows(x, 3, 33)
	lengthErr("int8 shape", err)
	_, _, err = QuantizeInt8Rows(x, -1, -100)
	lengthErr("int8 negative shape", err)
	lengthErr("SCB", DequantizeInt8Rows(x, make([]int8, 100), make([]float32, 3), 4, 25))
	lengthErr("nested", DoubleQuant{Codes: make([]uint8, 300), NestedAbsmax: make([]float32, 1), Blocksize: 256}.Validate())
	if _, a, err := Quantize4Bit(NF4, x, 0); err != nil || len(a) != 2 {
		t.Errorf("blocksize 0 should mean 64: %d blocks, %v", len(a), err)
	}
}

// TestNF4FP4RoundTrip: dequantize(quantize(x)) is within half the widest
// gap of the code (relative to the block absmax), plus float32 rounding,
// for zero, constant, partial and odd-sized inputs.
func TestNF4FP4RoundTrip(t *testing.T) {
	r := bnbRand(t)
	for _, kind := range []FourBit{NF4, FP4} {
		tab := kind.Table()
		sorted := tab[:]
		if kind == FP4 {
			sorted = []float32{-1, -2.0 / 3, -0.5, -1.0 / 3, -0.25, -1.0 / 6, -0.0625 / 12, 0, 0.0625 / 12, 1.0 / 6, 0.25, 1.0 / 3, 0.5, 2.0 / 3, 1}
		}
		var gap float64
		for i := 1; i < len(sorted); i++ {
			gap = max(gap, float64(sorted[i]-sorted[i-1]))
		}
		for _, n := range []int{1, 7, 64, 129, 1001} {
			for _, fill := range []string{"zero", "const", "normal"} {
				x := make([]float32, n)
				for i := range x {
					switch fill {
					case "const":
						x[i] = -3.25
					case "normal":
						x[i] = float32(r.NormFloat64())
					}
				}
				packed, absmax, err := Quantize4Bit(kind, x, 64)
				if err != nil {
					t.Fatal(err)
				}
				y := make([]float32, n)
				if err := Dequantize4Bit(kind, y, packed, absmax, 64); err != nil {
					t.Fatal(err)
				}
				for i := range x {
					bound := float64(absmax[i/64]) * (gap/2 + 1e-6)
					if e := math.Abs(float64(y[i] - x[i])); e > bound {
						t.Fatalf("%v %s n=%d: |%v - %v| > %v", kind, fill, n, y[i], x[i], bound)
					}
					if fill != "normal" && y[i] != x[i] {
						t.Fatalf("%v %s n=%d: %v came back as %v", kind, fill, n, x[i], y[i])
					}
				}
			}
		}
	}
}

func TestDoubleQuantRoundTrip(t *testing.T) {
	r := bnbRand(t)
	for _, n := range []int{0, 1, 255, 256, 257, 1000} {
		absmax := make([]float32, n)
		for i := range absmax {
			absmax[i] = float32(r.ExpFloat64())
		}
		dq := DoubleQuantize(absmax)
		if len(dq.Codes) != n || len(dq.NestedAbsmax) != numBlocks(n, 256) || dq.Validate() != nil {
			t.Fatalf("n=%d: shapes %d/%d", n, len(dq.Codes), len(dq.NestedAbsmax))
		}
		rec := make([]float32, n)
		dq.Absmax(rec)
		for i := range absmax {
			// The dynamic code's widest gap is 1/71 of the nested absmax.
			bound := float64(dq.NestedAbsmax[i/256])*0.0071 + 1e-6*float64(absmax[i])
			if e := math.Abs(float64(rec[i] - absmax[i])); e > bound {
				t.Fatalf("n=%d: absmax %v reconstructed as %v", n, absmax[i], rec[i])
			}
		}
	}
	// A constant absmax vector (every block alike) comes back exactly.
	dq := DoubleQuantize([]float32{2.5, 2.5, 2.5})
	rec := make([]float32, 3)
	dq.Absmax(rec)
	if rec[0] != 2.5 || rec[2] != 2.5 {
		t.Errorf("constant absmax: %v", rec)
	}
}

func TestBlockwise8RoundTrip(t *testing.T) {
	r := bnbRand(t)
	for _, n := range []int{1, 63, 64, 300} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
			if i >= 64 && i < 128 {
				x[i] = 0 // a zero block at blocksize 64
			}
		}
		codes, absmax, err := QuantizeBlockwise8(x, 64)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, n)
		if err := DequantizeBlockwise8(y, codes, absmax, 64); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			if e := math.Abs(float64(y[i] - x[i])); e > float64(absmax[i/64])*0.0071 {
				t.Fatalf("n=%d: %v came back as %v", n, x[i], y[i])
			}
		}
	}
}

func TestInt8RowsRoundTrip(t *testing.T) {
	r := bnbRand(t)
	const rows, cols = 5, 33
	x := make([]float32, rows*cols)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 3)
		if i/cols == 2 {
			x[i] = 0 // a zero row
		}
	}
	x[7] = 1.0001 // not an fp16 value: rounded like Int8Params does
	cb, scb, err := QuantizeInt8Rows(x, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, len(x))
	if err := DequantizeInt8Rows(y, cb, scb, rows, cols); err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if e := math.Abs(float64(y[i] - x[i])); e > float64(scb[i/cols])/254*1.001+math.Abs(float64(x[i]))/2048 {
			t.Fatalf("%v came back as %v (SCB %v)", x[i], y[i], scb[i/cols])
		}
	}
	if scb[2] != 0 || cb[2*cols] != 0 {
		t.Error("zero row")
	}
}

// TestInt8RoundingHelpers checks roundF16 against the x448 conversion and
// the float32 magic-number rounding against math.RoundToEven.
func TestInt8RoundingHelpers(t *testing.T) {
	r := bnbRand(t)
	vals := []float32{0, 65504, 65519.996, 65520, 6.1035156e-05, 6.1035153e-05, 1.0004883, 1.0014648, 2049, 2051}
	for range 200000 {
		vals = append(vals, math.Float32frombits(r.Uint32()), float32(r.NormFloat64()*1000))
	}
	for _, v := range vals {
		want := F16ToF32(F32ToF16(v))
		if got := roundF16(v); math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("roundF16(%v) = %v, want %v", v, got, want)
		}
		p := float32(math.Mod(float64(v), 128))
		if p != p {
			continue
		}
		if got, want := float32(p+roundMagic)-roundMagic, float32(math.RoundToEven(float64(p))); got != want {
			t.Fatalf("magic rounding of %v = %v, want %v", p, got, want)
		}
	}
	for _, p := range []float32{0.5, 1.5, 2.5, -0.5, -1.5, 126.5, -126.5} {
		if got, want := float32(p+roundMagic)-roundMagic, float32(math.RoundToEven(float64(p))); got != want {
			t.Fatalf("magic rounding of %v = %v, want %v", p, got, want)
		}
	}
}

// TestAbsmaxInt8Stories reproduces every int8 value and scale of a real
// llama2.c version-2 export (stories260K-q8.bin, group size 8) from the
// fp32 weights of stories260K.bin.
func TestAbsmaxInt8Stories(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "bnb", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fp, q8 := read("stories260K.bin"), read("stories260K-q8.bin")
	le := binary.LittleEndian
	var p [7]int // dim, hidden, layers, heads, kv heads, vocab, seq len
	for i := range p {
		p[i] = int(int32(le.Uint32(fp[4*i:])))
	}
	dim, hidden, layers, kvDim, vocab := p[0], p[1], p[2], p[0]*p[4]/p[3], p[5]
	if le.Uint32(q8) != 0x616b3432 || le.Uint32(q8[4:]) != 2 || !bytes.Equal(q8[8:36], fp[:28]) || q8[36] != 1 {
		t.Fatal("q8 header")
	}
	group := int(le.Uint32(q8[37:]))
	if group != 8 {
		t.Fatalf("group size %d", group)
	}

	// The fp32 checkpoint, in llama2.c's legacy order.
	off := 28
	next := func(n int) []float32 {
		v := make([]float32, n)
		if err := ToFloat32(v, fp[off:off+4*n], formats.F32); err != nil {
			t.Fatal(err)
		}
		off += 4 * n
		return v
	}
	tok := next(vocab * dim)
	attNorm := next(layers * dim)
	wq, wk, wv, wo := next(layers*dim*dim), next(layers*dim*kvDim), next(layers*dim*kvDim), next(layers*dim*dim)
	ffnNorm := next(layers * dim)
	w1, w2, w3 := next(layers*hidden*dim), next(layers*dim*hidden), next(layers*hidden*dim)
	final := next(dim)

	// The q8 file: fp32 norms, then per tensor int8 values and scales.
	qoff := 256
	norms := f32Bytes(append(append(attNorm, ffnNorm...), final...))
	if !bytes.Equal(q8[qoff:qoff+len(norms)], norms) {
		t.Fatal("norms differ")
	}
	qoff += len(norms)
	tensors := 0
	check := func(name string, w []float32) {
		q, s, err := QuantizeAbsmaxInt8(w, group)
		if err != nil {
			t.Fatal(err)
		}
		if got := i8Bytes(q); !bytes.Equal(got, q8[qoff:qoff+len(got)]) {
			t.Errorf("%s: int8 values differ", name)
		}
		qoff += len(q)
		if got := f32Bytes(s); !bytes.Equal(got, q8[qoff:qoff+len(got)]) {
			t.Errorf("%s: scales differ", name)
		}
		qoff += 4 * len(s)
		tensors++
	}
	check("tok_embeddings", tok)
	for _, m := range []struct {
		name string
		w    []float32
	}{{"wq", wq}, {"wk", wk}, {"wv", wv}, {"wo", wo}, {"w1", w1}, {"w2", w2}, {"w3", w3}} {
		per := len(m.w) / layers
		for l := range layers {
			check(fmt.Sprintf("layers.%d.%s", l, m.name), m.w[l*per:(l+1)*per])
		}
	}
	if qoff != len(q8) {
		t.Errorf("%d bytes of the q8 file not accounted for", len(q8)-qoff)
	}
	t.Logf("%d int8 tensors (values and scales) reproduced", tensors)
}
