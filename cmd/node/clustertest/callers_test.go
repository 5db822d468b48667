package clustertest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dkv/internal/historytest"
)

// callers run history callers, each on a goroutine of its own, until
// halted; the history tests move their faults along by the calls made.
type callers struct {
	stop atomic.Bool
	done atomic.Int64 // calls made
	wg   sync.WaitGroup
}

// startCallers starts n callers, caller w as build(w) makes it.
func startCallers(n int, build func(w int) historytest.Caller) *callers {
	cs := &callers{}
	for w := range n {
		caller := build(w)
		cs.wg.Add(1)
		go func() {
			defer cs.wg.Done()
			for req := 0; !cs.stop.Load(); req++ {
				caller.Call(req)
				cs.done.Add(1)
			}
		}()
	}
	return cs
}

// progress waits until the callers have made n more calls, within
// waitMax.
func (cs *callers) progress(t *testing.T, n int64) {
	t.Helper()
	target := cs.done.Load() + n
	deadline := time.Now().Add(waitMax)
	for cs.done.Load() < target {
		if time.Now().After(deadline) {
			cs.stop.Store(true)
			t.Fatalf("only %d of %d calls made after %v", cs.done.Load(), target, waitMax)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// halt stops the callers and waits for their last calls to end.
func (cs *callers) halt() {
	cs.stop.Store(true)
	cs.wg.Wait()
}
