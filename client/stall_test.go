package client

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dkv/core"
)

// A connection that answers nothing for a request timeout while requests
// are outstanding is dead, however short the deadlines of the calls that
// gave up on it: a connection silently lost on the way (a middlebox's
// state gone, a host cut off) takes requests and returns nothing, and
// with calls coming one after another, each given up on well within the
// request timeout, it was never replaced (found by review: every call
// failed, for as long as they kept coming).
func TestSilentConnectionIsReplacedUnderImpatientCalls(t *testing.T) {
	srv := newRawServer(t, func(i int, nc net.Conn) {
		if i == 0 {
			// The lost path: what is sent goes nowhere.
			buf := make([]byte, 64<<10)
			for {
				if _, err := nc.Read(buf); err != nil {
					return
				}
			}
		}
		answer(func(i int, req *core.Request) core.Response { return valueOf(req) })(i, nc)
	})
	const requestTimeout = 300 * time.Millisecond
	c := dialT(t, srv.addr, WithRequestTimeout(requestTimeout))
	const (
		callers  = 8
		deadline = 50 * time.Millisecond
		tries    = 100 // 5 s each at most, many request timeouts
	)
	var (
		wg       sync.WaitGroup
		answered atomic.Bool
	)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tries {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				v, err := c.Get(ctx, "k")
				cancel()
				if err == nil && v == "k" {
					answered.Store(true)
				}
				if answered.Load() {
					return
				}
			}
		}()
	}
	wg.Wait()
	if !answered.Load() {
		t.Fatalf("%d callers made %d calls each with a deadline of %v on a connection that answers nothing, and none was answered: it was never replaced (request timeout %v)", callers, tries, deadline, requestTimeout)
	}
	if got := srv.accepted.Load(); got < 2 {
		t.Fatalf("the server accepted %d connections; want the silent one replaced", got)
	}
}
