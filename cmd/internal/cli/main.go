// Package cli is qtool's thin command layer: cobra commands that bind
// flags to option structs, open inputs, call one library entry point, write
// through formats/outfile and print a summary as text or --json. Exit
// codes are decided in exitCodeFor.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/qtool-dev/qtool/formats/outfile"
)

// Main runs qtool with the process's arguments and streams and returns the
// exit code.
func Main() ExitCode {
	return Run(context.Background(), os.Args[1:], System(), true)
}

// Run executes one qtool invocation. With handleSignals, SIGINT and
// SIGTERM cancel the context and remove every uncommitted output; a second
// signal exits at once.
func Run(ctx context.Context, args []string, io *IOStreams, handleSignals bool) ExitCode {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var interrupted bool
	if handleSignals {
		sigs := make(chan os.Signal, 2)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		go func() {
			if _, ok := <-sigs; !ok {
				return
			}
			interrupted = true
			cancel()
			outfile.AbortAll()
			if _, ok := <-sigs; ok {
				outfile.AbortAll()
				os.Exit(int(ExitInterrupted))
			}
		}()
	}
	f := &Factory{IO: io}
	root := newRootCmd(f)
	root.SetArgs(args)
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	err := root.ExecuteContext(ctx)
	if err == nil && interrupted {
		err = errInterrupted
	}
	if err == nil {
		return ExitOK
	}
	if interrupted && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: %v", errInterrupted, err)
	}
	code := exitCodeFor(err)
	if isCobraUsageError(err) {
		code = ExitUsage
	}
	fmt.Fprintf(io.ErrOut, "qtool: %v\n", err)
	if code == ExitUsage {
		fmt.Fprintln(io.ErrOut, "Run 'qtool --help' for usage.")
	}
	if io.JSON {
		writeJSON(io.Out, map[string]any{"error": err.Error(), "exit_code": int(code)})
	}
	return code
}
