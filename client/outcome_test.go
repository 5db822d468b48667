package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"dkv/core"
)

// A write answered internal (a bug in the server) may have applied:
// PROTOCOL.md says to treat its outcome as unknown, and a ClusterKVClient
// reports it so. A KVClient's must match ErrUnknownOutcome too, its
// ServerError still reachable; a read's must not (found by review: a
// KVClient's set answered internal matched only the ServerError, which a
// caller takes for "not applied").
func TestInternalAnswerToAWriteIsUnknownOutcome(t *testing.T) {
	srv := newRawServer(t, answer(func(_ int, req *core.Request) core.Response {
		resp := core.ErrorResponse(core.CodeInternal, "scripted bug")
		resp.ID = req.ID
		return resp
	}))
	c := dialT(t, srv.addr)
	ctx := ctxT(t)
	var se *ServerError
	err := c.Set(ctx, "k", "v")
	if !errors.Is(err, ErrUnknownOutcome) || !errors.As(err, &se) || se.Code != core.CodeInternal {
		t.Fatalf("Set answered internal: err = %v; want ErrUnknownOutcome and the internal ServerError", err)
	}
	if _, err := c.Incr(ctx, "n", 1); !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Incr answered internal: err = %v; want ErrUnknownOutcome", err)
	}
	resp, err := c.Do(ctx, &core.Request{Op: core.OpDelete, Key: "k"})
	if resp == nil || !errors.Is(err, ErrUnknownOutcome) || !errors.As(err, &se) {
		t.Fatalf("Do(delete) answered internal = %+v, %v; want the response, ErrUnknownOutcome and the ServerError", resp, err)
	}
	_, err = c.Get(ctx, "k")
	if errors.Is(err, ErrUnknownOutcome) || !errors.As(err, &se) || se.Code != core.CodeInternal {
		t.Fatalf("Get answered internal: err = %v; want the internal ServerError alone", err)
	}
}

// A write whose answer was over the client's response limit was answered,
// but what the answer said is unknown: applied, or refused. It must match
// ErrUnknownOutcome, as a ClusterKVClient's and the Python client's do
// (found by review: a KVClient returned ErrResponseTooLarge alone, and
// the connection, rightly, stayed usable).
func TestWriteWithOversizeAnswerIsUnknownOutcome(t *testing.T) {
	big := strings.Repeat("x", 4096)
	srv := newRawServer(t, answer(func(_ int, req *core.Request) core.Response {
		if req.Op == core.OpGet {
			return valueOf(req)
		}
		// A conditional write refused, with the key's large value.
		resp := core.ErrorResponse(core.CodeConditionFailed, "the key holds another value")
		resp.ID, resp.Value = req.ID, &big
		return resp
	}))
	c := dialT(t, srv.addr, WithMaxResponseBytes(1024))
	ctx := ctxT(t)
	ok, err := c.CompareAndSwap(ctx, "k", "old", "new")
	if ok || !errors.Is(err, ErrResponseTooLarge) || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("CompareAndSwap with an oversize answer = %v, %v; want false, ErrResponseTooLarge and ErrUnknownOutcome", ok, err)
	}
	if v, err := c.Get(ctx, "small"); err != nil || v != "small" {
		t.Fatalf("Get(small) = %q, %v; want small on the same connection", v, err)
	}
	srv.wantAccepted(t, 1, "")
}

// A write still queued behind another's large write when the connection
// breaks never left the client: nothing of it reached the socket. It is
// retried on a new connection, as a write found unsent is, not reported
// ErrUnknownOutcome (found by review: every write queued behind a
// bulk_set to a server that stopped reading came back unknown).
func TestWriteQueuedBehindABrokenWriteIsNotUnknown(t *testing.T) {
	stop := make(chan struct{})
	var sets atomic.Int32
	srv := newRawServer(t, func(i int, nc net.Conn) {
		if i == 0 {
			<-stop // read nothing: the client's large write stalls
			return
		}
		answer(func(_ int, req *core.Request) core.Response {
			if req.Op == core.OpSet {
				sets.Add(1)
			}
			return valueOf(req)
		})(i, nc)
	})
	t.Cleanup(func() { close(stop) })
	// The request timeout bounds how long a write may wait for the server
	// to read: past it, the connection breaks.
	c := dialT(t, srv.addr, WithRequestTimeout(500*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := make([]KV, 12) // 12 MiB: more than the sockets hold
	for i := range big {
		big[i] = KV{Key: fmt.Sprint("big", i), Value: strings.Repeat("v", 1<<20)}
	}
	bulkErr := make(chan error, 1)
	go func() { bulkErr <- c.BulkSet(ctx, big) }()
	// Wait until the bulk_set is being written, by a writer that waits on
	// the socket.
	for writing := false; !writing; {
		c.mu.Lock()
		if cn := c.cur; cn != nil {
			cn.mu.Lock()
			writing = cn.writing && len(cn.pending) == 1
			cn.mu.Unlock()
		}
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	err := c.Set(ctx, "k", "v")
	if err != nil {
		t.Fatalf("the set queued behind the bulk_set: %v; want it sent again on a new connection", err)
	}
	if n := sets.Load(); n != 1 {
		t.Fatalf("the server read the set %d times; want once", n)
	}
	if err := <-bulkErr; !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("the bulk_set, cut off as it was written: %v; want ErrUnknownOutcome", err)
	}
}

// A call whose context has already ended sends nothing: no write applies,
// and none is reported ErrUnknownOutcome. (Found by review: the wait for
// a slot on the connection chose at random between the free slot and the
// ended context, and half such writes went out, then failed as unknown.)
func TestEndedContextSendsNothing(t *testing.T) {
	srv := startNode(t)
	c := dialT(t, srv.Addr)
	cc := dialClusterT(t, []string{startSoloCluster(t)})
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for name, cl := range map[string]interface {
		Set(context.Context, string, string) error
		Get(context.Context, string) (string, error)
	}{"KVClient": c, "ClusterKVClient": cc} {
		for i := range 40 {
			err := cl.Set(ended, fmt.Sprint("k", i), "v")
			if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnknownOutcome) {
				t.Fatalf("%s: Set with an ended context: %v; want context.Canceled alone", name, err)
			}
		}
		for i := range 40 {
			if _, err := cl.Get(ctxT(t), fmt.Sprint("k", i)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: k%d after a Set with an ended context: %v; want ErrNotFound", name, i, err)
			}
		}
	}
}
