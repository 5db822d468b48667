package core

import "encoding/binary"

// deadlines are the keys that expire and when: the calendar time, in
// milliseconds since the Unix epoch, after which the node deletes the key
// (Request.TTLMs). byKey maps a key to its deadline; byTime holds the same
// pairs ordered by deadline, then key, so the earliest is found at once.
// Both are copy-on-write B-trees like the store's, so a clone for a
// snapshot or a scan's view costs O(1) here too. A store whose keys never
// had a deadline has none (nil trees) and pays nothing.
type deadlines struct {
	byKey, byTime *btree
}

// deadlineBytes is a deadline's encoding in both trees: big-endian, so that
// byTime's key order is deadline order (deadlines are positive).
const deadlineBytes = 8

func encodeDeadline(dst []byte, at int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(at))
}

func decodeDeadline(b string) int64 {
	assert(len(b) >= deadlineBytes, "a deadline is 8 bytes")
	var v uint64
	for i := range deadlineBytes {
		v = v<<8 | uint64(b[i])
	}
	return int64(v)
}

// byTimeKey is byTime's key of (at, key).
func byTimeKey(at int64, key string) string {
	return string(append(encodeDeadline(make([]byte, 0, deadlineBytes+len(key)), at), key...))
}

func (d *deadlines) len() int {
	if d.byKey == nil {
		return 0
	}
	return d.byKey.length
}

// get returns key's deadline, if it has one.
func (d *deadlines) get(key string) (int64, bool) {
	if d.len() == 0 {
		return 0, false
	}
	it, ok := d.byKey.get(key)
	if !ok {
		return 0, false
	}
	return decodeDeadline(it.value()), true
}

// set gives key the deadline at (> 0), replacing the one it had.
func (d *deadlines) set(key string, at int64) {
	assert(at > 0, "a deadline is after the epoch")
	if d.byKey == nil {
		d.byKey, d.byTime = newBtree(), newBtree()
	}
	var b [deadlineBytes]byte
	prev, had := d.byKey.set(makeItem(key, string(encodeDeadline(b[:0], at))))
	if had {
		old := decodeDeadline(prev.value())
		if old == at {
			return
		}
		_, ok := d.byTime.delete(byTimeKey(old, key))
		assert(ok, "deadlines: byTime holds every pair of byKey")
	}
	d.byTime.set(makeItem(byTimeKey(at, key), ""))
	assert(d.byTime.length == d.byKey.length, "deadlines: byTime and byKey hold the same pairs")
}

// remove takes key's deadline away, if it had one.
func (d *deadlines) remove(key string) {
	if d.len() == 0 {
		return
	}
	prev, had := d.byKey.delete(key)
	if !had {
		return
	}
	_, ok := d.byTime.delete(byTimeKey(decodeDeadline(prev.value()), key))
	assert(ok, "deadlines: byTime holds every pair of byKey")
}

// due calls f for the keys whose deadline is at or before now, earliest
// first, until f returns false.
func (d *deadlines) due(now int64, f func(key string, at int64) bool) {
	if d.len() == 0 {
		return
	}
	d.byTime.root.ascend("", true, func(it item) bool {
		k := it.key()
		at := decodeDeadline(k)
		if at > now {
			return false
		}
		return f(k[deadlineBytes:], at)
	})
}

// next returns the earliest deadline, if any key has one.
func (d *deadlines) next() (int64, bool) {
	var at int64
	found := false
	if d.len() > 0 {
		d.byTime.root.ascend("", true, func(it item) bool {
			at, found = decodeDeadline(it.key()), true
			return false
		})
	}
	return at, found
}

func (d *deadlines) clone() deadlines {
	if d.byKey == nil {
		return deadlines{}
	}
	return deadlines{byKey: d.byKey.clone(), byTime: d.byTime.clone()}
}

// TTLResponse answers a ttl of key, which s holds: the milliseconds from
// nowMs (calendar time) to its deadline, 0 once that passed (the key is
// deleted at the node's next turn); no ttl_ms for a key without one.
func TTLResponse(s *Store, key string, nowMs int64) Response {
	at, ok := s.Deadline(key)
	if !ok {
		return OKResponse()
	}
	left := uint64(max(at-nowMs, 0))
	return Response{OK: true, TTLMs: &left}
}
