package convert

import (
	"reflect"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/internal/llamacpptest"
)

// llama.cpp loads every converted fixture, tokenizes like the original and,
// from "Once upon a time", greedy-generates the original's 32 tokens.
func TestLlamaCppLoadsConversions(t *testing.T) {
	llamacpptest.Require(t)
	texts := []string{"Once upon a time", "Hello world", "The cat sat on the mat.", "héllo ✓ 42", "  two  spaces"}
	story := func(model string) llamacpptest.Job {
		return llamacpptest.Job{Model: model, Prompt: "Once upon a time", N: 32, Texts: texts}
	}

	// stories260K: HF → GGUF (f32, f16), and GGUF → HF → GGUF.
	hf := openHF(t, storiesHF)
	f32, _ := hfToGGUFFile(t, hf, Options{DType: formats.F32})
	f16, _ := hfToGGUFFile(t, hf, Options{DType: formats.F16})
	rtDir, _ := ggufToHFFolder(t, openGGUF(t, storiesGGUF), Options{}, "stories-rt", 0)
	rt, _ := hfToGGUFFile(t, openHF(t, rtDir), Options{})

	// Synthetic: the fixtures' GGUF, its GGUF → HF → GGUF, the other
	// shapes from HF, Qwen2 with biases, Llama 3 rope scaling.
	cfgs := syntheticConfigs(t)
	tinyRef := syntheticGGUF(t, cfgs[0])
	tinyDir, _ := ggufToHFFolder(t, openGGUF(t, tinyRef), Options{}, "tiny-rt", 0)
	tinyRT, _ := hfToGGUFFile(t, openHF(t, tinyDir), Options{})
	odd, _ := hfToGGUFFile(t, openHF(t, syntheticHF(t, cfgs[1], 0)), Options{})
	tied, _ := hfToGGUFFile(t, openHF(t, syntheticHF(t, cfgs[2], 0)), Options{DType: formats.F16})
	qwenDir, _ := qwen2Folder(t)
	qwen, _ := hfToGGUFFile(t, openHF(t, qwenDir), Options{})
	l3 := llama3Model(t)

	jobs := []llamacpptest.Job{story(storiesGGUF), story(f32), story(f16), story(rt),
		{Model: tinyRef, Prompt: "the cat", N: 8, Texts: texts}, {Model: tinyRT, Prompt: "the cat", N: 8, Texts: texts},
		{Model: odd, Prompt: "the cat", N: 4, Texts: texts}, {Model: tied, Prompt: "the cat", N: 4, Texts: texts},
		{Model: qwen, Prompt: "the cat", N: 4, Texts: texts}, {Model: l3, Prompt: "the cat", N: 4, Texts: texts}}
	names := []string{"stories260K.gguf", "HF → GGUF f32", "HF → GGUF f16", "GGUF → HF → GGUF",
		"tiny (fixtures)", "tiny GGUF → HF → GGUF", "odd-f16 HF → GGUF", "tied-bf16 HF → GGUF f16", "qwen2 HF → GGUF", "llama3 rope HF → GGUF"}
	res := llamacpptest.Run(t, jobs)
	for i, r := range res {
		if r.Error != "" {
			t.Errorf("%s: llama.cpp refused it: %s", names[i], r.Error)
			continue
		}
		if len(r.Generated) != jobs[i].N {
			t.Errorf("%s: generated %d tokens, want %d", names[i], len(r.Generated), jobs[i].N)
		}
		for _, s := range texts {
			if len(r.Tokens[s]) == 0 {
				t.Errorf("%s: %q tokenized to nothing", names[i], s)
			}
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("stories260K.gguf: %q", res[0].Text)
	for _, i := range []int{1, 2, 3} {
		if !reflect.DeepEqual(res[i].Generated, res[0].Generated) || !reflect.DeepEqual(res[i].Prompt, res[0].Prompt) {
			t.Errorf("%s: generates %q, the original %q", names[i], res[i].Text, res[0].Text)
		}
		if !reflect.DeepEqual(res[i].Tokens, res[0].Tokens) {
			t.Errorf("%s: tokenizes %v, the original %v", names[i], res[i].Tokens, res[0].Tokens)
		}
	}
	if !reflect.DeepEqual(res[5].Generated, res[4].Generated) || !reflect.DeepEqual(res[5].Tokens, res[4].Tokens) {
		t.Errorf("tiny round trip: %v %v, reference %v %v", res[5].Generated, res[5].Tokens, res[4].Generated, res[4].Tokens)
	}
}

// llama3Model is the Llama 3 rope-scaling fixture of TestLlama3RopeFreqs as
// a GGUF file.
func llama3Model(t *testing.T) string {
	dir := llama3Folder(t)
	p, rep := hfToGGUFFile(t, openHF(t, dir), Options{})
	if len(rep.Generated) != 1 {
		t.Fatal("no rope_freqs generated")
	}
	return p
}
