package realnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"dkv/core"
	"dkv/disk"
	"dkv/mesh"
)

// startSingle runs a real single node on a temporary data directory.
func startSingle(t *testing.T, cfg HostConfig) *running {
	t.Helper()
	return startOnDisk(t, core.NewSingleNode(core.DefaultSingleConfig()), cfg)
}

// startMesh starts a one-node mesh on a real disk.
func startMesh(t *testing.T, cfg HostConfig) *running {
	t.Helper()
	node, err := mesh.NewNode(mesh.DefaultConfig(0, []core.NodeID{0}))
	if err != nil {
		t.Fatal(err)
	}
	return startOnDisk(t, node, cfg)
}

// startOnDisk starts node on a real disk in a test's directory.
func startOnDisk(t *testing.T, node core.Node, cfg HostConfig) *running {
	t.Helper()
	d, err := disk.Open(t.TempDir(), disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return startHostOn(t, node, d, cfg, nil)
}

func respConfig() HostConfig {
	cfg := DefaultHostConfig()
	cfg.RequestBytesMax = 1 << 20
	cfg.LineTimeout = 300 * time.Millisecond
	cfg.IdleTimeout = 5 * time.Second
	cfg.WriteTimeout = 5 * time.Second
	return cfg
}

func goRedis(t *testing.T, addr string, protocol int) *redis.Client {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: addr, Protocol: protocol, MaxRetries: -1, DialTimeout: 5 * time.Second})
	t.Cleanup(func() { rc.Close() })
	return rc
}

// Every command, through go-redis, against a real single node: the default
// client asks for RESP3 with HELLO 3, is refused and goes on in RESP2.
func TestRESPCommandsWithGoRedis(t *testing.T) {
	r := startSingle(t, respConfig())
	ctx := context.Background()
	for _, protocol := range []int{3, 2} {
		t.Run(fmt.Sprintf("protocol %d", protocol), func(t *testing.T) {
			rc := goRedis(t, r.addr, protocol)
			p := strconv.Itoa(protocol)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(rc.Ping(ctx).Err())
			if got, err := rc.Echo(ctx, "hi there").Result(); err != nil || got != "hi there" {
				t.Errorf("ECHO = %q, %v", got, err)
			}
			if got, err := rc.Do(ctx, "PING", "msg").Text(); err != nil || got != "msg" {
				t.Errorf("PING msg = %q, %v", got, err)
			}
			if got, err := rc.Set(ctx, "a"+p, "1", 0).Result(); err != nil || got != "OK" {
				t.Errorf("SET = %q, %v", got, err)
			}
			if got, err := rc.Get(ctx, "a"+p).Result(); err != nil || got != "1" {
				t.Errorf("GET = %q, %v", got, err)
			}
			if _, err := rc.Get(ctx, "missing").Result(); !errors.Is(err, redis.Nil) {
				t.Errorf("GET of a missing key: %v, want redis.Nil", err)
			}
			binary := "\x00\xff\r\n value"
			must(rc.Set(ctx, "bin"+p, binary, 0).Err())
			if got, err := rc.Get(ctx, "bin"+p).Result(); err != nil || got != binary {
				t.Errorf("GET of a binary value = %q, %v", got, err)
			}
			must(rc.MSet(ctx, "m1"+p, "x", "m2"+p, "y").Err())
			vals, err := rc.MGet(ctx, "m1"+p, "missing", "m2"+p).Result()
			if err != nil || len(vals) != 3 || vals[0] != "x" || vals[1] != nil || vals[2] != "y" {
				t.Errorf("MGET = %#v, %v", vals, err)
			}
			if n, err := rc.Exists(ctx, "m1"+p, "m1"+p, "missing").Result(); err != nil || n != 2 {
				t.Errorf("EXISTS k k missing = %d, %v; want 2 (a key counts as often as named)", n, err)
			}
			if n, err := rc.Del(ctx, "m1"+p, "m2"+p, "missing", "m1"+p).Result(); err != nil || n != 2 {
				t.Errorf("DEL = %d, %v; want 2", n, err)
			}
			if n, err := rc.Exists(ctx, "m1"+p).Result(); err != nil || n != 0 {
				t.Errorf("EXISTS after DEL = %d, %v", n, err)
			}
			if n, err := rc.DBSize(ctx).Result(); err != nil || n < 2 {
				t.Errorf("DBSIZE = %d, %v", n, err)
			}
			info, err := rc.Info(ctx).Result()
			if err != nil || !strings.HasPrefix(info, "# Server\r\nredis_version:") ||
				!strings.Contains(info, "\r\n\r\n# Persistence\r\n") || !strings.Contains(info, "\r\n\r\n# Keyspace\r\ndb0:keys=") ||
				!strings.Contains(info, ",expires=0,avg_ttl=0") {
				t.Errorf("INFO = %q, %v", info, err)
			}
			if ks, err := rc.Info(ctx, "keyspace").Result(); err != nil || !strings.HasPrefix(ks, "# Keyspace\r\ndb0:keys=") || strings.Contains(ks, "# Server") {
				t.Errorf("INFO keyspace = %q, %v", ks, err)
			}
			if s, err := rc.Info(ctx, "nosuchsection").Result(); err != nil || s != "" {
				t.Errorf("INFO nosuchsection = %q, %v; want empty", s, err)
			}
			hello, err := rc.Do(ctx, "HELLO", "2").Slice()
			if err != nil || len(hello) != 14 || hello[4] != "proto" || hello[5] != int64(2) {
				t.Errorf("HELLO 2 = %v, %v", hello, err)
			}
			if err := rc.Do(ctx, "HELLO", "3").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPROTO ") {
				t.Errorf("HELLO 3: %v, want a NOPROTO error", err)
			}
			must(rc.Do(ctx, "SELECT", "0").Err())
			if err := rc.Do(ctx, "SELECT", "1").Err(); err == nil || !strings.Contains(err.Error(), "DB index is out of range") {
				t.Errorf("SELECT 1: %v", err)
			}
			if id, err := rc.ClientID(ctx).Result(); err != nil || id <= 0 {
				t.Errorf("CLIENT ID = %d, %v", id, err)
			}
			if n, err := rc.CommandList(ctx, nil).Result(); err != nil || len(n) != len(respCommands) {
				t.Errorf("COMMAND LIST: %d, %v", len(n), err)
			}
			cmds, err := rc.Command(ctx).Result()
			if err != nil || cmds["mset"] == nil || cmds["mset"].Arity != -3 || cmds["mset"].FirstKeyPos != 1 || cmds["mset"].StepCount != 2 {
				t.Errorf("COMMAND: mset %+v, %v", cmds["mset"], err)
			}
			if n, err := rc.Do(ctx, "COMMAND", "COUNT").Int(); err != nil || n != len(respCommands) {
				t.Errorf("COMMAND COUNT = %d, %v", n, err)
			}
			if docs, err := rc.Do(ctx, "COMMAND", "DOCS", "get").Slice(); err != nil || len(docs) != 2 || docs[0] != "get" {
				t.Errorf("COMMAND DOCS get = %v, %v", docs, err)
			}
			if cfg, err := rc.ConfigGet(ctx, "save").Result(); err != nil || len(cfg) != 0 {
				t.Errorf("CONFIG GET save = %v, %v; want empty", cfg, err)
			}
			if err := rc.Set(ctx, "a", "b", redis.KeepTTL).Err(); err == nil || !strings.Contains(err.Error(), "'KEEPTTL'") || !strings.Contains(err.Error(), "does not support") {
				t.Errorf("SET with KEEPTTL: %v", err)
			}
			// Conditional sets: NX, XX and SETNX, with Redis's replies
			// (null or 0 when the condition did not hold).
			for i, c := range []struct {
				cmd  *redis.BoolCmd
				want bool
			}{
				{rc.SetNX(ctx, "nx"+p, "1", 0), true},
				{rc.SetNX(ctx, "nx"+p, "2", 0), false},
				{rc.SetXX(ctx, "nx"+p, "3", 0), true},
				{rc.SetXX(ctx, "nx-missing"+p, "4", 0), false},
			} {
				if got, err := c.cmd.Result(); err != nil || got != c.want {
					t.Errorf("conditional set %d (%v): %v, %v; want %v", i, c.cmd.Args(), got, err, c.want)
				}
			}
			if v, err := rc.Get(ctx, "nx"+p).Result(); err != nil || v != "3" {
				t.Errorf("GET nx after SET NX and XX: %q, %v", v, err)
			}
			if n, err := rc.Do(ctx, "SETNX", "nx2"+p, "v").Int(); err != nil || n != 1 {
				t.Errorf("SETNX of a missing key: %v, %v", n, err)
			}
			if n, err := rc.Do(ctx, "SETNX", "nx2"+p, "w").Int(); err != nil || n != 0 {
				t.Errorf("SETNX of a key that exists: %v, %v", n, err)
			}
			if err := rc.Do(ctx, "SET", "nx", "5", "NX", "XX").Err(); err == nil || err.Error() != "ERR syntax error" {
				t.Errorf("SET NX XX: %v", err)
			}
			if err := rc.Do(ctx, "SET", "nx", "5", "GET").Err(); err == nil || !strings.Contains(err.Error(), "'GET'") {
				t.Errorf("SET GET: %v", err)
			}
			if err := rc.Do(ctx, "FOO", "bar", "baz").Err(); err == nil || err.Error() != "ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' " {
				t.Errorf("unknown command: %q", err)
			}
			if keys, cursor, err := rc.Scan(ctx, 0, "a"+p, 10).Result(); err != nil || cursor != 0 || len(keys) != 1 || keys[0] != "a"+p {
				t.Errorf("SCAN 0 MATCH a%s: %q, cursor %d, %v", p, keys, cursor, err)
			}
			if keys, err := rc.Keys(ctx, "a"+p).Result(); err != nil || len(keys) != 1 || keys[0] != "a"+p {
				t.Errorf("KEYS a%s: %q, %v", p, keys, err)
			}
			if err := rc.Do(ctx, "GET").Err(); err == nil || err.Error() != "ERR wrong number of arguments for 'get' command" {
				t.Errorf("GET without a key: %q", err)
			}

			// Pipelined: replies in order, all in Redis's types.
			pipe := rc.Pipeline()
			var sets []*redis.StatusCmd
			var gets []*redis.StringCmd
			for i := range 100 {
				sets = append(sets, pipe.Set(ctx, fmt.Sprintf("p%s-%d", p, i), i, 0))
				gets = append(gets, pipe.Get(ctx, fmt.Sprintf("p%s-%d", p, i)))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				if sets[i].Val() != "OK" || gets[i].Val() != strconv.Itoa(i) {
					t.Fatalf("pipelined %d: %q %q", i, sets[i].Val(), gets[i].Val())
				}
			}
		})
	}

	// CLIENT SETNAME and GETNAME belong to one connection.
	rc := goRedis(t, r.addr, 2)
	conn := rc.Conn()
	defer conn.Close()
	if n, err := conn.ClientGetName(ctx).Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("CLIENT GETNAME before SETNAME = %q, %v; want nil", n, err)
	}
	if err := conn.ClientSetName(ctx, "worker-1").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.ClientGetName(ctx).Result(); err != nil || n != "worker-1" {
		t.Errorf("CLIENT GETNAME = %q, %v", n, err)
	}
	if err := conn.Do(ctx, "CLIENT", "SETNAME", "a b").Err(); err == nil {
		t.Error("CLIENT SETNAME with a space was accepted")
	}

	// What RESP wrote, JSON reads.
	jc := dial(t, r.addr)
	jc.send(`{"op":"get","key":"a3"}` + "\n")
	if resp := jc.recvCode(""); resp.Value == nil || *resp.Value != "1" {
		t.Errorf("JSON get of a key set over RESP: %+v", resp)
	}
}

// respClient is a raw RESP connection.
type respClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRESP(t *testing.T, addr string) *respClient {
	c := dial(t, addr)
	return &respClient{t: t, nc: c.nc, br: c.br}
}

func (c *respClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads the next replies' bytes and compares them.
func (c *respClient) expect(want string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.br, got); err != nil || string(got) != want {
		c.t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

func (c *respClient) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.br.ReadByte()
	if err != io.EOF && !isReset(err) {
		c.t.Fatalf("want the connection closed, got %q, %v", b, err)
	}
}

// The first bytes tell the protocol: an array is RESP, a first word that
// is a RESP command is RESP inline, anything else is JSON (and JSON's
// answers, bad_request included, are as before).
func TestProtocolIsToldFromTheFirstBytes(t *testing.T) {
	r := startSingle(t, respConfig())
	for _, tc := range []struct{ send, want string }{
		{"*1\r\n$4\r\nPING\r\n", "+PONG\r\n"},
		{"PING\r\n", "+PONG\r\n"},
		{"ping\n", "+PONG\r\n"},
		{"  Echo  hello\r\n", "$5\r\nhello\r\n"},
		{"set k v\r\nget k\r\n", "+OK\r\n$1\r\nv\r\n"},
		{"PI", ""}, // incomplete: not known yet, nothing answered
		{`{"op":"ping","id":1}` + "\n", `{"id":1,"ok":true}` + "\n"},
		{"pingx\n", `{"ok":false,"error":{"code":"bad_request"`},
		{"not json\n", `{"ok":false,"error":{"code":"bad_request"`},
		{"\n", `{"ok":false,"error":{"code":"bad_request","message":"empty line; send one JSON request object per line"}}` + "\n"},
	} {
		c := dialRESP(t, r.addr)
		c.send(tc.send)
		c.expect(tc.want)
	}
	// The first line may come in pieces.
	c := dialRESP(t, r.addr)
	c.send("PI")
	time.Sleep(20 * time.Millisecond)
	c.send("NG\r\n")
	c.expect("+PONG\r\n")
}

// A protocol error is answered and closes the connection, as Redis does;
// the replies owed before it go out first.
func TestRESPProtocolErrorClosesTheConnection(t *testing.T) {
	r := startSingle(t, respConfig())
	argsMax := respArgsMax(core.DefaultLimits().BulkEntriesMax)
	for _, tc := range []struct{ send, want string }{
		{"*1\r\n$4\r\nPING\r\n*x\r\n", "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"},
		{"SET k v\r\n*1\r\n*1\r\n", "+OK\r\n-ERR Protocol error: expected '$', got '*'\r\n"},
		{"*2\r\n$3\r\nGET\r\n$2000000\r\n", "-ERR Protocol error: invalid bulk length: a bulk string of 2000000 bytes would take the command past 1048576 bytes (--max-request-bytes)\r\n"},
		{fmt.Sprintf("*%d\r\n", argsMax+1), fmt.Sprintf("-ERR Protocol error: invalid multibulk length: %d elements, over %d (dkv's limit: 2 × --max-bulk-entries + 8)\r\n", argsMax+1, argsMax)},
		{"ECHO \"unbalanced\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{"PING\r\nQUIT\r\nPING\r\n", "+PONG\r\n+OK\r\n"},
	} {
		c := dialRESP(t, r.addr)
		c.send(tc.send)
		c.expect(tc.want)
		c.expectClosed()
	}
}

// The array limit follows the host's BulkEntriesMax: an MSET of that many
// pairs is read, one more element past the bound is a protocol error.
func TestRESPArrayLimitFollowsBulkEntries(t *testing.T) {
	cfg := respConfig()
	cfg.BulkEntriesMax = 3
	r := startSingle(t, cfg)
	c := dialRESP(t, r.addr)
	c.send("MSET a 1 b 2 c 3\r\n")
	c.expect("+OK\r\n")
	c.send(fmt.Sprintf("*%d\r\n", respArgsMax(3)+1))
	c.expect("-ERR Protocol error: invalid multibulk length: 15 elements, over 14 (dkv's limit: 2 × --max-bulk-entries + 8)\r\n")
	c.expectClosed()
}

// A partial command that stalls past the line timeout is answered with a
// RESP error, not a JSON line, and closes the connection.
func TestRESPStalledCommandTimesOut(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	c.send("*2\r\n$3\r\nGET\r\n$1\r\n")
	c.expect("-ERR timeout: command incomplete after 300ms; closing the connection\r\n")
	c.expectClosed()
}

// A command as large as the limit allows grows the read buffer, and works.
func TestRESPLargeCommand(t *testing.T) {
	cfg := respConfig()
	r := startSingle(t, cfg)
	value := strings.Repeat("v", 3*readBufBytes)
	c := dialRESP(t, r.addr)
	c.send(fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\nGET k\r\n", len(value), value))
	c.expect("+OK\r\n")
	c.expect(fmt.Sprintf("$%d\r\n%s\r\n", len(value), value))
}

// stubNode answers every request with the same response.
type stubNode struct {
	*testNode
	resp core.Response
}

func (n *stubNode) HandleRequest(req *core.Request, reply core.ReplyFunc) { reply(n.resp) }

// The node's errors in RESP: a follower's not_leader names the leader in a
// NOTLEADER error, store_full is OOM, as Redis's at maxmemory; any other
// code is "ERR <code>: <message>".
func TestRESPRendersTheNodesErrors(t *testing.T) {
	notLeader := core.ErrorResponse(core.CodeNotLeader, "this node is a follower")
	notLeader.Error.Leader = "127.0.0.1:9001"
	for _, tc := range []struct {
		resp core.Response
		want string
	}{
		{notLeader, "-NOTLEADER 127.0.0.1:9001\r\n"},
		{core.ErrorResponse(core.CodeNotLeader, "no leader known"), "-ERR not_leader: no leader known\r\n"},
		{core.ErrorResponse(core.CodeDiskFull, "no space left on device"), "-ERR disk_full: no space left on device\r\n"},
		// Redis's prefix for a write refused at maxmemory.
		{core.ErrorResponse(core.CodeStoreFull, "past its bound"), "-OOM past its bound\r\n"},
		{core.ErrorResponse(core.CodeUnavailable, "election in progress\r\nretry"), "-ERR unavailable: election in progress  retry\r\n"},
		{core.ErrorResponse(core.CodeTooLarge, "value is 9 bytes; the limit is 8"), "-ERR too_large: value is 9 bytes; the limit is 8\r\n"},
	} {
		r := startHost(t, &stubNode{testNode: newTestNode(t), resp: tc.resp}, testConfig())
		c := dialRESP(t, r.addr)
		c.send("SET k v\r\n")
		c.expect(tc.want)
	}
}

// RESP replies of a turn leave in one write too.
func TestRESPRepliesOfATurnLeaveInOneWrite(t *testing.T) {
	node := newTestNode(t)
	r := startHost(t, node, holdConfig())
	holder := dial(t, r.addr)
	holder.send(`{"op":"block"}` + "\n")
	<-node.blocked
	c := dialRESP(t, r.addr)
	c.send(strings.Repeat("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 20))
	for deadline := time.Now().Add(5 * time.Second); r.host.queued() < 20; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests queued", r.host.queued())
		}
	}
	var sc *conn
	r.host.mu.Lock()
	for k := range r.host.conns {
		k.mu.Lock()
		if len(k.queue) == 20 {
			sc = k
		}
		k.mu.Unlock()
	}
	r.host.mu.Unlock()
	close(node.release)
	holder.recvCode("")
	c.expect(strings.Repeat("$1\r\nk\r\n", 20))
	if n := sc.writes.Load(); n != 1 {
		t.Errorf("20 replies of one turn took %d writes, want 1", n)
	}
}

// readInt reads an integer reply.
func (c *respClient) readInt() int64 {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, ":") || !strings.HasSuffix(line, "\r\n") {
		c.t.Fatalf("got %q, %v; want an integer reply", line, err)
	}
	n, err := strconv.ParseInt(line[1:len(line)-2], 10, 64)
	if err != nil {
		c.t.Fatalf("integer reply %q: %v", line, err)
	}
	return n
}

// intIn sends a command whose reply is an integer and checks it is in
// [lo, hi].
func (c *respClient) intIn(cmd string, lo, hi int64) {
	c.t.Helper()
	c.send(cmd + "\r\n")
	if n := c.readInt(); n < lo || n > hi {
		c.t.Fatalf("%s = %d, want %d..%d", cmd, n, lo, hi)
	}
}

// Expiry over RESP, byte for byte: SET's expiry options with NX and XX,
// SETEX, PSETEX, TTL and PTTL, what replaces a deadline, INFO's count, and
// Redis's errors for each.
func TestRESPExpiry(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	const (
		syntax  = "-ERR syntax error\r\n"
		notInt  = "-ERR value is not an integer or out of range\r\n"
		invalid = "-ERR invalid expire time in 'set' command\r\n"
	)
	for _, tc := range []struct{ send, want string }{
		// Refused: nothing is set.
		{"SET k v EX 10 PX 100", syntax},
		{"SET k v PX 100 EXAT 2000000000", syntax},
		{"SET k v EX", syntax},
		{"SET k v NX XX EX 10", syntax},
		{"SET k v EX abc NX XX", syntax},
		{"SET k v EX abc", notInt},
		{"SET k v PX 1.5", notInt},
		{"SET k v EX 0", invalid},
		{"SET k v PX -1", invalid},
		{"SET k v EXAT 0", invalid},
		{"SET k v EX 315360001", "-ERR invalid expire time in 'set' command: over dkv's limit of ten years (EX 315360000, PX 315360000000)\r\n"},
		{"SET k v KEEPTTL", "-ERR dkv does not support SET option 'KEEPTTL': every SET replaces the key's expiry (with EX, PX, EXAT or PXAT, or none); SET takes a key, a value, NX or XX, and one of EX seconds, PX milliseconds, EXAT unix-time-seconds, PXAT unix-time-milliseconds\r\n"},
		{"SETEX k 0 v", "-ERR invalid expire time in 'setex' command\r\n"},
		{"SETEX k abc v", notInt},
		{"SETEX k 10", "-ERR wrong number of arguments for 'setex' command\r\n"},
		{"PSETEX k -5 v", "-ERR invalid expire time in 'psetex' command\r\n"},
		{"PSETEX k 5 v x", "-ERR wrong number of arguments for 'psetex' command\r\n"},
		{"TTL", "-ERR wrong number of arguments for 'ttl' command\r\n"},
		{"PTTL a b", "-ERR wrong number of arguments for 'pttl' command\r\n"},
		{"EXPIRE k", "-ERR wrong number of arguments for 'expire' command\r\n"},
		{"EXPIRE k abc", notInt},
		{"PEXPIRE k 1.5", notInt},
		{"EXPIRE k 10 NX", "-ERR dkv does not serve EXPIRE's NX, XX, GT and LT options: read the time left with PTTL key, then send EXPIRE key seconds\r\n"},
		{"EXPIRE k 10 FOO", "-ERR Unsupported option FOO\r\n"},
		{"EXPIRE k 9223372036854775807", "-ERR invalid expire time in 'expire' command\r\n"},
		{"EXPIRE k 315360001", "-ERR invalid expire time in 'expire' command: over dkv's limit of ten years (EXPIRE 315360000, PEXPIRE 315360000000)\r\n"},
		{"PERSIST", "-ERR wrong number of arguments for 'persist' command\r\n"},
		{"EXPIRETIME k", "-ERR dkv does not serve EXPIRETIME yet: read the time a key has left with TTL key or PTTL key\r\n"},
		// A key that does not exist: 0, and nothing is written.
		{"EXPIRE k 10", ":0\r\n"},
		{"pexpire k 100000", ":0\r\n"},
		{"PERSIST k", ":0\r\n"},
		{"EXPIRE k 0", ":0\r\n"},
		{"GET k", "$-1\r\n"},
		{"TTL k", ":-2\r\n"},
		{"PTTL k", ":-2\r\n"},
		// A key without a deadline.
		{"SET plain v", "+OK\r\n"},
		{"TTL plain", ":-1\r\n"},
		{"PTTL plain", ":-1\r\n"},
		// Conditions hold as without an expiry; a failed one sets nothing.
		{"SET lease worker-1 NX PX 100000", "+OK\r\n"},
		{"SET lease worker-2 PX 100000 NX", "$-1\r\n"},
		{"GET lease", "$8\r\nworker-1\r\n"},
		{"SET missing v XX EX 100", "$-1\r\n"},
		{"TTL missing", ":-2\r\n"},
		{"SET plain w NX EX 100", "$-1\r\n"},
		{"TTL plain", ":-1\r\n"},
		{"SET plain w xx ex 100", "+OK\r\n"},
	} {
		c.send(tc.send + "\r\n")
		c.expect(tc.want)
	}
	// Time left: taken by the node when it applied the set, so a little
	// less than asked; TTL rounds to the nearest second, as Redis does.
	c.intIn("TTL plain", 99, 100)
	c.intIn("PTTL lease", 90_000, 100_000)
	// EXPIRE and its kin give a key that exists a deadline, its value
	// kept; PERSIST takes it away, and says whether there was one; no
	// time left (zero, negative, a Unix time passed) deletes the key.
	for _, tc := range []struct{ send, want string }{
		{"SET e v", "+OK\r\n"},
		{"EXPIRE e 100", ":1\r\n"},
		{"GET e", "$1\r\nv\r\n"},
		{"PERSIST e", ":1\r\n"},
		{"TTL e", ":-1\r\n"},
		{"PERSIST e", ":0\r\n"},
		{"pexpire e 200000", ":1\r\n"},
		{"PEXPIREAT e 1", ":1\r\n"},
		{"GET e", "$-1\r\n"},
		{"EXPIREAT e 1", ":0\r\n"},
		{"SET e v", "+OK\r\n"},
		{"EXPIRE e -5", ":1\r\n"},
		{"EXISTS e", ":0\r\n"},
		// A time far in the past deletes too (it wrapped once, and was
		// refused as over ten years; found by review).
		{"SET e v", "+OK\r\n"},
		{"PEXPIREAT e -9223372036854775808", ":1\r\n"},
		{"SET e v", "+OK\r\n"},
		{"EXPIREAT e -9223372036854775", ":1\r\n"},
		{"EXISTS e", ":0\r\n"},
	} {
		c.send(tc.send + "\r\n")
		c.expect(tc.want)
	}
	c.send("SET e v\r\n")
	c.expect("+OK\r\n")
	c.send("PEXPIRE e 100000\r\n")
	c.expect(":1\r\n")
	c.intIn("PTTL e", 90_000, 100_000)
	c.send("EXPIREAT e " + strconv.FormatInt(time.Now().Unix()+1000, 10) + "\r\n")
	c.expect(":1\r\n")
	c.intIn("TTL e", 990, 1000)
	c.send("DEL e\r\n")
	c.expect(":1\r\n")
	c.intIn("TTL lease", 90, 100)
	c.send("SETEX sx 100 v\r\nPSETEX psx 100000 v\r\n")
	c.expect("+OK\r\n+OK\r\n")
	c.intIn("TTL sx", 90, 100)
	c.intIn("PTTL psx", 90_000, 100_000)
	c.send(fmt.Sprintf("SET at v EXAT %d\r\n", time.Now().Add(100*time.Second).Unix()))
	c.expect("+OK\r\n")
	c.intIn("TTL at", 90, 100)
	c.send(fmt.Sprintf("SET pat v PXAT %d\r\n", time.Now().Add(100*time.Second).UnixMilli()))
	c.expect("+OK\r\n")
	c.intIn("PTTL pat", 90_000, 100_000)
	c.send("INFO keyspace\r\n")
	c.expect("$44\r\n# Keyspace\r\ndb0:keys=6,expires=6,avg_ttl=0\r\n\r\n")

	// A set without an expiry, an MSET and a DEL each take the deadline
	// away, as Redis's do.
	c.send("SET sx w\r\nMSET psx w other w\r\nDEL at\r\nTTL sx\r\nTTL psx\r\nTTL at\r\nGET sx\r\n")
	c.expect("+OK\r\n+OK\r\n:1\r\n:-1\r\n:-1\r\n:-2\r\n$1\r\nw\r\n")
	c.send("INFO keyspace\r\n")
	c.expect("$44\r\n# Keyspace\r\ndb0:keys=6,expires=3,avg_ttl=0\r\n\r\n")

	// A time already passed sets the key, which the node then deletes at
	// once (Redis deletes it at once too).
	c.send("SET gone v EXAT 1\r\n")
	c.expect("+OK\r\n")
	waitGone(t, c, "gone", time.Now())
}

// waitGone polls a key with GET until it is gone, and fails the test if
// that takes 5 s. It returns when it saw it gone, measured from since.
func waitGone(t *testing.T, c *respClient, key string, since time.Time) time.Duration {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		c.send("GET " + key + "\r\n")
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "$-1\r\n" {
			return time.Since(since)
		}
		if _, err := c.br.ReadString('\n'); err != nil { // the value
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there 5 s later", key)
		}
	}
}

// A key set with PX 50 goes once 50 ms have passed, not before, and reads
// and INFO then no longer see it.
func TestRESPKeyExpires(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	for _, set := range []string{"SET k v PX 50", "PSETEX k 50 v", "SET k v NX PX 50"} {
		start := time.Now()
		c.send(set + "\r\n")
		c.expect("+OK\r\n")
		// The node's clock reads whole milliseconds: it may delete the key
		// up to 1 ms before 50 have passed on this one.
		if gone := waitGone(t, c, "k", start); gone < 49*time.Millisecond {
			t.Errorf("%s: gone after %v, before 50 ms", set, gone)
		}
		c.send("TTL k\r\nPTTL k\r\nEXISTS k\r\nDBSIZE\r\n")
		c.expect(":-2\r\n:-2\r\n:0\r\n:0\r\n")
	}
	// The lease is free again: NX sets it.
	c.send("SET k v2 NX\r\nGET k\r\nINFO keyspace\r\n")
	c.expect("+OK\r\n$2\r\nv2\r\n$44\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n\r\n")
}

// Expiry through go-redis, as an application sets and reads it.
func TestRESPExpiryWithGoRedis(t *testing.T) {
	r := startSingle(t, respConfig())
	ctx := context.Background()
	for _, protocol := range []int{3, 2} {
		t.Run(fmt.Sprintf("protocol %d", protocol), func(t *testing.T) {
			rc := goRedis(t, r.addr, protocol)
			p := strconv.Itoa(protocol)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			between := func(what string, d *redis.DurationCmd, lo, hi time.Duration) {
				t.Helper()
				if got, err := d.Result(); err != nil || got < lo || got > hi {
					t.Errorf("%s = %v, %v; want %v..%v", what, got, err, lo, hi)
				}
			}
			// go-redis sends SET k v EX 60 for whole seconds, PX 1500
			// otherwise.
			must(rc.Set(ctx, "m"+p, "v", time.Minute).Err())
			between("TTL after SET EX 60", rc.TTL(ctx, "m"+p), 59*time.Second, time.Minute)
			between("PTTL after SET EX 60", rc.PTTL(ctx, "m"+p), 50*time.Second, time.Minute)
			must(rc.Set(ctx, "ms"+p, "v", 90500*time.Millisecond).Err())
			between("PTTL after SET PX 90500", rc.PTTL(ctx, "ms"+p), 80*time.Second, 90500*time.Millisecond)
			between("TTL after SET PX 90500", rc.TTL(ctx, "ms"+p), 80*time.Second, 91*time.Second)

			// A lease: the first SET NX EX takes it, the second does not.
			if ok, err := rc.SetNX(ctx, "lease"+p, "w1", time.Minute).Result(); err != nil || !ok {
				t.Errorf("SetNX of a free lease = %v, %v", ok, err)
			}
			if ok, err := rc.SetNX(ctx, "lease"+p, "w2", time.Minute).Result(); err != nil || ok {
				t.Errorf("SetNX of a taken lease = %v, %v", ok, err)
			}
			if v, err := rc.Get(ctx, "lease"+p).Result(); err != nil || v != "w1" {
				t.Errorf("GET lease = %q, %v", v, err)
			}
			between("TTL of the lease", rc.TTL(ctx, "lease"+p), 50*time.Second, time.Minute)
			if ok, err := rc.SetXX(ctx, "lease"+p, "w1", 2*time.Minute).Result(); err != nil || !ok {
				t.Errorf("SetXX renewing the lease = %v, %v", ok, err)
			}
			between("TTL of the renewed lease", rc.TTL(ctx, "lease"+p), 110*time.Second, 2*time.Minute)

			must(rc.SetEx(ctx, "ex"+p, "v", time.Minute).Err())
			between("TTL after SETEX", rc.TTL(ctx, "ex"+p), 50*time.Second, time.Minute)
			if s, err := rc.Do(ctx, "PSETEX", "pex"+p, "60000", "v").Text(); err != nil || s != "OK" {
				t.Errorf("PSETEX = %q, %v", s, err)
			}
			between("PTTL after PSETEX", rc.PTTL(ctx, "pex"+p), 50*time.Second, time.Minute)
			must(rc.SetArgs(ctx, "at"+p, "v", redis.SetArgs{ExpireAt: time.Now().Add(time.Minute)}).Err())
			between("TTL after SET EXAT", rc.TTL(ctx, "at"+p), 50*time.Second, time.Minute)

			// Redis's -2 and -1, which go-redis gives as durations of -2
			// and -1 nanoseconds.
			between("TTL of a missing key", rc.TTL(ctx, "missing"+p), -2, -2)
			between("PTTL of a missing key", rc.PTTL(ctx, "missing"+p), -2, -2)
			must(rc.Set(ctx, "m"+p, "v", 0).Err())
			between("TTL after SET without EX", rc.TTL(ctx, "m"+p), -1, -1)
			between("PTTL after SET without EX", rc.PTTL(ctx, "m"+p), -1, -1)

			// It goes once 50 ms have passed.
			start := time.Now()
			must(rc.Set(ctx, "short"+p, "v", 50*time.Millisecond).Err())
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
				_, err := rc.Get(ctx, "short"+p).Result()
				if errors.Is(err, redis.Nil) {
					if gone := time.Since(start); gone < 49*time.Millisecond {
						t.Errorf("a key set with PX 50 was gone after %v", gone)
					}
					break
				}
				must(err)
				if time.Now().After(deadline) {
					t.Fatal("a key set with PX 50 still there after 5 s")
				}
			}
			between("TTL of an expired key", rc.TTL(ctx, "short"+p), -2, -2)

			if err := rc.Do(ctx, "SET", "x", "v", "EX", "0").Err(); err == nil || err.Error() != "ERR invalid expire time in 'set' command" {
				t.Errorf("SET EX 0: %v", err)
			}
			if err := rc.Do(ctx, "SETEX", "x", "-1", "v").Err(); err == nil || err.Error() != "ERR invalid expire time in 'setex' command" {
				t.Errorf("SETEX -1: %v", err)
			}
			if ok, err := rc.Expire(ctx, "m"+p, time.Minute).Result(); err != nil || !ok {
				t.Errorf("EXPIRE = %v, %v", ok, err)
			}
			between("TTL after EXPIRE", rc.TTL(ctx, "m"+p), 50*time.Second, time.Minute)
			if ok, err := rc.PExpireAt(ctx, "m"+p, time.Now().Add(2*time.Minute)).Result(); err != nil || !ok {
				t.Errorf("PEXPIREAT = %v, %v", ok, err)
			}
			between("TTL after PEXPIREAT", rc.TTL(ctx, "m"+p), 110*time.Second, 2*time.Minute)
			if ok, err := rc.Persist(ctx, "m"+p).Result(); err != nil || !ok {
				t.Errorf("PERSIST = %v, %v", ok, err)
			}
			between("TTL after PERSIST", rc.TTL(ctx, "m"+p), -1, -1)
			if ok, err := rc.Expire(ctx, "missing"+p, time.Minute).Result(); err != nil || ok {
				t.Errorf("EXPIRE of a missing key = %v, %v", ok, err)
			}
			if info, err := rc.Info(ctx, "keyspace").Result(); err != nil || !strings.Contains(info, ",expires=") || strings.Contains(info, ",expires=0,") {
				t.Errorf("INFO keyspace with keys that expire: %q, %v", info, err)
			}
		})
	}
	// COMMAND describes the new commands.
	rc := goRedis(t, r.addr, 2)
	cmds, err := rc.Command(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for name, arity := range map[string]int8{"setex": 4, "psetex": 4, "ttl": 2, "pttl": 2, "expire": -3, "pexpire": -3, "expireat": -3, "pexpireat": -3, "persist": 2} {
		if ci := cmds[name]; ci == nil || ci.Arity != arity || ci.FirstKeyPos != 1 || ci.LastKeyPos != 1 {
			t.Errorf("COMMAND: %s %+v", name, ci)
		}
	}
	docs, err := rc.Do(ctx, "COMMAND", "DOCS", "setex", "psetex", "ttl", "pttl").Slice()
	if err != nil || len(docs) != 8 || docs[0] != "setex" || docs[2] != "psetex" || docs[4] != "ttl" || docs[6] != "pttl" {
		t.Errorf("COMMAND DOCS setex psetex ttl pttl = %v, %v", docs, err)
	}
	// A key set with EX over RESP has its deadline over JSON too.
	jc := dial(t, r.addr)
	jc.send(`{"op":"ttl","key":"lease2"}` + "\n")
	if resp := jc.recvCode(""); resp.TTLMs == nil || *resp.TTLMs > 120_000 || *resp.TTLMs < 100_000 {
		t.Errorf("JSON ttl of a key set over RESP with EX: %+v", resp)
	}
}

// The first line of a connection may be an inline SETEX, PSETEX, TTL or
// PTTL: they are RESP commands.
func TestRESPExpiryCommandsAreToldInline(t *testing.T) {
	r := startSingle(t, respConfig())
	for _, tc := range []struct{ send, want string }{
		{"setex k 100 v\r\n", "+OK\r\n"},
		{"psetex k 100000 v\r\n", "+OK\r\n"},
		{"ttl nope\r\n", ":-2\r\n"},
		{"PTTL nope\r\n", ":-2\r\n"},
	} {
		c := dialRESP(t, r.addr)
		c.send(tc.send)
		c.expect(tc.want)
	}
}

// A mesh does not expire keys: SET with an expiry, SETEX, PSETEX, TTL,
// PTTL, EXPIRE and its kin and PERSIST get its not_implemented, as NX does;
// EXPIRE with no time left is a delete, which it serves.
func TestRESPExpiryOnAMesh(t *testing.T) {
	r := startMesh(t, respConfig())
	c := dialRESP(t, r.addr)
	c.send("SET k v\r\n")
	c.expect("+OK\r\n")
	const noExpiry = "-ERR not_implemented: a mesh does not expire keys (ttl_ms, ttl, expire, persist)"
	for _, cmd := range []string{"SET k v EX 10", "SET k2 v EXAT 1", "SETEX k 10 v", "PSETEX k 10 v", "TTL k", "PTTL k", "TTL missing", "EXPIRE k 10", "PEXPIRE k 10", "PERSIST k"} {
		c.send(cmd + "\r\n")
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := c.br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, noExpiry) {
			t.Errorf("%s on a mesh: %q, %v; want %q…", cmd, line, err, noExpiry)
		}
	}
	// No time left is a delete, which a mesh serves, as Redis answers it.
	c.send("SET gone v\r\nEXPIRE gone 0\r\nGET gone\r\n")
	c.expect("+OK\r\n:1\r\n$-1\r\n")
	// NX with an expiry: the condition is refused first.
	for _, cmd := range []string{"SET k v NX", "SET k v PX 10 NX"} {
		c.send(cmd + "\r\n")
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := c.br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "-ERR not_implemented: a mesh does not take conditional writes") {
			t.Errorf("%s on a mesh: %q, %v", cmd, line, err)
		}
	}
	c.send("GET k\r\nGET k2\r\n")
	c.expect("$1\r\nv\r\n$-1\r\n")
}

// TYPE, STRLEN, UNLINK and TOUCH, byte for byte as Redis answers them:
// TYPE and STRLEN are gets, UNLINK a DEL, TOUCH an EXISTS; and as a
// connection's first line, inline, they are RESP.
func TestRESPTypeStrlenUnlinkTouch(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	for _, tc := range []struct{ send, want string }{
		{"MSET a 1 bb 22 empty \"\"", "+OK\r\n"},
		{"TYPE a", "+string\r\n"},
		{"TYPE nope", "+none\r\n"},
		{"STRLEN bb", ":2\r\n"},
		{"STRLEN empty", ":0\r\n"},
		{"STRLEN nope", ":0\r\n"},
		{"TOUCH a bb nope a", ":3\r\n"},
		{"UNLINK a nope", ":1\r\n"},
		{"TYPE a", "+none\r\n"},
		{"TYPE", "-ERR wrong number of arguments for 'type' command\r\n"},
		{"STRLEN a b", "-ERR wrong number of arguments for 'strlen' command\r\n"},
		{"UNLINK", "-ERR wrong number of arguments for 'unlink' command\r\n"},
		{"TOUCH", "-ERR wrong number of arguments for 'touch' command\r\n"},
	} {
		c.send(tc.send + "\r\n")
		c.expect(tc.want)
	}
	c = dialRESP(t, r.addr)
	c.send("type bb\r\n")
	c.expect("+string\r\n")
}
