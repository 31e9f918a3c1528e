package cli

import (
	"io"
	"time"

	"github.com/qtool-dev/qtool/formats"
)

// withProgress wraps each tensor's data so that bytes written are reported
// to report (cumulative over all tensors).
func withProgress(ts []formats.Tensor, total int64, report func(done, total int64), slowPerMiB time.Duration) []formats.Tensor {
	var done int64
	out := make([]formats.Tensor, len(ts))
	for i, t := range ts {
		t.Data = &countingData{inner: t.Data, done: &done, total: total, report: report, slow: slowPerMiB}
		out[i] = t
	}
	return out
}

type countingData struct {
	inner  io.WriterTo
	done   *int64
	total  int64
	report func(done, total int64)
	slow   time.Duration
}

func (c *countingData) WriteTo(w io.Writer) (int64, error) {
	return c.inner.WriteTo(&countingWriter{w: w, c: c})
}

type countingWriter struct {
	w       io.Writer
	c       *countingData
	pending int64
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	*cw.c.done += int64(n)
	cw.pending += int64(n)
	if cw.pending >= 1<<20 || *cw.c.done == cw.c.total {
		if cw.c.slow > 0 {
			time.Sleep(time.Duration(cw.pending>>20+1) * cw.c.slow)
		}
		cw.pending = 0
		cw.c.report(*cw.c.done, cw.c.total)
	}
	return n, err
}
