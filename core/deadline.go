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
	if _, ok := d.byKey.get(key); !ok {
		return // a delete would copy the path to it all the same
	}
	prev, had := d.byKey.delete(key)
	if !had {
		return
	}
	_, ok := d.byTime.delete(byTimeKey(decodeDeadline(prev.value()), key))
	assert(ok, "deadlines: byTime holds every pair of byKey")
}

// due calls f for the keys whose deadline is before now, earliest first,
// until f returns false. Strictly before: a deadline is a whole
// millisecond at or before the write's instant plus its TTL, so a key due
// once the clock's millisecond is past it has lived its TTL at least.
func (d *deadlines) due(now int64, f func(key string, at int64) bool) {
	if d.len() == 0 {
		return
	}
	d.byTime.root.ascend("", true, func(it item) bool {
		k := it.key()
		at := decodeDeadline(k)
		if at >= now {
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

// Bounds on one expiry (a single node's recordExpire, a cluster's
// OpExpireDue): its keys, and their bytes, so that the record stays far
// below the log's limit and a peer message's whatever --max-key-bytes says
// (1,024 keys of 64 KiB would pass the log's 64 MiB). The keys past them
// expire in the next turn, or the next tick.
const (
	ExpireKeysMax  = 1024
	ExpireBytesMax = 1 << 20
)

// DueBatch returns the keys whose deadline is before now (calendar
// milliseconds), earliest first, with their deadlines: at most
// ExpireKeysMax of them and ExpireBytesMax bytes of key, one at least.
func (s *Store) DueBatch(now int64) (items []KV, ats []int64) {
	bytes := 0
	s.Due(now, func(key string, at int64) bool {
		if len(items) > 0 && bytes+len(key) > ExpireBytesMax {
			return false
		}
		items, ats = append(items, KV{Key: key}), append(ats, at)
		bytes += len(key)
		return len(items) < ExpireKeysMax
	})
	return items, ats
}
