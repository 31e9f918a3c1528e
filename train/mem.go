package train

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// readMem reads VmHWM, RssAnon and RssFile (bytes) from /proc/self/status;
// zeros where the file or a field is missing (not Linux).
func readMem() StepStats {
	var s StepStats
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return s
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
	return s
}
