package realnet

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"dkv/core"
)

// decodeAll runs a decoder over stream as the reader does: the buffer holds
// what has arrived and not been framed, and each command's bytes leave it
// once framed. It feeds the stream in the given chunk sizes (the rest in
// one piece) and returns the commands, the skipped empty ones as nil, and
// the first error.
func decodeAll(d *respDecoder, stream []byte, chunks []int) ([][]string, error) {
	var out [][]string
	var buf []byte
	rest := stream
	for len(rest) > 0 {
		n := len(rest)
		if len(chunks) > 0 {
			n = min(max(chunks[0], 1), n)
			chunks = chunks[1:]
		}
		buf = append(buf, rest[:n]...)
		rest = rest[n:]
		for len(buf) > 0 {
			size, argv, err := d.next(buf)
			if err != nil {
				return out, err
			}
			if size == 0 {
				break
			}
			if size > len(buf) {
				return out, fmt.Errorf("consumed %d of %d bytes", size, len(buf))
			}
			var cmd []string
			for _, a := range argv {
				cmd = append(cmd, string(a))
			}
			out = append(out, cmd)
			buf = buf[size:]
		}
	}
	return out, nil
}

func TestRESPDecoder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		want   [][]string
		errMsg string // a protocol error's text, after "Protocol error: "
	}{
		{"array", "*1\r\n$4\r\nPING\r\n", [][]string{{"PING"}}, ""},
		{"empty bulk", "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", [][]string{{"GET", ""}}, ""},
		{"binary bulk", "*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\x00\xff\r\n", [][]string{{"ECHO", "\r\n\x00\xff"}}, ""},
		{"pipelined", "*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", [][]string{{"PING"}, {"SET", "k", "v"}}, ""},
		{"empty arrays are skipped", "*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", [][]string{nil, nil, {"PING"}}, ""},
		{"inline", "PING\r\n", [][]string{{"PING"}}, ""},
		{"inline LF only", "get k\n", [][]string{{"get", "k"}}, ""},
		{"inline spaces", "  set   a\tb  \r\n", [][]string{{"set", "a", "b"}}, ""},
		{"inline empty line skipped", "\r\n\n  \r\nPING\r\n", [][]string{nil, nil, nil, {"PING"}}, ""},
		{"inline quotes", `set "a b" 'c d'` + "\r\n", [][]string{{"set", "a b", "c d"}}, ""},
		{"inline escapes", `set "\x41\n\t\"\\" 'it\'s'` + "\r\n", [][]string{{"set", "A\n\t\"\\", "it's"}}, ""},
		{"inline empty quoted", `echo ""` + "\r\n", [][]string{{"echo", ""}}, ""},
		{"inline quote inside a word", `set a"b c"` + "\r\n", [][]string{{"set", "ab c"}}, ""},
		{"inline then array", "PING\r\n*1\r\n$4\r\nPING\r\n", [][]string{{"PING"}, {"PING"}}, ""},
		{"bad count", "*x\r\n", nil, "invalid multibulk length"},
		{"negative zero count", "*-0\r\n", nil, "invalid multibulk length"},
		{"plus count", "*+1\r\n", nil, "invalid multibulk length"},
		{"count over the limit", "*17\r\n", nil, "invalid multibulk length: 17 elements, over 16 (dkv's limit: 2 × --max-bulk-entries + 8)"},
		{"not a bulk", "*2\r\n$3\r\nGET\r\n:1\r\n", nil, "expected '$', got ':'"},
		{"nested array", "*1\r\n*1\r\n$4\r\nPING\r\n", nil, "expected '$', got '*'"},
		{"negative bulk", "*1\r\n$-1\r\n", nil, "invalid bulk length"},
		{"bulk over the limit", "*1\r\n$65\r\n", nil, "invalid bulk length: a bulk string of 65 bytes would take the command past 64 bytes (--max-request-bytes)"},
		{"command over the limit", "*3\r\n$3\r\nSET\r\n$20\r\n01234567890123456789\r\n$20\r\n", nil, "invalid bulk length: a bulk string of 20 bytes would take the command past 64 bytes (--max-request-bytes)"},
		{"no CRLF after bulk", "*1\r\n$2\r\nabXY", nil, "expected CRLF after a bulk string of 2 bytes"},
		{"bare CR in header", "*1\rX\n", nil, "expected CRLF after the mbulk count"},
		{"long header", "*" + strings.Repeat("1", 40), nil, "too big mbulk count string"},
		{"long bulk header", "*1\r\n$" + strings.Repeat("1", 40), nil, "too big bulk count string"},
		{"unbalanced double quote", `set "a b` + "\r\n", nil, "unbalanced quotes in request"},
		{"unbalanced single quote", `set 'a b` + "\r\n", nil, "unbalanced quotes in request"},
		{"closing quote not ending a word", `set "a"b c` + "\r\n", nil, "unbalanced quotes in request"},
		{"inline over the limit", strings.Repeat("a", 65) + "\r\n", nil, "too big inline request"},
		{"inline over the limit, no newline", strings.Repeat("a", 65), nil, "too big inline request"},
		{"inline too many words", strings.Repeat("a ", 17) + "\r\n", nil, "invalid multibulk length: more than 16 words (dkv's limit: 2 × --max-bulk-entries + 8)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeAll(newRESPDecoder(64, 16), []byte(tc.in), nil)
			var pe respProtocolError
			switch {
			case tc.errMsg == "" && err != nil:
				t.Fatalf("error %v, want %q", err, tc.want)
			case tc.errMsg != "" && (!errors.As(err, &pe) || string(pe) != tc.errMsg):
				t.Fatalf("got %q, error %v; want protocol error %q", got, err, tc.errMsg)
			case tc.errMsg == "" && !reflect.DeepEqual(got, tc.want):
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// respStream is a stream of commands of every shape, with the commands it
// holds.
func respStream() ([]byte, [][]string) {
	var b []byte
	var want [][]string
	add := func(argv ...string) {
		b = appendRESPArray(b, len(argv))
		for _, a := range argv {
			b = appendRESPBulk(b, a)
		}
		want = append(want, argv)
	}
	add("PING")
	add("SET", "key", strings.Repeat("v", 300))
	add("GET", "")
	b = append(b, "MGET a 'b c' \"d\\x00\"\r\n"...)
	want = append(want, []string{"MGET", "a", "b c", "d\x00"})
	b = append(b, "*0\r\n"...)
	want = append(want, nil)
	add("ECHO", "\r\n*1\r\n$4\r\n")
	b = append(b, "PING\n"...)
	want = append(want, []string{"PING"})
	add("MSET", "a", "1", "b", "2", "c", "3")
	return b, want
}

// The decoder gives the same commands however the stream is cut: at every
// byte, one byte at a time, and in random pieces.
func TestRESPDecoderPartialInput(t *testing.T) {
	stream, want := respStream()
	check := func(what string, chunks []int) {
		t.Helper()
		got, err := decodeAll(newRESPDecoder(4096, 64), stream, chunks)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %q, %v; want %q", what, got, err, want)
		}
	}
	for cut := 1; cut < len(stream); cut++ {
		check(fmt.Sprintf("cut at %d", cut), []int{cut})
	}
	ones := make([]int, len(stream))
	for i := range ones {
		ones[i] = 1
	}
	check("a byte at a time", ones)
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var chunks []int
		for n := 0; n < len(stream); {
			k := 1 + r.IntN(40)
			chunks = append(chunks, k)
			n += k
		}
		check(fmt.Sprintf("chunks %v", chunks), chunks)
	}
}

// A bulk length over the limit is refused from its header alone, before
// the bytes it announces arrive.
func TestRESPDecoderRefusesBeforeWaiting(t *testing.T) {
	d := newRESPDecoder(1<<20, 8)
	_, _, err := d.next([]byte("*2\r\n$3\r\nGET\r\n$2000000\r\n"))
	if err == nil || err.Error() != "Protocol error: invalid bulk length: a bulk string of 2000000 bytes would take the command past 1048576 bytes (--max-request-bytes)" {
		t.Fatalf("a 2 MB bulk header under a 1 MiB limit: %v", err)
	}
	d = newRESPDecoder(1<<20, 8)
	if _, _, err := d.next([]byte("*1000000000\r\n")); err == nil {
		t.Fatal("an array of a billion elements was not refused at its header")
	}
	if len(d.args) != 0 || cap(d.args) > 8 {
		t.Errorf("the decoder allocated for the refused array: %d args, capacity %d", len(d.args), cap(d.args))
	}
}

func TestRESPEncoder(t *testing.T) {
	for _, tc := range []struct {
		got  []byte
		want string
	}{
		{appendRESPSimple(nil, "OK"), "+OK\r\n"},
		{appendRESPError(nil, "ERR bad\r\nthing"), "-ERR bad  thing\r\n"},
		{appendRESPInt(nil, -42), ":-42\r\n"},
		{appendRESPBulk(nil, ""), "$0\r\n\r\n"},
		{appendRESPBulk(nil, "a\r\nb"), "$4\r\na\r\nb\r\n"},
		{appendRESPNull(nil), "$-1\r\n"},
		{appendRESPArray(nil, 3), "*3\r\n"},
	} {
		if string(tc.got) != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestSplitInline(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"a", []string{"a"}, true},
		{`"\xZZ"`, []string{"xZZ"}, true},
		{`"a\"`, nil, false},
		{`'a\'b'`, []string{"a'b"}, true},
		{`'a\nb'`, []string{`a\nb`}, true},
		{`"" ''`, []string{"", ""}, true},
	} {
		got, err := splitInline([]byte(tc.in), nil, 16)
		ok := err == nil
		var gs []string
		for _, a := range got {
			gs = append(gs, string(a))
		}
		if ok != tc.ok || (ok && !reflect.DeepEqual(gs, tc.want)) {
			t.Errorf("splitInline(%q) = %q, %v; want %q, %v", tc.in, gs, ok, tc.want, tc.ok)
		}
	}
}

// FuzzRESPDecode feeds the decoder anything, in pieces cut where the input
// says: it must never panic, never claim more bytes than it was given, and
// every command it frames must frame again the same from its own encoding.
func FuzzRESPDecode(f *testing.F) {
	stream, _ := respStream()
	for _, s := range []string{
		string(stream),
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
		"PING\r\n",
		`set "a\x41" 'b'` + "\r\n",
		"*2\r\n$3\r\nGET\r\n$-1\r\n",
		"*1\r\n*1\r\n",
		"*99999999999999999999\r\n",
		"*1\r\n$3\r\nabcXY",
		"\r\n*0\r\n*-1\r\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		chunks := []int{int(cut) + 1, int(cut)/2 + 1, 7, 1}
		got, err := decodeAll(newRESPDecoder(256, 16), in, chunks)
		var pe respProtocolError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("a decoding error that is not a protocol error: %v", err)
		}
		for _, cmd := range got {
			if cmd == nil {
				continue
			}
			if len(cmd) > 16 {
				t.Fatalf("a command of %d arguments passed a limit of 16", len(cmd))
			}
			var enc []byte
			enc = appendRESPArray(enc, len(cmd))
			for _, a := range cmd {
				enc = appendRESPBulk(enc, a)
			}
			again, err := decodeAll(newRESPDecoder(1<<20, 16), enc, nil)
			if err != nil || len(again) != 1 || !reflect.DeepEqual(again[0], cmd) {
				t.Fatalf("%q re-encoded decodes as %q, %v", cmd, again, err)
			}
		}
		// The whole input at once frames the same commands as in pieces.
		whole, werr := decodeAll(newRESPDecoder(256, 16), in, nil)
		if (werr == nil) != (err == nil) || !reflect.DeepEqual(whole, got) {
			t.Fatalf("whole: %q, %v; in pieces: %q, %v", whole, werr, got, err)
		}
	})
}

func TestRESPProtocolErrorText(t *testing.T) {
	b := (&Host{}).respRefused(respProtocolError("invalid bulk length")).raw
	if !bytes.Equal(b, []byte("-ERR Protocol error: invalid bulk length\r\n")) {
		t.Errorf("got %q", b)
	}
}

// parseRESPInt's fast path answers as the general one (strconv.ParseInt
// with Redis's rules: no sign but a minus, no leading zero, no "-0") for
// any short string of digits, signs and other bytes, and at the bounds.
func TestParseRESPIntMatchesParseInt(t *testing.T) {
	check := func(t interface{ Fatalf(string, ...any) }, b []byte) {
		n, ok := parseRESPInt(b)
		wn, wok := parseRESPIntLong(b)
		if n != wn || ok != wok {
			t.Fatalf("parseRESPInt(%q) = %d, %v; want %d, %v", b, n, ok, wn, wok)
		}
	}
	for _, s := range []string{"", "-", "0", "-0", "00", "01", "-01", "1", "-1", "+1", " 1", "1 ",
		"999999999999999999", "-999999999999999999", "1000000000000000000",
		"9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809"} {
		check(t, []byte(s))
	}
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.SampledFrom([]byte("-+0123456789 x")), 0, 22).Draw(t, "b")
		check(t, b)
	})
}

// SET's options parse as Redis 7.0 parses them (checked against
// redis-server 7.0.15): NX or XX and one expiry option, in any order and
// case; a syntax error before a bad number; Redis's words for each error.
func TestParseSetOptions(t *testing.T) {
	const now = int64(1_700_000_000_000) // Unix ms
	const (
		syntax  = "ERR syntax error"
		notInt  = "ERR value is not an integer or out of range"
		invalid = "ERR invalid expire time in 'set' command"
		tooLong = invalid + ": over dkv's limit of ten years (EX 315360000, PX 315360000000)"
	)
	for _, tc := range []struct {
		opts string
		want respSetOptions
		msg  string
	}{
		{"NX", respSetOptions{ifAbsent: true}, ""},
		{"xx", respSetOptions{ifExists: true}, ""},
		{"nx NX", respSetOptions{ifAbsent: true}, ""}, // Redis takes a repeat
		{"EX 10", respSetOptions{ttlMs: 10_000}, ""},
		{"ex 10", respSetOptions{ttlMs: 10_000}, ""},
		{"PX 50", respSetOptions{ttlMs: 50}, ""},
		{"px 1", respSetOptions{ttlMs: 1}, ""},
		{"EXAT 1700000010", respSetOptions{ttlMs: 10_000}, ""},
		{"PXAT 1700000000050", respSetOptions{ttlMs: 50}, ""},
		{"ExAt 1700000000", respSetOptions{ttlMs: 1}, ""},    // now: passed, deleted at once
		{"EXAT 1", respSetOptions{ttlMs: 1}, ""},             // long passed
		{"PXAT 1699999999999", respSetOptions{ttlMs: 1}, ""}, // a millisecond ago
		{"NX EX 30", respSetOptions{ifAbsent: true, ttlMs: 30_000}, ""},
		{"PX 100 NX", respSetOptions{ifAbsent: true, ttlMs: 100}, ""},
		{"xx pxat 1700000001000", respSetOptions{ifExists: true, ttlMs: 1000}, ""},
		{"EX 10 EX 20", respSetOptions{ttlMs: 20_000}, ""}, // Redis: the last one wins
		{"EX 315360000", respSetOptions{ttlMs: core.TTLMsMax}, ""},
		{"PX 315360000000", respSetOptions{ttlMs: core.TTLMsMax}, ""},
		{"PXAT 2015360000000", respSetOptions{ttlMs: core.TTLMsMax}, ""},

		{"NX XX", respSetOptions{}, syntax},
		{"XX NX", respSetOptions{}, syntax},
		{"EX 10 PX 100", respSetOptions{}, syntax},
		{"PX 100 EXAT 1700000010", respSetOptions{}, syntax},
		{"EXAT 1700000010 PXAT 1700000010000", respSetOptions{}, syntax},
		{"EX", respSetOptions{}, syntax},
		{"NX PX", respSetOptions{}, syntax},
		{"EX abc NX XX", respSetOptions{}, syntax}, // the syntax first, as in Redis
		{"EX 10 EX", respSetOptions{}, syntax},
		{"EX abc", respSetOptions{}, notInt},
		{"EX 1.5", respSetOptions{}, notInt},
		{"EX +10", respSetOptions{}, notInt},
		{"EX 010", respSetOptions{}, notInt},
		{"EX NX", respSetOptions{}, notInt}, // EX takes the next word as its number
		{"PX 99999999999999999999", respSetOptions{}, notInt},
		{"EX 0", respSetOptions{}, invalid},
		{"EX -1", respSetOptions{}, invalid},
		{"PX 0", respSetOptions{}, invalid},
		{"EXAT 0", respSetOptions{}, invalid},
		{"PXAT -5", respSetOptions{}, invalid},
		{"EX 9223372036854776", respSetOptions{}, invalid},    // seconds past an int64 of ms
		{"PX 9223372036854775807", respSetOptions{}, invalid}, // now + ms overflows
		{"EXAT 99999999999999999", respSetOptions{}, invalid}, // past an int64 of ms
		{"EX 315360001", respSetOptions{}, tooLong},
		{"PX 315360000001", respSetOptions{}, tooLong},
		{"EXAT 2015360001", respSetOptions{}, tooLong},
		{"PXAT 9223372036854775807", respSetOptions{}, tooLong}, // Redis takes it; dkv's limit
		{"NX EX 9999999999", respSetOptions{}, tooLong},
	} {
		var opts [][]byte
		for _, w := range strings.Fields(tc.opts) {
			opts = append(opts, []byte(w))
		}
		got, msg := parseSetOptions(opts, now)
		if msg != tc.msg || (msg == "" && got != tc.want) {
			t.Errorf("SET k v %s: %+v, %q; want %+v, %q", tc.opts, got, msg, tc.want, tc.msg)
		}
	}
}

// KEEPTTL, GET and words that are no option are refused, naming the option
// and the options dkv takes.
func TestSetOptionErrors(t *testing.T) {
	const takes = "; SET takes a key, a value, NX or XX, and one of EX seconds, PX milliseconds, EXAT unix-time-seconds, PXAT unix-time-milliseconds"
	for _, tc := range []struct{ opts, want string }{
		{"KEEPTTL", "ERR dkv does not support SET option 'KEEPTTL': every SET replaces the key's expiry (with EX, PX, EXAT or PXAT, or none)" + takes},
		{"EX 10 keepttl", "ERR dkv does not support SET option 'KEEPTTL': every SET replaces the key's expiry (with EX, PX, EXAT or PXAT, or none)" + takes},
		{"NX get", "ERR dkv does not support SET option 'GET': SET does not return the old value" + takes},
		{"foo", "ERR dkv does not support SET option 'FOO'" + takes},
		{"NX persistent", "ERR dkv does not support SET option 'PERSISTENT'" + takes},
	} {
		var opts [][]byte
		for _, w := range strings.Fields(tc.opts) {
			opts = append(opts, []byte(w))
		}
		if _, msg := parseSetOptions(opts, 0); msg != tc.want {
			t.Errorf("SET k v %s: %q, want %q", tc.opts, msg, tc.want)
		}
	}
}

// SETEX's and PSETEX's argument: Redis's errors, named after the command.
func TestRESPExpireTTL(t *testing.T) {
	const now = int64(1_700_000_000_000)
	for _, tc := range []struct {
		cmd, arg string
		unit     respTimeUnit
		want     uint64
		msg      string
	}{
		{"setex", "10", respSeconds, 10_000, ""},
		{"psetex", "10", respMilliseconds, 10, ""},
		{"setex", "0", respSeconds, 0, "ERR invalid expire time in 'setex' command"},
		{"psetex", "-5", respMilliseconds, 0, "ERR invalid expire time in 'psetex' command"},
		{"setex", "abc", respSeconds, 0, "ERR value is not an integer or out of range"},
		{"setex", "315360001", respSeconds, 0, "ERR invalid expire time in 'setex' command: over dkv's limit of ten years (EX 315360000, PX 315360000000)"},
	} {
		got, msg := respExpireTTL(tc.cmd, []byte(tc.arg), tc.unit, false, now)
		if got != tc.want || msg != tc.msg {
			t.Errorf("%s k %s v: %d, %q; want %d, %q", tc.cmd, tc.arg, got, msg, tc.want, tc.msg)
		}
	}
}

// TTL and PTTL replies from the node's ttl response: -2 for a missing key,
// -1 without a deadline, else the time left, TTL's rounded to the nearest
// second as Redis rounds it ((ms+500)/1000); and INFO's expires count.
func TestRESPTTLReplies(t *testing.T) {
	ms := func(v uint64) core.Response { return core.Response{OK: true, TTLMs: &v} }
	for _, tc := range []struct {
		kind respKind
		resp core.Response
		want string
	}{
		{respTTL, core.NotFoundResponse("k"), ":-2\r\n"},
		{respPTTL, core.NotFoundResponse("k"), ":-2\r\n"},
		{respTTL, core.OKResponse(), ":-1\r\n"},
		{respPTTL, core.OKResponse(), ":-1\r\n"},
		{respTTL, ms(0), ":0\r\n"}, // the deadline passed; the delete not yet applied
		{respPTTL, ms(0), ":0\r\n"},
		{respTTL, ms(499), ":0\r\n"},
		{respTTL, ms(500), ":1\r\n"},
		{respTTL, ms(1499), ":1\r\n"},
		{respTTL, ms(1500), ":2\r\n"},
		{respTTL, ms(core.TTLMsMax), ":315360000\r\n"},
		{respPTTL, ms(1499), ":1499\r\n"},
		{respPTTL, ms(core.TTLMsMax), ":315360000000\r\n"},
		{respTTL, core.ErrorResponse(core.CodeNotImplemented, "a mesh does not expire keys"), "-ERR not_implemented: a mesh does not expire keys\r\n"},
	} {
		s := &slot{kind: tc.kind, resp: tc.resp, filled: true}
		if got := (&conn{}).appendRESPResponse(nil, s); string(got) != tc.want {
			t.Errorf("kind %d, %+v: %q, want %q", tc.kind, tc.resp, got, tc.want)
		}
	}
	info := (&Host{}).info("keyspace", &core.Status{Keys: 7, Expiring: 3})
	if info != "# Keyspace\r\ndb0:keys=7,expires=3,avg_ttl=0\r\n" {
		t.Errorf("INFO keyspace = %q", info)
	}
}
