package election

import (
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
		for i := range rapid.IntRange(0, 5).Draw(t, "entries") {
			e := Entry{Term: rapid.Uint64().Draw(t, "eterm"), Index: m.Index + uint64(i) + 1}
			if data := rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "data"); len(data) > 0 {
				e.Data = data
			}
			m.Entries = append(m.Entries, e)
		}
		return m
	})
}

func TestMessageRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMessage().Draw(t, "m")
		b := AppendMessage(nil, &m)
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
