package train

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"github.com/qtool-dev/qtool/formats/mmap"
	"github.com/qtool-dev/qtool/kernels"
	"github.com/qtool-dev/qtool/quantize"
)

// QLoRA on the fly (Config.Quantize "nf4"): every frozen projection is
// re-encoded to bitsandbytes NF4 in blocks of 64 when the model is opened.
// The codes and the float32 absmax of a 7B-shaped model take about 3.8
// GB; kept in the Go heap they would be anonymous memory that the kernel
// can only swap. codeStore writes each matrix's codes to a temporary
// file, maps the file read-only and unlinks it, so that the codes are
// file-backed pages (RssFile, or RssShmem on a tmpfs) that the page cache
// may drop and read again, and nothing is left on disk once the mapping
// is gone. The temporary files go to os.TempDir() ($TMPDIR on Unix).

// nf4Blocksize is the blocksize of QLoRA's NF4 (bitsandbytes' default).
const nf4Blocksize = 64

// codeStore holds the NF4 codes of re-encoded frozen weights in
// memory-mapped, unlinked temporary files, one per matrix (absmax first,
// at the page-aligned start of the mapping, then the packed codes).
type codeStore struct {
	dir  string // "" means os.TempDir()
	maps []*mmap.File
	// views are the stored codes and absmax of each matrix, in order.
	views []codeView

	// Scratch of the matrix being quantized, reused for the next one and
	// dropped by release.
	x      []float32
	packed []byte
	absmax []float32
}

// codeView is one matrix's codes as mapped.
type codeView struct {
	packed []byte
	absmax []float32
}

// quantizeMatrix re-encodes a frozen weight for QLoRA. Only "nf4" is
// supported: bitsandbytes NF4 in blocks of 64 (quantize.Quantize4Bit), the
// codes in a mapped temporary file (a 16-bit base is never materialised;
// one f32 copy of one matrix exists while it is quantized).
func (s *codeStore) quantizeMatrix(w kernels.BMatrix, q string) (kernels.BMatrix, error) {
	if q != "nf4" {
		return nil, fmt.Errorf("train: --quantize %q (only nf4)", q)
	}
	n, k := w.Rows(), w.Cols()
	nk := n * k
	if n <= 0 || k <= 0 || nk/k != n {
		return nil, fmt.Errorf("train: cannot quantize a %d×%d matrix", n, k)
	}
	nb := (nk + nf4Blocksize - 1) / nf4Blocksize
	s.x = growFloats(s.x, nk)
	w.Tile(s.x, 0, n, 0, k)
	s.packed = growBytes(s.packed, (nk+1)/2)
	s.absmax = growFloats(s.absmax, nb)
	if err := quantize.Quantize4BitTo(quantize.NF4, s.packed, s.absmax, s.x, nf4Blocksize, quantize.Options4Bit{}); err != nil {
		return nil, err
	}
	v, err := s.store(s.absmax, s.packed)
	if err != nil {
		return nil, err
	}
	return kernels.NewFourBitMatrix(kernels.NF4, v.packed, v.absmax, n, k, nf4Blocksize)
}

// store writes absmax and packed to a new temporary file, maps it and
// unlinks it.
func (s *codeStore) store(absmax []float32, packed []byte) (codeView, error) {
	f, err := os.CreateTemp(s.dir, "qtool-qlora-*.nf4")
	if err != nil {
		return codeView{}, fmt.Errorf("train: QLoRA codes: %w", err)
	}
	name := f.Name()
	defer os.Remove(name) // once mapped, the file needs no name
	// The bytes of absmax in the host's order: the mapping is read back
	// on the same host.
	ab := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(absmax))), 4*len(absmax))
	_, err = f.Write(ab)
	if err == nil {
		_, err = f.Write(packed)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return codeView{}, fmt.Errorf("train: write QLoRA codes to %s: %w", name, err)
	}
	mf, err := mmap.Open(name)
	if err != nil {
		return codeView{}, fmt.Errorf("train: map QLoRA codes: %w", err)
	}
	data := mf.Bytes()
	if len(data) != len(ab)+len(packed) {
		mf.Close()
		return codeView{}, fmt.Errorf("train: QLoRA codes: %s maps %d bytes, want %d", name, len(data), len(ab)+len(packed))
	}
	s.maps = append(s.maps, mf)
	// The mapping starts on a page (or, where files are read instead of
	// mapped, on a heap allocation), so the float32s are aligned.
	v := codeView{
		absmax: unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(data))), len(absmax)),
		packed: data[len(ab):],
	}
	s.views = append(s.views, v)
	return v, nil
}

// release drops the scratch buffers once every matrix is quantized.
func (s *codeStore) release() { s.x, s.packed, s.absmax = nil, nil, nil }

// close unmaps every matrix; the matrices built on them must not be used
// after.
func (s *codeStore) close() error {
	var errs []error
	for _, m := range s.maps {
		errs = append(errs, m.Close())
	}
	s.maps, s.views = nil, nil
	s.release()
	return errors.Join(errs...)
}

func growFloats(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

func growBytes(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
