package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"dkv/core"
	"dkv/disk"
	"dkv/internal/indexes"
	"dkv/realnet"
	"dkv/vecidx"
)

// startIndexedNode runs a single node with indexes in this process, over
// a real directory and socket.
func startIndexedNode(t *testing.T) string {
	t.Helper()
	d, err := disk.Open(t.TempDir(), disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	model, err := vecidx.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg := core.DefaultSingleConfig()
	cfg.Indexes = indexes.New(indexes.DefaultConfig(model, "built-in"))
	node := core.NewSingleNode(cfg)
	hc := realnet.DefaultHostConfig()
	hc.Logf = t.Logf
	hc.Prepare = core.PrepareFunc(cfg.Indexes)
	h, err := realnet.NewHost(node, d, hc)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		h.Shutdown()
		<-done
		node.Close()
		d.Close()
	})
	<-h.Ready()
	return h.Addr().String()
}

func TestSearchCommands(t *testing.T) {
	addr := startIndexedNode(t)
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return kv(t, append([]string{"--addr", addr}, args...)...)
	}
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
	} {
		if code, _, stderr := run(tc.args...); code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("kv %q: exit %d, stderr %q; want usage error %q", tc.args, code, stderr, tc.want)
		}
	}
}
