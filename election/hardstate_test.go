package election

import (
	"errors"
	"testing"
)

// raft-state keeps its first format while no flag is set, so that a
// directory written before Rejoining existed reads the same; a rejoining
// node's record carries the flag, and survives a round trip.
func TestDurableStateRoundTrip(t *testing.T) {
	for _, s := range []durableState{
		{ClusterID: 7, NodeID: 2, Term: 9, Vote: 1, Installing: 40},
		{ClusterID: 7, NodeID: 0, Vote: None, Rejoining: true},
	} {
		b := s.encode()
		if want := durableStateBytes + map[bool]int{false: 0, true: 1}[s.Rejoining]; len(b) != want || (b[0] == durableStateVersion) == s.Rejoining {
			t.Errorf("%+v: %d bytes, version %d", s, len(b), b[0])
		}
		got, err := decodeDurableState(b)
		if err != nil || got != s {
			t.Errorf("%+v: decoded %+v, %v", s, got, err)
		}
	}
	b := (&durableState{Rejoining: true}).encode()
	b[len(b)-1] = 0x80 // a flag this build does not know
	if _, err := decodeDurableState(b); !errors.Is(err, errDurableState) {
		t.Errorf("an unknown flag: %v, want errDurableState", err)
	}
}
