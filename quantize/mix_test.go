package quantize

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

var (
	synthF16  = filepath.Join("testdata", "ggml", "synth-e256-ff768-f16.gguf")
	synthQ4KM = filepath.Join("testdata", "ggml", "synth-e256-ff768-Q4_K_M.gguf")
)

// writeGGUF plans src with cfg and returns the GGUF bytes.
func writeGGUF(t *testing.T, path string, cfg Config) ([]byte, *Output) {
	t.Helper()
	src, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := Plan(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := gguf.Write(context.Background(), &buf, out.Meta, out.Tensors, gguf.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), out
}

// q4_k_m (q4_k with the mix) on the synthetic F16 model is llama-quantize's
// Q4_K_M byte for byte: output.weight and layer 1's attn_v and ffn_down
// Q6_K, general.file_type 15 (testdata/ggml/README.md).
func TestMixMatchesLlamaQuantizeQ4KM(t *testing.T) {
	if testing.Short() {
		t.Skip("K-quants take seconds; -short")
	}
	want, err := os.ReadFile(synthQ4KM)
	if err != nil {
		t.Fatal(err)
	}
	typ, err := ParseTarget("Q4_K_M")
	if err != nil {
		t.Fatal(err)
	}
	got, out := writeGGUF(t, synthF16, Config{Type: typ, Mix: true})
	if !bytes.Equal(got, want) {
		t.Fatalf("q4_k_m differs from llama-quantize's: %s", firstDifference(t, got, want))
	}
	counts := map[string]int{}
	for _, d := range out.Decisions() {
		counts[d.To]++
		if (d.To == "Q6_K") != (d.Rule != "") {
			t.Errorf("%s → %s, rule %q", d.Name, d.To, d.Rule)
		}
	}
	if counts["Q4_K"] != 13 || counts["Q6_K"] != 3 || counts["F32"] != 5 {
		t.Errorf("types %v, want Q4_K ×13, Q6_K ×3, F32 ×5", counts)
	}
	if ft, _ := out.Meta.Uint(keyFileType); ft != 15 {
		t.Errorf("general.file_type %d, want 15", ft)
	}
}

func TestUseMoreBits(t *testing.T) {
	for n, want := range map[int]string{
		1: "1", 2: "01", 8: "10010011", 16: "1100100100100111", 32: "11110010010010010010010010011111",
	} {
		var b strings.Builder
		for i := range n {
			if useMoreBits(i, n) {
				b.WriteByte('1')
			} else {
				b.WriteByte('0')
			}
		}
		if b.String() != want {
			t.Errorf("n=%d: %s, want %s", n, b.String(), want)
		}
	}
}

// The mix rules on a synthetic tensor list: which tensor gets what.
func TestMixRules(t *testing.T) {
	mat := func(name string, rows, cols int64) formats.TensorInfo {
		return formats.TensorInfo{Name: name, DType: formats.F16, Shape: []int64{rows, cols}}
	}
	model := func(layers int, embd int64, output bool) []formats.TensorInfo {
		ts := []formats.TensorInfo{mat("token_embd.weight", 320, embd)}
		if output {
			ts = append(ts, mat("output.weight", 320, embd))
		}
		for i := range layers {
			p := "blk." + string(rune('0'+i)) + "."
			ts = append(ts, mat(p+"attn_v.weight", embd/2, embd), mat(p+"ffn_down.weight", embd, 768), mat(p+"attn_q.weight", embd, embd))
		}
		return llamaQuantizeOrder(ts)
	}
	meta := func(layers, heads, kv uint32) *formats.Meta {
		m := formats.NewMeta()
		m.Set("general.architecture", formats.ValString("llama"))
		m.Set("llama.block_count", formats.ValUint32(layers))
		m.Set("llama.attention.head_count", formats.ValUint32(heads))
		m.Set("llama.attention.head_count_kv", formats.ValUint32(kv))
		return m
	}
	got := func(cfg Config, infos []formats.TensorInfo, m *formats.Meta) map[string]string {
		mix := newMixer(cfg.Type, infos, m)
		out := map[string]string{}
		for _, ti := range infos {
			ch := cfg.decideWith(ti, GGUF, mix)
			out[ti.Name] = ch.typ.String()
		}
		return out
	}
	cases := []struct {
		name   string
		cfg    Config
		infos  []formats.TensorInfo
		meta   *formats.Meta
		expect map[string]string
	}{
		{"q4_k_m 8 layers", Config{Type: TypeQ4K}, model(8, 256, true), meta(8, 8, 4), map[string]string{
			"output.weight": "q6_k", "token_embd.weight": "q4_k", "blk.0.attn_v.weight": "q6_k", "blk.1.attn_v.weight": "q4_k",
			"blk.3.attn_v.weight": "q6_k", "blk.6.ffn_down.weight": "q6_k", "blk.7.ffn_down.weight": "q6_k",
			"blk.5.ffn_down.weight": "q4_k", "blk.7.attn_q.weight": "q4_k"}},
		{"q5_k_m", Config{Type: TypeQ5K}, model(2, 256, true), meta(2, 8, 4), map[string]string{
			"output.weight": "q6_k", "blk.0.attn_v.weight": "q5_k", "blk.1.attn_v.weight": "q6_k", "blk.1.ffn_down.weight": "q6_k"}},
		{"q4_0 narrow output", Config{Type: TypeQ4_0}, model(2, 64, true), meta(2, 8, 4), map[string]string{
			"output.weight": "q8_0", "blk.1.attn_v.weight": "q4_0", "blk.1.ffn_down.weight": "q4_0", "token_embd.weight": "q4_0"}},
		{"q4_0 tied embeddings", Config{Type: TypeQ4_0}, model(2, 256, false), meta(2, 8, 4), map[string]string{
			"token_embd.weight": "q6_k"}},
		{"q8_0 output stays", Config{Type: TypeQ8_0}, model(2, 256, true), meta(2, 8, 4), map[string]string{
			"output.weight": "q8_0", "blk.1.attn_v.weight": "q8_0"}},
		{"iq4_nl gqa 4", Config{Type: TypeIQ4NL}, model(8, 256, true), meta(8, 8, 2), map[string]string{
			"output.weight": "q6_k", "blk.5.attn_v.weight": "q5_k", "blk.0.ffn_down.weight": "q5_k", "blk.1.ffn_down.weight": "iq4_nl"}},
		{"iq4_nl gqa 2", Config{Type: TypeIQ4NL}, model(8, 256, true), meta(8, 8, 4), map[string]string{
			"blk.5.attn_v.weight": "iq4_nl"}},
		{"iq4_nl q5_k falls back", Config{Type: TypeIQ4NL}, model(8, 64, true), meta(8, 8, 2), map[string]string{
			"blk.0.attn_v.weight": "q5_1", "output.weight": "q8_0"}},
		{"overrides win", Config{Type: TypeQ4K, LeaveOutput: true, TokenEmbeddingType: TypeQ8_0,
			TypeFor: []TypeRule{{regexp.MustCompile(`blk\.0\.attn_v`), TypeQ4K}}}, model(2, 256, false), meta(2, 8, 4), map[string]string{
			"token_embd.weight": "q8_0", "blk.0.attn_v.weight": "q4_k", "blk.1.attn_v.weight": "q6_k"}},
	}
	for _, c := range cases {
		g := got(c.cfg, c.infos, c.meta)
		for name, want := range c.expect {
			if g[name] != want {
				t.Errorf("%s: %s → %s, want %s", c.name, name, g[name], want)
			}
		}
	}
	// Without the mix every weight gets Type.
	infos := model(8, 256, true)
	cfg := Config{Type: TypeQ4K}
	for _, ti := range infos {
		if ch := cfg.decide(ti, GGUF); ch.typ != TypeQ4K || ch.rule != "" {
			t.Errorf("pure: %s → %v", ti.Name, ch.typ)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for name, want := range map[string]Type{"q4_k_m": TypeQ4K, "Q5_K_M": TypeQ5K, "q4_k": TypeQ4K, "iq4_nl": TypeIQ4NL, "nf4": TypeNF4} {
		if got, err := ParseTarget(name); err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %v, %v", name, got, err)
		}
	}
	for _, bad := range []string{"q4_k_s", "Q5_K_S", "q3_k_m", "q4_k_x"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
	if _, err := ParseTarget("q4_k_s"); !strings.Contains(err.Error(), "not implemented") {
		t.Errorf("q4_k_s: %v", err)
	}
	if err := (Config{Type: TypeNF4, Mix: true}).Validate(); !errors.Is(err, ErrBadConfig) {
		t.Errorf("mix for bitsandbytes: %v", err)
	}
}

// A small memory bound changes chunk sizes, never bytes; too small a
// bound names the tensor that needs the most and the minimum.
func TestMaxMemory(t *testing.T) {
	want, _ := writeGGUF(t, storiesGGUF, Config{Type: TypeQ4_0})
	// ffn_down rows are 172 wide: 172·17 bytes per chunk at least.
	got, _ := writeGGUF(t, storiesGGUF, Config{Type: TypeQ4_0, MaxMemory: 4096})
	if !bytes.Equal(got, want) {
		t.Errorf("4 KiB bound changes the output: %s", firstDifference(t, got, want))
	}
	src, err := gguf.Open(storiesGGUF)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = Plan(src, Config{Type: TypeQ4_0, MaxMemory: 2000})
	if !errors.Is(err, ErrMemoryLimit) || !errors.Is(err, formats.ErrLimit) ||
		!strings.Contains(err.Error(), "ffn_down.weight") || !strings.Contains(err.Error(), "2924 bytes") {
		t.Errorf("2000-byte bound: %v", err)
	}

	// bitsandbytes with double quantization: the block scales count.
	hf := filepath.Join("..", "fixtures", "stories260K-hf", "model.safetensors")
	st, err := safetensors.Open(hf)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	plain := bnbBytes(t, st, Config{Type: TypeNF4, DoubleQuant: true})
	small := bnbBytes(t, st, Config{Type: TypeNF4, DoubleQuant: true, MaxMemory: 6000})
	if !bytes.Equal(plain, small) {
		t.Error("nf4 double quant: 6000-byte bound changes the output")
	}
	if _, err := Plan(st, Config{Type: TypeNF4, DoubleQuant: true, MaxMemory: 1500}); !errors.Is(err, ErrMemoryLimit) {
		t.Errorf("nf4 1500-byte bound: %v", err)
	}
	q, err := safetensors.NewReader(bytes.NewReader(plain), int64(len(plain)), "nf4", safetensors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var files [][]byte
	for _, mem := range []int64{0, 2048} {
		out, err := Dequant(q, DequantConfig{DType: formats.F16, Format: Safetensors, MaxMemory: mem})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := safetensors.WriteMeta(context.Background(), &buf, out.Meta, out.Tensors); err != nil {
			t.Fatal(err)
		}
		files = append(files, buf.Bytes())
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Error("dequantize: 2 KiB bound changes the output")
	}
}

// bnbBytes plans src to a safetensors file in memory.
func bnbBytes(t *testing.T, src formats.Source, cfg Config) []byte {
	t.Helper()
	out, err := Plan(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := safetensors.WriteMeta(context.Background(), &buf, out.Meta, out.Tensors); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Shards keep every weight with its companions and stay within the cap
// unless one group alone exceeds it.
func TestShardsKeepGroups(t *testing.T) {
	hf := filepath.Join("..", "fixtures", "stories260K-hf", "model.safetensors")
	st, err := safetensors.Open(hf)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out, err := Plan(st, Config{Type: TypeNF4, DoubleQuant: true})
	if err != nil {
		t.Fatal(err)
	}
	const cap = 20000
	shards := out.Shards(cap)
	if len(shards) < 3 {
		t.Fatalf("%d shards", len(shards))
	}
	where := map[string]int{}
	n := 0
	for i, sh := range shards {
		var size int64
		for _, ts := range sh {
			where[ts.Name] = i
			size += ts.Size
			n++
		}
		if size > cap && len(sh) > 6 {
			t.Errorf("shard %d: %d bytes in %d tensors", i, size, len(sh))
		}
	}
	if n != len(out.Tensors) {
		t.Errorf("%d tensors in shards, %d planned", n, len(out.Tensors))
	}
	for name, i := range where {
		if w, _, ok := strings.Cut(name, ".weight."); ok {
			if j, found := where[w+".weight"]; !found || j != i {
				t.Errorf("%s in shard %d, its weight in %d", name, i, j)
			}
		}
	}
	if one := out.Shards(0); len(one) != 1 || len(one[0]) != len(out.Tensors) {
		t.Error("Shards(0) is not one shard")
	}
}
