package election

import (
	"testing"

	"dkv/core"
)

// A leader sends no entries to a follower that is being sent its snapshot,
// until the follower acknowledges the snapshot's index: they cannot follow
// what the follower holds. Before, every heartbeat sent a probe append
// from the snapshot's index on, with up to MsgBytesMax of entries (the
// in-flight window allowed them where the follower's last acknowledgement
// was within InflightEntriesMax of the snapshot), which the follower
// refused; with real processes some 4 MiB a heartbeat filled the peer
// queue (128 MiB, dropping the oldest) ahead of the snapshot's chunks, and
// a 75 MB snapshot went at 0.5 MB/s (found by review).
func TestNoEntriesToAFollowerWaitingForASnapshot(t *testing.T) {
	cfg := DefaultConfig(0, []core.NodeID{0, 1, 2}, fixedRand{})
	cfg.HardState = HardState{Term: 1, Vote: 0}
	cfg.Snapshot = &Snapshot{Index: 100, Term: 1}
	for i := uint64(101); i <= 140; i++ {
		cfg.Entries = append(cfg.Entries, Entry{Term: 1, Index: i, Data: make([]byte, 64<<10)})
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.becomeCandidate()
	r.becomeLeader()
	take := func() []Message {
		m := r.msgs
		r.msgs = nil
		return m
	}
	take()
	// Node 1 holds everything; node 2 holds up to index 50, which the
	// snapshot covers.
	r.Step(Message{Type: MsgAppResp, From: 1, To: 0, Term: r.term, Index: r.log.lastIndex()})
	r.Step(Message{Type: MsgAppResp, From: 2, To: 0, Term: r.term, Reject: true, Index: 140, RejectHint: 50, LogTerm: 1})
	snaps, entries := 0, 0
	count := func(ms []Message) {
		for _, m := range ms {
			if m.To != 2 {
				continue
			}
			switch m.Type {
			case MsgSnap:
				snaps++
			case MsgApp:
				entries += len(m.Entries)
				if m.Index >= r.log.offset {
					// Node 2 refuses it: it lacks the entry at m.Index.
					r.Step(Message{Type: MsgAppResp, From: 2, To: 0, Term: r.term, Reject: true, Index: m.Index, RejectHint: 50, LogTerm: 1})
				}
			}
		}
	}
	count(take())
	for range 20 * cfg.HeartbeatTicks {
		r.Tick()
		r.Step(Message{Type: MsgAppResp, From: 1, To: 0, Term: r.term, Index: r.log.lastIndex()})
		count(take())
	}
	if snaps == 0 {
		t.Fatal("node 2 was never sent the snapshot")
	}
	if entries > 0 {
		t.Fatalf("node 2, being sent the snapshot at 100, was sent %d entries in 20 heartbeats", entries)
	}
	// Once node 2 holds the snapshot, the entries after it go.
	r.Step(Message{Type: MsgAppResp, From: 2, To: 0, Term: r.term, Index: 100})
	r.Tick()
	for _, m := range take() {
		if m.To == 2 && m.Type == MsgApp {
			entries += len(m.Entries)
		}
	}
	if entries == 0 {
		t.Fatal("node 2, holding the snapshot, was sent no entries")
	}
}
