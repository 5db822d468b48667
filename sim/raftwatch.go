package sim

import (
	"fmt"

	"dkv/core"
	"dkv/election"
)

// Watcher observes a mode's nodes from outside, for promises that no client
// can see directly. Each method returns a violation, or "".
type Watcher interface {
	// Sent sees every peer message a node sends.
	Sent(from int, msg []byte) string
	// Started sees every node that recovered and started.
	Started(id int, n core.Node) string
	// Applied sees every entry a node applies, and what came of it.
	Applied(id int, index, term uint64, outcome string) string
	// Wiped hears that node id's disk was lost (Sim.wipe): whatever it
	// persisted is gone, and what it remembers is no longer checked
	// against what it did, only what it does next.
	Wiped(id int)
}

// raftWatch checks Raft's promises about votes and leaders (§5.2, §5.4 of
// the Raft paper), which a crash at the wrong moment breaks without any
// client noticing at first:
//   - a node votes for at most one candidate per term, across restarts;
//   - a node that restarts has the term and vote it acted on (persist
//     before send): never an older term, nor no vote in a term it voted in
//     (unless its disk was lost: Wiped);
//   - at most one node leads in a term;
//   - a leader's log holds every entry committed before its term (Leader
//     Completeness, §5.4.1): an append of a leader whose term is above
//     every term led in when an entry was first applied names that entry,
//     wherever it names that index (its prev or its entries);
//   - every node applies the same entry at an index, with the same outcome
//     (state machine safety, §5.4.3: the session table included, since a
//     replica that decides a retried write differently diverges).
type raftWatch struct {
	applied  map[uint64]appliedEntry // index -> what the first node to apply it applied
	votes    map[voteKey]core.NodeID // (voter, term) -> the candidate it voted for
	maxTerm  map[int]uint64          // per node, the highest term it voted in
	leaders  map[uint64]int          // term -> the node that sent appends in it
	votesMax int
	// lead is the node that sent appends in the highest term seen.
	lead     int
	leadTerm uint64
	// wiped: nodes whose disks were lost; their restarts are not checked
	// for the term and vote they acted on, which went with the disk (the
	// votes they send still are: one per term, across the wipe).
	wiped map[int]bool
}

func (w *raftWatch) Wiped(id int) {
	if w.wiped == nil {
		w.wiped = map[int]bool{}
	}
	w.wiped[id] = true
	// Its votes for itself go with the disk: a node on an empty directory
	// that hears every peer at term 0 goes on as a new cluster's, and may
	// vote for another in a term where it had stood (cluster seed 192:
	// node 2 stood at term 1, its requests reached nobody, its disk was
	// lost, and it voted for node 0 in term 1). That is safe: a peer that
	// had granted it would have answered at term 1, so it cannot have led
	// that term, and one leader a term is checked apart (leaders). Its
	// votes for others stay: after one, it takes back a term at least as
	// high, that vote spent (election.Raft's rejoined).
	for k, cand := range w.votes {
		if k.voter == id && cand == core.NodeID(id) {
			delete(w.votes, k)
		}
	}
}

// Leader is the node that led in the latest term the watcher saw, -1 if
// none yet; it may have been deposed since without knowing it.
func (w *raftWatch) Leader() int { return w.lead }

type appliedEntry struct {
	node    int
	term    uint64
	outcome string
	// ledTerm is the highest term any node led in (sent appends in) when
	// the entry was first applied: the leader that committed it led in
	// that term or an earlier one, so every leader of a later term holds
	// it.
	ledTerm uint64
}

func (w *raftWatch) Applied(id int, index, term uint64, outcome string) string {
	e, ok := w.applied[index]
	if !ok {
		if len(w.applied) < w.votesMax {
			w.applied[index] = appliedEntry{id, term, outcome, w.leadTerm}
		}
		return ""
	}
	if e.term != term || e.outcome != outcome {
		return fmt.Sprintf("at index %d node %d applied an entry of term %d (%s), node %d one of term %d (%s)",
			index, e.node, e.term, e.outcome, id, term, outcome)
	}
	return ""
}

type voteKey struct {
	voter int
	term  uint64
}

// raftWatchVotesMax bounds the ledger; a run's terms stay far below it.
const raftWatchVotesMax = 1 << 20

func newRaftWatch() Watcher {
	return &raftWatch{
		applied: map[uint64]appliedEntry{},
		votes:   map[voteKey]core.NodeID{}, maxTerm: map[int]uint64{}, leaders: map[uint64]int{},
		votesMax: raftWatchVotesMax,
		lead:     -1,
	}
}

func (w *raftWatch) Sent(from int, msg []byte) string {
	m, ok := election.PeekRaft(msg)
	if !ok {
		return ""
	}
	switch {
	case m.Type == election.MsgVote:
		return w.vote(from, m.Term, m.From) // a candidate votes for itself
	case m.Type == election.MsgVoteResp && !m.Reject:
		return w.vote(from, m.Term, m.To)
	case m.Type == election.MsgApp:
		if l, ok := w.leaders[m.Term]; ok && l != from {
			return fmt.Sprintf("nodes %d and %d both lead in term %d", l, from, m.Term)
		}
		if v := w.complete(from, m.Term, m.Index, m.LogTerm); v != "" {
			return v
		}
		for _, e := range m.Entries {
			if v := w.complete(from, m.Term, e.Index, e.Term); v != "" {
				return v
			}
		}
		if m.Term >= w.leadTerm {
			w.lead, w.leadTerm = from, m.Term
		}
		if len(w.leaders) < w.votesMax {
			w.leaders[m.Term] = from
		}
	}
	return ""
}

// complete checks that the log of node from, leading in term, holds an
// entry of entryTerm at index, as an append it sent says, agrees with
// what was applied there if that was committed before term.
func (w *raftWatch) complete(from int, term, index, entryTerm uint64) string {
	a, ok := w.applied[index]
	if !ok || index == 0 || term <= a.ledTerm || a.term == entryTerm {
		return ""
	}
	return fmt.Sprintf("node %d leads in term %d with an entry of term %d at index %d, where node %d applied one of term %d, committed by term %d at the latest: a committed entry is missing from a later leader's log",
		from, term, entryTerm, index, a.node, a.term, a.ledTerm)
}

func (w *raftWatch) vote(voter int, term uint64, cand core.NodeID) string {
	k := voteKey{voter, term}
	if prev, ok := w.votes[k]; ok && prev != cand {
		return fmt.Sprintf("node %d voted for node %d and for node %d in term %d", voter, prev, cand, term)
	}
	if len(w.votes) < w.votesMax {
		w.votes[k] = cand
	}
	w.maxTerm[voter] = max(w.maxTerm[voter], term)
	return ""
}

func (w *raftWatch) Started(id int, n core.Node) string {
	en, ok := n.(*election.Node)
	if !ok || en.Raft() == nil {
		return ""
	}
	r := en.Raft()
	voted, ok := w.maxTerm[id]
	if !ok {
		return "" // it never voted
	}
	if w.wiped[id] {
		// Its disk was lost: its term and vote went with it. (A node that
		// rejoins takes back a term as high as any it voted in, its vote
		// in it spent, which is not the vote it cast then.)
		return ""
	}
	cand, known := w.votes[voteKey{id, voted}]
	switch {
	case r.Term() < voted:
		return fmt.Sprintf("node %d restarted in term %d, though it had voted in term %d: a term it acted on was not persisted", id, r.Term(), voted)
	case r.Term() == voted && known && r.Vote() != cand:
		return fmt.Sprintf("node %d restarted in term %d with vote %d, though it had voted for node %d: a vote it sent was not persisted", id, voted, r.Vote(), cand)
	}
	return ""
}
