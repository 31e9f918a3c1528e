package quantize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// Type is a target of quantization as users name it on the command line:
// a bitsandbytes type (safetensors output), a ggml block type (GGUF
// output), or a plain float type (what a tensor is cast to when it stays
// unquantized on purpose or falls back). The zero value TypeNone means
// "not set".
type Type uint8

// The types. The bitsandbytes ones have no ggml type and the ggml ones no
// safetensors dtype, so a Type decides the output container.
const (
	TypeNone      Type = iota
	TypeNF4            // bitsandbytes NF4 (NF4-BITSANDBYTES.md §1)
	TypeFP4            // bitsandbytes FP4
	TypeInt8           // LLM.int8() row-wise int8 + SCB (§4)
	TypeInt8Block      // blockwise 8-bit with the dynamic code (§4); a qtool layout
	TypeQ8_0           // ggml Q8_0 (GGUF-LLAMACPP.md §3)
	TypeQ4_0
	TypeQ4_1
	TypeQ5_0
	TypeQ5_1
	TypeIQ4NL
	TypeQ4K
	TypeQ5K
	TypeQ6K
	TypeF32 // plain casts
	TypeF16
	TypeBF16
	numTypes
)

// typeTraits describes one Type: its command-line name, its storage dtype
// when it has one, and llama.cpp's general.file_type (llama_ftype) for a
// GGUF whose weights are mostly of that type.
type typeTraits struct {
	name  string
	dtype formats.DType // ggml block type or float dtype; Invalid for bitsandbytes
	ftype uint32        // llama_ftype; only meaningful when dtype is a GGUF type
	bnb   bool
}

// types is the table of Types. llama-quantize treats Q4_K and Q5_K as
// aliases of Q4_K_M and Q5_K_M, so their file types are 15 and 17
// (shared/goldens/ggml/README.md).
var types = [numTypes]typeTraits{
	TypeNone:      {name: "none"},
	TypeNF4:       {name: "nf4", bnb: true},
	TypeFP4:       {name: "fp4", bnb: true},
	TypeInt8:      {name: "int8", bnb: true},
	TypeInt8Block: {name: "int8-block", bnb: true},
	TypeQ8_0:      {name: "q8_0", dtype: formats.Q8_0, ftype: 7},
	TypeQ4_0:      {name: "q4_0", dtype: formats.Q4_0, ftype: 2},
	TypeQ4_1:      {name: "q4_1", dtype: formats.Q4_1, ftype: 3},
	TypeQ5_0:      {name: "q5_0", dtype: formats.Q5_0, ftype: 8},
	TypeQ5_1:      {name: "q5_1", dtype: formats.Q5_1, ftype: 9},
	TypeIQ4NL:     {name: "iq4_nl", dtype: formats.IQ4_NL, ftype: 25},
	TypeQ4K:       {name: "q4_k", dtype: formats.Q4_K, ftype: 15},
	TypeQ5K:       {name: "q5_k", dtype: formats.Q5_K, ftype: 17},
	TypeQ6K:       {name: "q6_k", dtype: formats.Q6_K, ftype: 18},
	TypeF32:       {name: "f32", dtype: formats.F32, ftype: 0},
	TypeF16:       {name: "f16", dtype: formats.F16, ftype: 1},
	TypeBF16:      {name: "bf16", dtype: formats.BF16, ftype: 32},
}

// QuantTypeNames lists the names --type accepts, in the order of the table.
func QuantTypeNames() []string {
	var out []string
	for t := TypeNF4; t < TypeF32; t++ {
		out = append(out, types[t].name)
	}
	return out
}

// ParseType reads a type name in any letter case: nf4, fp4, int8,
// int8-block, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q4_k, q5_k, q6_k, and
// the casts f32, f16, bf16.
func ParseType(name string) (Type, error) {
	low := strings.ToLower(strings.TrimSpace(name))
	for t := TypeNF4; t < numTypes; t++ {
		if types[t].name == low {
			return t, nil
		}
	}
	return TypeNone, fmt.Errorf("unknown type %q (want one of %s, or f32, f16, bf16)", name, strings.Join(QuantTypeNames(), ", "))
}

// String is the command-line name ("nf4", "q4_k", "f16").
func (t Type) String() string {
	if t < numTypes {
		return types[t].name
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// BNB reports whether t is a bitsandbytes type (safetensors output only).
func (t Type) BNB() bool { return t < numTypes && types[t].bnb }

// Float reports whether t is a plain cast (f32, f16, bf16).
func (t Type) Float() bool { return t >= TypeF32 && t < numTypes }

// Quantized reports whether t is a quantized type (bitsandbytes or ggml).
func (t Type) Quantized() bool { return t > TypeNone && t < TypeF32 }

// DType is the storage dtype of a ggml or float type, Invalid for the
// bitsandbytes types (stored as several U8/I8/F32 tensors).
func (t Type) DType() formats.DType {
	if t < numTypes {
		return types[t].dtype
	}
	return formats.Invalid
}

// GGUF reports whether GGUF can hold t: the ggml block types and the
// float casts.
func (t Type) GGUF() bool { return t > TypeNone && t < numTypes && !types[t].bnb }

// FileType is llama.cpp's general.file_type for a GGUF whose weights are
// mostly t.
func (t Type) FileType() uint32 {
	if t < numTypes {
		return types[t].ftype
	}
	return 0
}

// typeOfDType maps a ggml block or float dtype back to its Type.
func typeOfDType(d formats.DType) Type {
	for t := TypeQ8_0; t < numTypes; t++ {
		if types[t].dtype == d {
			return t
		}
	}
	return TypeNone
}

// Container is the kind of file a plan is for. Tensor names, dtypes,
// metadata and which types are allowed all follow from it.
type Container string

// The output containers.
const (
	// GGUF: ggml block types, llama.cpp's KVs and tensor order.
	GGUF Container = "gguf"
	// Safetensors: bitsandbytes' tensor layout and quantization_config.
	Safetensors Container = "safetensors"
)

// TypeRule overrides the type of every tensor whose name matches Pattern
// (llama-quantize --tensor-type, qtool --type-for REGEX=TYPE). The first
// matching rule wins.
type TypeRule struct {
	Pattern *regexp.Regexp
	Type    Type
}

// ParseTypeRule reads "REGEX=TYPE". The last '=' separates the two, so the
// expression may itself hold '='.
func ParseTypeRule(s string) (TypeRule, error) {
	i := strings.LastIndexByte(s, '=')
	if i <= 0 || i == len(s)-1 {
		return TypeRule{}, fmt.Errorf("type rule %q: want REGEX=TYPE", s)
	}
	re, err := regexp.Compile(s[:i])
	if err != nil {
		return TypeRule{}, fmt.Errorf("type rule %q: %w", s, err)
	}
	t, err := ParseType(s[i+1:])
	if err != nil {
		return TypeRule{}, fmt.Errorf("type rule %q: %w", s, err)
	}
	return TypeRule{Pattern: re, Type: t}, nil
}

// Config says what Plan produces. Only Type is required.
type Config struct {
	// Type is the quantization type of the weight matrices.
	Type Type
	// Format is the output container. Empty means the one Type needs:
	// GGUF for ggml types, Safetensors for bitsandbytes types. Plan
	// refuses a type the container cannot hold (ErrTypeNotStorable).
	Format Container
	// Block is the blocksize of nf4/fp4 (default 64; powers of two
	// 32..4096) and int8-block (default 4096; 64..4096). 0 takes the
	// default; other types have fixed blocks and refuse a value.
	Block int
	// DoubleQuant quantizes the 4-bit blocks' absmax again (QLoRA double
	// quantization; nf4 and fp4 only).
	DoubleQuant bool
	// Keep leaves every tensor whose name matches one of them as it is.
	Keep []*regexp.Regexp
	// TypeFor overrides Type per tensor; the first matching rule wins.
	// Keep wins over TypeFor.
	TypeFor []TypeRule
	// LeaveOutput keeps the output projection (output.weight,
	// lm_head.weight) unquantized (llama-quantize --leave-output-tensor).
	// bitsandbytes output never quantizes it unless TypeFor says so.
	LeaveOutput bool
	// TokenEmbeddingType is the type of the token embedding in GGUF
	// output (llama-quantize --token-embedding-type); TypeNone gives it
	// Type. bitsandbytes output keeps embeddings (transformers does not
	// load quantized ones) and accepts only float casts here.
	TokenEmbeddingType Type
	// Mix applies llama-quantize's default per-tensor type mix for Type
	// (what llama-quantize does without --pure; mix.go lists the rules):
	// the output matrix, and some attn_v and ffn_down layers, get more
	// bits. false gives every weight Type, as --pure does. GGUF only.
	Mix bool
	// Workers bounds the goroutines of one tensor's quantization; 0 means
	// GOMAXPROCS. Output bytes do not depend on it.
	Workers int
	// MaxMemory bounds the working memory of the plan while it is written,
	// in bytes: the chunk buffers of the tensor being converted and its
	// whole-tensor scale vectors (memNeed in stats.go). 0 means
	// DefaultMaxMemory. Chunks shrink to fit it, and with them the number
	// of goroutines a chunk is split over; Plan refuses a value below what
	// one tensor needs (ErrMemoryLimit). Output bytes do not depend on it.
	MaxMemory int64
	// Stats computes, while each tensor is written, the RMSE and the
	// largest absolute error of dequantize(quantize(x)) against x.
	Stats bool
	// Progress, when set, is called as source tensor bytes are consumed
	// with the running total and the total of all tensors.
	Progress func(done, total int64)
}

// Errors of Plan and Dequant. Each wraps a formats error class, so the
// CLI maps them to exit codes unchanged.
var (
	// ErrTypeNotStorable: the output container cannot hold the type
	// (nf4/fp4/int8 in GGUF, a ggml block type in safetensors).
	ErrTypeNotStorable = formats.NewRule("quantization type not storable in the output format", formats.ErrUnsupported)
	// ErrBadConfig: the Config is inconsistent (a blocksize for a type
	// with fixed blocks, double quantization for a type without absmax
	// blocks, mixed bitsandbytes types).
	ErrBadConfig = formats.NewRule("invalid quantization settings", formats.ErrUnsupported)
	// ErrAlreadyQuantized: the input is a bitsandbytes-quantized model;
	// dequantize it first.
	ErrAlreadyQuantized = formats.NewRule("input is already quantized", formats.ErrUnsupported)
	// ErrBadQuantState: a bitsandbytes companion tensor or quant_state
	// JSON is malformed or disagrees with its weight.
	ErrBadQuantState = formats.NewRule("malformed bitsandbytes quantization state", formats.ErrFormat)
	// ErrMemoryLimit: Config.MaxMemory (DequantConfig.MaxMemory) is below
	// what the largest tensor needs; the message names it and the minimum.
	ErrMemoryLimit = formats.NewRule("working memory limit too small", formats.ErrLimit)
)

// container returns the output container, inferred from Type when unset.
func (c *Config) container() Container {
	if c.Format != "" {
		return c.Format
	}
	if c.Type.BNB() {
		return Safetensors
	}
	return GGUF
}

// block returns the effective blocksize of a bitsandbytes blockwise type.
func (c *Config) block(t Type) int {
	switch {
	case c.Block > 0:
		return c.Block
	case t == TypeInt8Block:
		return DefaultBlocksize8
	default:
		return DefaultBlocksize4Bit
	}
}

// validate checks a Config against its output container.
func (c *Config) validate() error {
	f := c.container()
	if f != GGUF && f != Safetensors {
		return fmt.Errorf("quantize: unknown output format %q: %w", f, ErrBadConfig)
	}
	if !c.Type.Quantized() {
		return fmt.Errorf("quantize: --type must be a quantization type (%s), not %q: %w",
			strings.Join(QuantTypeNames(), ", "), c.Type, ErrBadConfig)
	}
	if err := storable(c.Type, f); err != nil {
		return err
	}
	if c.Mix && f != GGUF {
		return fmt.Errorf("quantize: llama-quantize's type mixes apply to GGUF output only: %w", ErrBadConfig)
	}
	if c.MaxMemory < 0 {
		return fmt.Errorf("quantize: negative memory limit %d: %w", c.MaxMemory, ErrBadConfig)
	}
	for _, r := range c.TypeFor {
		if err := storable(r.Type, f); err != nil {
			return fmt.Errorf("--type-for %s=%s: %w", r.Pattern, r.Type, err)
		}
		if f == Safetensors && r.Type.BNB() && r.Type != c.Type {
			return fmt.Errorf("quantize: --type-for %s=%s: a bitsandbytes model has one quantization type (%s); only it or f32/f16/bf16 may be chosen per tensor: %w",
				r.Pattern, r.Type, c.Type, ErrBadConfig)
		}
	}
	if t := c.TokenEmbeddingType; t != TypeNone {
		if f == Safetensors && !t.Float() {
			return fmt.Errorf("quantize: --token-embedding-type %s: transformers keeps embeddings unquantized with bitsandbytes; only f32/f16/bf16 are allowed: %w", t, ErrBadConfig)
		}
		if err := storable(t, f); err != nil {
			return fmt.Errorf("--token-embedding-type %s: %w", t, err)
		}
	}
	return c.validateBlock()
}

// validateBlock checks Block and DoubleQuant against Type.
func (c *Config) validateBlock() error {
	blockwise := c.Type == TypeNF4 || c.Type == TypeFP4 || c.Type == TypeInt8Block
	if c.Block != 0 {
		if !blockwise {
			return fmt.Errorf("quantize: --block applies to nf4, fp4 and int8-block, not %s (its block is fixed): %w", c.Type, ErrBadConfig)
		}
		lo := 32
		if c.Type == TypeInt8Block {
			lo = 64
		}
		if c.Block < lo || c.Block > 4096 || c.Block&(c.Block-1) != 0 {
			return fmt.Errorf("quantize: --block %d for %s: want a power of two in %d..4096: %w", c.Block, c.Type, lo, ErrBadConfig)
		}
	}
	if c.DoubleQuant && c.Type != TypeNF4 && c.Type != TypeFP4 {
		return fmt.Errorf("quantize: --double-quant applies to nf4 and fp4, not %s: %w", c.Type, ErrBadConfig)
	}
	return nil
}

// storable refuses a type the container cannot hold, proposing what can.
func storable(t Type, f Container) error {
	switch {
	case f == GGUF && t.BNB():
		return fmt.Errorf("quantize: %s has no ggml type, so GGUF cannot hold it; for llama.cpp use iq4_nl (4.5 bits per weight, a fixed 16-level non-uniform code like NF4) or q4_k, or write safetensors for bitsandbytes: %w",
			t, ErrTypeNotStorable)
	case f == Safetensors && t.GGUF() && !t.Float():
		return fmt.Errorf("quantize: %s is a ggml block type that safetensors cannot hold; write GGUF, or use nf4, fp4 or int8 for bitsandbytes: %w",
			t, ErrTypeNotStorable)
	}
	return nil
}

// config.json: the quantization_config of a Hugging Face folder.

// hfConfigEdit is what RewriteConfig does to config.json: set
// quantization_config from set, or drop it (set nil).
type hfConfigEdit struct {
	set *bnbSettings
}

// keyQuantConfig is config.json's key for the quantization settings.
const keyQuantConfig = "quantization_config"

// RewriteConfig returns the config.json of the output model: the input's
// keys in order with their values byte for byte, and quantization_config
// set to what transformers' BitsAndBytesConfig.to_dict() writes for the
// planned quantization (inserted in key order when the keys are sorted,
// as save_pretrained writes them), or removed after Dequant. nil gives
// nil. A config that is not a JSON object fails with formats.ErrFormat.
func (o *Output) RewriteConfig(config []byte) ([]byte, error) {
	if config == nil {
		return nil, nil
	}
	var value []byte
	if o.hf.set != nil {
		value = o.hf.set.quantizationConfig()
	}
	return setTopLevelKey(config, keyQuantConfig, value)
}

// quantizationConfig renders quantization_config as json.dumps(indent=2,
// sort_keys=True) nests it one level deep.
func (s *bnbSettings) quantizationConfig() []byte {
	skip := "null"
	if len(s.skip) > 0 {
		q := make([]string, len(s.skip))
		for i, m := range s.skip {
			q[i] = "      " + strconv.Quote(m)
		}
		skip = "[\n" + strings.Join(q, ",\n") + "\n    ]"
	}
	var kvs [][2]string
	if s.typ == TypeInt8Block {
		kvs = [][2]string{
			{"blocksize", strconv.Itoa(s.block)},
			{"modules_to_not_convert", skip},
			{"quant_method", `"qtool"`},
			{"quant_type", `"int8-block"`},
		}
	} else {
		four := s.typ != TypeInt8
		quantType, compute, dq := "fp4", "float32", false
		if four {
			quantType, compute, dq = s.typ.String(), s.dtype, s.dq
		}
		kvs = [][2]string{
			{"_load_in_4bit", strconv.FormatBool(four)},
			{"_load_in_8bit", strconv.FormatBool(!four)},
			{"bnb_4bit_compute_dtype", strconv.Quote(compute)},
			{"bnb_4bit_quant_storage", `"uint8"`},
			{"bnb_4bit_quant_type", strconv.Quote(quantType)},
			{"bnb_4bit_use_double_quant", strconv.FormatBool(dq)},
			{"llm_int8_enable_fp32_cpu_offload", "false"},
			{"llm_int8_has_fp16_weight", "false"},
			{"llm_int8_skip_modules", skip},
			{"llm_int8_threshold", "6.0"},
			{"load_in_4bit", strconv.FormatBool(four)},
			{"load_in_8bit", strconv.FormatBool(!four)},
			{"quant_method", `"bitsandbytes"`},
		}
	}
	b := []byte("{\n")
	for i, kv := range kvs {
		if i > 0 {
			b = append(b, ",\n"...)
		}
		b = append(b, "    \""+kv[0]+"\": "+kv[1]...)
	}
	return append(b, "\n  }"...)
}

// setTopLevelKey replaces, inserts (value non-nil) or removes (value nil)
// one key of a JSON object, keeping every other key's raw bytes, and
// renders the object as json.dumps(indent=2) does.
func setTopLevelKey(doc []byte, key string, value []byte) ([]byte, error) {
	type member struct {
		name string
		raw  []byte // quoted key as written
		val  []byte
	}
	bad := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("config.json: %v: %w", err, formats.ErrFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad(fmt.Errorf("not a JSON object"))
	}
	var ms []member
	for dec.More() {
		at := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		name, _ := tok.(string)
		rawKey := bytes.TrimLeft(doc[at:dec.InputOffset()], " \t\r\n,")
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return bad(err)
		}
		if name != key {
			ms = append(ms, member{name, rawKey, val})
		}
	}
	if _, err := dec.Token(); err != nil {
		return bad(err)
	}
	if value != nil {
		sorted := sort.SliceIsSorted(ms, func(i, j int) bool { return ms[i].name < ms[j].name })
		at := len(ms)
		if sorted {
			at = sort.Search(len(ms), func(i int) bool { return ms[i].name > key })
		}
		ms = slices.Insert(ms, at, member{key, []byte(strconv.Quote(key)), value})
	}
	out := []byte("{")
	for i, m := range ms {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, "\n  "...)
		out = append(out, m.raw...)
		out = append(out, ": "...)
		out = append(out, m.val...)
	}
	if len(ms) > 0 {
		out = append(out, '\n')
	}
	out = append(out, '}')
	if bytes.HasSuffix(doc, []byte("\n")) {
		out = append(out, '\n')
	}
	return out, nil
}
