package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dkv/client/clienttest"
	"dkv/core"
)

func dialT(t *testing.T, addr string, opts ...Option) *KVClient {
	t.Helper()
	c, err := Dial(addr, opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawServer accepts connections on loopback and hands the i-th (from 0) to
// serve, for tests that need a server misbehaving in a precise way.
type rawServer struct {
	addr     string
	accepted atomic.Int32
}

func newRawServer(t *testing.T, serve func(i int, nc net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			i := int(s.accepted.Add(1)) - 1
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				serve(i, nc)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// wantAccepted fails t unless the server accepted exactly n connections;
// why says what a different count would mean.
func (s *rawServer) wantAccepted(t *testing.T, n int32, why string) {
	t.Helper()
	if got := s.accepted.Load(); got != n {
		if why != "" {
			why = ": " + why
		}
		t.Fatalf("server accepted %d connections; want %d%s", got, n, why)
	}
}

// lineConn reads requests and writes responses by hand.
type lineConn struct {
	nc net.Conn
	r  *bufio.Reader
}

func newLineConn(nc net.Conn) *lineConn { return &lineConn{nc: nc, r: bufio.NewReader(nc)} }

func (lc *lineConn) read() (*core.Request, error) {
	line, err := lc.r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	req, bad := core.DecodeRequest(line[:len(line)-1])
	if bad != nil {
		return nil, bad.Error
	}
	return req, nil
}

func (lc *lineConn) write(resp core.Response) error {
	_, err := lc.nc.Write(core.AppendResponse(nil, &resp))
	return err
}

// answer serves a connection by answering each request, in order, with
// what f makes of it (i counts connections from 0), until it closes.
func answer(f func(i int, req *core.Request) core.Response) func(int, net.Conn) {
	return func(i int, nc net.Conn) {
		lc := newLineConn(nc)
		for {
			req, err := lc.read()
			if err != nil {
				return
			}
			lc.write(f(i, req))
		}
	}
}

// valueOf answers a request with its own key as value: a response that says
// which request it belongs to.
func valueOf(req *core.Request) core.Response {
	v := req.Key
	return core.Response{ID: req.ID, OK: true, Value: &v}
}

func TestSetGetDeleteBulkSet(t *testing.T) {
	srv := clienttest.NewServer(t)
	c := dialT(t, srv.Addr)
	ctx := ctxT(t)

	if err := c.Set(ctx, "hello", "world"); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "hello"); err != nil || v != "world" {
		t.Fatalf("Get(hello) = %q, %v; want world", v, err)
	}
	if err := c.Delete(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "hello"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v; want ErrNotFound", err)
	}
	items := []KV{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "c", Value: "3"}}
	if err := c.BulkSet(ctx, items); err != nil {
		t.Fatal(err)
	}
	for _, kv := range items {
		if v, err := c.Get(ctx, kv.Key); err != nil || v != kv.Value {
			t.Fatalf("Get(%s) = %q, %v; want %q", kv.Key, v, err, kv.Value)
		}
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Keys != 3 {
		t.Fatalf("Status.Keys = %d; want 3", st.Keys)
	}
}

// The empty string is a value like any other, in both directions.
func TestEmptyValue(t *testing.T) {
	srv := clienttest.NewServer(t)
	c := dialT(t, srv.Addr)
	ctx := ctxT(t)
	// JSON v2's omitempty drops a pointer to "", so core's "value" fields
	// must be omitzero for this to pass.
	if err := c.Set(ctx, "empty", ""); err != nil {
		t.Fatalf("Set of an empty value: %v", err)
	}
	if v, err := c.Get(ctx, "empty"); err != nil || v != "" {
		t.Fatalf("Get(empty) = %q, %v; want the empty value", v, err)
	}
}

func TestServerErrors(t *testing.T) {
	srv := clienttest.NewServer(t)
	c := dialT(t, srv.Addr)
	ctx := ctxT(t)

	_, err := c.Get(ctx, "missing")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != core.CodeNotFound {
		t.Fatalf("Get(missing): err = %v; want a not_found *ServerError", err)
	}
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("errors.Is(%v, ErrNotFound) = false", err)
	}

	// A server error that is not not_found must not look like one.
	err = c.Set(ctx, "", "v")
	if !errors.As(err, &se) || se.Code != core.CodeBadRequest {
		t.Fatalf("Set with empty key: err = %v; want bad_request", err)
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("bad_request error %v matches ErrNotFound or ErrUnknownOutcome", err)
	}

	// Do hands back the raw response and the typed error together.
	resp, err := c.Do(ctx, &core.Request{Op: "frobnicate"})
	if resp == nil || resp.OK || !errors.As(err, &se) || se.Code != core.CodeUnknownOp {
		t.Fatalf("Do(frobnicate) = %+v, %v; want an unknown_op response and error", resp, err)
	}
}

func TestNotLeaderCarriesLeader(t *testing.T) {
	srv := newRawServer(t, answer(func(_ int, req *core.Request) core.Response {
		resp := core.ErrorResponse(core.CodeNotLeader, "not the leader")
		resp.Error.Leader = "10.0.0.2:9999"
		resp.ID = req.ID
		return resp
	}))
	c := dialT(t, srv.addr)
	err := c.Set(ctxT(t), "k", "v")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != core.CodeNotLeader || se.Leader != "10.0.0.2:9999" {
		t.Fatalf("err = %v; want not_leader naming 10.0.0.2:9999", err)
	}
	if !strings.Contains(err.Error(), "10.0.0.2:9999") {
		t.Fatalf("error text %q does not name the leader", err)
	}
}

// Many goroutines share one connection and each gets its own answer.
func TestConcurrentCallsShareOneConnection(t *testing.T) {
	srv := clienttest.NewServer(t)
	c := dialT(t, srv.Addr)
	ctx := ctxT(t)
	const workers, opsEach = 32, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range opsEach {
				k := fmt.Sprintf("w%d-k%d", w, i)
				if err := c.Set(ctx, k, k+"-v"); err != nil {
					errs <- err
					return
				}
				v, err := c.Get(ctx, k)
				if err != nil || v != k+"-v" {
					errs <- fmt.Errorf("Get(%s) = %q, %v", k, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := srv.Accepted(); n != 1 {
		t.Fatalf("server accepted %d connections; want 1", n)
	}
}

// The server reads all n requests before answering any: a client that
// waited for each response before sending the next request would hang.
func TestPipelining(t *testing.T) {
	const n = 20
	ids := make(chan string, n)
	srv := newRawServer(t, func(_ int, nc net.Conn) {
		lc := newLineConn(nc)
		var reqs []*core.Request
		for len(reqs) < n {
			req, err := lc.read()
			if err != nil {
				return
			}
			ids <- string(req.ID)
			reqs = append(reqs, req)
		}
		for _, req := range reqs {
			lc.write(valueOf(req))
		}
		drain(lc)
	})
	c := dialT(t, srv.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprint("k", i)
			v, err := c.Get(ctx, k)
			if err == nil && v != k {
				err = fmt.Errorf("Get(%s) = %q: a response reached the wrong caller", k, v)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if id == "" || seen[id] {
			t.Fatalf("request id %q missing or repeated", id)
		}
		seen[id] = true
	}
}

// drain reads requests and never answers, until the connection closes.
func drain(lc *lineConn) {
	for {
		if _, err := lc.read(); err != nil {
			return
		}
	}
}

// An abandoned call's response is discarded when it arrives, and the next
// call on the same connection gets its own response.
func TestCancelledCallDoesNotDesync(t *testing.T) {
	srv := newRawServer(t, answer(func(_ int, req *core.Request) core.Response {
		if req.Key == "slow" {
			time.Sleep(200 * time.Millisecond)
		}
		return valueOf(req)
	}))
	c := dialT(t, srv.addr)
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Get(short, "slow")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get(slow) err = %v; want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Fatalf("Get(slow) returned after %v; the deadline was 50ms", d)
	}
	for _, k := range []string{"fast1", "fast2"} {
		if v, err := c.Get(ctxT(t), k); err != nil || v != k {
			t.Fatalf("Get(%s) = %q, %v; want %q", k, v, err, k)
		}
	}
	srv.wantAccepted(t, 1, "no reconnect")
}

// A write abandoned after it was sent may have applied: say so.
func TestExpiredWriteIsUnknownOutcome(t *testing.T) {
	release := make(chan struct{})
	srv := newRawServer(t, answer(func(_ int, req *core.Request) core.Response {
		<-release
		return core.Response{ID: req.ID, OK: true}
	}))
	defer close(release)
	c := dialT(t, srv.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Set(ctx, "k", "v")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("err = %v; want DeadlineExceeded and ErrUnknownOutcome", err)
	}
}

// A context with no deadline gets the client's request timeout.
func TestDefaultRequestTimeout(t *testing.T) {
	srv := newRawServer(t, func(_ int, nc net.Conn) { drain(newLineConn(nc)) })
	c := dialT(t, srv.addr, WithRequestTimeout(100*time.Millisecond))
	start := time.Now()
	err := c.Ping(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping err = %v; want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Ping returned after %v; the request timeout was 100ms", d)
	}
}

// A server that answers nothing for a whole request timeout is treated as
// dead: the next call redials instead of queueing behind the stalled ones.
func TestStalledConnectionIsReplaced(t *testing.T) {
	srv := newRawServer(t, func(i int, nc net.Conn) {
		lc := newLineConn(nc)
		for {
			req, err := lc.read()
			if err != nil {
				return
			}
			if i > 0 {
				lc.write(valueOf(req))
			}
		}
	})
	c := dialT(t, srv.addr, WithRequestTimeout(100*time.Millisecond))
	if _, err := c.Get(context.Background(), "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first Get err = %v; want DeadlineExceeded", err)
	}
	if v, err := c.Get(context.Background(), "b"); err != nil || v != "b" {
		t.Fatalf("Get(b) = %q, %v; want it answered on a new connection", v, err)
	}
	srv.wantAccepted(t, 2, "")
}

// The server drops the first connection after reading a request. A write on
// it fails with ErrUnknownOutcome and is not repeated; a read is retried
// once on a new connection; either way the next call redials.
func TestConnectionLoss(t *testing.T) {
	for _, tc := range []struct {
		op       string
		call     func(*KVClient) error
		wantErr  error // nil: the call succeeds after a retry
		wantSeen int   // how many times the server reads the request
	}{
		{"set", func(c *KVClient) error { return c.Set(ctxT(t), "k", "v") }, ErrUnknownOutcome, 1},
		{"delete", func(c *KVClient) error { return c.Delete(ctxT(t), "k") }, ErrUnknownOutcome, 1},
		{"bulk_set", func(c *KVClient) error { return c.BulkSet(ctxT(t), []KV{{Key: "k", Value: "v"}}) }, ErrUnknownOutcome, 1},
		{"set", func(c *KVClient) error { return c.SetWithTTL(ctxT(t), "k", "v", time.Minute) }, ErrUnknownOutcome, 1},
		{"expire", func(c *KVClient) error { return c.Expire(ctxT(t), "k", time.Minute) }, ErrUnknownOutcome, 1},
		{"persist", func(c *KVClient) error { _, err := c.Persist(ctxT(t), "k"); return err }, ErrUnknownOutcome, 1},
		// Not idempotent: a second send could count twice.
		{"incr", func(c *KVClient) error { _, err := c.Incr(ctxT(t), "k", 1); return err }, ErrUnknownOutcome, 1},
		{"get", func(c *KVClient) error { _, err := c.Get(ctxT(t), "k"); return err }, nil, 2},
		{"ttl", func(c *KVClient) error { _, _, err := c.TTL(ctxT(t), "k"); return err }, nil, 2},
		{"ping", func(c *KVClient) error { return c.Ping(ctxT(t)) }, nil, 2},
		{"status", func(c *KVClient) error { _, err := c.Status(ctxT(t)); return err }, nil, 2},
	} {
		t.Run(tc.op, func(t *testing.T) {
			var seen atomic.Int32
			srv := newRawServer(t, func(i int, nc net.Conn) {
				lc := newLineConn(nc)
				for {
					req, err := lc.read()
					if err != nil {
						return
					}
					if req.Op == tc.op {
						seen.Add(1)
					}
					if i == 0 {
						return // drop the connection, unanswered
					}
					resp := valueOf(req)
					resp.Status = &core.Status{Mode: "raw"}
					lc.write(resp)
				}
			})
			c := dialT(t, srv.addr)
			err := tc.call(c)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("err = %v; want success after one retry", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v; want %v", err, tc.wantErr)
			}
			if n := seen.Load(); n != int32(tc.wantSeen) {
				t.Fatalf("server saw the %s %d times; want %d", tc.op, n, tc.wantSeen)
			}
			if err := c.Ping(ctxT(t)); err != nil {
				t.Fatalf("Ping after the loss: %v", err)
			}
			srv.wantAccepted(t, 2, "")
		})
	}
}

// Every outstanding call fails when the connection breaks, not only the
// one at the head.
func TestConnectionLossFailsAllOutstanding(t *testing.T) {
	const n = 10
	srv := newRawServer(t, func(i int, nc net.Conn) {
		lc := newLineConn(nc)
		for range n {
			if _, err := lc.read(); err != nil {
				return
			}
		}
		// All n read, none answered: now drop.
	})
	c := dialT(t, srv.addr, WithRetries(0))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Set(ctxT(t), fmt.Sprint("k", i), "v")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrUnknownOutcome) {
			t.Errorf("err = %v; want ErrUnknownOutcome", err)
		}
	}
}

func TestWrongIDIsProtocolError(t *testing.T) {
	srv := newRawServer(t, answer(func(i int, req *core.Request) core.Response {
		resp := valueOf(req)
		if i == 0 {
			resp.ID = []byte(`"not-yours"`)
		}
		return resp
	}))
	c := dialT(t, srv.addr)
	// A read is retried once on a new connection, which echoes correctly.
	if v, err := c.Get(ctxT(t), "k"); err != nil || v != "k" {
		t.Fatalf("Get = %q, %v; want k after a retry", v, err)
	}
	srv.wantAccepted(t, 2, "")
}

func TestProtocolViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(lc *lineConn, req *core.Request)
	}{
		{"wrong id", func(lc *lineConn, req *core.Request) {
			lc.write(core.Response{ID: []byte("999999"), OK: true})
		}},
		{"no id on success", func(lc *lineConn, req *core.Request) {
			lc.write(core.Response{OK: true})
		}},
		{"not json", func(lc *lineConn, req *core.Request) {
			lc.nc.Write([]byte("hello\n"))
		}},
		{"unsolicited", func(lc *lineConn, req *core.Request) {
			lc.write(core.Response{ID: req.ID, OK: true})
			lc.write(core.Response{ID: req.ID, OK: true})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(_ int, nc net.Conn) {
				lc := newLineConn(nc)
				for {
					req, err := lc.read()
					if err != nil {
						return
					}
					tc.reply(lc, req)
				}
			})
			c := dialT(t, srv.addr)
			err := c.Set(ctxT(t), "k", "v")
			if tc.name == "unsolicited" {
				// The set itself succeeds; the stray line breaks the
				// connection afterwards, which the next call notices
				// before it sends anything, and so redials.
				if err != nil {
					t.Fatalf("Set: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
				if err := c.Set(ctxT(t), "k2", "v"); err != nil {
					t.Fatalf("Set after the stray line: %v", err)
				}
				srv.wantAccepted(t, 2, "the stray line must break the first")
				return
			}
			if !errors.Is(err, ErrProtocol) || !errors.Is(err, ErrUnknownOutcome) {
				t.Fatalf("err = %v; want ErrProtocol and ErrUnknownOutcome", err)
			}
		})
	}
}

// An error response without an id answers the head request: the server
// could not parse its line, so it could not echo the id.
func TestErrorWithoutIDIsAccepted(t *testing.T) {
	srv := newRawServer(t, answer(func(int, *core.Request) core.Response {
		return core.ErrorResponse(core.CodeTooLarge, "request line too long")
	}))
	c := dialT(t, srv.addr)
	err := c.Set(ctxT(t), "k", "v")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != core.CodeTooLarge {
		t.Fatalf("err = %v; want a too_large ServerError", err)
	}
}

func TestOversizeResponseIsSkipped(t *testing.T) {
	big := strings.Repeat("x", 4096)
	srv := newRawServer(t, answer(func(_ int, req *core.Request) core.Response {
		resp := valueOf(req)
		if req.Key == "big" {
			resp.Value = &big
		}
		return resp
	}))
	c := dialT(t, srv.addr, WithMaxResponseBytes(1024))
	if _, err := c.Get(ctxT(t), "big"); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("Get(big) err = %v; want ErrResponseTooLarge", err)
	}
	if v, err := c.Get(ctxT(t), "small"); err != nil || v != "small" {
		t.Fatalf("Get(small) = %q, %v; want small on the same connection", v, err)
	}
	srv.wantAccepted(t, 1, "")
}

func TestRequestTooLargeIsNotSent(t *testing.T) {
	srv := clienttest.NewServer(t)
	c := dialT(t, srv.Addr, WithMaxRequestBytes(100))
	err := c.Set(ctxT(t), "k", strings.Repeat("v", 200))
	if !errors.Is(err, ErrRequestTooLarge) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("err = %v; want ErrRequestTooLarge, outcome known", err)
	}
	if reqs := srv.Requests(); len(reqs) != 0 {
		t.Fatalf("server received %d requests; want 0", len(reqs))
	}
}

// With WithMaxInFlight(2), the server never has more than two requests
// outstanding, yet does have two: the limit bounds pipelining, it does not
// disable it.
func TestMaxInFlight(t *testing.T) {
	var outstanding, peak atomic.Int32
	srv := newRawServer(t, func(_ int, nc net.Conn) {
		lc := newLineConn(nc)
		reqs := make(chan *core.Request, 100)
		go func() {
			for req := range reqs {
				time.Sleep(10 * time.Millisecond)
				outstanding.Add(-1)
				lc.write(valueOf(req))
			}
		}()
		defer close(reqs)
		for {
			req, err := lc.read()
			if err != nil {
				return
			}
			n := outstanding.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			reqs <- req
		}
	})
	c := dialT(t, srv.addr, WithMaxInFlight(2))
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Ping(ctxT(t)); err != nil {
				t.Errorf("Ping %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak outstanding requests = %d; want 2", p)
	}
}

func TestDialRetriesUntilServerListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	if _, err := Dial(addr, WithRetries(0)); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}

	go func() {
		time.Sleep(150 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return // port taken meanwhile: Dial below fails and says so
		}
		t.Cleanup(func() { ln.Close() })
		nc, err := ln.Accept()
		if err == nil {
			t.Cleanup(func() { nc.Close() })
		}
	}()
	c, err := Dial(addr, WithRetries(10))
	if err != nil {
		t.Fatalf("Dial with retries: %v", err)
	}
	c.Close()
}

func TestClose(t *testing.T) {
	srv := newRawServer(t, func(_ int, nc net.Conn) { drain(newLineConn(nc)) })
	c := dialT(t, srv.addr)
	errs := make(chan error, 2)
	go func() { errs <- c.Set(ctxT(t), "k", "v") }()
	go func() { errs <- c.Ping(ctxT(t)) }()
	time.Sleep(50 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("outstanding call err = %v; want ErrClosed", err)
		}
	}
	if err := c.Ping(ctxT(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close err = %v; want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// The server restarts (drops every connection) between calls: the client
// notices and redials without the caller doing anything.
func TestRedialAfterServerDropsConnections(t *testing.T) {
	srv := clienttest.NewServer(t)
	const timeout = 200 * time.Millisecond
	c := dialT(t, srv.Addr, WithRequestTimeout(timeout))
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	srv.DropConnections()
	// Long enough for the first call's deadlines to pass, which must not
	// keep the next call from seeing that the conn is dead.
	time.Sleep(timeout + 50*time.Millisecond)
	// A write first: it must find the conn dead before sending on it, or
	// its outcome would be unknown.
	if err := c.Set(ctx, "k2", "v2"); err != nil {
		t.Fatalf("Set after drop: %v", err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || v != "v" {
		t.Fatalf("Get after drop = %q, %v", v, err)
	}
	if n := srv.Accepted(); n != 2 {
		t.Fatalf("server accepted %d connections; want 2", n)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []Option{WithMaxInFlight(0), WithRetries(-1), WithRequestTimeout(0), WithDialTimeout(-1), WithMaxResponseBytes(0), WithMaxRequestBytes(0)} {
		if _, err := Dial("127.0.0.1:1", o); err == nil || !strings.Contains(err.Error(), "must") {
			t.Errorf("Dial with invalid option: err = %v; want a validation error", err)
		}
	}
}

func TestReadLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want []string // "!" marks a line reported too large
	}{
		{in: "a\nbb\n", max: 10, want: []string{"a", "bb"}},
		{in: "\n", max: 10, want: []string{""}},
		{in: "abc\nd\n", max: 3, want: []string{"abc", "d"}},
		{in: "abcd\nd\n", max: 3, want: []string{"!", "d"}},
		{in: strings.Repeat("x", 100) + "\nok\n", max: 50, want: []string{"!", "ok"}},
		{in: "ok\npartial", max: 10, want: []string{"ok"}}, // a torn last line is not a line
	} {
		// A 16-byte buffer makes long lines arrive in fragments.
		br := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
		var got []string
		var err error
		var part []byte
		var partTooLarge bool
		for {
			var line []byte
			var tooLarge bool
			line, tooLarge, err = readLine(br, tc.max, &part, &partTooLarge)
			if err != nil {
				break
			}
			if tooLarge {
				got = append(got, "!")
			} else {
				got = append(got, string(line))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("readLine(%q, %d) lines = %q; want %q", tc.in, tc.max, got, tc.want)
		}
		if err != io.EOF {
			t.Errorf("readLine(%q): final err = %v; want io.EOF", tc.in, err)
		}
	}
}

// A server at its connection limit answers a new connection with one
// too_many_connections line and closes it; callers see that code.
func TestTooManyConnections(t *testing.T) {
	srv := newRawServer(t, func(_ int, nc net.Conn) {
		resp := core.ErrorResponse(core.CodeTooManyConns, "server has 1 connections open, its limit")
		nc.Write(core.AppendResponse(nil, &resp))
	})
	c := dialT(t, srv.addr, WithRetries(0))
	time.Sleep(50 * time.Millisecond) // let the rejection arrive before the call
	err := c.Set(ctxT(t), "k", "v")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != core.CodeTooManyConns {
		t.Fatalf("err = %v; want too_many_connections", err)
	}
	if errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("err = %v; a refused connection never carried the write", err)
	}
}

// The caller reading the socket gives up halfway through a response line;
// the next caller takes over the read and finishes that line before its
// own, on the same connection.
func TestReaderDeadlineMidLine(t *testing.T) {
	srv := newRawServer(t, func(_ int, nc net.Conn) {
		lc := newLineConn(nc)
		a, err := lc.read()
		if err != nil {
			return
		}
		b, err := lc.read()
		if err != nil {
			return
		}
		first := core.AppendResponse(nil, ptr(valueOf(a)))
		nc.Write(first[:len(first)/2])
		time.Sleep(150 * time.Millisecond)
		nc.Write(first[len(first)/2:])
		lc.write(valueOf(b))
		drain(lc)
	})
	c := dialT(t, srv.addr)
	errA := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.Get(ctx, "a")
		errA <- err
	}()
	time.Sleep(10 * time.Millisecond) // a is sent first and reads first
	if v, err := c.Get(ctxT(t), "b"); err != nil || v != "b" {
		t.Fatalf("Get(b) = %q, %v; want b", v, err)
	}
	if err := <-errA; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get(a) err = %v; want DeadlineExceeded", err)
	}
	srv.wantAccepted(t, 1, "")
}

func ptr[T any](v T) *T { return &v }

// Cancelling a context without a deadline interrupts the caller reading
// the socket.
func TestCancelInterruptsRead(t *testing.T) {
	srv := newRawServer(t, func(_ int, nc net.Conn) { drain(newLineConn(nc)) })
	c := dialT(t, srv.addr)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if err := c.Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ping err = %v; want Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Ping returned after %v; it was cancelled at 50ms", d)
	}
}

// Many callers share a connection to a server that answers after random
// delays, with deadlines so short that many give up: the read role passes
// between them all the while. Every answer reaches its own caller, nobody
// hangs, and the connection is never replaced.
func TestSharedConnectionWithAbandonedCalls(t *testing.T) {
	srv := newRawServer(t, func(i int, nc net.Conn) {
		lc := newLineConn(nc)
		reqs := make(chan *core.Request, 1024)
		go func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for req := range reqs {
				time.Sleep(time.Duration(r.IntN(100)) * time.Microsecond)
				lc.write(valueOf(req))
			}
		}()
		defer close(reqs)
		for {
			req, err := lc.read()
			if err != nil {
				return
			}
			reqs <- req
		}
	})
	c := dialT(t, srv.addr)
	const workers, opsEach = 16, 150
	var ok, gaveUp atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for i := range opsEach {
				k := fmt.Sprintf("w%d-%d", w, i)
				// Every fourth caller is patient; the rest mostly are not.
				timeout := time.Duration(500+r.IntN(5000)) * time.Microsecond
				if i%4 == 0 {
					timeout = 5 * time.Second
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				v, err := c.Get(ctx, k)
				cancel()
				switch {
				case err == nil && v != k:
					t.Errorf("Get(%s) = %q: an answer reached the wrong caller", k, v)
					return
				case err == nil:
					ok.Add(1)
				case errors.Is(err, context.DeadlineExceeded):
					gaveUp.Add(1)
				default:
					t.Errorf("Get(%s): %v", k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d answered, %d gave up", ok.Load(), gaveUp.Load())
	if ok.Load() == 0 || gaveUp.Load() == 0 {
		t.Fatalf("%d answered, %d gave up; the test needs both", ok.Load(), gaveUp.Load())
	}
	srv.wantAccepted(t, 1, "")
	if v, err := c.Get(ctxT(t), "last"); err != nil || v != "last" {
		t.Fatalf("Get(last) = %q, %v", v, err)
	}
}

// Large requests and large responses at once: a server that answers each
// request before reading the next stops reading while its answers wait to
// be read. A caller must never wait on a full socket with nobody reading.
func TestLargeRequestsAndResponsesBothWays(t *testing.T) {
	srv := newRawServer(t, answer(func(_ int, req *core.Request) core.Response {
		v := strings.Repeat(*req.Value, 4)
		return core.Response{ID: req.ID, OK: true, Value: &v}
	}))
	// Generous, the context and the writes' own deadline (the request
	// timeout) alike: under the race detector, on a loaded machine, the
	// server decodes 16 MiB and the client 64 MiB slowly enough that one
	// write of the queue waited more than the default 10 s (a CI run).
	c := dialT(t, srv.addr, WithRequestTimeout(60*time.Second))
	// 16 MiB out and 64 MiB back: more than the kernel buffers between
	// the two, even grown to their largest.
	const callers = 16
	big := strings.Repeat("x", 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Do(ctx, &core.Request{Op: core.OpSet, Key: fmt.Sprint("k", i), Value: &big})
			if err != nil || resp.Value == nil || len(*resp.Value) != 4*len(big) {
				t.Errorf("call %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
}

// A connection left idle for longer than the request timeout is still used:
// the deadlines of earlier calls, long passed, must not fail the next one's
// writing or its look at the idle socket.
func TestIdleLongerThanRequestTimeout(t *testing.T) {
	stall := make(chan struct{})
	srv := newRawServer(t, func(_ int, nc net.Conn) {
		<-stall // let the client fill the socket first
		// Answer without decoding: 4 MiB of JSON are slow to decode
		// under the race detector, and only the id matters.
		br := bufio.NewReaderSize(nc, 1<<20)
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			id, _, _ := bytes.Cut(line[bytes.Index(line, []byte(`"id":`))+5:], []byte(","))
			nc.Write(fmt.Appendf(nil, `{"id":%s,"ok":true}`+"\n", id))
		}
	})
	const timeout = 500 * time.Millisecond
	c := dialT(t, srv.addr, WithRequestTimeout(timeout))
	// Four MiB do not fit the socket while the server is not reading: the
	// rest goes out on a writer goroutine, under a write deadline.
	big := strings.Repeat("x", 1<<20)
	errs := make(chan error, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 4 {
		go func() { errs <- c.Set(ctx, fmt.Sprint("k", i), big) }()
	}
	time.Sleep(100 * time.Millisecond)
	close(stall)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("Set of 1 MiB: %v", err)
		}
	}
	time.Sleep(timeout + 100*time.Millisecond)
	if err := c.Set(context.Background(), "k", "v"); err != nil {
		t.Fatalf("Set after idling: %v", err)
	}
	srv.wantAccepted(t, 1, "the idle conn was given up")
}
