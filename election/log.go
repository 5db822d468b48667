package election

import (
	"fmt"
	"slices"
)

// Entry is one slot of the replicated log.
type Entry struct {
	Term  uint64
	Index uint64
	Data  []byte
}

// Snapshot is the state machine as of Index, the last entry it covers, of
// term Term: the log up to Index can go.
type Snapshot struct {
	Index, Term uint64
	Data        []byte
}

// raftLog is the log as this node knows it. entries[0] is a sentinel for
// the last entry a snapshot covers (index and term 0 without a snapshot),
// and entries[i] holds index offset+i. Entries up to stable are on the
// caller's disk; the rest wait for the next Ready.
type raftLog struct {
	entries []Entry
	// sums[i]-sums[0] is the data bytes of entries[1..i], so that the
	// bytes of any run of entries (dataBytes) cost a subtraction: a leader
	// bounds each follower's bytes in flight with it, at every append.
	sums      []int
	offset    uint64 // index of entries[0]
	stable    uint64 // last index the caller has persisted
	committed uint64 // known committed on a majority
	applied   uint64 // last index handed out for applying
}

// newLog restores the log from a snapshot (if any) and the entries that
// followed it on disk.
func newLog(snap *Snapshot, persisted []Entry) (*raftLog, error) {
	l := &raftLog{entries: []Entry{{}}, sums: []int{0}}
	if snap != nil {
		l.restore(*snap)
	}
	for _, e := range persisted {
		if want := l.lastIndex() + 1; e.Index != want {
			return nil, fmt.Errorf("election: persisted entry has index %d, want %d", e.Index, want)
		}
		if e.Term < l.lastTerm() {
			return nil, fmt.Errorf("election: persisted entry %d has term %d, below the term %d before it", e.Index, e.Term, l.lastTerm())
		}
		l.push(e)
	}
	l.stable = l.lastIndex()
	return l, nil
}

func (l *raftLog) firstIndex() uint64 { return l.offset + 1 }
func (l *raftLog) lastIndex() uint64  { return l.offset + uint64(len(l.entries)) - 1 }
func (l *raftLog) lastTerm() uint64   { return l.entries[len(l.entries)-1].Term }

// at is the entry at index i, which the log must hold (i >= offset).
func (l *raftLog) at(i uint64) *Entry {
	assert(i >= l.offset && i <= l.lastIndex(), "at: index %d outside [%d, %d]", i, l.offset, l.lastIndex())
	return &l.entries[i-l.offset]
}

// term is the term of the entry at index i, if the log knows it: not past
// the end, and not before the snapshot.
func (l *raftLog) term(i uint64) (uint64, bool) {
	if i < l.offset || i > l.lastIndex() {
		return 0, false
	}
	return l.at(i).Term, true
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
		l.push(e)
	}
}

// push adds e at the end, and its bytes to the sums.
func (l *raftLog) push(e Entry) {
	l.entries = append(l.entries, e)
	l.sums = append(l.sums, l.sums[len(l.sums)-1]+len(e.Data))
}

// truncate drops the entries from index on.
func (l *raftLog) truncate(index uint64) {
	l.entries = l.entries[:index-l.offset]
	l.sums = l.sums[:index-l.offset]
}

// maybeAppend is a follower taking entries that follow (prevIndex,
// prevTerm). It keeps what matches, cuts the log at the first conflict and
// appends the rest, and reports the last index the message vouches for. It
// fails if the log holds no entry (prevIndex, prevTerm). prevIndex is at
// least the commit index, so never before the snapshot.
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
		l.truncate(e.Index)
		l.stable = min(l.stable, e.Index-1)
		for _, e := range ents[i:] {
			l.push(e)
		}
		break
	}
	return prevIndex + uint64(len(ents)), true
}

// slice returns entries [lo, hi], at most countMax of them; lo must be
// after the snapshot.
func (l *raftLog) slice(lo, hi uint64, countMax int) []Entry {
	if lo > hi || countMax <= 0 {
		return nil
	}
	assert(lo > l.offset, "slice: index %d is in the snapshot (up to %d)", lo, l.offset)
	hi = min(hi, lo+uint64(countMax)-1)
	return l.entries[lo-l.offset : hi-l.offset+1]
}

// dataBytes is the bytes of data of the entries [lo, hi], all after the
// snapshot (none if lo > hi).
func (l *raftLog) dataBytes(lo, hi uint64) int {
	if lo > hi {
		return 0
	}
	assert(len(l.sums) == len(l.entries), "dataBytes: %d sums for %d entries", len(l.sums), len(l.entries))
	assert(lo > l.offset && hi <= l.lastIndex(), "dataBytes: [%d, %d] outside [%d, %d]", lo, hi, l.offset+1, l.lastIndex())
	return l.sums[hi-l.offset] - l.sums[lo-1-l.offset]
}

// unstable is what the caller has not persisted yet.
func (l *raftLog) unstable() []Entry { return l.entries[l.stable-l.offset+1:] }

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
	return l.entries[l.applied-l.offset+1 : hi-l.offset+1]
}

// compact drops the entries a snapshot at index covers. Only what was
// applied (and so persisted) may go.
func (l *raftLog) compact(index uint64) {
	assert(index <= l.applied, "compact: index %d not applied (applied %d)", index, l.applied)
	if index <= l.offset {
		return
	}
	sentinel := Entry{Index: index, Term: l.at(index).Term}
	l.entries = append([]Entry{sentinel}, l.entries[index-l.offset+1:]...)
	// The sums go on from the sentinel's: only their differences count.
	l.sums = slices.Clone(l.sums[index-l.offset:])
	l.offset = index
}

// restore replaces the whole log with a snapshot's: everything up to its
// index is in it, committed and applied.
func (l *raftLog) restore(s Snapshot) {
	l.entries = []Entry{{Index: s.Index, Term: s.Term}}
	l.sums = []int{0}
	l.offset = s.Index
	l.stable, l.committed, l.applied = s.Index, s.Index, s.Index
}

func assert(ok bool, format string, args ...any) {
	if !ok {
		panic(fmt.Sprintf("election: invariant broken: "+format, args...))
	}
}
