package mesh

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// stateFile is the mesh node's small durable state (a core.StateFile):
//
//	[version u8 = 1][mesh id u64][node id u16][high-water stamp][horizon stamp]
//
// The high-water mark is the highest clock reading the node has used in a
// way that outlives it besides the stamps of its writes (which its log and
// snapshot keep): the start of an anti-entropy pass that became its
// stability point. A restarted node starts its clock above both, so its
// stamps never go backwards even when calendar time does, and never below
// a stability point it announced. (Saving a mark ahead of the clock
// instead, and starting above it, would move a node that restarts often
// ahead of its peers by that margin each time.) The horizon is the collection
// horizon (horizon.go): once it is saved, tombstones at or below it may go,
// and writes at or below it for keys the node lacks are refused.
const stateFile = "mesh-state"

type durableState struct {
	MeshID    uint64
	NodeID    uint16
	HighWater Stamp
	Horizon   Stamp
}

const stateVersion = 1

func (s *durableState) encode() []byte {
	b := []byte{stateVersion}
	b = binary.LittleEndian.AppendUint64(b, s.MeshID)
	b = binary.LittleEndian.AppendUint16(b, s.NodeID)
	b = appendStamp(b, s.HighWater)
	return appendStamp(b, s.Horizon)
}

var errState = errors.New("malformed mesh state")

func decodeState(p []byte) (durableState, error) {
	var s durableState
	if len(p) != 1+8+2+2*stampBytes || p[0] != stateVersion {
		return s, fmt.Errorf("%w (%d bytes, version %d)", errState, len(p), firstByte(p))
	}
	s.MeshID = binary.LittleEndian.Uint64(p[1:])
	s.NodeID = binary.LittleEndian.Uint16(p[9:])
	s.HighWater = decodeStamp(p[11:])
	s.Horizon = decodeStamp(p[11+stampBytes:])
	return s, nil
}

func firstByte(p []byte) int {
	if len(p) == 0 {
		return -1
	}
	return int(p[0])
}
