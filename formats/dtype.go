package formats

import "fmt"

// DType is an element (or block) type of tensor data, covering both the
// safetensors dtypes and the ggml tensor types. The zero value is Invalid.
//
// Scalar types have BlockSize 1; ggml block-quantized types store BlockSize
// elements in BlockBytes bytes. DType values are qtool's own numbering; the
// file codes are GGMLType and SafetensorsName.
type DType uint8

// The dtypes. Order is not significant; the traits table below is the truth.
const (
	Invalid DType = iota
	// Scalar types shared by safetensors and GGUF.
	F64
	F32
	F16
	BF16
	I64
	I32
	I16
	I8
	// Scalar types only in safetensors.
	U64
	U32
	U16
	U8
	Bool
	F8E4M3
	F8E5M2
	// ggml block types (GGUF only).
	Q4_0
	Q4_1
	Q5_0
	Q5_1
	Q8_0
	Q8_1
	Q2_K
	Q3_K
	Q4_K
	Q5_K
	Q6_K
	Q8_K
	IQ2_XXS
	IQ2_XS
	IQ3_XXS
	IQ1_S
	IQ4_NL
	IQ3_S
	IQ2_S
	IQ4_XS
	IQ1_M
	TQ1_0
	TQ2_0
	MXFP4
	NVFP4
	Q1_0
	Q2_0
	numDTypes
)

// noGGML marks a dtype that GGUF cannot store.
const noGGML = -1

// dtypeTraits describes one DType. Block sizes and byte sizes are those of
// ggml's type_traits (ggml/src/ggml.c, ggml 0.25.1) and gguf-py's
// GGML_QUANT_SIZES; safetensors names are those of the safetensors spec.
type dtypeTraits struct {
	name       string // canonical display name (ggml style for ggml types)
	st         string // safetensors dtype string, "" if safetensors cannot hold it
	ggml       int    // ggml type id, noGGML if GGUF cannot hold it
	blockSize  int64  // elements per block
	blockBytes int64  // bytes per block
	bitsPerEl  int    // storage bits per element for scalar types, 0 for block types
	float      bool   // scalar floating-point type
}

var traits = [numDTypes]dtypeTraits{
	Invalid: {name: "invalid", ggml: noGGML},
	F64:     {name: "F64", st: "F64", ggml: 28, blockSize: 1, blockBytes: 8, bitsPerEl: 64, float: true},
	F32:     {name: "F32", st: "F32", ggml: 0, blockSize: 1, blockBytes: 4, bitsPerEl: 32, float: true},
	F16:     {name: "F16", st: "F16", ggml: 1, blockSize: 1, blockBytes: 2, bitsPerEl: 16, float: true},
	BF16:    {name: "BF16", st: "BF16", ggml: 30, blockSize: 1, blockBytes: 2, bitsPerEl: 16, float: true},
	I64:     {name: "I64", st: "I64", ggml: 27, blockSize: 1, blockBytes: 8, bitsPerEl: 64},
	I32:     {name: "I32", st: "I32", ggml: 26, blockSize: 1, blockBytes: 4, bitsPerEl: 32},
	I16:     {name: "I16", st: "I16", ggml: 25, blockSize: 1, blockBytes: 2, bitsPerEl: 16},
	I8:      {name: "I8", st: "I8", ggml: 24, blockSize: 1, blockBytes: 1, bitsPerEl: 8},
	U64:     {name: "U64", st: "U64", ggml: noGGML, blockSize: 1, blockBytes: 8, bitsPerEl: 64},
	U32:     {name: "U32", st: "U32", ggml: noGGML, blockSize: 1, blockBytes: 4, bitsPerEl: 32},
	U16:     {name: "U16", st: "U16", ggml: noGGML, blockSize: 1, blockBytes: 2, bitsPerEl: 16},
	U8:      {name: "U8", st: "U8", ggml: noGGML, blockSize: 1, blockBytes: 1, bitsPerEl: 8},
	Bool:    {name: "BOOL", st: "BOOL", ggml: noGGML, blockSize: 1, blockBytes: 1, bitsPerEl: 8},
	F8E4M3:  {name: "F8_E4M3", st: "F8_E4M3", ggml: noGGML, blockSize: 1, blockBytes: 1, bitsPerEl: 8, float: true},
	F8E5M2:  {name: "F8_E5M2", st: "F8_E5M2", ggml: noGGML, blockSize: 1, blockBytes: 1, bitsPerEl: 8, float: true},
	Q4_0:    {name: "Q4_0", ggml: 2, blockSize: 32, blockBytes: 18},
	Q4_1:    {name: "Q4_1", ggml: 3, blockSize: 32, blockBytes: 20},
	Q5_0:    {name: "Q5_0", ggml: 6, blockSize: 32, blockBytes: 22},
	Q5_1:    {name: "Q5_1", ggml: 7, blockSize: 32, blockBytes: 24},
	Q8_0:    {name: "Q8_0", ggml: 8, blockSize: 32, blockBytes: 34},
	Q8_1:    {name: "Q8_1", ggml: 9, blockSize: 32, blockBytes: 36},
	Q2_K:    {name: "Q2_K", ggml: 10, blockSize: 256, blockBytes: 84},
	Q3_K:    {name: "Q3_K", ggml: 11, blockSize: 256, blockBytes: 110},
	Q4_K:    {name: "Q4_K", ggml: 12, blockSize: 256, blockBytes: 144},
	Q5_K:    {name: "Q5_K", ggml: 13, blockSize: 256, blockBytes: 176},
	Q6_K:    {name: "Q6_K", ggml: 14, blockSize: 256, blockBytes: 210},
	Q8_K:    {name: "Q8_K", ggml: 15, blockSize: 256, blockBytes: 292},
	IQ2_XXS: {name: "IQ2_XXS", ggml: 16, blockSize: 256, blockBytes: 66},
	IQ2_XS:  {name: "IQ2_XS", ggml: 17, blockSize: 256, blockBytes: 74},
	IQ3_XXS: {name: "IQ3_XXS", ggml: 18, blockSize: 256, blockBytes: 98},
	IQ1_S:   {name: "IQ1_S", ggml: 19, blockSize: 256, blockBytes: 50},
	IQ4_NL:  {name: "IQ4_NL", ggml: 20, blockSize: 32, blockBytes: 18},
	IQ3_S:   {name: "IQ3_S", ggml: 21, blockSize: 256, blockBytes: 110},
	IQ2_S:   {name: "IQ2_S", ggml: 22, blockSize: 256, blockBytes: 82},
	IQ4_XS:  {name: "IQ4_XS", ggml: 23, blockSize: 256, blockBytes: 136},
	IQ1_M:   {name: "IQ1_M", ggml: 29, blockSize: 256, blockBytes: 56},
	TQ1_0:   {name: "TQ1_0", ggml: 34, blockSize: 256, blockBytes: 54},
	TQ2_0:   {name: "TQ2_0", ggml: 35, blockSize: 256, blockBytes: 66},
	MXFP4:   {name: "MXFP4", ggml: 39, blockSize: 32, blockBytes: 17},
	NVFP4:   {name: "NVFP4", ggml: 40, blockSize: 64, blockBytes: 36},
	Q1_0:    {name: "Q1_0", ggml: 41, blockSize: 128, blockBytes: 18},
	Q2_0:    {name: "Q2_0", ggml: 42, blockSize: 64, blockBytes: 18},
}

// ggmlToDType is the inverse of the ggml column, built once.
var ggmlToDType = func() map[int]DType {
	m := make(map[int]DType)
	for d := DType(1); d < numDTypes; d++ {
		if g := traits[d].ggml; g != noGGML {
			m[g] = d
		}
	}
	return m
}()

var stToDType = func() map[string]DType {
	m := make(map[string]DType)
	for d := DType(1); d < numDTypes; d++ {
		if s := traits[d].st; s != "" {
			m[s] = d
		}
	}
	return m
}()

var nameToDType = func() map[string]DType {
	m := make(map[string]DType)
	for d := DType(1); d < numDTypes; d++ {
		m[traits[d].name] = d
	}
	return m
}()

// Valid reports whether d is a known dtype.
func (d DType) Valid() bool { return d > Invalid && d < numDTypes }

// String is the canonical name: the safetensors spelling for safetensors
// types ("F32", "BOOL", "F8_E4M3") and ggml's for block types ("Q4_K").
func (d DType) String() string {
	if d.Valid() || d == Invalid {
		return traits[d].name
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// BlockSize is the number of elements in one storage block (1 for scalars).
func (d DType) BlockSize() int64 {
	if !d.Valid() {
		return 0
	}
	return traits[d].blockSize
}

// BlockBytes is the number of bytes one storage block occupies.
func (d DType) BlockBytes() int64 {
	if !d.Valid() {
		return 0
	}
	return traits[d].blockBytes
}

// Bits is the storage width of one element of a scalar type, and 0 for
// block types (whose per-element cost is BitsPerElement).
func (d DType) Bits() int {
	if !d.Valid() {
		return 0
	}
	return traits[d].bitsPerEl
}

// BitsPerElement is the average storage cost of one element in bits,
// block overhead included (Q4_0: 18·8/32 = 4.5).
func (d DType) BitsPerElement() float64 {
	if !d.Valid() {
		return 0
	}
	t := traits[d]
	return float64(t.blockBytes*8) / float64(t.blockSize)
}

// Quantized reports whether d is a ggml block-quantized type.
func (d DType) Quantized() bool { return d.Valid() && traits[d].blockSize > 1 }

// Float reports whether d is a scalar floating-point type.
func (d DType) Float() bool { return d.Valid() && traits[d].float }

// GGMLType returns the ggml type id of d, and false when GGUF cannot store d.
func (d DType) GGMLType() (uint32, bool) {
	if !d.Valid() || traits[d].ggml == noGGML {
		return 0, false
	}
	return uint32(traits[d].ggml), true
}

// SafetensorsName returns the safetensors dtype string of d, and false when
// safetensors cannot store d.
func (d DType) SafetensorsName() (string, bool) {
	if !d.Valid() || traits[d].st == "" {
		return "", false
	}
	return traits[d].st, true
}

// DTypeFromGGML maps a ggml type id to a DType; false for unknown or retired
// ids (4, 5, 31–33, 36–38).
func DTypeFromGGML(id uint32) (DType, bool) {
	if id > 1<<16 {
		return Invalid, false
	}
	d, ok := ggmlToDType[int(id)]
	return d, ok
}

// DTypeFromSafetensors maps a safetensors dtype string to a DType.
func DTypeFromSafetensors(s string) (DType, bool) {
	d, ok := stToDType[s]
	return d, ok
}

// ParseDType accepts a canonical name in any letter case ("f16", "Q4_K",
// "bool", "f8_e4m3").
func ParseDType(s string) (DType, bool) {
	if d, ok := nameToDType[s]; ok {
		return d, true
	}
	up := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	d, ok := nameToDType[string(up)]
	return d, ok
}

// AllDTypes lists every valid dtype in declaration order.
func AllDTypes() []DType {
	out := make([]DType, 0, numDTypes-1)
	for d := DType(1); d < numDTypes; d++ {
		out = append(out, d)
	}
	return out
}
