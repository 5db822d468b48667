package main

import (
	"os"
	"path/filepath"
	"strings"
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

// bulk-set --file refuses an item without a key or a value before sending
// anything: decoded into client.KV, {"key":"k"} stored an empty value and
// {"value":"v"} went to the server (found by review).
func TestBulkSetFileIncompleteItems(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	dir := t.TempDir()
	for _, tc := range []struct{ file, wantErr string }{
		{`[{"key":"a","value":"1"},{"key":"k"}]`, `item 1 (key "k"): "value" is missing or null`},
		{`[{"key":"k","value":null}]`, `item 0 (key "k"): "value" is missing or null`},
		{`[{"value":"v"}]`, `item 0: "key" is missing or null`},
		{`[{"key":"","value":"v"}]`, `item 0: an empty "key"`},
		{`[{"key":"k","value":1}]`, `/0/value is a JSON number, not a string`},
		{`{"key":"k","value":"v"}`, `kv load`},
	} {
		path := filepath.Join(dir, "items.json")
		if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, stderr := kv(t, "--addr", addr, "bulk-set", "--file", path)
		if code != exitUsage || out != "" || !strings.Contains(stderr, tc.wantErr) {
			t.Errorf("bulk-set --file %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.file, code, out, stderr, tc.wantErr)
		}
	}
	// Nothing was written: not "a", not "k" with an empty value.
	code, out, _ := kv(t, "--addr", addr, "bulk-get", "a", "k")
	if want := `{"key":"a","value":null}` + "\n" + `{"key":"k","value":null}` + "\n"; code != exitOK || out != want {
		t.Errorf("bulk-get a k after the refusals: exit %d, %q; want %q", code, out, want)
	}
}

// A bulk-set over the server's limits says how to go on with a bulk-set,
// not with load's --batch, which it does not take (found by review).
func TestBulkSetTooLargeHint(t *testing.T) {
	single := core.DefaultSingleConfig()
	single.Limits.BulkEntriesMax = 2
	addr := servetest.Serve(t, core.NewSingleNode(single), realnet.DefaultHostConfig())
	code, out, stderr := kv(t, "--addr", addr, "bulk-set", "a", "1", "b", "2", "c", "3")
	if code != exitError || out != "" || !strings.Contains(stderr, "too_large") || !strings.Contains(stderr, "kv load, which sends them in batches") || strings.Contains(stderr, "--batch") {
		t.Errorf("bulk-set of 3 items to a server taking 2: exit %d, stdout %q, stderr %q; want 1 and a bulk-set's hint", code, out, stderr)
	}
}

// bulk-set --file - reads the items from standard input, as load - does:
// "-" was taken for a file's name ("open -: no such file or directory").
func TestBulkSetFileFromStandardInput(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	withStdin := func(input string, f func()) {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		go func() {
			w.WriteString(input)
			w.Close()
		}()
		stdin := os.Stdin
		os.Stdin = r
		defer func() { os.Stdin = stdin }()
		f()
	}
	withStdin(`[{"key":"a","value":"1"},{"key":"b","value":"two words"}]`, func() {
		if code, out, stderr := kv(t, "--addr", addr, "bulk-set", "--file", "-"); code != exitOK || out != "OK\n" {
			t.Errorf("bulk-set --file -: exit %d, stdout %q, stderr %q", code, out, stderr)
		}
	})
	code, out, _ := kv(t, "--addr", addr, "bulk-get", "a", "b")
	if want := `{"key":"a","value":"1"}` + "\n" + `{"key":"b","value":"two words"}` + "\n"; code != exitOK || out != want {
		t.Errorf("bulk-get a b: exit %d, %q; want %q", code, out, want)
	}
	withStdin(`[{"key":"c"}]`, func() {
		code, out, stderr := kv(t, "--addr", addr, "bulk-set", "--file", "-")
		if want := `bulk-set: standard input: item 0 (key "c"): "value" is missing or null`; code != exitUsage || out != "" || !strings.Contains(stderr, want) {
			t.Errorf("bulk-set --file - of an item without a value: exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, stderr, want)
		}
	})
}
