package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/formattest"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

func TestMain(m *testing.M) {
	// Re-executed as the qtool binary by the signal test.
	if os.Getenv("QTOOL_TEST_AS_MAIN") == "1" {
		os.Exit(int(Main()))
	}
	os.Exit(m.Run())
}

func TestCopyGGUFIsByteIdentical(t *testing.T) {
	for _, in := range []string{stories, filepath.Join(ggufGoldens, "kv_all_types.gguf"), filepath.Join(ggufGoldens, "tiny_llama.gguf")} {
		out := filepath.Join(t.TempDir(), "copy.gguf")
		if code, _, errOut := run(t, "copy", in, "-o", out); code != ExitOK {
			t.Fatalf("copy %s: %d %s", in, code, errOut)
		}
		a, _ := os.ReadFile(in)
		b, _ := os.ReadFile(out)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: copy differs (%d vs %d bytes)", in, len(a), len(b))
		}
	}
}

func TestCopyReshardsFolder(t *testing.T) {
	in := filepath.Join(stGoldens, "stories260K-sharded")
	out := filepath.Join(t.TempDir(), "resharded")
	code, _, errOut := run(t, "copy", in, "-o", out, "--max-shard-size", "300KB")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	a, err := safetensors.OpenFolder(in)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := safetensors.OpenFolder(out)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if d := formattest.Equal(a, b, false); d != "" {
		t.Fatal(d)
	}
	if n := len(b.Shards()); n < 4 {
		t.Errorf("%d shards, want ≥ 4 at 300KB", n)
	}
	for _, c := range []string{"config.json", "tokenizer.model", "tokenizer_config.json"} {
		x, _ := os.ReadFile(filepath.Join(in, c))
		y, err := os.ReadFile(filepath.Join(out, c))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("companion %s not copied", c)
		}
	}
	// Merge the shards back into one file.
	one := filepath.Join(t.TempDir(), "model.safetensors")
	if code, _, errOut := run(t, "copy", out, "-o", one); code != ExitOK {
		t.Fatalf("merge: %s", errOut)
	}
	c, err := safetensors.Open(one)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d := formattest.Equal(a, c, false); d != "" {
		t.Fatal(d)
	}
}

func TestCopyRefusesCrossFormat(t *testing.T) {
	code, _, _ := run(t, "copy", stories, "-o", filepath.Join(t.TempDir(), "x.safetensors"))
	if code != ExitUnsupported {
		t.Errorf("GGUF → safetensors via copy: exit %d, want %d", code, ExitUnsupported)
	}
}

// bigGGUF writes a GGUF with n MiB of tensor data.
func bigGGUF(t *testing.T, dir string, mib int) string {
	t.Helper()
	p := filepath.Join(dir, "big.gguf")
	meta := formats.NewMeta()
	meta.Set("general.architecture", formats.ValString("test"))
	data := make([]byte, mib<<20)
	ts := []formats.Tensor{{TensorInfo: formats.TensorInfo{Name: "w", DType: formats.F32, Shape: []int64{int64(mib << 18)}, Size: int64(len(data))}, Data: formats.BytesWriter(data)}}
	if err := gguf.WriteFile(context.Background(), p, meta, ts, gguf.WriteOptions{}, false); err != nil {
		t.Fatal(err)
	}
	return p
}

// A SIGTERM in the middle of a write exits 130 and leaves no output and
// no temporary file behind.
func TestInterruptLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a subprocess")
	}
	dir := t.TempDir()
	in := bigGGUF(t, dir, 8)
	outDir := filepath.Join(dir, "out")
	os.Mkdir(outDir, 0o755)
	out := filepath.Join(outDir, "copy.gguf")
	cmd := exec.Command(os.Args[0], "copy", in, "-o", out, "--debug-slow-per-mib", "250ms")
	cmd.Env = append(os.Environ(), "QTOOL_TEST_AS_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the temporary output to appear.
	deadline := time.Now().Add(20 * time.Second)
	for {
		es, _ := os.ReadDir(outDir)
		if len(es) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no temporary output appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != int(ExitInterrupted) {
		t.Fatalf("exit: %v, want %d; stderr: %s", err, ExitInterrupted, stderr.String())
	}
	if es, _ := os.ReadDir(outDir); len(es) != 0 {
		t.Fatalf("left behind after interrupt: %v", es[0].Name())
	}
}

func TestCopySafetensorsIsByteIdentical(t *testing.T) {
	in := filepath.Join(stGoldens, "all_dtypes.safetensors")
	code, out, errOut := run(t, "copy", in, "-o", "-")
	want, _ := os.ReadFile(in)
	if code != ExitOK || !bytes.Equal([]byte(out), want) {
		t.Fatalf("copy -o - of all_dtypes.safetensors: exit %d, identical=%v: %s", code, bytes.Equal([]byte(out), want), errOut)
	}
	dst := filepath.Join(t.TempDir(), "x.safetensors")
	if code, _, errOut := run(t, "copy", in, "-o", dst); code != ExitOK {
		t.Fatal(errOut)
	}
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got, want) {
		t.Fatal("copy to file differs")
	}
}
