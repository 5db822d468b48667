package mesh_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
	"dkv/sim"
)

// clock is a core.WallClock whose timers run when the test moves it.
type clock struct {
	now    int64
	timers []*timer
}

type timer struct {
	at      int64
	f       func()
	stopped bool
}

func (t *timer) Stop() bool { was := !t.stopped; t.stopped = true; return was }

func (c *clock) Now() int64  { return c.now }
func (c *clock) Wall() int64 { return 1767225600*int64(time.Second) + c.now }
func (c *clock) AfterFunc(d time.Duration, f func()) core.Timer {
	t := &timer{at: c.now + int64(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// pending counts the timers that will still run.
func (c *clock) pending() int {
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

type pcg struct{ r *rand.Rand }

func (p pcg) Uint64() uint64 { return p.r.Uint64() }

// wire carries the messages between the nodes of a test, one hop per
// deliver; it counts what each node was sent.
type wire struct {
	queue []msg
	sent  map[core.NodeID]int
}

type msg struct {
	from, to core.NodeID
	b        []byte
}

type sender struct {
	w    *wire
	from core.NodeID
}

func (s sender) Send(to core.NodeID, b []byte) {
	s.w.sent[to]++
	s.w.queue = append(s.w.queue, msg{s.from, to, slices.Clone(b)})
}

// A node whose writes wait for a quorum resends each to a silent peer once
// every QuorumResend at most, with one timer running: a steady trickle of
// quorum writes, each acknowledged by a live peer within milliseconds, used
// to leave a timer behind every time the waits emptied and filled again,
// each re-arming itself and resending every waiting write, the one just
// sent too (found by review: ~137 timers at 500 writes a second).
func TestQuorumResendsStayBounded(t *testing.T) {
	nodes := []core.NodeID{0, 1, 2}
	clk := &clock{}
	w := &wire{sent: map[core.NodeID]int{}}
	var live []*mesh.Node
	// Node 2 is down for good once the nodes have joined (a node whose
	// directory is new takes writes once every peer answered it).
	const downAt = 200 * time.Millisecond
	for _, id := range nodes {
		cfg := mesh.DefaultConfig(id, nodes)
		cfg.MeshID = 9
		n, err := mesh.NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(id), 1))
		env := core.Env{ID: id, Clock: clk, Network: sender{w, id}, Disk: sim.NewDisk(r, sim.DiskFaults{}), Rand: pcg{r}}
		if err := n.Start(env); err != nil {
			t.Fatal(err)
		}
		live = append(live, n)
	}
	flush := func(at int64) {
		for i, n := range live {
			if i == 2 && at >= int64(downAt) {
				continue
			}
			if err := n.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := mesh.DefaultConfig(0, nodes)
	const writeEvery = 2 * time.Millisecond // 500 writes a second
	const runFor = 10 * time.Second
	answered, writes := 0, 0
	for at := int64(0); at < int64(runFor); at += int64(time.Millisecond) {
		clk.now = at
		if at == int64(downAt) {
			w.sent[2] = 0 // counted from here
		}
		if at >= int64(downAt) && at%int64(writeEvery) == 0 {
			v := "v"
			writes++
			live[0].HandleRequest(&core.Request{Op: core.OpSet, Key: "k", Value: &v, Quorum: 2}, func(r core.Response) {
				if !r.OK {
					t.Fatalf("a quorum write: %+v", r.Error)
				}
				answered++
			})
		}
		for _, tm := range slices.Clone(clk.timers) {
			if !tm.stopped && tm.at <= at {
				tm.stopped = true
				tm.f()
			}
		}
		clk.timers = slices.DeleteFunc(clk.timers, func(tm *timer) bool { return tm.stopped })
		flush(at)
		// A hop a millisecond: node 1 answers within 2 to 3.
		q := w.queue
		w.queue = nil
		for _, m := range q {
			if m.to != 2 && m.from != 2 || at < int64(downAt) {
				live[m.to].HandleMessage(m.from, m.b)
			}
		}
		flush(at)
		if p := clk.pending(); p > 16 {
			t.Fatalf("at %v: %d timers pending", time.Duration(at), p)
		}
	}
	if answered < writes-10 {
		t.Fatalf("%d of %d quorum writes answered", answered, writes)
	}
	// The silent peer gets each write once as it is made, and a resend at
	// most once every QuorumResend while one waits (the anti-entropy
	// rounds' few messages besides).
	bound := writes + int(runFor/cfg.QuorumResend) + int(runFor/cfg.AntiEntropyInterval)*4
	if w.sent[2] > bound {
		t.Fatalf("node 2, down, was sent %d messages in %v for %d writes; at most %d expected", w.sent[2], runFor, writes, bound)
	}
	t.Logf("%d writes, node 2 sent %d messages (bound %d)", writes, w.sent[2], bound)
}
