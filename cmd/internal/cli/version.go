package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is set at link time: -ldflags "-X github.com/qtool-dev/qtool/cmd/internal/cli.Version=v1.2.3".
var Version = "dev"

type versionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Module    string `json:"module"`
}

func newVersionCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print qtool's version",
		Args:    exactArgs(0),
		Example: "  qtool version\n  qtool version --json",
		RunE: func(cmd *cobra.Command, args []string) error {
			v := versionInfo{Version: Version, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
			if bi, ok := debug.ReadBuildInfo(); ok {
				v.Module = bi.Main.Path
				if v.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
					v.Version = bi.Main.Version
				}
			}
			if f.IO.JSON {
				return writeJSON(f.IO.Out, v)
			}
			_, err := fmt.Fprintf(f.IO.Out, "qtool %s (%s, %s/%s)\n", v.Version, v.GoVersion, v.OS, v.Arch)
			return err
		},
	}
}
