package client

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"dkv/core"
)

// Close ends the calls outstanding, those busy opening a connection too:
// a redial that waits on a server that took the connection but does not
// answer its password (or its TLS handshake) must not hold the call, and
// its goroutine, for the dial timeout after the client is closed (found
// by review: with the default options a call outlived Close by 5 s, by a
// minute with a dial timeout of a minute).
func TestCloseEndsACallThatIsRedialling(t *testing.T) {
	const pass = "sixteen-bytes-or-more"
	for _, name := range []string{"KVClient", "ClusterKVClient"} {
		t.Run(name, func(t *testing.T) {
			waiting := make(chan struct{}, 1)
			srv := newRawServer(t, func(i int, nc net.Conn) {
				lc := newLineConn(nc)
				req, err := lc.read()
				if err != nil {
					return
				}
				if i == 0 {
					// The first connection takes the password, then
					// the server closes it, as after its idle timeout.
					lc.write(core.Response{ID: req.ID, OK: true})
					return
				}
				// The next is taken, and its password never answered.
				waiting <- struct{}{}
				buf := make([]byte, 1)
				nc.Read(buf)
			})
			opts := []Option{WithPassword(pass), WithDialTimeout(time.Minute), WithRequestTimeout(time.Minute), WithAttemptTimeout(time.Minute)}
			var (
				get   func(context.Context, string) (string, error)
				close func() error
			)
			if name == "KVClient" {
				c := dialT(t, srv.addr, opts...)
				get, close = c.Get, c.Close
			} else {
				c := dialClusterT(t, []string{srv.addr}, opts...)
				get, close = c.Get, c.Close
			}
			done := make(chan error, 1)
			go func() {
				_, err := get(context.Background(), "k")
				done <- err
			}()
			select {
			case <-waiting:
			case err := <-done:
				t.Fatalf("the get ended before the server was waiting on it: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the client did not redial")
			}
			close()
			select {
			case err := <-done:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("the get ended with %v; want ErrClosed", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the get still waits on its redial 10 s after Close")
			}
		})
	}
}
