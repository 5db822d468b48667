package mesh

import (
	"testing"

	"pgregory.net/rapid"
)

// The state round-trips with removed nodes and eviction; without either
// it is written as version 2, which an earlier binary reads.
func TestStateWithRemovalsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := durableState{MeshID: rapid.Uint64().Draw(t, "mesh"), NodeID: rapid.Uint16().Draw(t, "node"), Incarnation: rapid.Uint64().Draw(t, "inc"),
			HighWater: genStamp().Draw(t, "hw"), Horizon: genStamp().Draw(t, "horizon"), Refuse: genStamp().Draw(t, "refuse"),
			Joined: rapid.Bool().Draw(t, "joined"), Evicted: rapid.Bool().Draw(t, "evicted")}
		for range rapid.IntRange(0, 5).Draw(t, "removed") {
			s.Removed[rapid.IntRange(0, nodesMax-1).Draw(t, "id")] = rapid.Uint64Min(1).Draw(t, "below")
		}
		b := s.encode()
		got, err := decodeState(b)
		if err != nil || got != s {
			t.Fatalf("decodeState = %+v, %v; want %+v", got, err, s)
		}
		if v2 := !s.Evicted && s.Removed == [nodesMax]uint64{}; v2 != (b[0] == stateVersionV2 && len(b) == stateV2Bytes) {
			t.Fatalf("state %+v encoded as version %d, %d bytes", s, b[0], len(b))
		}
		if _, err := decodeState(b[:len(b)-1]); err == nil {
			t.Fatalf("a cut state decoded")
		}
	})
}
