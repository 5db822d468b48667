// Package servetest runs a real node in a test's own process: a
// realnet.Host over a real data directory (the test's temporary one) and a
// loopback socket, stopped when the test ends. Tests of clients and tools
// use it to talk to the real thing without starting a server process.
package servetest

import (
	"context"
	"net"
	"testing"

	"dkv/core"
	"dkv/disk"
	"dkv/realnet"
)

// Serve runs node on a free loopback port until the test ends, and
// returns its address once it has recovered. cfg.Logf defaults to the
// test's log.
func Serve(tb testing.TB, node core.Node, cfg realnet.HostConfig) string {
	tb.Helper()
	d, err := disk.Open(tb.TempDir(), disk.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if cfg.Logf == nil {
		cfg.Logf = tb.Logf
	}
	h, err := realnet.NewHost(node, d, cfg)
	if err != nil {
		d.Close()
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.Close()
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		h.Shutdown()
		if err := <-done; err != nil {
			tb.Errorf("the node stopped with %v", err)
		}
		if c, ok := node.(interface{ Close() }); ok {
			c.Close()
		}
		d.Close()
	})
	select {
	case <-h.Ready():
	case err := <-done:
		tb.Fatalf("the node stopped before serving: %v", err)
	}
	return h.Addr().String()
}
