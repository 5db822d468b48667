package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dkv/core"
	"dkv/internal/nodeproc"
	"dkv/realnet"
)

// The server under test is this test binary run again with serverEnv set:
// TestMain then runs the real main instead of the tests, so no go build is
// needed and what runs is exactly run().
const serverEnv = "DKV_NODE_TEST_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

var servingLine = regexp.MustCompile(`^dkv: serving single node on (127\.0\.0\.1:\d+) \(data dir "(.*)"\)$`)

type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// launch starts a server and returns without waiting for it.
func launch(t *testing.T, args ...string) *server {
	t.Helper()
	s := &server{t: t, exited: make(chan struct{})}
	s.cmd = exec.Command(os.Args[0], args...)
	s.cmd.Env = append(os.Environ(), serverEnv+"=1")
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.mu.Lock()
			s.stderr.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.exited
	})
	return s
}

// start starts a server on a free port of dataDir and waits until it serves.
func start(t *testing.T, dataDir string, args ...string) *server {
	t.Helper()
	s := launch(t, append([]string{"--port", "0", "--data-dir", dataDir}, args...)...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, line := range strings.Split(s.log(), "\n") {
			if m := servingLine.FindStringSubmatch(line); m != nil {
				if m[2] != dataDir {
					t.Errorf("serving line names data dir %q, want %q", m[2], dataDir)
				}
				s.addr = m[1]
				return s
			}
		}
		select {
		case <-s.exited:
			t.Fatalf("server exited before serving (%v); stderr:\n%s", s.err, s.log())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not serving after 30s; stderr:\n%s", s.log())
		}
	}
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// exitCode waits for the server to exit by itself.
func (s *server) exitCode() int {
	s.t.Helper()
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.t.Fatalf("server did not exit; stderr:\n%s", s.log())
	}
	var exit *exec.ExitError
	if errors.As(s.err, &exit) {
		return exit.ExitCode()
	}
	if s.err != nil {
		s.t.Fatal(s.err)
	}
	return 0
}

func (s *server) signal(sig os.Signal) {
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// roundTrip sends request lines and returns one response per line.
// roundTripTimeout bounds a roundTrip, so that a server that never answers
// fails the test rather than hangs it. It is generous: the race detector on
// two shared cores once took more than 10 s to store the 200,000 keys of
// TestNoConnectionAcceptedDuringRecovery (2.4 MB of bulk_set).
const roundTripTimeout = 60 * time.Second

func roundTrip(t *testing.T, addr string, lines ...string) []*core.Response {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(roundTripTimeout))
	if _, err := io.WriteString(nc, strings.Join(lines, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	var out []*core.Response
	for range lines {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading a response: %v", err)
		}
		resp, err := core.DecodeResponse(bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			t.Fatalf("response %q: %v", line, err)
		}
		out = append(out, resp)
	}
	return out
}

func code(r *core.Response) string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

func TestServePersistAndShutDownCleanly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := start(t, dir)
	resps := roundTrip(t, s.addr,
		`{"op":"set","key":"k","value":"v1","id":1}`,
		`{"op":"get","key":"k","id":2}`)
	if !resps[0].OK || string(resps[0].ID) != "1" || resps[1].Value == nil || *resps[1].Value != "v1" {
		t.Fatalf("set/get: %+v %+v", resps[0], resps[1])
	}
	s.signal(syscall.SIGTERM)
	if c := s.exitCode(); c != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0; stderr:\n%s", c, s.log())
	}

	// Recovery: the acknowledged write is there after a restart.
	s = start(t, dir)
	if resps := roundTrip(t, s.addr, `{"op":"get","key":"k"}`); resps[0].Value == nil || *resps[0].Value != "v1" {
		t.Fatalf("get after restart: %+v", resps[0])
	}
	s.signal(os.Interrupt)
	if c := s.exitCode(); c != 0 {
		t.Fatalf("exit code after SIGINT = %d, want 0; stderr:\n%s", c, s.log())
	}
}

func TestSecondServerOnTheSameDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	first := start(t, dir)
	second := launch(t, "--port", "0", "--data-dir", dir)
	if c := second.exitCode(); c != 1 {
		t.Fatalf("second server exit code = %d, want 1", c)
	}
	want := fmt.Sprintf("data directory %q is in use by another dkv process (pid %d)", dir, first.cmd.Process.Pid)
	if !strings.Contains(second.log(), want) {
		t.Errorf("second server's stderr %q does not say %q", second.log(), want)
	}
}

func TestCorruptDataDirIsFatal(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "snap-00000000000000000001.snap"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := launch(t, "--port", "0", "--data-dir", dir)
	if c := s.exitCode(); c != 1 {
		t.Fatalf("exit code = %d, want 1", c)
	}
	if log := s.log(); !strings.Contains(log, "dkv: fatal:") || !strings.Contains(log, "snap-00000000000000000001.snap") || strings.Contains(log, "serving") {
		t.Errorf("stderr %q: want a fatal error naming the snapshot and no serving line", log)
	}
}

func TestFlagsReachHostAndNode(t *testing.T) {
	s := start(t, t.TempDir(),
		"-max-request-bytes", "200", // one dash works too
		"--max-value-bytes=10",
		"--max-conns", "1")
	resps := roundTrip(t, s.addr,
		`{"op":"get","key":"`+strings.Repeat("x", 300)+`"}`,
		`{"op":"set","key":"k","value":"`+strings.Repeat("v", 11)+`"}`,
		`{"op":"set","key":"k","value":"`+strings.Repeat("v", 10)+`"}`)
	if code(resps[0]) != core.CodeTooLarge || code(resps[1]) != core.CodeTooLarge || !resps[2].OK {
		t.Errorf("limits: got %v %v %v, want too_large, too_large, ok", resps[0].Error, resps[1].Error, resps[2].Error)
	}

	// The connection above may take the server a moment to forget; until
	// then a new one is refused, after that it is served and held open
	// (by the deferred Close).
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, `{"op":"ping"}`+"\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && strings.Contains(line, `"ok":true`) {
			break
		}
		if !strings.Contains(line, core.CodeTooManyConns) || time.Now().After(deadline) {
			t.Fatalf("first connection: %q, %v", line, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	extra, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(extra).ReadString('\n')
	if !strings.Contains(line, core.CodeTooManyConns) {
		t.Errorf("connection over --max-conns 1 got %q", line)
	}
}

func TestUnsafeNoFsyncWarnsLoudly(t *testing.T) {
	s := start(t, t.TempDir(), "--unsafe-no-fsync")
	log := s.log()
	warn := strings.Index(log, "WARNING: --unsafe-no-fsync")
	if warn < 0 || warn > strings.Index(log, "serving") {
		t.Errorf("no warning before the serving line:\n%s", log)
	}
	if resps := roundTrip(t, s.addr, `{"op":"set","key":"k","value":"v"}`); !resps[0].OK {
		t.Errorf("set without fsync: %+v", resps[0].Error)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	// Word vectors of two dimensions, then three: refused by name.
	badVectors := filepath.Join(t.TempDir(), "mixed.txt")
	if err := os.WriteFile(badVectors, []byte("apple 0.1 0.2\npear 0.3 0.4 0.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--embeddings", "vectors.txt"}, "--embeddings is for the similarity index: add --enable-indexes"},
		{[]string{"--enable-indexes", "--embeddings", "/no/such/vectors.txt"}, "--embeddings: open /no/such/vectors.txt: no such file or directory"},
		{[]string{"--enable-indexes", "--embeddings", badVectors}, "--embeddings " + badVectors + ": "},
		{[]string{"--max-hits", "0"}, "--max-hits must be positive"},
		{[]string{"--segment-bytes", "2147483648"}, "--segment-bytes 2147483648 is over 1073741824 (1 GiB)"},
		{[]string{"--mode", "cluster"}, "cluster mode needs --node-id, --kv-port, --repl-port"},
		{[]string{"--mode=mesh"}, "mesh mode needs --node-id, --kv-port, --repl-port, --peer-repl-ports"},
		{[]string{"--mode", "raft"}, "--mode must be single, cluster or mesh"},
		{[]string{"--port", "70000"}, "--port must be in 0..65535"},
		{[]string{"--max-conns", "0"}, "--max-conns must be positive"},
		{[]string{"--line-timeout", "-1s"}, "--line-timeout must be positive"},
		{[]string{"--gather-wait-max", "1s"}, "--gather-wait-max must be in 0..100ms, not 1s"},
		{[]string{"--gather-wait-max", "-1ms"}, "--gather-wait-max must be in 0..100ms, not -1ms"},
		{[]string{"--data-dir", ""}, `--data-dir "" names no directory`},
		{[]string{"--port", "19980", "--metrics-addr", "127.0.0.1:19980"}, "--metrics-addr 127.0.0.1:19980 clashes with --port, 127.0.0.1:19980: give --metrics-addr a port of its own"},
		{[]string{"--port", "19980", "--metrics-addr", ":19980"}, "--metrics-addr :19980 clashes with --port, 127.0.0.1:19980"},
		{[]string{"--host", "::", "--port", "19980", "--metrics-addr", "[::1]:19980"}, "--metrics-addr [::1]:19980 clashes with --port, [::]:19980"},
		{[]string{"--no-such-flag"}, "flag provided but not defined"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		var stderr bytes.Buffer
		c := run(append([]string{"--data-dir", dir}, tc.args...), &stderr)
		if c != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, c, stderr.String(), tc.want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%v: created the data directory before refusing", tc.args)
		}
	}
}

func TestUnwritableDataDirExits1(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if c := run([]string{"--port", "0", "--data-dir", filepath.Join(file, "data")}, &stderr); c != 1 || !strings.Contains(stderr.String(), "not a directory") {
		t.Errorf("data dir under a file: exit %d, stderr %q; want 1 and a clear error", c, stderr.String())
	}
}

// A server that is recovering a log does not accept connections: a client
// is refused at once until the node has recovered, instead of connected and
// left without an answer through the replay. The port used to be bound
// before recovery; a dial then succeeded long before it ended.
func TestNoConnectionAcceptedDuringRecovery(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, "--unsafe-no-fsync")
	// 200,000 keys in 20 bulk_sets: a replay of a tenth of a second or more,
	// much longer than the dial loop below takes to notice a bound port.
	var lines []string
	value := strings.Repeat("v", 100)
	for b := 0; b < 20; b++ {
		var sb strings.Builder
		sb.WriteString(`{"op":"bulk_set","items":[`)
		for i := 0; i < 10_000; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"key":"key-%07d","value":"%s"}`, b*10_000+i, value)
		}
		sb.WriteString(`]}`)
		lines = append(lines, sb.String())
	}
	for _, r := range roundTrip(t, s.addr, lines...) {
		if !r.OK {
			t.Fatalf("filling: %v", r.Error)
		}
	}
	s.signal(syscall.SIGTERM)
	if c := s.exitCode(); c != 0 {
		t.Fatalf("exit code after SIGTERM = %d; stderr:\n%s", c, s.log())
	}

	addr := freeLoopbackAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	s = launch(t, "--port", port, "--data-dir", dir)
	refused := 0
	var nc net.Conn
	var acceptedAt time.Time
	for deadline := time.Now().Add(30 * time.Second); ; {
		var err error
		nc, err = net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			acceptedAt = time.Now()
			break
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial during recovery: %v; want connection refused", err)
		}
		refused++
		select {
		case <-s.exited:
			t.Fatalf("server exited (%v); stderr:\n%s", s.err, s.log())
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection accepted after 30s; stderr:\n%s", s.log())
		}
	}
	defer nc.Close()
	// Causality, not timing: the server logs the end of recovery, then
	// binds, then the connection completes.
	recoveredAt := logTime(t, s, "recovered 200000 keys")
	if !acceptedAt.After(recoveredAt) {
		t.Fatalf("a connection was accepted at %s, before recovery ended at %s (%d dials refused before it)",
			acceptedAt.Format(time.StampMicro), recoveredAt.Format(time.StampMicro), refused)
	}
	if refused == 0 {
		t.Fatal("no dial was refused: the test never saw the server before it listened")
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, `{"op":"get","key":"key-0199999","id":1}`+"\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(nc).ReadBytes('\n')
	if want := `{"id":1,"ok":true,"value":"` + value + `"}` + "\n"; err != nil || string(line) != want {
		t.Fatalf("get after recovery: %q, %v; want %q", line, err, want)
	}
	t.Logf("%d dials refused before recovery ended at %s; accepted at %s",
		refused, recoveredAt.Format(time.StampMicro), acceptedAt.Format(time.StampMicro))
}

// A port that is taken is reported before recovery, which may be long,
// thanks to a trial bind; the real bind comes after recovery.
func TestTakenPortFailsBeforeRecovery(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, port, _ := net.SplitHostPort(taken.Addr().String())
	s := launch(t, "--port", port, "--data-dir", t.TempDir())
	if c := s.exitCode(); c != 1 {
		t.Fatalf("exit code = %d, want 1; stderr:\n%s", c, s.log())
	}
	if log := s.log(); !strings.Contains(log, "dkv: cannot listen:") || !strings.Contains(log, "address already in use") || strings.Contains(log, "recovered") {
		t.Errorf("stderr %q: want cannot listen, address already in use, and no recovery", log)
	}
}

// freeLoopbackAddr is a loopback address on a port free now, below the
// ephemeral range (nodeproc.FreePorts): a port the kernel handed out by
// listening on port 0 is an ephemeral one, which an outgoing connection of
// any process may take before the server binds it (a CI run lost a node's
// --metrics-addr so: "address already in use").
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ports, err := nodeproc.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
}

// logTime waits for a log line of s that contains what, and returns the
// time it carries (the logger writes local time to the microsecond).
func logTime(t *testing.T, s *server, what string) time.Time {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, line := range strings.Split(s.log(), "\n") {
			if !strings.Contains(line, what) {
				continue
			}
			f := strings.Fields(line) // dkv: 2026/12/02 13:22:02.367703 recovered ...
			if len(f) < 3 {
				break
			}
			at, err := time.ParseInLocation("2006/01/02 15:04:05.000000", f[1]+" "+f[2], time.Local)
			if err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			return at
		}
	}
	t.Fatalf("no log line with %q; stderr:\n%s", what, s.log())
	return time.Time{}
}

// TestEventLoopsDefault: the host's one loop by default, with indexes or
// without, and what --event-loops says when it is given.
func TestEventLoopsDefault(t *testing.T) {
	hostDefault := realnet.DefaultHostConfig().EventLoops
	for _, c := range []struct {
		args []string
		want int
	}{
		{nil, hostDefault},
		{[]string{"--enable-indexes"}, hostDefault},
		{[]string{"--enable-indexes", "--event-loops", "4"}, 4},
		{[]string{"--event-loops", "0"}, 0},
		{[]string{"--enable-indexes", "--event-loops=0"}, 0},
	} {
		if hostDefault == 0 && slices.Contains(c.args, "4") {
			continue // no event loops on this system: only 0 is accepted
		}
		o, err := parseFlags(c.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if o.hostCfg.EventLoops != c.want {
			t.Errorf("%v: %d event loops, want %d", c.args, o.hostCfg.EventLoops, c.want)
		}
	}
}
