package kernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countJob is a parallelRunner whose items record how often each was done.
type countJob struct {
	items int
	next  atomic.Int64
	hits  []atomic.Int32
	// enter counts the participants that called work; item 0 waits (up to
	// a timeout) until want of them have, when want > 0.
	enter atomic.Int32
	want  int32
	wg    sync.WaitGroup
}

func newCountJob(items int) *countJob {
	return &countJob{items: items, hits: make([]atomic.Int32, items)}
}

func (j *countJob) group() *sync.WaitGroup { return &j.wg }

func (j *countJob) work() {
	j.enter.Add(1)
	for {
		it := int(j.next.Add(1) - 1)
		if it >= j.items {
			return
		}
		if it == 0 && j.want > 0 {
			deadline := time.Now().Add(5 * time.Second)
			for j.enter.Load() < j.want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Microsecond)
			}
		}
		j.hits[it].Add(1)
	}
}

// check reports any item not done exactly once.
func (j *countJob) check() error {
	for i := range j.hits {
		if n := j.hits[i].Load(); n != 1 {
			return fmt.Errorf("item %d of %d done %d times", i, j.items, n)
		}
	}
	return nil
}

func setProcs(t testing.TB, n int) {
	prev := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
}

func setSpin(t testing.TB, d time.Duration) {
	prev := poolSpinNs.Swap(int64(d))
	t.Cleanup(func() { poolSpinNs.Store(prev) })
}

// waitParked waits until no worker spins: workers that started spinning
// under an earlier test's setting keep it until they time out.
func waitParked(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for spinning.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still spin after 10 s", spinning.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

func poolWorkers() int {
	poolMu.Lock()
	defer poolMu.Unlock()
	return poolSize
}

// hammer runs calls of runParallel from goroutines at once, with random
// thread counts and job sizes, and fails unless every item of every job is
// done exactly once. each runs after every call.
func hammer(t *testing.T, goroutines, calls int, each func() error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range calls {
				j := newCountJob(1 + r.IntN(300))
				runParallel(j, 1+r.IntN(8))
				if err := j.check(); err != nil {
					errs <- err
					return
				}
				if each != nil {
					if err := each(); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestRunParallelConcurrent(t *testing.T) {
	// Pool workers stay, and the pool is at most 16 at GOMAXPROCS <= 4.
	base := runtime.NumGoroutine() - poolWorkers()
	for _, procs := range []int{2, 4, 3} {
		t.Run(fmt.Sprint("procs=", procs), func(t *testing.T) {
			setProcs(t, procs)
			hammer(t, 12, 600, nil)
		})
	}
	if n := poolWorkers(); n > 16 {
		t.Errorf("pool has %d workers, limit 16", n)
	}
	// The test's goroutines have returned but may not have exited yet.
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(time.Second); n > base+16 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > base+16 {
		t.Errorf("%d goroutines, %d before the test plus a pool of at most 16", n, base)
	}
}

// TestRunParallelNoSpin runs the pool without spinning, the path every
// hand-off takes when no worker spins.
func TestRunParallelNoSpin(t *testing.T) {
	setProcs(t, 2)
	setSpin(t, 0)
	hammer(t, 8, 200, nil)
}

func TestRunParallelGOMAXPROCS1(t *testing.T) {
	setProcs(t, 1)
	waitParked(t)
	before := spinHandoffs.Load()
	hammer(t, 6, 200, func() error {
		if n := spinning.Load(); n != 0 {
			return fmt.Errorf("%d workers spin with GOMAXPROCS=1", n)
		}
		return nil
	})
	if n := spinHandoffs.Load() - before; n != 0 {
		t.Errorf("%d hand-offs to spinners with GOMAXPROCS=1", n)
	}
	// One goroutine calling back to back, each call needing a worker.
	for range 50 {
		j := newCountJob(4)
		j.want = 2
		runParallel(j, 2)
		if err := j.check(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunParallelSpinnerHandoff hands a job to a worker that is spinning
// after its previous one, and checks that both participants ran it.
func TestRunParallelSpinnerHandoff(t *testing.T) {
	setProcs(t, 2)
	// Long enough for the test goroutine to see the spinner under -race.
	setSpin(t, 50*time.Millisecond)
	handed := 0
	for attempt := 0; attempt < 20 && handed < 5; attempt++ {
		warm := newCountJob(64)
		warm.want = 2
		runParallel(warm, 2)
		if err := warm.check(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Millisecond)
		for spinFree.Load() == 0 && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		before := spinHandoffs.Load()
		j := newCountJob(64)
		j.want = 2
		runParallel(j, 2)
		if err := j.check(); err != nil {
			t.Fatal(err)
		}
		if n := j.enter.Load(); n != 2 {
			t.Fatalf("%d participants, want 2", n)
		}
		if spinHandoffs.Load() > before {
			handed++
		}
	}
	if handed == 0 {
		t.Fatal("no job was handed to a spinning worker")
	}
}

// TestRunParallelSpinRace makes spinners time out constantly, so that
// callers claim spinners that are leaving: a claimed spinner must still take
// the task it is owed, or its caller waits for it forever.
func TestRunParallelSpinRace(t *testing.T) {
	setProcs(t, 3)
	setSpin(t, 2*time.Microsecond)
	done := make(chan error, 1)
	go func() {
		for i := range 20000 {
			j := newCountJob(1 + i%3)
			runParallel(j, 1+i%3)
			if err := j.check(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("calls stalled: a hand-off to a spinner was lost")
	}
}

// TestRunParallelClaimWhileLeaving claims a spinner at the moment it times
// out: it must take the task it is owed rather than park.
func TestRunParallelClaimWhileLeaving(t *testing.T) {
	setProcs(t, 2)
	setSpin(t, time.Millisecond)
	waitParked(t) // then at most one worker spins at GOMAXPROCS=2
	leaving, claimed := make(chan struct{}), make(chan struct{})
	var once, release sync.Once
	hook := func() {
		once.Do(func() {
			leaving <- struct{}{}
			<-claimed
		})
	}
	spinLeaving.Store(&hook)
	// Whatever happens, let the spinner go: a spinner held in the hook is
	// registered and would be claimed by later calls.
	t.Cleanup(func() {
		spinLeaving.Store(nil)
		release.Do(func() { close(claimed) })
	})
	runParallel(newCountJob(8), 2)
	select {
	case <-leaving:
	case <-time.After(10 * time.Second):
		t.Fatal("no worker spun after a job")
	}
	// The spinner waits in the hook, still registered.
	if n := spinFree.Load(); n != 1 {
		t.Fatalf("%d spinners registered, want 1", n)
	}
	j := newCountJob(8)
	j.want = 2
	done := make(chan struct{})
	go func() {
		runParallel(j, 2)
		close(done)
	}()
	for spinFree.Load() != 0 {
		runtime.Gosched()
	}
	release.Do(func() { close(claimed) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the claimed spinner never took its task")
	}
	if err := j.check(); err != nil {
		t.Fatal(err)
	}
	if n := j.enter.Load(); n != 2 {
		t.Fatalf("%d participants, want 2", n)
	}
}

// TestRunParallelIdleParks checks that workers stop spinning once the calls
// stop: an idle process burns no CPU.
func TestRunParallelIdleParks(t *testing.T) {
	setProcs(t, 2)
	waitParked(t)
	for range 20 {
		j := newCountJob(16)
		runParallel(j, 2)
	}
	time.Sleep(50 * time.Millisecond)
	if n, f := spinning.Load(), spinFree.Load(); n != 0 || f != 0 {
		t.Fatalf("50 ms after the last call: %d workers spinning, %d registered", n, f)
	}
}

// pairJob is a job of two trivial items that completes only when a second
// participant joins: a call of it times the hand-off to a worker and the
// wait for it, nothing else. The first item waits without yielding, as a
// kernel computing would (a yield would run a worker readied onto the
// caller's P at once), so GOMAXPROCS must be 2 or more.
type pairJob struct {
	next, enter atomic.Int32
	wg          sync.WaitGroup
}

func (j *pairJob) group() *sync.WaitGroup { return &j.wg }

func (j *pairJob) work() {
	j.enter.Add(1)
	for j.next.Add(1) == 1 {
		for j.enter.Load() < 2 {
		}
	}
}

// BenchmarkRunParallelHandoff times back-to-back calls of a job that needs
// two participants: the round trip of handing it to a worker and waiting
// for the worker to finish, with the workers spinning between calls
// (spin=on) or parked (spin=off, the pool before spinning).
//
//	go test -run '^$' -bench RunParallel -count 6 ./kernels
func BenchmarkRunParallelHandoff(b *testing.B) {
	for _, spin := range []bool{false, true} {
		b.Run(fmt.Sprint("spin=", onOff(spin)), func(b *testing.B) {
			if !spin {
				setSpin(b, 0)
			}
			if runtime.GOMAXPROCS(0) < 2 {
				b.Skip("needs GOMAXPROCS >= 2")
			}
			j := new(pairJob)
			for b.Loop() {
				j.next.Store(0)
				j.enter.Store(0)
				runParallel(j, 2)
			}
		})
	}
}

// BenchmarkRunParallelMatVec times MatVecT with one row of A against Q8_0
// matrices of the sizes of a 1B model's projections, on 1 and 2 threads,
// with and without spinning workers.
func BenchmarkRunParallelMatVec(b *testing.B) {
	const k = 2048
	for _, n := range []int{512, 2048} {
		w, err := NewQ8_0Matrix(randQ8_0(n, k), n, k)
		if err != nil {
			b.Fatal(err)
		}
		a := make([]float32, k)
		r := rand.New(rand.NewPCG(5, 6))
		for i := range a {
			a[i] = float32(r.NormFloat64())
		}
		c := make([]float32, n)
		for _, threads := range []int{1, 2} {
			for _, spin := range []bool{false, true} {
				name := fmt.Sprintf("%dx%d/t=%d/spin=%s", n, k, threads, onOff(spin))
				b.Run(name, func(b *testing.B) {
					if !spin {
						setSpin(b, 0)
					}
					for b.Loop() {
						MatVecT(c, n, a, k, 1, w, false, threads)
					}
				})
			}
		}
	}
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// randQ8_0 returns n·k/32 Q8_0 blocks of random codes with a scale of
// 1/16.
func randQ8_0(n, k int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), uint64(k)))
	data := make([]byte, n*k/ggmlQK*q8_0Bytes)
	for i := 0; i < len(data); i += q8_0Bytes {
		data[i], data[i+1] = 0x00, 0x2c // fp16 0.0625, little-endian
		for j := 2; j < q8_0Bytes; j++ {
			data[i+j] = byte(r.Uint32())
		}
	}
	return data
}
