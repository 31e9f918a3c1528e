package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/outfile"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

// CopyOptions are the inputs of `qtool copy`.
type CopyOptions struct {
	IO           *IOStreams
	In, Out      string
	Force        bool
	MaxShardSize string
	Alignment    int64
	slowPerMB    time.Duration // hidden test hook: sleep per MiB written
}

func newCopyCmd(f *Factory, runF func(context.Context, *CopyOptions) error) *cobra.Command {
	opts := &CopyOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "copy IN -o OUT",
		Short: "Re-write a model in its own container format (re-shard, re-align, stream)",
		Long: `Copy re-writes a GGUF file as GGUF, or safetensors (a file or a Hugging Face
folder) as safetensors, tensor by tensor with memory bounded by one tensor.
Tensor bytes, names, dtypes, shapes and metadata are kept exactly; the layout
is qtool's canonical one (deterministic order, padding and header).

OUT is a file (.gguf, .safetensors), a folder (Hugging Face layout, sharded
with --max-shard-size; tokenizer and config files are copied along), or "-"
to stream a single file to stdout. Types qtool cannot compute on (any ggml
block type) are copied as they are. Converting between GGUF and safetensors
(with tensor renaming) is 'qtool convert'.

The output appears only when complete; an existing output is kept unless
--force.`,
		Example: `  qtool copy ./Llama-3.2-1B -o ./Llama-3.2-1B-2GB --max-shard-size 2GB
  qtool copy ./model-folder -o model.safetensors
  qtool copy model.gguf -o - | sha256sum`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.In = args[0]
			if opts.Out == "" {
				return flagErrorf("missing -o OUT")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runCopy(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Out, "output", "o", "", "output file, folder, or - for stdout")
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "replace an existing output")
	cmd.Flags().StringVar(&opts.MaxShardSize, "max-shard-size", "", "split safetensors output into shards of at most this size (e.g. 5GB, 500MB, 2GiB)")
	cmd.Flags().Int64Var(&opts.Alignment, "alignment", 0, "GGUF data alignment (default: keep the input's)")
	cmd.Flags().DurationVar(&opts.slowPerMB, "debug-slow-per-mib", 0, "testing: pause this long per MiB written")
	cmd.Flags().MarkHidden("debug-slow-per-mib")
	return cmd
}

func runCopy(ctx context.Context, opts *CopyOptions) error {
	var shard int64
	if opts.MaxShardSize != "" {
		v, err := safetensors.ParseSize(opts.MaxShardSize)
		if err != nil {
			return &FlagError{Err: fmt.Errorf("--max-shard-size: %w", err)}
		}
		shard = v
	}
	if err := inputExists(opts.In); err != nil {
		return err
	}
	src, inFormat, err := detect.Open(opts.In, detect.Options{})
	if err != nil {
		return err
	}
	defer src.Close()

	outFolder := !isStdout(opts.Out) && (shard > 0 || isDirTarget(opts.Out))
	inST := inFormat == detect.Safetensors || inFormat == detect.HFFolder
	switch {
	case inFormat == detect.GGUF && (outFolder || strings.HasSuffix(opts.Out, ".safetensors")):
		return &InputError{Err: fmt.Errorf("%s is GGUF: copy keeps the container; use 'qtool convert' for GGUF → safetensors: %w", opts.In, formats.ErrUnsupported)}
	case inST && strings.HasSuffix(opts.Out, ".gguf"):
		return &InputError{Err: fmt.Errorf("%s is safetensors: copy keeps the container; use 'qtool convert' for safetensors → GGUF: %w", opts.In, formats.ErrUnsupported)}
	}

	ts, total := copyTensors(src, opts)
	report, finish := opts.IO.progress("copy", true)
	defer finish()
	ts = withProgress(ts, total, report, opts.slowPerMB)

	switch {
	case isStdout(opts.Out):
		if inFormat == detect.GGUF {
			err = gguf.Write(ctx, opts.IO.Out, src.Meta(), ts, ggufWriteOptions(src, opts))
		} else {
			err = safetensors.WriteMeta(ctx, opts.IO.Out, src.Meta(), ts)
		}
		return err
	case inFormat == detect.GGUF:
		err = gguf.WriteFile(ctx, opts.Out, src.Meta(), ts, ggufWriteOptions(src, opts), opts.Force)
	case outFolder:
		err = copyToFolder(ctx, src, ts, opts, shard)
	default:
		err = writeSafetensorsFile(ctx, opts.Out, src.Meta(), ts, opts.Force)
	}
	if err != nil {
		return err
	}
	finish()
	return printCopySummary(opts, inFormat, len(ts), total)
}

func ggufWriteOptions(src formats.Source, opts *CopyOptions) gguf.WriteOptions {
	return gguf.WriteOptions{Alignment: opts.Alignment}
}

// isDirTarget: an existing folder, a path ending in a separator, or a name
// without a file extension is a folder output.
func isDirTarget(p string) bool {
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return true
	}
	if strings.HasSuffix(p, string(filepath.Separator)) {
		return true
	}
	return filepath.Ext(p) == ""
}

func copyTensors(src formats.Source, opts *CopyOptions) ([]formats.Tensor, int64) {
	var ts []formats.Tensor
	var total int64
	for _, ti := range src.Tensors() {
		ti := ti
		ts = append(ts, formats.Tensor{TensorInfo: ti, Data: lazySection{src: src, name: ti.Name}})
		total += ti.Size
	}
	return ts, total
}

// lazySection opens a tensor's section only when it is written.
type lazySection struct {
	src  formats.Source
	name string
}

func (l lazySection) WriteTo(w io.Writer) (int64, error) {
	sec, err := l.src.Section(l.name)
	if err != nil {
		return 0, err
	}
	return io.Copy(w, sec)
}

func stringMeta(m *formats.Meta) map[string]string {
	out := map[string]string{}
	for _, kv := range m.KVs() {
		if s, ok := kv.Value.V.(string); ok {
			out[kv.Key] = s
		}
	}
	return out
}

func writeSafetensorsFile(ctx context.Context, path string, meta *formats.Meta, ts []formats.Tensor, force bool) error {
	f, err := outfile.Create(path, outfile.Options{Force: force})
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := safetensors.WriteMeta(ctx, f, meta, ts); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

func copyToFolder(ctx context.Context, src formats.Source, ts []formats.Tensor, opts *CopyOptions, shard int64) error {
	d, err := outfile.CreateDir(opts.Out, outfile.Options{Force: opts.Force})
	if err != nil {
		return err
	}
	defer d.Abort()
	if _, err := safetensors.WriteFolder(ctx, d.Path(), stringMeta(src.Meta()), ts, safetensors.FolderOptions{MaxShardSize: shard}); err != nil {
		return err
	}
	if err := copyCompanions(src, d.Path(), nil); err != nil {
		return err
	}
	return d.Commit()
}

// copyCompanions copies a Hugging Face folder's non-weight files
// (tokenizer, generation config, …) into dir; config.json goes through
// rewrite when it is not nil. Other sources have no companions.
func copyCompanions(src formats.Source, dir string, rewrite func([]byte) ([]byte, error)) error {
	fo, ok := src.(*safetensors.Folder)
	if !ok {
		return nil
	}
	for _, name := range fo.Companions() {
		if name != safetensors.ConfigFile || rewrite == nil {
			if err := copyFile(filepath.Join(fo.Dir(), name), filepath.Join(dir, name)); err != nil {
				return err
			}
			continue
		}
		cfg, err := rewrite(fo.Config())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), cfg, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func printCopySummary(opts *CopyOptions, in detect.Format, n int, total int64) error {
	if opts.IO.JSON {
		return writeJSON(opts.IO.Out, map[string]any{"input": opts.In, "input_format": in, "output": opts.Out, "tensors": n, "bytes": total})
	}
	opts.IO.infof("copied %d tensors (%s) from %s to %s\n", n, human(total, true), opts.In, opts.Out)
	return nil
}
