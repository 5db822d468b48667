package realnet

import (
	"bytes"
	"math"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"dkv/core"
)

// respRedisVersion is what INFO and HELLO give as redis_version: the Redis
// release whose RESP2 commands dkv's subset follows, for clients that look
// at it to choose what to send. The server names itself dkv beside it.
const respRedisVersion = "7.0.0"

// respArgsMax bounds the elements of one RESP command: an MSET of
// bulkEntriesMax items (two elements each) and its name, and a few more.
// The node still applies its own limit and answers too_large past it.
func respArgsMax(bulkEntriesMax int) int { return 2*bulkEntriesMax + 8 }

// respKind says how a slot's reply is written: as a JSON line, as bytes made
// already, or as the RESP reply of the command whose core.Response it holds.
type respKind uint8

const (
	respJSON        respKind = iota // a JSON line's reply
	respRaw                         // slot.raw is the whole reply, made without the node
	respOK                          // SET, MSET: +OK
	respGet                         // GET: the bulk string, or null
	respDel                         // DEL: bulk_delete's count
	respMGet                        // MGET: an array of bulk strings and nulls
	respExists                      // EXISTS: how many of the named keys exist
	respDBSize                      // DBSIZE: status's key count
	respInfo                        // INFO: slot.raw holds the sections asked for
	respSetCond                     // SET with NX or XX: +OK, or null when its condition did not hold
	respSetNX                       // SETNX: 1 if it set the key, 0 if the key existed
	respTTL                         // TTL: seconds left, -1 without a deadline, -2 for a missing key
	respPTTL                        // PTTL: as TTL, in milliseconds
	respExpire                      // EXPIRE and its kin: 1 if the key got the deadline, 0 if it does not exist
	respPersist                     // PERSIST: 1 if the key had a deadline, taken away; 0 if it had none or does not exist
	respScan                        // SCAN: the next cursor and the page's keys that match; slot.raw holds the cursor given and MATCH (respScanSlot)
	respKeys                        // KEYS: the keys that match, or an error if keys are left past the page; slot.raw holds the pattern
	respType                        // TYPE: +string for a key that exists, +none for one that does not
	respStrlen                      // STRLEN: the value's length in bytes, 0 for a missing key
	respIncr                        // INCR, DECR, INCRBY, DECRBY: the counter's new value
	respMemoryUsage                 // MEMORY USAGE: an estimate of a key's bytes, nil for a missing key; slot.raw holds the key
	respRole                        // ROLE: master or slave, as status says
	respHello                       // HELLO: the server's properties, its role as status says
)

// respCommandInfo is one command of the table, for COMMAND and its
// subcommands: arity as Redis counts it (negative: at least that many),
// flags, and the positions of its keys.
type respCommandInfo struct {
	name                  string
	arity                 int
	flags                 []string
	firstKey, lastKey     int
	step                  int
	summary, group, since string
}

// respCommands are the commands dkv serves over RESP, in COMMAND's order.
var respCommands = []respCommandInfo{
	{"auth", -2, []string{"noscript", "loading", "stale", "fast", "no_auth"}, 0, 0, 0, "Authenticates the connection with the server's password (--auth-file); the only user is default", "connection", "1.0.0"},
	{"client", -2, []string{"noscript", "loading", "stale"}, 0, 0, 0, "Sets or gets the connection's name, or its id (SETNAME, GETNAME, ID, SETINFO)", "connection", "2.4.0"},
	{"command", -1, []string{"loading", "stale"}, 0, 0, 0, "Describes the commands (COUNT, DOCS, INFO, LIST)", "server", "2.8.13"},
	{"config", -2, []string{"noscript", "loading", "stale"}, 0, 0, 0, "CONFIG GET answers an empty array: dkv is configured by its flags", "server", "2.0.0"},
	{"dbsize", 1, []string{"readonly", "fast"}, 0, 0, 0, "Returns the number of keys", "server", "1.0.0"},
	{"decr", 2, []string{"write", "denyoom", "fast"}, 1, 1, 1, "Subtracts 1 from the integer a key holds (a missing key holds 0), its deadline kept; returns the new value (single node, cluster)", "string", "1.0.0"},
	{"decrby", 3, []string{"write", "denyoom", "fast"}, 1, 1, 1, "Subtracts the given integer from the integer a key holds (a missing key holds 0), its deadline kept; returns the new value (single node, cluster)", "string", "1.0.0"},
	{"del", -2, []string{"write"}, 1, -1, 1, "Deletes keys, atomically; returns how many existed", "generic", "1.0.0"},
	{"discard", 1, []string{"noscript", "loading", "stale", "fast"}, 0, 0, 0, "Ends a MULTI without EXEC (dkv refuses every command inside one)", "transactions", "2.0.0"},
	{"echo", 2, []string{"fast"}, 0, 0, 0, "Returns the given string", "connection", "1.0.0"},
	{"exec", 1, []string{"noscript", "loading", "stale"}, 0, 0, 0, "Ends a MULTI: dkv has no transactions, refuses every command inside one and answers EXECABORT, so nothing of it runs", "transactions", "1.2.0"},
	{"exists", -2, []string{"readonly", "fast"}, 1, -1, 1, "Counts the named keys that exist", "generic", "1.0.0"},
	{"expire", -3, []string{"write", "fast"}, 1, 1, 1, "Gives a key a deadline the given seconds from now; returns 1, or 0 if the key does not exist (single node, cluster)", "generic", "1.0.0"},
	{"expireat", -3, []string{"write", "fast"}, 1, 1, 1, "Gives a key a deadline at the given Unix time in seconds; returns 1, or 0 if the key does not exist (single node, cluster)", "generic", "1.2.0"},
	{"get", 2, []string{"readonly", "fast"}, 1, 1, 1, "Returns the value of a key", "string", "1.0.0"},
	{"hello", -1, []string{"noscript", "loading", "stale", "fast"}, 0, 0, 0, "Handshake: HELLO 2 only (RESP2)", "connection", "6.0.0"},
	{"incr", 2, []string{"write", "denyoom", "fast"}, 1, 1, 1, "Adds 1 to the integer a key holds (a missing key holds 0), its deadline kept; returns the new value (single node, cluster)", "string", "1.0.0"},
	{"incrby", 3, []string{"write", "denyoom", "fast"}, 1, 1, 1, "Adds the given integer to the integer a key holds (a missing key holds 0), its deadline kept; returns the new value (single node, cluster)", "string", "1.0.0"},
	{"info", -1, []string{"loading", "stale"}, 0, 0, 0, "Describes the server: server, clients, memory, persistence, stats and keyspace sections", "server", "1.0.0"},
	{"keys", 2, []string{"readonly"}, 0, 0, 0, "Returns the keys that match a glob, in key order; an error if it would read more than one scan page (--max-bulk-entries keys): walk them with SCAN", "generic", "1.0.0"},
	{"memory", -2, []string{}, 0, 0, 0, "MEMORY USAGE key: an estimate of the bytes a key and its value hold (HELP)", "server", "4.0.0"},
	{"mget", -2, []string{"readonly", "fast"}, 1, -1, 1, "Returns the values of keys, read at one instant", "string", "1.0.0"},
	{"mset", -3, []string{"write", "denyoom"}, 1, -1, 2, "Sets keys, atomically and durably", "string", "1.0.1"},
	{"multi", 1, []string{"noscript", "loading", "stale", "fast"}, 0, 0, 0, "Opens a transaction that dkv refuses: every command until EXEC is refused, not run, and EXEC answers EXECABORT (MSET writes keys together)", "transactions", "1.2.0"},
	{"persist", 2, []string{"write", "fast"}, 1, 1, 1, "Takes a key's deadline away; returns 1 if it had one, else 0 (single node, cluster)", "generic", "2.2.0"},
	{"pexpire", -3, []string{"write", "fast"}, 1, 1, 1, "Gives a key a deadline the given milliseconds from now; returns 1, or 0 if the key does not exist (single node, cluster)", "generic", "2.6.0"},
	{"pexpireat", -3, []string{"write", "fast"}, 1, 1, 1, "Gives a key a deadline at the given Unix time in milliseconds; returns 1, or 0 if the key does not exist (single node, cluster)", "generic", "2.6.0"},
	{"ping", -1, []string{"fast"}, 0, 0, 0, "Returns PONG, or the given string", "connection", "1.0.0"},
	{"psetex", 4, []string{"write", "denyoom"}, 1, 1, 1, "Sets a key that expires after the given milliseconds, durably (single node, cluster)", "string", "2.6.0"},
	{"pttl", 2, []string{"readonly", "fast"}, 1, 1, 1, "Returns the milliseconds a key has left: -1 without a deadline, -2 for a missing key (single node, cluster)", "generic", "2.6.0"},
	{"quit", -1, []string{"noscript", "loading", "stale", "fast"}, 0, 0, 0, "Closes the connection", "connection", "1.0.0"},
	{"role", 1, []string{"noscript", "loading", "stale", "fast"}, 0, 0, 0, "Says whether the node takes writes (master: a single node, a mesh node, a cluster's leader) or sends them to its leader (slave)", "server", "2.8.12"},
	{"scan", -2, []string{"readonly"}, 0, 0, 0, "Walks the keys in key order, a page a call (MATCH, COUNT, TYPE); a cursor lasts 10 minutes idle", "generic", "2.8.0"},
	{"select", 2, []string{"loading", "stale", "fast"}, 0, 0, 0, "Selects database 0, the only one", "connection", "2.0.0"},
	{"set", -3, []string{"write", "denyoom"}, 1, 1, 1, "Sets a key, durably; NX or XX makes it conditional, EX, PX, EXAT or PXAT makes it expire (single node, cluster)", "string", "1.0.0"},
	{"setex", 4, []string{"write", "denyoom"}, 1, 1, 1, "Sets a key that expires after the given seconds, durably (single node, cluster)", "string", "2.0.0"},
	{"setnx", 3, []string{"write", "denyoom", "fast"}, 1, 1, 1, "Sets a key only if it does not exist; returns 1 if it did (single node, cluster)", "string", "1.0.0"},
	{"strlen", 2, []string{"readonly", "fast"}, 1, 1, 1, "Returns the length of a key's value in bytes, 0 for a missing key", "string", "2.2.0"},
	{"touch", -2, []string{"readonly", "fast"}, 1, -1, 1, "Counts the named keys that exist (dkv keeps no access times)", "generic", "3.2.1"},
	{"ttl", 2, []string{"readonly", "fast"}, 1, 1, 1, "Returns the seconds a key has left: -1 without a deadline, -2 for a missing key (single node, cluster)", "generic", "1.0.0"},
	{"type", 2, []string{"readonly", "fast"}, 1, 1, 1, "Returns string for a key that exists (every dkv value is a string), none for a missing key", "generic", "1.0.0"},
	{"unlink", -2, []string{"write", "fast"}, 1, -1, 1, "Deletes keys, atomically, as DEL; returns how many existed", "generic", "4.0.0"},
	{"unwatch", 1, []string{"noscript", "loading", "stale", "fast"}, 0, 0, 0, "Does nothing: dkv watches no keys", "transactions", "2.2.0"},
	{"watch", -2, []string{"noscript", "loading", "stale", "fast"}, 1, -1, 1, "Refused: dkv has no MULTI/EXEC transactions (SET NX or XX, or JSON if_value, for compare-and-set)", "transactions", "2.2.0"},
}

// respRefusedCommands are the commands dkv answers with an error of its
// own, naming what to send instead (respCommand), rather than as unknown;
// not in the table, as they are not served.
var respRefusedCommands = []string{"expiretime", "pexpiretime", "getex", "incrbyfloat"}

// isRESPCommand reports whether word names a command of the table, or one
// refused by name, in any case: how the first line of a connection is
// told to be an inline RESP command rather than JSON.
func isRESPCommand(word []byte) bool {
	var lower [16]byte
	name, ok := lowerName(word, lower[:0])
	if !ok {
		return false
	}
	for i := range respCommands {
		if respCommands[i].name == string(name) {
			return true
		}
	}
	return slices.Contains(respRefusedCommands, string(name))
}

// lowerName lower-cases a command name into buf, if it is short enough to
// be one.
func lowerName(word, buf []byte) ([]byte, bool) {
	if len(word) > cap(buf) {
		return nil, false
	}
	for _, c := range word {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	return buf, true
}

// respState is a RESP connection's own state: its name (CLIENT SETNAME),
// id and open MULTI. Only the reader touches it.
type respState struct {
	dec  *respDecoder
	id   uint64
	name string
	// multi says a MULTI is open: every command until EXEC or DISCARD is
	// refused (respTransaction); refused counts them, for EXEC's answer.
	multi   bool
	refused int
}

// respNoTransaction is the refusal of a command sent inside a MULTI.
const respNoTransaction = "ERR dkv does not serve MULTI/EXEC transactions: this command was not queued and will not run, and EXEC will discard the transaction; for writes that apply together, send one MSET (or one DEL of many keys)"

// respExecAbort is EXEC's answer to a MULTI whose commands were refused:
// Redis's words, which clients match on their first, and dkv's reason.
const respExecAbort = "EXECABORT Transaction discarded because of previous errors: dkv does not serve MULTI/EXEC, and nothing of the transaction ran"

// respTransaction answers MULTI, EXEC, DISCARD, WATCH and UNWATCH, and
// every command sent between a MULTI and its EXEC or DISCARD (QUIT
// excepted, which Redis too runs at once). dkv has no transactions, and
// running a MULTI's commands one by one as they come would apply a
// transaction's writes apart, unseen by its EXEC, while the client, told
// that MULTI is unknown, takes the whole for failed: go-redis's
// TxPipelined returned that error for every command of a transaction whose
// writes had all applied (found by review). So a MULTI is taken (+OK) and
// each command in it is refused, not run, as Redis refuses a command it
// cannot queue; EXEC then answers Redis's EXECABORT, and the client sees
// the transaction fail whole, nothing of it applied, its connection's
// replies still one per command. WATCH is refused (nothing could honour
// it); UNWATCH has nothing to undo. handled says name was one of these.
func (c *conn) respTransaction(name string, argv [][]byte) (s *slot, handled bool) {
	rs := &c.resp
	raw := func(b string) *slot { return &slot{filled: true, kind: respRaw, raw: []byte(b)} }
	errorf := func(msg string) *slot { return raw(string(appendRESPError(nil, msg))) }
	arity := func() *slot {
		return errorf("ERR wrong number of arguments for '" + name + "' command")
	}
	switch name {
	case "multi":
		switch {
		case len(argv) != 1:
			return arity(), true
		case rs.multi:
			return errorf("ERR MULTI calls can not be nested"), true
		}
		rs.multi, rs.refused = true, 0
		return raw("+OK\r\n"), true
	case "exec", "discard":
		switch {
		case len(argv) != 1:
			return arity(), true
		case !rs.multi:
			return errorf("ERR " + strings.ToUpper(name) + " without MULTI"), true
		}
		refused := rs.refused
		rs.multi, rs.refused = false, 0
		switch {
		case name == "discard":
			return raw("+OK\r\n"), true
		case refused > 0:
			return errorf(respExecAbort), true
		}
		return raw("*0\r\n"), true // an empty transaction, as Redis answers it
	case "watch":
		if rs.multi {
			return errorf("ERR WATCH inside MULTI is not allowed"), true
		}
		if len(argv) < 2 {
			return arity(), true
		}
		return errorf("ERR dkv does not serve WATCH: it has no MULTI/EXEC transactions; to write a key only if it is unchanged, use SET key value NX or XX, or the JSON protocol's if_value (compare-and-set)"), true
	case "unwatch":
		if len(argv) != 1 {
			return arity(), true
		}
		if !rs.multi {
			return raw("+OK\r\n"), true // nothing is ever watched
		}
	case "quit":
		return nil, false
	}
	if !rs.multi {
		return nil, false
	}
	rs.refused++
	return errorf(respNoTransaction), true
}

// respCommand turns one command into the slot that answers it: a request
// for the node, or a reply made here. quit says the connection closes once
// that reply is sent (QUIT).
func (c *conn) respCommand(argv [][]byte) (s *slot, quit bool) {
	var lower [16]byte
	name, _ := lowerName(argv[0], lower[:0])
	args := argv[1:]
	raw := func(b []byte) *slot { return &slot{filled: true, kind: respRaw, raw: b} }
	errorf := func(msg string) *slot { return raw(appendRESPError(nil, msg)) }
	arity := func() *slot {
		return errorf("ERR wrong number of arguments for '" + string(name) + "' command")
	}
	// A request is built in its slot's room (core.RequestBuf): one
	// allocation for both.
	held := func(s *slot, kind respKind) *slot {
		s = c.requestSlot(s, s.buf.Request())
		s.kind = kind
		return s
	}
	request := func(r core.Request, kind respKind) *slot {
		s := c.newSlot()
		*s.buf.Request() = r
		return held(s, kind)
	}
	if c.authRequired() {
		switch string(name) {
		case "auth", "hello", "quit":
		default:
			c.refusedAuth(core.CodeAuthRequired)
			return errorf(respNoAuth), false
		}
	}
	if s, handled := c.respTransaction(string(name), argv); handled {
		return s, false
	}
	switch string(name) {
	case "auth":
		var user, password []byte
		switch len(args) {
		case 1:
			password = args[0]
		case 2:
			user, password = args[0], args[1]
		default:
			return arity(), false
		}
		if msg, closing := c.respAuthenticate(user, password); msg != "" {
			return errorf(msg), closing
		}
		return raw([]byte("+OK\r\n")), false
	case "get":
		if len(args) != 1 {
			return arity(), false
		}
		return request(core.Request{Op: core.OpGet, Key: string(args[0])}, respGet), false
	case "set":
		if len(args) < 2 {
			return arity(), false
		}
		req := core.Request{Op: core.OpSet, Key: string(args[0])}
		kind := respOK
		if len(args) > 2 {
			opts, msg := parseSetOptions(args[2:], time.Now().UnixMilli())
			if msg != "" {
				return errorf(msg), false
			}
			req.IfAbsent, req.IfExists, req.TTLMs = opts.ifAbsent, opts.ifExists, opts.ttlMs
			if opts.ifAbsent || opts.ifExists {
				kind = respSetCond
			}
		}
		s := c.newSlot()
		*s.buf.Request() = req
		s.buf.SetValue(string(args[1])) // before requestSlot's Prepare
		return held(s, kind), false
	case "setnx":
		if len(args) != 2 {
			return arity(), false
		}
		s := c.newSlot()
		*s.buf.Request() = core.Request{Op: core.OpSet, Key: string(args[0]), IfAbsent: true}
		s.buf.SetValue(string(args[1]))
		return held(s, respSetNX), false
	case "setex", "psetex":
		// SETEX key seconds value, PSETEX key milliseconds value.
		if len(args) != 3 {
			return arity(), false
		}
		unit := respSeconds
		if string(name) == "psetex" {
			unit = respMilliseconds
		}
		ttl, msg := respExpireTTL(string(name), args[1], unit, false, time.Now().UnixMilli())
		if msg != "" {
			return errorf(msg), false
		}
		s := c.newSlot()
		*s.buf.Request() = core.Request{Op: core.OpSet, Key: string(args[0]), TTLMs: ttl}
		s.buf.SetValue(string(args[2]))
		return held(s, respOK), false
	case "ttl", "pttl":
		if len(args) != 1 {
			return arity(), false
		}
		kind := respTTL
		if string(name) == "pttl" {
			kind = respPTTL
		}
		return request(core.Request{Op: core.OpTTL, Key: string(args[0])}, kind), false
	case "expire", "pexpire", "expireat", "pexpireat":
		// EXPIRE key seconds, PEXPIRE key milliseconds, EXPIREAT key
		// unix-time-seconds, PEXPIREAT key unix-time-milliseconds.
		if len(args) < 2 {
			return arity(), false
		}
		if len(args) > 2 {
			return errorf(expireOptionError(args[2])), false // Redis reads the options before the time
		}
		unit := respSeconds
		if name[0] == 'p' {
			unit = respMilliseconds
		}
		at := bytes.HasSuffix(name, []byte("at"))
		ttl, gone, msg := respExpireArg(string(name), args[1], unit, at, time.Now().UnixMilli())
		switch {
		case msg != "":
			return errorf(msg), false
		case gone:
			// No time left: Redis deletes the key and answers 1 if it
			// existed; so does a bulk_delete of it, with its count.
			return request(core.Request{Op: core.OpBulkDelete, Keys: []string{string(args[0])}}, respDel), false
		}
		return request(core.Request{Op: core.OpExpire, Key: string(args[0]), TTLMs: ttl}, respExpire), false
	case "persist":
		if len(args) != 1 {
			return arity(), false
		}
		return request(core.Request{Op: core.OpPersist, Key: string(args[0])}, respPersist), false
	case "expiretime", "pexpiretime", "getex":
		return errorf(respNoExpire(string(name))), false
	case "incr", "decr", "incrby", "decrby":
		// INCR key, DECR key, INCRBY key n, DECRBY key n: one incr each.
		// The delta is worked out here, so a bad argument is refused
		// before the key is read, as Redis refuses it.
		want := 1
		if bytes.HasSuffix(name, []byte("by")) {
			want = 2
		}
		if len(args) != want {
			return arity(), false
		}
		delta, msg := respIncrDelta(name[0] == 'd', args[1:])
		if msg != "" {
			return errorf(msg), false
		}
		req := core.Request{Op: core.OpIncr, Key: string(args[0])}
		if delta != 1 { // nil is 1: INCR allocates no delta
			req.Delta = &delta
		}
		return request(req, respIncr), false
	case "incrbyfloat":
		return errorf(respNoIncrByFloat), false
	case "del", "unlink":
		// UNLINK frees memory in the background in Redis; here the
		// delete is the same either way.
		if len(args) < 1 {
			return arity(), false
		}
		return request(core.Request{Op: core.OpBulkDelete, Keys: respStrings(args)}, respDel), false
	case "type", "strlen":
		// redis-cli --bigkeys walks the keys with SCAN and asks each
		// one's TYPE, then its STRLEN.
		if len(args) != 1 {
			return arity(), false
		}
		kind := respType
		if string(name) == "strlen" {
			kind = respStrlen
		}
		return request(core.Request{Op: core.OpGet, Key: string(args[0])}, kind), false
	case "memory":
		return c.respMemory(args, request), false
	case "touch":
		// Redis's TOUCH updates access times, which dkv does not keep;
		// its answer, how many of the keys exist, is EXISTS's.
		if len(args) < 1 {
			return arity(), false
		}
		return request(core.Request{Op: core.OpBulkGet, Keys: respStrings(args), Presence: true}, respExists), false
	case "mget", "exists":
		if len(args) < 1 {
			return arity(), false
		}
		kind := respMGet
		if string(name) == "exists" {
			kind = respExists
		}
		return request(core.Request{Op: core.OpBulkGet, Keys: respStrings(args), Presence: kind == respExists}, kind), false
	case "mset":
		if len(args) < 2 || len(args)%2 != 0 {
			return arity(), false
		}
		items := make([]core.KV, len(args)/2)
		for i := range items {
			items[i] = core.KV{Key: string(args[2*i]), Value: string(args[2*i+1])}
		}
		return request(core.Request{Op: core.OpBulkSet, Items: items}, respOK), false
	case "dbsize":
		if len(args) != 0 {
			return arity(), false
		}
		return request(core.Request{Op: core.OpStatus}, respDBSize), false
	case "role":
		if len(args) != 0 {
			return arity(), false
		}
		return request(core.Request{Op: core.OpStatus}, respRole), false
	case "info":
		s := request(core.Request{Op: core.OpStatus}, respInfo)
		s.raw = bytes.ToLower(bytes.Join(args, []byte{' '}))
		return s, false
	case "ping":
		switch len(args) {
		case 0:
			return raw([]byte("+PONG\r\n")), false
		case 1:
			return raw(appendRESPBulk(nil, string(args[0]))), false
		}
		return arity(), false
	case "echo":
		if len(args) != 1 {
			return arity(), false
		}
		return raw(appendRESPBulk(nil, string(args[0]))), false
	case "quit":
		return raw([]byte("+OK\r\n")), true
	case "select":
		if len(args) != 1 {
			return arity(), false
		}
		db, ok := parseRESPInt(args[0])
		switch {
		case !ok:
			return errorf("ERR value is not an integer or out of range"), false
		case db != 0:
			return errorf("ERR DB index is out of range (dkv has database 0 only)"), false
		}
		return raw([]byte("+OK\r\n")), false
	case "hello":
		return c.respHelloCommand(args, request)
	case "client":
		return c.respClient(args), false
	case "command":
		return raw(respCommandReply(args)), false
	case "config":
		if len(args) == 0 {
			return arity(), false
		}
		if strings.EqualFold(string(args[0]), "get") {
			if len(args) < 2 {
				return errorf("ERR wrong number of arguments for 'config|get' command"), false
			}
			// dkv is configured by its flags, not at run time.
			return raw([]byte("*0\r\n")), false
		}
		return errorf(unknownSubcommand(args, "CONFIG")), false
	case "scan":
		if len(args) < 1 {
			return arity(), false
		}
		req, b, msg := c.respScanCommand(args)
		switch {
		case msg != "":
			return errorf(msg), false
		case req.Op == "":
			return raw(b), false
		}
		s := request(req, respScan)
		s.raw = b
		return s, false
	case "keys":
		if len(args) != 1 {
			return arity(), false
		}
		req, msg := c.respKeysCommand(args[0])
		switch {
		case msg != "":
			return errorf(msg), false
		case req.Op == "":
			return raw([]byte("*0\r\n")), false
		}
		s := request(req, respKeys)
		s.raw = bytes.Clone(args[0]) // args alias the read buffer; not empty, so not nil
		return s, false
	}
	return errorf(unknownCommand(argv)), false
}

// respStrings copies RESP arguments, which alias the read buffer.
func respStrings(args [][]byte) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = string(a)
	}
	return out
}

// setOptionError answers SET with an option dkv lacks: KEEPTTL (every SET
// replaces the key's deadline), GET (a write returns no old value), or one
// Redis does not have either.
func setOptionError(opt []byte) string {
	name := strings.ToUpper(string(opt))
	why := ""
	switch name {
	case "KEEPTTL":
		why = ": every SET replaces the key's expiry (with EX, PX, EXAT or PXAT, or none)"
	case "GET":
		why = ": SET does not return the old value"
	}
	return "ERR dkv does not support SET option '" + respQuoteArg(name) + "'" + why +
		"; SET takes a key, a value, NX or XX, and one of EX seconds, PX milliseconds, EXAT unix-time-seconds, PXAT unix-time-milliseconds"
}

// respSetOptions is what SET's options after the key and value ask for.
type respSetOptions struct {
	ifAbsent, ifExists bool   // NX, XX
	ttlMs              uint64 // EX, PX, EXAT, PXAT; 0 for none
}

// parseSetOptions parses SET's options as Redis 7 does: NX or XX and one of
// EX, PX, EXAT, PXAT, in any order, the names in any case. As in Redis,
// NX with XX, or two different expiry options, is a syntax error, an
// option named again takes its last value (SET k v EX 10 EX 20 expires in
// 20 s), an expiry option without an argument is a syntax error, and only
// once every option has parsed is the expiry's argument read (a syntax
// error comes before a bad number). KEEPTTL, GET and any other word are
// refused with setOptionError. nowMs is the calendar time in Unix
// milliseconds, for EXAT and PXAT. msg is the error reply, or "".
func parseSetOptions(opts [][]byte, nowMs int64) (o respSetOptions, msg string) {
	const syntax = "ERR syntax error"
	// The expiry option (its unit: 0 for none yet; at: EXAT or PXAT) and
	// its argument.
	type expiryOption struct {
		unit respTimeUnit
		at   bool
	}
	var expiry expiryOption
	var arg []byte
	for i := 0; i < len(opts); i++ {
		var lower [8]byte
		opt, _ := lowerName(opts[i], lower[:0]) // nil, and so refused, if longer
		switch string(opt) {
		case "nx":
			if o.ifExists {
				return o, syntax
			}
			o.ifAbsent = true
		case "xx":
			if o.ifAbsent {
				return o, syntax
			}
			o.ifExists = true
		case "ex", "px", "exat", "pxat":
			this := expiryOption{unit: respSeconds, at: len(opt) == 4}
			if opt[0] == 'p' {
				this.unit = respMilliseconds
			}
			if expiry.unit != 0 && expiry != this || i+1 == len(opts) {
				return o, syntax
			}
			expiry, arg = this, opts[i+1]
			i++
		default:
			return o, setOptionError(opts[i])
		}
	}
	if expiry.unit != 0 {
		o.ttlMs, msg = respExpireTTL("set", arg, expiry.unit, expiry.at, nowMs)
	}
	return o, msg
}

// respTimeUnit is the unit of an expiry's argument.
type respTimeUnit int64

const (
	respSeconds      respTimeUnit = 1000
	respMilliseconds respTimeUnit = 1
)

// respExpireTTL turns an expiry argument of cmd into a set's ttl_ms, with
// Redis's errors: not an integer; zero, negative, or a deadline past
// what an int64 of Unix milliseconds holds ("invalid expire time in 'set'
// command"). at says the argument is a Unix time (EXAT, PXAT), nowMs the
// calendar time it is taken from. A deadline more than core.TTLMsMax away
// (ten years) is refused, naming the limit.
func respExpireTTL(cmd string, arg []byte, unit respTimeUnit, at bool, nowMs int64) (uint64, string) {
	v, ok := parseRESPInt(arg)
	if !ok {
		return 0, "ERR value is not an integer or out of range"
	}
	invalid := "ERR invalid expire time in '" + cmd + "' command"
	if v <= 0 || v > math.MaxInt64/int64(unit) {
		return 0, invalid
	}
	ms := v * int64(unit)
	if !at {
		if ms > math.MaxInt64-nowMs { // Redis's deadline, now + ms, overflows
			return 0, invalid
		}
	} else {
		ms -= nowMs
		if ms <= 0 {
			// A time already passed: Redis sets the key and deletes it at
			// once. dkv sets it to expire in 1 ms, and the node deletes it
			// as soon as that passed: reads may still see it for as long
			// as that delete takes to apply, where Redis's never do.
			return 1, ""
		}
	}
	if ms > core.TTLMsMax {
		return 0, invalid + ": over dkv's limit of ten years (EX " + strconv.FormatInt(core.TTLMsMax/1000, 10) +
			", PX " + strconv.FormatInt(core.TTLMsMax, 10) + ")"
	}
	return uint64(ms), ""
}

// respExpireArg turns EXPIRE's (or its kin's, cmd) time argument into an
// expire's ttl_ms, with Redis's errors: not an integer; a deadline past
// what an int64 of Unix milliseconds holds ("invalid expire time in
// 'expire' command"). gone says no time is left (zero or negative, or a
// Unix time already passed): Redis then deletes the key. A deadline more
// than core.TTLMsMax away (ten years) is refused, naming the limit.
func respExpireArg(cmd string, arg []byte, unit respTimeUnit, at bool, nowMs int64) (ttl uint64, gone bool, msg string) {
	v, ok := parseRESPInt(arg)
	if !ok {
		return 0, false, "ERR value is not an integer or out of range"
	}
	invalid := "ERR invalid expire time in '" + cmd + "' command"
	if v > math.MaxInt64/int64(unit) || v < math.MinInt64/int64(unit) {
		return 0, false, invalid
	}
	ms := v * int64(unit)
	switch {
	case at && ms <= nowMs:
		return 0, true, "" // compared, not subtracted: a time far in the past would wrap
	case at:
		ms -= nowMs
	case ms > math.MaxInt64-nowMs: // Redis's deadline, now + ms, overflows
		return 0, false, invalid
	case ms <= 0:
		return 0, true, ""
	}
	if ms > core.TTLMsMax {
		return 0, false, invalid + ": over dkv's limit of ten years (EXPIRE " + strconv.FormatInt(core.TTLMsMax/1000, 10) +
			", PEXPIRE " + strconv.FormatInt(core.TTLMsMax, 10) + ")"
	}
	return uint64(ms), false, ""
}

// expireOptionError answers EXPIRE with an option: NX, XX, GT and LT
// (Redis 7) make the deadline conditional on the one the key has, which
// dkv does not serve; any other word is Redis's own error.
func expireOptionError(opt []byte) string {
	switch strings.ToUpper(string(opt)) {
	case "NX", "XX", "GT", "LT":
		return "ERR dkv does not serve EXPIRE's NX, XX, GT and LT options: read the time left with PTTL key, then send EXPIRE key seconds"
	}
	return "ERR Unsupported option " + string(opt)
}

// respIncrDelta is what INCR and its kin add: 1, or the argument of INCRBY
// and DECRBY (by, empty for INCR and DECR), negated for DECR and DECRBY.
// The least int64 has no negation, and Redis refuses its DECRBY in words
// of its own, whatever the key holds.
func respIncrDelta(decr bool, by [][]byte) (int64, string) {
	n := int64(1)
	if len(by) > 0 {
		var ok bool
		if n, ok = parseRESPInt(by[0]); !ok {
			return 0, "ERR value is not an integer or out of range"
		}
	}
	switch {
	case !decr:
		return n, ""
	case n == math.MinInt64:
		return 0, "ERR decrement would overflow"
	}
	return -n, ""
}

// respNoIncrByFloat answers INCRBYFLOAT, named rather than unknown: a
// client that counts in floats learns that dkv's counters are integers,
// and what it can send instead.
const respNoIncrByFloat = "ERR dkv does not serve INCRBYFLOAT: its counters are integers (a decimal int64); add a whole number with INCRBY key n or DECRBY key n"

// respNoExpire answers the commands that read or change a key's expiry
// that dkv does not serve, naming what to send instead.
func respNoExpire(name string) string {
	cmd := strings.ToUpper(name)
	if name == "getex" {
		return "ERR dkv does not serve GETEX yet: read the key with GET and give it a deadline with EXPIRE key seconds, or take it away with PERSIST key"
	}
	return "ERR dkv does not serve " + cmd + " yet: read the time a key has left with TTL key or PTTL key"
}

// unknownCommand is Redis's error for a command it does not have, word for
// word: "unknown command 'x', with args beginning with: 'a' 'b' ".
func unknownCommand(argv [][]byte) string {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.WriteString(respQuoteArg(string(argv[0])))
	b.WriteString("', with args beginning with: ")
	for _, a := range argv[1:] {
		if b.Len() > 1024 {
			break
		}
		b.WriteString("'")
		b.WriteString(respQuoteArg(string(a)))
		b.WriteString("' ")
	}
	return b.String()
}

// respMemory serves MEMORY USAGE key [SAMPLES count], which redis-cli
// --memkeys and key browsers ask of each key, as a get (SAMPLES is
// accepted and has nothing to sample: a value is one string), and MEMORY
// HELP. Redis's other subcommands report on its allocator, which dkv does
// not have.
func (c *conn) respMemory(args [][]byte, request func(core.Request, respKind) *slot) *slot {
	raw := func(b []byte) *slot { return &slot{filled: true, kind: respRaw, raw: b} }
	errorf := func(msg string) *slot { return raw(appendRESPError(nil, msg)) }
	if len(args) == 0 {
		return errorf("ERR wrong number of arguments for 'memory' command")
	}
	switch sub := strings.ToLower(string(args[0])); sub {
	case "usage":
		// As Redis 7.0 reads it: the key, then SAMPLES count pairs (the
		// last counts), a negative count a syntax error.
		if len(args) < 2 {
			return errorf("ERR wrong number of arguments for 'memory|usage' command")
		}
		for j := 2; j < len(args); j += 2 {
			if !strings.EqualFold(string(args[j]), "samples") || j+1 == len(args) {
				return errorf("ERR syntax error")
			}
			n, ok := parseRESPInt(args[j+1])
			switch {
			case !ok:
				return errorf("ERR value is not an integer or out of range")
			case n < 0:
				return errorf("ERR syntax error")
			}
		}
		s := request(core.Request{Op: core.OpGet, Key: string(args[1])}, respMemoryUsage)
		s.raw = bytes.Clone(args[1]) // args alias the read buffer
		return s
	case "help":
		if len(args) != 1 {
			return errorf("ERR wrong number of arguments for 'memory|help' command")
		}
		lines := []string{
			"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"USAGE <key> [SAMPLES <count>]",
			"    Return an estimate of the bytes <key> and its value hold in dkv's store:",
			"    their bytes as Go's allocator rounds them, and the store's own per key.",
			"HELP",
			"    Print this help.",
		}
		b := appendRESPArray(nil, len(lines))
		for _, l := range lines {
			b = appendRESPSimple(b, l)
		}
		return raw(b)
	}
	return errorf(unknownSubcommand(args, "MEMORY"))
}

// memoryUsage estimates what a key of klen bytes and its value of vlen
// hold in the store: one allocation of both (core's item), rounded up as
// Go's allocator rounds it (goSizeClasses; whole pages above them), and
// 24 bytes of the tree's (its 16-byte item in nodes some two-thirds
// full). For 10-byte keys and 100-byte values it says 136;
// BenchmarkStoreMemory measures 135-145 bytes a key. A mesh's keys carry
// their stamps beside, which it leaves out.
func memoryUsage(klen, vlen int) int64 {
	n := int64(klen + vlen)
	if n > goSizeClasses[len(goSizeClasses)-1] {
		return (n+8191)&^8191 + 24
	}
	i, _ := slices.BinarySearch(goSizeClasses[:], n)
	return goSizeClasses[i] + 24
}

// goSizeClasses are the Go allocator's size classes for small objects
// (runtime/sizeclasses.go; TestGoSizeClasses holds them to the running
// runtime's rounding).
var goSizeClasses = [...]int64{
	0, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
	288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280,
	1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528,
	6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072,
	20480, 21760, 24576, 27264, 28672, 32768,
}

func unknownSubcommand(args [][]byte, cmd string) string {
	sub := ""
	if len(args) > 0 {
		sub = respQuoteArg(string(args[0]))
	}
	return "ERR unknown subcommand '" + sub + "'. Try " + cmd + " HELP."
}

// respQuoteArg shortens an argument to 128 bytes for an error message, as
// Redis does; the encoder makes any line break a space.
func respQuoteArg(s string) string {
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// respHelloCommand serves HELLO: the handshake, then the server's
// properties, which name its role as Redis's HELLO does (master, or
// replica); so they are made from the node's status, as ROLE's are.
func (c *conn) respHelloCommand(args [][]byte, request func(core.Request, respKind) *slot) (_ *slot, closing bool) {
	errorf := func(msg string) *slot { return &slot{filled: true, kind: respRaw, raw: appendRESPError(nil, msg)} }
	var name, user, password []byte
	if len(args) > 0 {
		v, ok := parseRESPInt(args[0])
		switch {
		case !ok:
			return errorf("ERR Protocol version is not an integer or out of range"), false
		case v == 3:
			return errorf("NOPROTO this server speaks RESP2 only; send HELLO 2, or no HELLO"), false
		case v != 2:
			return errorf("NOPROTO unsupported protocol version"), false
		}
		for i := 1; i < len(args); i++ {
			switch opt := strings.ToUpper(string(args[i])); {
			case opt == "SETNAME" && i+1 < len(args):
				if msg := clientNameError(args[i+1]); msg != "" {
					return errorf(msg), false
				}
				name = args[i+1]
				i++
			case opt == "AUTH" && i+2 < len(args):
				user, password = args[i+1], args[i+2]
				i += 2
			default:
				return errorf("ERR Syntax error in HELLO option '" + respQuoteArg(string(args[i])) + "'"), false
			}
		}
	}
	switch {
	case password != nil:
		// Redis checks the credentials before it takes the name, and a
		// refused HELLO takes neither.
		if msg, closing := c.respAuthenticate(user, password); msg != "" {
			return errorf(msg), closing
		}
	case c.authRequired():
		c.refusedAuth(core.CodeAuthRequired)
		return errorf(respNoAuthHello), false
	}
	if name != nil {
		c.resp.name = string(name)
	}
	return request(core.Request{Op: core.OpStatus}, respHello), false
}

// appendRESPHello writes HELLO's properties as Redis 7 does in RESP2: a
// flat array of names and values. role is "master" on a node that takes
// writes and "replica" on one that sends them to a leader, or knows none
// yet (a Redis replica whose master is down says replica too): a client
// that picks a node to write to by HELLO's role, as some do by ROLE's,
// must not take a cluster's follower for one. mode stays "standalone":
// "cluster" would say Redis Cluster, whose slots dkv does not serve.
func (c *conn) appendRESPHello(dst []byte, r replication) []byte {
	role := "replica"
	if r.master {
		role = "master"
	}
	dst = appendRESPArray(dst, 14)
	dst = appendRESPBulk(dst, "server")
	dst = appendRESPBulk(dst, "dkv")
	dst = appendRESPBulk(dst, "version")
	dst = appendRESPBulk(dst, respRedisVersion)
	dst = appendRESPBulk(dst, "proto")
	dst = appendRESPInt(dst, 2)
	dst = appendRESPBulk(dst, "id")
	dst = appendRESPInt(dst, int64(c.resp.id))
	dst = appendRESPBulk(dst, "mode")
	dst = appendRESPBulk(dst, "standalone")
	dst = appendRESPBulk(dst, "role")
	dst = appendRESPBulk(dst, role)
	dst = appendRESPBulk(dst, "modules")
	return appendRESPArray(dst, 0)
}

// respClientNameBytesMax bounds a connection's name (CLIENT SETNAME,
// HELLO … SETNAME), which it keeps for as long as it is open: unbounded, a
// name could be a whole command long (16 MiB), held by each of
// --max-conns connections. Client libraries name themselves in a few
// tens of bytes.
const respClientNameBytesMax = 1024

// clientNameError is the error for a name a connection cannot take, or "".
func clientNameError(name []byte) string {
	switch {
	case len(name) > respClientNameBytesMax:
		return "ERR dkv's client names are at most " + strconv.Itoa(respClientNameBytesMax) + " bytes; this one is " + strconv.Itoa(len(name))
	case !validClientName(name):
		return "ERR Client names cannot contain spaces, newlines or special characters."
	}
	return ""
}

func validClientName(name []byte) bool {
	for _, ch := range name {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

func (c *conn) respClient(args [][]byte) *slot {
	raw := func(b []byte) *slot { return &slot{filled: true, kind: respRaw, raw: b} }
	if len(args) == 0 {
		return raw(appendRESPError(nil, "ERR wrong number of arguments for 'client' command"))
	}
	sub := strings.ToLower(string(args[0]))
	wrong := raw(appendRESPError(nil, "ERR wrong number of arguments for 'client|"+respQuoteArg(sub)+"' command"))
	switch sub {
	case "id":
		if len(args) != 1 {
			return wrong
		}
		return raw(appendRESPInt(nil, int64(c.resp.id)))
	case "getname":
		if len(args) != 1 {
			return wrong
		}
		if c.resp.name == "" {
			return raw(appendRESPNull(nil))
		}
		return raw(appendRESPBulk(nil, c.resp.name))
	case "setname":
		if len(args) != 2 {
			return wrong
		}
		if msg := clientNameError(args[1]); msg != "" {
			return raw(appendRESPError(nil, msg))
		}
		c.resp.name = string(args[1])
		return raw([]byte("+OK\r\n"))
	case "setinfo":
		// Client libraries name themselves at connect; nothing to keep.
		if len(args) != 3 {
			return wrong
		}
		return raw([]byte("+OK\r\n"))
	}
	return raw(appendRESPError(nil, unknownSubcommand(args, "CLIENT")))
}

// respCommandReply answers COMMAND, COMMAND COUNT, COMMAND LIST, COMMAND
// INFO and COMMAND DOCS from the table; enough for redis-cli's start-up and for
// client libraries that route by key position.
func respCommandReply(args [][]byte) []byte {
	find := func(name []byte) *respCommandInfo {
		for i := range respCommands {
			if strings.EqualFold(respCommands[i].name, string(name)) {
				return &respCommands[i]
			}
		}
		return nil
	}
	selected := func(names [][]byte) []*respCommandInfo {
		var out []*respCommandInfo
		if len(names) == 0 {
			for i := range respCommands {
				out = append(out, &respCommands[i])
			}
			return out
		}
		for _, n := range names {
			out = append(out, find(n))
		}
		return out
	}
	if len(args) == 0 {
		cmds := selected(nil)
		b := appendRESPArray(nil, len(cmds))
		for _, ci := range cmds {
			b = appendCommandInfo(b, ci)
		}
		return b
	}
	switch strings.ToLower(string(args[0])) {
	case "count":
		if len(args) != 1 {
			return appendRESPError(nil, "ERR wrong number of arguments for 'command|count' command")
		}
		return appendRESPInt(nil, int64(len(respCommands)))
	case "list":
		if len(args) > 1 {
			return appendRESPError(nil, "ERR COMMAND LIST takes no filter in dkv")
		}
		b := appendRESPArray(nil, len(respCommands))
		for i := range respCommands {
			b = appendRESPBulk(b, respCommands[i].name)
		}
		return b
	case "info":
		cmds := selected(args[1:])
		b := appendRESPArray(nil, len(cmds))
		for _, ci := range cmds {
			if ci == nil {
				// Redis 7's RESP2 answer for a name it does not have:
				// the null bulk string, not the null array.
				b = appendRESPNull(b)
				continue
			}
			b = appendCommandInfo(b, ci)
		}
		return b
	case "docs":
		// A map from name to docs, flattened (RESP2); unknown names are
		// left out, as Redis does.
		var known []*respCommandInfo
		for _, ci := range selected(args[1:]) {
			if ci != nil {
				known = append(known, ci)
			}
		}
		b := appendRESPArray(nil, 2*len(known))
		for _, ci := range known {
			b = appendRESPBulk(b, ci.name)
			b = appendRESPArray(b, 6)
			b = appendRESPBulk(b, "summary")
			b = appendRESPBulk(b, ci.summary)
			b = appendRESPBulk(b, "since")
			b = appendRESPBulk(b, ci.since)
			b = appendRESPBulk(b, "group")
			b = appendRESPBulk(b, ci.group)
		}
		return b
	}
	return appendRESPError(nil, unknownSubcommand(args, "COMMAND"))
}

// appendCommandInfo appends one command's entry in Redis 7's shape: name,
// arity, flags, first key, last key, step, ACL categories, tips, key specs,
// subcommands.
func appendCommandInfo(b []byte, ci *respCommandInfo) []byte {
	b = appendRESPArray(b, 10)
	b = appendRESPBulk(b, ci.name)
	b = appendRESPInt(b, int64(ci.arity))
	b = appendRESPArray(b, len(ci.flags))
	for _, f := range ci.flags {
		b = appendRESPSimple(b, f)
	}
	b = appendRESPInt(b, int64(ci.firstKey))
	b = appendRESPInt(b, int64(ci.lastKey))
	b = appendRESPInt(b, int64(ci.step))
	for range 4 {
		b = appendRESPArray(b, 0)
	}
	return b
}

// appendReply appends s's reply in its connection's protocol.
func (c *conn) appendReply(dst []byte, s *slot) []byte {
	switch s.kind {
	case respJSON:
		if !jsonCarries(&s.resp) {
			r := notUTF8Response(&s.resp)
			return core.AppendResponse(dst, &r)
		}
		return core.AppendResponse(dst, &s.resp)
	case respRaw:
		return append(dst, s.raw...)
	}
	return c.appendRESPResponse(dst, s)
}

// jsonCarries reports whether resp's keys and values are valid UTF-8, as
// a JSON string must be. RESP is binary-safe, so a Redis client may have
// written bytes that JSON cannot carry, and a JSON read of them (a get, a
// bulk_get, a scan, a search's hits, a refused conditional set's value)
// would break the encoder's assertion and stop the server: every JSON
// answer that holds the store's strings is checked here first.
func jsonCarries(resp *core.Response) bool {
	if resp.Value != nil && !utf8.ValidString(*resp.Value) {
		return false
	}
	for _, v := range resp.Values {
		if v != nil && !utf8.ValidString(*v) {
			return false
		}
	}
	for _, kv := range resp.Items {
		if !utf8.ValidString(kv.Key) || !utf8.ValidString(kv.Value) {
			return false
		}
	}
	for _, k := range resp.Keys {
		if !utf8.ValidString(k) {
			return false
		}
	}
	for _, h := range resp.Hits {
		if !utf8.ValidString(h.Key) {
			return false
		}
	}
	return resp.Error == nil || utf8.ValidString(resp.Error.Message)
}

// notUTF8Response answers, in resp's place, a JSON request whose answer
// would hold bytes that are not valid UTF-8: not_implemented (JSON cannot
// carry them), naming the way to read them, with resp's id. A refused
// write (condition_failed with the key's value) says that nothing was
// written.
func notUTF8Response(resp *core.Response) core.Response {
	msg := "the answer holds a key or value that is not valid UTF-8 (written by a RESP client: RESP is binary-safe), which a JSON string cannot carry; read it over RESP (redis-cli)"
	if resp.Error != nil && resp.Error.Code == core.CodeConditionFailed {
		msg += "; the write's condition did not hold, and nothing was written"
	}
	r := core.ErrorResponse(core.CodeNotImplemented, "%s", msg)
	r.ID = resp.ID
	return r
}

// appendRESPResponse renders the node's answer to a RESP command.
func (c *conn) appendRESPResponse(dst []byte, s *slot) []byte {
	resp := &s.resp
	if s.kind == respHello {
		// The handshake is answered whatever the status: a node that
		// could not say (an error, no status) is not one to write to.
		return c.appendRESPHello(dst, replicationOf(resp.Status))
	}
	if e := resp.Error; e != nil {
		switch {
		case e.Code == core.CodeNotFound && s.kind == respGet:
			return appendRESPNull(dst)
		case e.Code == core.CodeConditionFailed && s.kind == respSetCond:
			return appendRESPNull(dst)
		case e.Code == core.CodeConditionFailed && s.kind == respSetNX:
			return appendRESPInt(dst, 0)
		case e.Code == core.CodeNotFound && (s.kind == respTTL || s.kind == respPTTL):
			return appendRESPInt(dst, -2)
		case e.Code == core.CodeNotFound && (s.kind == respExpire || s.kind == respPersist || s.kind == respStrlen):
			return appendRESPInt(dst, 0)
		case e.Code == core.CodeNotFound && s.kind == respMemoryUsage:
			return appendRESPNull(dst) // as Redis answers a missing key
		case e.Code == core.CodeNotFound && s.kind == respType:
			return append(dst, "+none\r\n"...)
		case e.Code == core.CodeNotInteger && s.kind == respIncr:
			return appendRESPError(dst, "ERR value is not an integer or out of range")
		case e.Code == core.CodeOverflow && s.kind == respIncr:
			return appendRESPError(dst, "ERR increment or decrement would overflow")
		case e.Code == core.CodeNotLeader && e.Leader != "":
			return appendRESPError(dst, "NOTLEADER "+e.Leader)
		case e.Code == core.CodeStoreFull:
			// Redis's prefix for a write refused at maxmemory, which
			// its clients know not to retry as it stands.
			return appendRESPError(dst, "OOM "+e.Message)
		}
		return appendRESPError(dst, "ERR "+e.Code+": "+e.Message)
	}
	switch s.kind {
	case respOK, respSetCond:
		return append(dst, "+OK\r\n"...)
	case respSetNX:
		return appendRESPInt(dst, 1)
	case respGet:
		if resp.Value == nil {
			return appendRESPNull(dst)
		}
		return appendRESPBulk(dst, *resp.Value)
	case respDel:
		var n uint64
		if resp.Deleted != nil {
			n = *resp.Deleted
		}
		return appendRESPInt(dst, int64(n))
	case respMGet:
		dst = appendRESPArray(dst, len(resp.Values))
		for _, v := range resp.Values {
			if v == nil {
				dst = appendRESPNull(dst)
			} else {
				dst = appendRESPBulk(dst, *v)
			}
		}
		return dst
	case respExists:
		n := 0
		for _, v := range resp.Values {
			if v != nil {
				n++
			}
		}
		return appendRESPInt(dst, int64(n))
	case respDBSize:
		keys := 0
		if resp.Status != nil {
			keys = resp.Status.Keys
		}
		return appendRESPInt(dst, int64(keys))
	case respTTL, respPTTL:
		if resp.TTLMs == nil {
			return appendRESPInt(dst, -1) // a key without a deadline
		}
		left := *resp.TTLMs // 0 once the deadline passed, until the node deletes the key
		if s.kind == respTTL {
			left = (left + 500) / 1000 // rounded, as Redis's TTL rounds
		}
		return appendRESPInt(dst, int64(left))
	case respInfo:
		return appendRESPBulk(dst, c.h.info(string(s.raw), resp.Status))
	case respRole:
		return appendRESPRole(dst, replicationOf(resp.Status))
	case respType:
		return append(dst, "+string\r\n"...)
	case respStrlen:
		if resp.Value == nil {
			return appendRESPInt(dst, 0)
		}
		return appendRESPInt(dst, int64(len(*resp.Value)))
	case respMemoryUsage:
		if resp.Value == nil {
			return appendRESPNull(dst)
		}
		return appendRESPInt(dst, memoryUsage(len(s.raw), len(*resp.Value)))
	case respExpire:
		return appendRESPInt(dst, 1)
	case respIncr:
		// The node answers the new value in a counter's one spelling,
		// which is RESP's integer's too; anything else is the internal
		// error below, not a number made up.
		if resp.Value != nil {
			if n, ok := parseRESPInt([]byte(*resp.Value)); ok {
				return appendRESPInt(dst, n)
			}
		}
	case respPersist:
		if resp.TTLMs == nil {
			return appendRESPInt(dst, 0) // it had no deadline
		}
		return appendRESPInt(dst, 1)
	case respScan:
		return c.appendRESPScan(dst, resp, s.raw)
	case respKeys:
		return c.appendRESPKeysReply(dst, resp, s.raw)
	}
	return appendRESPError(dst, "ERR internal: no RESP reply for this command")
}

// infoSections are the sections INFO serves, in Redis's order: what none,
// "default", "all" or "everything" ask for.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "keyspace"}

// info is INFO's text in Redis's format: "# Section" headers, "field:value"
// lines, CRLF line ends, a blank line between sections. sections is what
// the command asked for, space-separated; none, "default", "all" or
// "everything" mean every section of infoSections, and an unknown section
// gives nothing, as in Redis. The clients, memory and stats sections hold
// the fields redis-cli --stat and monitoring exporters read.
func (h *Host) info(sections string, st *core.Status) string {
	if st == nil {
		st = &core.Status{}
	}
	want := map[string]bool{}
	for _, w := range strings.Fields(sections) {
		switch w {
		case "default", "all", "everything":
			for _, name := range infoSections {
				want[name] = true
			}
		default:
			want[w] = true
		}
	}
	if len(want) == 0 {
		for _, name := range infoSections {
			want[name] = true
		}
	}
	var b strings.Builder
	section := func(name string) {
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
	}
	field := func(k, v string) { b.WriteString(k + ":" + v + "\r\n") }
	boolInt := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	if want["server"] {
		section("Server")
		field("redis_version", respRedisVersion)
		field("server_name", "dkv")
		field("dkv_mode", st.Mode)
		if st.Cluster != nil {
			field("dkv_role", st.Cluster.Role)
			if st.Cluster.Leader != "" {
				field("dkv_leader", st.Cluster.Leader)
			}
		}
		field("redis_mode", "standalone")
		field("os", runtime.GOOS+" "+runtime.GOARCH)
		field("arch_bits", strconv.Itoa(strconv.IntSize))
		field("go_version", runtime.Version())
		field("process_id", strconv.Itoa(os.Getpid()))
		port := ""
		if h.addr != nil {
			if _, p, ok := strings.Cut(h.addr.String(), "]:"); ok {
				port = p
			} else if i := strings.LastIndexByte(h.addr.String(), ':'); i >= 0 {
				port = h.addr.String()[i+1:]
			}
		}
		field("tcp_port", port)
		up := time.Since(h.started)
		field("uptime_in_seconds", strconv.FormatInt(int64(up/time.Second), 10))
		field("uptime_in_days", strconv.FormatInt(int64(up/(24*time.Hour)), 10))
	}
	if want["clients"] {
		section("Clients")
		h.mu.Lock()
		clients := len(h.conns)
		h.mu.Unlock()
		field("connected_clients", strconv.Itoa(clients))
		field("maxclients", strconv.Itoa(h.cfg.ConnsMax))
		field("blocked_clients", "0") // no command blocks
	}
	if want["memory"] {
		section("Memory")
		// used_memory: the Go heap's live and not yet swept objects, the
		// nearest to what Redis's allocator reports in use; rss: what the
		// process holds in RAM, all of it (absent where /proc is not).
		used := heapObjectBytes()
		field("used_memory", strconv.FormatUint(used, 10))
		field("used_memory_human", bytesToHuman(used))
		if rss, ok := residentBytes(); ok {
			field("used_memory_rss", strconv.FormatUint(rss, 10))
			field("used_memory_rss_human", bytesToHuman(rss))
		}
		// The dataset is the store's data bytes, part of used_memory.
		// Their bound (--max-data-bytes) is not maxmemory: Redis compares
		// maxmemory with used_memory, which here runs at about 1.3 times
		// the data bytes, so a dashboard reading used over max passed
		// 100% long before a write was refused (found by review). It
		// has fields of its own; maxmemory stays 0, and no key is ever
		// evicted.
		field("used_memory_dataset", strconv.FormatInt(st.DataBytes, 10))
		field("dkv_data_bytes", strconv.FormatInt(st.DataBytes, 10))
		field("dkv_max_data_bytes", strconv.FormatInt(st.DataBytesMax, 10))
		field("maxmemory", "0")
		field("maxmemory_human", "0B")
		field("maxmemory_policy", "noeviction")
		field("mem_allocator", runtime.Version())
	}
	if want["persistence"] {
		section("Persistence")
		field("loading", "0")
		// Every write is in the log, fsync'd, before its reply: what
		// Redis calls an AOF with appendfsync always.
		field("aof_enabled", "1")
		field("aof_last_write_status", "ok")
		field("rdb_bgsave_in_progress", boolInt(st.Snapshotting))
		field("aof_rewrite_in_progress", "0") // the log is never rewritten: snapshots replace it
		field("dkv_last_index", strconv.FormatUint(st.LastIndex, 10))
		field("dkv_snapshot_index", strconv.FormatUint(st.SnapshotIndex, 10))
		field("dkv_wal_segments", strconv.Itoa(st.WALSegments))
		field("dkv_wal_bytes", strconv.FormatInt(st.WALBytes, 10))
	}
	if want["stats"] {
		section("Stats")
		field("total_connections_received", strconv.FormatInt(h.connsTaken.Load(), 10))
		field("total_commands_processed", strconv.FormatInt(h.requestsAnswered.Load(), 10))
		field("rejected_connections", strconv.FormatInt(h.connsRefused.Load(), 10))
	}
	if want["replication"] {
		section("Replication")
		r := replicationOf(st)
		if r.master {
			field("role", "master")
			field("connected_slaves", strconv.Itoa(r.followers))
		} else {
			field("role", "slave")
			field("master_host", r.leaderHost)
			field("master_port", r.leaderPort)
			field("master_link_status", r.link())
			field("slave_read_only", "1")
			field("connected_slaves", "0")
		}
		field("master_repl_offset", strconv.FormatUint(r.offset, 10))
	}
	if want["keyspace"] {
		section("Keyspace")
		if st.Keys > 0 {
			// expires: the keys with a deadline. avg_ttl is not kept (0, as
			// a Redis that has sampled no key with a deadline says).
			field("db0", "keys="+strconv.Itoa(st.Keys)+",expires="+strconv.Itoa(st.Expiring)+",avg_ttl=0")
		}
	}
	return b.String()
}

// replication is what INFO's replication section and ROLE say of a node,
// in Redis's terms, so that a tool that routes writes by Redis's role (a
// proxy's health check for "role:master", a client that asks ROLE) finds
// the node that takes them: a single node and a mesh node take writes
// (master); in a cluster the leader does, and a follower (slave) names it.
type replication struct {
	master     bool
	followers  int    // a cluster leader's, heard from lately
	leaderHost string // a follower's leader, "" when none is known
	leaderPort string
	offset     uint64 // the log's applied index: it grows as writes do
}

func replicationOf(st *core.Status) replication {
	if st == nil {
		return replication{} // unknown: not one to send writes to
	}
	c := st.Cluster
	if c == nil {
		return replication{master: true, offset: st.LastIndex}
	}
	r := replication{master: c.Role == "leader", offset: c.Applied}
	for _, p := range c.Peers {
		if p.Active {
			r.followers++ // heard from lately, as Redis counts a replica connected
		}
	}
	if !r.master && c.Leader != "" {
		if h, p, err := net.SplitHostPort(c.Leader); err == nil {
			r.leaderHost, r.leaderPort = h, p
		}
	}
	return r
}

// link is a follower's master_link_status: up while it knows its leader.
func (r replication) link() string {
	if r.leaderHost == "" {
		return "down"
	}
	return "up"
}

// appendRESPRole writes ROLE's reply as Redis 7.0 does: ["master",
// offset, [replicas]] (dkv names no replica addresses: empty), or
// ["slave", host, port, state, offset], the state "connected" while the
// leader is known and "connect" (trying) while it is not.
func appendRESPRole(dst []byte, r replication) []byte {
	if r.master {
		dst = appendRESPArray(dst, 3)
		dst = appendRESPBulk(dst, "master")
		dst = appendRESPInt(dst, int64(r.offset))
		return appendRESPArray(dst, 0)
	}
	port, _ := strconv.ParseInt(r.leaderPort, 10, 64)
	state := "connected"
	if r.leaderHost == "" {
		state, port = "connect", -1
	}
	dst = appendRESPArray(dst, 5)
	dst = appendRESPBulk(dst, "slave")
	dst = appendRESPBulk(dst, r.leaderHost)
	dst = appendRESPInt(dst, port)
	dst = appendRESPBulk(dst, state)
	return appendRESPInt(dst, int64(r.offset))
}

// heapObjectBytes is the Go heap's bytes in objects, live or not yet swept
// (runtime/metrics reads it without stopping the world, as
// runtime.ReadMemStats would).
func heapObjectBytes() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

// residentBytes is the process's resident set, from /proc/self/statm.
func residentBytes() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}

// bytesToHuman writes n as Redis's INFO does: B below a KiB, else two
// decimals and K, M, G, T or P (powers of 1024).
func bytesToHuman(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + "B"
	}
	v, unit := float64(n)/1024, "K"
	for _, u := range []string{"M", "G", "T", "P"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + unit
}

// respRefused is the reply to a RESP command the host refuses without the
// node, after which the connection closes: a protocol error, or a command
// that stalled past the line timeout (a *core.Error).
func (h *Host) respRefused(err error) *slot {
	code := core.CodeBadRequest
	if e, ok := err.(*core.Error); ok {
		code = e.Code
	}
	if h.metrics != nil {
		h.metrics.Refused(code)
	}
	return &slot{filled: true, kind: respRaw, raw: appendRESPError(nil, "ERR "+err.Error())}
}
