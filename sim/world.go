package sim

import (
	"fmt"
	"time"
)

// World is virtual time and the queue of everything that will happen. It is
// driven by one goroutine: Step pops the earliest event and runs it, and an
// event schedules further events. Ties in time are broken by the order of
// scheduling, so a run is a pure function of what the events do — which in
// turn depends only on the seed.
type World struct {
	now   int64
	seq   uint64
	queue eventQueue
	Trace *Trace
	// Steps counts the events run, a cheap measure of the work simulated.
	Steps int64
}

// NewWorld returns a world at time zero whose trace keeps the last tailLen
// entries.
func NewWorld(tailLen int) *World {
	return &World{Trace: NewTrace(tailLen)}
}

// Now is the virtual time in nanoseconds.
func (w *World) Now() int64 { return w.now }

// Scheduled is a pending event; Cancel keeps it from running.
type Scheduled struct {
	at        int64
	seq       uint64
	fn        func()
	cancelled bool
}

// Cancel stops the event if it has not run, and reports whether it did so.
func (s *Scheduled) Cancel() bool {
	if s == nil || s.cancelled || s.fn == nil {
		return false
	}
	s.cancelled = true
	return true
}

// Pending reports whether the event is still to run.
func (s *Scheduled) Pending() bool { return s != nil && !s.cancelled && s.fn != nil }

// At schedules fn at virtual time t (not before now).
func (w *World) At(t int64, fn func()) *Scheduled {
	if t < w.now {
		panic(fmt.Sprintf("sim: event scheduled in the past (%d < %d)", t, w.now))
	}
	w.seq++
	s := &Scheduled{at: t, seq: w.seq, fn: fn}
	w.queue.push(s)
	return s
}

// After schedules fn d from now.
func (w *World) After(d time.Duration, fn func()) *Scheduled {
	return w.At(w.now+int64(d), fn)
}

// Step runs the next event and reports whether there was one.
func (w *World) Step() bool {
	for len(w.queue) > 0 {
		s := w.queue.pop()
		if s.cancelled {
			continue
		}
		w.now = s.at
		fn := s.fn
		s.fn = nil // ran: no longer pending, and the closure can be collected
		w.Steps++
		fn()
		return true
	}
	return false
}

// RunTo runs every event up to virtual time t, then sets the time to t.
func (w *World) RunTo(t int64) {
	for len(w.queue) > 0 && w.queue[0].at <= t {
		w.Step()
	}
	w.now = max(w.now, t)
}

// eventQueue is a binary min-heap on (at, seq), written out rather than
// using container/heap to avoid an interface call per comparison: the queue
// is the simulator's hottest path.
type eventQueue []*Scheduled

func (q eventQueue) less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}

func (q *eventQueue) push(s *Scheduled) {
	*q = append(*q, s)
	h := *q
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *eventQueue) pop() *Scheduled {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = nil
	h = h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}
