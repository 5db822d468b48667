package election_test

import (
	"fmt"
	"testing"

	"dkv/core"
	"dkv/election"
)

// A leader's hand-over: the follower it picks leads next, in the next
// term; a write that comes meanwhile is held, then sent to the new leader
// (not_leader naming it), where a client goes at once; and the old leader
// reports HandedOver once it leads no more and every write it took has its
// answer.
func TestHandOverElectsTheFollowerAndSendsHeldWritesOn(t *testing.T) {
	c := newNodeCluster(t, 3, nil)
	l, _ := c.waitLeader(-1, 200)
	term := c.nodes[l].Raft().Term()
	if r := c.do(l, setReq("a", "1"), 20); !r.OK {
		t.Fatalf("set a: %+v", r.Error)
	}
	to, ok := c.nodes[l].HandOver()
	if !ok {
		t.Fatal("the leader found no follower to hand over to")
	}
	held := c.ask(l, setReq("b", "2"))
	if *held != nil {
		t.Fatalf("a write during the hand-over was answered at once: %+v", **held)
	}
	if c.nodes[l].HandedOver() {
		t.Fatal("HandedOver before the follower leads")
	}
	if c.wait(held, 20) < 0 {
		t.Fatal("the held write had no answer within 20 ticks")
	}
	if got := c.leader(); got != int(to) || c.nodes[got].Raft().Term() != term+1 {
		t.Fatalf("node %d leads in term %d; want node %d, the one handed the office, in term %d", got, c.nodes[max(got, 0)].Raft().Term(), to, term+1)
	}
	r := **held
	if codeOf(r) != core.CodeNotLeader || r.Error.Leader != fmt.Sprintf("node %d", to) {
		t.Fatalf("the held write: %s %+v, want not_leader naming node %d", codeOf(r), r.Error, to)
	}
	if !c.nodes[l].HandedOver() {
		t.Fatal("the old leader does not report HandedOver")
	}
	if r := c.do(int(to), setReq("b", "2"), 20); !r.OK {
		t.Fatalf("set b at the new leader: %+v", r.Error)
	}
	if r := c.do(int(to), getReq("a"), 20); !r.OK || *r.Value != "1" {
		t.Fatalf("get a at the new leader: %+v", r.Error)
	}
}

// A hand-over to a follower that cannot take the office (cut off) ends
// after an election timeout: the leader leads on, and proposes the writes
// it held meanwhile.
func TestHandOverThatFailsProposesTheHeldWrites(t *testing.T) {
	c := newNodeCluster(t, 3, nil)
	l, _ := c.waitLeader(-1, 200)
	if r := c.do(l, setReq("a", "1"), 20); !r.OK {
		t.Fatalf("set a: %+v", r.Error)
	}
	to, ok := c.nodes[l].HandOver()
	if !ok {
		t.Fatal("the leader found no follower to hand over to")
	}
	c.cut[to] = true
	held := c.ask(l, setReq("b", "2"))
	et := c.cfgs[0].ElectionTicks
	if c.wait(held, 3*et) < 0 {
		t.Fatalf("the held write had no answer within %d ticks", 3*et)
	}
	if r := **held; !r.OK {
		t.Fatalf("the write held during a failed hand-over: %s %+v, want it taken", codeOf(r), r.Error)
	}
	if got := c.leader(); got != l {
		t.Fatalf("node %d leads; node %d should lead on", got, l)
	}
	if c.nodes[l].Raft().Transferring() != election.None {
		t.Fatal("the hand-over did not end")
	}
}

// A write that comes in the turn a failed hand-over ends (the leader's tick
// ends it, then the write, then the turn's Flush, as a host's turn runs
// them) takes effect after the writes held before it, not before: on one
// connection, requests take effect in the order they were sent
// (docs/PROTOCOL.md). Proposed at once, it went into the log ahead of them,
// and a pipelined set k=1, set k=2 left k=1.
func TestWriteAfterAFailedHandOverKeepsItsPlaceBehindTheHeldWrites(t *testing.T) {
	c := newNodeCluster(t, 3, nil)
	l, _ := c.waitLeader(-1, 200)
	to, ok := c.nodes[l].HandOver()
	if !ok {
		t.Fatal("the leader found no follower to hand over to")
	}
	c.cut[to] = true // the hand-over times out
	first := c.ask(l, setReq("k", "1"))
	if *first != nil {
		t.Fatalf("a write during the hand-over was answered at once: %+v", **first)
	}
	var second **core.Response
	for tick := 0; tick < 3*c.cfgs[0].ElectionTicks && second == nil; tick++ {
		// One tick of every node, without the Flush that ends a turn.
		c.clock.advance(c.cfgs[0].TickInterval)
		if c.nodes[l].Raft().Transferring() == election.None {
			// The same turn: the connection's next request, then Flush.
			second = new(*core.Response)
			c.nodes[l].HandleRequest(setReq("k", "2"), func(r core.Response) { *second = &r })
		}
		c.endTurn()
	}
	if second == nil {
		t.Fatal("the hand-over did not end")
	}
	if c.wait(first, 20) < 0 || c.wait(second, 20) < 0 {
		t.Fatal("the writes had no answers within 20 ticks")
	}
	if !(*first).OK || !(*second).OK {
		t.Fatalf("the writes: %+v, %+v; want both taken (the hand-over failed, node %d leads on)", **first, **second, l)
	}
	if got := c.leader(); got != l {
		t.Fatalf("node %d leads; node %d should lead on", got, l)
	}
	if r := c.do(l, getReq("k"), 20); !r.OK || *r.Value != "2" {
		v := "(none)"
		if r.Value != nil {
			v = *r.Value
		}
		t.Fatalf("get k after set k=1 then set k=2 on one connection: %s %+v %q; want 2", codeOf(r), r.Error, v)
	}
}

// endTurn is step without its tick: every node's Flush, then the messages
// delivered, each receiver's turn ending in a Flush.
func (c *nodeCluster) endTurn() {
	c.t.Helper()
	for i := range c.nodes {
		c.flush(i)
	}
	for len(c.queue) > 0 {
		m := c.queue[0]
		c.queue = c.queue[1:]
		if c.cut[m.from] || c.cut[m.to] {
			continue
		}
		c.nodes[m.to].HandleMessage(m.from, m.b)
		c.flush(int(m.to))
	}
}

// A read that comes while writes are held waits behind them too: on one
// connection a pipelined set k=2 (held), get k, answered in that order,
// answered the set ok and the get with k's old value, read at once while
// the set waited for the hand-over to end (found by review).
func TestReadDuringAHandOverWaitsBehindTheHeldWrites(t *testing.T) {
	for _, fails := range []bool{true, false} {
		t.Run(fmt.Sprintf("hand-over fails %v", fails), func(t *testing.T) {
			c := newNodeCluster(t, 3, nil)
			l, _ := c.waitLeader(-1, 200)
			if r := c.do(l, setReq("k", "1"), 20); !r.OK {
				t.Fatalf("set k: %+v", r.Error)
			}
			to, ok := c.nodes[l].HandOver()
			if !ok {
				t.Fatal("the leader found no follower to hand over to")
			}
			if fails {
				c.cut[to] = true
			}
			set := c.ask(l, setReq("k", "2"))
			get := c.ask(l, getReq("k"))
			et := c.cfgs[0].ElectionTicks
			if c.wait(set, 3*et) < 0 || c.wait(get, 3*et) < 0 {
				t.Fatalf("no answers within %d ticks", 3*et)
			}
			s, g := **set, **get
			switch {
			case s.OK && (!g.OK || *g.Value != "2"):
				v := "(none)"
				if g.Value != nil {
					v = *g.Value
				}
				t.Fatalf("set k=2 ok, then the get after it on one connection: %s %+v %q; want 2", codeOf(g), g.Error, v)
			case !s.OK && codeOf(s) != core.CodeNotLeader:
				t.Fatalf("the held set: %s %+v", codeOf(s), s.Error)
			case !s.OK && codeOf(g) != core.CodeNotLeader:
				t.Fatalf("the set was sent on (not_leader), and the get after it: %s %+v; want not_leader as well", codeOf(g), g.Error)
			case fails != s.OK:
				t.Fatalf("the set: %s; want ok only if the hand-over failed (it failed: %v)", codeOf(s), fails)
			}
		})
	}
}

// Without a hand-over too, a read waits for the writes the leader took
// before it: its read index is the commit index when it came, which a
// follower whose window of entries in flight is full confirms with a
// heartbeat before the writes behind the window reach it. On one
// connection a pipelined set k=2, get k answered ok, then k=1.
func TestReadWaitsForTheWritesBeforeIt(t *testing.T) {
	c := newNodeCluster(t, 3, func(i int, cfg *election.NodeConfig) {
		cfg.InflightEntriesMax, cfg.EntriesPerMsgMax = 2, 1
	})
	l, _ := c.waitLeader(-1, 200)
	if r := c.do(l, setReq("k", "1"), 20); !r.OK {
		t.Fatalf("set k: %+v", r.Error)
	}
	for i := range 4 {
		c.ask(l, setReq(fmt.Sprintf("x%d", i), "v")) // fill the window
	}
	set := c.ask(l, setReq("k", "2"))
	get := c.ask(l, getReq("k"))
	if c.wait(set, 20) < 0 || c.wait(get, 20) < 0 {
		t.Fatal("no answers within 20 ticks")
	}
	if s, g := **set, **get; s.OK && (!g.OK || *g.Value != "2") {
		v := "(none)"
		if g.Value != nil {
			v = *g.Value
		}
		t.Fatalf("set k=2 ok, then the get after it on one connection: %s %+v %q; want 2", codeOf(g), g.Error, v)
	} else if !s.OK {
		t.Fatalf("set k=2: %s %+v", codeOf(s), s.Error)
	}
}

// A hand-over's MsgTimeoutNow that is lost is sent again with the next
// heartbeat, so the follower still takes the office: the hand-over timed
// out, and the cluster waited for an election after the leader's exit.
func TestHandOverSurvivesALostTimeoutNow(t *testing.T) {
	c := newNodeCluster(t, 3, nil)
	l, _ := c.waitLeader(-1, 200)
	term := c.nodes[l].Raft().Term()
	lost := 0
	c.drop = func(m netMsg) bool {
		if lost == 0 && len(m.b) > 1 && m.b[0] == 1 /* wireRaft */ && election.MsgType(m.b[1]) == election.MsgTimeoutNow {
			lost++
			return true
		}
		return false
	}
	to, ok := c.nodes[l].HandOver()
	if !ok {
		t.Fatal("the leader found no follower to hand over to")
	}
	for range c.cfgs[0].ElectionTicks - 1 {
		c.step()
		if c.leader() == int(to) {
			break
		}
	}
	if lost != 1 {
		t.Fatalf("%d MsgTimeoutNow lost, want 1", lost)
	}
	if got := c.leader(); got != int(to) || c.nodes[got].Raft().Term() != term+1 {
		t.Fatalf("node %d leads; want node %d, handed the office in term %d, within an election timeout", got, to, term+1)
	}
	for range 3 {
		c.step()
	}
	if !c.nodes[l].HandedOver() || c.nodes[l].Leader() != to {
		t.Fatalf("the old leader: HandedOver %v, leader %d; want true, node %d", c.nodes[l].HandedOver(), c.nodes[l].Leader(), to)
	}
}

// A read takes effect before the writes that came after it: on one
// connection, requests take effect in the order they were sent
// (docs/PROTOCOL.md). Its read index is confirmed by a heartbeat's round
// trip, in which a write that came after it commits and applies too; read
// then, a pipelined get k, set k=2 answered k=2 for the get (found by the
// hand-over history review).
func TestReadDoesNotSeeTheWritesAfterIt(t *testing.T) {
	c := newNodeCluster(t, 3, nil)
	l, _ := c.waitLeader(-1, 200)
	if r := c.do(l, setReq("k", "1"), 20); !r.OK {
		t.Fatalf("set k: %+v", r.Error)
	}
	// In one turn, as a pipelined pair comes in one read of the socket.
	get, set := new(*core.Response), new(*core.Response)
	c.nodes[l].HandleRequest(getReq("k"), func(r core.Response) { *get = &r })
	c.nodes[l].HandleRequest(setReq("k", "2"), func(r core.Response) { *set = &r })
	c.flush(l)
	if c.wait(get, 20) < 0 || c.wait(set, 20) < 0 {
		t.Fatal("no answers within 20 ticks")
	}
	if g, s := **get, **set; !s.OK {
		t.Fatalf("set k=2: %s %+v", codeOf(s), s.Error)
	} else if g.OK && (g.Value == nil || *g.Value != "1") {
		t.Fatalf("get k, then set k=2 on one connection: the get read %q; want 1, the value before the set", *g.Value)
	} else if !g.OK {
		t.Fatalf("get k: %s %+v", codeOf(g), g.Error)
	}
}

// A hand-over goes to a follower heard from lately rather than to one that
// went silent: a follower that just crashed counts as active for up to two
// election timeouts, and on an idle cluster its log is as long as the
// live one's, so the lowest id won the tie, and a leader stopped right
// after it handed the office to the dead node, waited out the hand-over
// and left the cluster to an election (found by the hand-over history
// review).
func TestHandOverPassesOverAFollowerThatWentSilent(t *testing.T) {
	for dead := range 3 {
		c := newNodeCluster(t, 3, nil)
		l, _ := c.waitLeader(-1, 200)
		if l == dead {
			continue
		}
		if r := c.do(l, setReq("a", "1"), 20); !r.OK {
			t.Fatalf("set a: %+v", r.Error)
		}
		c.cut[dead] = true
		for range c.cfgs[0].HeartbeatTicks * 3 {
			c.step()
		}
		to, ok := c.nodes[l].HandOver()
		if !ok {
			t.Fatal("the leader found no follower to hand over to")
		}
		if int(to) == dead {
			t.Fatalf("node %d handed the office to node %d, silent for %d heartbeats, rather than to the other follower", l, to, 3)
		}
	}
}

// A node that handed the office over is leaving: it stands in no election,
// so a leader stopped at the same moment cannot hand the office back to it
// (it would exit as leader, leaving the cluster to an election).
func TestNodeThatHandedOverIsNotHandedTheOfficeBack(t *testing.T) {
	c := newNodeCluster(t, 3, nil)
	l, _ := c.waitLeader(-1, 200)
	to, ok := c.nodes[l].HandOver()
	if !ok {
		t.Fatal("the leader found no follower to hand over to")
	}
	for range 5 {
		c.step()
	}
	if c.leader() != int(to) {
		t.Fatalf("node %d leads, want node %d", c.leader(), to)
	}
	// The third node is cut off: the only follower the new leader hears
	// is the one that is leaving.
	third := 3 - l - int(to)
	c.cut[third] = true
	back, ok := c.nodes[to].HandOver()
	if !ok || back != core.NodeID(l) {
		t.Fatalf("node %d's hand-over went to %d (%v), want node %d, the only one it hears", to, back, ok, l)
	}
	for range 3 * c.cfgs[0].ElectionTicks {
		c.step()
		if c.leader() == l {
			t.Fatalf("node %d, which handed the office over and is leaving, took it back", l)
		}
	}
}
