package sim

import (
	"time"

	"dkv/core"
)

// clock is one node's view of time: virtual time scaled by a drift rate and
// shifted by an offset, so nodes disagree about the time and about how long
// a timeout lasts, within the bounds the fault mix allows. It survives the
// node's restarts, as a machine's monotonic clock does.
type clock struct {
	h        *host
	offset   int64
	driftPPM int64 // parts per million fast (>0) or slow (<0)
	// Calendar time (Wall) is virtual time from a fixed epoch, shifted by a
	// skew drawn per node and a step redrawn at each start, as a clock set
	// by NTP is shifted and set again when a machine boots: nodes disagree
	// about it, and a restarted node's may be behind its last run's.
	wallSkew, wallStep int64
	// wallJump is a step of the calendar beyond the max offset, for a
	// while (a mesh seed's clock jump: meshJump).
	wallJump int64
}

var _ core.WallClock = (*clock)(nil)

// wallEpoch is the calendar time at virtual time zero: 2026-01-01 UTC.
const wallEpoch = 1767225600 * int64(time.Second)

// local converts virtual time to the node's time.
func (c *clock) local(t int64) int64 { return c.offset + t + t/1_000_000*c.driftPPM }

// Now implements core.Clock.
func (c *clock) Now() int64 { return c.local(c.h.s.w.now) }

// Wall implements core.WallClock.
func (c *clock) Wall() int64 { return wallEpoch + c.h.s.w.now + c.wallSkew + c.wallStep + c.wallJump }

// AfterFunc implements core.Clock: f runs as part of a later turn of the
// node, after d of the node's time has passed.
func (c *clock) AfterFunc(d time.Duration, f func()) core.Timer {
	d = max(d, 0)
	// Virtual time for d local nanoseconds, rounded up so the node never
	// sees its timer fire early by its own clock.
	virt := (int64(d)*1_000_000 + (1_000_000 + c.driftPPM) - 1) / (1_000_000 + c.driftPPM)
	t := &timer{h: c.h, f: f, incarnation: c.h.incarnation}
	t.ev = c.h.s.w.After(time.Duration(virt), func() { c.h.timerDue(t) })
	return t
}

// timer is a pending AfterFunc callback. Once due, it waits in the node's
// inbox for the next turn; Stop still cancels it there, as in realnet.
type timer struct {
	h           *host
	f           func()
	ev          *Scheduled
	incarnation int
	done        bool // ran or stopped
}

// Stop implements core.Timer.
func (t *timer) Stop() bool {
	if t.done {
		return false
	}
	t.done = true
	t.ev.Cancel()
	return true
}
