package main

import (
	"strings"
	"testing"

	"dkv/core"
	"dkv/internal/indexes"
	"dkv/internal/servetest"
	"dkv/realnet"
	"dkv/vecidx"
)

// startIndexedNode runs a single node with indexes in this process, over
// a real directory and socket.
func startIndexedNode(t *testing.T) string {
	t.Helper()
	model, err := vecidx.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg := core.DefaultSingleConfig()
	cfg.Indexes = indexes.New(indexes.DefaultConfig(model, "built-in"))
	hc := realnet.DefaultHostConfig()
	hc.Prepare = core.PrepareFunc(cfg.Indexes)
	return servetest.Serve(t, core.NewSingleNode(cfg), hc)
}

func TestSearchCommands(t *testing.T) {
	addr := startIndexedNode(t)
	run := kvAt(t, addr)
	for k, v := range map[string]string{
		"doc1": "hello world foo",
		"doc2": "hello bar",
		"doc3": "the ocean waves on the sandy beach",
	} {
		if code, _, stderr := run("set", k, v); code != exitOK {
			t.Fatalf("set %s: %d %s", k, code, stderr)
		}
	}
	lines := func(out string) []string { return strings.Split(strings.TrimSuffix(out, "\n"), "\n") }
	keyOf := func(line string) string { return line[strings.IndexByte(line, '\t')+1:] }

	code, out, stderr := run("search", "hello")
	if l := lines(out); code != exitOK || len(l) != 2 || keyOf(l[0]) != "doc2" || keyOf(l[1]) != "doc1" {
		t.Errorf("search hello: exit %d, out %q, stderr %q; want doc2 then doc1", code, out, stderr)
	}
	code, out, _ = run("search", "--limit", "1", `"hello`, `world"`)
	if l := lines(out); code != exitOK || len(l) != 1 || keyOf(l[0]) != "doc1" {
		t.Errorf("phrase search: exit %d, out %q", code, out)
	}
	code, out, _ = run("search", "--any", "world", "bar")
	if l := lines(out); code != exitOK || len(l) != 2 {
		t.Errorf("any search: exit %d, out %q", code, out)
	}
	code, out, _ = run("search", "the")
	if code != exitOK || out != "(no hits)\n" {
		t.Errorf("stop-word search: exit %d, out %q", code, out)
	}
	code, out, _ = run("similar", "--top-k", "1", "sea")
	if l := lines(out); code != exitOK || len(l) != 1 || keyOf(l[0]) != "doc3" {
		t.Errorf("similar sea: exit %d, out %q", code, out)
	}
	code, _, stderr = run("similar", "qqxzvw")
	if code != exitError || !strings.Contains(stderr, "no word of the query") {
		t.Errorf("similar to an unknown word: exit %d, stderr %q", code, stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"search"}, "search needs a QUERY"},
		{[]string{"similar", "  "}, "similar needs a QUERY"},
		{[]string{"search", "--limit", "0", "x"}, "--limit must be at least 1"},
		{[]string{"similar", "--top-k", "-1", "x"}, "--top-k must be at least 1"},
		{[]string{"similar", "--any", "x"}, "similar takes --top-k"},
		{[]string{"search", "--top-k", "3", "x"}, "search takes --any and --limit"},
		// At their defaults too: taken and ignored before (found by review).
		{[]string{"similar", "--limit", "10", "x"}, "similar takes --top-k"},
		{[]string{"search", "--top-k", "5", "x"}, "search takes --any and --limit"},
	} {
		if code, _, stderr := run(tc.args...); code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("kv %q: exit %d, stderr %q; want usage error %q", tc.args, code, stderr, tc.want)
		}
	}
}

// search and similar print a key that holds a control character as a JSON
// string, as scan prints keys: printed raw, a key with a line break made
// two lines, the second a hit of its own ("x\tevil" read as the key
// "evil" of score "x").
func TestSearchQuotesKeysThatWouldBreakTheLine(t *testing.T) {
	addr := startIndexedNode(t)
	run := kvAt(t, addr)
	keys := []string{"plain", "line\nbreak", "x\tevil", `"quoted"`}
	for _, k := range keys {
		if code, _, stderr := run("set", "--", k, "ocean waves"); code != exitOK {
			t.Fatalf("set %q: %d %s", k, code, stderr)
		}
	}
	want := map[string]bool{"plain": true, `"line\nbreak"`: true, `"x\tevil"`: true, `"\"quoted\""`: true}
	for _, cmd := range [][]string{{"search", "ocean"}, {"similar", "--top-k", "4", "ocean"}} {
		code, out, stderr := run(cmd...)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if code != exitOK || len(lines) != len(keys) {
			t.Errorf("kv %q: exit %d, %d lines, stderr %q; out:\n%s", cmd, code, len(lines), stderr, out)
			continue
		}
		for _, line := range lines {
			score, key, ok := strings.Cut(line, "\t")
			if !ok || strings.Contains(key, "\t") || !want[key] {
				t.Errorf("kv %q: line %q (score %q, key %q) is not one of %v", cmd, line, score, key, want)
			}
		}
	}
}
