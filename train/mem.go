package train

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memSampleEvery is how often the sampler started by readMem reads
// /proc/self/status.
const memSampleEvery = 100 * time.Millisecond

// memPeak holds the largest RssAnon and RssFile the sampler has seen.
var memPeak struct {
	once       sync.Once
	mu         sync.Mutex
	anon, file int64
}

// readMem returns VmHWM (the kernel's high-water mark of the whole RSS)
// and the largest RssAnon and RssFile (bytes) seen so far: Linux keeps no
// peak of those two, so the first call starts a goroutine that samples
// them every memSampleEvery, and each call also reads them now. Fields are
// zero where /proc/self/status or a field is missing (not Linux).
func readMem() StepStats {
	s, ok := readStatus()
	if !ok {
		return s
	}
	memPeak.once.Do(func() {
		go func() {
			for range time.Tick(memSampleEvery) {
				if s, ok := readStatus(); ok {
					notePeak(s)
				}
			}
		}()
	})
	return notePeak(s)
}

// notePeak folds s into the sampled peaks and returns s with them.
func notePeak(s StepStats) StepStats {
	memPeak.mu.Lock()
	defer memPeak.mu.Unlock()
	memPeak.anon = max(memPeak.anon, s.PeakRSSAnon)
	memPeak.file = max(memPeak.file, s.PeakRSSFile)
	s.PeakRSSAnon, s.PeakRSSFile = memPeak.anon, memPeak.file
	return s
}

// readStatus reads VmHWM, RssAnon and RssFile (bytes) from
// /proc/self/status into the Peak fields.
func readStatus() (StepStats, bool) {
	var s StepStats
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return s, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmHWM":
			dst = &s.PeakRSS
		case "RssAnon":
			dst = &s.PeakRSSAnon
		case "RssFile":
			dst = &s.PeakRSSFile
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err == nil {
			*dst = kb << 10
		}
	}
	return s, true
}
