// Command qtool converts, quantizes, fine-tunes and merges LLM weights in a
// single binary. See README.md, or run `qtool --help`.
package main

import (
	"os"

	"github.com/qtool-dev/qtool/cmd/internal/cli"
)

func main() { os.Exit(int(cli.Main())) }
