package election

import "fmt"

// Entry is one slot of the replicated log.
type Entry struct {
	Term  uint64
	Index uint64
	Data  []byte
}

// raftLog is the log as this node knows it: entries[i] holds index i, and
// entries[0] is a sentinel of term 0 (no compaction yet). Entries up to
// stable are on the caller's disk; the rest wait for the next Ready.
type raftLog struct {
	entries   []Entry
	stable    uint64 // last index the caller has persisted
	committed uint64 // known committed on a majority
	applied   uint64 // last index handed out for applying
}

func newLog(persisted []Entry) (*raftLog, error) {
	l := &raftLog{entries: []Entry{{}}}
	for i, e := range persisted {
		if e.Index != uint64(i)+1 {
			return nil, fmt.Errorf("election: persisted entry %d has index %d, want %d", i, e.Index, i+1)
		}
		if e.Term < l.entries[i].Term {
			return nil, fmt.Errorf("election: persisted entry %d has term %d, below the term %d before it", e.Index, e.Term, l.entries[i].Term)
		}
		l.entries = append(l.entries, e)
	}
	l.stable = l.lastIndex()
	return l, nil
}

func (l *raftLog) lastIndex() uint64 { return uint64(len(l.entries) - 1) }
func (l *raftLog) lastTerm() uint64  { return l.entries[len(l.entries)-1].Term }

// term is the term of the entry at index i, if the log has one.
func (l *raftLog) term(i uint64) (uint64, bool) {
	if i > l.lastIndex() {
		return 0, false
	}
	return l.entries[i].Term, true
}

func (l *raftLog) matchTerm(i, term uint64) bool {
	t, ok := l.term(i)
	return ok && t == term
}

// isUpToDate reports whether a log ending at (index, term) is at least as
// up to date as this one (Raft §5.4.1): a vote goes only to such a log.
func (l *raftLog) isUpToDate(index, term uint64) bool {
	return term > l.lastTerm() || (term == l.lastTerm() && index >= l.lastIndex())
}

// append adds entries at the end, as the leader does.
func (l *raftLog) append(ents ...Entry) {
	for _, e := range ents {
		assert(e.Index == l.lastIndex()+1, "append: entry index %d after last %d", e.Index, l.lastIndex())
		l.entries = append(l.entries, e)
	}
}

// maybeAppend is a follower taking entries that follow (prevIndex,
// prevTerm). It keeps what matches, cuts the log at the first conflict and
// appends the rest, and reports the last index the message vouches for. It
// fails if the log holds no entry (prevIndex, prevTerm).
func (l *raftLog) maybeAppend(prevIndex, prevTerm uint64, ents []Entry) (lastNew uint64, ok bool) {
	if !l.matchTerm(prevIndex, prevTerm) {
		return 0, false
	}
	for i, e := range ents {
		assert(e.Index == prevIndex+uint64(i)+1, "maybeAppend: entry %d has index %d after %d", i, e.Index, prevIndex)
		if l.matchTerm(e.Index, e.Term) {
			continue
		}
		// A conflict, or the end of the log: what follows is replaced. A
		// committed entry never conflicts (Log Matching).
		assert(e.Index > l.committed, "maybeAppend: conflict at committed index %d (committed %d)", e.Index, l.committed)
		l.entries = l.entries[:e.Index]
		l.stable = min(l.stable, e.Index-1)
		l.entries = append(l.entries, ents[i:]...)
		break
	}
	return prevIndex + uint64(len(ents)), true
}

// slice returns entries [lo, hi], at most countMax of them.
func (l *raftLog) slice(lo, hi uint64, countMax int) []Entry {
	if lo > hi {
		return nil
	}
	hi = min(hi, lo+uint64(countMax)-1)
	return l.entries[lo : hi+1]
}

func (l *raftLog) commitTo(i uint64) {
	if i > l.committed {
		assert(i <= l.lastIndex(), "commitTo %d beyond last index %d", i, l.lastIndex())
		l.committed = i
	}
}

// toApply is what may be applied: committed, and on this node's disk too,
// so that a restart never finds its state machine ahead of its log.
func (l *raftLog) toApply() []Entry {
	hi := min(l.committed, l.stable)
	if hi <= l.applied {
		return nil
	}
	return l.entries[l.applied+1 : hi+1]
}

func assert(ok bool, format string, args ...any) {
	if !ok {
		panic(fmt.Sprintf("election: invariant broken: "+format, args...))
	}
}
