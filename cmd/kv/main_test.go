package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-json-experiment/json"

	"dkv/client/clienttest"
	"dkv/core"
)

// kv runs the command line and returns its exit code and output.
func kv(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// kvAt is kv against the server at addr.
func kvAt(t *testing.T, addr string) func(args ...string) (int, string, string) {
	return func(args ...string) (int, string, string) {
		t.Helper()
		return kv(t, append([]string{"--addr", addr}, args...)...)
	}
}

// saysAt returns a check that run with args exits 0, printing want and a
// line break and nothing on stderr.
func saysAt(t *testing.T, run func(args ...string) (int, string, string)) func(want string, args ...string) {
	return func(want string, args ...string) {
		t.Helper()
		if code, out, stderr := run(args...); code != exitOK || out != want+"\n" || stderr != "" {
			t.Fatalf("kv %q: exit %d, stdout %q, stderr %q; want 0 and %q", args, code, out, stderr, want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{nil, "Commands:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"set", "k"}, "set takes 2 argument(s)"},
		{[]string{"set", "k", "v", "extra"}, "set takes 2 argument(s)"},
		{[]string{"get"}, "get takes 1 argument(s)"},
		{[]string{"delete", "a", "b"}, "delete takes 1 argument(s)"},
		{[]string{"ping", "x"}, "ping takes 0 argument(s)"},
		{[]string{"bulk-set"}, "bulk-set takes KEY VALUE pairs"},
		{[]string{"bulk-set", "k1", "v1", "k2"}, "got 3 arguments"},
		{[]string{"bulk-set", "--file", "/nonexistent/items.json"}, "no such file"},
		{[]string{"bulk-set", "--file", "x.json", "k", "v"}, "not both"},
		{[]string{"--bogus", "ping"}, "flag provided but not defined: -bogus"},
		{[]string{"--port", "0", "ping"}, "--port must be in 1..65535"},
		{[]string{"--timeout", "0s", "ping"}, "--timeout must be positive"},
		{[]string{"--addrs", "127.0.0.1:1,127.0.0.1:2", "--port", "5", "ping"}, "does not go with --port"},
		{[]string{"--addr", "127.0.0.1:1", "--addrs", "127.0.0.1:2", "ping"}, "does not go with --addr"},
		{[]string{"--addrs", "127.0.0.1:1,,127.0.0.1:2", "ping"}, `"" is not HOST:PORT`},
		{[]string{"--addrs", "127.0.0.1", "ping"}, `"127.0.0.1" is not HOST:PORT`},
		{[]string{"--addrs", "127.0.0.1:1,127.0.0.1:", "ping"}, `"127.0.0.1:" is not HOST:PORT`},
		{[]string{"--addr", "127.0.0.1", "ping"}, `--addr takes HOST:PORT: "127.0.0.1" is not HOST:PORT`},
		{[]string{"--addr", "127.0.0.1:", "ping"}, `"127.0.0.1:" is not HOST:PORT`},
		{[]string{"--port", "1", "set", "k\xff", "v"}, `"k\xff" is not UTF-8 text`},
		{[]string{"--port", "1", "set", "--if-value", "\xfe", "k", "v"}, `"\xfe" is not UTF-8 text`},
		{[]string{"--port", "1", "bulk-get", "a", "b\xff"}, `"b\xff" is not UTF-8 text`},
		{[]string{"--port", "1", "scan", "--all", "--limit", "2"}, "--limit N or --all, not both"},
		{[]string{"--port", "1", "bulk-set", "--file", "/nonexistent/\xff.json"}, "no such file"}, // a file's name may be any bytes
	} {
		code, stdout, stderr := kv(t, tc.args...)
		if code != exitUsage {
			t.Errorf("kv %q: exit %d; want %d (stderr %q)", tc.args, code, exitUsage, stderr)
		}
		if !strings.Contains(stderr, tc.wantErr) {
			t.Errorf("kv %q: stderr %q; want it to mention %q", tc.args, stderr, tc.wantErr)
		}
		if stdout != "" {
			t.Errorf("kv %q: stdout %q; want nothing", tc.args, stdout)
		}
	}
}

func TestHelp(t *testing.T) {
	// A command's -h or --help, where its flags go, asks for it too (it
	// said "scan: flag: help requested", exit 2); nothing is sent.
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"},
		{"set", "--help"}, {"set", "--ttl", "1s", "-h"}, {"delete", "-help"}, {"scan", "--help"},
		{"load", "-h"}, {"bulk-set", "--help"}, {"search", "--help"}, {"similar", "-h"}} {
		code, stdout, stderr := kv(t, append([]string{"--port", "1"}, args...)...)
		if code != exitOK || !strings.Contains(stdout, "Examples:") || stderr != "" {
			t.Errorf("kv %q: exit %d, stdout %q, stderr %q; want the usage text", args, code, stdout, stderr)
		}
	}
	// After KEY, or "--", it is an argument like any other.
	srv := clienttest.NewServer(t)
	saysAt(t, kvAt(t, srv.Addr))("OK", "set", "k", "--help")
	if v := srv.Data()["k"]; v != "--help" {
		t.Fatalf("k holds %q; want --help", v)
	}
}

func TestCommandsAgainstFakeServer(t *testing.T) {
	srv := clienttest.NewServer(t)
	host, port, _ := net.SplitHostPort(srv.Addr)

	mustRun := func(wantStdout string, args ...string) {
		t.Helper()
		code, stdout, stderr := kv(t, append([]string{"--host", host, "--port", port}, args...)...)
		if code != exitOK || stdout != wantStdout {
			t.Fatalf("kv %q: exit %d, stdout %q, stderr %q; want 0 and %q", args, code, stdout, stderr, wantStdout)
		}
	}
	mustRun("OK\n", "set", "hello", "world with spaces")
	mustRun("world with spaces\n", "get", "hello")
	mustRun("pong\n", "ping")
	mustRun("OK\n", "delete", "hello")

	code, stdout, stderr := kv(t, "--addr", srv.Addr, "get", "hello")
	if code != exitError || stdout != "" || stderr != "not found: hello\n" {
		t.Fatalf("get of a deleted key: exit %d, stdout %q, stderr %q; want 1 and \"not found: hello\"", code, stdout, stderr)
	}

	mustRun("OK\n", "bulk-set", "k1", "v1", "k2", "v2")
	file := filepath.Join(t.TempDir(), "items.json")
	if err := os.WriteFile(file, []byte(`[{"key":"k3","value":"v3"},{"key":"k4","value":"v4"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun("OK\n", "bulk-set", "--file", file)
	want := map[string]string{"k1": "v1", "k2": "v2", "k3": "v3", "k4": "v4"}
	if got := srv.Data(); len(got) != len(want) {
		t.Fatalf("server data = %v; want %v", got, want)
	}
	for k, v := range want {
		mustRun(v+"\n", "get", k)
	}
	// The bulk-sets arrived as one request each: all or nothing.
	bulks := 0
	for _, req := range srv.Requests() {
		if req.Op == core.OpBulkSet {
			bulks++
		}
	}
	if bulks != 2 {
		t.Fatalf("server received %d bulk_set requests; want 2", bulks)
	}

	code, stdout, stderr = kv(t, "--addr", srv.Addr, "status")
	var st core.Status
	if code != exitOK || json.Unmarshal([]byte(stdout), &st) != nil || st.Keys != 4 || !strings.Contains(stdout, "\n  \"keys\": 4") {
		t.Fatalf("status: exit %d, stdout %q, stderr %q; want indented JSON with keys 4", code, stdout, stderr)
	}

	// A server-side refusal is exit 1, with the server's message.
	code, _, stderr = kv(t, "--addr", srv.Addr, "set", "", "v")
	if code != exitError || !strings.Contains(stderr, "bad_request") {
		t.Fatalf("set with an empty key: exit %d, stderr %q; want 1 and bad_request", code, stderr)
	}
}

func TestServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, _, stderr := kv(t, "--addr", addr, "--timeout", "2s", "ping")
	if code != exitError || !strings.Contains(stderr, "is the server running?") {
		t.Fatalf("ping of a closed port: exit %d, stderr %q; want 1 and a hint", code, stderr)
	}
}

// A write whose answer never comes exits 4, apart from a refusal's 1, so
// that a script does not take it for one and write again; a read that
// fails so exits 1 (it can be repeated freely).
func TestUnknownOutcomeExits4(t *testing.T) {
	// Answers kv's ping, then reads the write and drops the connection
	// unanswered.
	addr := dropsWrites(t, new(atomic.Int32))
	code, _, stderr := kv(t, "--addr", addr, "--timeout", "2s", "set", "k", "v")
	if code != exitUnknownOutcome || !strings.Contains(stderr, "read the key back") {
		t.Fatalf("a set whose answer never came: exit %d, stderr %q; want %d and the hint", code, stderr, exitUnknownOutcome)
	}
	if code, _, _ := kv(t, "--addr", addr, "--timeout", "2s", "get", "k"); code != exitError {
		t.Fatalf("a get whose answer never came: exit %d, want %d", code, exitError)
	}
}

// fakeCluster starts a fake leader and a follower that sends clients to
// it, and returns the leader and the --addrs that name both, the follower
// first.
func fakeCluster(t *testing.T) (leader *clienttest.Server, addrs string) {
	leader = clienttest.NewServer(t)
	follower := clienttest.NewServer(t)
	follower.Follow(leader.Addr)
	return leader, follower.Addr + "," + leader.Addr
}

// runAt returns a runner of kv --addrs addrs that fails the test unless
// the command exits 0 printing wantStdout (anything, if it is "").
func runAt(t *testing.T, addrs string) func(wantStdout string, args ...string) string {
	return func(wantStdout string, args ...string) string {
		t.Helper()
		code, stdout, stderr := kv(t, append([]string{"--addrs", addrs}, args...)...)
		if code != exitOK || (wantStdout != "" && stdout != wantStdout) {
			t.Fatalf("kv %q: exit %d, stdout %q, stderr %q; want 0 and %q", args, code, stdout, stderr, wantStdout)
		}
		return stdout
	}
}

// --addrs: the command finds the leader through a follower's redirect, and
// writes carry a client session.
func TestCommandsAgainstFakeCluster(t *testing.T) {
	leader := clienttest.NewServer(t)
	follower := clienttest.NewServer(t)
	follower.Follow(leader.Addr)
	addrs := follower.Addr + "," + leader.Addr
	mustRun := runAt(t, addrs)
	mustRun("OK\n", "set", "hello", "world")
	mustRun("world\n", "get", "hello")
	mustRun("OK\n", "bulk-set", "k1", "v1", "k2", "v2")
	mustRun("OK\n", "delete", "k1")
	mustRun("pong\n", "ping")
	if got := leader.Data(); len(got) != 2 || got["hello"] != "world" || got["k2"] != "v2" {
		t.Fatalf("leader data = %v; want hello and k2", got)
	}
	writes := 0
	for _, req := range leader.Requests() {
		if req.Op == core.OpGet {
			continue
		}
		writes++
		// Each command is a new client: its first write is seq 1.
		if req.ClientID == 0 || req.Seq != 1 || req.Acked != 1 {
			t.Fatalf("write %+v reached the leader without a session (client_id, seq 1, acked 1)", req)
		}
	}
	if writes != 3 {
		t.Fatalf("the leader got %d writes; want 3", writes)
	}

	// status is the pretty JSON of the node that answers it.
	out := mustRun("", "status")
	var st core.Status
	if json.Unmarshal([]byte(out), &st) != nil || st.Mode != "fake" || !strings.Contains(out, "\n  \"keys\": ") {
		t.Fatalf("status printed %q; want indented status JSON", out)
	}

	// No leader anywhere: the write fails within --timeout and says why.
	// (Whether its outcome is unknown depends on when the deadline falls:
	// during a pause, or while a refusal is on its way.)
	leader.Follow("")
	follower.Follow("")
	code, _, stderr := kv(t, "--addrs", addrs, "--timeout", "300ms", "set", "k", "v")
	if code != exitError || !strings.Contains(stderr, "not_leader") {
		t.Fatalf("set without a leader: exit %d, stderr %q; want 1 and not_leader", code, stderr)
	}
}

// --addrs "A, B", as lists are often written: the spaces are not part of
// the hosts (found by review: the dial of " 127.0.0.1" failed, "no such
// host").
func TestAddrsWithSpaces(t *testing.T) {
	leader := clienttest.NewServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	// The first refuses the connection: the command needs the second.
	mustRun := runAt(t, " "+closed+" , "+leader.Addr+" ")
	mustRun("OK\n", "set", "k", "v")
	if got := leader.Data()["k"]; got != "v" {
		t.Fatalf("the server holds k = %q; want v", got)
	}
}

func TestClusterDown(t *testing.T) {
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	code, _, stderr := kv(t, "--addrs", strings.Join(addrs, ","), "--timeout", "2s", "ping")
	if code != exitError || !strings.Contains(stderr, "is the server running?") {
		t.Fatalf("ping of closed ports: exit %d, stderr %q; want 1 and a hint", code, stderr)
	}
}

// A cluster follower named with --addr (or --port) refuses with
// not_leader, naming the leader; kv says how to reach it.
func TestFollowerSaysHowToReachTheLeader(t *testing.T) {
	leader := clienttest.NewServer(t)
	follower := clienttest.NewServer(t)
	follower.Follow(leader.Addr)
	for _, args := range [][]string{{"set", "k", "v"}, {"get", "k"}} {
		code, _, stderr := kv(t, append([]string{"--addr", follower.Addr}, args...)...)
		if code != exitError || !strings.Contains(stderr, "not_leader") || !strings.Contains(stderr, "name every node with --addrs") {
			t.Errorf("kv %q at a follower: exit %d, stderr %q; want 1, not_leader and a word of --addrs", args, code, stderr)
		}
	}
}
