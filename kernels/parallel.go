package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// parallelRunner is a piece of parallel work: every participant calls work,
// which takes items from a shared counter until none are left, so any number
// of participants (one included) completes it.
type parallelRunner interface {
	work()
	group() *sync.WaitGroup
}

func (j *gemmJob) group() *sync.WaitGroup { return &j.wg }

// The worker pool: goroutines started on demand (and kept, at most
// poolLimit) that wait for work. A call hands its work only to workers that
// are idle at that moment and does the rest itself, so calls from many
// goroutines at once neither deadlock nor oversubscribe the CPUs.
//
// Waking a parked goroutine costs tens of microseconds (a futex and the
// scheduler), as much as a small matrix-vector product, and a call pays it
// twice: for the worker, and for the caller parked in WaitGroup.Wait. So a
// worker that finished a job spins for up to poolSpin, with
// runtime.Gosched, looking for the next one before it parks on
// poolHandoff, and a caller spins as long for its helpers to finish before
// it parks. Token generation's products come back to back with short gaps,
// so hand-offs go to spinning workers and cost a channel operation; an idle
// process parks everything within poolSpin.
//
// The spinners' protocol is lock-free. A spinner adds one to spinFree
// (registered, unclaimed spinners) and polls spinHandoff. A caller claims a
// spinner by decrementing spinFree above zero, and then sends on
// spinHandoff. Spinners are interchangeable: any of them may take any sent
// task, so at every moment the spinners still looping number spinFree plus
// the tasks claimed but not yet received. A spinner leaves by taking a task,
// or by decrementing spinFree; when spinFree is zero every looping spinner
// is owed a task, so it waits for one on spinHandoff.
var (
	poolHandoff = make(chan *poolTask)     // parked workers
	spinHandoff = make(chan *poolTask, 64) // spinning workers
	spinFree    atomic.Int32
	// spinning counts the workers in their spin loop, claimed or not; at
	// most GOMAXPROCS-1, so that spinners leave a P to the callers, and
	// none at GOMAXPROCS=1.
	spinning atomic.Int32

	poolMu   sync.Mutex
	poolSize int

	// spinHandoffs counts the tasks handed to spinners (for tests).
	spinHandoffs atomic.Int64
	// poolSpinNs is poolSpin in nanoseconds; tests and benchmarks set 0 to
	// measure the pool without spinning.
	poolSpinNs atomic.Int64
	// spinLeaving, when set, is called by a spinner that timed out before
	// it takes its registration back (for tests).
	spinLeaving atomic.Pointer[func()]
)

// poolSpin bounds the time a worker spins after a job, and a caller waits
// spinning for its helpers. Chosen from the gaps between the end of one
// runParallel call and the start of the next in 1B Q8_0 token generation on
// 2 threads (2-core VM, 52k calls): 99.7% under 50 µs, 99.9% under 200 µs,
// the rest (about one per token) under 500 µs; a hand-off to a parked
// worker costs ~50-65 µs. So 200 µs catches nearly every hand-off, and an
// idle process burns at most 200 µs of CPU per worker after its last call.
const poolSpin = 200 * time.Microsecond

func init() { poolSpinNs.Store(int64(poolSpin)) }

// poolLimit is the most workers the pool keeps.
func poolLimit() int { return max(4*runtime.GOMAXPROCS(0), 16) }

// poolTask is one call of runParallel as its helpers see it.
type poolTask struct {
	r parallelRunner
	// pending counts the helpers that have not yet finished; each
	// decrements it before its Done on r's WaitGroup, so a caller that
	// saw zero will not park in Wait but for a moment, and a caller past
	// Wait may reuse the task.
	pending atomic.Int32
}

var poolTaskPool = sync.Pool{New: func() any { return new(poolTask) }}

// runParallel runs r on the calling goroutine and up to threads-1 workers,
// and returns when all are done.
func runParallel(r parallelRunner, threads int) {
	wg := r.group()
	t := poolTaskPool.Get().(*poolTask)
	t.r = r
	for i := 1; i < threads; i++ {
		wg.Add(1)
		t.pending.Add(1)
		if spinClaim() {
			spinHandoffs.Add(1)
			spinHandoff <- t // never blocks for long: a spinner is owed t
			continue
		}
		select {
		case poolHandoff <- t:
			continue
		default:
		}
		if !poolSpawn(t) {
			t.pending.Add(-1)
			wg.Done()
			break
		}
	}
	r.work()
	if t.pending.Load() != 0 && runtime.GOMAXPROCS(0) > 1 {
		// With one P the helpers run only when this goroutine parks.
		spinUntil(func() bool { return t.pending.Load() == 0 })
	}
	wg.Wait()
	t.r = nil
	poolTaskPool.Put(t)
}

// spinUntil calls runtime.Gosched (so that a goroutine readied onto this P
// runs) until done reports true or poolSpin has passed.
func spinUntil(done func() bool) {
	d := time.Duration(poolSpinNs.Load())
	if d <= 0 {
		done()
		return
	}
	start := time.Now()
	for !done() && time.Since(start) < d {
		runtime.Gosched()
	}
}

// spinClaim takes one registration from spinFree, if any is left: a
// caller claims a spinner with it, and a spinner takes its own back.
func spinClaim() bool {
	for {
		n := spinFree.Load()
		if n <= 0 {
			return false
		}
		if spinFree.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// poolSpawn starts a new worker with t as its first task, unless the pool is
// at its limit.
func poolSpawn(t *poolTask) bool {
	poolMu.Lock()
	defer poolMu.Unlock()
	if poolSize >= poolLimit() {
		return false
	}
	poolSize++
	go poolWorker(t)
	return true
}

func poolWorker(t *poolTask) {
	for {
		wg := t.r.group()
		t.r.work()
		t.pending.Add(-1)
		wg.Done()
		t = poolNext()
	}
}

// poolNext returns a worker's next task: one handed to it while it spins,
// else one from poolHandoff.
func poolNext() *poolTask {
	if !spinEnter() {
		return <-poolHandoff
	}
	spinFree.Add(1)
	var t *poolTask
	spinUntil(func() bool {
		if len(spinHandoff) == 0 {
			return false // without taking the channel's lock
		}
		select {
		case t = <-spinHandoff:
			return true
		default:
			return false
		}
	})
	if t == nil {
		if h := spinLeaving.Load(); h != nil {
			(*h)()
		}
		if !spinClaim() {
			// Every looping spinner, this one included, is claimed:
			// a caller is sending this one its task.
			t = <-spinHandoff
		}
	}
	spinning.Add(-1)
	if t != nil {
		return t
	}
	return <-poolHandoff
}

// spinEnter counts a worker into the spin loop, unless spinning is off or
// GOMAXPROCS-1 workers spin already.
func spinEnter() bool {
	if poolSpinNs.Load() <= 0 {
		return false
	}
	limit := int32(runtime.GOMAXPROCS(0) - 1)
	for {
		n := spinning.Load()
		if n >= limit {
			return false
		}
		if spinning.CompareAndSwap(n, n+1) {
			return true
		}
	}
}
