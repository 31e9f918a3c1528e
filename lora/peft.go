package lora

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

// PEFT (huggingface/peft, ADAPTER-FORMATS.md): adapter_model.safetensors
// holds base_model.model.<module>.lora_A.weight [r, in] and .lora_B.weight
// [out, r]; adapter_config.json holds r, lora_alpha (int or float),
// use_rslora, rank_pattern, alpha_pattern, target_modules, … The delta of
// a module is (α/r)·B·A, α/√r with use_rslora, where r and α come from the
// first rank_pattern / alpha_pattern key (in the JSON object's order) that
// selects the module, else from r and lora_alpha.

// peftDefaults are PEFT's LoraConfig defaults for keys a config may omit.
const (
	peftDefaultRank  = 8
	peftDefaultAlpha = 8
)

// peftConfig is a parsed adapter_config.json with the pattern keys in
// their JSON order (PEFT takes the first match).
type peftConfig struct {
	Config
	rankKeys, alphaKeys []string
}

// parsePEFTConfig reads adapter_config.json and refuses what plain LoRA
// pairs cannot represent.
func parsePEFTConfig(b []byte, file string) (*peftConfig, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, badAdapter(file, "", "", "not a JSON object: "+err.Error())
	}
	raw := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, badAdapter(file, "", "", err.Error())
	}
	pc := &peftConfig{Config: Config{Rank: peftDefaultRank, Alpha: peftDefaultAlpha, Raw: raw}}
	c := &pc.Config

	str := func(key string) (string, error) {
		v, ok := fields[key]
		if !ok || string(v) == "null" {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", badAdapter(file, "", key, "want a string, got "+string(v))
		}
		return s, nil
	}
	boolean := func(key string) (bool, error) {
		v, ok := fields[key]
		if !ok || string(v) == "null" {
			return false, nil
		}
		var x bool
		if err := json.Unmarshal(v, &x); err != nil {
			return false, badAdapter(file, "", key, "want true or false, got "+string(v))
		}
		return x, nil
	}
	number := func(key string, dst *float64) error {
		v, ok := fields[key]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil || math.IsNaN(*dst) || math.IsInf(*dst, 0) {
			return badAdapter(file, "", key, "want a number, got "+string(v))
		}
		return nil
	}

	if t, err := str("peft_type"); err != nil {
		return nil, err
	} else if t != "" && t != "LORA" {
		return nil, &formats.FormatError{File: file, Offset: -1, Key: "peft_type", Err: ErrCannotRepresent, Detail: fmt.Sprintf("%q; only LORA adapters are converted", t)}
	}
	if dora, err := boolean("use_dora"); err != nil {
		return nil, err
	} else if dora {
		return nil, &formats.FormatError{File: file, Offset: -1, Key: "use_dora", Err: ErrCannotRepresent, Detail: "DoRA adapters (magnitude vectors) cannot be converted to plain LoRA"}
	}
	if fifo, err := boolean("fan_in_fan_out"); err != nil {
		return nil, err
	} else if fifo {
		return nil, &formats.FormatError{File: file, Offset: -1, Key: "fan_in_fan_out", Err: ErrCannotRepresent, Detail: "adapters of transposed (Conv1D, GPT-2 style) weights are not converted"}
	}
	if v, ok := fields["init_lora_weights"]; ok {
		var s string
		if json.Unmarshal(v, &s) == nil {
			for _, m := range []string{"pissa", "olora", "loftq", "corda"} {
				if strings.HasPrefix(strings.ToLower(s), m) {
					return nil, &formats.FormatError{File: file, Offset: -1, Key: "init_lora_weights", Err: ErrCannotRepresent,
						Detail: fmt.Sprintf("%q changed the base weights at initialisation; convert it with PEFT (path_initial_model_for_weight_conversion) first", s)}
				}
			}
		}
	}
	var err error
	if c.BaseModel, err = str("base_model_name_or_path"); err != nil {
		return nil, err
	}
	if c.RSLoRA, err = boolean("use_rslora"); err != nil {
		return nil, err
	}
	var r float64 = peftDefaultRank
	if err := number("r", &r); err != nil {
		return nil, err
	}
	if r != math.Trunc(r) || r <= 0 || r > 1<<31 {
		return nil, badAdapter(file, "", "r", fmt.Sprintf("rank %v is not a positive integer", r))
	}
	c.Rank = int(r)
	if err := number("lora_alpha", &c.Alpha); err != nil {
		return nil, err
	}
	if err := number("lora_dropout", &c.Dropout); err != nil {
		return nil, err
	}
	if v, ok := fields["target_modules"]; ok && string(v) != "null" {
		var list []string
		var one string
		switch {
		case json.Unmarshal(v, &list) == nil:
			c.TargetModules = list
		case json.Unmarshal(v, &one) == nil:
			c.TargetModules = []string{one}
		default:
			return nil, badAdapter(file, "", "target_modules", "want a list of names or a regular expression")
		}
	}
	if pc.rankKeys, err = orderedPattern(fields, "rank_pattern", file, func(k string, x float64) error {
		if x != math.Trunc(x) || x <= 0 || x > 1<<31 {
			return badAdapter(file, "", "rank_pattern", fmt.Sprintf("%q: rank %v is not a positive integer", k, x))
		}
		if c.RankPattern == nil {
			c.RankPattern = map[string]int{}
		}
		c.RankPattern[k] = int(x)
		return nil
	}); err != nil {
		return nil, err
	}
	if pc.alphaKeys, err = orderedPattern(fields, "alpha_pattern", file, func(k string, x float64) error {
		if c.AlphaPattern == nil {
			c.AlphaPattern = map[string]float64{}
		}
		c.AlphaPattern[k] = x
		return nil
	}); err != nil {
		return nil, err
	}
	return pc, nil
}

// orderedPattern walks a {key: number} object in its JSON order.
func orderedPattern(fields map[string]json.RawMessage, key, file string, set func(string, float64) error) ([]string, error) {
	v, ok := fields[key]
	if !ok || string(v) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, badAdapter(file, "", key, "want an object of numbers")
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, badAdapter(file, "", key, err.Error())
		}
		k, _ := t.(string)
		var x float64
		if err := dec.Decode(&x); err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, badAdapter(file, "", key, fmt.Sprintf("%q: want a number", k))
		}
		if err := set(k, x); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// alphaFor resolves a module's lora_alpha. (Its rank is read from the
// factors' shapes; Lint compares it with r and rank_pattern.)
func (c *Config) alphaFor(module string, keys []string) float64 {
	if a, ok := resolvePattern(c.AlphaPattern, keys, module); ok {
		return a
	}
	return c.Alpha
}

// loadPEFT reads adapter_model.safetensors and its adapter_config.json.
func loadPEFT(weights string) (*Adapter, error) {
	cb, cfgPath, err := readConfig(weights)
	if err != nil {
		return nil, err
	}
	pc, err := parsePEFTConfig(cb, cfgPath)
	if err != nil {
		return nil, err
	}
	src, err := safetensors.Open(weights)
	if err != nil {
		return nil, err
	}
	defer src.Close()

	m := map[string]*halves{}
	var order []string
	for _, ti := range src.Tensors() {
		module, half, err := parsePEFTKey(weights, ti.Name)
		if err != nil {
			return nil, err
		}
		if err := check2D(weights, ti); err != nil {
			return nil, err
		}
		if err := addHalf(weights, m, &order, targetOf(module), half, ti); err != nil {
			return nil, err
		}
	}
	if err := collectPairs(weights, m, order, peftName); err != nil {
		return nil, err
	}
	ad := &Adapter{Format: PEFT, Config: pc.Config}
	for _, target := range order {
		h := m[target]
		if isEmbedding(target) {
			return nil, refuseAdapter(weights, h.a.info.Name, "embedding adapter; only Linear layers are converted")
		}
		a, b := h.a.info, h.b.info
		if a.Shape[0] != b.Shape[1] {
			return nil, badAdapter(weights, b.Name, "", fmt.Sprintf("shape %v does not match lora_A %v (want [out, %d])", b.Shape, a.Shape, a.Shape[0]))
		}
		p := Pair{Target: target, Rank: int(a.Shape[0]), In: int(a.Shape[1]), Out: int(b.Shape[0])}
		if p.A, err = readFloats(src, a, weights); err != nil {
			return nil, err
		}
		if p.B, err = readFloats(src, b, weights); err != nil {
			return nil, err
		}
		p.Alpha = pc.alphaFor(moduleOf(target), pc.alphaKeys)
		p.Scale = Scale(p.Alpha, p.Rank, pc.RSLoRA)
		ad.Pairs = append(ad.Pairs, p)
	}
	if len(ad.Pairs) == 0 {
		return nil, &formats.FormatError{File: weights, Offset: -1, Err: ErrNotAdapter, Detail: "no lora_A/lora_B tensors"}
	}
	return ad, nil
}

// peftPlan is the adapter_config.json values a set of pairs needs.
type peftPlan struct {
	rank         int
	alpha        float64
	rankPattern  map[string]int
	alphaPattern map[string]float64
}

// planPEFT chooses r and lora_alpha and the patterns that give every pair
// its own rank and scale. A pair keeps its Alpha when that alpha (with the
// adapter's use_rslora) gives its Scale; otherwise (MLX, folded scales)
// its alpha is Scale·rank (Scale·√rank with rsLoRA). r and lora_alpha are
// the source config's when a pair uses them, else the most common values;
// the other pairs get rank_pattern / alpha_pattern entries keyed by their
// full module path.
func planPEFT(ad *Adapter) peftPlan {
	rs := ad.Config.RSLoRA
	alphas := make([]float64, len(ad.Pairs))
	for i, p := range ad.Pairs {
		alphas[i] = pairAlpha(p, rs)
	}
	pl := peftPlan{rankPattern: map[string]int{}, alphaPattern: map[string]float64{}}
	ranks := make([]float64, len(ad.Pairs))
	for i, p := range ad.Pairs {
		ranks[i] = float64(p.Rank)
	}
	pl.rank = int(preferred(ranks, float64(ad.Config.Rank), ad.Format == PEFT))
	pl.alpha = preferred(alphas, ad.Config.Alpha, ad.Format == PEFT)
	for i, p := range ad.Pairs {
		if p.Rank != pl.rank {
			pl.rankPattern[moduleOf(p.Target)] = p.Rank
		}
		if alphas[i] != pl.alpha {
			pl.alphaPattern[moduleOf(p.Target)] = alphas[i]
		}
	}
	return pl
}

// pairAlpha is the lora_alpha that reproduces p.Scale at p.Rank.
func pairAlpha(p Pair, rslora bool) float64 {
	if p.Alpha != 0 && sameScale(Scale(p.Alpha, p.Rank, rslora), p.Scale) {
		return p.Alpha
	}
	if rslora {
		return p.Scale * math.Sqrt(float64(p.Rank))
	}
	return p.Scale * float64(p.Rank)
}

// sameScale compares scales up to float64 rounding.
func sameScale(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}

// preferred returns want when allowed and present in vs, else the most
// common value (the first one on a tie).
func preferred(vs []float64, want float64, allowed bool) float64 {
	count := map[float64]int{}
	for _, v := range vs {
		count[v]++
	}
	if allowed && count[want] > 0 {
		return want
	}
	best, n := 0.0, 0
	for _, v := range vs {
		if count[v] > n {
			best, n = v, count[v]
		}
	}
	return best
}

// peftConfigJSON builds adapter_config.json: the source's keys when it was
// PEFT (so task_type, bias, … survive), with the values the pairs need.
func peftConfigJSON(ad *Adapter) ([]byte, error) {
	pl := planPEFT(ad)
	m := map[string]any{}
	if ad.Format == PEFT {
		for k, v := range ad.Config.Raw {
			m[k] = v
		}
	} else {
		for k, v := range map[string]any{
			"bias": "none", "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true,
			"layers_pattern": nil, "layers_to_transform": nil, "modules_to_save": nil,
			"lora_dropout": ad.Config.Dropout, "revision": nil, "task_type": "CAUSAL_LM",
		} {
			m[k] = v
		}
	}
	m["peft_type"] = "LORA"
	m["use_dora"] = false
	m["use_rslora"] = ad.Config.RSLoRA
	m["r"] = pl.rank
	m["lora_alpha"] = jsonNumber(pl.alpha)
	rp := map[string]any{}
	for k, v := range pl.rankPattern {
		rp[k] = v
	}
	ap := map[string]any{}
	for k, v := range pl.alphaPattern {
		ap[k] = jsonNumber(v)
	}
	m["rank_pattern"], m["alpha_pattern"] = rp, ap
	m["base_model_name_or_path"] = nilIfEmpty(ad.Config.BaseModel)
	m["target_modules"] = targetModules(ad)
	return marshalConfig(m)
}

// targetModules keeps the source's list when it names every adapted
// module's last component, else lists those components sorted.
func targetModules(ad *Adapter) []string {
	leaves := map[string]bool{}
	for _, p := range ad.Pairs {
		leaves[leafOf(moduleOf(p.Target))] = true
	}
	if ad.Format == PEFT && len(ad.Config.TargetModules) > 0 {
		have := map[string]bool{}
		for _, t := range ad.Config.TargetModules {
			have[t] = true
		}
		all := true
		for l := range leaves {
			all = all && have[l]
		}
		if all {
			return ad.Config.TargetModules
		}
	}
	out := make([]string, 0, len(leaves))
	for l := range leaves {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// jsonNumber writes integral values as integers (PEFT writes lora_alpha
// as given, usually an int).
func jsonNumber(v float64) any {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return int64(v)
	}
	return v
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// marshalConfig encodes a config as PEFT does: keys sorted, indent 2.
func marshalConfig(m map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writePEFT writes a PEFT folder's two files into dir.
func writePEFT(ctx context.Context, dir string, ad *Adapter) error {
	var ts []formats.Tensor
	for i := range ad.Pairs {
		p := &ad.Pairs[i]
		if isEmbedding(p.Target) {
			return refuseAdapter("", p.Target, "embedding adapter; PEFT stores those as lora_embedding_A/B, which qtool does not write")
		}
		ts = append(ts,
			f32Tensor(peftName(p.Target, 'A'), []int64{int64(p.Rank), int64(p.In)}, p.A),
			f32Tensor(peftName(p.Target, 'B'), []int64{int64(p.Out), int64(p.Rank)}, p.B))
	}
	cfg, err := peftConfigJSON(ad)
	if err != nil {
		return err
	}
	if err := writeSafetensors(ctx, filepath.Join(dir, peftWeights), map[string]string{"format": "pt"}, ts); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, configFile), cfg, 0o644)
}
