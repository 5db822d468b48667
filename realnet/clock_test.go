package realnet

import (
	"testing"
	"time"
)

// queueClock is a clock whose loop is the test: posted events wait in a
// channel until the test runs them.
func queueClock() (*clock, chan event) {
	q := make(chan event, 16)
	return &clock{origin: time.Now(), post: func(ev event) bool { q <- ev; return true }}, q
}

func TestTimerCallbackRunsOnlyFromTheLoop(t *testing.T) {
	c, q := queueClock()
	ran := false
	tm := c.AfterFunc(time.Millisecond, func() { ran = true })
	ev := <-q // the timer fired, but only queued its callback
	if ran {
		t.Fatal("callback ran on the timer goroutine")
	}
	ev()
	if !ran {
		t.Fatal("callback did not run from the loop")
	}
	if tm.Stop() {
		t.Error("Stop after the callback ran reported true")
	}
}

func TestStopCancelsAQueuedCallback(t *testing.T) {
	c, q := queueClock()
	ran := false
	tm := c.AfterFunc(0, func() { ran = true })
	ev := <-q
	if !tm.Stop() {
		t.Error("Stop of a queued, not yet run callback reported false")
	}
	ev()
	if ran {
		t.Error("callback ran after Stop")
	}
	if tm.Stop() {
		t.Error("second Stop reported true")
	}
}

func TestStopBeforeFiring(t *testing.T) {
	c, q := queueClock()
	tm := c.AfterFunc(time.Hour, func() { t.Error("stopped callback ran") })
	if !tm.Stop() {
		t.Error("Stop of a pending timer reported false")
	}
	select {
	case ev := <-q:
		ev()
		t.Error("a stopped timer posted its callback")
	case <-time.After(20 * time.Millisecond):
	}
}

func TestNowIsMonotonicNanoseconds(t *testing.T) {
	c, _ := queueClock()
	a := c.Now()
	time.Sleep(2 * time.Millisecond)
	b := c.Now()
	if a < 0 || b-a < int64(2*time.Millisecond) {
		t.Errorf("Now went from %d to %d across a 2ms sleep", a, b)
	}
}
