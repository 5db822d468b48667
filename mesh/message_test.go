package mesh

import (
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

func genItem() *rapid.Generator[Item] {
	return rapid.Custom(func(t *rapid.T) Item {
		it := Item{Key: rapid.StringN(1, 12, -1).Draw(t, "key"), Stamp: genStamp().Draw(t, "stamp")}
		if it.Tomb = rapid.Bool().Draw(t, "tomb"); !it.Tomb {
			it.Value = rapid.String().Draw(t, "value")
		}
		return it
	})
}

func genMessage() *rapid.Generator[*message] {
	return rapid.Custom(func(t *rapid.T) *message {
		m := &message{header: header{
			kind:      rapid.SampledFrom([]byte{msgReplicate, msgReplicateAck, msgDigest, msgSummary, msgPush, msgPushAck, msgClockRefused, msgCalendar}).Draw(t, "kind"),
			clock:     genStamp().Draw(t, "clock"),
			stable:    genStamp().Draw(t, "stable"),
			horizon:   genStamp().Draw(t, "horizon"),
			inc:       rapid.Uint64().Draw(t, "inc"),
			yourInc:   rapid.Uint64().Draw(t, "yourInc"),
			passedYou: genStamp().Draw(t, "passedYou"),
		}}
		genCursor := rapid.Custom(func(t *rapid.T) cursor {
			return cursor{bucket: rapid.IntRange(0, bucketsN).Draw(t, "bucket"), key: rapid.StringN(0, 8, -1).Draw(t, "ckey")}
		})
		switch m.kind {
		case msgReplicate:
			m.quorum = rapid.SliceOf(genStamp()).Draw(t, "quorum")
			m.items = rapid.SliceOf(genItem()).Draw(t, "items")
		case msgReplicateAck:
			m.quorum = rapid.SliceOf(genStamp()).Draw(t, "quorum")
		case msgDigest:
			m.round = rapid.Uint64().Draw(t, "round")
			m.from = genCursor.Draw(t, "from")
			m.digests = make([]uint64, bucketsN)
			for i := range rapid.IntRange(0, 20).Draw(t, "set") {
				m.digests[rapid.IntRange(0, bucketsN-1).Draw(t, "at")] = uint64(i) * 0x9e3779b97f4a7c15
			}
		case msgSummary:
			m.round = rapid.Uint64().Draw(t, "round")
			m.from, m.to = genCursor.Draw(t, "from"), genCursor.Draw(t, "to")
			m.diff = rapid.SliceOf(rapid.IntRange(0, bucketsN-1)).Draw(t, "diff")
			for range rapid.IntRange(0, 10).Draw(t, "metas") {
				m.metas = append(m.metas, meta{key: rapid.StringN(1, 8, -1).Draw(t, "mkey"), stamp: genStamp().Draw(t, "mstamp"), tomb: rapid.Bool().Draw(t, "mtomb")})
			}
		case msgPush:
			m.round = rapid.Uint64().Draw(t, "round")
			m.items = rapid.SliceOf(genItem()).Draw(t, "items")
			m.pull = rapid.SliceOf(rapid.StringN(1, 8, -1)).Draw(t, "pull")
		case msgPushAck:
			m.round = rapid.Uint64().Draw(t, "round")
			m.partial = rapid.Bool().Draw(t, "partial")
			m.items = rapid.SliceOf(genItem()).Draw(t, "items")
		case msgClockRefused:
			m.refused = genStamp().Draw(t, "refused")
		case msgCalendar:
			m.sent = rapid.Int64().Draw(t, "sent")
			m.seen = rapid.Int64().Draw(t, "seen")
			m.tooAhead = rapid.Int64().Draw(t, "too ahead")
		}
		return m
	})
}

// normal makes empty slices nil, as the decoder leaves them.
func normal(m *message) *message {
	c := *m
	if len(c.items) == 0 {
		c.items = nil
	}
	if len(c.diff) == 0 {
		c.diff = nil
	}
	if len(c.metas) == 0 {
		c.metas = nil
	}
	if len(c.pull) == 0 {
		c.pull = nil
	}
	if len(c.quorum) == 0 {
		c.quorum = nil
	}
	return &c
}

// Every message decodes to what was encoded; every strict prefix of it and
// every extension fails to decode (no message is read from a part of
// another, nor with bytes left over).
func TestMessageRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMessage().Draw(t, "m")
		b := m.encode()
		got, err := decodeMessage(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(normal(got), normal(m)) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
		}
		cut := rapid.IntRange(0, len(b)-1).Draw(t, "cut")
		if _, err := decodeMessage(b[:cut]); err == nil {
			t.Fatalf("a %d-byte prefix of a %d-byte message decoded", cut, len(b))
		}
		if _, err := decodeMessage(append(b, 0)); err == nil {
			t.Fatalf("a message with a byte after its end decoded")
		}
	})
}

// Random bytes never panic the decoder, and it never allocates past what
// the input could hold.
func TestDecodeMessageJunk(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		_, _ = decodeMessage(rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "junk"))
	})
}

func TestRecordItemsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		items := rapid.SliceOfN(genItem(), 1, 10).Draw(t, "items")
		got, err := decodeItems(appendItems(nil, items))
		if err != nil || !reflect.DeepEqual(got, items) {
			t.Fatalf("decodeItems = %v, %v; want %v", got, err, items)
		}
		b := appendItems(nil, items)
		if _, err := decodeItems(b[:len(b)-1]); err == nil {
			t.Fatalf("a cut record decoded")
		}
	})
}

func TestStateRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := durableState{MeshID: rapid.Uint64().Draw(t, "mesh"), NodeID: rapid.Uint16().Draw(t, "node"), Incarnation: rapid.Uint64().Draw(t, "inc"),
			HighWater: genStamp().Draw(t, "hw"), Horizon: genStamp().Draw(t, "horizon"), Refuse: genStamp().Draw(t, "refuse"), Joined: rapid.Bool().Draw(t, "joined")}
		got, err := decodeState(s.encode())
		if err != nil || got != s {
			t.Fatalf("decodeState = %+v, %v; want %+v", got, err, s)
		}
		b := s.encode()
		if _, err := decodeState(b[:len(b)-1]); err == nil {
			t.Fatalf("a cut state decoded")
		}
	})
}

// A state file of version 1 (before join.go) is read as a joined node's:
// it was part of its mesh already.
func TestStateVersion1IsJoined(t *testing.T) {
	s := durableState{MeshID: 9, NodeID: 1, Incarnation: 7, HighWater: Stamp{Wall: 5}, Horizon: Stamp{Wall: 3}, Refuse: Stamp{Wall: 4}}
	b := s.encode()
	v1 := append([]byte{stateVersionV1}, b[1:stateV1Bytes]...)
	got, err := decodeState(v1)
	s.Joined = true
	if err != nil || got != s {
		t.Fatalf("decodeState(version 1) = %+v, %v; want %+v", got, err, s)
	}
}
