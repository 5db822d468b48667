package realnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The peer wire format. Everything is little-endian.
//
// A connection starts with a hello from the dialer and a hello back from the
// acceptor, both helloBytes long:
//
//	[magic u32 "dkvp"][version u16][kind u8][status u8]
//	[cluster id u64][from u32][to u32][frame bytes max u32][crc32c u32]
//
// The dialer's hello (kind helloDial, status 0) names itself, the node it
// means to reach and its cluster. The acceptor answers (kind helloAccept)
// with status helloOK, or with the reason it refuses, and then closes. Both
// helloes carry the sender's own identity and frame limit, so a dialer that
// reached the wrong node or cluster can say which one it reached, and never
// sends a message that the receiver would refuse for its size.
//
// Nodes with a shared secret send hello version helloVersionAuth, and prove
// the secret to each other before any frame (peerauth.go).
//
// After the helloes the dialer sends frames and the acceptor only reads:
//
//	[length u32][crc32c u32][payload: length bytes]
//
// The checksum covers the length field and the payload, so a flipped bit in
// the length is caught too (once the frame, as misread, has arrived). A frame
// of length 0 is a keepalive and is not delivered.
const (
	helloMagic   = 0x70766b64 // "dkvp" in little-endian byte order
	helloVersion = 1
	helloBytes   = 32

	helloDial   = 1
	helloAccept = 2

	frameHeaderBytes = 8
	// frameBytesLimit bounds PeerConfig.FrameBytesMax: the length field is
	// a u32, and no message of this store comes near a GiB.
	frameBytesLimit = 1 << 30
)

// Hello statuses: why an acceptor refused a connection.
const (
	helloOK            = 0
	helloBadVersion    = 1 // the acceptor speaks another version
	helloWrongCluster  = 2 // ClusterID differs
	helloUnknownSender = 3 // the sender's id is not one of the acceptor's peers
	helloWrongReceiver = 4 // the dialer meant to reach another node
	helloFromSelf      = 5 // the dialer has the acceptor's own id
	helloAuthRequired  = 6 // the acceptor has a secret; the dialer has none
	helloAuthUnknown   = 7 // the dialer has a secret; the acceptor has none
	helloBadProof      = 8 // the dialer's proof of the secret was wrong (peerauth.go)
	helloCertNotSender = 9 // the dialer's TLS certificate does not name the host of the node it claims to be (tls.go)
)

func helloStatusText(s uint8) string {
	switch s {
	case helloOK:
		return "accepted"
	case helloBadVersion:
		return "protocol version mismatch"
	case helloWrongCluster:
		return "wrong cluster id"
	case helloUnknownSender:
		return "sender id not in the configuration"
	case helloWrongReceiver:
		return "meant for another node"
	case helloFromSelf:
		return "sender has the receiver's own id"
	case helloAuthRequired:
		return "the receiver has a password (--auth-file) and the sender none"
	case helloAuthUnknown:
		return "the sender has a password (--auth-file) and the receiver none"
	case helloBadProof:
		return "wrong password: the sender's --auth-file differs from the receiver's"
	case helloCertNotSender:
		return "the sender's TLS certificate does not name the host of the node it claims to be (its --peer-tls-cert must name its replication host)"
	}
	return fmt.Sprintf("unknown status %d", s)
}

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// hello is one side's introduction.
type hello struct {
	version       uint16
	kind          uint8
	status        uint8
	clusterID     uint64
	from, to      uint32
	frameBytesMax uint32
}

func (h *hello) encode() [helloBytes]byte {
	var b [helloBytes]byte
	binary.LittleEndian.PutUint32(b[0:], helloMagic)
	binary.LittleEndian.PutUint16(b[4:], h.version)
	b[6] = h.kind
	b[7] = h.status
	binary.LittleEndian.PutUint64(b[8:], h.clusterID)
	binary.LittleEndian.PutUint32(b[16:], h.from)
	binary.LittleEndian.PutUint32(b[20:], h.to)
	binary.LittleEndian.PutUint32(b[24:], h.frameBytesMax)
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], crc32c))
	return b
}

var (
	errHelloMagic    = errors.New("not a dkv peer (bad magic)")
	errHelloChecksum = errors.New("hello checksum mismatch")
)

// decodeHello checks the magic and checksum; the fields are for the caller
// to judge.
func decodeHello(b *[helloBytes]byte) (hello, error) {
	if binary.LittleEndian.Uint32(b[0:]) != helloMagic {
		return hello{}, errHelloMagic
	}
	if crc32.Checksum(b[:28], crc32c) != binary.LittleEndian.Uint32(b[28:]) {
		return hello{}, errHelloChecksum
	}
	return hello{
		version:       binary.LittleEndian.Uint16(b[4:]),
		kind:          b[6],
		status:        b[7],
		clusterID:     binary.LittleEndian.Uint64(b[8:]),
		from:          binary.LittleEndian.Uint32(b[16:]),
		to:            binary.LittleEndian.Uint32(b[20:]),
		frameBytesMax: binary.LittleEndian.Uint32(b[24:]),
	}, nil
}

// frameHeader is the header of a frame carrying payload.
func frameHeader(payload []byte) [frameHeaderBytes]byte {
	// A length that does not fit would be cut, and the receiver would read
	// the rest of the payload as frames. Send's limit rules it out; this
	// guards the wire against a bug that skips it.
	if uint64(len(payload)) > frameBytesLimit {
		panic(fmt.Sprintf("realnet: bug: frame of %d bytes is over the %d-byte limit", len(payload), frameBytesLimit))
	}
	var h [frameHeaderBytes]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:], frameChecksum(h[0:4], payload))
	return h
}

// frameChecksum covers the length field and the payload.
func frameChecksum(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, crc32c), crc32c, payload)
}
