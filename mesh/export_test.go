package mesh

// What the package's external tests (package mesh_test) need of its
// insides: the kinds of the messages they hold back or look for, and a way
// to make a peer's replicate by hand.
const (
	KindReplicate    = msgReplicate
	KindReplicateAck = msgReplicateAck
)

// ReplicateFor encodes a replicate of items from n to peer to, the quorum
// writes among them named by their stamps, as n would send it.
func (n *Node) ReplicateFor(to uint16, items []Item, quorum []Stamp) []byte {
	for _, p := range n.peers {
		if uint16(p.id) == to {
			return n.encode(p, &message{header: header{kind: msgReplicate}, items: items, quorum: quorum})
		}
	}
	panic("ReplicateFor: not a peer")
}

// AckedStamps decodes a replicate acknowledgement: the stamps of the
// writes it acknowledges (nil if b is another kind of message).
func AckedStamps(b []byte) []Stamp {
	m, err := decodeMessage(b)
	if err != nil || m.kind != msgReplicateAck {
		return nil
	}
	return m.quorum
}

// Refuse is n's refusal point (horizon.go).
func (n *Node) Refuse() Stamp { return n.saved.Refuse }

// KindSummary is the kind of an anti-entropy summary.
const KindSummary = msgSummary

// KindPush and KindPushAck are the kinds of an anti-entropy push and its
// answer, which carries the pulled items.
const (
	KindPush    = msgPush
	KindPushAck = msgPushAck
)

// CalendarFor encodes a calendar message from n to peer to, as n would
// send it, naming tooAhead as a reading of to's that n refuses.
func (n *Node) CalendarFor(to uint16, tooAhead int64) []byte {
	for _, p := range n.peers {
		if uint16(p.id) == to {
			return n.encode(p, &message{header: header{kind: msgCalendar}, sent: n.wall(), seen: p.offset.seen, tooAhead: tooAhead})
		}
	}
	panic("CalendarFor: not a peer")
}
