package quantize

import (
	"fmt"
	"strings"

	"github.com/qtool-dev/qtool/formats"
)

// llama-quantize's default type mix (GGUF-LLAMACPP.md §3.2, the Q4_K_M
// table of shared/goldens/ggml/README.md). Without --pure, llama-quantize
// does not give every weight the requested type: a few tensors that cost
// the most quality get more bits. Config.Mix turns these rules on. They
// apply only to tensors that would otherwise get Config.Type, never to a
// tensor chosen by --keep, --type-for, --leave-output-tensor or
// --token-embedding-type, and the block fallback (fitRow) runs after them.
//
// What qtool implements, and nothing more, is what §3.2 and the golden
// document:
//
//  1. output.weight (token_embd.weight when the model has no
//     output.weight, i.e. tied embeddings): Q8_0 stays Q8_0; any other
//     type becomes Q6_K when the row is a multiple of 256 wide, else Q8_0.
//  2. attn_v.weight: for q4_k and q5_k (llama-quantize's Q4_K_M and
//     Q5_K_M, which Q4_K and Q5_K alias) Q6_K when useMoreBits(i, n),
//     with i the tensor's index among the attn_v tensors in output order
//     and n their number; for iq4_nl Q5_K when n_head/n_head_kv ≥ 4.
//  3. ffn_down: for q4_k and q5_k Q6_K when useMoreBits(i, n), with i
//     the tensor's index among the ffn_down tensors in output order and n
//     the block count; for iq4_nl (no importance matrix) Q5_K for
//     i < n/8.
//
// Not implemented, because the spec does not document them: the
// Q4_K_S/Q5_K_S file types (refused by ParseTarget), fused attn_qkv,
// mixture-of-experts and 70B special cases, Falcon's output rule, the
// choices that depend on an importance matrix, and the 2- and 3-bit
// types qtool does not quantize to.

// mixNames are llama-quantize file type names that are not ggml type
// names, with the Type whose mix they select.
var mixNames = map[string]Type{
	"q4_k_m": TypeQ4K,
	"q5_k_m": TypeQ5K,
}

// unimplementedMixes are file type names users know whose rules the spec
// does not give; ParseTarget refuses them instead of guessing.
var unimplementedMixes = []string{"q4_k_s", "q5_k_s", "q3_k_s", "q3_k_m", "q3_k_l", "q2_k", "q2_k_s", "iq4_xs"}

// MixNames lists the llama-quantize file type names ParseTarget accepts
// beyond the type names.
func MixNames() []string { return []string{"q4_k_m", "q5_k_m"} }

// ParseTarget reads a --type value: a type name (ParseType) or a
// llama-quantize file type name whose mix qtool implements ("q4_k_m",
// "q5_k_m", the same as q4_k and q5_k with Config.Mix). Names of mixes
// qtool does not implement ("q4_k_s", …) fail with a message saying so.
func ParseTarget(name string) (Type, error) {
	low := strings.ToLower(strings.TrimSpace(name))
	if t, ok := mixNames[low]; ok {
		return t, nil
	}
	for _, u := range unimplementedMixes {
		if low == u {
			return TypeNone, fmt.Errorf("%s: llama-quantize's %s mix is not implemented (its per-tensor rules are not in GGUF-LLAMACPP.md §3.2); use q4_k_m or q5_k_m, or a single type such as q4_k with --pure",
				name, strings.ToUpper(low))
		}
	}
	return ParseType(name)
}

// mixer applies the mix rules of one plan. It is built from the whole
// tensor list in output order, because the rules depend on a tensor's
// position among its kind and on whether the model has an output matrix.
type mixer struct {
	typ       Type
	hasOutput bool
	gqa       int64          // n_head / n_head_kv; 1 when unknown
	attnV     map[string]int // index among the attn_v tensors
	nAttnV    int
	ffnDown   map[string]int // index among the ffn_down tensors
	nLayers   int            // block count (ffn_down count when the KV is missing)
}

// newMixer prepares the rules for Type t over tensors in output order.
func newMixer(t Type, infos []formats.TensorInfo, meta *formats.Meta) *mixer {
	m := &mixer{typ: t, gqa: 1, attnV: map[string]int{}, ffnDown: map[string]int{}}
	for _, ti := range infos {
		switch {
		case ti.Name == "output.weight":
			m.hasOutput = true
		case strings.Contains(ti.Name, "attn_v.weight"):
			m.attnV[ti.Name] = len(m.attnV)
		case strings.Contains(ti.Name, "ffn_down"):
			m.ffnDown[ti.Name] = len(m.ffnDown)
		}
	}
	m.nAttnV, m.nLayers = len(m.attnV), len(m.ffnDown)
	arch, _ := meta.String("general.architecture")
	if n, ok := meta.Uint(arch + ".block_count"); ok && n > 0 && n < 1<<20 {
		m.nLayers = int(n)
	}
	heads, ok1 := meta.Uint(arch + ".attention.head_count")
	kv, ok2 := meta.Uint(arch + ".attention.head_count_kv")
	if ok1 && ok2 && kv > 0 && heads >= kv {
		m.gqa = int64(heads / kv)
	}
	return m
}

// useMoreBits is llama-quantize's choice of the layers that get more bits:
// the first and last eighth, and every third layer in between.
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// rule returns the type the mix gives a tensor that would otherwise get
// m.typ, and why when it differs.
func (m *mixer) rule(ti formats.TensorInfo) (Type, string) {
	t := m.typ
	kMix := t == TypeQ4K || t == TypeQ5K
	switch {
	case ti.Name == "output.weight" || (!m.hasOutput && ti.Name == "token_embd.weight"):
		switch {
		case t == TypeQ8_0:
			return t, ""
		case rowLength(ti.Shape)%256 == 0:
			return TypeQ6K, "mix: output matrix"
		default:
			return TypeQ8_0, "mix: output matrix, row not a multiple of 256"
		}
	case strings.Contains(ti.Name, "attn_v.weight"):
		i := m.attnV[ti.Name]
		if t == TypeIQ4NL && m.gqa >= 4 {
			return TypeQ5K, fmt.Sprintf("mix: attn_v with n_head/n_head_kv = %d ≥ 4", m.gqa)
		}
		if kMix && useMoreBits(i, m.nAttnV) {
			return TypeQ6K, fmt.Sprintf("mix: attn_v %d of %d gets more bits", i, m.nAttnV)
		}
	case strings.Contains(ti.Name, "ffn_down"):
		i := m.ffnDown[ti.Name]
		if kMix && useMoreBits(i, m.nLayers) {
			return TypeQ6K, fmt.Sprintf("mix: ffn_down %d of %d layers gets more bits", i, m.nLayers)
		}
		if t == TypeIQ4NL && i < m.nLayers/8 {
			return TypeQ5K, fmt.Sprintf("mix: ffn_down in the first eighth of %d layers", m.nLayers)
		}
	}
	return t, ""
}
