package election_test

import (
	"fmt"
	"strings"
	"testing"

	"dkv/core"
	"dkv/election"
)

// A cluster's leader refuses, before proposing it, a write that would take
// its store past the bound on data bytes; nothing of it applies on any
// node. Deletes are taken, and make room. The followers apply what the
// leader took whatever their own bound (node 2's is too small for it).
func TestClusterLeaderRefusesWritesPastItsDataBound(t *testing.T) {
	v := strings.Repeat("v", 100)
	room := 2*core.EntryDataBytes(1, len(v)) + 10
	c := newNodeCluster(t, 3, func(i int, cfg *election.NodeConfig) {
		cfg.Limits.DataBytesMax = room
		if i == 2 {
			cfg.Limits.DataBytesMax = core.EntryDataBytes(1, len(v))
		}
	})
	l, _ := c.waitLeader(-1, 200)
	if l == 2 {
		t.Fatal("node 2, with the smallest bound, leads: the test needs another leader (its seeds made node 0 lead)")
	}
	for _, k := range []string{"a", "b"} {
		if r := c.do(l, setReq(k, v), 20); !r.OK {
			t.Fatalf("set %s: %+v", k, r.Error)
		}
	}
	r := c.do(l, setReq("c", v), 20)
	if codeOf(r) != core.CodeStoreFull || !strings.Contains(r.Error.Message, "--max-data-bytes") {
		t.Fatalf("a third key: %s %+v, want store_full", codeOf(r), r.Error)
	}
	r = c.do(l, &core.Request{Op: core.OpIncr, Key: "n"}, 20)
	if codeOf(r) != core.CodeStoreFull {
		t.Fatalf("an incr of a new key: %s %+v, want store_full", codeOf(r), r.Error)
	}
	for range 5 {
		c.step()
	}
	for i, n := range c.nodes {
		if _, ok := n.Store().Get("c"); ok {
			t.Fatalf("node %d applied the refused write", i)
		}
		if _, ok := n.Store().Get("b"); !ok {
			t.Fatalf("node %d lacks b, which the leader took (its own bound is %d, the store %d)", i, c.cfgs[i].Limits.DataBytesMax, n.Store().DataBytes())
		}
		if err := n.Store().CheckDataBytes(); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	if r := c.do(l, &core.Request{Op: core.OpDelete, Key: "a"}, 20); !r.OK {
		t.Fatalf("delete a on a full store: %+v", r.Error)
	}
	if r := c.do(l, setReq("c", v), 20); !r.OK {
		t.Fatalf("set c once a is gone: %+v", r.Error)
	}
	st := c.do(l, &core.Request{Op: core.OpStatus}, 5).Status
	if st.DataBytesMax != room || st.DataBytes != c.nodes[l].Store().DataBytes() {
		t.Fatalf("status: %d of %d data bytes, want %d of %d", st.DataBytes, st.DataBytesMax, c.nodes[l].Store().DataBytes(), room)
	}
}

// The writes a leader proposed and has not applied yet count against its
// bound: checked against the applied store alone, every write of a turn
// (of a round trip, of a stall of the followers' disks: up to
// UncommittedEntriesMax of them, each up to EntryBytesMax) passed, and the
// store went past the bound by all of them together.
func TestClusterLeaderCountsItsWritesInFlightAgainstItsDataBound(t *testing.T) {
	v := strings.Repeat("v", 100)
	room := 2*core.EntryDataBytes(2, len(v)) + 10
	c := newNodeCluster(t, 3, func(i int, cfg *election.NodeConfig) { cfg.Limits.DataBytesMax = room })
	l, _ := c.waitLeader(-1, 200)
	var got []**core.Response
	for i := range 6 {
		// Proposed in turns of their own, none committed: the
		// followers hear of them with the next step.
		got = append(got, c.ask(l, setReq(fmt.Sprintf("k%d", i), v)))
	}
	taken, full := 0, 0
	for i, r := range got {
		if c.wait(r, 20) < 0 {
			t.Fatalf("set k%d had no answer within 20 ticks", i)
		}
		switch codeOf(**r) {
		case "ok":
			taken++
		case core.CodeStoreFull:
			full++
		default:
			t.Fatalf("set k%d: %s %+v", i, codeOf(**r), (**r).Error)
		}
	}
	for range 5 {
		c.step()
	}
	for i, n := range c.nodes {
		if b := n.Store().DataBytes(); b > room {
			t.Errorf("node %d holds %d data bytes, past its bound of %d: %d writes taken at once", i, b, room, taken)
		}
	}
	if taken != 2 || full != 4 {
		t.Fatalf("%d writes taken and %d refused store_full; room for 2", taken, full)
	}
	// Applied, they no longer count twice: a delete makes room again.
	if r := c.do(l, &core.Request{Op: core.OpDelete, Key: "k0"}, 20); !r.OK {
		t.Fatalf("delete k0: %+v", r.Error)
	}
	if r := c.do(l, setReq("k9", v), 20); !r.OK {
		t.Fatalf("set k9 once k0 is gone: %+v", r.Error)
	}
}

// A cluster's leader whose followers have not yet acknowledged writes of
// UncommittedBytesMax bytes refuses the next, whatever their count, with
// unavailable, a code clients retry, that says why; once those commit, it
// takes writes again.
func TestClusterLeaderRefusesWritesPastItsUncommittedBytes(t *testing.T) {
	v := strings.Repeat("v", 1500)
	c := newNodeCluster(t, 3, func(i int, cfg *election.NodeConfig) { cfg.UncommittedBytesMax = 4000 })
	l, _ := c.waitLeader(-1, 200)
	// No step: the appends wait in the network, unacknowledged.
	a, b := c.ask(l, setReq("a", v)), c.ask(l, setReq("b", v))
	r := c.ask(l, setReq("c", v))
	if *r == nil || codeOf(**r) != core.CodeUnavailable || !strings.Contains((*r).Error.Message, "4000 bytes") {
		t.Fatalf("a third write of %d bytes with two uncommitted and a bound of 4000: %+v, want unavailable naming the bound", len(v), *r)
	}
	for _, got := range []**core.Response{a, b} {
		if c.wait(got, 20) < 0 || codeOf(**got) != "ok" {
			t.Fatalf("an uncommitted write: %+v", *got)
		}
	}
	if r := c.do(l, setReq("c", v), 20); !r.OK {
		t.Fatalf("the third write once the others committed: %+v", r.Error)
	}
	t.Logf("the refusal: %s", (*r).Error.Message)
}

// A retry of a session write that applied, whose answer was lost, is
// answered as the write was, not refused store_full: the store may have
// filled since (here by other writes), and the refusal said nothing of the
// attempt that applied. The retry applies nothing again.
func TestClusterRetryOfAnAppliedWriteIsNotRefusedAsFull(t *testing.T) {
	v := strings.Repeat("v", 100)
	room := core.EntryDataBytes(1, len(v)) + 10
	c := newNodeCluster(t, 3, func(i int, cfg *election.NodeConfig) { cfg.Limits.DataBytesMax = room })
	l, _ := c.waitLeader(-1, 200)
	first := setReq("a", v)
	first.ClientID, first.Seq = 7, 1
	if r := c.do(l, first, 20); !r.OK {
		t.Fatalf("set a: %+v", r.Error)
	}
	// Another client deletes a and fills the store.
	if r := c.do(l, &core.Request{Op: core.OpDelete, Key: "a"}, 20); !r.OK {
		t.Fatalf("delete a: %+v", r.Error)
	}
	if r := c.do(l, setReq("b", v), 20); !r.OK {
		t.Fatalf("set b: %+v", r.Error)
	}
	if r := c.do(l, setReq("c", v), 20); codeOf(r) != core.CodeStoreFull {
		t.Fatalf("set c on a full store: %s, want store_full", codeOf(r))
	}
	retry := setReq("a", v)
	retry.ClientID, retry.Seq = 7, 1
	if r := c.do(l, retry, 20); !r.OK {
		t.Fatalf("the retry of client 7's write 1, which applied: %s %+v, want ok", codeOf(r), r.Error)
	}
	if _, ok := c.nodes[l].Store().Get("a"); ok {
		t.Fatal("the retry applied the write a second time")
	}
}
