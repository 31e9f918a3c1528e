package kernels_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/qtool-dev/qtool/kernels"
)

// TestRowMatrix views a Q4_0 case through NewRowMatrix with a decoder that
// reads the reference values (as another package's decoder would read its
// blocks): Tile must give them bit for bit, and MatVecT and the tiled
// MatMulT must take the matrix and meet the float32 bound.
func TestRowMatrix(t *testing.T) {
	r := wRand(t)
	c := newWCase(t, r, "q4_0", 37, 544, false)
	var calls atomic.Int64
	rm, err := kernels.NewRowMatrix(c.n, c.k, c.w.StoredBytes(), func(dst []float32, row, k0, k1 int) {
		calls.Add(1)
		copy(dst, c.ref[row*c.k+k0:row*c.k+k1])
	})
	if err != nil {
		t.Fatal(err)
	}
	if rm.Rows() != c.n || rm.Cols() != c.k || rm.StoredBytes() != c.w.StoredBytes() {
		t.Fatalf("shape %d×%d, %d bytes", rm.Rows(), rm.Cols(), rm.StoredBytes())
	}
	rc := c
	rc.w = rm
	rc.checkTile(t, 0, c.n, 0, c.k)
	rc.checkTile(t, 3, 20, 7, 300)
	for _, m := range []int{1, 5, 16, 40} {
		a := newStrided(r, m, c.k, c.k)
		ref, mag := refProduct(c, a.data(), c.k, m)
		cs := newStrided(r, m, c.n, c.n)
		before := calls.Load()
		kernels.MatMulT(cs.data(), c.n, a.data(), c.k, m, rm, false, 2)
		if calls.Load() == before {
			t.Fatal("the decoder was never called")
		}
		cs.checkGuards(t, "RowMatrix")
		checkProduct(t, "RowMatrix", cs, ref, mag, false)
	}
	if !kernels.GemvT(make([]float32, c.n), make([]float32, c.k), 1, rm, 1) {
		t.Error("GemvT declines a RowMatrix")
	}
	for _, bad := range []func() error{
		func() error { _, err := kernels.NewRowMatrix(-1, 4, 0, func([]float32, int, int, int) {}); return err },
		func() error { _, err := kernels.NewRowMatrix(2, 4, 0, nil); return err },
		func() error { _, err := kernels.NewRowMatrix(2, 4, -1, func([]float32, int, int, int) {}); return err },
	} {
		if err := bad(); !errors.Is(err, kernels.ErrWeightShape) {
			t.Errorf("bad constructor arguments: %v", err)
		}
	}
}
