package tokenizer

import (
	"sort"
	"sync"
	"unicode/utf8"
)

//go:generate sh -c "/usr/bin/python3 gen_nfc.py > zz_generated_nfc.go && gofmt -w zz_generated_nfc.go"

// Unicode Normalization Form C (UAX #15), for tokenizer.json files whose
// normalizer is NFC (Qwen2, Qwen3). The standard library has no
// normalization, so the tables are generated (zz_generated_nfc.go). Text
// that is not valid UTF-8 keeps its invalid bytes unchanged.

// Hangul syllable arithmetic (Unicode §3.12).
const (
	hangulBase  = 0xAC00
	hangulCount = 11172
	jamoL       = 0x1100
	jamoV       = 0x1161
	jamoT       = 0x11A7
	jamoVCount  = 21
	jamoTCount  = 28
	jamoNCount  = jamoVCount * jamoTCount
)

type nfcData struct {
	decomp  map[rune][2]rune
	comp    map[[2]rune]rune
	seconds map[rune]bool
}

var nfcOnce = sync.OnceValue(func() *nfcData {
	d := &nfcData{
		decomp:  make(map[rune][2]rune, len(nfcDecomp)),
		comp:    make(map[[2]rune]rune, len(nfcComp)),
		seconds: make(map[rune]bool),
	}
	for _, e := range nfcDecomp {
		d.decomp[e[0]] = [2]rune{e[1], e[2]}
	}
	for _, e := range nfcComp {
		d.comp[[2]rune{e[0], e[1]}] = e[2]
		d.seconds[e[1]] = true
	}
	return d
})

// ccc is the canonical combining class of r.
func ccc(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	i := sort.Search(len(nfcCCC), func(i int) bool { return nfcCCC[i][1] >= r })
	if i < len(nfcCCC) && nfcCCC[i][0] <= r {
		return uint8(nfcCCC[i][2])
	}
	return 0
}

// nfcInert reports whether r can neither change nor combine under NFC.
func (d *nfcData) nfcInert(r rune) bool {
	if r < 0x300 {
		return true
	}
	if jamoL <= r && r < 0x1200 {
		return false
	}
	if _, ok := d.decomp[r]; ok {
		return false
	}
	return !d.seconds[r] && ccc(r) == 0
}

// nfc returns the NFC form of s (s itself when it is already NFC as far as
// a per-character check can tell).
func nfc(s string) string {
	i := 0
	for i < len(s) && s[i] < 0xCC { // U+0300 is 0xCC 0x80
		i++
	}
	if i == len(s) {
		return s
	}
	d := nfcOnce()
	inert := true
	for _, r := range s[i:] {
		if !d.nfcInert(r) {
			inert = false
			break
		}
	}
	if inert {
		return s
	}
	return d.normalize(s)
}

// An invalid byte b is carried through as the rune -1-b: a starter that
// composes with nothing.
func (d *nfcData) normalize(s string) string {
	buf := make([]rune, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, -1-rune(s[i]))
		} else {
			buf = d.decompose(buf, r)
		}
		i += size
	}
	// Canonical ordering: stable sort of each run of non-starters by class.
	for i := 1; i < len(buf); i++ {
		c := cccOf(buf[i])
		if c == 0 {
			continue
		}
		for j := i; j > 0; j-- {
			p := cccOf(buf[j-1])
			if p <= c {
				break
			}
			buf[j-1], buf[j] = buf[j], buf[j-1]
		}
	}
	// Canonical composition.
	out := buf[:0]
	starter := -1
	var last uint8 // class of the last character kept after the starter
	for _, r := range buf {
		c := cccOf(r)
		if starter >= 0 && (len(out)-1 == starter || last != 0 && last < c) {
			if comp, ok := d.compose(out[starter], r); ok {
				out[starter] = comp
				continue
			}
		}
		if c == 0 {
			starter = len(out)
		}
		last = c
		out = append(out, r)
	}
	b := make([]byte, 0, len(s))
	for _, r := range out {
		if r < 0 {
			b = append(b, byte(-1-r))
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	return string(b)
}

func cccOf(r rune) uint8 {
	if r < 0 {
		return 0
	}
	return ccc(r)
}

func (d *nfcData) decompose(dst []rune, r rune) []rune {
	if hangulBase <= r && r < hangulBase+hangulCount {
		s := r - hangulBase
		dst = append(dst, jamoL+s/jamoNCount, jamoV+s%jamoNCount/jamoTCount)
		if t := s % jamoTCount; t != 0 {
			dst = append(dst, jamoT+t)
		}
		return dst
	}
	if p, ok := d.decomp[r]; ok {
		dst = d.decompose(dst, p[0])
		if p[1] != 0 {
			dst = d.decompose(dst, p[1])
		}
		return dst
	}
	return append(dst, r)
}

func (d *nfcData) compose(a, b rune) (rune, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	if jamoL <= a && a < jamoL+19 && jamoV <= b && b < jamoV+jamoVCount {
		return hangulBase + ((a-jamoL)*jamoVCount+(b-jamoV))*jamoTCount, true
	}
	if hangulBase <= a && a < hangulBase+hangulCount && (a-hangulBase)%jamoTCount == 0 &&
		jamoT < b && b < jamoT+jamoTCount {
		return a + (b - jamoT), true
	}
	c, ok := d.comp[[2]rune{a, b}]
	return c, ok
}
