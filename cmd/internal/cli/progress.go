package cli

import (
	"github.com/schollz/progressbar/v3"
)

// progress returns a callback libraries call with (done, total) and a
// finish function. It draws a bar on stderr only when stderr is a terminal
// and --quiet is off; otherwise both are no-ops.
func (s *IOStreams) progress(desc string, bytes bool) (report func(done, total int64), finish func()) {
	if !s.ProgressEnabled() {
		return func(int64, int64) {}, func() {}
	}
	var bar *progressbar.ProgressBar
	report = func(done, total int64) {
		if bar == nil {
			opts := []progressbar.Option{
				progressbar.OptionSetWriter(s.ErrOut),
				progressbar.OptionSetDescription(desc),
				progressbar.OptionThrottle(100e6),
				progressbar.OptionShowCount(),
				progressbar.OptionClearOnFinish(),
			}
			if bytes {
				opts = append(opts, progressbar.OptionShowBytes(true))
			}
			bar = progressbar.NewOptions64(total, opts...)
		}
		bar.ChangeMax64(total)
		bar.Set64(done)
	}
	finish = func() {
		if bar != nil {
			bar.Finish()
		}
	}
	return report, finish
}
