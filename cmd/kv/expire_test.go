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

// expire and persist against a real single node: a deadline given, moved
// and taken away, a missing key (exit 1, as get's), and a key that goes
// at the deadline its expire gave it.
func TestExpireAndPersistCommands(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	run := kvAt(t, addr)
	says := saysAt(t, run)
	left := func(key string, lo, hi time.Duration) {
		t.Helper()
		code, out, stderr := run("ttl", key)
		d, err := time.ParseDuration(strings.TrimSuffix(out, "\n"))
		if code != exitOK || err != nil || d < lo || d > hi {
			t.Fatalf("ttl %s: exit %d, stdout %q, stderr %q; want a duration in %v..%v", key, code, out, stderr, lo, hi)
		}
	}
	missing := func(args ...string) {
		t.Helper()
		key := args[1]
		if code, out, stderr := run(args...); code != exitError || out != "" || stderr != "not found: "+key+"\n" {
			t.Fatalf("kv %q: exit %d, stdout %q, stderr %q; want 1 and not found", args, code, out, stderr)
		}
	}

	says("OK", "set", "k", "v")
	says("OK", "expire", "k", "1h")
	left("k", 59*time.Minute, time.Hour)
	says("v", "get", "k")
	says("OK", "expire", "k", "1500ms")
	left("k", 0, 1500*time.Millisecond)
	says("OK (deadline removed)", "persist", "k")
	says("no expiry", "ttl", "k")
	says("OK (no deadline to remove)", "persist", "k")
	says("v", "get", "k")
	// Of a set's own deadline too, and of a key that starts with "-".
	says("OK", "set", "--ttl", "1h", "--", "-dash", "v")
	says("OK (deadline removed)", "persist", "-dash")
	says("OK", "expire", "-dash", "2h")
	left("-dash", 119*time.Minute, 2*time.Hour)

	// A missing key: exit 1, and neither command makes it.
	missing("expire", "nope", "1h")
	missing("persist", "nope")
	missing("get", "nope")

	// The deadline holds: the key goes, then is missing to both.
	says("OK", "set", "short", "v")
	says("OK", "expire", "short", "50ms")
	for began := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		code, out, stderr := run("get", "short")
		if code == exitError && stderr == "not found: short\n" {
			break
		}
		if code != exitOK || out != "v\n" {
			t.Fatalf("get short while it lives: exit %d, stdout %q, stderr %q", code, out, stderr)
		}
		if time.Since(began) > 5*time.Second {
			t.Fatal("short is still there 5 s after its expire of 50ms")
		}
	}
	missing("expire", "short", "1h")
	missing("persist", "short")
}

// A DURATION that no set --ttl takes, and the wrong number of arguments,
// are usage errors, and nothing reaches the server.
func TestExpireAndPersistUsageErrors(t *testing.T) {
	srv := clienttest.NewServer(t)
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"expire", "k", "0s"}, "expire's DURATION must be at least 1ms, got 0s"},
		{[]string{"expire", "k", "999us"}, "expire's DURATION must be at least 1ms, got 999µs"},
		{[]string{"expire", "k", "-5s"}, "expire's DURATION must be at least 1ms, got -5s"},
		{[]string{"expire", "k", "87601h"}, "expire's DURATION must be at most ten years (87600h0m0s), got 87601h0m0s"},
		{[]string{"expire", "k", "30"}, `expire: DURATION "30" is not a duration (30s, 1500ms, 2h)`},
		{[]string{"expire", "k", "soon"}, `expire: DURATION "soon" is not a duration`},
		{[]string{"expire", "k"}, "expire takes 2 argument(s): kv expire KEY DURATION"},
		{[]string{"expire"}, "expire takes 2 argument(s)"},
		{[]string{"expire", "k", "1s", "x"}, "expire takes 2 argument(s)"},
		{[]string{"persist"}, "persist takes 1 argument(s): kv persist KEY"},
		{[]string{"persist", "a", "b"}, "persist takes 1 argument(s)"},
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
	for _, want := range []string{"\n  expire KEY DURATION ", "\n  persist KEY ", "kv expire session:7 1h ", "kv persist session:7 "} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("kv help: exit %d; want the usage text to say %q", code, want)
		}
	}
}

// With --addrs, expire and persist go to the leader as writes of the
// session, expire's ttl_ms in whole milliseconds; the fake leader's clock
// stands still until the test moves it.
func TestExpireAndPersistAgainstFakeCluster(t *testing.T) {
	leader, addrs := fakeCluster(t)
	advance := leader.StopClock(time.Unix(1_700_000_000, 0))
	mustRun := runAt(t, addrs)
	notFound := func(args ...string) {
		t.Helper()
		if code, out, stderr := kv(t, append([]string{"--addrs", addrs}, args...)...); code != exitError || out != "" || stderr != "not found: k\n" {
			t.Fatalf("kv %q: exit %d, stdout %q, stderr %q; want 1 and not found", args, code, out, stderr)
		}
	}
	mustRun("OK\n", "set", "k", "v")
	mustRun("OK\n", "expire", "k", "30s")
	advance(500 * time.Millisecond)
	mustRun("29.5s\n", "ttl", "k")
	mustRun("OK (deadline removed)\n", "persist", "k")
	advance(time.Hour)
	mustRun("no expiry\n", "ttl", "k")
	mustRun("OK (no deadline to remove)\n", "persist", "k")
	mustRun("OK\n", "expire", "k", "1500us")
	mustRun("2ms\n", "ttl", "k")
	advance(2 * time.Millisecond)
	notFound("get", "k")
	notFound("expire", "k", "1s")
	notFound("persist", "k")
	if got := leader.Data(); len(got) != 0 {
		t.Fatalf("leader data = %v; want none", got)
	}
	var sent []string
	for _, req := range leader.Requests() {
		switch req.Op {
		case core.OpExpire, core.OpPersist:
			if req.ClientID == 0 || req.Seq != 1 {
				t.Fatalf("%s %+v reached the leader without a session", req.Op, req)
			}
			sent = append(sent, req.Op+" "+time.Duration(req.TTLMs*uint64(time.Millisecond)).String())
		}
	}
	if want := "expire 30s,persist 0s,persist 0s,expire 2ms,expire 1s,persist 0s"; strings.Join(sent, ",") != want {
		t.Fatalf("the leader got %q; want %q", sent, want)
	}
}
