package vocab

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qtool-dev/qtool/formats"
)

// miniGPT2 is a small byte-level BPE tokenizer.json with three special
// tokens and the given post_processor.
func miniGPT2(post string) []byte {
	return []byte(`{
  "added_tokens": [
    {"id": 4, "content": "<|bos|>", "special": true},
    {"id": 5, "content": "<|eos|>", "special": true},
    {"id": 6, "content": "<|eot|>", "special": true},
    {"id": 7, "content": "extra▁word", "special": false}
  ],
  "pre_tokenizer": ` + byteLevelPre + `,
  "post_processor": ` + post + `,
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġa": 3}, "merges": ["a b", "Ġ a"]}
}`)
}

func read(t *testing.T, files map[string]string) *Vocab {
	t.Helper()
	b := map[string][]byte{}
	for k, v := range files {
		b[k] = []byte(v)
	}
	v, err := FromHFFolder(folder(t, b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSpecialVocab(t *testing.T) {
	tp := func(first, last string) string {
		single := `[{"Sequence": {"id": "A", "type_id": 0}}]`
		if first != "" {
			single = `[{"SpecialToken": {"id": "` + first + `", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}`
			if last != "" {
				single += `, {"SpecialToken": {"id": "` + last + `", "type_id": 0}}`
			}
			single += `]`
		}
		return `{"type": "TemplateProcessing", "single": ` + single + `, "pair": [], "special_tokens": {}}`
	}

	t.Run("ids from tokenizer_config, then config.json, in that order", func(t *testing.T) {
		v := read(t, map[string]string{
			fileTokenizer:   string(miniGPT2(`null`)),
			fileConfig:      `{"eos_token": {"content": "<|eos|>"}, "pad_token": "<|eot|>"}`,
			fileModelConfig: `{"bos_token_id": 4, "eos_token_id": 1}`,
		})
		if v.BOS != 4 || v.EOS != 5 || v.PAD != 6 || !slices.Equal(v.idOrder, []string{"eos", "pad", "bos"}) {
			t.Errorf("bos %d eos %d pad %d order %v", v.BOS, v.EOS, v.PAD, v.idOrder)
		}
		m := formats.NewMeta()
		v.ToMeta(m)
		var keys []string
		for _, kv := range m.KVs() {
			keys = append(keys, kv.Key)
		}
		want := []string{KeyModel, KeyPre, KeyTokens, KeyTokenType, KeyMerges,
			"tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id", "tokenizer.ggml.bos_token_id"}
		if !slices.Equal(keys, want) {
			t.Errorf("keys %v\nwant %v", keys, want)
		}
		if v.Types[7] != TypeUserDefined || v.Tokens[7] != "extra word" || v.Types[4] != TypeControl {
			t.Errorf("added token types %v, token 7 %q", v.Types, v.Tokens[7])
		}
	})
	t.Run("eos_token_id list gives its first id", func(t *testing.T) {
		v := read(t, map[string]string{fileTokenizer: string(miniGPT2(`null`)), fileModelConfig: `{"eos_token_id": [5, 6]}`})
		if v.EOS != 5 {
			t.Errorf("eos %d", v.EOS)
		}
	})
	t.Run("special_tokens_map.json stands in", func(t *testing.T) {
		v := read(t, map[string]string{fileTokenizer: string(miniGPT2(`null`)),
			fileConfig: `{"add_bos_token": false}`, fileSpecialMap: `{"bos_token": "<|bos|>"}`})
		if v.BOS != 4 || v.AddBOS == nil || *v.AddBOS {
			t.Errorf("bos %d add_bos %v", v.BOS, v.AddBOS)
		}
	})
	t.Run("TemplateProcessing adds bos", func(t *testing.T) {
		v := read(t, map[string]string{fileTokenizer: string(miniGPT2(tp("<|bos|>", ""))), fileConfig: `{"bos_token": "<|bos|>"}`})
		if v.AddBOS == nil || !*v.AddBOS || v.AddEOS != nil || v.BOS != 4 {
			t.Errorf("add_bos %v add_eos %v bos %d", v.AddBOS, v.AddEOS, v.BOS)
		}
	})
	t.Run("TemplateProcessing trailing token other than eos moves eos to eot", func(t *testing.T) {
		v := read(t, map[string]string{fileTokenizer: string(miniGPT2(tp("<|bos|>", "<|eot|>"))),
			fileConfig: `{"bos_token": "<|bos|>", "eos_token": "<|eos|>"}`})
		if v.EOS != 6 || v.EOT != 5 || v.AddEOS == nil || !*v.AddEOS {
			t.Errorf("eos %d eot %d add_eos %v", v.EOS, v.EOT, v.AddEOS)
		}
	})
	t.Run("TemplateProcessing without tokenizer_config names bos", func(t *testing.T) {
		v := read(t, map[string]string{fileTokenizer: string(miniGPT2(tp("<|bos|>", "")))})
		if v.AddBOS == nil || !*v.AddBOS || v.BOS != -1 {
			t.Errorf("add_bos %v bos %d (no tokenizer_config: flag only)", v.AddBOS, v.BOS)
		}
	})
	t.Run("chat templates", func(t *testing.T) {
		v := read(t, map[string]string{fileTokenizer: string(miniGPT2(`null`)),
			fileConfig: `{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}`})
		if v.ChatTemplate != "D" {
			t.Errorf("list: %q", v.ChatTemplate)
		}
		v = read(t, map[string]string{fileTokenizer: string(miniGPT2(`null`)), fileConfig: `{"x": 1}`, fileChatJinja: "J"})
		if v.ChatTemplate != "J" {
			t.Errorf("jinja: %q", v.ChatTemplate)
		}
		v = read(t, map[string]string{fileTokenizer: string(miniGPT2(`null`)), fileConfig: `{"x": 1}`, fileChatTemplate: `{"chat_template": "C"}`})
		if v.ChatTemplate != "C" {
			t.Errorf("json: %q", v.ChatTemplate)
		}
		v = read(t, map[string]string{fileTokenizer: string(miniGPT2(`null`)), fileChatJinja: "J"})
		if v.ChatTemplate != "" {
			t.Errorf("without tokenizer_config.json the converter reads no template, got %q", v.ChatTemplate)
		}
	})
	t.Run("add_prefix_space", func(t *testing.T) {
		v := read(t, map[string]string{fileTokenizer: string(miniGPT2(`null`)), fileConfig: `{"add_prefix_space": true}`})
		m := formats.NewMeta()
		v.ToMeta(m)
		if v.AddSpacePrefix == nil || !*v.AddSpacePrefix || m.KVs()[0].Key != KeyAddSpacePrefix {
			t.Errorf("add_space_prefix %v, first key %q", v.AddSpacePrefix, m.KVs()[0].Key)
		}
	})
}

// SentencePiece path details: USER_DEFINED pieces read as NORMAL, entries of
// added_tokens.json become USER_DEFINED, added_tokens_decoder entries
// CONTROL (special or special-looking) or USER_DEFINED with "▁" as space,
// config.json's vocab_size pads with [PADi], and add_dummy_prefix false
// sets add_space_prefix false. A vocabulary with such tokens survives
// WriteHF → FromHFFolder.
func TestSentencePiecePath(t *testing.T) {
	m := miniSP()
	m.Pieces = append(m.Pieces, spPiece{"<user>", 0, TypeUserDefined}, spPiece{"b", -3, TypeNormal})
	m.AddDummyPrefix = false
	v := read(t, map[string]string{
		fileModel:       string(m.encode()),
		fileModelConfig: `{"vocab_size": 10}`,
		fileAddedTokens: `{"<added>": 7, "<far>": 99}`,
		fileConfig:      `{"added_tokens_decoder": {"6": {"content": "x▁y", "special": false}, "8": {"content": "<|im|>"}}}`,
	})
	wantTok := []string{"<unk>", "<s>", "</s>", "▁a", "a", "<user>", "x y", "<added>", "<|im|>", "[PAD9]"}
	wantType := []int32{2, 3, 3, 1, 1, 1, 4, 4, 3, 5}
	wantScore := []float32{0, 0, 0, -1, -2, 0, -1000, -1000, -1000, -10000}
	if !slices.Equal(v.Tokens, wantTok) || !slices.Equal(v.Types, wantType) || !slices.Equal(v.Scores, wantScore) {
		t.Fatalf("tokens %q\ntypes %v\nscores %v", v.Tokens, v.Types, v.Scores)
	}
	if v.AddSpacePrefix == nil || *v.AddSpacePrefix {
		t.Errorf("add_space_prefix %v, want false", v.AddSpacePrefix)
	}
	dir := t.TempDir()
	if _, err := v.WriteHF(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fileModelConfig), []byte(`{"vocab_size": 10}`), 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := FromHFFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameVocab(t, "sentencepiece path round trip", v, back)
}
