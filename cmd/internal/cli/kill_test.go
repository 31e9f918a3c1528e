package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/qtool-dev/qtool/train"
)

// killTotal is the number of optimizer steps of the runs killed below.
const killTotal = 10

// killArgs is the run the SIGKILL and SIGINT tests interrupt: stories260K,
// dropout (RNG state), a warmup and a cosine schedule (step number), small
// enough for a step to take some milliseconds.
func killArgs() []string {
	return []string{"finetune", "--model", stories, "--data", shakespeareData, "--max-steps", strconv.Itoa(killTotal),
		"--seq-len", "96", "--batch", "2", "--dropout", "0.1", "--warmup", "2", "--seed", "11", "-t", "1", "--json"}
}

// startQtool starts the test binary as qtool with args; the returned
// scanner reads its stdout line by line.
func startQtool(t *testing.T, args []string) (*exec.Cmd, *bufio.Scanner, *bytes.Buffer, io.ReadCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "QTOOL_TEST_AS_MAIN=1")
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A run that hangs is killed; the test then fails on its exit status.
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	t.Cleanup(func() { timer.Stop() })
	return cmd, bufio.NewScanner(stdout), stderr, stdout
}

// signalAtStep runs qtool with args, waits for the --json line of step k,
// then for wait to return, sends sig and returns the exit status. It fails
// the test when the run ends before step k.
func signalAtStep(t *testing.T, args []string, k int, wait func(), sig os.Signal) *os.ProcessState {
	t.Helper()
	cmd, sc, stderr, stdout := startQtool(t, args)
	sent := false
	for sc.Scan() {
		var m struct {
			Step *int `json:"step"`
			Eval bool `json:"eval"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Step != nil && !m.Eval && *m.Step == k {
			wait()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			sent = true
			break
		}
	}
	io.Copy(io.Discard, stdout)
	cmd.Wait()
	if !sent {
		t.Fatalf("%v: no step %d line before the run ended (%v): %s", args, k, cmd.ProcessState, stderr)
	}
	return cmd.ProcessState
}

// checkpointAt returns a wait for signalAtStep: until the checkpoint in
// dir is at step k (5 s at most).
func checkpointAt(dir string, k int) func() {
	return func() {
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
			if c, err := train.LoadCheckpoint(dir); err == nil && c.Step >= k {
				return
			}
		}
	}
}

// adapterBytes reads the PEFT adapter weights of the output folder out.
func adapterBytes(t *testing.T, out string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFinetuneSIGKILLResume: runs checkpointing every step are killed with
// SIGKILL at random steps (seeded, so reproducible) and at random moments
// within the step, checkpoint writes included, then continued with
// --resume alone, killed once more, and resumed to the end: the adapter is
// byte-identical to the uninterrupted run's.
func TestFinetuneSIGKILLResume(t *testing.T) {
	if testing.Short() || runtime.GOOS == "windows" {
		t.Skip("spawns and kills subprocesses")
	}
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref")
	if code, _, errOut := run(t, append(killArgs(), "-o", ref)...); code != ExitOK {
		t.Fatalf("uninterrupted run: exit %d: %s", code, errOut)
	}
	want := adapterBytes(t, ref)
	for _, seed := range []uint64{1, 2, 3, 4} {
		r := rand.New(rand.NewPCG(seed, 0x6b696c6c))
		out := filepath.Join(dir, "o"+strconv.FormatUint(seed, 10))
		ck := out + ".checkpoint"
		// The first kill comes after the line of step 2 or later, when the
		// checkpoint of the step before is complete: 0–3 ms after it (in
		// the step's checkpoint write, mostly), or once the checkpoint of
		// the step is in place (in the next step's work). Each kill leaves
		// at least two steps to run, so that it comes before the run ends.
		k := 2 + r.IntN(killTotal-4)
		args := append(killArgs(), "-o", out, "--save-every", "1")
		for kills := 0; kills < 2 && k <= killTotal-2; kills++ {
			delay := time.Duration(r.IntN(4)) * time.Millisecond
			wait := func() { time.Sleep(delay) }
			when := fmt.Sprintf("+%v", delay)
			if r.IntN(3) == 0 {
				wait, when = checkpointAt(ck, k), "its checkpoint"
			}
			st := signalAtStep(t, args, k, wait, syscall.SIGKILL)
			if st.Exited() {
				t.Fatalf("seed %d: run exited (%v) instead of being killed at step %d", seed, st, k)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatalf("seed %d: killed run wrote %s", seed, out)
			}
			c, err := train.LoadCheckpoint(ck)
			if err != nil {
				t.Fatalf("seed %d: killed after step %d (%s): %v", seed, k, when, err)
			}
			t.Logf("seed %d: killed after step %d (%s): checkpoint at step %d", seed, k, when, c.Step)
			args = []string{"finetune", "--resume", ck, "--json"}
			k += 1 + r.IntN(max(killTotal-1-k, 1))
		}
		if code, _, errOut := run(t, "finetune", "--resume", ck); code != ExitOK {
			t.Fatalf("seed %d: resume exit %d: %s", seed, code, errOut)
		}
		if got := adapterBytes(t, out); !bytes.Equal(got, want) {
			t.Errorf("seed %d: resumed adapter differs from the uninterrupted run", seed)
		}
	}
}

// TestFinetuneSignalCheckpoint: SIGINT (and SIGTERM) in the middle of a run
// without --save-every exits 130, writes no adapter, leaves a checkpoint,
// and --resume from it gives the uninterrupted run's adapter.
func TestFinetuneSignalCheckpoint(t *testing.T) {
	if testing.Short() || runtime.GOOS == "windows" {
		t.Skip("spawns and signals subprocesses")
	}
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref")
	if code, _, errOut := run(t, append(killArgs(), "-o", ref)...); code != ExitOK {
		t.Fatalf("uninterrupted run: exit %d: %s", code, errOut)
	}
	want := adapterBytes(t, ref)
	for i, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		out := filepath.Join(dir, "o"+strconv.Itoa(i))
		st := signalAtStep(t, append(killArgs(), "-o", out), 3+2*i, func() {}, sig)
		if st.ExitCode() != int(ExitInterrupted) {
			t.Fatalf("%v: exit %v, want %d", sig, st, ExitInterrupted)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v: interrupted run wrote %s", sig, out)
		}
		ck := out + ".checkpoint"
		if _, err := os.Stat(filepath.Join(ck, "state.json")); err != nil {
			t.Fatalf("%v: no checkpoint: %v", sig, err)
		}
		if code, _, errOut := run(t, "finetune", "--resume", ck); code != ExitOK {
			t.Fatalf("%v: resume exit %d: %s", sig, code, errOut)
		}
		if got := adapterBytes(t, out); !bytes.Equal(got, want) {
			t.Errorf("%v: resumed adapter differs from the uninterrupted run", sig)
		}
	}
}
