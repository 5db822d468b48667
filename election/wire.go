package election

import (
	"encoding/binary"
	"fmt"

	"dkv/core"
)

// What a cluster node sends its peers: a kind byte, then the kind's body.
// Raft's own messages travel whole; a snapshot travels beside them in
// chunks that the follower acknowledges one by one, so a big store never
// needs one big message and a transfer cut short resumes where it stopped.
const (
	wireRaft     byte = 1 // [AppendMessage]
	wireChunk    byte = 2 // a piece of a snapshot file, leader to follower
	wireChunkAck byte = 3 // how much of it the follower holds
)

// chunk is a piece of the leader's snapshot file of (Index, SnapTerm),
// sent in the leader's Term. Commit and Context are what the leader's
// MsgSnap carried, for the follower to hand its Raft once the file is whole.
type chunk struct {
	From, To        core.NodeID
	Term            uint64
	Index, SnapTerm uint64
	Commit, Context uint64
	Offset, Total   uint64
	Data            []byte
}

// chunkAck tells the leader that the follower holds Have bytes of the
// snapshot at Index.
type chunkAck struct {
	From, To core.NodeID
	Term     uint64
	Index    uint64
	Have     uint64
}

const chunkHeaderBytes = 1 + 4 + 4 + 8*7 + 4

// snapFileBytesMax bounds a snapshot file a follower accepts.
const snapFileBytesMax = 1 << 40

func appendChunk(b []byte, c *chunk) []byte {
	b = append(b, wireChunk)
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(c.From)))
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(c.To)))
	for _, v := range []uint64{c.Term, c.Index, c.SnapTerm, c.Commit, c.Context, c.Offset, c.Total} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(c.Data)))
	return append(b, c.Data...)
}

func decodeChunk(b []byte, dataMax int) (chunk, error) {
	var c chunk
	if len(b) < chunkHeaderBytes || b[0] != wireChunk {
		return c, fmt.Errorf("%w: snapshot chunk of %d bytes", errMessage, len(b))
	}
	c.From = core.NodeID(int32(binary.LittleEndian.Uint32(b[1:])))
	c.To = core.NodeID(int32(binary.LittleEndian.Uint32(b[5:])))
	vs := []*uint64{&c.Term, &c.Index, &c.SnapTerm, &c.Commit, &c.Context, &c.Offset, &c.Total}
	for i, v := range vs {
		*v = binary.LittleEndian.Uint64(b[9+8*i:])
	}
	n := binary.LittleEndian.Uint32(b[chunkHeaderBytes-4:])
	if int64(n) > int64(dataMax) || int(n) != len(b)-chunkHeaderBytes {
		return c, fmt.Errorf("%w: snapshot chunk says %d bytes of data, carries %d (limit %d)", errMessage, n, len(b)-chunkHeaderBytes, dataMax)
	}
	// Offset+n could wrap around: compare against what is left instead.
	if c.Total > snapFileBytesMax || c.Offset > c.Total || uint64(n) > c.Total-c.Offset {
		return c, fmt.Errorf("%w: snapshot chunk at %d+%d beyond the file's %d bytes", errMessage, c.Offset, n, c.Total)
	}
	c.Data = b[chunkHeaderBytes:]
	return c, nil
}

const chunkAckBytes = 1 + 4 + 4 + 8*3

func appendChunkAck(b []byte, a *chunkAck) []byte {
	b = append(b, wireChunkAck)
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(a.From)))
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(a.To)))
	b = binary.LittleEndian.AppendUint64(b, a.Term)
	b = binary.LittleEndian.AppendUint64(b, a.Index)
	return binary.LittleEndian.AppendUint64(b, a.Have)
}

func decodeChunkAck(b []byte) (chunkAck, error) {
	var a chunkAck
	if len(b) != chunkAckBytes || b[0] != wireChunkAck {
		return a, fmt.Errorf("%w: chunk ack of %d bytes", errMessage, len(b))
	}
	a.From = core.NodeID(int32(binary.LittleEndian.Uint32(b[1:])))
	a.To = core.NodeID(int32(binary.LittleEndian.Uint32(b[5:])))
	a.Term = binary.LittleEndian.Uint64(b[9:])
	a.Index = binary.LittleEndian.Uint64(b[17:])
	a.Have = binary.LittleEndian.Uint64(b[25:])
	return a, nil
}

// PeekRaft decodes msg, a message one cluster node sent another, if it
// carries a Raft message: for observers of the traffic, such as the
// simulator's election checks.
func PeekRaft(msg []byte) (Message, bool) {
	if len(msg) == 0 || msg[0] != wireRaft {
		return Message{}, false
	}
	m, err := DecodeMessage(msg[1:])
	return m, err == nil
}
