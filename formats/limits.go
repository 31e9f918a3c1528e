package formats

// Limits bound what a parser accepts, so that a hostile header can never
// make it allocate or loop beyond them. Zero fields mean "use the default".
type Limits struct {
	// MaxHeaderBytes caps a safetensors JSON header (reference: 100,000,000).
	MaxHeaderBytes int64
	// MaxStringLen caps one GGUF string (key, value or tensor name).
	MaxStringLen int64
	// MaxArrayLen caps the element count of one GGUF array.
	MaxArrayLen int64
	// MaxTensors caps the number of tensors in one file.
	MaxTensors int64
	// MaxKVs caps the number of GGUF metadata pairs.
	MaxKVs int64
	// MaxDims caps a tensor's rank (GGUF itself allows 4).
	MaxDims int
	// MaxNesting caps the depth of GGUF arrays of arrays.
	MaxNesting int
}

// DefaultLimits are generous enough for any real model (a 256k-token
// vocabulary, 70B-class tensor counts, long chat templates) and small
// enough that a hostile header cannot exhaust memory.
var DefaultLimits = Limits{
	MaxHeaderBytes: 100_000_000,
	MaxStringLen:   64 << 20,
	MaxArrayLen:    1 << 30,
	MaxTensors:     1 << 20,
	MaxKVs:         1 << 20,
	MaxDims:        8,
	MaxNesting:     8,
}

// WithDefaults returns l with every zero field replaced by its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits
	if l.MaxHeaderBytes > 0 {
		d.MaxHeaderBytes = l.MaxHeaderBytes
	}
	if l.MaxStringLen > 0 {
		d.MaxStringLen = l.MaxStringLen
	}
	if l.MaxArrayLen > 0 {
		d.MaxArrayLen = l.MaxArrayLen
	}
	if l.MaxTensors > 0 {
		d.MaxTensors = l.MaxTensors
	}
	if l.MaxKVs > 0 {
		d.MaxKVs = l.MaxKVs
	}
	if l.MaxDims > 0 {
		d.MaxDims = l.MaxDims
	}
	if l.MaxNesting > 0 {
		d.MaxNesting = l.MaxNesting
	}
	return d
}
