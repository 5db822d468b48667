package election

import (
	"encoding/binary"
	"errors"
	"fmt"

	"dkv/core"
)

// hardStateFile is the name of the file that keeps a cluster node's
// identity, term and vote (core.StateFile). The commit index is not kept:
// a restarted node learns it from the leader, and applies nothing before.
const hardStateFile = "raft-state"

// durableState is what raft-state holds.
type durableState struct {
	ClusterID uint64
	NodeID    core.NodeID
	Term      uint64
	Vote      core.NodeID
	// Installing is the index of a leader's snapshot being installed: set
	// before the snapshot file takes its name, cleared once the log was
	// started afresh after it. A restart that finds it set, and the
	// snapshot in place, finishes the install; the log it had then
	// belongs to a history the snapshot replaced.
	Installing uint64
	// Rejoining: the node was started on an empty directory (every node
	// is, lost disk or new cluster) and has not yet made up for what it
	// may have forgot (HardState.Rejoining); kept so that a restart
	// meanwhile does not end it.
	Rejoining bool
}

// durableStateVersion is the record's format; version 2 adds a byte of
// flags (Rejoining) and is written only while a flag is set, so that a
// directory written by a build before it reads the same as ever.
const (
	durableStateVersion  = 1
	durableStateVersion2 = 2
	durableStateBytes    = 1 + 8 + 4 + 8 + 4 + 8
	flagRejoining        = 1
)

func (s *durableState) encode() []byte {
	version := byte(durableStateVersion)
	if s.Rejoining {
		version = durableStateVersion2
	}
	b := []byte{version}
	b = binary.LittleEndian.AppendUint64(b, s.ClusterID)
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(s.NodeID)))
	b = binary.LittleEndian.AppendUint64(b, s.Term)
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(s.Vote)))
	b = binary.LittleEndian.AppendUint64(b, s.Installing)
	if version == durableStateVersion2 {
		b = append(b, flagRejoining)
	}
	return b
}

var errDurableState = errors.New("bad raft-state record")

func decodeDurableState(b []byte) (durableState, error) {
	var s durableState
	switch {
	case len(b) == durableStateBytes && b[0] == durableStateVersion:
	case len(b) == durableStateBytes+1 && b[0] == durableStateVersion2 && b[durableStateBytes]&^flagRejoining == 0:
		s.Rejoining = b[durableStateBytes]&flagRejoining != 0
	default:
		return s, fmt.Errorf("%w: %d bytes, version %d", errDurableState, len(b), b[0])
	}
	s.ClusterID = binary.LittleEndian.Uint64(b[1:])
	s.NodeID = core.NodeID(int32(binary.LittleEndian.Uint32(b[9:])))
	s.Term = binary.LittleEndian.Uint64(b[13:])
	s.Vote = core.NodeID(int32(binary.LittleEndian.Uint32(b[21:])))
	s.Installing = binary.LittleEndian.Uint64(b[25:])
	return s, nil
}
