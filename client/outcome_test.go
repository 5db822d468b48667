package client

import (
	"errors"
	"strings"
	"testing"

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
