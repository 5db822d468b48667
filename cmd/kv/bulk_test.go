package main

import (
	"testing"

	"dkv/core"
	"dkv/internal/servetest"
	"dkv/realnet"
)

// bulk-get and bulk-delete against a real single node in this process.
func TestBulkCommands(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	run := func(want string, args ...string) {
		t.Helper()
		code, out, stderr := kv(t, append([]string{"--addr", addr}, args...)...)
		if code != exitOK || out != want {
			t.Fatalf("kv %q: exit %d, stdout %q, stderr %q; want 0 and %q", args, code, out, stderr, want)
		}
	}
	run("OK\n", "bulk-set", "k1", "v1", "k2", "two words\n")
	run(`{"key":"k1","value":"v1"}`+"\n"+`{"key":"nope","value":null}`+"\n"+`{"key":"k2","value":"two words\n"}`+"\n",
		"bulk-get", "k1", "nope", "k2")
	run("deleted 1\n", "bulk-delete", "k1", "nope", "k1")
	run(`{"key":"k1","value":null}`+"\n", "bulk-get", "k1")

	for _, cmd := range []string{"bulk-get", "bulk-delete"} {
		code, out, stderr := kv(t, "--addr", addr, cmd)
		if code != exitUsage || out != "" || stderr == "" {
			t.Errorf("kv %s without keys: exit %d, stdout %q, stderr %q; want a usage error", cmd, code, out, stderr)
		}
	}
	// A refusal by the server is exit 1 with its code.
	if code, _, stderr := kv(t, "--addr", addr, "bulk-delete", "k2", ""); code != exitError || stderr == "" {
		t.Errorf("bulk-delete with an empty key: exit %d, stderr %q; want 1", code, stderr)
	}
}
