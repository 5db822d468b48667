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
	"dkv/internal/servetest"
	"dkv/realnet"
)

// expireClient is what the Expire and Persist tests call: a KVClient or a
// ClusterKVClient.
type expireClient interface {
	ttlClient
	Expire(ctx context.Context, key string, ttl time.Duration) error
	Persist(ctx context.Context, key string) (bool, error)
}

var (
	_ expireClient = (*KVClient)(nil)
	_ expireClient = (*ClusterKVClient)(nil)
)

// checkExpire walks Expire and Persist through a real server (a single
// node, or a cluster's leader).
func checkExpire(t *testing.T, c expireClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := ttlAsserts{t, ctx, c}
	must, wantTTL, wantNoExpiry := a.must, a.wantTTL, a.wantNoExpiry
	holds := func(key, want string) {
		t.Helper()
		if v, err := c.Get(ctx, key); err != nil || v != want {
			t.Fatalf("Get(%s) = %q, %v; want %q", key, v, err, want)
		}
	}

	// A deadline for a key that had none; its value stays.
	must("Set", c.Set(ctx, "k", "v"))
	must("Expire", c.Expire(ctx, "k", time.Hour))
	wantTTL("k", time.Hour-time.Minute, time.Hour)
	holds("k", "v")
	// A second one replaces the first, shorter or longer.
	must("Expire", c.Expire(ctx, "k", time.Minute))
	wantTTL("k", 0, time.Minute)
	must("Expire", c.Expire(ctx, "k", 2*time.Hour))
	wantTTL("k", 2*time.Hour-time.Minute, 2*time.Hour)
	// Persist takes it away and says there was one; a second finds none.
	had, err := c.Persist(ctx, "k")
	if err != nil || !had {
		t.Fatalf("Persist of a key with a deadline: %v, %v; want true", had, err)
	}
	wantNoExpiry("k")
	holds("k", "v")
	had, err = c.Persist(ctx, "k")
	if err != nil || had {
		t.Fatalf("Persist of a key without a deadline: %v, %v; want false", had, err)
	}
	wantNoExpiry("k")
	// Of a set's own deadline too.
	must("SetWithTTL", c.SetWithTTL(ctx, "leased", "v", time.Hour))
	if had, err := c.Persist(ctx, "leased"); err != nil || !had {
		t.Fatalf("Persist of a key set with a ttl: %v, %v; want true", had, err)
	}
	wantNoExpiry("leased")

	// A missing key: not found, and neither call makes it.
	if err := c.Expire(ctx, "missing", time.Hour); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Expire of a missing key: %v; want ErrNotFound", err)
	}
	if had, err := c.Persist(ctx, "missing"); had || !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Persist of a missing key: %v, %v; want ErrNotFound", had, err)
	}
	if _, err := c.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after the refused calls: %v; want ErrNotFound", err)
	}

	// The deadline is a deadline: the key goes once it passes, and then
	// is missing to both calls.
	must("Set", c.Set(ctx, "short", "v"))
	began := time.Now()
	must("Expire", c.Expire(ctx, "short", 50*time.Millisecond))
	waitGone(t, ctx, c, "short")
	// Whole milliseconds of the server's calendar clock: up to one early.
	if waited := time.Since(began); waited < 49*time.Millisecond {
		t.Fatalf("the key was gone %v after an expire of 50ms", waited)
	}
	if err := c.Expire(ctx, "short", time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Expire of an expired key: %v; want ErrNotFound", err)
	}
	if _, err := c.Persist(ctx, "short"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Persist of an expired key: %v; want ErrNotFound", err)
	}
	// The longest ttl passes.
	must("Set", c.Set(ctx, "decade", "v"))
	must("Expire of ten years", c.Expire(ctx, "decade", core.TTLMsMax*time.Millisecond))
	wantTTL("decade", core.TTLMsMax*time.Millisecond-time.Minute, core.TTLMsMax*time.Millisecond)

	// A persisted key outlives the deadline it had.
	must("Set", c.Set(ctx, "kept", "v"))
	must("Expire", c.Expire(ctx, "kept", 100*time.Millisecond))
	if had, err := c.Persist(ctx, "kept"); err != nil || !had {
		// On a machine slow enough, the deadline passed first: the key
		// is gone, and there is nothing left to check.
		if errors.Is(err, ErrNotFound) {
			t.Logf("kept expired before its persist: %v", err)
			return
		}
		t.Fatalf("Persist of kept: %v, %v; want true", had, err)
	}
	time.Sleep(150 * time.Millisecond)
	holds("kept", "v")
	wantNoExpiry("kept")
}

func TestExpireAndPersistOnASingleNode(t *testing.T) {
	c := dialT(t, servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig()))
	checkExpire(t, c)
}

func TestExpireAndPersistOnACluster(t *testing.T) {
	c := dialClusterT(t, []string{startSoloCluster(t)})
	checkExpire(t, c)
}

// Expire's ttl is checked as SetWithTTL's: refused before anything is
// sent, and sent in whole milliseconds, rounded up.
func TestExpireArgumentsCheckedBeforeSending(t *testing.T) {
	srv := clienttest.NewServer(t)
	ctx := ctxT(t)
	for _, c := range []expireClient{dialT(t, srv.Addr), dialClusterT(t, []string{srv.Addr})} {
		for _, ttl := range []time.Duration{0, -time.Second, time.Microsecond, time.Millisecond - 1, core.TTLMsMax*time.Millisecond + 1, 1 << 62} {
			if err := c.Expire(ctx, "k", ttl); !errors.Is(err, ErrInvalidTTL) {
				t.Errorf("Expire(%v): %v; want ErrInvalidTTL", ttl, err)
			}
		}
	}
	if reqs := srv.Requests(); len(reqs) != 0 {
		t.Fatalf("the refused calls sent %d requests, the first %+v", len(reqs), reqs[0])
	}

	// The clock stands still, so that k outlives its 1ms deadlines.
	srv.StopClock(time.Unix(1_000_000, 0))
	c := dialT(t, srv.Addr)
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
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
		if err := c.Expire(ctx, "k", tc.ttl); err != nil {
			t.Fatalf("Expire(%v): %v", tc.ttl, err)
		}
		reqs := srv.Requests()
		if got := reqs[len(reqs)-1]; got.Op != core.OpExpire || got.Key != "k" || got.TTLMs != tc.want || got.Value != nil {
			t.Errorf("Expire(%v) sent %+v; want an expire of k with ttl_ms %d", tc.ttl, got, tc.want)
		}
	}
	if _, err := c.Persist(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if got := reqs[len(reqs)-1]; got.Op != core.OpPersist || got.Key != "k" || got.TTLMs != 0 {
		t.Errorf("Persist sent %+v; want a persist of k without ttl_ms", got)
	}

	// A client that has met a mesh sends its stamp with the writes a mesh
	// takes, not with these two, which take none.
	if err := c.ObserveStamp("1764700000123456789.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := c.Expire(ctx, "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Persist(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	reqs = srv.Requests()
	for i, want := range []string{"1764700000123456789.0.0", "", ""} {
		if got := reqs[len(reqs)-3+i]; got.After != want {
			t.Errorf("%s sent after %q; want %q", got.Op, got.After, want)
		}
	}
}

// The fake server keeps an expire's deadline by the clock the test moves,
// and persist takes it away.
func TestExpireAgainstFakeServerClock(t *testing.T) {
	srv := clienttest.NewServer(t)
	start := time.Unix(1_000_000, 0)
	advance := srv.StopClock(start)
	ctx := ctxT(t)
	c := dialT(t, srv.Addr)
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := c.Expire(ctx, "k", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	advance(10*time.Second + 500*time.Millisecond)
	if left, expires, err := c.TTL(ctx, "k"); left != 19500*time.Millisecond || !expires || err != nil {
		t.Fatalf("TTL after 10.5 s of 30 s: %v, %v, %v; want 19.5s", left, expires, err)
	}
	// Persisted: the old deadline passes, and the key stays.
	if had, err := c.Persist(ctx, "k"); !had || err != nil {
		t.Fatalf("Persist: %v, %v; want true", had, err)
	}
	if at, ok := srv.Deadline("k"); ok {
		t.Fatalf("Deadline(k) = %v after a persist; want none", at)
	}
	advance(time.Hour)
	if v, err := c.Get(ctx, "k"); v != "v" || err != nil {
		t.Fatalf("Get an hour after a persist: %q, %v; want v", v, err)
	}
	if had, err := c.Persist(ctx, "k"); had || err != nil {
		t.Fatalf("Persist of a key without a deadline: %v, %v; want false", had, err)
	}
	// Expired again: there up to its deadline, gone at it.
	if err := c.Expire(ctx, "k", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if at, ok := srv.Deadline("k"); !ok || !at.Equal(start.Add(time.Hour+10*time.Second+500*time.Millisecond+2*time.Second)) {
		t.Fatalf("Deadline(k) = %v, %v; want 2 s from now", at, ok)
	}
	advance(2*time.Second - time.Millisecond)
	if v, err := c.Get(ctx, "k"); v != "v" || err != nil {
		t.Fatalf("Get a millisecond before the deadline: %q, %v; want v", v, err)
	}
	advance(time.Millisecond)
	if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get at the deadline: %v; want ErrNotFound", err)
	}
	if err := c.Expire(ctx, "k", time.Second); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Expire of an expired key: %v; want ErrNotFound", err)
	}
	if had, err := c.Persist(ctx, "k"); had || !errors.Is(err, ErrNotFound) {
		t.Fatalf("Persist of an expired key: %v, %v; want ErrNotFound", had, err)
	}
	if got := srv.Data(); len(got) != 0 {
		t.Fatalf("data = %v; want none", got)
	}
}

// A mesh refuses both: each is an error, and nothing is written.
func TestExpireAndPersistRefusedByAMesh(t *testing.T) {
	ctx := ctxT(t)
	c := dialT(t, startMeshNode(t))
	notImplemented := func(what string, err error) {
		t.Helper()
		var se *ServerError
		if !errors.As(err, &se) || se.Code != core.CodeNotImplemented {
			t.Fatalf("%s on a mesh: %v; want not_implemented", what, err)
		}
	}
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	notImplemented("Expire", c.Expire(ctx, "k", time.Minute))
	had, err := c.Persist(ctx, "k")
	if had {
		t.Fatal("Persist on a mesh: true")
	}
	notImplemented("Persist", err)
	if v, err := c.Get(ctx, "k"); v != "v" || err != nil {
		t.Fatalf("Get after the refusals: %q, %v; want v", v, err)
	}
}

// A cluster client sends Expire and Persist as writes of its session,
// retried under one seq through a follower's redirect and an
// outcome_unknown. A not_found after an attempt of unknown outcome is
// certain: the cluster answers the retry of a write it refused with its
// refusal. And a persist's retry that finds the write applied answers
// without ttl_ms: hadTTL false.
func TestClusterExpireAndPersistSessionAndRedirect(t *testing.T) {
	fc := newFakeCluster(t, 2)
	var mu sync.Mutex
	tries := map[string]int{}
	fc.serve(func(node int, req *core.Request) reply {
		if node == 0 && req.Op != core.OpPing && req.Op != core.OpStatus {
			return notLeader(fc.addrs[1])
		}
		mu.Lock()
		defer mu.Unlock()
		tries[req.Op+" "+req.Key]++
		if tries[req.Op+" "+req.Key] == 1 {
			return errReply(core.CodeOutcomeUnknown)
		}
		if req.Key == "missing" {
			return reply{resp: core.NotFoundResponse(req.Key)}
		}
		if req.Op == core.OpPersist && req.Key == "k" {
			left := uint64(2500)
			return reply{resp: core.Response{OK: true, TTLMs: &left}}
		}
		return okReply(req) // "retried": as the duplicate of an applied write
	})
	c := dialClusterT(t, fc.addrs)
	ctx := ctxT(t)
	if err := c.Expire(ctx, "k", 90*time.Second); err != nil {
		t.Fatalf("Expire: %v", err)
	}
	lines := fc.seen(core.OpExpire)
	wantOneWrite(t, c, lines, 1)
	// The follower redirects, the leader answers outcome_unknown, the
	// retry goes on to the follower and is redirected again.
	if len(lines) != 4 || lines[0].req.TTLMs != 90000 || !slices.Equal(nodesOf(lines), []int{0, 1, 0, 1}) {
		t.Fatalf("want the expire twice at the follower and twice at the leader, with ttl_ms 90000; got %d lines: %v", len(lines), lines)
	}
	if had, err := c.Persist(ctx, "k"); !had || err != nil {
		t.Fatalf("Persist: %v, %v; want true", had, err)
	}
	wantOneWrite(t, c, fc.seen(core.OpPersist), 2)
	if had, err := c.Persist(ctx, "retried"); had || err != nil {
		t.Fatalf("Persist answered without ttl_ms: %v, %v; want false", had, err)
	}
	if err := c.Expire(ctx, "missing", time.Minute); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Expire of a missing key after outcome_unknown: %v; want ErrNotFound alone", err)
	}
	if had, err := c.Persist(ctx, "missing"); had || !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Persist of a missing key after outcome_unknown: %v, %v; want ErrNotFound alone", had, err)
	}
	var seqs []uint64
	for _, l := range fc.seen("") {
		if l.req.Op != core.OpExpire && l.req.Op != core.OpPersist {
			continue
		}
		if l.req.ClientID != c.ClientID() {
			t.Fatalf("%s carries client_id %d; want the session's %d", l.raw, l.req.ClientID, c.ClientID())
		}
		if len(seqs) == 0 || seqs[len(seqs)-1] != l.req.Seq {
			seqs = append(seqs, l.req.Seq)
		}
	}
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("the writes' seqs in order: %v; want 1..5, each retried under its own", seqs)
	}
}
