package main

import (
	"strings"
	"testing"

	"dkv/client/clienttest"
	"dkv/core"
	"dkv/internal/servetest"
	"dkv/mesh"
	"dkv/realnet"
)

// set --if-absent, --if-exists, --if-value and delete --if-value against a
// real single node: each writes and prints OK when its condition holds;
// otherwise it writes nothing, says what the key holds on standard error,
// and exits 3.
func TestConditionalWrites(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	ok := func(args ...string) {
		t.Helper()
		code, out, stderr := kv(t, append([]string{"--addr", addr}, args...)...)
		if code != exitOK || out != "OK\n" || stderr != "" {
			t.Fatalf("kv %q: exit %d, stdout %q, stderr %q; want 0 and OK", args, code, out, stderr)
		}
	}
	refused := func(wantStderr string, args ...string) {
		t.Helper()
		code, out, stderr := kv(t, append([]string{"--addr", addr}, args...)...)
		if code != exitConditionFailed || out != "" || stderr != wantStderr+"\n" {
			t.Fatalf("kv %q: exit %d, stdout %q, stderr %q; want %d and %q", args, code, out, stderr, exitConditionFailed, wantStderr)
		}
	}
	holds := func(key, want string) {
		t.Helper()
		code, out, stderr := kv(t, "--addr", addr, "get", key)
		if code != exitOK || out != want+"\n" {
			t.Fatalf("get %s: exit %d, stdout %q, stderr %q; want %q", key, code, out, stderr, want)
		}
	}
	missing := func(key string) {
		t.Helper()
		if code, out, stderr := kv(t, "--addr", addr, "get", key); code != exitError || stderr != "not found: "+key+"\n" {
			t.Fatalf("get %s: exit %d, stdout %q, stderr %q; want it missing", key, code, out, stderr)
		}
	}

	refused(`condition failed (--if-exists): nothing was written; key "k" does not exist`, "set", "--if-exists", "k", "v0")
	missing("k")
	ok("set", "--if-absent", "k", "v1")
	holds("k", "v1")
	refused(`condition failed (--if-absent): nothing was written; key "k" holds "v1"`, "set", "--if-absent", "k", "v2")
	ok("set", "--if-exists", "k", "v2")
	holds("k", "v2")
	refused(`condition failed (--if-value "v1"): nothing was written; key "k" holds "v2"`, "set", "--if-value", "v1", "k", "v3")
	holds("k", "v2")
	ok("set", "--if-value", "v2", "k", "v 3")
	holds("k", "v 3")
	refused(`condition failed (--if-value "v2"): nothing was written; key "k" holds "v 3"`, "delete", "--if-value", "v2", "k")
	holds("k", "v 3")
	ok("delete", "--if-value", "v 3", "k")
	missing("k")
	refused(`condition failed (--if-value "v 3"): nothing was written; key "k" does not exist`, "delete", "--if-value", "v 3", "k")
	refused(`condition failed (--if-value "v1"): nothing was written; key "k" does not exist`, "set", "--if-value", "v1", "k", "v4")
	missing("k")

	// An empty OLD is a value like any other: it is not "no condition".
	refused(`condition failed (--if-value ""): nothing was written; key "e" does not exist`, "set", "--if-value", "", "e", "x")
	missing("e")
	ok("set", "e", "")
	ok("set", "--if-value=", "e", "x")
	holds("e", "x")
	// A value is quoted as Go quotes it, so that one line says it.
	ok("set", "nl", "a\nb\"c")
	refused(`condition failed (--if-absent): nothing was written; key "nl" holds "a\nb\"c"`, "set", "--if-absent", "nl", "z")
	// A false flag is no condition; a key that starts with "-" follows "--".
	ok("set", "--if-absent=false", "nl", "plain")
	holds("nl", "plain")
	refused(`condition failed (--if-exists): nothing was written; key "f" does not exist`, "set", "--if-absent=false", "--if-exists", "f", "x")
	ok("set", "--if-absent", "--", "-k", "v")
	holds("-k", "v")
	ok("delete", "--", "-k")
	missing("-k")

	// The server's refusal of the request itself is exit 1, naming the key
	// and the condition.
	code, out, stderr := kv(t, "--addr", addr, "set", "--if-value", "old", "", "v")
	if code != exitError || out != "" || !strings.HasPrefix(stderr, `dkv: set "" (if_value="old"): server error bad_request: `) {
		t.Fatalf("a conditional set of an empty key: exit %d, stdout %q, stderr %q; want 1 and bad_request", code, out, stderr)
	}
}

// A command line with two conditions, or with --if-absent or --if-exists
// on a delete, is a usage error, and nothing reaches the server.
func TestConditionalUsageErrors(t *testing.T) {
	srv := clienttest.NewServer(t)
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"set", "--if-absent", "--if-exists", "k", "v"}, "set takes one condition at most, got --if-absent and --if-exists"},
		{[]string{"set", "--if-value", "a", "--if-absent", "k", "v"}, "set takes one condition at most, got --if-absent and --if-value"},
		{[]string{"set", "--if-exists", "--if-value", "", "k", "v"}, "got --if-exists and --if-value"},
		{[]string{"delete", "--if-absent", "k"}, "delete takes --if-value only, not --if-absent"},
		{[]string{"delete", "--if-exists", "k"}, "delete takes --if-value only, not --if-exists"},
		{[]string{"delete", "--if-value", "a", "--if-exists", "k"}, "delete takes one condition at most"},
		{[]string{"set", "--if-absent", "k"}, "set takes 2 argument(s): kv set [--ttl D] [--if-absent | --if-exists | --if-value OLD] KEY VALUE"},
		{[]string{"set", "--if-value", "old", "k", "v", "x"}, "set takes 2 argument(s)"},
		{[]string{"delete", "--if-value", "old"}, "delete takes 1 argument(s): kv delete [--if-value OLD] KEY"},
		{[]string{"delete", "--if-value"}, "flag needs an argument: -if-value"},
		{[]string{"set", "--if-bogus", "k", "v"}, "flag provided but not defined: -if-bogus"},
		{[]string{"set", "-k", "v"}, "flag provided but not defined: -k"},
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
	for _, want := range []string{
		"set [--ttl D] [--if-absent | --if-exists | --if-value OLD] KEY VALUE",
		"delete [--if-value OLD] KEY",
		"usage error, 3 the\ncondition of a set or delete did not hold",
	} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("kv help: exit %d; want the usage text to say %q", code, want)
		}
	}
}

// With --addrs the conditions go to the leader in the write's session, and
// a refusal is exit 3 there too.
func TestConditionalWritesAgainstFakeCluster(t *testing.T) {
	leader, addrs := fakeCluster(t)
	code, out, stderr := kv(t, "--addrs", addrs, "set", "--if-absent", "lock", "me")
	if code != exitOK || out != "OK\n" {
		t.Fatalf("set --if-absent: exit %d, stdout %q, stderr %q; want 0 and OK", code, out, stderr)
	}
	code, out, stderr = kv(t, "--addrs", addrs, "set", "--if-absent", "lock", "you")
	if code != exitConditionFailed || out != "" || stderr != `condition failed (--if-absent): nothing was written; key "lock" holds "me"`+"\n" {
		t.Fatalf("a second set --if-absent: exit %d, stdout %q, stderr %q; want 3 and the holder", code, out, stderr)
	}
	code, out, stderr = kv(t, "--addrs", addrs, "delete", "--if-value", "me", "lock")
	if code != exitOK || out != "OK\n" {
		t.Fatalf("delete --if-value: exit %d, stdout %q, stderr %q; want 0 and OK", code, out, stderr)
	}
	if got := leader.Data(); len(got) != 0 {
		t.Fatalf("leader data = %v; want none", got)
	}
	var conds []string
	for _, req := range leader.Requests() {
		if req.ClientID == 0 || req.Seq != 1 {
			t.Fatalf("write %+v reached the leader without a session", req)
		}
		conds = append(conds, string(req.Op)+" "+req.Condition().String())
	}
	if want := `set if_absent,set if_absent,delete if_value="me"`; strings.Join(conds, ",") != want {
		t.Fatalf("the leader got %q; want %q", conds, want)
	}
}

// A mesh refuses conditions (exit 1 with its not_implemented, not 3), set
// --ttl, ttl, expire, persist, incr and decr, and nothing is written.
func TestRefusedByAMesh(t *testing.T) {
	node, err := mesh.NewNode(mesh.DefaultConfig(0, []core.NodeID{0}))
	if err != nil {
		t.Fatal(err)
	}
	addr := servetest.Serve(t, node, realnet.DefaultHostConfig())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "--if-absent", "k", "v"}, `dkv: set "k" (if_absent): server error not_implemented: `},
		{[]string{"set", "--if-exists", "k", "v"}, `dkv: set "k" (if_exists): server error not_implemented: `},
		{[]string{"set", "--if-value", "old", "k", "v"}, `dkv: set "k" (if_value="old"): server error not_implemented: `},
		{[]string{"delete", "--if-value", "old", "k"}, `dkv: delete "k" (if_value="old"): server error not_implemented: `},
		{[]string{"set", "--ttl", "1s", "k", "v"}, `dkv: set "k" (ttl 1s): server error not_implemented: `},
		{[]string{"set", "--ttl", "1s", "--if-absent", "k", "v"}, `dkv: set "k" (if_absent): server error not_implemented: `},
		{[]string{"ttl", "k"}, `dkv: ttl "k": server error not_implemented: `},
		{[]string{"expire", "k", "1s"}, `dkv: expire "k" (ttl 1s): server error not_implemented: `},
		{[]string{"persist", "k"}, `dkv: persist "k": server error not_implemented: `},
		{[]string{"incr", "k"}, `dkv: incr "k" (delta 1): server error not_implemented: `},
		{[]string{"decr", "k", "2"}, `dkv: incr "k" (delta -2): server error not_implemented: `},
	} {
		code, out, stderr := kv(t, append([]string{"--addr", addr}, tc.args...)...)
		if code != exitError || out != "" || !strings.HasPrefix(stderr, tc.want) {
			t.Errorf("kv %q on a mesh: exit %d, stdout %q, stderr %q; want 1 and %q", tc.args, code, out, stderr, tc.want)
		}
	}
	if code, _, stderr := kv(t, "--addr", addr, "get", "k"); code != exitError || stderr != "not found: k\n" {
		t.Fatalf("get after the refusals: exit %d, stderr %q; want not found", code, stderr)
	}
	// Plain writes still work there.
	if code, out, stderr := kv(t, "--addr", addr, "set", "k", "v"); code != exitOK || out != "OK\n" {
		t.Fatalf("plain set on a mesh: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}
