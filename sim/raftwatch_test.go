package sim

import (
	"strings"
	"testing"

	"dkv/core"
	"dkv/election"
)

// appendFrom is the peer message of an append node from sends leading in
// term: after (prev, prevTerm), the entries ents.
func appendFrom(from int, term, prev, prevTerm uint64, ents ...election.Entry) []byte {
	m := election.Message{Type: election.MsgApp, From: core.NodeID(from), To: core.NodeID((from + 1) % 3),
		Term: term, Index: prev, LogTerm: prevTerm, Entries: ents}
	return election.AppendMessage([]byte{1}, &m) // 1: the wire's tag of a Raft message
}

// TestRaftWatchLeaderCompleteness: an entry applied while terms up to T
// were led in must be in the log of every leader of a term above T, at its
// index, whether an append names it as its prev or among its entries; a
// deposed leader of T or below may still send what it has.
func TestRaftWatchLeaderCompleteness(t *testing.T) {
	w := newRaftWatch().(*raftWatch)
	ok := func(v string) {
		t.Helper()
		if v != "" {
			t.Fatalf("unexpected finding: %s", v)
		}
	}
	ok(w.Sent(0, appendFrom(0, 2, 0, 0, election.Entry{Term: 2, Index: 1}, election.Entry{Term: 2, Index: 2})))
	ok(w.Applied(1, 1, 2, ""))
	ok(w.Applied(1, 2, 2, ""))
	// A leader of term 1, deposed and cut off, still sends its entry of
	// term 1 at index 1: it never led past the commit.
	ok(w.Sent(2, appendFrom(2, 1, 0, 0, election.Entry{Term: 1, Index: 1})))
	// The next leader holds both entries.
	ok(w.Sent(1, appendFrom(1, 3, 2, 2, election.Entry{Term: 3, Index: 3})))
	ok(w.Sent(1, appendFrom(1, 3, 1, 2, election.Entry{Term: 2, Index: 2}, election.Entry{Term: 3, Index: 3})))
	// A leader of term 4 without entry 2 of term 2: in its entries ...
	v := w.Sent(2, appendFrom(2, 4, 1, 2, election.Entry{Term: 3, Index: 2}))
	if !strings.Contains(v, "node 2 leads in term 4 with an entry of term 3 at index 2") {
		t.Fatalf("a leader missing a committed entry among its entries: got %q", v)
	}
	// ... or as its prev.
	w = newRaftWatch().(*raftWatch)
	ok(w.Sent(0, appendFrom(0, 2, 0, 0, election.Entry{Term: 2, Index: 1})))
	ok(w.Applied(0, 1, 2, ""))
	if v := w.Sent(1, appendFrom(1, 3, 1, 1)); !strings.Contains(v, "a committed entry is missing from a later leader's log") {
		t.Fatalf("a leader missing a committed entry at its prev: got %q", v)
	}
}

// TestRaftLimitsDrawn: a third of the seeds or so run a cluster with a few
// entries an append, which the election package accepts.
func TestRaftLimitsDrawn(t *testing.T) {
	small := 0
	const seeds = 600
	for seed := uint64(1); seed <= seeds; seed++ {
		m := DrawMix(stream(seed, streamMix))
		if m.RaftEntriesMax == 0 {
			if m.RaftInflightMax != 0 {
				t.Fatalf("seed %d: in-flight bound %d without an entries bound", seed, m.RaftInflightMax)
			}
			continue
		}
		small++
		if m.RaftEntriesMax > 3 || m.RaftInflightMax < m.RaftEntriesMax || m.RaftInflightMax%m.RaftEntriesMax != 0 {
			t.Fatalf("seed %d: entries %d, in flight %d", seed, m.RaftEntriesMax, m.RaftInflightMax)
		}
	}
	if small < seeds/5 || small > seeds/2 {
		t.Fatalf("%d of %d seeds with small Raft limits, want about a third", small, seeds)
	}
}
