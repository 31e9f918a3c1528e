package convert

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// modelName is general.name as gguf-py's metadata heuristics derive it
// when there is no model card: config.json's _name_or_path when it is a
// model id (at most one "/"), else the folder name; the part after the
// organisation, in title form (idToTitle).
func modelName(c config, folder string) string {
	id := c.str("_name_or_path")
	if id == "" || strings.Count(id, "/") > 1 {
		id = filepath.Base(filepath.Clean(folder))
		if id == "." || id == string(filepath.Separator) {
			id = ""
		}
	}
	if !strings.Contains(id, " ") {
		if _, after, ok := strings.Cut(id, "/"); ok {
			id = after
		}
	}
	return idToTitle(id)
}

var versionOrNumber = regexp.MustCompile(`^(v\d+(\.\d+)*|\d.*)$`)

// idToTitle turns "stories260K-hf" into "stories260K Hf": dashes become
// spaces, and each all-lowercase word that is not a version or number gets
// Python's str.title() (a letter after a non-letter is upper case, other
// letters lower case). Words with capitals are kept as they are.
func idToTitle(s string) string {
	words := strings.Fields(strings.ReplaceAll(strings.TrimSpace(s), "-", " "))
	for i, w := range words {
		if isLower(w) && !versionOrNumber.MatchString(w) {
			words[i] = pyTitle(w)
		}
	}
	return strings.Join(words, " ")
}

func cased(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }

// isLower is Python's str.islower: some cased letter, none upper case.
func isLower(w string) bool {
	any := false
	for _, r := range w {
		if unicode.IsUpper(r) || unicode.IsTitle(r) {
			return false
		}
		if unicode.IsLower(r) {
			any = true
		}
	}
	return any
}

func pyTitle(w string) string {
	var b strings.Builder
	prevCased := false
	for _, r := range w {
		if cased(r) {
			if prevCased {
				r = unicode.ToLower(r)
			} else {
				r = unicode.ToTitle(r)
			}
			prevCased = true
		} else {
			prevCased = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sizeLabel is general.size_label from the parameter count as gguf-py
// writes it: the count in K, M, B or T (the largest unit the count
// exceeds, K below a million) with as many decimals as make two
// significant digits ("293K", "1.2B", "15M").
func sizeLabel(params int64) string {
	n := float64(params)
	scaled, unit := n*1e-3, "K"
	switch {
	case n > 1e12:
		scaled, unit = n*1e-12, "T"
	case n > 1e9:
		scaled, unit = n*1e-9, "B"
	case n > 1e6:
		scaled, unit = n*1e-6, "M"
	}
	digits := strings.TrimLeft(fmt.Sprintf("%d", int64(math.RoundToEven(scaled))), "0")
	decimals := max(2-len(digits), 0)
	return fmt.Sprintf("%.*f%s", decimals, scaled, unit)
}
