package core_test

import (
	"testing"
	"time"

	"dkv/core"
)

// workIndexes is an Indexes whose deferred work is a counter of units: it
// records the budgets Work is given.
type workIndexes struct {
	core.Indexes // unused methods panic on the nil interface
	left         int
	budgets      []int
}

func (w *workIndexes) Work(budget int) bool {
	w.budgets = append(w.budgets, budget)
	w.left = max(0, w.left-budget)
	return w.left > 0
}

// TestIndexPacer: the pacer ticks only while the indexes have work, does
// one unit a tick while writes come and eight once the node has been idle
// 10 ms, and a write that leaves no work arms no tick.
func TestIndexPacer(t *testing.T) {
	clock := &manualClock{}
	idx := &workIndexes{}
	p := core.NewIndexPacer(clock, idx, nil)
	// A start with nothing to do: the first tick finds no work and stops.
	clock.now += int64(2 * time.Millisecond)
	if ran := clock.fire(); ran != 1 || len(clock.timers) != 0 {
		t.Fatalf("start: %d ticks ran, %d armed", ran, len(clock.timers))
	}
	// Writes with no work left arm nothing (they only ask, budget 0).
	for range 5 {
		p.Wrote()
	}
	if len(clock.timers) != 0 {
		t.Fatalf("writes with no work armed %d timers", len(clock.timers))
	}
	// Work appears: a write arms one tick, however many writes follow.
	idx.left = 20
	p.Wrote()
	p.Wrote()
	if len(clock.timers) != 1 {
		t.Fatalf("%d timers armed", len(clock.timers))
	}
	// Busy: one unit a tick.
	idx.budgets = nil
	clock.now += int64(2 * time.Millisecond)
	p.Wrote()
	clock.fire()
	if got := idx.budgets[len(idx.budgets)-1]; got != 1 {
		t.Fatalf("busy tick did %d units", got)
	}
	// Idle past 10 ms: eight units a tick, until the work is done.
	for range 10 {
		clock.now += int64(4 * time.Millisecond)
		clock.fire()
	}
	if idx.left != 0 || len(clock.timers) != 0 {
		t.Fatalf("idle ticks left %d units, %d timers", idx.left, len(clock.timers))
	}
	if got := idx.budgets[len(idx.budgets)-1]; got != 8 {
		t.Fatalf("idle tick did %d units", got)
	}
	// Without indexes the pacer is nil and does nothing.
	none := core.NewIndexPacer(clock, nil, nil)
	none.Wrote()
}
