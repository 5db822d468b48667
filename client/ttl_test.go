package client

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"dkv/client/clienttest"
	"dkv/core"
	"dkv/election"
	"dkv/internal/servetest"
	"dkv/realnet"
)

// ttlClient is what the TTL tests call: a KVClient or a ClusterKVClient.
type ttlClient interface {
	Set(ctx context.Context, key, value string) error
	SetWithTTL(ctx context.Context, key, value string, ttl time.Duration) error
	SetIfAbsentWithTTL(ctx context.Context, key, value string, ttl time.Duration) (bool, error)
	CompareAndSwapWithTTL(ctx context.Context, key, old, new string, ttl time.Duration) (bool, error)
	CompareAndDelete(ctx context.Context, key, old string) (bool, error)
	TTL(ctx context.Context, key string) (time.Duration, bool, error)
	Get(ctx context.Context, key string) (string, error)
	Delete(ctx context.Context, key string) error
	BulkSet(ctx context.Context, items []KV) error
}

var (
	_ ttlClient = (*KVClient)(nil)
	_ ttlClient = (*ClusterKVClient)(nil)
)

// startSoloCluster runs a one-voter cluster (an election node that elects
// itself) in this process: a real cluster's leader, with its sessions,
// proposals and read index.
func startSoloCluster(t *testing.T) string {
	t.Helper()
	node, err := election.NewNode(election.DefaultNodeConfig(0, []core.NodeID{0}))
	if err != nil {
		t.Fatal(err)
	}
	return servetest.Serve(t, node, realnet.DefaultHostConfig())
}

// waitGone polls until key is gone (Get says not found), within a few
// seconds, and returns how long that took.
func waitGone(t *testing.T, ctx context.Context, c ttlClient, key string) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		_, err := c.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			return time.Since(began)
		}
		if err != nil {
			t.Fatalf("get %s while waiting for it to expire: %v", key, err)
		}
		if time.Since(began) > 5*time.Second {
			t.Fatalf("%s is still there 5 s after it was to expire", key)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ttlAsserts are the assertions of the walks of keys that expire
// (checkTTL, checkExpire).
type ttlAsserts struct {
	t   *testing.T
	ctx context.Context
	c   ttlClient
}

func (a ttlAsserts) must(what string, err error) {
	a.t.Helper()
	if err != nil {
		a.t.Fatalf("%s: %v", what, err)
	}
}

func (a ttlAsserts) wantTTL(key string, lo, hi time.Duration) {
	a.t.Helper()
	left, expires, err := a.c.TTL(a.ctx, key)
	if err != nil || !expires || left < lo || left > hi {
		a.t.Fatalf("TTL(%s) = %v, %v, %v; want expires, %v..%v left", key, left, expires, err, lo, hi)
	}
}

func (a ttlAsserts) wantNoExpiry(key string) {
	a.t.Helper()
	if left, expires, err := a.c.TTL(a.ctx, key); err != nil || expires || left != 0 {
		a.t.Fatalf("TTL(%s) = %v, %v, %v; want no deadline", key, left, expires, err)
	}
}

// checkTTL walks SetWithTTL, TTL and the lease calls through a real server
// (a single node, or a cluster's leader).
func checkTTL(t *testing.T, c ttlClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := ttlAsserts{t, ctx, c}
	must, wantTTL, wantNoExpiry := a.must, a.wantTTL, a.wantNoExpiry

	// A key that expires: seen until its deadline, gone after.
	began := time.Now()
	must("SetWithTTL", c.SetWithTTL(ctx, "short", "v", 50*time.Millisecond))
	if v, err := c.Get(ctx, "short"); (err != nil || v != "v") && time.Since(began) < 40*time.Millisecond {
		t.Fatalf("Get right after SetWithTTL: %q, %v; want v", v, err)
	}
	if left, expires, err := c.TTL(ctx, "short"); err == nil && (!expires || left > 50*time.Millisecond) {
		t.Fatalf("TTL(short) = %v, %v; want at most 50ms left", left, expires)
	}
	waitGone(t, ctx, c, "short")
	// The server counts whole milliseconds of its calendar clock: the key
	// may go up to one early, but no sooner.
	if waited := time.Since(began); waited < 49*time.Millisecond {
		t.Fatalf("the key was gone %v after its set of 50ms", waited)
	}
	if _, _, err := c.TTL(ctx, "short"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TTL of an expired key: %v; want ErrNotFound", err)
	}

	// TTL of a key without a deadline, and of a missing one.
	must("Set", c.Set(ctx, "plain", "v"))
	wantNoExpiry("plain")
	if _, _, err := c.TTL(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TTL of a missing key: %v; want ErrNotFound", err)
	}

	// A long ttl counts down from what was set; a plain set, a bulk_set
	// and a delete replace the deadline.
	must("SetWithTTL", c.SetWithTTL(ctx, "long", "v", time.Hour))
	wantTTL("long", time.Hour-time.Minute, time.Hour)
	must("Set", c.Set(ctx, "long", "w"))
	wantNoExpiry("long")
	must("SetWithTTL", c.SetWithTTL(ctx, "long", "v", time.Hour))
	must("BulkSet", c.BulkSet(ctx, []KV{{Key: "long", Value: "x"}}))
	wantNoExpiry("long")
	must("SetWithTTL", c.SetWithTTL(ctx, "long", "v", 30*time.Millisecond))
	must("Delete", c.Delete(ctx, "long"))
	must("Set", c.Set(ctx, "long", "again"))
	time.Sleep(60 * time.Millisecond)
	if v, err := c.Get(ctx, "long"); err != nil || v != "again" {
		t.Fatalf("a key set again after a delete took its old deadline: %q, %v", v, err)
	}
	wantNoExpiry("long")
	// Sub-millisecond ttls round up; the longest one passes.
	must("SetWithTTL of 1.5ms", c.SetWithTTL(ctx, "ms", "v", 1500*time.Microsecond))
	must("SetWithTTL of ten years", c.SetWithTTL(ctx, "decade", "v", core.TTLMsMax*time.Millisecond))
	wantTTL("decade", core.TTLMsMax*time.Millisecond-time.Minute, core.TTLMsMax*time.Millisecond)

	// A lease: taken by one, refused to another while it lasts (false,
	// not an error), renewed only by its holder, free once it expires.
	ok, err := c.SetIfAbsentWithTTL(ctx, "lease", "a", 2*time.Second)
	if !ok || err != nil {
		t.Fatalf("SetIfAbsentWithTTL of a free lease: %v, %v; want true", ok, err)
	}
	wantTTL("lease", time.Millisecond, 2*time.Second)
	if ok, err := c.SetIfAbsentWithTTL(ctx, "lease", "b", time.Hour); ok || err != nil {
		t.Fatalf("SetIfAbsentWithTTL of a held lease: %v, %v; want false, nil", ok, err)
	}
	if ok, err := c.CompareAndSwapWithTTL(ctx, "lease", "b", "b", time.Hour); ok || err != nil {
		t.Fatalf("CompareAndSwapWithTTL by another: %v, %v; want false, nil", ok, err)
	}
	wantTTL("lease", 0, 2*time.Second) // the refusals left the deadline alone
	if ok, err := c.CompareAndSwapWithTTL(ctx, "lease", "a", "a", time.Hour); !ok || err != nil {
		t.Fatalf("CompareAndSwapWithTTL by the holder: %v, %v; want true", ok, err)
	}
	wantTTL("lease", time.Hour-time.Minute, time.Hour)
	if ok, err := c.CompareAndSwapWithTTL(ctx, "lease", "a", "a", 50*time.Millisecond); !ok || err != nil {
		t.Fatalf("CompareAndSwapWithTTL by the holder: %v, %v; want true", ok, err)
	}
	waitGone(t, ctx, c, "lease")
	if ok, err := c.SetIfAbsentWithTTL(ctx, "lease", "b", time.Hour); !ok || err != nil {
		t.Fatalf("SetIfAbsentWithTTL of an expired lease: %v, %v; want true", ok, err)
	}
	if ok, err := c.CompareAndDelete(ctx, "lease", "b"); !ok || err != nil {
		t.Fatalf("CompareAndDelete of the lease: %v, %v; want true", ok, err)
	}
}

func TestTTLOnASingleNode(t *testing.T) {
	c := dialT(t, servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig()))
	checkTTL(t, c)
}

func TestTTLOnACluster(t *testing.T) {
	c := dialClusterT(t, []string{startSoloCluster(t)})
	checkTTL(t, c)
}

// ttl must be a whole number of milliseconds in 1..TTLMsMax once rounded
// up; any other is refused before anything is sent.
func TestTTLArgumentsCheckedBeforeSending(t *testing.T) {
	srv := clienttest.NewServer(t)
	ctx := ctxT(t)
	for _, c := range []ttlClient{dialT(t, srv.Addr), dialClusterT(t, []string{srv.Addr})} {
		for _, ttl := range []time.Duration{0, -time.Second, time.Microsecond, time.Millisecond - 1, core.TTLMsMax*time.Millisecond + 1, 1 << 62} {
			err := c.SetWithTTL(ctx, "k", "v", ttl)
			if !errors.Is(err, ErrInvalidTTL) {
				t.Errorf("SetWithTTL(%v): %v; want ErrInvalidTTL", ttl, err)
			}
			ok, err := c.SetIfAbsentWithTTL(ctx, "k", "v", ttl)
			if ok || !errors.Is(err, ErrInvalidTTL) {
				t.Errorf("SetIfAbsentWithTTL(%v): %v, %v; want ErrInvalidTTL", ttl, ok, err)
			}
			ok, err = c.CompareAndSwapWithTTL(ctx, "k", "v", "w", ttl)
			if ok || !errors.Is(err, ErrInvalidTTL) {
				t.Errorf("CompareAndSwapWithTTL(%v): %v, %v; want ErrInvalidTTL", ttl, ok, err)
			}
		}
	}
	if reqs := srv.Requests(); len(reqs) != 0 {
		t.Fatalf("the refused calls sent %d requests, the first %+v", len(reqs), reqs[0])
	}

	// What is sent: whole milliseconds, rounded up.
	c := dialT(t, srv.Addr)
	for _, tc := range []struct {
		ttl  time.Duration
		want uint64
	}{
		{time.Millisecond, 1},
		{time.Millisecond + 1, 2},
		{1500 * time.Microsecond, 2},
		{30 * time.Second, 30000},
		{core.TTLMsMax * time.Millisecond, core.TTLMsMax},
	} {
		if err := c.SetWithTTL(ctx, "k", "v", tc.ttl); err != nil {
			t.Fatalf("SetWithTTL(%v): %v", tc.ttl, err)
		}
		reqs := srv.Requests()
		if got := reqs[len(reqs)-1]; got.Op != core.OpSet || got.TTLMs != tc.want {
			t.Errorf("SetWithTTL(%v) sent %+v; want ttl_ms %d", tc.ttl, got, tc.want)
		}
	}
	if ok, err := c.SetIfAbsentWithTTL(ctx, "lease", "me", 2*time.Second); !ok || err != nil {
		t.Fatalf("SetIfAbsentWithTTL: %v, %v", ok, err)
	}
	reqs := srv.Requests()
	if got := reqs[len(reqs)-1]; !got.IfAbsent || got.TTLMs != 2000 || *got.Value != "me" {
		t.Errorf("SetIfAbsentWithTTL sent %+v; want if_absent and ttl_ms 2000", got)
	}
}

// The fake server keeps deadlines by a clock the test moves.
func TestTTLAgainstFakeServerClock(t *testing.T) {
	srv := clienttest.NewServer(t)
	start := time.Unix(1_000_000, 0)
	advance := srv.StopClock(start)
	ctx := ctxT(t)
	c := dialT(t, srv.Addr)
	if err := c.SetWithTTL(ctx, "k", "v", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	advance(10*time.Second + 500*time.Millisecond)
	if left, expires, err := c.TTL(ctx, "k"); left != 19500*time.Millisecond || !expires || err != nil {
		t.Fatalf("TTL after 10.5 s of 30 s: %v, %v, %v; want 19.5s", left, expires, err)
	}
	if ok, err := c.SetIfAbsentWithTTL(ctx, "k", "w", time.Second); ok || err != nil {
		t.Fatalf("SetIfAbsentWithTTL of a live key: %v, %v; want false", ok, err)
	}
	advance(19500 * time.Millisecond)
	if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get at the deadline: %v; want ErrNotFound", err)
	}
	if ok, err := c.SetIfAbsentWithTTL(ctx, "k", "w", time.Second); !ok || err != nil {
		t.Fatalf("SetIfAbsentWithTTL of an expired key: %v, %v; want true", ok, err)
	}
	if at, ok := srv.Deadline("k"); !ok || !at.Equal(start.Add(31*time.Second)) {
		t.Fatalf("Deadline(k) = %v, %v; want a second from now", at, ok)
	}
	if err := c.Set(ctx, "k", "x"); err != nil {
		t.Fatal(err)
	}
	advance(time.Hour)
	if _, expires, err := c.TTL(ctx, "k"); expires || err != nil {
		t.Fatalf("TTL after a plain set: %v, %v; want no deadline", expires, err)
	}
	if _, _, err := c.TTL(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TTL of a missing key: %v; want ErrNotFound", err)
	}
}

// A mesh refuses a set with a ttl and the ttl op: each is an error (not a
// false), and nothing is written.
func TestTTLRefusedByAMesh(t *testing.T) {
	ctx := ctxT(t)
	c := dialT(t, startMeshNode(t))
	notImplemented := func(what string, err error) {
		t.Helper()
		var se *ServerError
		if !errors.As(err, &se) || se.Code != core.CodeNotImplemented {
			t.Fatalf("%s on a mesh: %v; want not_implemented", what, err)
		}
	}
	notImplemented("SetWithTTL", c.SetWithTTL(ctx, "k", "v", time.Minute))
	ok, err := c.SetIfAbsentWithTTL(ctx, "k", "v", time.Minute)
	if ok {
		t.Fatal("SetIfAbsentWithTTL on a mesh: true")
	}
	notImplemented("SetIfAbsentWithTTL", err)
	if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused writes left something: %v", err)
	}
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.TTL(ctx, "k")
	notImplemented("TTL", err)
}

// A cluster client sends SetWithTTL as a write of its session, retried
// under one seq with its ttl, and TTL as a read, without one, through a
// follower's redirect; a missing key is ErrNotFound.
func TestClusterTTLSessionAndRedirect(t *testing.T) {
	fc := newFakeCluster(t, 2)
	var mu sync.Mutex
	sets := 0
	fc.serve(func(node int, req *core.Request) reply {
		if node == 0 && req.Op != core.OpPing && req.Op != core.OpStatus {
			return notLeader(fc.addrs[1])
		}
		switch req.Op {
		case core.OpSet:
			mu.Lock()
			defer mu.Unlock()
			if sets++; sets == 1 {
				return errReply(core.CodeOutcomeUnknown)
			}
		case core.OpTTL:
			if req.Key == "missing" {
				return reply{resp: core.NotFoundResponse(req.Key)}
			}
			left := uint64(1500)
			return reply{resp: core.Response{OK: true, TTLMs: &left}}
		}
		return okReply(req)
	})
	c := dialClusterT(t, fc.addrs)
	if err := c.SetWithTTL(ctxT(t), "k", "v", 90*time.Second); err != nil {
		t.Fatalf("SetWithTTL: %v", err)
	}
	lines := fc.seen(core.OpSet)
	wantOneWrite(t, c, lines, 1)
	// The follower redirects, the leader answers outcome_unknown, the
	// retry goes on to the follower and is redirected again: four copies
	// of one write, each with its ttl.
	if len(lines) != 4 || lines[0].req.TTLMs != 90000 || !slices.Equal(nodesOf(lines), []int{0, 1, 0, 1}) {
		t.Fatalf("want the set twice at the follower and twice at the leader, with ttl_ms 90000; got %d lines: %v", len(lines), lines)
	}
	if left, expires, err := c.TTL(ctxT(t), "k"); left != 1500*time.Millisecond || !expires || err != nil {
		t.Fatalf("TTL: %v, %v, %v; want 1.5s", left, expires, err)
	}
	if _, _, err := c.TTL(ctxT(t), "missing"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("TTL of a missing key: %v; want ErrNotFound", err)
	}
	for _, l := range fc.seen(core.OpTTL) {
		if l.req.ClientID != 0 || l.req.Seq != 0 || l.node != 1 {
			t.Fatalf("ttl %s at node %d: want no session, at the leader (node 1)", l.raw, l.node)
		}
	}
}
