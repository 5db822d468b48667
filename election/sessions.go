package election

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"dkv/core"
)

// sessions is the cluster's table of client sessions: for each client, the
// write sequence numbers it applied that the client may still retry. It is
// part of the replicated state machine — every replica decides a
// duplicate the same way, because it applies the same entries to the same
// table — and it is carried in snapshots.
//
// A client numbers its writes 1, 2, … and says with each one (acked) that it
// has the answers of every lower number; those are forgotten. A write whose
// number the table holds is a retry: it is not applied again, and it is
// answered as the first was (a write that passed validation always
// succeeds). The table is bounded: at most sessionsMax clients, the least
// recently active forgotten first, and at most sessionSeqsMax numbers per
// client, the lowest forgotten first. The ids of forgotten clients are
// kept for longer (goneMax of them, oldest dropped first): a write of one
// of them is refused with session_expired, since a retry could not be told
// from a new write. A client the table never knew starts a session with
// any write: its earlier writes, if any, never applied, or it would be
// known. So exactly-once holds as long as fewer than max+goneMax other
// clients became active since a client's last write.
type sessions struct {
	byClient map[uint64]*session
	max      int
	gone     []uint64 // forgotten clients, oldest first
	goneSet  map[uint64]bool
	// oldest and newest end the list of sessions in the order of last,
	// least recently active first: the next to forget is at hand. A scan
	// of the table for it cost every write of a new client 0.7 ms on
	// each replica once 16,384 clients had written, and a burst of them
	// held the leader's loop past the election timeout (found by review:
	// 5,000 new clients' writes lost the leader, an answer waited 1.2 s).
	oldest, newest *session
}

type session struct {
	id    uint64
	last  uint64   // index of the last entry that touched it, for eviction
	acked uint64   // every seq below it was answered and is forgotten
	seqs  []uint64 // applied seqs >= acked, sorted
	// unmet are the seqs of seqs whose condition did not hold: refused,
	// not applied. They are kept so that a copy of the write that comes
	// later (a retry, or an attempt the network held back) is not
	// applied after its client was told that nothing was written.
	unmet []uint64
	// results are the answers of the applied seqs that answer more than
	// ok (an incr's number, or its refusal), sorted by seq, so that a
	// retry is answered as the first attempt was.
	results []result
	// older and newer link the table's sessions in the order of last.
	older, newer *session
}

// result is what an applied write answered beyond ok: an incr's new
// number, or the code of its refusal (the store unchanged).
type result struct {
	seq  uint64
	n    int64
	code resultCode
}

// resultCode is an incr's answer: its number, or a refusal.
type resultCode uint8

const (
	resultNumber resultCode = iota
	resultNotInteger
	resultOverflow
	resultCodeLast = resultOverflow
)

func resultCodeOf(code string) resultCode {
	switch code {
	case "":
		return resultNumber
	case core.CodeNotInteger:
		return resultNotInteger
	case core.CodeOverflow:
		return resultOverflow
	}
	panic("resultCodeOf: " + code)
}

func (c resultCode) String() string {
	return [...]string{"", core.CodeNotInteger, core.CodeOverflow}[c]
}

// Limits of the session table.
const (
	sessionsMaxDefault = 16384
	sessionSeqsMax     = 512
)

// outcome is what applying a command did.
type outcome uint8

const (
	applied   outcome = iota + 1
	duplicate         // a retry of an applied write: not applied again
	expired           // the session is forgotten: not applied, outcome unknown
	stale             // a seq the client had already given up: not applied
	// unmet: the write's condition did not hold, so it was not applied;
	// its seq is recorded as refused.
	unmet
	// refused: a copy of a write that was refused (unmet): not applied.
	refused
)

func (o outcome) String() string {
	switch o {
	case applied:
		return "applied"
	case duplicate:
		return "duplicate"
	case expired:
		return "expired"
	case stale:
		return "stale"
	case unmet:
		return "unmet"
	case refused:
		return "refused"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

func newSessions(max int) *sessions {
	return &sessions{byClient: map[uint64]*session{}, max: max, goneSet: map[uint64]bool{}}
}

func (t *sessions) goneMax() int { return 4 * t.max }

// forget moves a client from the table to the forgotten ids.
func (t *sessions) forget(id uint64) {
	t.unlink(t.byClient[id])
	delete(t.byClient, id)
	t.gone = append(t.gone, id)
	t.goneSet[id] = true
	if len(t.gone) > t.goneMax() {
		// Resliced, not moved down: a move of the 65,536 ids cost every
		// new client's write 70 us once the list was full (found by
		// review). Appends copy the ids to a new array once its room is
		// used up, a copy that many appends share.
		delete(t.goneSet, t.gone[0])
		t.gone = t.gone[1:]
	}
}

func (t *sessions) len() int { return len(t.byClient) }

// unlink takes s out of the list of sessions.
func (t *sessions) unlink(s *session) {
	if s.older != nil {
		s.older.newer = s.newer
	} else {
		t.oldest = s.newer
	}
	if s.newer != nil {
		s.newer.older = s.older
	} else {
		t.newest = s.older
	}
	s.older, s.newer = nil, nil
}

// touch records that the entry at index touched s, which becomes the most
// recently active session. Entries touch sessions in index order, so the
// list stays in the order of last; the assertion checks it.
func (t *sessions) touch(s *session, index uint64) {
	if t.newest != nil && t.newest != s {
		assert(t.newest.last < index, "sessions: entry %d touches a session after entry %d did", index, t.newest.last)
	}
	if t.newest != s {
		if s.older != nil || s.newer != nil || t.oldest == s {
			t.unlink(s)
		}
		s.older = t.newest
		if t.newest != nil {
			t.newest.newer = s
		} else {
			t.oldest = s
		}
		t.newest = s
	}
	s.last = index
}

// admit decides whether the write (client, seq) at log index should apply,
// and records it, applied or refused. holds, if not nil, is the write's
// condition: it is checked only for a write that is neither a copy of one
// recorded nor refused by the session.
func (t *sessions) admit(client, seq, acked, index uint64, holds func() bool) outcome {
	s := t.byClient[client]
	if s == nil {
		if t.goneSet[client] {
			return expired
		}
		s = &session{id: client, acked: 1}
		t.byClient[client] = s
		t.touch(s, index)
		t.evict(client)
	}
	t.touch(s, index)
	if acked > s.acked {
		s.forgetBelow(acked)
	}
	if seq < s.acked {
		return stale
	}
	i, found := slices.BinarySearch(s.seqs, seq)
	if found {
		if _, was := slices.BinarySearch(s.unmet, seq); was {
			return refused
		}
		return duplicate
	}
	oc := applied
	if holds != nil && !holds() {
		oc = unmet
		j, _ := slices.BinarySearch(s.unmet, seq)
		s.unmet = slices.Insert(s.unmet, j, seq)
	}
	s.seqs = slices.Insert(s.seqs, i, seq)
	if len(s.seqs) > sessionSeqsMax {
		// The client has more writes unanswered than the table keeps: the
		// oldest becomes unretriable (a retry of it is stale).
		s.forgetBelow(s.seqs[0] + 1)
	}
	return oc
}

// keep records the answer of the write (client, seq), which admit has just
// applied. A seq the bound made admit forget at once (the lowest of more
// than sessionSeqsMax) keeps no answer: a retry of it is stale, as any
// forgotten write's. (Asserting it held crashed every replica at that
// entry, and again at each restart's replay: found by review.)
func (t *sessions) keep(client, seq uint64, r result) {
	s := t.byClient[client]
	if seq < s.acked {
		return
	}
	_, applied := slices.BinarySearch(s.seqs, seq)
	assert(applied, "sessions.keep: client %d seq %d is not applied", client, seq)
	r.seq = seq
	i, found := slices.BinarySearchFunc(s.results, seq, func(r result, q uint64) int { return cmp.Compare(r.seq, q) })
	assert(!found, "sessions.keep: client %d seq %d answered twice", client, seq)
	s.results = slices.Insert(s.results, i, r)
}

// result is the answer the write (client, seq) was given when it applied,
// if keep recorded one.
func (t *sessions) result(client, seq uint64) (result, bool) {
	s := t.byClient[client]
	if s == nil {
		return result{}, false
	}
	i, found := slices.BinarySearchFunc(s.results, seq, func(r result, q uint64) int { return cmp.Compare(r.seq, q) })
	if !found {
		return result{}, false
	}
	return s.results[i], true
}

// unkeep forgets the answer of the write (client, seq), for
// MutIncrRetryApplies, whose retry keeps its own.
func (t *sessions) unkeep(client, seq uint64) {
	s := t.byClient[client]
	if i, ok := slices.BinarySearchFunc(s.results, seq, func(r result, q uint64) int { return cmp.Compare(r.seq, q) }); ok {
		s.results = slices.Delete(s.results, i, i+1)
	}
}

// unrecord forgets the refused write (client, seq), as the table did
// before it kept refused writes: election.MutRefusedNotKept's bug.
func (t *sessions) unrecord(client, seq uint64) {
	s := t.byClient[client]
	if i, ok := slices.BinarySearch(s.seqs, seq); ok {
		s.seqs = slices.Delete(s.seqs, i, i+1)
	}
	if i, ok := slices.BinarySearch(s.unmet, seq); ok {
		s.unmet = slices.Delete(s.unmet, i, i+1)
	}
}

// forgetBelow forgets the seqs below acked: their answers are the client's.
func (s *session) forgetBelow(acked uint64) {
	s.acked = acked
	n, _ := slices.BinarySearch(s.seqs, acked)
	s.seqs = slices.Delete(s.seqs, 0, n)
	n, _ = slices.BinarySearch(s.unmet, acked)
	s.unmet = slices.Delete(s.unmet, 0, n)
	n, _ = slices.BinarySearchFunc(s.results, acked, func(r result, q uint64) int { return cmp.Compare(r.seq, q) })
	s.results = slices.Delete(s.results, 0, n)
}

// has reports whether the write (client, seq) is known to be applied, or
// to be refused for its condition.
func (t *sessions) has(client, seq uint64) (known, applied, refused bool) {
	s := t.byClient[client]
	if s == nil {
		return false, false, false
	}
	if seq < s.acked {
		return false, false, false
	}
	_, found := slices.BinarySearch(s.seqs, seq)
	_, refused = slices.BinarySearch(s.unmet, seq)
	return true, found && !refused, refused
}

// evict forgets the least recently active client, other than keep, while
// the table is over its bound: the oldest of the list. Each entry touches
// one session, so the indexes are distinct and the choice does not depend
// on map order.
func (t *sessions) evict(keep uint64) {
	for len(t.byClient) > t.max {
		victim := t.oldest
		if victim.id == keep {
			victim = victim.newer
		}
		t.forget(victim.id)
	}
}

// encode writes the table in client order, then the forgotten ids oldest
// first, then the refused seqs, if any, in client order, then the kept
// answers, if any, in client order:
//
//	[count u32] { [client u64][last u64][acked u64][n u32] { [seq u64] } }
//	[gone u32] { [client u64] }
//	[refused u32] { [client u64][seq u64] }
//	[answers u32] { [client u64][seq u64][code u8][n u64] }
//
// A table without answers ends after the refused seqs, as tables did
// before incr, and one without refused seqs either ends after the
// forgotten ids, as tables did before conditional writes; each decodes
// the same either way. (A table with answers and no refused seqs writes
// a refused count of 0.)
func (t *sessions) encode() []byte {
	ids := make([]uint64, 0, len(t.byClient))
	for id := range t.byClient {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(ids)))
	for _, id := range ids {
		s := t.byClient[id]
		b = binary.LittleEndian.AppendUint64(b, id)
		b = binary.LittleEndian.AppendUint64(b, s.last)
		b = binary.LittleEndian.AppendUint64(b, s.acked)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s.seqs)))
		for _, q := range s.seqs {
			b = binary.LittleEndian.AppendUint64(b, q)
		}
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.gone)))
	for _, id := range t.gone {
		b = binary.LittleEndian.AppendUint64(b, id)
	}
	refused, answers := 0, 0
	for _, id := range ids {
		refused += len(t.byClient[id].unmet)
		answers += len(t.byClient[id].results)
	}
	if refused == 0 && answers == 0 {
		return b
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(refused))
	for _, id := range ids {
		for _, q := range t.byClient[id].unmet {
			b = binary.LittleEndian.AppendUint64(b, id)
			b = binary.LittleEndian.AppendUint64(b, q)
		}
	}
	if answers == 0 {
		return b
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(answers))
	for _, id := range ids {
		for _, r := range t.byClient[id].results {
			b = binary.LittleEndian.AppendUint64(b, id)
			b = binary.LittleEndian.AppendUint64(b, r.seq)
			b = append(b, byte(r.code))
			b = binary.LittleEndian.AppendUint64(b, uint64(r.n))
		}
	}
	return b
}

var errSessions = errors.New("bad session table")

// answerBytes is the size of one kept answer in the table's encoding.
const answerBytes = 8 + 8 + 1 + 8

// decodeAnswers reads the kept answers, the table's last section.
func (t *sessions) decodeAnswers(b []byte) error {
	if len(b) < 4 {
		return fmt.Errorf("%w: %d bytes after the refused writes", errSessions, len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if n == 0 || uint64(len(b)) != answerBytes*uint64(n) {
		return fmt.Errorf("%w: %d kept answers in %d bytes", errSessions, n, len(b))
	}
	for i := uint32(0); i < n; i++ {
		id, q := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
		r := result{seq: q, code: resultCode(b[16]), n: int64(binary.LittleEndian.Uint64(b[17:]))}
		b = b[answerBytes:]
		s := t.byClient[id]
		if s == nil {
			return fmt.Errorf("%w: the answer of write %d of client %d, which has no session", errSessions, q, id)
		}
		_, ok := slices.BinarySearch(s.seqs, q)
		_, refused := slices.BinarySearch(s.unmet, q)
		switch {
		case !ok || refused || (len(s.results) > 0 && q <= s.results[len(s.results)-1].seq):
			return fmt.Errorf("%w: client %d: the answer of seq %d not of an applied seq, or out of order", errSessions, id, q)
		case r.code > resultCodeLast || (r.code != resultNumber && r.n != 0):
			return fmt.Errorf("%w: client %d: the answer of seq %d has code %d and number %d", errSessions, id, q, r.code, r.n)
		}
		s.results = append(s.results, r)
	}
	return nil
}

// decodeSessions reads what encode wrote, checking it as it goes (a pair of
// assertions with the writer: clients in strictly increasing order, seqs
// sorted and within the limits).
func decodeSessions(b []byte, max int) (*sessions, error) {
	t := newSessions(max)
	if len(b) == 0 {
		return t, nil // a snapshot without sessions: none yet
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", errSessions, len(b))
	}
	count := binary.LittleEndian.Uint32(b)
	b = b[4:]
	prev := uint64(0)
	for i := uint32(0); i < count; i++ {
		if len(b) < 28 {
			return nil, fmt.Errorf("%w: session %d truncated", errSessions, i)
		}
		id := binary.LittleEndian.Uint64(b)
		s := &session{id: id, last: binary.LittleEndian.Uint64(b[8:]), acked: binary.LittleEndian.Uint64(b[16:])}
		n := binary.LittleEndian.Uint32(b[24:])
		b = b[28:]
		if id <= prev || n > sessionSeqsMax || uint64(len(b)) < 8*uint64(n) {
			return nil, fmt.Errorf("%w: session %d (client %d, %d seqs) out of order or over its limits", errSessions, i, id, n)
		}
		for j := uint32(0); j < n; j++ {
			q := binary.LittleEndian.Uint64(b)
			b = b[8:]
			if q < s.acked || (len(s.seqs) > 0 && q <= s.seqs[len(s.seqs)-1]) {
				return nil, fmt.Errorf("%w: client %d: seq %d out of order", errSessions, id, q)
			}
			s.seqs = append(s.seqs, q)
		}
		t.byClient[id] = s
		prev = id
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: forgotten clients missing", errSessions)
	}
	gone := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if uint64(len(b)) < 8*uint64(gone) {
		return nil, fmt.Errorf("%w: %d forgotten clients in %d bytes", errSessions, gone, len(b))
	}
	for i := uint32(0); i < gone; i++ {
		id := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if t.byClient[id] != nil || t.goneSet[id] {
			return nil, fmt.Errorf("%w: client %d both kept and forgotten", errSessions, id)
		}
		t.gone = append(t.gone, id)
		t.goneSet[id] = true
	}
	if len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: %d bytes after the forgotten clients", errSessions, len(b))
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(len(b)) < 16*uint64(n) || (n == 0 && len(b) == 0) {
			return nil, fmt.Errorf("%w: %d refused writes in %d bytes", errSessions, n, len(b))
		}
		for i := uint32(0); i < n; i++ {
			id, q := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
			b = b[16:]
			s := t.byClient[id]
			if s == nil {
				return nil, fmt.Errorf("%w: refused write %d of client %d, which has no session", errSessions, q, id)
			}
			if _, ok := slices.BinarySearch(s.seqs, q); !ok || (len(s.unmet) > 0 && q <= s.unmet[len(s.unmet)-1]) {
				return nil, fmt.Errorf("%w: client %d: refused seq %d not among its seqs, or out of order", errSessions, id, q)
			}
			s.unmet = append(s.unmet, q)
		}
	}
	if len(b) > 0 {
		if err := t.decodeAnswers(b); err != nil {
			return nil, err
		}
	}
	// The list in the order of last (ties, which no table written by
	// this code holds, by id: never by map order).
	byLast := make([]*session, 0, len(t.byClient))
	for _, s := range t.byClient {
		byLast = append(byLast, s)
	}
	slices.SortFunc(byLast, func(a, b *session) int {
		return cmp.Or(cmp.Compare(a.last, b.last), cmp.Compare(a.id, b.id))
	})
	for _, s := range byLast {
		s.older = t.newest
		if t.newest != nil {
			t.newest.newer = s
		} else {
			t.oldest = s
		}
		t.newest = s
	}
	t.evict(0)
	return t, nil
}
