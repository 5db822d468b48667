package main

import (
	"fmt"
	"strings"
	"testing"

	"dkv/core"
	"dkv/internal/servetest"
	"dkv/realnet"
)

// scan prints a JSON line per key in key order, pages through more than
// one server page, stops at --limit saying how to go on, and walks
// everything with --all.
func TestScan(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	var want []string
	for i := range 1500 {
		k := fmt.Sprintf("user:%04d", i)
		if code, _, errOut := kv(t, "--addr", addr, "set", k, "v"+k); code != 0 {
			t.Fatalf("set: %d %s", code, errOut)
		}
		want = append(want, fmt.Sprintf(`{"key":%q,"value":%q}`, k, "v"+k))
		if i == 2 {
			kv(t, "--addr", addr, "set", "other", "x")
		}
	}
	code, out, errOut := kv(t, "--addr", addr, "scan", "--all", "user:")
	if code != 0 || out != strings.Join(want, "\n")+"\n" || errOut != "" {
		t.Fatalf("scan --all: exit %d, %d lines, stderr %q", code, strings.Count(out, "\n"), errOut)
	}
	code, out, errOut = kv(t, "--addr", addr, "scan", "--limit", "2", "--keys-only", "user:")
	if code != 0 || out != "{\"key\":\"user:0000\"}\n{\"key\":\"user:0001\"}\n" ||
		!strings.Contains(errOut, `more keys after "user:0001": go on with --start-after "user:0001"`) {
		t.Fatalf("scan --limit 2: exit %d, %q, %q", code, out, errOut)
	}
	code, out, _ = kv(t, "--addr", addr, "scan", "--start-after", "user:1498")
	if code != 0 || out != `{"key":"user:1499","value":"vuser:1499"}`+"\n" {
		t.Fatalf("scan --start-after: exit %d, %q", code, out)
	}
	if code, _, errOut := kv(t, "--addr", addr, "scan", "a", "b"); code != 2 || !strings.Contains(errOut, "one PREFIX at most") {
		t.Fatalf("two prefixes: exit %d, %q", code, errOut)
	}
}
