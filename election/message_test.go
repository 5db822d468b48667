package election

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"dkv/core"
)

func genMessage() *rapid.Generator[Message] {
	return rapid.Custom(func(t *rapid.T) Message {
		m := Message{
			Type:       MsgType(rapid.IntRange(int(MsgPreVote), int(msgTypeEnd)-1).Draw(t, "type")),
			From:       core.NodeID(rapid.IntRange(-1, 1<<20).Draw(t, "from")),
			To:         core.NodeID(rapid.IntRange(-1, 1<<20).Draw(t, "to")),
			Term:       rapid.Uint64().Draw(t, "term"),
			Index:      rapid.Uint64().Draw(t, "index"),
			LogTerm:    rapid.Uint64().Draw(t, "logTerm"),
			Commit:     rapid.Uint64().Draw(t, "commit"),
			Reject:     rapid.Bool().Draw(t, "reject"),
			RejectHint: rapid.Uint64().Draw(t, "hint"),
			Context:    rapid.Uint64().Draw(t, "context"),
		}
		if m.Type != MsgApp {
			return m
		}
		// An append is shaped as a log is (Message.wellFormed).
		m.Index = rapid.Uint64Range(0, 1<<62).Draw(t, "index")
		m.LogTerm = rapid.Uint64Range(0, m.Term).Draw(t, "logTerm")
		term := m.LogTerm
		for i := range rapid.IntRange(0, 5).Draw(t, "entries") {
			term = rapid.Uint64Range(term, m.Term).Draw(t, "eterm")
			e := Entry{Term: term, Index: m.Index + uint64(i) + 1}
			if data := rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "data"); len(data) > 0 {
				e.Data = data
			}
			m.Entries = append(m.Entries, e)
		}
		return m
	})
}

// A message whose fields break what Raft's code takes for granted is
// refused by DecodeMessage and dropped by Step, never an assertion: before
// wellFormed, an append whose entries skipped an index stopped a follower
// (maybeAppend's numbering), found by review.
func TestMalformedMessagesAreRefused(t *testing.T) {
	app := func(index, logTerm, term uint64, ents ...Entry) Message {
		return Message{Type: MsgApp, From: 1, To: 0, Term: term, Index: index, LogTerm: logTerm, Entries: ents}
	}
	for name, m := range map[string]Message{
		"an entry skips an index":      app(0, 0, 1, Entry{Term: 1, Index: 7}),
		"entries out of order":         app(3, 1, 2, Entry{Term: 1, Index: 5}, Entry{Term: 1, Index: 4}),
		"an entry's term goes down":    app(3, 1, 3, Entry{Term: 2, Index: 4}, Entry{Term: 1, Index: 5}),
		"an entry below the prev term": app(3, 2, 3, Entry{Term: 1, Index: 4}),
		"an entry above the term":      app(3, 1, 2, Entry{Term: 3, Index: 4}),
		"a prev term above the term":   app(3, 4, 2),
		"entries past the last index":  app(math.MaxUint64, 1, 1, Entry{Term: 1, Index: 0}),
		"entries in a vote":            {Type: MsgVote, From: 1, Term: 1, Entries: []Entry{{Term: 1, Index: 1}}},
		"a snapshot in an append":      {Type: MsgApp, From: 1, Term: 1, Snapshot: &Snapshot{Index: 1, Term: 1}},
		"a snapshot of a later term":   {Type: MsgSnap, From: 1, Term: 1, Snapshot: &Snapshot{Index: 1, Term: 2}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeMessage(AppendMessage(nil, &m)); !errors.Is(err, errMessage) {
				t.Fatalf("decoded: %v", err)
			}
			c := newCluster(t, 3, 1)
			l := c.settle(100)
			f := c.members[(l+1)%3].r
			m.From, m.To, m.Term = f.peers[l], f.id, max(m.Term, f.Term())
			before := f.LastIndex()
			f.Step(m) // no assertion fires
			if f.LastIndex() != before {
				t.Fatalf("the follower's log went from %d to %d", before, f.LastIndex())
			}
		})
	}
}

// A leader ignores an acknowledgement of entries past its log, which no
// follower of its term can hold: taken as the follower's match, it had the
// leader's next append start beyond its log, an assertion (found by
// review).
func TestAckPastTheLeadersLogIsIgnored(t *testing.T) {
	c := newCluster(t, 3, 1)
	l := c.settle(100)
	lr := c.members[l].r
	f := (l + 1) % 3
	lr.Step(Message{Type: MsgAppResp, From: lr.peers[f], To: lr.id, Term: lr.Term(), Index: lr.LastIndex() + 1000})
	lr.Advance(lr.Ready())
	lr.Propose([]byte("x"))
	lr.Advance(lr.Ready())
	if got := lr.progress[f].match; got > lr.LastIndex() {
		t.Fatalf("follower %d's match %d is past the leader's last index %d", f, got, lr.LastIndex())
	}
}

func TestMessageRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMessage().Draw(t, "m")
		b := AppendMessage(nil, &m)
		if len(b) != messageBytes(&m) {
			t.Fatalf("encoded in %d bytes, messageBytes says %d", len(b), messageBytes(&m))
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
		}
		// Any cut of the bytes is refused, never misread.
		n := rapid.IntRange(0, len(b)-1).Draw(t, "cut")
		if _, err := DecodeMessage(b[:n]); err == nil {
			t.Fatalf("a message cut to %d of %d bytes decoded", n, len(b))
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	m := Message{Type: MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 3, Commit: 4,
		Entries: []Entry{{Term: 3, Index: 5, Data: []byte("x")}}}
	f.Add(AppendMessage(nil, &m))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		// What decodes encodes back to the same bytes.
		if again := AppendMessage(nil, &m); string(again) != string(b) {
			t.Fatalf("re-encoding differs")
		}
	})
}
