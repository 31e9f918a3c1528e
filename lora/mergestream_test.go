package lora

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/quantize"
)

// sectionOnly hides a source's Bytes, so the merge reads through Section.
type sectionOnly struct{ formats.Source }

// mergeBoth merges with the streaming path on and off and returns both
// outputs' bytes and reports.
func mergeBoth(t *testing.T, base formats.Source, cfg MergeConfig) (on, off map[string][]byte, ron, roff MergeReport) {
	t.Helper()
	run := func(stream bool) (map[string][]byte, MergeReport) {
		defer func(s bool, n int) { streamMerge, streamTileElems = s, n }(streamMerge, streamTileElems)
		streamMerge, streamTileElems = stream, 1 // 42-row tiles
		out, err := Merge(base, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return writeTensors(t, out.Tensors), out.Report()
	}
	on, ron = run(true)
	off, roff = run(false)
	return
}

func relClose(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-12*max(math.Abs(a), math.Abs(b))
}

// Streaming the merge tile by tile writes the bytes and reports the
// numbers of the whole-tensor path, for float and ggml bases, every float
// output dtype, one or two adapters, and any worker count.
func TestMergeStreamMatchesWhole(t *testing.T) {
	f32 := mergeOpenGGUF(t, mergeStoriesGGUF)
	ad1 := storiesAdapter(t, f32)
	ad2 := randomAdapter(ad1, 3, 7, 0.5, func(target string) bool { return !strings.HasSuffix(target, ".up_proj.weight") })
	bases := map[string]formats.Source{
		"f32":         f32,
		"f32-section": sectionOnly{f32},
		"f16":         f16Source(t),
		"q8_0":        quantizedGGUF(t, quantize.TypeQ8_0),
		"q4_k":        quantizedGGUF(t, quantize.TypeQ4K),
	}
	for name, base := range bases {
		for _, dt := range []formats.DType{formats.Invalid, formats.F32, formats.F16, formats.BF16} {
			for _, ads := range [][]*Adapter{{ad1}, {ad1, ad2}} {
				for _, workers := range []int{1, 3} {
					what := fmt.Sprintf("%s → %v, %d adapters, %d workers", name, dt, len(ads), workers)
					on, off, ron, roff := mergeBoth(t, base, MergeConfig{Adapters: ads, DType: dt, Workers: workers})
					if len(on) != len(off) {
						t.Fatalf("%s: %d tensors streamed, %d whole", what, len(on), len(off))
					}
					for k, b := range off {
						if !bytes.Equal(on[k], b) {
							t.Fatalf("%s: %s: streamed bytes differ", what, k)
						}
					}
					if ron.Merged != roff.Merged || ron.Measured != roff.Measured || ron.Warnings != roff.Warnings || ron.Measured != ron.Merged {
						t.Fatalf("%s: report counts %+v vs %+v", what, ron, roff)
					}
					for i, a := range ron.Tensors {
						b := roff.Tensors[i]
						ok := a.Name == b.Name && a.Changed == b.Changed && a.Warning == b.Warning &&
							relClose(a.WeightNorm, b.WeightNorm) && relClose(a.DeltaNorm, b.DeltaNorm) && relClose(a.Relative, b.Relative) &&
							(a.Survived == nil) == (b.Survived == nil) && (a.Survived == nil || relClose(*a.Survived, *b.Survived))
						if !ok {
							t.Fatalf("%s: %s: report %+v, whole-tensor path %+v", what, a.Name, a, b)
						}
					}
				}
			}
		}
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k := f.n
		f.n = 0
		return k, io.ErrShortWrite
	}
	f.n -= len(p)
	return len(p), nil
}

// A write error in the middle of a streamed tensor is returned, and the
// workers stop.
func TestMergeStreamWriteError(t *testing.T) {
	defer func(n int) { streamTileElems = n }(streamTileElems)
	streamTileElems = 1
	base := mergeOpenGGUF(t, mergeStoriesGGUF)
	out, err := Merge(base, MergeConfig{Adapters: []*Adapter{storiesAdapter(t, base)}, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range out.Tensors {
		md, ok := x.Data.(*mergedData)
		if !ok || !md.streamable() || x.Shape[0] <= int64(deltaTileRows) {
			continue
		}
		n, err := x.Data.WriteTo(&failWriter{n: 10})
		if err == nil || n != 10 {
			t.Fatalf("%s: wrote %d, err %v; want 10 and an error", x.Name, n, err)
		}
		return
	}
	t.Fatal("no streamed tensor of more than one tile")
}
