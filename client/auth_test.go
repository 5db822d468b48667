package client

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"
)

// A server that takes the connection but never answers the password (a
// node stopped with SIGSTOP, a port that is not dkv's) must fail Dial
// within the dial timeout, as an unreachable one does; a context without
// a deadline is no licence to wait for ever (found by review: Dial and
// DialCluster with WithPassword hung).
func TestDialWithPasswordToASilentServer(t *testing.T) {
	srv := newRawServer(t, func(i int, nc net.Conn) {
		// Read the password line and never answer.
		bufio.NewReader(nc).ReadBytes('\n')
		buf := make([]byte, 1)
		nc.Read(buf)
	})
	const dialTimeout = 200 * time.Millisecond
	opts := []Option{WithPassword("sixteen-bytes-or-more"), WithDialTimeout(dialTimeout), WithRetries(0)}
	dials := map[string]func() error{
		"Dial": func() error {
			c, err := Dial(srv.addr, opts...)
			if err == nil {
				c.Close()
			}
			return err
		},
		"DialCluster": func() error {
			c, err := DialCluster(context.Background(), []string{srv.addr}, opts...)
			if err == nil {
				c.Close()
			}
			return err
		},
	}
	for name, dial := range dials {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- dial() }()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("dial succeeded against a server that never took the password")
				}
				t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
			case <-time.After(20 * dialTimeout):
				t.Fatalf("%s still waiting after %v (dial timeout %v)", name, 20*dialTimeout, dialTimeout)
			}
		})
	}
}
