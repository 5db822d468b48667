package realnet

import (
	"time"

	"dkv/core"
)

// clock is core.Clock on the OS monotonic clock. Its callbacks run on the
// loop goroutine, never on the runtime's timer goroutine, because node logic
// is not safe for concurrent use.
type clock struct {
	origin time.Time        // carries a monotonic reading, so Now never goes back
	post   func(event) bool // false once the loop is gone; the callback is dropped
}

var _ core.Clock = (*clock)(nil)

// Now is nanoseconds since the host started.
func (c *clock) Now() int64 { return int64(time.Since(c.origin)) }

// AfterFunc queues f for the loop once d has passed.
func (c *clock) AfterFunc(d time.Duration, f func()) core.Timer {
	t := &timer{f: f}
	t.t = time.AfterFunc(d, func() { c.post(t.fire) })
	return t
}

// timer is touched only on the loop goroutine (Stop is called by node logic,
// fire runs as a loop event), so done needs no lock. That is also what lets
// Stop cancel a callback that has already been queued but not yet run.
type timer struct {
	f    func()
	t    *time.Timer
	done bool // fired or stopped
}

func (t *timer) fire() {
	if t.done {
		return
	}
	t.done = true
	t.f()
}

// Stop reports whether it kept the callback from running.
func (t *timer) Stop() bool {
	if t.done {
		return false
	}
	t.done = true
	t.t.Stop()
	return true
}

// Wall implements core.WallClock: the OS's calendar time.
func (c *clock) Wall() int64 { return time.Now().UnixNano() }
