package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"dkv/client"
	"dkv/internal/nodeproc"
)

func TestMeshModeFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		mode    string
		dirWant string
	}{
		{[]string{"--mode", "mesh"}, "mesh", "mesh-data"},
		{[]string{"--mode=masterless"}, "mesh", "mesh-data"},
		{[]string{"--mode", "mesh", "--dir", "x"}, "mesh", "x"},
		{nil, "cluster", "cluster-data"},
	} {
		cfg, err := parseFlags(tc.args, io.Discard)
		if err != nil || cfg.mode != tc.mode || cfg.dir != tc.dirWant {
			t.Errorf("%v: %v, %+v; want mode %s, dir %s", tc.args, err, cfg, tc.mode, tc.dirWant)
		}
	}
	var stderr bytes.Buffer
	if c := run([]string{"--mode", "raft", "--dir", t.TempDir()}, io.Discard, &stderr); c != 2 {
		t.Errorf("--mode raft: exit %d, %q", c, stderr.String())
	}
}

var meshTryLine = regexp.MustCompile(`kv --port (\d+) set hello world\n.*kv --port (\d+) get hello`)

// --mode mesh starts three mesh nodes, says where each listens and how to
// try them, restarts a node that was killed, which catches up, and stops
// them all on a signal.
func TestLaunchMesh(t *testing.T) {
	bin, err := nodeproc.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l := startLaunch(&config{mode: "mesh", dir: t.TempDir(), nodes: 3, bin: bin, restart: 100 * time.Millisecond,
		extra: []string{"--anti-entropy-interval", "100ms"}})
	out := l.out
	m := out.waitFor(t, meshTryLine, 0)
	var clients []string
	for i := range 3 {
		clients = append(clients, out.waitFor(t, regexp.MustCompile(`node `+strconv.Itoa(i)+`: pid \d+, client (127\.0\.0\.1:\d+), repl 127\.0\.0\.1:\d+`), 0)[1])
	}
	if clients[0] != "127.0.0.1:"+m[1] || clients[1] != "127.0.0.1:"+m[2] {
		t.Errorf("the try lines name ports %s and %s; nodes 0 and 1 listen on %v", m[1], m[2], clients)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := client.Dial("127.0.0.1:" + m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Set(ctx, "hello", "world"); err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(out.waitFor(t, killLine, 0)[1])
	mark := len(out.String())
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil { // node 2, a child of this test
		t.Fatal(err)
	}
	if err := w.Set(ctx, "while", "down"); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, regexp.MustCompile(`node 2 restarted`), mark)
	r, err := client.Dial(clients[2])
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, key := range []string{"hello", "while"} {
		for {
			v, err := r.Get(ctx, key)
			if err == nil && v != "" {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("get %q from the restarted node 2: %v\n%s", key, err, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	l.finish(t)
}
