package kernels

import (
	"runtime"
	"sync"
)

// parallelRunner is a piece of parallel work: every participant calls work,
// which takes items from a shared counter until none are left, so any number
// of participants (one included) completes it.
type parallelRunner interface {
	work()
	group() *sync.WaitGroup
}

func (j *gemmJob) group() *sync.WaitGroup { return &j.wg }

// The worker pool: goroutines started on demand (and kept) that wait for
// work on poolHandoff. A call hands its work only to workers that are idle at
// that moment and does the rest itself, so calls from many goroutines at
// once neither deadlock nor oversubscribe the CPUs.
var (
	poolHandoff = make(chan parallelRunner)
	poolMu      sync.Mutex
	poolSize    int
)

// runParallel runs r on the calling goroutine and up to threads-1 workers,
// and returns when all are done.
func runParallel(r parallelRunner, threads int) {
	wg := r.group()
	for t := 1; t < threads; t++ {
		wg.Add(1)
		select {
		case poolHandoff <- r:
			continue
		default:
		}
		if !poolSpawn(r) {
			wg.Done()
			break
		}
	}
	r.work()
	wg.Wait()
}

// poolSpawn starts a new worker with r as its first work, unless the pool is at
// its limit.
func poolSpawn(r parallelRunner) bool {
	poolMu.Lock()
	defer poolMu.Unlock()
	if poolSize >= max(4*runtime.GOMAXPROCS(0), 16) {
		return false
	}
	poolSize++
	go poolWorker(r)
	return true
}

func poolWorker(r parallelRunner) {
	for {
		r.work()
		r.group().Done()
		r = <-poolHandoff
	}
}
