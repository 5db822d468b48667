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
