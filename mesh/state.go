package mesh

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// stateFile is the mesh node's small durable state (a core.StateFile):
//
//	[version u8 = 2][mesh id u64][node id u16][incarnation u64]
//	[high-water stamp][horizon stamp][refusal stamp][joined u8]
//
// (Version 1, without joined, is read as joined: a node that ran before
// the rule of join.go was already part of its mesh.)
//
// The incarnation is the calendar time when the directory is created
// (raised above a higher one a peer names, Node.outgrow): peers tell a
// node whose directory was wiped (and which lost what it held) from the
// one they knew.
//
// The high-water mark is the highest clock reading the node has used in a
// way that outlives it besides the stamps of its writes (which its log and
// snapshot keep): the start of an anti-entropy pass that became its
// stability point. A restarted node starts its clock above both, so its
// stamps never go backwards even when calendar time does, and never below
// a stability point it announced. (Saving a mark ahead of the clock
// instead, and starting above it, would move a node that restarts often
// ahead of its peers by that margin each time.) The horizon is the collection
// horizon (horizon.go): once it is saved, tombstones at or below it may go.
// The refusal point (horizon.go) is the stamp at or below which the node
// holds every write or a newer one: a write at or below it for a key the
// node lacks is one whose tombstone it collected, and is refused. Joined
// says the node has heard from every peer since the directory was created,
// and its high-water mark is above their clocks then (join.go).
const stateFile = "mesh-state"

type durableState struct {
	MeshID      uint64
	NodeID      uint16
	Incarnation uint64
	HighWater   Stamp
	Horizon     Stamp
	Refuse      Stamp
	Joined      bool
}

const (
	stateVersion   = 2
	stateV1Bytes   = 1 + 8 + 2 + 8 + 3*stampBytes
	stateV2Bytes   = stateV1Bytes + 1
	stateVersionV1 = 1
)

func (s *durableState) encode() []byte {
	b := []byte{stateVersion}
	b = binary.LittleEndian.AppendUint64(b, s.MeshID)
	b = binary.LittleEndian.AppendUint16(b, s.NodeID)
	b = binary.LittleEndian.AppendUint64(b, s.Incarnation)
	b = appendStamp(b, s.HighWater)
	b = appendStamp(b, s.Horizon)
	b = appendStamp(b, s.Refuse)
	if s.Joined {
		return append(b, 1)
	}
	return append(b, 0)
}

var errState = errors.New("malformed mesh state")

func decodeState(p []byte) (durableState, error) {
	var s durableState
	switch {
	case len(p) == stateV1Bytes && p[0] == stateVersionV1:
		s.Joined = true
	case len(p) == stateV2Bytes && p[0] == stateVersion && p[stateV1Bytes] <= 1:
		s.Joined = p[stateV1Bytes] == 1
	default:
		return s, fmt.Errorf("%w (%d bytes, version %d)", errState, len(p), firstByte(p))
	}
	s.MeshID = binary.LittleEndian.Uint64(p[1:])
	s.NodeID = binary.LittleEndian.Uint16(p[9:])
	s.Incarnation = binary.LittleEndian.Uint64(p[11:])
	s.HighWater = decodeStamp(p[19:])
	s.Horizon = decodeStamp(p[19+stampBytes:])
	s.Refuse = decodeStamp(p[19+2*stampBytes:])
	return s, nil
}

func firstByte(p []byte) int {
	if len(p) == 0 {
		return -1
	}
	return int(p[0])
}
