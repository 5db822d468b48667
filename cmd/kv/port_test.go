package main

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"dkv/core"
	"dkv/realnet"
)

// startReplicationPort serves a real replication port (the peer transport
// of a cluster or mesh node), which waits handshake for a peer's hello,
// and returns its address.
func startReplicationPort(t *testing.T, handshake time.Duration) string {
	t.Helper()
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peer := gone.Addr().String() // a peer that is down: nothing listens there
	gone.Close()
	cfg := realnet.DefaultPeerConfig()
	cfg.ID, cfg.Listen, cfg.ClusterID = 0, "127.0.0.1:0", 0x5eed
	cfg.Peers = map[core.NodeID]string{1: peer}
	cfg.Logf = func(string, ...any) {}
	// kv's ping starts as no hello does: the port answers that it is a
	// replication port, and closes the connection.
	cfg.HandshakeTimeout = handshake
	p, err := realnet.NewPeers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(func(core.NodeID, []byte) {}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p.Addr().String()
}

// A write sent to a port that does not speak the client protocol (a
// node's replication port, or its metrics endpoint, an HTTP server) is
// not sent: a ping before it fails, exit 1, saying that nothing was
// written and which ports are the client's. It was a write of unknown
// outcome, exit 4, "read the key back", though nothing could have stored
// it (found by review). A read there gets the same hint.
func TestWriteToAPortThatIsNoClientPort(t *testing.T) {
	metrics := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(metrics.Close)
	for name, addr := range map[string]string{
		"a replication port": startReplicationPort(t, 200*time.Millisecond),
		// One that takes connections and answers nothing: the ping
		// times out.
		"a silent port":  silentPort(t),
		"an HTTP server": strings.TrimPrefix(metrics.URL, "http://"),
	} {
		for _, args := range [][]string{
			{"set", "k", "v"},
			{"incr", "n"},
			{"bulk-delete", "k"},
		} {
			code, out, stderr := kv(t, append([]string{"--addr", addr, "--timeout", "500ms"}, args...)...)
			if code != exitError || out != "" || !strings.Contains(stderr, "so the write was not sent") || !namesTheClientPort(stderr) {
				t.Fatalf("kv %q at %s: exit %d, stdout %q, stderr %q; want 1, not sent, and a hint about the port", args, name, code, out, stderr)
			}
			if strings.Contains(stderr, "outcome unknown") || strings.Contains(stderr, "read the key back") {
				t.Fatalf("kv %q at %s: stderr %q calls the write's outcome unknown", args, name, stderr)
			}
		}
		if name == "a silent port" {
			continue // a read that times out says no more than that
		}
		code, _, stderr := kv(t, "--addr", addr, "--timeout", "2s", "get", "k")
		if code != exitError || !namesTheClientPort(stderr) {
			t.Fatalf("kv get at %s: exit %d, stderr %q; want 1 and a hint about the port", name, code, stderr)
		}
	}
}

// namesTheClientPort reports whether kv's stderr points to the node's
// client port: its own hint, or a replication port's answer.
func namesTheClientPort(stderr string) bool {
	return strings.Contains(stderr, "--repl-port and --metrics-addr") || strings.Contains(stderr, "clients connect to the node's client port")
}

// silentPort takes connections and never answers on them.
func silentPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	var held []net.Conn
	t.Cleanup(func() {
		ln.Close()
		<-accepted
		for _, nc := range held {
			nc.Close()
		}
	})
	go func() {
		defer close(accepted)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, nc)
		}
	}()
	return ln.Addr().String()
}

// dropsWrites serves a client port that answers pings and drops the
// connection, unanswered, at the first request of any other op, as a
// server that crashes with a write in hand; writes counts those.
func dropsWrites(t *testing.T, writes *atomic.Int32) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					line, err := br.ReadBytes('\n')
					if err != nil {
						return
					}
					var req core.Request
					if json.Unmarshal(line, &req) != nil || req.Op != core.OpPing {
						writes.Add(1)
						return // closed unanswered
					}
					resp, _ := json.Marshal(&core.Response{ID: req.ID, OK: true})
					if _, err := nc.Write(append(resp, '\n')); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
