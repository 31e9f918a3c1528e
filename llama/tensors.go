package llama

import (
	"fmt"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/mmap"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/quantize"
)

// Weights finds a model's stored tensors by their GGUF names (a Hugging
// Face folder's names are mapped through the architecture table when the
// model is opened) and views them in place. The forward pass and the
// trainer load their weights through it.
type Weights struct {
	path  string
	src   formats.ByteSource
	infos map[string]formats.TensorInfo
	bnb   bnbIndex // bitsandbytes groups (weights.go)
}

// Info returns the tensor stored under a GGUF name.
func (w *Weights) Info(name string) (formats.TensorInfo, bool) {
	ti, ok := w.infos[name]
	return ti, ok
}

func (w *Weights) get(name string) (formats.TensorInfo, []byte, error) {
	ti, ok := w.infos[name]
	if !ok {
		return ti, nil, fmt.Errorf("llama: %s: tensor %s missing: %w", w.path, name, formats.ErrFormat)
	}
	b, err := w.src.Bytes(ti.Name)
	return ti, b, err
}

// Release advises that the stored bytes of the tensor under a GGUF name
// are done with (mmap.Release): a caller that re-encoded a weight (the
// trainer's --quantize) drops its source pages from the process's
// resident memory. Reading the tensor again still works.
func (w *Weights) Release(name string) {
	ti, ok := w.infos[name]
	if !ok {
		return
	}
	if b, err := w.src.Bytes(ti.Name); err == nil {
		mmap.Release(w.src, b, ti.Offset, ti.Size)
	}
}

// Vector decodes a 1-D tensor of n elements (norms, biases, rope factors)
// to float32.
func (w *Weights) Vector(name string, n int) ([]float32, error) {
	if g, ok := w.bnb.byGGUF[name]; ok {
		return bnbVector(g, n)
	}
	ti, b, err := w.get(name)
	if err != nil {
		return nil, err
	}
	if ne, _ := ti.NumElements(); ne != int64(n) {
		return nil, fmt.Errorf("llama: tensor %s has %d elements, want %d: %w", ti.Name, ne, n, formats.ErrFormat)
	}
	v := make([]float32, n)
	if err := quantize.DequantizeGGML(ti.DType, v, b); err != nil {
		return nil, fmt.Errorf("llama: tensor %s: %w", ti.Name, err)
	}
	return v, nil
}

// Matrix views a 2-D weight [n, k] in its stored type (Matrix above); n ≤ 0
// accepts any row count.
func (w *Weights) Matrix(name string, n, k int) (kernels.BMatrix, error) {
	ti, b, err := w.get(name)
	if err != nil {
		return nil, err
	}
	if len(ti.Shape) != 2 || (n > 0 && ti.Shape[0] != int64(n)) || ti.Shape[1] != int64(k) {
		return nil, fmt.Errorf("llama: tensor %s has shape %v, want [%d, %d]: %w", ti.Name, ti.Shape, n, k, formats.ErrFormat)
	}
	return w.matrix(name, b, ti, k)
}
