package main

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"dkv/client/clienttest"
	"dkv/core"
	"dkv/internal/servetest"
	"dkv/realnet"
)

// incr and decr against a real single node: a counter made, moved both
// ways and read back, a key that is no counter and a sum that overflows
// (exit 1, nothing written), and a counter's deadline kept.
func TestIncrCommands(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	run := kvAt(t, addr)
	says := saysAt(t, run)
	refused := func(code string, args ...string) {
		t.Helper()
		exit, out, stderr := run(args...)
		if exit != exitError || out != "" || !strings.Contains(stderr, "server error "+code+": ") || !strings.Contains(stderr, "nothing was written") {
			t.Fatalf("kv %q: exit %d, stdout %q, stderr %q; want 1 and %s", args, exit, out, stderr, code)
		}
	}

	says("1", "incr", "hits")
	says("6", "incr", "hits", "5")
	says("-4", "incr", "hits", "-10")
	says("-4", "incr", "hits", "0")
	says("-5", "decr", "hits")
	// "--" ends the flags, as for set and delete: the key comes after it.
	says("-3", "incr", "--", "hits", "2")
	says("-2", "incr", "--", "hits")
	says("7", "incr", "--", "--", "7") // a key named "--"
	says("-5", "incr", "--", "hits", "-3")
	says("-2", "decr", "hits", "-3")
	says("-9", "decr", "hits", "7")
	says("-9", "get", "hits")
	// A key that starts with "-" (incr takes no flags), and a DELTA with
	// a plus sign.
	says("1", "incr", "-dash")
	says("3", "incr", "-dash", "+2")

	says("OK", "set", "word", "abc")
	refused("not_integer", "incr", "word")
	refused("not_integer", "decr", "word", "0")
	says("abc", "get", "word")
	says("OK", "set", "max", "9223372036854775807")
	refused("overflow", "incr", "max")
	says("0", "incr", "max", "-9223372036854775807")
	says("-9223372036854775807", "decr", "max", "9223372036854775807")
	says("-9223372036854775808", "decr", "max")
	refused("overflow", "decr", "max")
	says("-9223372036854775808", "get", "max")

	says("OK", "set", "--ttl", "1h", "leased", "7")
	says("8", "incr", "leased")
	code, out, stderr := run("ttl", "leased")
	if d, err := time.ParseDuration(strings.TrimSuffix(out, "\n")); code != exitOK || err != nil || d < 59*time.Minute || d > time.Hour {
		t.Fatalf("ttl of a counter set with --ttl 1h: exit %d, stdout %q, stderr %q; want its deadline kept", code, out, stderr)
	}
}

// A DELTA that is no int64, a decr whose DELTA has no negative and the
// wrong number of arguments are usage errors, and nothing reaches the
// server.
func TestIncrUsageErrors(t *testing.T) {
	srv := clienttest.NewServer(t)
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"incr"}, "incr takes 1 or 2 arguments: kv incr KEY [DELTA]"},
		{[]string{"incr", "k", "1", "2"}, "incr takes 1 or 2 arguments"},
		{[]string{"decr"}, "decr takes 1 or 2 arguments: kv decr KEY [DELTA]"},
		{[]string{"incr", "k", "x"}, `incr: DELTA "x" is not an integer in the int64 range (5, -5)`},
		{[]string{"incr", "k", "1.5"}, `incr: DELTA "1.5" is not an integer`},
		{[]string{"incr", "k", ""}, `incr: DELTA "" is not an integer`},
		{[]string{"incr", "k", "9223372036854775808"}, `incr: DELTA "9223372036854775808" is not an integer in the int64 range`},
		{[]string{"decr", "k", "-9223372036854775809"}, `decr: DELTA "-9223372036854775809" is not an integer in the int64 range`},
		{[]string{"decr", "k", "-9223372036854775808"}, "decr: DELTA -9223372036854775808 has no negative in the int64 range"},
	} {
		code, stdout, stderr := kv(t, append([]string{"--addr", srv.Addr}, tc.args...)...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.wantErr) {
			t.Errorf("kv %q: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, stdout, stderr, exitUsage, tc.wantErr)
		}
	}
	if n := srv.Accepted(); n != 0 {
		t.Errorf("the usage errors made %d connections to the server; want none", n)
	}
	code, stdout, _ := kv(t, "help")
	for _, want := range []string{"\n  incr KEY [DELTA] ", "\n  decr KEY [DELTA] ", "kv incr hits ", "kv incr hits -5 ", "kv decr hits "} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("kv help: exit %d; want the usage text to say %q", code, want)
		}
	}
}

// With --addrs, incr and decr go to the leader as writes of the session,
// with their delta (decr's negated).
func TestIncrAgainstFakeCluster(t *testing.T) {
	leader, addrs := fakeCluster(t)
	mustRun := runAt(t, addrs)
	mustRun("1\n", "incr", "hits")
	mustRun("-4\n", "incr", "hits", "-5")
	mustRun("-5\n", "decr", "hits")
	mustRun("5\n", "decr", "hits", "-10")
	mustRun("OK\n", "set", "w", "x")
	if code, out, stderr := kv(t, "--addrs", addrs, "incr", "w"); code != exitError || out != "" || !strings.Contains(stderr, "not_integer") {
		t.Fatalf("incr of a word: exit %d, stdout %q, stderr %q; want 1 and not_integer", code, out, stderr)
	}
	if got := leader.Data(); got["hits"] != "5" || got["w"] != "x" {
		t.Fatalf("leader data = %v; want hits 5 and w x", got)
	}
	var sent []string
	for _, req := range leader.Requests() {
		if req.Op != core.OpIncr {
			continue
		}
		if req.ClientID == 0 || req.Seq != 1 || req.Delta == nil {
			t.Fatalf("incr %+v reached the leader without a session or a delta", req)
		}
		sent = append(sent, req.Key+" "+strconv.FormatInt(*req.Delta, 10))
	}
	if want := "hits 1,hits -5,hits -1,hits 10,w 1"; strings.Join(sent, ",") != want {
		t.Fatalf("the leader got %q; want %q", sent, want)
	}
}

// An incr whose connection breaks after it left is sent once, exit 1, and
// the message says that reading the key back does not settle it (not a
// set's hint, which says it does).
func TestIncrOutcomeUnknown(t *testing.T) {
	// Answers kv's ping; the incr it reads, it drops unanswered, as a
	// crash would.
	var incrs atomic.Int32
	addr := dropsWrites(t, &incrs)
	code, out, stderr := kv(t, "--addr", addr, "incr", "hits")
	if code != exitUnknownOutcome || out != "" || !strings.Contains(stderr, "outcome unknown") || !strings.Contains(stderr, "\n(the incr may or may not have applied, and reading the key back cannot tell") {
		t.Fatalf("incr over a connection that breaks: exit %d, stdout %q, stderr %q; want 4 and the counter's hint", code, out, stderr)
	}
	if strings.Contains(stderr, "read the key back to learn whether") {
		t.Fatalf("stderr %q gives a set's hint to an incr", stderr)
	}
	if n := incrs.Load(); n != 1 {
		t.Fatalf("the server read the incr %d times; want once", n)
	}
}
