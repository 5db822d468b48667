package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// chunkReader hands out its bytes in pieces of random sizes (1..max), as
// TCP may.
type chunkReader struct {
	b   []byte
	rng *rand.Rand
	max int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.b), 1+c.rng.IntN(c.max))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

// readers are the ways a test feeds the parser its input: whole, a byte at
// a time, and in random pieces.
func readers(in string) map[string]func() *bufio.Reader {
	return map[string]func() *bufio.Reader{
		"whole": func() *bufio.Reader { return bufio.NewReaderSize(strings.NewReader(in), 64) },
		"bytewise": func() *bufio.Reader {
			return bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(in)), 64)
		},
		"chunks": func() *bufio.Reader {
			return bufio.NewReaderSize(&chunkReader{b: []byte(in), rng: rand.New(rand.NewPCG(1, 2)), max: 7}, 64)
		},
	}
}

func TestReadRESP(t *testing.T) {
	long := strings.Repeat("x", 300) // longer than the test readers' buffers: a bulk string is not read in place
	deep := strings.Repeat("*1\r\n", respDepthMax) + ":1\r\n"
	for _, tc := range []struct {
		name, in string
		want     string // respValue.String of the reply; "" when an error is wanted
		err      error  // errors.Is target
		errHas   string
	}{
		{name: "simple string", in: "+OK\r\n", want: `+"OK"`},
		{name: "empty simple string", in: "+\r\n", want: `+""`},
		{name: "error", in: "-ERR unknown command 'FOO'\r\n", want: `-"ERR unknown command 'FOO'"`},
		{name: "integer", in: ":1000\r\n", want: ":1000"},
		{name: "negative integer", in: ":-42\r\n", want: ":-42"},
		{name: "largest integer", in: ":9223372036854775807\r\n", want: ":9223372036854775807"},
		{name: "bulk", in: "$5\r\nhello\r\n", want: `$"hello"`},
		{name: "empty bulk", in: "$0\r\n\r\n", want: `$""`},
		{name: "bulk holding CRLF", in: "$4\r\na\r\nb\r\n", want: `$"a\r\nb"`},
		{name: "long bulk", in: "$300\r\n" + long + "\r\n", want: `$"` + long + `"`},
		{name: "null bulk", in: "$-1\r\n", want: "$nil"},
		{name: "null array", in: "*-1\r\n", want: "*nil"},
		{name: "empty array", in: "*0\r\n", want: "[]"},
		{name: "array", in: "*3\r\n$3\r\nfoo\r\n$-1\r\n:7\r\n", want: `[$"foo" $nil :7]`},
		{name: "nested arrays", in: "*2\r\n*2\r\n+a\r\n-E b\r\n*1\r\n*0\r\n", want: `[[+"a" -"E b"] [[]]]`},
		{name: "deepest allowed nesting", in: strings.Repeat("*1\r\n", respDepthMax-1) + ":1\r\n",
			want: strings.Repeat("[", respDepthMax-1) + ":1" + strings.Repeat("]", respDepthMax-1)},

		{name: "end of stream before a reply", in: "", err: io.EOF},
		{name: "cut in a line", in: "+OK", err: io.ErrUnexpectedEOF},
		{name: "cut after CR", in: "+OK\r", err: io.ErrUnexpectedEOF},
		{name: "cut in a bulk", in: "$5\r\nhel", err: io.ErrUnexpectedEOF},
		{name: "cut before a bulk's CRLF", in: "$5\r\nhello", err: io.ErrUnexpectedEOF},
		{name: "cut in an array", in: "*2\r\n+a\r\n", err: io.ErrUnexpectedEOF},
		{name: "unknown type byte", in: "!oops\r\n", err: errRESPProtocol, errHas: "starts with '!'"},
		{name: "a JSON line", in: "{\"ok\":true}\n", err: errRESPProtocol, errHas: "CRLF"},
		{name: "LF without CR", in: "+OK\n", err: errRESPProtocol},
		{name: "empty line", in: "\r\n", err: errRESPProtocol},
		{name: "bad integer", in: ":12a\r\n", err: errRESPProtocol, errHas: "bad integer"},
		{name: "empty integer", in: ":\r\n", err: errRESPProtocol},
		{name: "integer too long", in: ":12345678901234567890\r\n", err: errRESPProtocol},
		{name: "integer overflow", in: ":9223372036854775808\r\n", err: errRESPProtocol, errHas: "overflows"},
		{name: "bulk length -2", in: "$-2\r\n", err: errRESPProtocol},
		{name: "bulk over its limit", in: fmt.Sprintf("$%d\r\n", respBulkBytesMax+1), err: errRESPProtocol, errHas: "bulk length"},
		{name: "array over its limit", in: fmt.Sprintf("*%d\r\n", respArrayLenMax+1), err: errRESPProtocol, errHas: "array length"},
		{name: "bulk without its CRLF", in: "$2\r\nabc\r\n", err: errRESPProtocol, errHas: "not followed by CRLF"},
		{name: "nested too deep", in: deep, err: errRESPProtocol, errHas: "nested"},
		{name: "line over the buffer", in: "+" + long + "\r\n", err: errRESPProtocol, errHas: "longer than"},
	} {
		for how, reader := range readers(tc.in) {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				v, err := readRESP(reader())
				kind, null, msg, skipErr := skipRESP(reader())
				if tc.err != nil {
					if !errors.Is(err, tc.err) || !strings.Contains(fmt.Sprint(err), tc.errHas) {
						t.Fatalf("readRESP(%q) = %v, %v; want an error matching %v containing %q", tc.in, v, err, tc.err, tc.errHas)
					}
					if !errors.Is(skipErr, tc.err) {
						t.Fatalf("skipRESP(%q): error %v, want %v", tc.in, skipErr, tc.err)
					}
					return
				}
				if err != nil || v.String() != tc.want {
					t.Fatalf("readRESP(%q) = %s, %v; want %s", tc.in, v, err, tc.want)
				}
				if skipErr != nil || kind != v.kind || null != v.null || (kind == '-' && msg != v.str) {
					t.Fatalf("skipRESP(%q) = %q, %v, %q, %v; readRESP said %s", tc.in, kind, null, msg, skipErr, v)
				}
			})
		}
	}
}

// Replies back to back are read one at a time, each ending exactly where
// the next begins, whatever the reads' sizes.
func TestReadRESPStream(t *testing.T) {
	in := "+OK\r\n$3\r\nabc\r\n*2\r\n:1\r\n$-1\r\n-ERR x\r\n:5\r\n"
	want := []string{`+"OK"`, `$"abc"`, `[:1 $nil]`, `-"ERR x"`, ":5"}
	for how, reader := range readers(in) {
		r := reader()
		for i, w := range want {
			v, err := readRESP(r)
			if err != nil || v.String() != w {
				t.Fatalf("%s: reply %d = %s, %v; want %s", how, i, v, err, w)
			}
		}
		if v, err := readRESP(r); err != io.EOF {
			t.Fatalf("%s: after the last reply: %s, %v; want io.EOF", how, v, err)
		}
	}
}

func TestAppendRESPCommand(t *testing.T) {
	got := string(appendRESPCommand([]byte("x"), []byte("SET"), []byte("k"), []byte("")))
	if want := "x*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"; got != want {
		t.Errorf("appendRESPCommand = %q, want %q", got, want)
	}
	keys := [][]byte{[]byte("a"), []byte("bb")}
	if got, want := string(respProto{}.appendMSet(nil, keys, []byte("v"))), "*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\nv\r\n$2\r\nbb\r\n$1\r\nv\r\n"; got != want {
		t.Errorf("MSET = %q, want %q", got, want)
	}
	if got, want := string(jsonProto{}.appendMSet(nil, keys, []byte("v"))), `{"op":"bulk_set","items":[{"key":"a","value":"v"},{"key":"bb","value":"v"}]}`+"\n"; got != want {
		t.Errorf("bulk_set = %q, want %q", got, want)
	}
}

// Each protocol reads its replies to the loads' requests as ok, a miss or
// an error.
func TestWireProtoReplies(t *testing.T) {
	for _, tc := range []struct {
		proto   wireProto
		op      compareOp
		in      string
		want    replyOutcome
		wantMsg string
	}{
		{respProto{}, opSet, "+OK\r\n", replyOK, ""},
		{respProto{}, opSet, "-ERR disk full\r\n", replyErr, "ERR disk full"},
		{respProto{}, opSet, ":1\r\n", replyErr, "unexpected reply"},
		{respProto{}, opGet, "$3\r\nabc\r\n", replyOK, ""},
		{respProto{}, opGet, "$-1\r\n", replyMiss, "missing key"},
		{respProto{}, opGet, "+OK\r\n", replyErr, "unexpected reply"},
		{respProto{}, opMSet, "+OK\r\n", replyOK, ""},
		{jsonProto{}, opSet, `{"ok":true}` + "\n", replyOK, ""},
		{jsonProto{}, opSet, `{"id":1,"ok":true}` + "\n", replyOK, ""},
		{jsonProto{}, opSet, `{"ok":false,"error":{"code":"io_error","message":"\"ok\":true"}}` + "\n", replyErr, "io_error"},
		{jsonProto{}, opGet, `{"ok":true,"value":"abc"}` + "\n", replyOK, ""},
		{jsonProto{}, opGet, `{"ok":true}` + "\n", replyErr, `{"ok":true}`},
		{jsonProto{}, opGet, `{"ok":false,"error":{"code":"not_found","message":"key \"k\" not found"}}` + "\n", replyMiss, "missing key"},
		{jsonProto{}, opMSet, `{"ok":true}` + "\n", replyOK, ""},
	} {
		// The epoll driver finds where each reply ends before it reads
		// it, and waits at every shorter prefix.
		if n, err := replySize([]byte(tc.in+"+OK\r\n"), tc.proto); n != len(tc.in) || err != nil {
			t.Errorf("%T: replySize(%q + more) = %d, %v; want %d", tc.proto, tc.in, n, err, len(tc.in))
		}
		for k := range len(tc.in) {
			if n, err := replySize([]byte(tc.in[:k]), tc.proto); n != 0 || err != nil {
				t.Errorf("%T: replySize(%q) = %d, %v; want 0 (incomplete)", tc.proto, tc.in[:k], n, err)
			}
		}
		out, msg, err := tc.proto.readReply(bufio.NewReader(strings.NewReader(tc.in)), tc.op)
		if err != nil || out != tc.want || !strings.Contains(msg, tc.wantMsg) {
			t.Errorf("%T op %d reading %q: %v, %q, %v; want %v with %q", tc.proto, tc.op, tc.in, out, msg, err, tc.want, tc.wantMsg)
		}
	}
	if _, _, err := (jsonProto{}).readReply(bufio.NewReader(strings.NewReader(`{"ok":tr`)), opSet); err != io.ErrUnexpectedEOF {
		t.Errorf("a cut JSON reply: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestAppendKey(t *testing.T) {
	for _, i := range []int{0, 7, 12345678, 99999999, 123456789} {
		if got := string(appendKey([]byte("x"), i)); got != "x"+keyName(i) {
			t.Errorf("appendKey(%d) = %q, want %q", i, got, "x"+keyName(i))
		}
	}
}

// needRedis returns the redis-server binary, or skips the test with a line
// saying what to install.
func needRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: install Debian's redis-server package to run this test")
	}
	return bin
}

// The RESP client against the real Redis: every reply type, nulls inside
// arrays, error replies, and the load loop itself.
func TestRESPAgainstRedis(t *testing.T) {
	rs, err := startRedis(needRedis(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer rs.stop()
	c, err := dialRESP(rs.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const timeout = 5 * time.Second
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, `+"PONG"`},
		{[]string{"SET", "a", "1\r\n2"}, `+"OK"`},
		{[]string{"GET", "a"}, `$"1\r\n2"`},
		{[]string{"GET", "missing"}, "$nil"},
		{[]string{"SET", "e", ""}, `+"OK"`},
		{[]string{"MGET", "a", "missing", "e"}, `[$"1\r\n2" $nil $""]`},
		{[]string{"MSET", "b", "x", "c", "y"}, `+"OK"`},
		{[]string{"DEL", "b", "c", "missing"}, ":2"},
		{[]string{"DBSIZE"}, ":2"},
		{[]string{"RPUSH", "l", "p", "q"}, ":2"},
		{[]string{"LRANGE", "l", "0", "-1"}, `[$"p" $"q"]`},
		{[]string{"BLPOP", "nothing", "0.01"}, "*nil"},
		{[]string{"CONFIG", "GET", "appendfsync"}, `[$"appendfsync" $"always"]`},
		{[]string{"CONFIG", "GET", "no-such-option"}, `[]`},
	} {
		v, err := c.do(timeout, tc.args...)
		if err != nil || v.String() != tc.want {
			t.Errorf("%q = %s, %v; want %s", tc.args, v, err, tc.want)
		}
	}
	// Nested arrays: COMMAND INFO's reply is an array of arrays of arrays.
	if v, err := c.do(timeout, "COMMAND", "INFO", "get"); err != nil || len(v.array) != 1 || len(v.array[0].array) < 6 || v.array[0].array[0].str != "get" {
		t.Errorf("COMMAND INFO get = %s, %v", v, err)
	}
	var re *respError
	if _, err := c.do(timeout, "NOSUCHCOMMAND"); !errors.As(err, &re) || !strings.HasPrefix(re.msg, "ERR unknown command") {
		t.Errorf("an unknown command: %v, want a respError ERR unknown command", err)
	}
	if _, err := c.do(timeout, "GET", "l"); !errors.As(err, &re) || !strings.HasPrefix(re.msg, "WRONGTYPE") {
		t.Errorf("GET of a list: %v, want WRONGTYPE", err)
	}
	// The connection is still in step after the errors.
	if v, err := c.do(timeout, "ECHO", "still here"); err != nil || v.str != "still here" {
		t.Errorf("ECHO after the errors = %s, %v", v, err)
	}

	// The load loop, pipelined: MSET then GET of keys it stored.
	if _, err := fillKeys(rs.addr, respProto{}, 50, []byte("v"), "", nil); err != nil {
		t.Fatal(err)
	}
	for _, load := range []compareLoad{
		{op: opMSet, clients: 1, depth: 4, pairs: 3},
		{op: opGet, clients: 1, depth: 16},
		{op: opSet, clients: 1, depth: 2},
	} {
		conn, err := dialRESP(rs.addr, timeout)
		if err != nil {
			t.Fatal(err)
		}
		var measuring, stop atomic.Bool
		measuring.Store(true)
		n, bad := 0, 0
		err = driveConn(conn.c, respProto{}, load, 50, []byte("vv"), rand.New(rand.NewPCG(1, 1)), &measuring, &stop,
			func(lat time.Duration, ok bool, msg string) {
				if n++; !ok {
					bad++
				}
				if n >= 10*load.depth {
					stop.Store(true)
				}
			})
		conn.Close()
		if err != nil || n != 10*load.depth || bad != 0 {
			t.Errorf("load %+v: %d replies, %d not ok, %v", load, n, bad, err)
		}
	}
	if v, err := c.do(timeout, "GET", "key00000049"); err != nil || v.str != "v" && v.str != "vv" {
		t.Errorf("GET key00000049 = %s, %v", v, err)
	}
}
