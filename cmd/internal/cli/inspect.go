package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/formats/summary"
)

// InspectOptions are the inputs of `qtool inspect`.
type InspectOptions struct {
	IO      *IOStreams
	Path    string
	Tensors string // name filter: glob, or regexp when it has ^$()|+\
	NoMeta  bool
	MaxText int // cut strings in text mode to this many characters
}

func newInspectCmd(f *Factory, runF func(context.Context, *InspectOptions) error) *cobra.Command {
	opts := &InspectOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "inspect PATH",
		Short: "Show a model file's format, metadata, tensors and totals",
		Long: `Inspect reads only the header of a GGUF file, a safetensors file or a Hugging
Face model folder (sharded or not) and prints its format, metadata, tensor
table (name, dtype, shape, bytes, offset) and totals: parameters, bytes, and
bits per parameter by dtype and overall. It is instant on multi-GB files.

Text mode summarises long arrays and strings; --json prints everything.
--tensors filters the table and the totals: a glob ("blk.*.attn_q.weight"),
or a regular expression when the pattern holds any of ^ $ ( ) | + \.`,
		Example: `  qtool inspect model.gguf
  qtool inspect ./TinyLlama-1.1B --tensors 'model.layers.0.*'
  qtool inspect model.gguf --tensors '^blk\.(0|1)\.' --json | jq '.totals'`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runInspect(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Tensors, "tensors", "", "only tensors whose name matches this glob or regexp")
	cmd.Flags().BoolVar(&opts.NoMeta, "no-metadata", false, "omit the metadata section")
	cmd.Flags().IntVar(&opts.MaxText, "max-text", 80, "cut long strings to this many characters in text mode (0: never)")
	return cmd
}

func runInspect(ctx context.Context, opts *InspectOptions) error {
	filter, err := summary.ParseFilter(opts.Tensors)
	if err != nil {
		return &FlagError{Err: err}
	}
	if err := inputExists(opts.Path); err != nil {
		return err
	}
	src, format, err := detect.Open(opts.Path, detect.Options{NestedArrays: true})
	if err != nil {
		return err
	}
	defer src.Close()
	rep := summary.Build(src, opts.Path, string(format), detect.Details(src), filter)
	if opts.NoMeta {
		rep.Metadata = []summary.Entry{}
	}
	if opts.IO.JSON {
		return writeJSON(opts.IO.Out, rep)
	}
	return printInspect(opts.IO.Out, rep, opts)
}

func printInspect(w io.Writer, r summary.Report, opts *InspectOptions) error {
	fmt.Fprintf(w, "path:    %s\n", r.Path)
	fmt.Fprintf(w, "format:  %s", r.Format)
	for _, k := range sortedKeys(r.Details) {
		if k == "config" || k == "companions" || k == "shards" {
			continue
		}
		fmt.Fprintf(w, ", %s %v", strings.ReplaceAll(k, "_", " "), r.Details[k])
	}
	fmt.Fprintln(w)
	if sh, ok := r.Details["shards"].([]string); ok && len(sh) > 0 {
		fmt.Fprintf(w, "shards:  %s\n", strings.Join(sh, ", "))
	}
	if c, ok := r.Details["companions"].([]string); ok && len(c) > 0 {
		fmt.Fprintf(w, "files:   %s\n", strings.Join(c, ", "))
	}
	if !opts.NoMeta {
		fmt.Fprintf(w, "\nmetadata (%d %s):\n", len(r.Metadata), plural(len(r.Metadata), "key", "keys"))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, e := range r.Metadata {
			typ := e.Type
			if e.ElementType != "" {
				typ = fmt.Sprintf("%s[%s]", e.Type, e.ElementType)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.Key, typ, summary.Text(e.Raw(), opts.MaxText))
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\ntensors (%d):\n", len(r.Tensors))
	nameW, typeW, shapeW := len("name"), len("dtype"), len("shape")
	for _, t := range r.Tensors {
		nameW = max(nameW, len(t.Name))
		typeW = max(typeW, len(t.DType))
		shapeW = max(shapeW, len(shapeString(t.Shape)))
	}
	fmt.Fprintf(w, "  %-*s  %-*s  %-*s  %12s  %12s\n", nameW, "name", typeW, "dtype", shapeW, "shape", "bytes", "offset")
	for _, t := range r.Tensors {
		fmt.Fprintf(w, "  %-*s  %-*s  %-*s  %12d  %12d\n", nameW, t.Name, typeW, t.DType, shapeW, shapeString(t.Shape), t.Bytes, t.Offset)
	}
	fmt.Fprintf(w, "\ntotals:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  dtype\ttensors\tparameters\tbytes\tbits/param\t\n")
	for _, d := range r.Totals.ByDType {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%.3f\t\n", d.DType, d.Tensors, human(d.Params, false), human(d.Bytes, true), d.BitsPerParam)
	}
	fmt.Fprintf(tw, "  all\t%d\t%s\t%s\t%.3f\t\n", r.Totals.Tensors, human(r.Totals.Params, false), human(r.Totals.Bytes, true), r.Totals.BitsPerParam)
	return tw.Flush()
}

func shapeString(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// human prints a count with its exact value and a readable scale.
func human(n int64, bytes bool) string {
	units := []string{"", "K", "M", "G", "T"}
	base := 1000.0
	if bytes {
		units = []string{"B", "KiB", "MiB", "GiB", "TiB"}
		base = 1024
	}
	f := float64(n)
	i := 0
	for f >= base && i < len(units)-1 {
		f /= base
		i++
	}
	if i == 0 {
		if bytes {
			return fmt.Sprintf("%d B", n)
		}
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d (%.2f %s)", n, f, units[i])
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
