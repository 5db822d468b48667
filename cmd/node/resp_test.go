package main

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The real redis-cli and redis-benchmark (Debian's redis-tools) against a
// real server process: RESP on the JSON port, with no flag to turn it on.

func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (Debian's redis-tools has it); skipping", name)
	}
	return path
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tool runs a redis tool against the server and returns its output.
func tool(t *testing.T, timeout time.Duration, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s did not finish in %v; output:\n%s", filepath.Base(bin), strings.Join(args, " "), timeout, out)
	}
	if err != nil {
		t.Fatalf("%s %s: %v; output:\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// redisCLIOn runs the real redis-cli (cli) against the server on port
// and returns its output, its trailing line breaks trimmed.
func redisCLIOn(t *testing.T, cli, port string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		return strings.TrimRight(tool(t, 30*time.Second, cli, append([]string{"-p", port}, args...)...), "\n")
	}
}

func TestRedisCLI(t *testing.T) {
	cli := needTool(t, "redis-cli")
	s := start(t, t.TempDir())
	p := port(t, s.addr)
	run := redisCLIOn(t, cli, p)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "a", "b"}, "OK"},
		{[]string{"get", "a"}, "b"},
		{[]string{"get", "missing"}, ""},
		{[]string{"mset", "x", "1", "y", "2"}, "OK"},
		{[]string{"mget", "x", "missing", "y"}, "1\n\n2"},
		{[]string{"exists", "x", "y", "missing"}, "2"},
		{[]string{"del", "x", "missing"}, "1"},
		{[]string{"dbsize"}, "2"},
		{[]string{"ping"}, "PONG"},
		{[]string{"set", "a", "b", "keepttl"}, "ERR dkv does not support SET option 'KEEPTTL': every SET replaces the key's expiry (with EX, PX, EXAT or PXAT, or none); SET takes a key, a value, NX or XX, and one of EX seconds, PX milliseconds, EXAT unix-time-seconds, PXAT unix-time-milliseconds"},
		{[]string{"set", "c", "1", "nx"}, "OK"},
		{[]string{"set", "c", "2", "nx"}, ""},
		{[]string{"setnx", "c", "3"}, "0"},
		{[]string{"set", "c", "4", "xx"}, "OK"},
		{[]string{"get", "c"}, "4"},
		{[]string{"del", "c"}, "1"},
		{[]string{"hello", "3"}, "NOPROTO this server speaks RESP2 only; send HELLO 2, or no HELLO"},
		{[]string{"nosuch", "x"}, "ERR unknown command 'nosuch', with args beginning with: 'x' "},
	} {
		if got := run(tc.args...); got != tc.want {
			t.Errorf("redis-cli %s = %q, want %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}
	if info := run("info", "keyspace"); !strings.Contains(info, "db0:keys=2,expires=0,avg_ttl=0") {
		t.Errorf("redis-cli info keyspace = %q", info)
	}
	// Commands read from standard input, as a script would send them.
	cmd := exec.Command(cli, "-p", p)
	cmd.Stdin = strings.NewReader("set s 'one two'\nget s\n")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "OK\none two\n" {
		t.Errorf("redis-cli reading commands from stdin: %q, %v", out, err)
	}
	// The same data over JSON.
	resps := roundTrip(t, s.addr, `{"op":"get","key":"a"}`)
	if resps[0].Value == nil || *resps[0].Value != "b" {
		t.Errorf("JSON get of a key redis-cli set: %+v", resps[0])
	}
}

func TestRedisBenchmark(t *testing.T) {
	bench := needTool(t, "redis-benchmark")
	s := start(t, t.TempDir())
	p := port(t, s.addr)
	for _, tc := range []struct {
		args  []string
		tests []string
	}{
		{[]string{"-t", "set,get", "-n", "2000", "-q"}, []string{"SET", "GET"}},
		{[]string{"-t", "set,get,mset,ping", "-n", "4000", "-c", "20", "-P", "16", "-q"}, []string{"SET", "GET"}},
		{[]string{"-t", "incr", "-n", "2000", "-q"}, []string{"INCR"}},
		{[]string{"-t", "incr", "-n", "4000", "-c", "20", "-P", "16", "-q"}, []string{"INCR"}},
	} {
		out := tool(t, 2*time.Minute, bench, append([]string{"-p", p}, tc.args...)...)
		for _, test := range tc.tests {
			if !strings.Contains(out, test+": ") || !strings.Contains(out, "requests per second") {
				t.Errorf("redis-benchmark %s: no %q figure in its output:\n%s", strings.Join(tc.args, " "), test+": ", out)
			}
		}
		if strings.Contains(strings.ToLower(strings.ReplaceAll(out, "Could not fetch server CONFIG", "")), "error") {
			t.Errorf("redis-benchmark %s reported errors:\n%s", strings.Join(tc.args, " "), out)
		}
	}
	// Without -r every INCR is of the one key: each counted once.
	resps := roundTrip(t, s.addr, `{"op":"get","key":"counter:__rand_int__"}`)
	if resps[0].Value == nil || *resps[0].Value != "6000" {
		t.Errorf("the counter redis-benchmark's 6000 INCRs made: %+v", resps[0])
	}
}
