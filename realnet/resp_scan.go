package realnet

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"dkv/core"
)

// SCAN and KEYS over RESP, on the JSON scan op (docs/PROTOCOL.md): each
// command is one scan request, keys only. A walk's position in dkv is a
// key, the last one a page read, while Redis clients parse SCAN's cursor as
// an unsigned 64-bit number (go-redis into a uint64, redis-cli with
// strtoull): so a page that leaves keys gets a number naming its last key
// in a cursor table the host keeps (scanCursors), shared by every
// connection, since go-redis may send a walk's pages on different pooled
// connections.

const (
	// scanCursorsMax bounds the cursors the table holds. A walk holds
	// two at most (see scanCursors.take), so thousands of walks can be
	// under way at once; past it the least recently used goes.
	scanCursorsMax = 10_000
	// scanCursorBytesMax bounds the table's bytes, its keys and each
	// entry's own cost (scanCursorOverheadBytes): 10,000 cursors of short
	// keys fit, and some 990 of 4 KiB keys (--max-key-bytes's default).
	scanCursorBytesMax = 4 << 20
	// scanCursorOverheadBytes is what a cursor costs besides its key: the
	// entry, its links and its slot in the map.
	scanCursorOverheadBytes = 128
	// scanCursorIdle is how long a cursor lasts without its page being
	// asked for: a walk that pauses longer starts again from 0. A client
	// that walks a keyspace sends the next page at once, or after it has
	// handled this one; ten minutes is generous for that, and short
	// enough that the walks clients give up on do not pile up.
	scanCursorIdle = 10 * time.Minute
)

// scanCursor is one entry: the number a SCAN reply gave, and where the
// walk goes on.
type scanCursor struct {
	id uint64
	// after is the last key the page read (matched or not): the next
	// page starts after it. Not the last key it returned, which a page
	// whose keys all failed MATCH does not have: the walk would not move.
	after string
	// prev is the cursor whose page gave this one, 0 for a walk's first
	// page; it is forgotten once this one is used (take).
	prev  uint64
	used  time.Time
	older *scanCursor // the list from the least recently used on
	newer *scanCursor
}

func (c *scanCursor) bytes() int { return len(c.after) + scanCursorOverheadBytes }

// scanCursors is the host's cursor table, safe for concurrent use: the
// connections' readers look cursors up, and replies (on whichever
// goroutine renders them) add them.
type scanCursors struct {
	mu     sync.Mutex
	byID   map[uint64]*scanCursor
	oldest *scanCursor
	newest *scanCursor
	bytes  int
	rand   core.Rand
	// The bounds and the clock: the constants and time.Now, but for the
	// tests.
	entriesMax int
	bytesMax   int
	idle       time.Duration
	now        func() time.Time
}

func newScanCursors() *scanCursors {
	return &scanCursors{
		byID:       make(map[uint64]*scanCursor),
		rand:       newRand(),
		entriesMax: scanCursorsMax,
		bytesMax:   scanCursorBytesMax,
		idle:       scanCursorIdle,
		now:        time.Now,
	}
}

// scanTable is h's cursor table.
func (h *Host) scanTable() *scanCursors { return h.scans }

// ScanCursors is the number of RESP SCAN cursors the host holds, for an
// operator's metrics: the table is bounded (scanCursorsMax), and a walk
// pushed out of it by the least recently used rule starts again.
func (h *Host) ScanCursors() int { return h.scans.len() }

// take looks a cursor up for its page: the key the page starts after, or
// false if the cursor is unknown, or was dropped (idle, or bounded out).
// The cursor stays, so that a page asked for again (a client's retry after
// a lost reply) answers again; the cursor before it in its walk goes, as
// the client that holds this one has had that one's reply. A walk thus
// holds two cursors at most, however long.
func (t *scanCursors) take(id uint64) (after string, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.expire(now)
	c := t.byID[id]
	if c == nil {
		return "", false
	}
	if p := t.byID[c.prev]; p != nil {
		t.remove(p)
	}
	c.prev = 0
	c.used = now
	t.unlink(c)
	t.link(c)
	return c.after, true
}

// issue adds a cursor for a page that leaves keys after key after, given
// by cursor prev (0 for a walk's first page), and returns its number:
// random, non-zero, below 2^53, not in use. Below 2^53: node-redis v4
// reads the cursor as a JavaScript number, a double, and sent back a
// different one for nearly every larger id (found by review); 53 random
// bits still make a second draw as rare as never. The least recently used cursors go
// past the bounds, never the new one.
func (t *scanCursors) issue(after string, prev uint64) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.expire(now)
	id := t.rand.Uint64() >> 11
	for id == 0 || t.byID[id] != nil {
		id = t.rand.Uint64() >> 11
	}
	// A copy: the key of a page's answer shares its allocation with the
	// store's value (core's B-tree keeps both in one), and a cursor must
	// hold the key's bytes alone, or the table's byte bound would not
	// bound what it keeps alive (found by review).
	c := &scanCursor{id: id, after: strings.Clone(after), prev: prev, used: now}
	t.byID[id] = c
	t.link(c)
	t.bytes += c.bytes()
	for (len(t.byID) > t.entriesMax || t.bytes > t.bytesMax) && t.oldest != c {
		t.remove(t.oldest)
	}
	return id
}

// expire drops the cursors unused for the idle time, from the oldest.
func (t *scanCursors) expire(now time.Time) {
	for t.oldest != nil && now.Sub(t.oldest.used) >= t.idle {
		t.remove(t.oldest)
	}
}

// done forgets cursor id, whose page was a walk's last: a finished walk
// leaves nothing behind (it held its cursor for 10 minutes, and walks
// ending at a high rate pushed the walks still under way out of the table;
// found by review). A client that asks for the last page again, its
// answer lost, is told to start again.
func (t *scanCursors) done(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.byID[id]; c != nil {
		t.remove(c)
	}
}

func (t *scanCursors) remove(c *scanCursor) {
	t.unlink(c)
	delete(t.byID, c.id)
	t.bytes -= c.bytes()
}

// link makes c the most recently used.
func (t *scanCursors) link(c *scanCursor) {
	c.older, c.newer = t.newest, nil
	if t.newest != nil {
		t.newest.newer = c
	} else {
		t.oldest = c
	}
	t.newest = c
}

func (t *scanCursors) unlink(c *scanCursor) {
	if c.older != nil {
		c.older.newer = c.newer
	} else {
		t.oldest = c.newer
	}
	if c.newer != nil {
		c.newer.older = c.older
	} else {
		t.newest = c.older
	}
	c.older, c.newer = nil, nil
}

// idleTime is how long a cursor lasts unused, for the error that says so.
func (t *scanCursors) idleTime() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.idle
}

// len is the number of cursors held.
func (t *scanCursors) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// parseRESPCursor parses SCAN's cursor as Redis does (strtoul, base 10):
// an optional sign, then digits; a minus wraps around, as strtoul's does
// ("-1" is 2^64-1); no space, nothing after, no overflow. An empty cursor
// is 0, as in Redis.
func parseRESPCursor(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	neg := b[0] == '-'
	if b[0] == '-' || b[0] == '+' {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b), 10, 64) // digits only: no sign, space or '_'

	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// respScanOptions is what SCAN's options after the cursor ask for.
type respScanOptions struct {
	match []byte // nil: no MATCH
	count uint64 // the page's limit
	// typed: TYPE named a type other than string, which no dkv key has.
	typed bool
}

// respScanCountDefault is Redis's COUNT when none is given.
const respScanCountDefault = 10

// parseScanOptions parses SCAN's options as Redis 7.0 does: MATCH
// pattern, COUNT count and TYPE type, in any order and case, an option
// given again taking its last value; an option without its argument, or a
// word that is none of them, is a syntax error; COUNT must be an integer
// ("value is not an integer or out of range") of at least 1 (a syntax
// error, as Redis's). The first error from the left is the answer.
//
// COUNT is Redis's hint of the work a call does, and Redis returns more or
// fewer keys than it asks; so a COUNT over --max-bulk-entries
// (bulkEntriesMax), the node's limit on a page, is taken as that limit, not
// refused: a client that asks for big pages still walks every key. So is
// the default COUNT, 10, under a limit below it.
func parseScanOptions(opts [][]byte, bulkEntriesMax int) (o respScanOptions, msg string) {
	const syntax = "ERR syntax error"
	o.count = min(respScanCountDefault, uint64(bulkEntriesMax))
	for i := 0; i < len(opts); i += 2 {
		if i+1 == len(opts) {
			return o, syntax
		}
		arg := opts[i+1]
		switch strings.ToLower(string(opts[i])) {
		case "count":
			n, ok := parseRESPInt(arg)
			if !ok {
				return o, "ERR value is not an integer or out of range"
			}
			if n < 1 {
				return o, syntax
			}
			o.count = uint64(min(n, int64(bulkEntriesMax)))
		case "match":
			o.match = arg
			if o.match == nil {
				o.match = []byte{} // given, and empty: it matches no key
			}
		case "type":
			// Every dkv key is a string, in Redis's terms. Redis 7.0
			// answers an unknown type name with no keys too.
			o.typed = !strings.EqualFold(string(arg), "string")
		default:
			return o, syntax
		}
	}
	return o, ""
}

// respScanUnknownCursor answers a cursor the table does not hold.
func respScanUnknownCursor(id uint64, idle time.Duration) string {
	return "ERR dkv's SCAN cursor " + strconv.FormatUint(id, 10) +
		" is unknown or expired (a cursor lasts " + respDuration(idle) +
		" idle, and goes once its walk has ended or the table is full): start the walk again from 0"
}

// respDuration says d in words for an error message: "10 minutes".
func respDuration(d time.Duration) string {
	if d%time.Minute == 0 {
		if d == time.Minute {
			return "1 minute"
		}
		return strconv.FormatInt(int64(d/time.Minute), 10) + " minutes"
	}
	return d.String()
}

// respScanDone is SCAN's reply when the walk is over and this call has no
// keys: cursor 0, no keys.
const respScanDone = "*2\r\n$1\r\n0\r\n*0\r\n"

// respScanSlot packs what a SCAN's reply needs besides the node's answer
// into the slot's raw bytes: the cursor it was given (8 bytes, big-endian),
// whether it had a MATCH (1 byte: an empty pattern matches no key, where
// none matches every one), and the pattern. A copy: the arguments alias
// the read buffer.
func respScanSlot(cursor uint64, match []byte) []byte {
	b := make([]byte, 9, 9+len(match))
	for i := range 8 {
		b[i] = byte(cursor >> (56 - 8*i))
	}
	if match != nil {
		b[8] = 1
	}
	return append(b, match...)
}

// respScanSlotFields unpacks respScanSlot's bytes; match is nil when the
// SCAN had no MATCH.
func respScanSlotFields(raw []byte) (cursor uint64, match []byte) {
	for i := range 8 {
		cursor = cursor<<8 | uint64(raw[i])
	}
	if raw[8] == 1 {
		match = raw[9:len(raw):len(raw)]
	}
	return cursor, match
}

// respScanCommand turns SCAN cursor [MATCH pattern] [COUNT count] [TYPE
// type] into its scan request and the slot's raw bytes (respScanSlot); or,
// when the node need not be asked, into no request (req.Op "") and the
// reply in raw; or into an error.
func (c *conn) respScanCommand(args [][]byte) (req core.Request, raw []byte, msg string) {
	cursor, ok := parseRESPCursor(args[0])
	if !ok {
		return req, nil, "ERR invalid cursor"
	}
	o, msg := parseScanOptions(args[1:], c.h.cfg.BulkEntriesMax)
	if msg != "" {
		return req, nil, msg
	}
	prefix, rest := globSplit(o.match)
	if msg := globRestError(rest); msg != "" {
		return req, nil, msg
	}
	if o.typed || (o.match != nil && len(o.match) == 0) {
		// No key of that type, or no key at all (an empty pattern
		// matches none, keys are never empty): the walk is over, without
		// asking the node.
		return req, []byte(respScanDone), ""
	}
	var after string
	if cursor != 0 {
		t := c.h.scanTable()
		if after, ok = t.take(cursor); !ok {
			return req, nil, respScanUnknownCursor(cursor, t.idleTime())
		}
	}
	// The page reads under this call's MATCH's prefix, after the cursor's
	// key: Redis applies each call's MATCH to that call's keys, and a
	// client sends the same one with every page. A page whose MATCH names
	// another prefix than the walk's first one reads that prefix after
	// the cursor's key, which is what Redis's walk, filtered so, returns.
	req = core.Request{Op: core.OpScan, Prefix: prefix, StartAfter: after, Limit: o.count, KeysOnly: true}
	if globLiteral(o.match) {
		// A pattern without a wildcard matches its prefix alone, the
		// first key under it: one key read, not every key it begins.
		req.Limit = 1
	}
	return req, respScanSlot(cursor, o.match), ""
}

// appendRESPScan renders a scan page's answer to SCAN: the next cursor (0
// when no key is left) and the page's keys that match. A page may so
// return fewer keys than COUNT, or none, with a cursor that goes on, as
// Redis's do.
func (c *conn) appendRESPScan(dst []byte, resp *core.Response, raw []byte) []byte {
	cursor, match := respScanSlotFields(raw)
	keys := resp.Keys
	next := "0"
	switch {
	case resp.More != nil && *resp.More && !globLiteral(match):
		if len(keys) == 0 {
			// The node's page holds a key whenever it says more are
			// left; a cursor at the same key would walk forever.
			return appendRESPError(dst, "ERR internal: a scan page left keys but held none")
		}
		next = strconv.FormatUint(c.h.scanTable().issue(keys[len(keys)-1], cursor), 10)
	case cursor != 0:
		// The walk is over; with a pattern without a wildcard, once the
		// page (Limit 1) read the one key that can match, if it is there.
		c.h.scanTable().done(cursor)
	}
	dst = appendRESPArray(dst, 2)
	dst = appendRESPBulk(dst, next)
	return appendRESPKeys(dst, keys, match)
}

// appendRESPKeys appends the keys that match pattern (all of them if it is
// nil) as an array of bulk strings.
func appendRESPKeys(dst []byte, keys []string, pattern []byte) []byte {
	if pattern != nil {
		g := compileWholeGlob(pattern)
		matched := make([]string, 0, len(keys))
		for _, k := range keys {
			if g.match(k) {
				matched = append(matched, k)
			}
		}
		keys = matched
	}
	dst = appendRESPArray(dst, len(keys))
	for _, k := range keys {
		dst = appendRESPBulk(dst, k)
	}
	return dst
}

// respKeysCommand turns KEYS pattern into one scan request: the keys under
// the pattern's prefix, as many as --max-bulk-entries allows; or, for an
// empty pattern, which matches no key, into none (req.Op "").
func (c *conn) respKeysCommand(pattern []byte) (req core.Request, msg string) {
	prefix, rest := globSplit(pattern)
	if msg := globRestError(rest); msg != "" {
		return req, msg
	}
	if len(pattern) == 0 {
		return req, ""
	}
	if globLiteral(pattern) {
		// KEYS user:1 read every key under user:1 and failed past the
		// bound where one key at most matches (found by review).
		return core.Request{Op: core.OpScan, Prefix: prefix, Limit: 1, KeysOnly: true}, ""
	}
	return core.Request{Op: core.OpScan, Prefix: prefix, Limit: uint64(c.h.cfg.BulkEntriesMax), KeysOnly: true}, ""
}

// appendRESPKeysReply renders KEYS's answer: every key that matches, or,
// when keys are left past one page, an error rather than a part of them.
// dkv bounds what one command reads (a page: --max-bulk-entries keys, and
// --max-request-bytes of them); a client that must see more walks them
// with SCAN, as Redis's own documentation advises for production anyway.
func (c *conn) appendRESPKeysReply(dst []byte, resp *core.Response, pattern []byte) []byte {
	if resp.More != nil && *resp.More && !globLiteral(pattern) {
		if len(resp.Keys) >= c.h.cfg.BulkEntriesMax {
			return appendRESPError(dst, "ERR KEYS would read more than "+strconv.Itoa(c.h.cfg.BulkEntriesMax)+
				" keys (--max-bulk-entries): walk them with SCAN")
		}
		return appendRESPError(dst, "ERR KEYS would read more than "+strconv.Itoa(c.h.cfg.RequestBytesMax)+
			" bytes of keys, counted as JSON strings (--max-request-bytes): walk them with SCAN")
	}
	return appendRESPKeys(dst, resp.Keys, pattern)
}
