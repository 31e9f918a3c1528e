// Package bnbtest writes bitsandbytes Hugging Face folders for tests in
// several packages (llama, train): a source folder quantized by
// quantize.Plan, and the result dequantized back to f32 by quantize.Dequant,
// each written as `qtool quantize` and `qtool dequantize` write them.
package bnbtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/detect"
	"github.com/qtool-dev/qtool/formats/safetensors"
	"github.com/qtool-dev/qtool/quantize"
)

// WriteHF writes a planned output as a Hugging Face folder dir with the
// source folder's other files (config.json rewritten by the plan).
func WriteHF(t testing.TB, src formats.Source, out *quantize.Output, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{}
	for _, kv := range out.Meta.KVs() {
		if s, ok := kv.Value.V.(string); ok {
			meta[kv.Key] = s
		}
	}
	if _, err := safetensors.WriteFolder(context.Background(), dir, meta, out.Tensors, safetensors.FolderOptions{}); err != nil {
		t.Fatal(err)
	}
	fo, ok := src.(*safetensors.Folder)
	if !ok {
		t.Fatalf("bnbtest: the source is a %T, not a Hugging Face folder", src)
	}
	for _, name := range fo.Companions() {
		b, err := os.ReadFile(filepath.Join(fo.Dir(), name))
		if err != nil {
			t.Fatal(err)
		}
		if name == safetensors.ConfigFile {
			if b, err = out.RewriteConfig(b); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Quantize quantizes the folder srcDir with cfg into a new temporary
// folder and returns its path; edit, when not nil, may then change its
// files.
func Quantize(t testing.TB, srcDir string, cfg quantize.Config, edit func(t testing.TB, dir string)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "quant")
	src, _, err := detect.Open(srcDir, detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := quantize.Plan(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	WriteHF(t, src, out, dir)
	if edit != nil {
		edit(t, dir)
	}
	return dir
}

// Folders is Quantize plus the quantized folder dequantized to f32.
func Folders(t testing.TB, srcDir string, cfg quantize.Config, edit func(t testing.TB, dir string)) (quant, deq string) {
	t.Helper()
	quant = Quantize(t, srcDir, cfg, edit)
	deq = filepath.Join(t.TempDir(), "f32")
	q, _, err := detect.Open(quant, detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	back, err := quantize.Dequant(q, quantize.DequantConfig{DType: formats.F32})
	if err != nil {
		t.Fatal(err)
	}
	WriteHF(t, q, back, deq)
	return quant, deq
}
