package realnet

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"dkv/core"
)

const (
	notIntegerReply = "-ERR value is not an integer or out of range\r\n"
	overflowReply   = "-ERR increment or decrement would overflow\r\n"
)

// INCR, DECR, INCRBY and DECRBY, byte for byte as Redis 7.0.15 answered
// the same commands: a missing key counts from 0, a value that is not a
// counter's one spelling or an argument that is not an integer is refused,
// and so is a sum outside int64, with nothing written.
func TestRESPIncr(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	for _, tc := range []struct{ send, want string }{
		{"INCR c", ":1\r\n"},
		{"INCR c", ":2\r\n"},
		{"DECR c", ":1\r\n"},
		{"DECR c", ":0\r\n"},
		{"DECR c", ":-1\r\n"},
		{"INCRBY c 10", ":9\r\n"},
		{"INCRBY c -5", ":4\r\n"},
		{"DECRBY c 7", ":-3\r\n"},
		{"DECRBY c -7", ":4\r\n"},
		{"incrby c 0", ":4\r\n"},
		{"GET c", "$1\r\n4\r\n"},
		// The argument: string2ll's integers only.
		{"INCRBY c abc", notIntegerReply},
		{"INCRBY c 1.5", notIntegerReply},
		{"INCRBY c +1", notIntegerReply},
		{"INCRBY c 01", notIntegerReply},
		{"INCRBY c -0", notIntegerReply},
		{"INCRBY c ' 1'", notIntegerReply},
		{"INCRBY c ''", notIntegerReply},
		{"INCRBY c 9223372036854775808", notIntegerReply},
		{"INCRBY c -9223372036854775809", notIntegerReply},
		{"DECRBY c abc", notIntegerReply},
		{"GET c", "$1\r\n4\r\n"},
		// The value: a counter's one spelling only.
		{"SET s hello", "+OK\r\n"},
		{"INCR s", notIntegerReply},
		{"DECR s", notIntegerReply},
		{"INCRBY s 1", notIntegerReply},
		{"DECRBY s 1", notIntegerReply},
		{"INCRBY s abc", notIntegerReply},
		{"MSET sp ' 1' lz 01 e '' f 1.5 m -0 p +5 zz 00 long 123456789012345678901", "+OK\r\n"},
		{"INCR sp", notIntegerReply},
		{"INCR lz", notIntegerReply},
		{"INCR e", notIntegerReply},
		{"INCR f", notIntegerReply},
		{"INCR m", notIntegerReply},
		{"INCR p", notIntegerReply},
		{"INCR zz", notIntegerReply},
		{"INCR long", notIntegerReply},
		{"GET s", "$5\r\nhello\r\n"},
		// int64's ends.
		{"SET big 9223372036854775807", "+OK\r\n"},
		{"INCR big", overflowReply},
		{"INCRBY big 0", ":9223372036854775807\r\n"},
		{"DECRBY big -1", overflowReply},
		{"INCRBY big -1", ":9223372036854775806\r\n"},
		{"SET small -9223372036854775808", "+OK\r\n"},
		{"DECR small", overflowReply},
		{"INCRBY small -1", overflowReply},
		{"DECRBY small 1", overflowReply},
		{"GET small", "$20\r\n-9223372036854775808\r\n"},
		// The least int64 has no negation: DECRBY of it is refused
		// before the key is read, whatever it holds.
		{"DECRBY x -9223372036854775808", "-ERR decrement would overflow\r\n"},
		{"DECRBY s -9223372036854775808", "-ERR decrement would overflow\r\n"},
		{"DECRBY c -9223372036854775808", "-ERR decrement would overflow\r\n"},
		{"EXISTS x", ":0\r\n"},
		{"INCRBY c -9223372036854775808", ":-9223372036854775804\r\n"},
		{"INCRBY new -9223372036854775808", ":-9223372036854775808\r\n"},
		{"GET new", "$20\r\n-9223372036854775808\r\n"},
		{"DEL new", ":1\r\n"},
		{"DECRBY new 9223372036854775807", ":-9223372036854775807\r\n"},
		{"GET new", "$20\r\n-9223372036854775807\r\n"},
		// Arity, as Redis words it.
		{"INCR", "-ERR wrong number of arguments for 'incr' command\r\n"},
		{"INCR a b", "-ERR wrong number of arguments for 'incr' command\r\n"},
		{"DECR", "-ERR wrong number of arguments for 'decr' command\r\n"},
		{"DECR a b", "-ERR wrong number of arguments for 'decr' command\r\n"},
		{"INCRBY", "-ERR wrong number of arguments for 'incrby' command\r\n"},
		{"INCRBY a", "-ERR wrong number of arguments for 'incrby' command\r\n"},
		{"INCRBY a 1 2", "-ERR wrong number of arguments for 'incrby' command\r\n"},
		{"DECRBY a", "-ERR wrong number of arguments for 'decrby' command\r\n"},
		{"DECRBY a 1 2", "-ERR wrong number of arguments for 'decrby' command\r\n"},
		{"EXISTS a", ":0\r\n"},
		// dkv's own: no floats.
		{"INCRBYFLOAT f 1", "-" + respNoIncrByFloat + "\r\n"},
		{"GET f", "$3\r\n1.5\r\n"},
	} {
		c.send(tc.send + "\r\n")
		c.expect(tc.want)
	}
}

// An incr keeps the key's deadline, as Redis's does; and the counter it
// writes is the value a JSON get reads.
func TestRESPIncrKeepsTheDeadline(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	c.send("SET k 41 EX 100\r\nINCR k\r\nDECRBY k 50\r\n")
	c.expect("+OK\r\n:42\r\n:-8\r\n")
	c.intIn("TTL k", 99, 100)
	c.send("INCR plain\r\nTTL plain\r\n")
	c.expect(":1\r\n:-1\r\n")
	jc := dial(t, r.addr)
	jc.send(`{"op":"get","key":"k"}` + "\n")
	if resp := jc.recvCode(""); resp.Value == nil || *resp.Value != "-8" {
		t.Errorf("JSON get of a counter INCR wrote: %+v", resp)
	}
	jc.send(`{"op":"set","key":"j","value":"007"}` + "\n")
	jc.recvCode("")
	c.send("INCR j\r\n")
	c.expect(notIntegerReply)
}

// The first line of a connection may be an inline INCR and its kin: they
// are RESP commands. So is INCRBYFLOAT, which dkv refuses by name (see
// TestRESPRefusedCommandsAreToldInline).
func TestRESPIncrIsToldInline(t *testing.T) {
	r := startSingle(t, respConfig())
	for _, tc := range []struct{ send, want string }{
		{"incr k\r\n", ":1\r\n"},
		{"DECR k\r\n", ":0\r\n"},
		{"IncrBy k 5\r\n", ":5\r\n"},
		{"decrby k 6\r\n", ":-1\r\n"},
		{"incrbyfloat k 1\r\n", "-ERR dkv does not serve INCRBYFLOAT: "},
	} {
		c := dialRESP(t, r.addr)
		c.send(tc.send)
		c.expect(tc.want)
	}
}

// A mesh refuses incr, in its own words; the host's own refusals of the
// arguments come first, as on any node.
func TestRESPIncrOnAMesh(t *testing.T) {
	r := startMesh(t, respConfig())
	c := dialRESP(t, r.addr)
	const noIncr = "-ERR not_implemented: a mesh does not take incr"
	for _, cmd := range []string{"INCR k", "DECR k", "INCRBY k 5", "DECRBY k 5"} {
		c.send(cmd + "\r\n")
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := c.br.ReadString('\n'); err != nil || !strings.HasPrefix(line, noIncr) {
			t.Errorf("%s on a mesh: %q, %v; want %q…", cmd, line, err, noIncr)
		}
	}
	c.send("INCRBY k x\r\nDECRBY k -9223372036854775808\r\nINCR\r\nEXISTS k\r\n")
	c.expect(notIntegerReply + "-ERR decrement would overflow\r\n-ERR wrong number of arguments for 'incr' command\r\n:0\r\n")
}

// The node's refusals of an incr in RESP: not_integer and overflow in
// Redis's words, a follower's not_leader as NOTLEADER, anything else as
// "ERR <code>: <message>"; an answer without a counter is an internal
// error, not a made-up number.
func TestRESPIncrRendersTheNodesAnswers(t *testing.T) {
	notLeader := core.ErrorResponse(core.CodeNotLeader, "this node is a follower")
	notLeader.Error.Leader = "127.0.0.1:9001"
	value := func(v string) core.Response { return core.Response{OK: true, Value: &v} }
	for _, tc := range []struct {
		resp core.Response
		want string
	}{
		{value("-12"), ":-12\r\n"},
		{core.IncrResponse("k", 0, core.CodeNotInteger), notIntegerReply},
		{core.IncrResponse("k", 0, core.CodeOverflow), overflowReply},
		{notLeader, "-NOTLEADER 127.0.0.1:9001\r\n"},
		{core.ErrorResponse(core.CodeDiskFull, "no space left on device"), "-ERR disk_full: no space left on device\r\n"},
		{core.ErrorResponse(core.CodeNotImplemented, "no incr here"), "-ERR not_implemented: no incr here\r\n"},
		{core.Response{OK: true}, "-ERR internal: no RESP reply for this command\r\n"},
		{value("1.5"), "-ERR internal: no RESP reply for this command\r\n"},
	} {
		r := startHost(t, &stubNode{testNode: newTestNode(t), resp: tc.resp}, testConfig())
		c := dialRESP(t, r.addr)
		c.send("INCRBY k 3\r\n")
		c.expect(tc.want)
	}
	// not_integer and overflow are incr's words only: another command
	// that met them would say so as the node did.
	r := startHost(t, &stubNode{testNode: newTestNode(t), resp: core.IncrResponse("k", 0, core.CodeOverflow)}, testConfig())
	c := dialRESP(t, r.addr)
	c.send("SET k v\r\n")
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := c.br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "-ERR overflow: ") {
		t.Errorf("SET answered overflow: %q, %v", line, err)
	}
}

// What the host asks the node for: INCR's delta is absent (1), the others
// carry theirs, DECR and DECRBY negated.
func TestRESPIncrDelta(t *testing.T) {
	for _, tc := range []struct {
		decr bool
		by   []string
		want int64
		msg  string
	}{
		{false, nil, 1, ""},
		{true, nil, -1, ""},
		{false, []string{"7"}, 7, ""},
		{false, []string{"-7"}, -7, ""},
		{true, []string{"7"}, -7, ""},
		{true, []string{"-7"}, 7, ""},
		{false, []string{"0"}, 0, ""},
		{true, []string{"0"}, 0, ""},
		{false, []string{"9223372036854775807"}, math.MaxInt64, ""},
		{true, []string{"9223372036854775807"}, -math.MaxInt64, ""},
		{false, []string{"-9223372036854775808"}, math.MinInt64, ""},
		{true, []string{"-9223372036854775808"}, 0, "ERR decrement would overflow"},
		{true, []string{"-9223372036854775807"}, math.MaxInt64, ""},
		{false, []string{""}, 0, "ERR value is not an integer or out of range"},
		{true, []string{"1e3"}, 0, "ERR value is not an integer or out of range"},
	} {
		var by [][]byte
		for _, b := range tc.by {
			by = append(by, []byte(b))
		}
		if got, msg := respIncrDelta(tc.decr, by); got != tc.want || msg != tc.msg {
			t.Errorf("respIncrDelta(%v, %q) = %d, %q; want %d, %q", tc.decr, tc.by, got, msg, tc.want, tc.msg)
		}
	}
	// On the wire: a request the node can read back as JSON.
	for _, tc := range []struct {
		argv string
		want string
	}{
		{"INCR k", `{"op":"incr","key":"k"}`},
		{"INCRBY k 1", `{"op":"incr","key":"k"}`},
		{"DECR k", `{"op":"incr","key":"k","delta":-1}`},
		{"INCRBY k 12", `{"op":"incr","key":"k","delta":12}`},
		{"DECRBY k 12", `{"op":"incr","key":"k","delta":-12}`},
	} {
		node := &recordingNode{testNode: newTestNode(t), seen: make(chan core.Request, 1)}
		r := startHost(t, node, testConfig())
		c := dialRESP(t, r.addr)
		c.send(tc.argv + "\r\n")
		c.expect(":0\r\n")
		req := <-node.seen
		b, err := core.AppendRequest(nil, &req)
		if got := strings.TrimSuffix(string(b), "\n"); err != nil || got != tc.want {
			t.Errorf("%s asked the node for %s, %v; want %s", tc.argv, got, err, tc.want)
		}
	}
}

// recordingNode hands each request it is given to seen and answers it as
// an incr of a key that held 0 by 0.
type recordingNode struct {
	*testNode
	seen chan core.Request
}

func (n *recordingNode) HandleRequest(req *core.Request, reply core.ReplyFunc) {
	n.seen <- *req
	reply(core.IncrResponse(req.Key, 0, ""))
}

// INCR and its kin through go-redis, in RESP3's handshake and RESP2, and
// COMMAND's entries for them: a write of one key that a cluster-aware
// client can route.
func TestRESPIncrWithGoRedis(t *testing.T) {
	r := startSingle(t, respConfig())
	ctx := context.Background()
	for _, protocol := range []int{3, 2} {
		t.Run(fmt.Sprintf("protocol %d", protocol), func(t *testing.T) {
			rc := goRedis(t, r.addr, protocol)
			k := "n" + strconv.Itoa(protocol)
			for _, tc := range []struct {
				what string
				got  func() (int64, error)
				want int64
			}{
				{"INCR", rc.Incr(ctx, k).Result, 1},
				{"INCRBY 41", rc.IncrBy(ctx, k, 41).Result, 42},
				{"DECR", rc.Decr(ctx, k).Result, 41},
				{"DECRBY 50", rc.DecrBy(ctx, k, 50).Result, -9},
				{"DECRBY -9", rc.DecrBy(ctx, k, -9).Result, 0},
			} {
				if n, err := tc.got(); err != nil || n != tc.want {
					t.Errorf("%s = %d, %v; want %d", tc.what, n, err, tc.want)
				}
			}
			if err := rc.Set(ctx, "word", "x", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rc.Incr(ctx, "word").Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
				t.Errorf("INCR of a word: %v", err)
			}
			if err := rc.IncrByFloat(ctx, k, 0.5).Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR dkv does not serve INCRBYFLOAT: its counters are integers") {
				t.Errorf("INCRBYFLOAT: %v", err)
			}
		})
	}
	rc := goRedis(t, r.addr, 2)
	cmds, err := rc.Command(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for name, arity := range map[string]int8{"incr": 2, "decr": 2, "incrby": 3, "decrby": 3} {
		ci := cmds[name]
		if ci == nil || ci.Arity != arity || ci.FirstKeyPos != 1 || ci.LastKeyPos != 1 || ci.StepCount != 1 ||
			!strings.Contains(strings.Join(ci.Flags, " "), "write") || ci.ReadOnly {
			t.Errorf("COMMAND: %s %+v", name, ci)
		}
	}
	if ci := cmds["incrbyfloat"]; ci != nil {
		t.Errorf("COMMAND lists incrbyfloat, which dkv does not serve: %+v", ci)
	}
	docs, err := rc.Do(ctx, "COMMAND", "DOCS", "incr", "decr", "incrby", "decrby").Slice()
	if err != nil || len(docs) != 8 || docs[0] != "incr" || docs[2] != "decr" || docs[4] != "incrby" || docs[6] != "decrby" {
		t.Errorf("COMMAND DOCS incr decr incrby decrby = %v, %v", docs, err)
	}
}
