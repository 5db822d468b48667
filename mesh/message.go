package mesh

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Peer messages. Every message starts with a header that carries the
// sender's clock (peers observe it, so stamps taken after a message arrives
// are above the ones it carried), its stability point and its collection
// horizon, its incarnation, and the start of its last complete pass with the
// receiver, in the receiver's incarnation it names (see horizon.go):
//
//	[kind u8][clock stamp][stable stamp][horizon stamp]
//	[incarnation u64][your incarnation u64][passed you stamp]
//
// then the kind's body. Integers are little-endian; lengths are uvarints.
//
// Kinds 1 and 2 were the replicate and its acknowledgement when quorum
// writes were named by a counter that restarted with the node; they are
// retired, not reused, so that a node of an earlier version drops the
// messages of a later one as of an unknown kind rather than misreading
// them (and the other way round). Kind 11, the calendar reading, is new
// since 2026-12-06: a node of an earlier build drops it as of an unknown
// kind and reads every other message as before, and a node of this build
// has no calendar reading of such a peer, so it judges no offset from it
// (offset.go).
const (
	msgDigest       byte = 3  // anti-entropy: the sender's bucket digests
	msgSummary      byte = 4  // anti-entropy: keys and stamps of the buckets that differ
	msgPush         byte = 5  // anti-entropy: items the peer lacks, and keys to pull
	msgPushAck      byte = 6  // anti-entropy: the push is durable; the pulled items
	msgReplicate    byte = 7  // a batch's writes, pushed by the node that took them
	msgReplicateAck byte = 8  // a peer holds those writes durably
	msgClockRefused byte = 9  // a message stamped beyond the max offset was dropped (offset.go)
	msgRemoved      byte = 10 // the receiver's data directory (yourInc) was removed from the mesh (removed.go)
	msgCalendar     byte = 11 // the sender's calendar reading, and what it made of the receiver's (offset.go)
)

// calNone is a calendar reading a calendar message does not name.
const calNone = math.MinInt64

type header struct {
	kind      byte
	clock     Stamp
	stable    Stamp
	horizon   Stamp
	inc       uint64 // the sender's incarnation
	yourInc   uint64 // the receiver's, as the sender knows it; 0: none
	passedYou Stamp  // the start of the sender's last complete pass with yourInc
}

// cursor is a position in the ordered space of buckets and keys:
// anti-entropy walks it from (0, "") to (bucketsN, "").
type cursor struct {
	bucket int
	key    string
}

func (c cursor) less(d cursor) bool {
	return c.bucket < d.bucket || (c.bucket == d.bucket && c.key < d.key)
}

func (c cursor) end() bool { return c.bucket >= bucketsN }

// meta is an item without its value: what a summary lists.
type meta struct {
	key   string
	stamp Stamp
	tomb  bool
}

// message is any decoded peer message; the fields used depend on kind.
type message struct {
	header
	// quorum: replicate, the stamps of the quorum writes among the items;
	// replicate-ack, those of them the peer holds (quorum.go).
	quorum   []Stamp
	round    uint64   // digest, summary, push, push-ack
	items    []Item   // replicate, push, push-ack
	from, to cursor   // digest (from), summary
	digests  []uint64 // digest
	diff     []int    // summary: buckets in [from, to) that differed
	metas    []meta   // summary
	pull     []string // push
	partial  bool     // summary (more in [from,to) than fit), push-ack (not every pull answered)
	refused  Stamp    // clock-refused: the dropped message's stamp
	// calendar: the sender's calendar time when it sent; the latest
	// reading of the receiver's it found in step with its own, and in a
	// refusal the one it found too far ahead (calNone: none).
	sent, seen, tooAhead int64
}

func appendHeader(dst []byte, h *header) []byte {
	dst = append(dst, h.kind)
	dst = appendStamp(dst, h.clock)
	dst = appendStamp(dst, h.stable)
	dst = appendStamp(dst, h.horizon)
	dst = binary.LittleEndian.AppendUint64(dst, h.inc)
	dst = binary.LittleEndian.AppendUint64(dst, h.yourInc)
	return appendStamp(dst, h.passedYou)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendItem(dst []byte, it *Item) []byte {
	dst = appendString(dst, it.Key)
	dst = appendStamp(dst, it.Stamp)
	var flags byte
	if it.Tomb {
		flags = flagTomb
	}
	dst = append(dst, flags)
	return appendString(dst, it.Value)
}

// itemBytes is an upper bound of appendItem's output, for budgets.
func itemBytes(it *Item) int {
	return 2*binary.MaxVarintLen32 + len(it.Key) + stampBytes + 1 + len(it.Value)
}

// pullBytes is an upper bound of a pulled key's encoding in a push.
func pullBytes(key string) int { return binary.MaxVarintLen32 + len(key) }

func appendItems(dst []byte, items []Item) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(items)))
	for i := range items {
		dst = appendItem(dst, &items[i])
	}
	return dst
}

func appendStamps(dst []byte, stamps []Stamp) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(stamps)))
	for _, s := range stamps {
		dst = appendStamp(dst, s)
	}
	return dst
}

func appendCursor(dst []byte, c cursor) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(c.bucket))
	return appendString(dst, c.key)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// encode serialises m.
func (m *message) encode() []byte {
	b := appendHeader(make([]byte, 0, 256), &m.header)
	switch m.kind {
	case msgReplicate:
		b = appendStamps(b, m.quorum)
		b = appendItems(b, m.items)
	case msgReplicateAck:
		b = appendStamps(b, m.quorum)
	case msgDigest:
		assert(len(m.digests) == bucketsN, "digest message without every bucket")
		b = binary.LittleEndian.AppendUint64(b, m.round)
		b = appendCursor(b, m.from)
		for _, d := range m.digests {
			b = binary.LittleEndian.AppendUint64(b, d)
		}
	case msgSummary:
		b = binary.LittleEndian.AppendUint64(b, m.round)
		b = appendCursor(b, m.from)
		b = appendCursor(b, m.to)
		b = appendBool(b, m.partial)
		b = binary.AppendUvarint(b, uint64(len(m.diff)))
		for _, d := range m.diff {
			b = binary.LittleEndian.AppendUint16(b, uint16(d))
		}
		b = binary.AppendUvarint(b, uint64(len(m.metas)))
		for _, x := range m.metas {
			b = appendString(b, x.key)
			b = appendStamp(b, x.stamp)
			b = appendBool(b, x.tomb)
		}
	case msgPush:
		b = binary.LittleEndian.AppendUint64(b, m.round)
		b = appendItems(b, m.items)
		b = binary.AppendUvarint(b, uint64(len(m.pull)))
		for _, k := range m.pull {
			b = appendString(b, k)
		}
	case msgPushAck:
		b = binary.LittleEndian.AppendUint64(b, m.round)
		b = appendBool(b, m.partial)
		b = appendItems(b, m.items)
	case msgClockRefused:
		b = appendStamp(b, m.refused)
	case msgCalendar:
		b = binary.LittleEndian.AppendUint64(b, uint64(m.sent))
		b = binary.LittleEndian.AppendUint64(b, uint64(m.seen))
		b = binary.LittleEndian.AppendUint64(b, uint64(m.tooAhead))
	case msgRemoved:
	default:
		panic(fmt.Sprintf("mesh: encoding unknown message kind %d", m.kind))
	}
	return b
}

var errMessage = errors.New("malformed mesh message")

// reader decodes a message, remembering the first error.
type reader struct {
	p   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.p) {
		r.err = errMessage
		return nil
	}
	b := r.p[:n]
	r.p = r.p[n:]
	return b
}

func (r *reader) u8() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() int {
	if b := r.take(2); b != nil {
		return int(binary.LittleEndian.Uint16(b))
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.p)
	if n <= 0 {
		r.err = errMessage
		return 0
	}
	r.p = r.p[n:]
	return v
}

// count reads a length and checks that at least min bytes per element
// remain, so a damaged count cannot make the decoder allocate wildly.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.p)/min) {
		r.err = errMessage
		return 0
	}
	return int(n)
}

// countMax is count, refusing more than max elements: lists whose honest
// length is bounded, where a decoded element is many times its smallest
// encoding (a one-byte key is 2 bytes on the wire and a 16-byte string
// header), so that a peer's frame of them cannot cost the node many times
// its size (found by review: 1 GiB for a 64 MiB push of pulls).
func (r *reader) countMax(min, max int) int {
	n := r.count(min)
	if r.err == nil && n > max {
		r.err = fmt.Errorf("%w: a list of %d, at most %d", errMessage, n, max)
		return 0
	}
	return n
}

// SummaryItemsMaxMax bounds Config.SummaryItemsMax: a summary lists at
// most that many keys, and a push pulls at most the keys of one summary,
// so a node refuses longer lists of either.
const SummaryItemsMaxMax = 1 << 16

func (r *reader) str() string { return string(r.take(int(min(r.uvarint(), uint64(len(r.p)+1))))) }

func (r *reader) stamp() Stamp {
	if b := r.take(stampBytes); b != nil {
		return decodeStamp(b)
	}
	return Stamp{}
}

func (r *reader) boolean() bool {
	switch r.u8() {
	case 0:
		return false
	case 1:
		return true
	}
	r.err = errMessage
	return false
}

func (r *reader) cursor() cursor {
	c := cursor{bucket: r.u16(), key: r.str()}
	if c.bucket > bucketsN {
		r.err = errMessage
	}
	return c
}

func (r *reader) stamps() []Stamp {
	n := r.count(stampBytes)
	var stamps []Stamp
	for range n {
		stamps = append(stamps, r.stamp())
	}
	return stamps
}

func (r *reader) items() []Item {
	n := r.count(1 + stampBytes + 1 + 1)
	items := make([]Item, 0, n)
	for range n {
		it := Item{Key: r.str(), Stamp: r.stamp()}
		switch r.u8() {
		case 0:
		case flagTomb:
			it.Tomb = true
		default:
			r.err = errMessage
		}
		it.Value = r.str()
		if r.err != nil {
			return nil
		}
		if it.Key == "" || (it.Tomb && it.Value != "") {
			r.err = errMessage
			return nil
		}
		items = append(items, it)
	}
	return items
}

// decodeMessage reads what encode wrote.
func decodeMessage(p []byte) (*message, error) {
	r := &reader{p: p}
	m := &message{}
	m.kind = r.u8()
	m.clock, m.stable, m.horizon = r.stamp(), r.stamp(), r.stamp()
	m.inc, m.yourInc, m.passedYou = r.u64(), r.u64(), r.stamp()
	switch m.kind {
	case msgReplicate:
		m.quorum = r.stamps()
		m.items = r.items()
	case msgReplicateAck:
		m.quorum = r.stamps()
	case msgDigest:
		m.round = r.u64()
		m.from = r.cursor()
		m.digests = make([]uint64, bucketsN)
		for i := range m.digests {
			m.digests[i] = r.u64()
		}
	case msgSummary:
		m.round = r.u64()
		m.from, m.to = r.cursor(), r.cursor()
		m.partial = r.boolean()
		n := r.countMax(2, bucketsN)
		m.diff = make([]int, 0, n)
		for range n {
			d := r.u16()
			if d >= bucketsN {
				r.err = errMessage
			}
			m.diff = append(m.diff, d)
		}
		n = r.countMax(1+stampBytes+1, SummaryItemsMaxMax)
		m.metas = make([]meta, 0, n)
		for range n {
			m.metas = append(m.metas, meta{key: r.str(), stamp: r.stamp(), tomb: r.boolean()})
		}
	case msgPush:
		m.round = r.u64()
		m.items = r.items()
		n := r.countMax(1, SummaryItemsMaxMax)
		m.pull = make([]string, 0, n)
		for range n {
			m.pull = append(m.pull, r.str())
		}
	case msgPushAck:
		m.round = r.u64()
		m.partial = r.boolean()
		m.items = r.items()
	case msgClockRefused:
		m.refused = r.stamp()
	case msgCalendar:
		m.sent, m.seen, m.tooAhead = int64(r.u64()), int64(r.u64()), int64(r.u64())
	case msgRemoved:
	default:
		if r.err == nil {
			return nil, fmt.Errorf("%w: unknown kind %d", errMessage, m.kind)
		}
	}
	if r.err == nil && len(r.p) != 0 {
		r.err = fmt.Errorf("%w: %d bytes after the end", errMessage, len(r.p))
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}
