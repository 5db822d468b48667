package election

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"dkv/core"
)

// MsgType says what a Message is.
type MsgType uint8

const (
	MsgPreVote MsgType = iota + 1
	MsgPreVoteResp
	MsgVote
	MsgVoteResp
	MsgApp     // append entries; with none, a heartbeat
	MsgAppResp // acknowledges Index, or refuses the append after Index
	MsgSnap    // the leader's snapshot, for a follower that needs compacted entries
	// MsgTimeoutNow is a leader's hand-over (Raft.TransferLeadership): the
	// follower it goes to stands for election at once, without a
	// pre-vote, and its vote requests say so (Context transferVote), so
	// that the others grant them while they still hear the leader. Nodes
	// built before it drop it as an unknown type, and the transfer times
	// out.
	MsgTimeoutNow
	msgTypeEnd
)

func (t MsgType) String() string {
	switch t {
	case MsgPreVote:
		return "pre-vote"
	case MsgPreVoteResp:
		return "pre-vote-resp"
	case MsgVote:
		return "vote"
	case MsgVoteResp:
		return "vote-resp"
	case MsgApp:
		return "app"
	case MsgAppResp:
		return "app-resp"
	case MsgSnap:
		return "snap"
	case MsgTimeoutNow:
		return "timeout-now"
	}
	return fmt.Sprintf("msg(%d)", uint8(t))
}

// Message is what nodes send each other.
type Message struct {
	Type     MsgType
	From, To core.NodeID
	Term     uint64
	// Vote requests: the candidate's last index and term. Appends: the
	// index and term of the entry before Entries. Append responses: the
	// index acknowledged, or the one whose append was refused.
	Index, LogTerm uint64
	Entries        []Entry
	Commit         uint64
	Reject         bool
	// RejectHint is, in a refused append's response, the refusing
	// follower's guess of where its log meets the leader's: where the
	// leader may look next. In a vote or pre-vote response it is
	// rejoiningHint (1) when the answering node is rejoining, 0 otherwise
	// (and from nodes built before it was): see Raft.RejoinStuck.
	RejectHint uint64
	// Context is a leader's read round on an append, echoed by the
	// response: a follower answering it still takes the sender for its
	// leader, which is what a read index needs from a majority.
	Context uint64
	// Snapshot is a MsgSnap's.
	Snapshot *Snapshot
}

func (m Message) String() string {
	s := fmt.Sprintf("%s %d->%d t%d i%d lt%d", m.Type, m.From, m.To, m.Term, m.Index, m.LogTerm)
	if len(m.Entries) > 0 {
		s += fmt.Sprintf(" ents[%d..%d]", m.Entries[0].Index, m.Entries[len(m.Entries)-1].Index)
	}
	if m.Commit > 0 {
		s += fmt.Sprintf(" c%d", m.Commit)
	}
	if m.Reject {
		s += fmt.Sprintf(" reject(hint %d)", m.RejectHint)
	}
	if m.Context > 0 {
		s += fmt.Sprintf(" ctx%d", m.Context)
	}
	return s
}

// EntryBytesMax bounds a write's entry, as the leader proposes it. The
// entry must fit the log's record and also an append message, which the
// peer transport drops over its frame limit (realnet's, 64 MiB; cmd/node
// checks this against it at start): a write between the two was proposed
// and logged, and then could never reach a follower (found by review).
// 64 KiB is the room left for the message's header, as for snapshot
// chunks.
const EntryBytesMax = 64<<20 - 64<<10

// Limits of a decoded message: a peer's bytes are checked like a client's.
const (
	messageEntriesMax    = 1 << 16
	messageEntryBytesMax = 64 << 20
	// A bigger snapshot needs sending in chunks, which is not built yet.
	messageSnapshotBytesMax = 256 << 20
)

var errMessage = errors.New("election: bad message")

// AppendMessage encodes m after b:
//
//	[type u8][from u32][to u32][term][index][logTerm][commit][reject u8][hint]
//	[context][count u32] { [term][index][len u32][data] }
//	[has snapshot u8] ( [index][term][len u32][data] )
//
// with every unmarked number a u64, little-endian.
func AppendMessage(b []byte, m *Message) []byte {
	b = append(b, byte(m.Type))
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(m.From)))
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(m.To)))
	for _, v := range []uint64{m.Term, m.Index, m.LogTerm, m.Commit} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	reject := byte(0)
	if m.Reject {
		reject = 1
	}
	b = append(b, reject)
	b = binary.LittleEndian.AppendUint64(b, m.RejectHint)
	b = binary.LittleEndian.AppendUint64(b, m.Context)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Entries)))
	for _, e := range m.Entries {
		b = binary.LittleEndian.AppendUint64(b, e.Term)
		b = binary.LittleEndian.AppendUint64(b, e.Index)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Data)))
		b = append(b, e.Data...)
	}
	if m.Snapshot == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint64(b, m.Snapshot.Index)
	b = binary.LittleEndian.AppendUint64(b, m.Snapshot.Term)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Snapshot.Data)))
	return append(b, m.Snapshot.Data...)
}

// messageBytes is the length of m's encoding (AppendMessage), for a buffer
// made to measure: growing one by append copied a large entry's bytes
// about twice more, each time into fresh memory.
func messageBytes(m *Message) int {
	n := 1 + 4 + 4 + 8*4 + 1 + 8 + 8 + 4 + 1
	for _, e := range m.Entries {
		n += 20 + len(e.Data)
	}
	if m.Snapshot != nil {
		n += 20 + len(m.Snapshot.Data)
	}
	return n
}

// DecodeMessage decodes what AppendMessage wrote. The entries' data are
// copied out of b.
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	const fixed = 1 + 4 + 4 + 8*4 + 1 + 8 + 8 + 4
	if len(b) < fixed {
		return m, fmt.Errorf("%w: %d bytes, shorter than a header", errMessage, len(b))
	}
	m.Type = MsgType(b[0])
	if m.Type == 0 || m.Type >= msgTypeEnd {
		return m, fmt.Errorf("%w: unknown type %d", errMessage, b[0])
	}
	m.From = core.NodeID(int32(binary.LittleEndian.Uint32(b[1:])))
	m.To = core.NodeID(int32(binary.LittleEndian.Uint32(b[5:])))
	m.Term = binary.LittleEndian.Uint64(b[9:])
	m.Index = binary.LittleEndian.Uint64(b[17:])
	m.LogTerm = binary.LittleEndian.Uint64(b[25:])
	m.Commit = binary.LittleEndian.Uint64(b[33:])
	switch b[41] {
	case 0:
	case 1:
		m.Reject = true
	default:
		return m, fmt.Errorf("%w: reject flag %d", errMessage, b[41])
	}
	m.RejectHint = binary.LittleEndian.Uint64(b[42:])
	m.Context = binary.LittleEndian.Uint64(b[50:])
	count := binary.LittleEndian.Uint32(b[58:])
	if count > messageEntriesMax {
		return m, fmt.Errorf("%w: %d entries, the limit is %d", errMessage, count, messageEntriesMax)
	}
	p := b[fixed:]
	for i := uint32(0); i < count; i++ {
		if len(p) < 20 {
			return m, fmt.Errorf("%w: entry %d truncated", errMessage, i)
		}
		e := Entry{Term: binary.LittleEndian.Uint64(p), Index: binary.LittleEndian.Uint64(p[8:])}
		n := binary.LittleEndian.Uint32(p[16:])
		if n > messageEntryBytesMax || uint64(n) > uint64(len(p)-20) {
			return m, fmt.Errorf("%w: entry %d of %d bytes overruns the message", errMessage, i, n)
		}
		if n > 0 {
			e.Data = append([]byte(nil), p[20:20+n]...)
		}
		m.Entries = append(m.Entries, e)
		p = p[20+n:]
	}
	if len(p) < 1 {
		return m, fmt.Errorf("%w: snapshot flag missing", errMessage)
	}
	switch p[0] {
	case 0:
		p = p[1:]
	case 1:
		if len(p) < 21 {
			return m, fmt.Errorf("%w: snapshot header truncated", errMessage)
		}
		s := &Snapshot{Index: binary.LittleEndian.Uint64(p[1:]), Term: binary.LittleEndian.Uint64(p[9:])}
		n := binary.LittleEndian.Uint32(p[17:])
		if n > messageSnapshotBytesMax || uint64(n) > uint64(len(p)-21) {
			return m, fmt.Errorf("%w: snapshot of %d bytes overruns the message", errMessage, n)
		}
		if n > 0 {
			s.Data = append([]byte(nil), p[21:21+n]...)
		}
		m.Snapshot = s
		p = p[21+n:]
	default:
		return m, fmt.Errorf("%w: snapshot flag %d", errMessage, p[0])
	}
	if len(p) != 0 {
		return m, fmt.Errorf("%w: %d bytes after the last entry", errMessage, len(p))
	}
	if err := m.wellFormed(); err != nil {
		return m, err
	}
	return m, nil
}

// wellFormed checks what Raft's code takes for granted of a message's
// fields, beyond their sizes: entries only in an append, numbered on from
// its Index one by one, their terms never going down from its LogTerm nor
// above its Term (as in any Raft log); a snapshot only in a snapshot
// message, of a term no higher. A peer's bug or a damaged frame that broke
// one reached an assertion (maybeAppend's numbering, say) and stopped the
// node; such a message is dropped instead.
func (m *Message) wellFormed() error {
	if m.Type != MsgApp && len(m.Entries) > 0 {
		return fmt.Errorf("%w: a %v with entries", errMessage, m.Type)
	}
	if m.Type != MsgSnap && m.Snapshot != nil {
		return fmt.Errorf("%w: a %v with a snapshot", errMessage, m.Type)
	}
	if m.Snapshot != nil && m.Snapshot.Term > m.Term {
		return fmt.Errorf("%w: a snapshot of term %d in a message of term %d", errMessage, m.Snapshot.Term, m.Term)
	}
	if m.Type != MsgApp {
		return nil
	}
	if m.LogTerm > m.Term {
		return fmt.Errorf("%w: an append after an entry of term %d in term %d", errMessage, m.LogTerm, m.Term)
	}
	if m.Index > math.MaxUint64-uint64(len(m.Entries)) {
		return fmt.Errorf("%w: an append's entries past the last index", errMessage)
	}
	prevTerm := m.LogTerm
	for i, e := range m.Entries {
		if e.Index != m.Index+uint64(i)+1 {
			return fmt.Errorf("%w: entry %d of an append after index %d has index %d", errMessage, i, m.Index, e.Index)
		}
		if e.Term < prevTerm || e.Term > m.Term {
			return fmt.Errorf("%w: entry %d of term %d follows term %d in an append of term %d", errMessage, i, e.Term, prevTerm, m.Term)
		}
		prevTerm = e.Term
	}
	return nil
}
