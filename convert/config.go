package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// ErrConfig is returned for a config.json that is not a JSON object or
// whose values have the wrong type or range. It wraps formats.ErrFormat.
var ErrConfig = formats.NewRule("invalid config.json", formats.ErrFormat)

// config is a parsed config.json; numbers keep their text.
type config map[string]any

func parseConfig(b []byte) (config, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("convert: no config.json: %w", ErrConfig)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var c map[string]any
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("convert: config.json: %v: %w", err, ErrConfig)
	}
	if c == nil {
		return nil, fmt.Errorf("convert: config.json is null: %w", ErrConfig)
	}
	return config(c), nil
}

// has reports whether key is present and not null.
func (c config) has(key string) bool { v, ok := c[key]; return ok && v != nil }

func (c config) str(key string) string {
	s, _ := c[key].(string)
	return s
}

func (c config) strs(key string) []string {
	switch v := c[key].(type) {
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case string:
		return []string{v}
	}
	return nil
}

func (c config) boolean(key string, def bool) bool {
	if b, ok := c[key].(bool); ok {
		return b
	}
	return def
}

// num returns a number value (ok false when absent or null).
func (c config) num(key string) (float64, bool, error) {
	v, ok := c[key]
	if !ok || v == nil {
		return 0, false, nil
	}
	return number(key, v)
}

func number(key string, v any) (float64, bool, error) {
	n, isNum := v.(json.Number)
	if !isNum {
		return 0, false, fmt.Errorf("convert: config.json %q is %v, want a number: %w", key, v, ErrConfig)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return 0, false, fmt.Errorf("convert: config.json %q: %v: %w", key, err, ErrConfig)
	}
	return f, true, nil
}

// uint32Of returns an integer value that fits a UINT32.
func uint32Of(key string, f float64) (uint32, error) {
	if f != math.Trunc(f) || f < 0 || f > math.MaxUint32 {
		return 0, fmt.Errorf("convert: config.json %q = %v is not a 32-bit count: %w", key, f, ErrConfig)
	}
	return uint32(f), nil
}

// count returns a positive integer config value; def when absent.
func (c config) count(key string, def int64) (int64, error) {
	f, ok, err := c.num(key)
	if err != nil || !ok {
		return def, err
	}
	u, err := uint32Of(key, f)
	if err != nil {
		return 0, err
	}
	if u == 0 {
		return 0, fmt.Errorf("convert: config.json %q is 0: %w", key, ErrConfig)
	}
	return int64(u), nil
}

// sub returns a nested object (rope_scaling), nil when absent or null.
func (c config) sub(key string) (config, error) {
	v, ok := c[key]
	if !ok || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("convert: config.json %q is not an object: %w", key, ErrConfig)
	}
	return config(m), nil
}

// jsonFloat32 is a float32 as config.json writes it: the shortest decimal
// that reads back as the same float32, with ".0" on whole numbers (as
// Python prints floats), so 1e-05 and 10000.0 survive GGUF's FLOAT32.
func jsonFloat32(f float32) json.Number {
	s := strconv.FormatFloat(float64(f), 'g', -1, 32)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return json.Number(s)
}

// jsonFloat64 is jsonFloat32 for a float64.
func jsonFloat64(f float64) json.Number {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return json.Number(s)
}

// marshalConfig writes a config the way transformers does
// (json.dumps(indent=2, sort_keys=True) + "\n").
func marshalConfig(c map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
