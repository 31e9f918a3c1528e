package tokenizer

import (
	"fmt"
	"os"
	"testing"
)

// BenchmarkLoad measures FromHFFolder on the real tokenizer.json files and
// FromGGUF on the OpenLLaMA vocabulary.
func BenchmarkLoad(b *testing.B) {
	for _, name := range hfNames {
		dir := fmt.Sprintf(lenmlFmt, name)
		b.Run(name, func(b *testing.B) {
			if _, err := os.Stat(dir); err != nil {
				b.Skipf("not installed (install: %s)", nodeInstall)
			}
			for b.Loop() {
				if _, err := FromHFFolder(dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("openllama-gguf", func(b *testing.B) {
		for b.Loop() {
			if _, err := FromGGUF(goldenVocabs[1].gguf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
