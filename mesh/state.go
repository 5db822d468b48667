package mesh

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// stateFile is the mesh node's small durable state (a core.StateFile):
//
//	[version u8 = 3][mesh id u64][node id u16][incarnation u64]
//	[high-water stamp][horizon stamp][refusal stamp][joined u8]
//	[evicted u8][removed count u8]{[node id u16][below incarnation u64]}
//
// (Version 1, without joined, is read as joined: a node that ran before
// the rule of join.go was already part of its mesh. Version 2 ends after
// joined, and is read as neither evicted nor knowing of removed nodes; it
// is still written when that is so.)
// Evicted and the removed nodes are removed.go's: a peer told this
// directory that its node was removed from the mesh for good; and the
// nodes removed from the mesh, each with the highest incarnation of its
// that this node refuses.
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
	Evicted     bool
	// Removed holds, by node id, the highest incarnation of that node
	// this node refuses as removed (0: none).
	Removed [nodesMax]uint64
}

const (
	stateVersion   = 3
	stateV1Bytes   = 1 + 8 + 2 + 8 + 3*stampBytes
	stateV2Bytes   = stateV1Bytes + 1
	stateV3Bytes   = stateV2Bytes + 2 // and removalBytes a removed node
	removalBytes   = 2 + 8
	stateVersionV1 = 1
	stateVersionV2 = 2
)

func (s *durableState) encode() []byte {
	b := []byte{stateVersion}
	b = binary.LittleEndian.AppendUint64(b, s.MeshID)
	b = binary.LittleEndian.AppendUint16(b, s.NodeID)
	b = binary.LittleEndian.AppendUint64(b, s.Incarnation)
	b = appendStamp(b, s.HighWater)
	b = appendStamp(b, s.Horizon)
	b = appendStamp(b, s.Refuse)
	b = appendBool(b, s.Joined)
	count := 0
	for _, below := range s.Removed {
		if below != 0 {
			count++
		}
	}
	if !s.Evicted && count == 0 {
		// Version 2 while it says all: a node that never removed one can
		// still go back to a binary that reads no later version.
		b[0] = stateVersionV2
		return b
	}
	b = appendBool(b, s.Evicted)
	b = append(b, byte(count))
	for id, below := range s.Removed {
		if below != 0 {
			b = binary.LittleEndian.AppendUint16(b, uint16(id))
			b = binary.LittleEndian.AppendUint64(b, below)
		}
	}
	return b
}

var errState = errors.New("malformed mesh state")

func decodeState(p []byte) (durableState, error) {
	var s durableState
	switch {
	case len(p) == stateV1Bytes && p[0] == stateVersionV1:
		s.Joined = true
	case len(p) == stateV2Bytes && p[0] == stateVersionV2 && p[stateV1Bytes] <= 1:
		s.Joined = p[stateV1Bytes] == 1
	case len(p) >= stateV3Bytes && p[0] == stateVersion && p[stateV1Bytes] <= 1 && p[stateV1Bytes+1] <= 1 &&
		len(p) == stateV3Bytes+removalBytes*int(p[stateV2Bytes+1]):
		s.Joined = p[stateV1Bytes] == 1
		s.Evicted = p[stateV1Bytes+1] == 1
		for r := p[stateV3Bytes:]; len(r) > 0; r = r[removalBytes:] {
			id, below := binary.LittleEndian.Uint16(r), binary.LittleEndian.Uint64(r[2:])
			if int(id) >= nodesMax || below == 0 || s.Removed[id] != 0 {
				return s, fmt.Errorf("%w (removed node %d, incarnation %d)", errState, id, below)
			}
			s.Removed[id] = below
		}
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
