package realnet

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"dkv/core"
	"dkv/disk"
)

// scanBulk reads one bulk string reply's line and bytes.
func (c *respClient) scanBulk() string {
	c.t.Helper()
	line := c.scanLine()
	n, err := strconv.Atoi(strings.TrimPrefix(line, "$"))
	if !strings.HasPrefix(line, "$") || err != nil || n < 0 {
		c.t.Fatalf("got %q; want a bulk string", line)
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(c.br, b); err != nil {
		c.t.Fatal(err)
	}
	if string(b[n:]) != "\r\n" {
		c.t.Fatalf("bulk string %q does not end in CRLF", b)
	}
	return string(b[:n])
}

func (c *respClient) scanLine() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.br.ReadString('\n')
	if err != nil || !strings.HasSuffix(line, "\r\n") {
		c.t.Fatalf("got %q, %v; want a line", line, err)
	}
	return strings.TrimSuffix(line, "\r\n")
}

// scanArrayHeader reads an array's header and returns its length.
func (c *respClient) scanArrayHeader() int {
	c.t.Helper()
	line := c.scanLine()
	n, err := strconv.Atoi(strings.TrimPrefix(line, "*"))
	if !strings.HasPrefix(line, "*") || err != nil || n < 0 {
		c.t.Fatalf("got %q; want an array", line)
	}
	return n
}

// scan sends a SCAN command and reads its reply, which must be in SCAN's
// shape: the next cursor, and an array of keys.
func (c *respClient) scan(cmd string) (cursor string, keys []string) {
	c.t.Helper()
	c.send(cmd + "\r\n")
	if n := c.scanArrayHeader(); n != 2 {
		c.t.Fatalf("%s: an array of %d, want 2", cmd, n)
	}
	cursor = c.scanBulk()
	if v, err := strconv.ParseUint(cursor, 10, 64); err != nil || v >= 1<<63 {
		c.t.Fatalf("%s: cursor %q is not a number below 2^63", cmd, cursor)
	}
	keys = []string{} // none is an empty array, not a null one
	for range c.scanArrayHeader() {
		keys = append(keys, c.scanBulk())
	}
	return cursor, keys
}

// scanWalk runs a whole SCAN walk with the given options, each page on the
// next of conns in turn, and returns its keys and its pages' count.
func scanWalk(t *testing.T, options string, conns ...*respClient) (keys []string, pages int) {
	t.Helper()
	cursor := "0"
	for {
		next, page := conns[pages%len(conns)].scan("SCAN " + cursor + " " + options)
		pages++
		keys = append(keys, page...)
		if next == "0" {
			return keys, pages
		}
		if next == cursor {
			t.Fatalf("SCAN %s %s gave its own cursor back", cursor, options)
		}
		cursor = next
		if pages > 10_000 {
			t.Fatal("a walk of more than 10,000 pages")
		}
	}
}

// scanKeys are the keys the scan tests write: 25 under "k:", 5 under
// "user:", and two more; in key order.
func scanKeys() []string {
	keys := []string{"a"}
	for i := range 25 {
		keys = append(keys, fmt.Sprintf("k:%02d", i))
	}
	for i := range 5 {
		keys = append(keys, fmt.Sprintf("user:%d", i))
	}
	return append(keys, "z")
}

func scanMSet(t *testing.T, c *respClient, keys []string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("MSET")
	for _, k := range keys {
		b.WriteString(" " + k + " v")
	}
	c.send(b.String() + "\r\n")
	c.expect("+OK\r\n")
}

// scanBulks is the bytes of an array of bulk strings.
func scanBulks(keys ...string) string {
	b := appendRESPArray(nil, len(keys))
	for _, k := range keys {
		b = appendRESPBulk(b, k)
	}
	return string(b)
}

// A SCAN walk over more keys than COUNT returns every key exactly once, in
// key order, whatever the options' order and case; MATCH filters (a page
// may then hold fewer keys than COUNT, or none), TYPE string filters
// nothing and any other type ends the walk at once; COUNT defaults to 10.
func TestRESPScanWalk(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	all := scanKeys()
	scanMSet(t, c, all)

	keys, pages := scanWalk(t, "COUNT 10", c)
	if !slices.Equal(keys, all) || pages != 4 {
		t.Errorf("SCAN COUNT 10: %d pages, %q; want 4 pages, %q", pages, keys, all)
	}
	keys, pages = scanWalk(t, "", c)
	if !slices.Equal(keys, all) || pages != 4 {
		t.Errorf("SCAN (COUNT 10 by default): %d pages, %q", pages, keys)
	}
	keys, pages = scanWalk(t, "count 1", c)
	if !slices.Equal(keys, all) || pages != len(all) {
		t.Errorf("SCAN COUNT 1: %d pages, %q", pages, keys)
	}
	// A page that reads the last key says so: no empty page after it.
	keys, pages = scanWalk(t, "COUNT 32", c)
	if !slices.Equal(keys, all) || pages != 1 {
		t.Errorf("SCAN COUNT 32 over 32 keys: %d pages, %q", pages, keys)
	}

	// MATCH with a literal prefix reads under it only: 5 keys, 3 pages.
	keys, pages = scanWalk(t, "MATCH user:* COUNT 2", c)
	if want := all[26:31]; !slices.Equal(keys, want) || pages != 3 {
		t.Errorf("SCAN MATCH user:* COUNT 2: %d pages, %q; want 3, %q", pages, keys, want)
	}
	c.send("SCAN 0 COUNT 100 MATCH user:*\r\n")
	c.expect("*2\r\n$1\r\n0\r\n" + scanBulks(all[26:31]...))
	// MATCH without a prefix reads every key and returns those that
	// match: some pages hold none, with a cursor that goes on.
	keys, pages = scanWalk(t, "match *:1? count 5", c)
	var want []string
	for _, k := range all {
		if strings.HasPrefix(k, "k:1") {
			want = append(want, k)
		}
	}
	if !slices.Equal(keys, want) || pages != 7 {
		t.Errorf("SCAN MATCH *:1? COUNT 5: %d pages, %q; want 7, %q", pages, keys, want)
	}
	cursor, page := c.scan("SCAN 0 MATCH *:2? COUNT 5")
	if cursor == "0" || len(page) != 0 {
		t.Errorf("a first page with no key that matches: cursor %s, %q; want a cursor and none", cursor, page)
	}
	// ?, classes and escapes, as Redis's glob.
	c.send("SCAN 0 MATCH k:[01][^0-8] COUNT 1000\r\n")
	c.expect("*2\r\n$1\r\n0\r\n" + scanBulks("k:09", "k:19"))
	c.send(`SCAN 0 MATCH "k\\:0?" COUNT 1000` + "\r\n")
	c.expect("*2\r\n$1\r\n0\r\n" + scanBulks(all[1:11]...))
	c.send("SCAN 0 MATCH nothing* COUNT 1000\r\n")
	c.expect(respScanDone)
	c.send(`SCAN 0 MATCH "" COUNT 1000` + "\r\n")
	c.expect(respScanDone) // an empty pattern matches no key, as in Redis

	// TYPE: every key is a string.
	keys, pages = scanWalk(t, "TYPE string COUNT 10", c)
	if !slices.Equal(keys, all) || pages != 4 {
		t.Errorf("SCAN TYPE string: %d pages, %q", pages, keys)
	}
	c.send("SCAN 0 type STRING match user:* count 100\r\n")
	c.expect("*2\r\n$1\r\n0\r\n" + scanBulks(all[26:31]...))
	for _, typ := range []string{"hash", "list", "set", "zset", "stream", "nosuch"} {
		c.send("SCAN 0 TYPE " + typ + "\r\n")
		c.expect(respScanDone)
	}
	// The last of an option given twice counts, as in Redis.
	c.send("SCAN 0 COUNT 1 MATCH x* COUNT 100 MATCH user:*\r\n")
	c.expect("*2\r\n$1\r\n0\r\n" + scanBulks(all[26:31]...))
	// An empty cursor is 0, as strtoul reads it.
	c.send(`SCAN "" MATCH user:* COUNT 100` + "\r\n")
	c.expect("*2\r\n$1\r\n0\r\n" + scanBulks(all[26:31]...))
}

// Every error SCAN and KEYS answer, byte for byte: Redis's own for what
// Redis refuses, dkv's for its cursor and pattern bounds.
func TestRESPScanErrors(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	c.send("SET k v\r\n")
	c.expect("+OK\r\n")
	const (
		syntax  = "-ERR syntax error\r\n"
		notInt  = "-ERR value is not an integer or out of range\r\n"
		invalid = "-ERR invalid cursor\r\n"
	)
	long := "*" + strings.Repeat("?", globPatternRestBytesMax-1) // at the limit
	for _, tc := range []struct{ send, want string }{
		{"SCAN", "-ERR wrong number of arguments for 'scan' command\r\n"},
		{"KEYS", "-ERR wrong number of arguments for 'keys' command\r\n"},
		{"KEYS a b", "-ERR wrong number of arguments for 'keys' command\r\n"},
		{"SCAN x", invalid},
		{"SCAN 1.5", invalid},
		{"SCAN +", invalid},
		{"SCAN 0x10", invalid},
		{"SCAN 18446744073709551616", invalid},
		{"SCAN x COUNT 0", invalid}, // the cursor is read first
		{"SCAN 0 COUNT 0", syntax},
		{"SCAN 0 COUNT -1", syntax},
		{"SCAN 0 COUNT x", notInt},
		{"SCAN 0 COUNT 1.5", notInt},
		{"SCAN 0 COUNT 99999999999999999999", notInt},
		{"SCAN 0 COUNT", syntax},
		{"SCAN 0 MATCH", syntax},
		{"SCAN 0 TYPE", syntax},
		{"SCAN 0 FOO bar", syntax},
		{"SCAN 0 MATCH a FOO", syntax},
		{"SCAN 0 COUNT x MATCH", notInt}, // the first error from the left
		{"SCAN 0 MATCH " + long + "?", "-ERR dkv's pattern is too long: 65 bytes from its first '*', '?' or '[' on; the limit is 64\r\n"},
		{"KEYS " + long + "?", "-ERR dkv's pattern is too long: 65 bytes from its first '*', '?' or '[' on; the limit is 64\r\n"},
		{"SCAN 123", "-ERR dkv's SCAN cursor 123 is unknown or expired (a cursor lasts 10 minutes idle, and goes once its walk has ended or the table is full): start the walk again from 0\r\n"},
		{"SCAN -1", "-ERR dkv's SCAN cursor 18446744073709551615 is unknown or expired (a cursor lasts 10 minutes idle, and goes once its walk has ended or the table is full): start the walk again from 0\r\n"},
		{"SCAN 9223372036854775807 COUNT 5", "-ERR dkv's SCAN cursor 9223372036854775807 is unknown or expired (a cursor lasts 10 minutes idle, and goes once its walk has ended or the table is full): start the walk again from 0\r\n"},
		// Not errors: a pattern at the limit; a literal prefix of any
		// length (the node bounds it as a key).
		{"SCAN 0 MATCH " + long, respScanDone},
		{"KEYS " + strings.Repeat("k", 5000), "-ERR too_large: prefix is 5000 bytes; a key is at most 4096\r\n"},
		{"KEYS " + strings.Repeat("k", 4000) + "*", "*0\r\n"},
	} {
		c.send(tc.send + "\r\n")
		c.expect(tc.want)
	}
}

// Redis clients may send a walk's pages on different connections (go-redis
// takes any connection of its pool): a cursor is the host's, not the
// connection's.
func TestRESPScanCursorsAreSharedByConnections(t *testing.T) {
	r := startSingle(t, respConfig())
	a, b := dialRESP(t, r.addr), dialRESP(t, r.addr)
	all := scanKeys()
	scanMSet(t, a, all)
	keys, pages := scanWalk(t, "COUNT 3", a, b)
	if !slices.Equal(keys, all) || pages != 11 {
		t.Errorf("a walk over two connections: %d pages, %q", pages, keys)
	}
}

// A page asked for again with the same cursor (a retry after a lost reply)
// answers the same keys; once the cursor it gave is used, it is forgotten,
// so that a walk holds two cursors at most.
func TestRESPScanCursorRetry(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	scanMSet(t, c, scanKeys())
	table := r.host.scanTable()
	c1, p1 := c.scan("SCAN 0 COUNT 3")
	c2, p2 := c.scan("SCAN " + c1 + " COUNT 3")
	c2again, p2again := c.scan("SCAN " + c1 + " COUNT 3")
	if !slices.Equal(p2, p2again) || c2again == c2 || slices.Equal(p1, p2) {
		t.Errorf("SCAN %s twice: %q then %q (cursors %s, %s)", c1, p2, p2again, c2, c2again)
	}
	if n := table.len(); n != 3 {
		t.Errorf("%d cursors held, want 3 (%s and the two it gave)", n, c1)
	}
	_, p3 := c.scan("SCAN " + c2 + " COUNT 3")
	if want := scanKeys()[6:9]; !slices.Equal(p3, want) {
		t.Errorf("the third page: %q, want %q", p3, want)
	}
	c.send("SCAN " + c1 + " COUNT 3\r\n")
	c.expect("-ERR dkv's SCAN cursor " + c1 + " is unknown or expired (a cursor lasts 10 minutes idle, and goes once its walk has ended or the table is full): start the walk again from 0\r\n")
	if n := table.len(); n != 3 {
		t.Errorf("%d cursors held, want 3: %s, the one it gave, and %s, which idles out", n, c2, c2again)
	}
}

// Keys written during a walk after its cursor are seen, those before it
// are not, and a key deleted ahead of it is not returned: the walk reads
// the store as it is at each page, as the JSON scan op does.
func TestRESPScanSeesWritesPastTheCursor(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	scanMSet(t, c, []string{"w:0", "w:1", "w:2", "w:3", "w:4", "w:5", "w:6"})
	cursor, page := c.scan("SCAN 0 COUNT 3")
	if !slices.Equal(page, []string{"w:0", "w:1", "w:2"}) {
		t.Fatalf("first page %q", page)
	}
	c.send("SET w:1a v\r\nSET w:5a v\r\nDEL w:4\r\n")
	c.expect("+OK\r\n+OK\r\n:1\r\n")
	var keys []string
	for cursor != "0" {
		cursor, page = c.scan("SCAN " + cursor + " COUNT 3")
		keys = append(keys, page...)
	}
	if want := []string{"w:3", "w:5", "w:5a", "w:6"}; !slices.Equal(keys, want) {
		t.Errorf("the rest of the walk: %q, want %q", keys, want)
	}
}

// holds reports whether the table holds the cursor, leaving it as it is.
func (t *scanCursors) holds(cursor string) bool {
	id, _ := strconv.ParseUint(cursor, 10, 64)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byID[id] != nil
}

// setForTest sets the table's bounds and clock.
func (t *scanCursors) setForTest(entriesMax, bytesMax int, idle time.Duration, now func() time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entriesMax, t.bytesMax, t.idle, t.now = entriesMax, bytesMax, idle, now
}

// The cursor table's bounds, over the wire: past its entries or its bytes
// the least recently used cursor goes, and a cursor unused for the idle
// time goes; each is then answered the error that says to start again.
func TestRESPScanCursorLimits(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	scanMSet(t, c, scanKeys())
	table := r.host.scanTable()
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	gone := func(cursor string, idle string) {
		t.Helper()
		c.send("SCAN " + cursor + "\r\n")
		c.expect("-ERR dkv's SCAN cursor " + cursor + " is unknown or expired (a cursor lasts " + idle + " idle, and goes once its walk has ended or the table is full): start the walk again from 0\r\n")
	}
	goesOn := func(cursor string) {
		t.Helper()
		if _, page := c.scan("SCAN " + cursor + " COUNT 1"); len(page) != 1 {
			t.Fatalf("SCAN %s: %q", cursor, page)
		}
	}

	// Entries: three walks, room for two cursors.
	table.setForTest(2, scanCursorBytesMax, scanCursorIdle, clock)
	w1, _ := c.scan("SCAN 0 COUNT 1")
	w2, _ := c.scan("SCAN 0 COUNT 1")
	w3, _ := c.scan("SCAN 0 COUNT 1")
	gone(w1, "10 minutes")
	goesOn(w2) // its new cursor bounds w3 out: w2 was used since
	gone(w3, "10 minutes")
	if n := table.len(); n != 2 {
		t.Errorf("%d cursors, want 2", n)
	}

	// Bytes: room for two cursors at "k:00" (each its key's bytes and
	// scanCursorOverheadBytes), not three.
	table.setForTest(scanCursorsMax, 2*(scanCursorOverheadBytes+len("k:00")), scanCursorIdle, clock)
	b1, _ := c.scan("SCAN 0 COUNT 1")           // at "a"
	b2, _ := c.scan("SCAN 0 COUNT 2")           // at "k:00"
	b3, _ := c.scan("SCAN 0 MATCH k:* COUNT 1") // at "k:00": b1 goes
	gone(b1, "10 minutes")
	if !table.holds(b2) || !table.holds(b3) || table.len() != 2 {
		t.Errorf("the bytes bound: %d cursors, %s held: %v, %s held: %v; want these two", table.len(), b2, table.holds(b2), b3, table.holds(b3))
	}

	// Idle: a cursor used within the idle time stays, one unused for
	// it goes.
	table.setForTest(scanCursorsMax, scanCursorBytesMax, 10*time.Minute, clock)
	i1, _ := c.scan("SCAN 0 COUNT 1")
	i2, _ := c.scan("SCAN 0 COUNT 1")
	advance(9 * time.Minute)
	i1next, _ := c.scan("SCAN " + i1 + " COUNT 1")
	advance(time.Minute)
	gone(i2, "10 minutes")
	goesOn(i1next)
	table.setForTest(scanCursorsMax, scanCursorBytesMax, 90*time.Second, clock)
	advance(90 * time.Second)
	gone(i1next, "1m30s")
	if n := table.len(); n != 0 {
		t.Errorf("%d cursors after the idle time, want 0", n)
	}
}

// The table on its own: the ids it gives, its byte count, and the walk's
// two cursors.
func TestScanCursorTable(t *testing.T) {
	table := newScanCursors()
	seen := map[uint64]bool{}
	// A walk: each page takes the cursor the last one gave, and gives
	// the next.
	var prev uint64
	for i := range 1000 {
		if prev != 0 {
			if after, ok := table.take(prev); !ok || after != strconv.Itoa(i-1) {
				t.Fatalf("page %d: cursor %d gives %q, %v", i, prev, after, ok)
			}
		}
		id := table.issue(strconv.Itoa(i), prev)
		// Below 2^53: what node-redis v4, which reads the cursor as a
		// double, sends back unchanged.
		if id == 0 || id >= 1<<53 || seen[id] {
			t.Fatalf("page %d: id %d", i, id)
		}
		seen[id] = true
		prev = id
	}
	if n := table.len(); n != 2 {
		t.Errorf("a walk of 1,000 pages holds %d cursors, want 2", n)
	}
	table.mu.Lock()
	bytes := table.bytes
	table.mu.Unlock()
	if want := 2*scanCursorOverheadBytes + len("998") + len("999"); bytes != want {
		t.Errorf("bytes %d, want %d", bytes, want)
	}
	// A cursor keeps a copy of its key, not the string it was given: a
	// page's key shares its allocation with the store's value, which the
	// table would keep alive uncounted (found by review).
	big := strings.Repeat("v", 1<<20)
	id := table.issue(big[:3], 0)
	table.mu.Lock()
	kept := table.byID[id].after
	table.mu.Unlock()
	if kept != "vvv" || unsafe.StringData(kept) == unsafe.StringData(big) {
		t.Errorf("the cursor keeps %q at the caller's bytes: it pins what they belong to", kept)
	}
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"", 0, true}, {"42", 42, true}, {"+42", 42, true}, {"0042", 42, true},
		{"-1", 1<<64 - 1, true}, {"-0", 0, true}, {"18446744073709551615", 1<<64 - 1, true},
		{"18446744073709551616", 0, false}, {"-", 0, false}, {"+", 0, false}, {" 1", 0, false},
		{"1 ", 0, false}, {"1_0", 0, false}, {"0x1", 0, false}, {"--1", 0, false},
	} {
		if v, ok := parseRESPCursor([]byte(tc.in)); v != tc.want || ok != tc.ok {
			t.Errorf("parseRESPCursor(%q) = %d, %v; want %d, %v", tc.in, v, ok, tc.want, tc.ok)
		}
	}
}

// KEYS: the keys that match, in key order, read with one scan under the
// pattern's prefix.
func TestRESPKeys(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	all := scanKeys()
	scanMSet(t, c, all)
	for _, tc := range []struct {
		pattern string
		want    []string
	}{
		{"*", all},
		{"user:*", all[26:31]},
		{"*:1?", all[11:21]},
		{"k:2[0-2]", all[21:24]},
		{"a", []string{"a"}},
		{"nothing*", nil},
		{`""`, nil},
	} {
		c.send("KEYS " + tc.pattern + "\r\n")
		c.expect(scanBulks(tc.want...))
	}
}

// KEYS reads one page at most: past --max-bulk-entries keys, or past
// --max-request-bytes of them, it answers an error that says to walk them
// with SCAN, not a part of them; under a prefix, only its keys count.
func TestRESPKeysLimit(t *testing.T) {
	cfg := respConfig()
	cfg.BulkEntriesMax = 5
	r := startSingle(t, cfg)
	c := dialRESP(t, r.addr)
	c.send("MSET a 1 b 2 user:1 v user:2 v user:3 v\r\n")
	c.expect("+OK\r\n")
	c.send("KEYS *\r\n")
	c.expect(scanBulks("a", "b", "user:1", "user:2", "user:3"))
	c.send("SET c 3\r\nKEYS *\r\nKEYS user:*\r\nKEYS *:1\r\n")
	c.expect("+OK\r\n" +
		"-ERR KEYS would read more than 5 keys (--max-bulk-entries): walk them with SCAN\r\n" +
		scanBulks("user:1", "user:2", "user:3") +
		"-ERR KEYS would read more than 5 keys (--max-bulk-entries): walk them with SCAN\r\n")
	// A pattern without a wildcard reads its one key, not every key it
	// begins: KEYS user:1 failed past the bound where one key matches
	// (found by review).
	c.send("MSET user:10 v user:11 v user:12 v user:13 v user:14 v\r\nKEYS user:1\r\nKEYS nope\r\n")
	c.expect("+OK\r\n" + scanBulks("user:1") + scanBulks())
	if cursor, page := c.scan("SCAN 0 MATCH user:1"); cursor != "0" || !slices.Equal(page, []string{"user:1"}) {
		t.Errorf("SCAN 0 MATCH user:1: %s, %q; want 0, [user:1]", cursor, page)
	}
	c.send("DEL user:10 user:11 user:12 user:13 user:14\r\n")
	c.expect(":5\r\n")
	// SCAN's COUNT is taken as the limit past it, not refused.
	cursor, page := c.scan("SCAN 0 COUNT 1000")
	if cursor == "0" || !slices.Equal(page, []string{"a", "b", "c", "user:1", "user:2"}) {
		t.Errorf("SCAN 0 COUNT 1000 with --max-bulk-entries 5: %s, %q", cursor, page)
	}
	// So is the default COUNT, 10: a server given less refused every
	// SCAN without COUNT, redis-cli --scan's (found by review).
	if cursor, page := c.scan("SCAN 0"); cursor == "0" || len(page) != 5 {
		t.Errorf("SCAN 0 with --max-bulk-entries 5: %s, %q; want a page of 5", cursor, page)
	}

	// The bytes of a page: the node stops it at its request limit.
	d, err := disk.Open(t.TempDir(), disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	nodeCfg := core.DefaultSingleConfig()
	nodeCfg.Limits.RequestBytesMax = 4096
	cfg = respConfig()
	cfg.RequestBytesMax = 4096
	r = startHostOn(t, core.NewSingleNode(nodeCfg), d, cfg, nil)
	c = dialRESP(t, r.addr)
	var keys []string
	for i := range 30 {
		keys = append(keys, fmt.Sprintf("%03d%s", i, strings.Repeat("k", 197)))
	}
	for _, k := range keys {
		c.send("SET " + k + " v\r\n")
		c.expect("+OK\r\n")
	}
	c.send("KEYS *\r\n")
	c.expect("-ERR KEYS would read more than 4096 bytes of keys, counted as JSON strings (--max-request-bytes): walk them with SCAN\r\n")
	c.send("KEYS 00*\r\n")
	c.expect(scanBulks(keys[:10]...))
	if got, _ := scanWalk(t, "COUNT 100", c); !slices.Equal(got, keys) {
		t.Errorf("a SCAN walk of pages the bytes bound: %d keys, want %d", len(got), len(keys))
	}
}

// SCAN and KEYS as a connection's first line, inline, are RESP; COMMAND
// describes them as Redis 7 does.
func TestRESPScanIsToldInline(t *testing.T) {
	r := startSingle(t, respConfig())
	for _, tc := range []struct{ send, want string }{
		{"scan 0\r\n", respScanDone},
		{"KEYS *\r\n", "*0\r\n"},
		{"Scan 0 MATCH x*\r\n", respScanDone},
		{"COMMAND INFO scan keys\r\n", "*2\r\n" +
			"*10\r\n$4\r\nscan\r\n:-2\r\n*1\r\n+readonly\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n*0\r\n" +
			"*10\r\n$4\r\nkeys\r\n:2\r\n*1\r\n+readonly\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n*0\r\n"},
	} {
		c := dialRESP(t, r.addr)
		c.send(tc.send)
		c.expect(tc.want)
	}
}

// The node's errors: a follower's not_leader is NOTLEADER, as for any
// command; a page that says keys are left but holds none is refused
// rather than given a cursor that would not move.
func TestRESPScanRendersTheNodesErrors(t *testing.T) {
	notLeader := core.ErrorResponse(core.CodeNotLeader, "this node is a follower")
	notLeader.Error.Leader = "127.0.0.1:9001"
	more := true
	for _, tc := range []struct {
		resp core.Response
		send string
		want string
	}{
		{notLeader, "SCAN 0\r\nKEYS *\r\n", "-NOTLEADER 127.0.0.1:9001\r\n-NOTLEADER 127.0.0.1:9001\r\n"},
		{core.ErrorResponse(core.CodeUnavailable, "no leader"), "SCAN 0\r\n", "-ERR unavailable: no leader\r\n"},
		{core.Response{OK: true, Keys: []string{}, More: &more}, "SCAN 0\r\n", "-ERR internal: a scan page left keys but held none\r\n"},
	} {
		r := startHost(t, &stubNode{testNode: newTestNode(t), resp: tc.resp}, respConfig())
		c := dialRESP(t, r.addr)
		c.send(tc.send)
		c.expect(tc.want)
	}
}

// A mesh node serves SCAN and KEYS from its replica.
func TestRESPScanOnAMesh(t *testing.T) {
	r := startMesh(t, respConfig())
	c := dialRESP(t, r.addr)
	all := scanKeys()
	scanMSet(t, c, all)
	c.send("DEL k:05\r\n")
	c.expect(":1\r\n")
	want := slices.Delete(slices.Clone(all), 6, 7)
	if keys, _ := scanWalk(t, "COUNT 7", c); !slices.Equal(keys, want) {
		t.Errorf("SCAN on a mesh: %q, want %q", keys, want)
	}
	c.send("KEYS user:*\r\n")
	c.expect(scanBulks(all[26:31]...))
}

// A walk that ends leaves no cursor behind: its last page forgets the
// cursor it was asked with. Finished walks held theirs for 10 minutes, and
// at a high rate of them pushed walks still under way out of the table
// (found by review).
func TestRESPScanFinishedWalkLeavesNoCursor(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	scanMSet(t, c, scanKeys())
	table := r.host.scanTable()
	for range 3 {
		if keys, pages := scanWalk(t, "COUNT 4", c); !slices.Equal(keys, scanKeys()) || pages < 2 {
			t.Fatalf("a walk: %d keys in %d pages", len(keys), pages)
		}
	}
	if n := table.len(); n != 0 {
		t.Errorf("%d cursors held after three finished walks, want 0", n)
	}
}
