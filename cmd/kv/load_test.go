package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"dkv/core"
	"dkv/internal/servetest"
	"dkv/realnet"
)

// What scan --all prints, load stores: a copy of every key to another
// server, values with newlines, quotes and non-ASCII text included.
func TestScanThenLoadCopiesEveryKey(t *testing.T) {
	from := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	to := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	var items []string
	for i := range 2500 {
		items = append(items, fmt.Sprintf("k%04d", i), fmt.Sprintf("v%d \"quoted\"\nline é", i))
	}
	for i := 0; i < len(items); i += 2000 {
		if code, _, errOut := kv(t, append([]string{"--addr", from, "bulk-set"}, items[i:min(i+2000, len(items))]...)...); code != 0 {
			t.Fatalf("bulk-set: %s", errOut)
		}
	}
	code, dump, errOut := kv(t, "--addr", from, "scan", "--all")
	if code != 0 || strings.Count(dump, "\n") != 2500 {
		t.Fatalf("scan --all: exit %d, %d lines, %q", code, strings.Count(dump, "\n"), errOut)
	}
	file := filepath.Join(t.TempDir(), "dump.jsonl")
	if err := os.WriteFile(file, []byte(dump), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := kv(t, "--addr", to, "load", "--batch", "300", file); code != 0 || out != "loaded 2500 keys\n" {
		t.Fatalf("load: exit %d, %q, %q", code, out, errOut)
	}
	if code, again, _ := kv(t, "--addr", to, "scan", "--all"); code != 0 || again != dump {
		t.Fatalf("the copy differs: %d lines, want %d", strings.Count(again, "\n"), strings.Count(dump, "\n"))
	}
}

// Blank lines are skipped, those of a file whose lines end "\r\n" (edited
// on Windows) too: such a line stopped the load as bad JSON.
func TestLoadSkipsBlankLines(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	content := "\n" + `{"key":"a","value":"1"}` + "\r\n\r\n \t\n" + `{"key":"b","value":"2"}` + "\r\n\r\n"
	file := filepath.Join(t.TempDir(), "crlf.jsonl")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := kv(t, "--addr", addr, "load", file); code != 0 || out != "loaded 2 keys\n" {
		t.Fatalf("load: exit %d, %q, %q; want 0 and 2 keys loaded", code, out, errOut)
	}
	say := saysAt(t, kvAt(t, addr))
	say("1", "get", "a")
	say("2", "get", "b")
}

// A bad line stops the load, naming the line and what is stored before it.
func TestLoadStopsAtABadLine(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	for _, tc := range []struct {
		content string
		want    string
		stored  string
	}{
		{`{"key":"a","value":"1"}` + "\n" + `{"key":"b"}` + "\n", "line 2:", "1"},
		{`{"key":"a","value":"1"}` + "\n\n" + `not json` + "\n", "line 3:", "1"},
		{`{"key":"","value":"1"}` + "\n", "line 1:", "0"},
		{`{"key":"a","value":"1","ttl":3}` + "\n", "line 1:", "0"},
	} {
		file := filepath.Join(t.TempDir(), "bad.jsonl")
		if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := kv(t, "--addr", addr, "load", file)
		if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "the "+tc.stored+" keys of the lines before it are stored") {
			t.Errorf("%q: exit %d, %q", tc.content, code, errOut)
		}
	}
	// Each bad line is said in the file's terms, never the decoder's Go
	// types (it said "unable to unmarshal JSON string into Go struct {
	// Key *string ...}: unknown object member name").
	form := ": " + loadLineForm + "; "
	for _, tc := range []struct{ line, want string }{
		{`{"key":"b","value":"2","ttl_ms":3}`, `line 2: unknown field "ttl_ms"` + form},
		{`{"key":"b","value":2}`, `line 2: "value" is a JSON number, not a string` + form},
		{`["b","2"]`, `line 2: a JSON array, not an object` + form},
		{`{"key":"b"}`, `line 2: "value" is missing or null` + form},
		{`{"key":null,"value":"2"}`, `line 2: "key" is missing or null` + form},
		{`{"key":"","value":"2"}`, `line 2: an empty "key"` + form},
		{`{"key":"b","value":"2"} x`, `line 2: not valid JSON (invalid character 'x' after top-level value, at byte 25)` + form},
	} {
		file := filepath.Join(t.TempDir(), "bad.jsonl")
		if err := os.WriteFile(file, []byte(`{"key":"a","value":"1"}`+"\n"+tc.line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := kv(t, "--addr", addr, "load", file)
		if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "Go ") {
			t.Errorf("%s: exit %d, %q; want 1 and %q", tc.line, code, errOut, tc.want)
		}
	}
	if code, _, errOut := kv(t, "--addr", addr, "load", "/no/such/file"); code != 2 || !strings.Contains(errOut, "no such file") {
		t.Errorf("a missing file: exit %d, %q", code, errOut)
	}
	if code, _, errOut := kv(t, "--addr", addr, "load", "--batch", "10001", "x"); code != 2 || !strings.Contains(errOut, "--batch must be in 1..10000") {
		t.Errorf("a batch too large: exit %d, %q", code, errOut)
	}
}

// A dump keeps keys' deadlines: scan prints each as a calendar time
// (expires_at), and load gives the key the time left until then, or skips
// it once that has passed, as an expired key is gone. Keys without one
// stay for good.
func TestScanThenLoadKeepsDeadlines(t *testing.T) {
	from := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	to := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	for _, args := range [][]string{
		{"set", "--ttl", "1h", "session:1", "alice"},
		{"set", "--ttl", "2s", "session:2", "bob"},
		{"set", "plain", "stays"},
	} {
		if code, _, errOut := kv(t, append([]string{"--addr", from}, args...)...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	code, dump, errOut := kv(t, "--addr", from, "scan", "--all")
	if code != 0 || strings.Count(dump, "expires_at") != 2 || !strings.Contains(dump, `{"key":"plain","value":"stays"}`) {
		t.Fatalf("scan --all: exit %d, %q, %q", code, dump, errOut)
	}
	file := filepath.Join(t.TempDir(), "dump.jsonl")
	if err := os.WriteFile(file, []byte(dump), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := kv(t, "--addr", to, "load", file); code != 0 || out != "loaded 3 keys (2 with deadlines; 0 skipped, their deadlines passed)\n" {
		t.Fatalf("load: exit %d, %q, %q", code, out, errOut)
	}
	ttl := func(key string) string {
		t.Helper()
		code, out, errOut := kv(t, "--addr", to, "ttl", key)
		if code != 0 {
			t.Fatalf("ttl %s: %s", key, errOut)
		}
		return strings.TrimSpace(out)
	}
	if got := ttl("session:1"); !strings.HasPrefix(got, "59m") {
		t.Fatalf("session:1 has %s left, want about an hour", got)
	}
	if got := ttl("plain"); strings.Contains(got, "s") && !strings.Contains(got, "no") {
		t.Fatalf("plain has %q left, want no deadline", got)
	}
	// Loaded again once session:2's deadline has passed: it is skipped.
	time.Sleep(2100 * time.Millisecond)
	again := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	if code, out, errOut := kv(t, "--addr", again, "load", file); code != 0 || out != "loaded 2 keys (1 with deadlines; 1 skipped, their deadlines passed)\n" {
		t.Fatalf("load after the deadline: exit %d, %q, %q", code, out, errOut)
	}
	if code, _, _ := kv(t, "--addr", again, "get", "session:2"); code != 1 {
		t.Fatalf("session:2, whose deadline passed, was loaded (exit %d)", code)
	}
}

// A line's expires_at must be an RFC 3339 time.
func TestLoadRefusesABadDeadline(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	file := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(file, []byte(`{"key":"a","value":"1","expires_at":"tomorrow"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := kv(t, "--addr", addr, "load", file); code == 0 || !strings.Contains(errOut, `line 1: "expires_at" is not an RFC 3339 time`) {
		t.Fatalf("load: exit %d, %q", code, errOut)
	}
}

// A server whose --max-bulk-entries is below load's batch refuses the
// bulk_set whole; load sends it in halves until they are taken.
func TestLoadAdaptsToTheServersBatchLimit(t *testing.T) {
	single := core.DefaultSingleConfig()
	single.Limits.BulkEntriesMax = 300
	addr := servetest.Serve(t, core.NewSingleNode(single), realnet.DefaultHostConfig())
	var b strings.Builder
	for i := range 2500 {
		fmt.Fprintf(&b, `{"key":"k%04d","value":"v"}`+"\n", i)
	}
	file := filepath.Join(t.TempDir(), "dump.jsonl")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := kv(t, "--addr", addr, "load", file); code != 0 || out != "loaded 2500 keys\n" {
		t.Fatalf("load: exit %d, %q, %q", code, out, errOut)
	}
	if code, out, _ := kv(t, "--addr", addr, "scan", "--all", "--keys-only"); code != 0 || strings.Count(out, "\n") != 2500 {
		t.Fatalf("after the load the server holds %d keys", strings.Count(out, "\n"))
	}
}

// Ctrl-C stops a load between lines, exit 130, saying which lines are
// stored and where to go on; a line that comes after it is not stored,
// and the end of an input cut short by it is no success. Killed by the
// signal, load left no word of where it stopped (found by review).
func TestLoadInterrupted(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	stdin := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = stdin }()
	done := runKV(t, "--addr", addr, "load", "--batch", "1", "-")
	interruptAfterThreeLines(t, addr, w)
	fmt.Fprintf(w, `{"key":"k4","value":"v"}`+"\n")
	w.Close()
	res := awaitKV(t, done)
	if res.code != exitInterrupted || res.out != "" || !strings.Contains(res.errOut, "interrupted: lines 1..3 are stored (3 keys)") || !strings.Contains(res.errOut, "from line 4") {
		t.Errorf("load interrupted: exit %d, stdout %q, stderr %q; want %d and the lines stored", res.code, res.out, res.errOut, exitInterrupted)
	}
	if code, out, _ := kv(t, "--addr", addr, "bulk-get", "k3", "k4"); code != exitOK || out != `{"key":"k3","value":"v"}`+"\n"+`{"key":"k4","value":null}`+"\n" {
		t.Errorf("after the interrupted load: %q", out)
	}
}

// interruptAfterThreeLines writes lines k1..k3 to a load reading w, waits
// until k3 is stored at addr (the load then waits for line 4, its handler
// set), and sends this process the Ctrl-C.
func interruptAfterThreeLines(t *testing.T, addr string, w io.Writer) {
	t.Helper()
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(w, `{"key":"k%d","value":"v"}`+"\n", i)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if code, _, _ := kv(t, "--addr", addr, "get", "k3"); code == exitOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("k3 not stored after 10s")
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the signal reaches the handler's goroutine
}

// A value over the server's limit stops the load naming its key, and says
// that no --batch helps: it named a range of lines and told the user to
// try a smaller --batch (found by review).
func TestLoadNamesAValueTooLarge(t *testing.T) {
	single := core.DefaultSingleConfig()
	single.Limits.ValueBytesMax = 100
	addr := servetest.Serve(t, core.NewSingleNode(single), realnet.DefaultHostConfig())
	file := filepath.Join(t.TempDir(), "dump.jsonl")
	content := `{"key":"ok1","value":"v"}` + "\n" + `{"key":"big","value":"` + strings.Repeat("x", 200) + `"}` + "\n" + `{"key":"ok2","value":"v"}` + "\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := kv(t, "--addr", addr, "load", file)
	if code != exitError || out != "" || !strings.Contains(errOut, `key "big"`) || !strings.Contains(errOut, "no --batch makes it fit") || strings.Contains(errOut, "a smaller --batch") {
		t.Errorf("load with a value over the limit: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := kv(t, "--addr", addr, "get", "ok1"); code != exitOK || out != "v\n" {
		t.Errorf("ok1, the line before it: exit %d, %q; want it stored", code, out)
	}
}

// A load of a FILE stopped by Ctrl-C says how to go on with the same
// server and flags: its hint said "kv load -", which loaded the rest into
// the default server, 127.0.0.1:9999, whatever server the load had been
// given (found by review).
func TestLoadInterruptedGoesOnWithTheSameFlags(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	// A FIFO, so that the load waits for line 4 while the test signals.
	fifo := filepath.Join(t.TempDir(), "my dump.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := runKV(t, "--addr", addr, "--timeout", "3s", "load", "--batch", "1", fifo)
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	interruptAfterThreeLines(t, addr, w)
	w.Close()
	res := awaitKV(t, done)
	want := "to go on: tail -n +4 '" + fifo + "' | kv --addr " + addr + " --timeout 3s load --batch 1 -\n"
	if res.code != exitInterrupted || !strings.HasSuffix(res.errOut, want) {
		t.Errorf("load interrupted: exit %d, stderr %q; want %d and %q", res.code, res.errOut, exitInterrupted, want)
	}
}

// kvResult is what a kv run gave: its exit code, stdout and stderr.
type kvResult struct {
	code        int
	out, errOut string
}

// runKV runs kv with args on a goroutine of its own; its result comes on
// the channel.
func runKV(t *testing.T, args ...string) <-chan kvResult {
	done := make(chan kvResult, 1)
	go func() {
		code, out, errOut := kv(t, args...)
		done <- kvResult{code, out, errOut}
	}()
	return done
}

// awaitKV waits for runKV's result, at most 10 s after the test has
// signalled the run.
func awaitKV(t *testing.T, done <-chan kvResult) kvResult {
	t.Helper()
	select {
	case res := <-done:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("load did not return 10s after the signal")
		return kvResult{}
	}
}
