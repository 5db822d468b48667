package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dkv/core"
)

// jsonRecords parses every line of a JSON-format log, failing the test on
// a line that is not one JSON object with the keys every record has.
func jsonRecords(t *testing.T, log string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range readLines(log) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		for _, k := range []string{"time", "level", "msg", "node", "mode"} {
			if _, ok := r[k]; !ok {
				t.Fatalf("log record %q lacks %q", line, k)
			}
		}
		recs = append(recs, r)
	}
	return recs
}

// withEvent returns the records of an event.
func withEvent(recs []map[string]any, event string) []map[string]any {
	var out []map[string]any
	for _, r := range recs {
		if r["event"] == event {
			out = append(out, r)
		}
	}
	return out
}

// waitJSONServing waits for the serving record of a JSON-format server
// and returns its client address.
func waitJSONServing(t *testing.T, s *server) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, r := range jsonRecords(t, s.log()) {
			if r["event"] == "serving" {
				addr, _ := r["addr"].(string)
				return addr
			}
		}
		select {
		case <-s.exited:
			t.Fatalf("server exited before serving (%v); stderr:\n%s", s.err, s.log())
		default:
		}
	}
	t.Fatalf("no serving record after 30s; stderr:\n%s", s.log())
	return ""
}

// --log-format json: every line is one JSON object, and the start, the
// recovery, each snapshot's start and end, serving and the shutdown are
// each one record with its event.
func TestLogFormatJSON(t *testing.T) {
	dir := t.TempDir()
	s := launch(t, "--port", "0", "--data-dir", dir, "--log-format", "json", "--snapshot-log-bytes", "4096")
	addr := waitJSONServing(t, s)
	value := strings.Repeat("v", 200)
	var lines []string
	for i := range 100 {
		lines = append(lines, fmt.Sprintf(`{"op":"set","key":"k%d","value":"%s"}`, i, value))
	}
	for _, r := range roundTrip(t, addr, lines...) {
		if !r.OK {
			t.Fatalf("set: %v", r.Error)
		}
	}
	// The snapshot that 20 KB of log starts is written in the turns that
	// follow; a few pings give it turns.
	for deadline := time.Now().Add(10 * time.Second); len(withEvent(jsonRecords(t, s.log()), "snapshot")) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot record; stderr:\n%s", s.log())
		}
		roundTrip(t, addr, `{"op":"ping"}`)
	}
	s.signal(syscall.SIGTERM)
	if c := s.exitCode(); c != 0 {
		t.Fatalf("exit code after SIGTERM = %d; stderr:\n%s", c, s.log())
	}
	recs := jsonRecords(t, s.log())
	for _, tc := range []struct {
		event, level string
		msg          *regexp.Regexp
	}{
		{"start", "INFO", regexp.MustCompile(`^starting single node`)},
		{"recovery", "INFO", regexp.MustCompile(`^recovered 0 keys`)},
		{"serving", "INFO", regexp.MustCompile(`^serving single node on 127\.0\.0\.1:\d+ \(data dir ".*"\)$`)},
		{"snapshot_start", "INFO", regexp.MustCompile(`^snapshot at index \d+ started \(\d+ keys\)$`)},
		{"snapshot", "INFO", regexp.MustCompile(`^snapshot at index \d+ written \(\d+ keys, \d+ bytes\) in \S+$`)},
		{"shutdown", "INFO", regexp.MustCompile(`^(received terminated, shutting down|shut down cleanly after \S+)$`)},
	} {
		got := withEvent(recs, tc.event)
		if len(got) == 0 {
			t.Errorf("no %s record in:\n%s", tc.event, s.log())
			continue
		}
		for _, r := range got {
			msg, _ := r["msg"].(string)
			if r["level"] != tc.level || !tc.msg.MatchString(msg) || r["mode"] != "single" || r["node"] != 0.0 {
				t.Errorf("%s record %v: want level %s, msg matching %s, single node 0", tc.event, r, tc.level, tc.msg)
			}
		}
	}
	if n, m := len(withEvent(recs, "snapshot_start")), len(withEvent(recs, "snapshot")); n < m || n > m+1 {
		t.Errorf("%d snapshots started, %d written", n, m)
	}

	// A fatal error is a record too, at level ERROR, naming the damage.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "snap-00000000000000000001.snap"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := launch(t, "--port", "0", "--data-dir", bad, "--log-format", "json")
	if c := f.exitCode(); c != 1 {
		t.Fatalf("exit code = %d, want 1", c)
	}
	fatal := withEvent(jsonRecords(t, f.log()), "fatal")
	if len(fatal) != 1 || fatal[0]["level"] != "ERROR" || !strings.Contains(fatal[0]["msg"].(string), "snap-00000000000000000001.snap") {
		t.Errorf("fatal records %v; stderr:\n%s", fatal, f.log())
	}
}

// --log-level warn drops the info lines, but never the serving line that
// scripts wait for.
func TestLogLevelFiltersButKeepsTheServingLine(t *testing.T) {
	s := start(t, t.TempDir(), "--log-level", "warn")
	if log := s.log(); strings.Contains(log, "recovered") || strings.Contains(log, "starting") {
		t.Errorf("info lines at --log-level warn:\n%s", log)
	}
	var stderr strings.Builder
	for _, args := range [][]string{{"--log-level", "loud"}, {"--log-format", "xml"}} {
		stderr.Reset()
		if c := run(append([]string{"--data-dir", t.TempDir()}, args...), &stderr); c != 2 || !strings.Contains(stderr.String(), args[0]+" must be") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a clear error", args, c, stderr.String())
		}
	}
}

// The text format keeps the server's old look ("dkv: ", the time to the
// microsecond, then the message), adds the level and the attributes, and
// keeps every record on one line.
func TestTextFormat(t *testing.T) {
	var b strings.Builder
	l := newServerLog(&b, logText, slog.LevelInfo)
	l.Logger = l.With("node", 2, "mode", "cluster")
	l.printf("write failed, batch undone: %v", errors.New("disk full"))
	l.printf("election: became leader at term %d", 7)
	l.Debug("hidden")
	l.WithGroup("peer").Warn("two\nlines", "addr", "127.0.0.1:1", "why", "no route", "took", 1500*time.Millisecond)
	l.line(slog.LevelInfo, "serving", "serving single node on 127.0.0.1:1 (data dir \"d\")", "addr", "x")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^dkv: \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} ERROR write failed, batch undone: disk full node=2 mode=cluster event=write_failed err="disk full"$`),
		regexp.MustCompile(`^dkv: \S+ \S+ INFO election: became leader at term 7 node=2 mode=cluster event=election$`),
		regexp.MustCompile(`^dkv: \S+ \S+ WARN two\\nlines node=2 mode=cluster peer\.addr=127\.0\.0\.1:1 peer\.why="no route" peer\.took=1\.5s$`),
		regexp.MustCompile(`^dkv: serving single node on 127\.0\.0\.1:1 \(data dir "d"\)$`),
	}
	lines := readLines(b.String())
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d: %q does not match %s", i, lines[i], re)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		msg   string
		level slog.Level
		event string
	}{
		{"recovered 5 keys: snapshot at index 0, log through index 5", slog.LevelInfo, "recovery"},
		{"recovered mesh node 1 (incarnation 3): 0 keys", slog.LevelInfo, "recovery"},
		{"truncating a torn tail of wal-01.log at offset 10 (5 bytes)", slog.LevelWarn, "recovery"},
		{"snapshot at index 9 started (3 keys)", slog.LevelInfo, "snapshot_start"},
		{"snapshot at index 9 written (3 keys, 100 bytes) in 2ms", slog.LevelInfo, "snapshot"},
		{"snapshot failed, the log stays whole (will retry): disk full", slog.LevelError, "snapshot_failed"},
		{"snapshot snap-01.snap: directory sync failed (will retry): EIO", slog.LevelError, "snapshot_failed"},
		{"election: standing for election at term 3", slog.LevelInfo, "election"},
		{"write failed, batch undone: disk full", slog.LevelError, "write_failed"},
		{"writing log entries failed; not acknowledging or voting until the disk takes writes again: EIO", slog.LevelError, "disk_failed"},
		{"refusing connection from 1.2.3.4:5: 10 connections already open", slog.LevelWarn, ""},
		{"node 2: wrong cluster id", slog.LevelWarn, ""},
		{"peers: connected to peer 1 (127.0.0.1:9101)", slog.LevelInfo, "peers"},
		{"peers: connection to peer 0 (127.0.0.1:9100) lost: the peer closed the connection", slog.LevelWarn, "peers"},
		{"peers: refused a connection from 127.0.0.1:5: wrong cluster id", slog.LevelWarn, "peers"},
		{"peers: peer 2's connections replace each other, 3 times in 10s, each while the one before was open (last from 127.0.0.1:5): two processes may be running as node 2", slog.LevelError, "peer_twins"},
		{"cluster 0123: 3 nodes", slog.LevelInfo, ""},
		{"cannot elect a leader: 2 of its 3 nodes are rejoining (started on an empty data directory while another node's log is not empty, and not yet caught up with a leader)", slog.LevelError, "rejoin_stuck"},
		{"a leader is elected after all: node 2 in term 5; the cluster is no longer stuck as this node logged above", slog.LevelInfo, "rejoin_stuck_over"},
		{"started on an empty data directory: no vote and no election until every other node has answered; if each is new too (term 0, empty), this is a new cluster and the nodes elect a leader; if not, this directory replaces the node's old one, and the node votes once the leader's committed log is on this disk", slog.LevelInfo, "rejoin"},
		{"every other node answered at term 0 with an empty log: a new cluster, where no leader was ever elected; votes from term 1 on", slog.LevelInfo, "rejoin"},
		{"--rejoin is no longer needed and changes nothing: a node on an empty data directory always rejoins", slog.LevelWarn, "rejoin"},
		{"rejoined: heard every peer and holds the committed log through index 2; votes from term 2 on", slog.LevelInfo, "rejoin"},
		{"rejoining in place of a lost data directory: no vote and no election until every peer is heard from and the leader's committed log is on this disk", slog.LevelWarn, "rejoin"},
		{"trimming the zeroed tail of wal-01.log at offset 20 (1048556 bytes: log space reserved ahead, or a torn write of zeros)", slog.LevelInfo, ""},
	} {
		level, event := classify(tc.msg)
		if level != tc.level || event != tc.event {
			t.Errorf("%q: %v %q, want %v %q", tc.msg, level, event, tc.level, tc.event)
		}
	}
}

// lockedBuilder is a log's output that a test reads while the log's
// timers may write to it.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Warnings and errors of one kind (lines that differ only by their
// numbers) are written at most logKindLinesMax times a window; the rest
// are counted, and the count is written when the window ends. Info lines
// and other kinds are not held back.
func TestLogHoldsBackAFlood(t *testing.T) {
	var out lockedBuilder
	l := newServerLog(&out, logJSON, slog.LevelInfo)
	l.Logger = l.With("node", 0, "mode", "single")
	// Long enough for the 1000 lines below to fall in one window on a
	// slow machine, short enough not to slow the test much.
	l.held.window = 2 * time.Second
	count := func(substr string) int {
		n := 0
		for _, r := range jsonRecords(t, out.String()) {
			if strings.Contains(r["msg"].(string), substr) {
				n++
			}
		}
		return n
	}
	for i := range 1000 {
		l.printf("write failed, batch undone: %v", fmt.Errorf("disk full: write wal-%05d.log", i))
	}
	for i := range 100 {
		l.printf("election: became leader at term %d", i)
	}
	l.printf("snapshot failed, the log stays whole (will retry): %v", errors.New("EIO"))
	if n := count("write failed"); n != logKindLinesMax {
		t.Errorf("%d of 1000 write failures written at once, want %d", n, logKindLinesMax)
	}
	if n := count("election:"); n != 100 {
		t.Errorf("%d of 100 info lines written, want all", n)
	}
	if n := count("snapshot failed"); n != 1 {
		t.Errorf("a failure of another kind written %d times, want 1", n)
	}
	var report map[string]any
	for deadline := time.Now().Add(10 * time.Second); report == nil; time.Sleep(5 * time.Millisecond) {
		for _, r := range jsonRecords(t, out.String()) {
			if strings.HasPrefix(r["msg"].(string), "990 more lines like this one were held back") {
				report = r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no count of the lines held back 10 s after a window of %v:\n%s", l.held.window, out.String())
		}
	}
	if report["level"] != "ERROR" || report["event"] != "write_failed" || report["held_back"] != 990.0 ||
		!strings.HasSuffix(report["msg"].(string), "wal-00999.log") {
		t.Errorf("the count's record: %v", report)
	}
	// A new window writes again.
	l.printf("write failed, batch undone: %v", errors.New("disk full"))
	n := 0
	for _, r := range jsonRecords(t, out.String()) {
		if strings.HasPrefix(r["msg"].(string), "write failed") {
			n++
		}
	}
	if n != logKindLinesMax+1 {
		t.Errorf("%d write failures written after the window, want %d", n, logKindLinesMax+1)
	}
}

// On a full disk, a client's writes fail batch after batch, each logged by
// the node: one client made 23,000 error lines a second before they were
// held back. Now a burst of failed writes logs at most logKindLinesMax of
// them a window.
func TestFullDiskDoesNotFloodTheLog(t *testing.T) {
	mnt := sizedTmpfs(t, "4m")
	s := start(t, filepath.Join(mnt, "data"))
	fillDisk(t, mnt, "filler")
	lines := make([]string, 0, 200)
	for i := range 200 {
		lines = append(lines, fmt.Sprintf(`{"op":"set","key":"k%d","value":"%s"}`, i, strings.Repeat("v", 20000)))
	}
	failed := 0
	for _, line := range lines {
		// One at a time: a batch, and so a failure, each.
		if r := roundTrip(t, s.addr, line)[0]; code(r) == core.CodeDiskFull {
			failed++
		}
	}
	if failed < 100 { // the log's 1 MiB reserved ahead takes the first 50
		t.Fatalf("%d of 200 sets on a full disk answered disk_full; stderr:\n%s", failed, s.log())
	}
	// Allow a window per 10 s the writes took on a slow machine: the
	// bound is what matters, not the exact count.
	if n := strings.Count(s.log(), "INFO write failed, batch undone") + strings.Count(s.log(), "ERROR write failed, batch undone"); n < 1 || n > 5*logKindLinesMax {
		t.Errorf("%d failed sets logged %d lines; want 1 to %d", failed, n, 5*logKindLinesMax)
	}
}

// A server whose standard error's reader has gone serves on: the next log
// line raised SIGPIPE, and Go's default for it on standard error killed
// the node (found by review). Here the pipe is closed, and a connection
// past --max-conns makes the server log a line before it answers that
// connection: the answer comes, and the connection held still works.
func TestServerOutlivesItsLogReader(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--port", "0", "--data-dir", t.TempDir(), "--max-conns", "1")
	cmd.Env = append(os.Environ(), serverEnv+"=1")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	sc := bufio.NewScanner(pipe)
	addr := ""
	for addr == "" && sc.Scan() {
		if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("no serving line: %v", sc.Err())
	}
	// Closing our end leaves the server's writes without a reader; Wait
	// runs after it, as StderrPipe asks.
	pipe.Close()
	go func() { exited <- cmd.Wait() }()
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	held.SetDeadline(time.Now().Add(roundTripTimeout))
	br := bufio.NewReader(held)
	ping := func(what string) {
		t.Helper()
		if _, err := held.Write([]byte(`{"op":"ping"}` + "\n")); err != nil {
			t.Fatalf("ping %s: %v", what, err)
		}
		if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, `"ok":true`) {
			t.Fatalf("ping %s: %q %v", what, line, err)
		}
	}
	ping("before") // the connection holds the one slot
	// Refused past --max-conns: the server logs "refusing connection …"
	// before it writes the refusal, so the refusal read here comes after
	// the log line's write to the broken pipe.
	refused := roundTrip(t, addr, `{"op":"ping"}`)
	if code(refused[0]) != core.CodeTooManyConns {
		t.Fatalf("a connection past --max-conns 1: %+v", refused[0])
	}
	ping("after the refusal")
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit after SIGTERM")
	}
}
