package main

import (
	"strings"
	"testing"
	"time"

	"dkv/client/clienttest"
	"dkv/core"
	"dkv/internal/servetest"
	"dkv/realnet"
)

// set --ttl and ttl against a real single node: a key that expires, one
// without a deadline, a missing one, and --ttl with each condition.
func TestTTLCommands(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	run := kvAt(t, addr)
	ok := func(args ...string) {
		t.Helper()
		if code, out, stderr := run(args...); code != exitOK || out != "OK\n" || stderr != "" {
			t.Fatalf("kv %q: exit %d, stdout %q, stderr %q; want 0 and OK", args, code, out, stderr)
		}
	}
	left := func(key string, lo, hi time.Duration) {
		t.Helper()
		code, out, stderr := run("ttl", key)
		d, err := time.ParseDuration(strings.TrimSuffix(out, "\n"))
		if code != exitOK || err != nil || !strings.HasSuffix(out, "\n") || d < lo || d > hi {
			t.Fatalf("ttl %s: exit %d, stdout %q, stderr %q; want a duration in %v..%v", key, code, out, stderr, lo, hi)
		}
	}
	noExpiry := func(key string) {
		t.Helper()
		if code, out, stderr := run("ttl", key); code != exitOK || out != "no expiry\n" {
			t.Fatalf("ttl %s: exit %d, stdout %q, stderr %q; want \"no expiry\"", key, code, out, stderr)
		}
	}
	missing := func(cmd, key string) {
		t.Helper()
		if code, out, stderr := run(cmd, key); code != exitError || out != "" || stderr != "not found: "+key+"\n" {
			t.Fatalf("%s %s: exit %d, stdout %q, stderr %q; want 1 and not found", cmd, key, code, out, stderr)
		}
	}

	ok("set", "--ttl", "1h", "k", "v")
	left("k", 59*time.Minute, time.Hour)
	ok("set", "k", "v")
	noExpiry("k")
	missing("ttl", "nope")
	ok("set", "--ttl=1500ms", "--", "-dash", "v")
	left("-dash", 0, 1500*time.Millisecond)

	// A key that expires, polled until it is gone.
	ok("set", "--ttl", "50ms", "short", "v")
	for began := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		code, out, stderr := run("get", "short")
		if code == exitError && stderr == "not found: short\n" {
			break
		}
		if code != exitOK || out != "v\n" {
			t.Fatalf("get short while it lives: exit %d, stdout %q, stderr %q", code, out, stderr)
		}
		if time.Since(began) > 5*time.Second {
			t.Fatal("short is still there 5 s after its 50ms ttl")
		}
	}
	missing("ttl", "short")

	// A lease: taken with --if-absent, refused to another (exit 3),
	// renewed by its holder with --if-value.
	ok("set", "--if-absent", "--ttl", "10s", "lock", "me")
	left("lock", 9*time.Second, 10*time.Second)
	code, out, stderr := run("set", "--ttl", "1h", "--if-absent", "lock", "you")
	if code != exitConditionFailed || out != "" || stderr != `condition failed (--if-absent): nothing was written; key "lock" holds "me"`+"\n" {
		t.Fatalf("a second set --if-absent --ttl: exit %d, stdout %q, stderr %q; want 3 and the holder", code, out, stderr)
	}
	left("lock", 0, 10*time.Second)
	ok("set", "--if-value", "me", "--ttl", "1h", "lock", "me")
	left("lock", 59*time.Minute, time.Hour)
	ok("set", "--if-exists", "--ttl", "2h", "lock", "me")
	left("lock", 119*time.Minute, 2*time.Hour)
	ok("set", "--if-exists", "lock", "me") // without --ttl: for good
	noExpiry("lock")
}

// --ttl that no set may carry, --ttl on a delete, and ttl without one KEY
// are usage errors, and nothing reaches the server.
func TestTTLUsageErrors(t *testing.T) {
	srv := clienttest.NewServer(t)
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"set", "--ttl", "0s", "k", "v"}, "--ttl must be at least 1ms, got 0s"},
		{[]string{"set", "--ttl", "999us", "k", "v"}, "--ttl must be at least 1ms, got 999µs"},
		{[]string{"set", "--ttl", "-5s", "k", "v"}, "--ttl must be at least 1ms, got -5s"},
		{[]string{"set", "--ttl", "87601h", "k", "v"}, "--ttl must be at most ten years (87600h0m0s), got 87601h0m0s"},
		{[]string{"set", "--ttl", "30", "k", "v"}, `invalid value "30" for flag -ttl: not a duration: give it with its unit, as 30s, 1500ms, 2h`},
		{[]string{"set", "--ttl", "k", "v"}, `invalid value "k" for flag -ttl`},
		{[]string{"set", "--ttl", "1s", "k"}, "set takes 2 argument(s)"},
		{[]string{"set", "--ttl", "1s", "--if-absent", "--if-exists", "k", "v"}, "set takes one condition at most, got --if-absent and --if-exists"},
		{[]string{"delete", "--ttl", "1s", "k"}, "delete takes no --ttl"},
		{[]string{"delete", "--if-value", "v", "--ttl", "1s", "k"}, "delete takes no --ttl"},
		{[]string{"ttl"}, "ttl takes 1 argument(s): kv ttl KEY"},
		{[]string{"ttl", "a", "b"}, "ttl takes 1 argument(s)"},
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
	for _, want := range []string{"set [--ttl D] [--if-absent", "ttl KEY ", "kv set --ttl 30s "} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("kv help: exit %d; want the usage text to say %q", code, want)
		}
	}
}

// With --addrs, set --ttl goes to the leader as a write of the session,
// with its ttl_ms in whole milliseconds, and ttl as a read; the fake
// leader's clock stands still until the test moves it.
func TestTTLAgainstFakeCluster(t *testing.T) {
	leader, addrs := fakeCluster(t)
	advance := leader.StopClock(time.Unix(1_700_000_000, 0))
	mustRun := runAt(t, addrs)
	mustRun("OK\n", "set", "--ttl", "30s", "k", "v")
	mustRun("30s\n", "ttl", "k")
	advance(500 * time.Millisecond)
	mustRun("29.5s\n", "ttl", "k")
	mustRun("OK\n", "set", "--if-absent", "--ttl", "1500us", "lock", "me")
	mustRun("2ms\n", "ttl", "lock")
	mustRun("OK\n", "set", "plain", "v")
	mustRun("no expiry\n", "ttl", "plain")
	advance(30 * time.Second)
	if code, _, stderr := kv(t, "--addrs", addrs, "ttl", "k"); code != exitError || stderr != "not found: k\n" {
		t.Fatalf("ttl of an expired key: exit %d, stderr %q; want 1 and not found", code, stderr)
	}
	if got := leader.Data(); len(got) != 1 || got["plain"] != "v" {
		t.Fatalf("leader data = %v; want plain alone", got)
	}
	var sent []string
	for _, req := range leader.Requests() {
		switch req.Op {
		case core.OpSet:
			if req.ClientID == 0 || req.Seq != 1 {
				t.Fatalf("set %+v reached the leader without a session", req)
			}
			sent = append(sent, req.Key+" "+req.Condition().String()+" "+time.Duration(req.TTLMs*uint64(time.Millisecond)).String())
		case core.OpTTL:
			if req.ClientID != 0 || req.Seq != 0 {
				t.Fatalf("ttl %+v carries a session; it is a read", req)
			}
		}
	}
	if want := "k unconditional 30s,lock if_absent 2ms,plain unconditional 0s"; strings.Join(sent, ",") != want {
		t.Fatalf("the leader got sets %q; want %q", sent, want)
	}
}
