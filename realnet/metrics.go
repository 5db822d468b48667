package realnet

import (
	"context"
	"errors"
	"time"

	"dkv/core"
)

// Metrics hears what a Host measures on its own goroutines: requests,
// connections and fsyncs. Its methods are called on hot paths (Request once
// per request, on the node's goroutine; Fsync once per fsync), from many
// goroutines at once: they must be cheap and must never block. A Host
// without Metrics does not read the clock for them at all.
type Metrics interface {
	// Request reports an answered request: its op ("" for a line that did
	// not decode), the answer's error code ("" for a success) and the
	// time from its decoding to its answer (0 for a line that did not
	// decode, which never reaches the node).
	Request(op, code string, elapsed time.Duration)
	// Conn reports a client connection registered (+1) or gone (-1).
	Conn(delta int)
	// ConnRefused reports a connection refused at the ConnsMax limit.
	ConnRefused()
	// Fsync reports one fsync of a data-directory file (file is its name)
	// and how long it took; err is its outcome.
	Fsync(file string, elapsed time.Duration, err error)
}

// monoEpoch and monoNow time what Metrics hears: a reading of the
// monotonic clock alone costs about half of a time.Now, which reads the
// calendar clock too, and a request pays for two.
var monoEpoch = time.Now()

func monoNow() time.Duration { return time.Since(monoEpoch) }

// SetMetrics makes the host report to m. It must be called before Run.
func (h *Host) SetMetrics(m Metrics) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running {
		panic("realnet: SetMetrics after Run")
	}
	h.metrics = m
}

// ErrNotServing is Inspect's answer before the node has recovered and
// after the host has stopped.
var ErrNotServing = errors.New("realnet: the node is not serving")

// Inspect runs f with the node on the node's goroutine, between two events
// of a turn, and waits for it to return or ctx to end. It is how another
// goroutine reads node state (a metrics scrape, say) without racing the
// node: f is an event like any other. It fails with ErrNotServing before
// the node has recovered or once the host has stopped, and with ctx's
// error if f has not run by then; f may still run later, so it must write
// only what it owns.
func (h *Host) Inspect(ctx context.Context, f func(core.Node)) error {
	select {
	case <-h.ready:
	default:
		return ErrNotServing
	}
	done := make(chan struct{})
	posted := make(chan bool, 1)
	// Posting waits while the event queue is full, and may run the node's
	// turns here when nobody else does; the caller's wait is bounded by
	// ctx either way.
	go func() {
		posted <- h.post(func() {
			f(h.node)
			close(done)
		})
	}()
	for {
		select {
		case <-done:
			return nil
		case ok := <-posted:
			if !ok {
				return ErrNotServing
			}
			posted = nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// refusedLine is the slot of a line answered without the node (it did not
// decode, or was too long or too slow), counted as a request of no op.
func (h *Host) refusedLine(resp core.Response) *slot {
	if h.metrics != nil {
		h.metrics.Request("", resp.Error.Code, 0)
	}
	return filledSlot(resp)
}
