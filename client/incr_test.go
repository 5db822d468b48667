package client

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"dkv/client/clienttest"
	"dkv/core"
	"dkv/internal/servetest"
	"dkv/realnet"
)

// incrClient is what the Incr tests call: a KVClient or a ClusterKVClient.
type incrClient interface {
	ttlClient
	Incr(ctx context.Context, key string, delta int64) (int64, error)
}

var (
	_ incrClient = (*KVClient)(nil)
	_ incrClient = (*ClusterKVClient)(nil)
)

// incrAsserts are the assertions of the Incr tests, on top of ttlAsserts.
type incrAsserts struct {
	ttlAsserts
	c incrClient
}

func newIncrAsserts(t *testing.T, ctx context.Context, c incrClient) incrAsserts {
	return incrAsserts{ttlAsserts{t, ctx, c}, c}
}

func (a incrAsserts) incr(key string, delta, want int64) {
	a.t.Helper()
	if n, err := a.c.Incr(a.ctx, key, delta); err != nil || n != want {
		a.t.Fatalf("Incr(%s, %d) = %d, %v; want %d", key, delta, n, err, want)
	}
}

// refused checks that an Incr is refused with want, a certain refusal.
func (a incrAsserts) refused(key string, delta int64, want error) {
	a.t.Helper()
	n, err := a.c.Incr(a.ctx, key, delta)
	if n != 0 || !errors.Is(err, want) || errors.Is(err, ErrUnknownOutcome) {
		a.t.Fatalf("Incr(%s, %d) = %d, %v; want 0 and %v alone", key, delta, n, err, want)
	}
}

func (a incrAsserts) holds(key, want string) {
	a.t.Helper()
	if v, err := a.c.Get(a.ctx, key); err != nil || v != want {
		a.t.Fatalf("Get(%s) = %q, %v; want %q", key, v, err, want)
	}
}

// checkIncr walks Incr through a real server (a single node, or a
// cluster's leader).
func checkIncr(t *testing.T, c incrClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := newIncrAsserts(t, ctx, c)

	// A missing key counts as 0; the sum is stored in decimal, as Get
	// reads it. A delta of 0 answers the counter.
	a.incr("hits", 1, 1)
	a.incr("hits", 1, 2)
	a.holds("hits", "2")
	a.incr("hits", -5, -3)
	a.incr("hits", 0, -3)
	a.holds("hits", "-3")
	a.incr("down", -1, -1)
	a.incr("zero", 0, 0)
	a.holds("zero", "0")
	// A counter written by hand, in the one spelling of its number.
	a.must("Set", c.Set(ctx, "n", "41"))
	a.incr("n", 1, 42)
	a.must("Set", c.Set(ctx, "n", "-9"))
	a.incr("n", 10, 1)

	// Anything else is no counter: refused, whatever the delta, and left
	// as it was.
	for _, v := range []string{"", "abc", "1.5", "+1", "01", "-0", " 1", "1 ", "1e3", "9223372036854775808"} {
		a.must("Set", c.Set(ctx, "bad", v))
		a.refused("bad", 1, ErrNotInteger)
		a.refused("bad", 0, ErrNotInteger)
		a.holds("bad", v)
	}

	// The ends of the int64 range are reached, never passed.
	a.incr("max", math.MaxInt64, math.MaxInt64)
	a.refused("max", 1, ErrOverflow)
	a.refused("max", math.MaxInt64, ErrOverflow)
	a.holds("max", "9223372036854775807")
	a.incr("max", math.MinInt64, -1)
	a.incr("min", math.MinInt64, math.MinInt64)
	a.refused("min", -1, ErrOverflow)
	a.refused("min", math.MinInt64, ErrOverflow)
	a.holds("min", "-9223372036854775808")
	a.incr("min", math.MaxInt64, -1)

	// The key keeps its deadline, and one without stays without.
	a.must("SetWithTTL", c.SetWithTTL(ctx, "leased", "7", time.Hour))
	a.incr("leased", 3, 10)
	a.wantTTL("leased", time.Hour-time.Minute, time.Hour)
	a.wantNoExpiry("hits")
	// A counter that expires is gone at its deadline, and counts from 0
	// again, for good.
	a.must("SetWithTTL", c.SetWithTTL(ctx, "short", "5", 300*time.Millisecond))
	if n, err := c.Incr(ctx, "short", 1); err != nil || n != 6 {
		if err == nil && n == 1 {
			// On a machine slow enough, the deadline passed first.
			t.Logf("short expired before its incr")
			return
		}
		t.Fatalf("Incr(short, 1) = %d, %v; want 6", n, err)
	}
	waitGone(t, ctx, c, "short")
	a.incr("short", 1, 1)
	a.wantNoExpiry("short")
}

func TestIncrOnASingleNode(t *testing.T) {
	c := dialT(t, servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig()))
	checkIncr(t, c)
}

func TestIncrOnACluster(t *testing.T) {
	c := dialClusterT(t, []string{startSoloCluster(t)})
	checkIncr(t, c)
}

// What ClusterKVClient counts on when it takes an incr's answer after an
// attempt of unknown outcome as final: a real cluster answers the retry of
// an incr in a session as it answered the first attempt, the value it made
// or its refusal, and applies it once, however the key changed since.
func TestIncrRetryInASessionIsAnsweredAsTheFirst(t *testing.T) {
	c := dialT(t, startSoloCluster(t))
	ctx := ctxT(t)
	// A KVClient does not wait out the election, as a ClusterKVClient
	// would.
	for {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Cluster != nil && st.Cluster.Role == "leader" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	const client = 77
	incr := func(seq uint64, key string, delta int64) (*core.Response, error) {
		return c.Do(ctx, &core.Request{Op: core.OpIncr, Key: key, Delta: &delta, ClientID: client, Seq: seq})
	}
	for range 2 {
		if resp, err := incr(1, "k", 5); err != nil || resp.Value == nil || *resp.Value != "5" {
			t.Fatalf("incr k 5 as seq 1: %+v, %v; want 5", resp, err)
		}
	}
	if err := c.Set(ctx, "bad", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := incr(2, "bad", 1); !errors.Is(err, ErrNotInteger) {
		t.Fatalf("incr of x as seq 2: %v; want not_integer", err)
	}
	// Now a counter, but the retry is of the incr that was refused.
	if err := c.Set(ctx, "bad", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := incr(2, "bad", 1); !errors.Is(err, ErrNotInteger) {
		t.Fatalf("the retry of seq 2: %v; want not_integer again", err)
	}
	for key, want := range map[string]string{"k": "5", "bad": "1"} {
		if v, err := c.Get(ctx, key); err != nil || v != want {
			t.Fatalf("Get(%s) = %q, %v; want %q: each incr applied once", key, v, err, want)
		}
	}
}

// A mesh refuses incr, also from a client that has met it and sends its
// stamp with the writes a mesh takes, and nothing is written.
func TestIncrRefusedByAMesh(t *testing.T) {
	ctx := ctxT(t)
	c := dialT(t, startMeshNode(t))
	if err := c.Set(ctx, "k", "1"); err != nil {
		t.Fatal(err)
	}
	if c.Stamp() == "" {
		t.Fatal("no stamp after a mesh's answer")
	}
	for _, key := range []string{"k", "missing"} {
		n, err := c.Incr(ctx, key, 1)
		var se *ServerError
		if n != 0 || !errors.As(err, &se) || se.Code != core.CodeNotImplemented {
			t.Fatalf("Incr(%s) on a mesh: %d, %v; want not_implemented", key, n, err)
		}
	}
	if v, err := c.Get(ctx, "k"); v != "1" || err != nil {
		t.Fatalf("Get(k) after the refusals: %q, %v; want 1", v, err)
	}
	if _, err := c.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) after the refusals: %v; want ErrNotFound", err)
	}
}

// Incr sends its delta as given, 1, 0 and the ends of int64 included, and
// no mesh stamp; the fake server counts as the real one does.
func TestIncrAgainstFakeServer(t *testing.T) {
	srv := clienttest.NewServer(t)
	ctx := ctxT(t)
	c := dialT(t, srv.Addr)
	a := newIncrAsserts(t, ctx, c)
	a.incr("k", 1, 1)
	a.incr("k", 0, 1)
	a.incr("k", -3, -2)
	a.incr("k", math.MinInt64+2, math.MinInt64)
	a.refused("k", -1, ErrOverflow)
	a.must("Set", c.Set(ctx, "k", "9223372036854775806"))
	a.incr("k", 1, math.MaxInt64)
	a.refused("k", 1, ErrOverflow)
	a.must("Set", c.Set(ctx, "w", "word"))
	a.refused("w", 1, ErrNotInteger)
	if got := srv.Data(); got["k"] != "9223372036854775807" || got["w"] != "word" {
		t.Fatalf("data = %v; want k at MaxInt64 and w unchanged", got)
	}
	var deltas []string
	for _, req := range srv.Requests() {
		if req.Op != core.OpIncr {
			continue
		}
		if req.Delta == nil || req.Value != nil || req.TTLMs != 0 || req.ClientID != 0 {
			t.Fatalf("Incr sent %+v; want an incr with a delta and nothing else", req)
		}
		deltas = append(deltas, req.Key+" "+strconv.FormatInt(*req.Delta, 10))
	}
	want := []string{"k 1", "k 0", "k -3", "k -9223372036854775806", "k -1", "k 1", "k 1", "w 1"}
	if !slices.Equal(deltas, want) {
		t.Fatalf("the incrs sent: %q; want %q", deltas, want)
	}

	// A client that has met a mesh sends its stamp with a set, not with
	// an incr, which a mesh refuses (and a server refuses its after).
	if err := c.ObserveStamp("1764700000123456789.0.0"); err != nil {
		t.Fatal(err)
	}
	a.must("Set", c.Set(ctx, "k", "1"))
	a.incr("k", 1, 2)
	reqs := srv.Requests()
	for i, want := range []string{"1764700000123456789.0.0", ""} {
		if got := reqs[len(reqs)-2+i]; got.After != want {
			t.Errorf("%s sent after %q; want %q", got.Op, got.After, want)
		}
	}

	// The fake keeps a counter's deadline, as the real server does.
	start := time.Unix(1_000_000, 0)
	advance := srv.StopClock(start)
	a.must("SetWithTTL", c.SetWithTTL(ctx, "t", "1", 30*time.Second))
	advance(10 * time.Second)
	a.incr("t", 1, 2)
	if at, ok := srv.Deadline("t"); !ok || !at.Equal(start.Add(30*time.Second)) {
		t.Fatalf("Deadline(t) after an incr = %v, %v; want the set's", at, ok)
	}
	advance(20 * time.Second)
	a.incr("t", 1, 1)
	if at, ok := srv.Deadline("t"); ok {
		t.Fatalf("Deadline(t) = %v for a counter made anew; want none", at)
	}
}

// An answer that is not an int64 is a protocol error that names it, not
// a refusal: the incr applied.
func TestIncrAnswerThatIsNoNumber(t *testing.T) {
	srv := newRawServer(t, answer(func(_ int, req *core.Request) core.Response {
		switch req.Key {
		case "none":
			return core.Response{ID: req.ID, OK: true}
		case "five":
			v := "5"
			return core.Response{ID: req.ID, OK: true, Value: &v}
		}
		return valueOf(req) // the key as the value
	}))
	c := dialT(t, srv.addr)
	ctx := ctxT(t)
	if n, err := c.Incr(ctx, "five", 1); n != 5 || err != nil {
		t.Fatalf("Incr(five) = %d, %v; want 5", n, err)
	}
	for _, key := range []string{"none", "abc", "1.5", "9223372036854775808"} {
		n, err := c.Incr(ctx, key, 1)
		if n != 0 || !errors.Is(err, ErrProtocol) || errors.Is(err, ErrNotInteger) || errors.Is(err, ErrUnknownOutcome) {
			t.Fatalf("Incr(%s): %d, %v; want a protocol error alone", key, n, err)
		}
		if key != "none" && !strings.Contains(err.Error(), strconv.Quote(key)) {
			t.Fatalf("Incr(%s): %v; want the error to name the value", key, err)
		}
	}
}

// A ClusterKVClient sends an incr as a write of its session, and retries
// it, under its one seq and with its delta, through a redirect, an
// outcome_unknown and a connection broken under it: the answer to the
// retry is the incr's. A not_integer or overflow after an attempt of
// unknown outcome is certain (the cluster answers the retry of an incr it
// refused with the refusal), and only an incr whose every attempt is of
// unknown outcome ends with ErrUnknownOutcome.
func TestClusterIncrSessionAndRetries(t *testing.T) {
	fc := newFakeCluster(t, 2)
	var mu sync.Mutex
	tries := map[string]int{}
	fc.serve(func(node int, req *core.Request) reply {
		if node == 0 && req.Op != core.OpPing && req.Op != core.OpStatus {
			return notLeader(fc.addrs[1])
		}
		mu.Lock()
		defer mu.Unlock()
		tries[req.Key]++
		switch {
		case req.Key == "lost":
			return errReply(core.CodeOutcomeUnknown)
		case tries[req.Key] == 1 && req.Key == "dropped":
			return reply{drop: true}
		case tries[req.Key] == 1:
			return errReply(core.CodeOutcomeUnknown)
		case req.Key == "bad":
			return reply{resp: core.IncrResponse(req.Key, 0, core.CodeNotInteger)}
		case req.Key == "big":
			return reply{resp: core.IncrResponse(req.Key, 0, core.CodeOverflow)}
		}
		// As the cluster answers the duplicate of an incr that applied.
		return reply{resp: core.IncrResponse(req.Key, 40+req.IncrDelta(), "")}
	})
	c := dialClusterT(t, fc.addrs, WithMaxAttempts(6))
	ctx := ctxT(t)
	if n, err := c.Incr(ctx, "k", 2); n != 42 || err != nil {
		t.Fatalf("Incr(k) after outcome_unknown: %d, %v; want 42", n, err)
	}
	lines := fc.seen(core.OpIncr)
	wantOneWrite(t, c, lines, 1)
	if len(lines) != 4 || *lines[0].req.Delta != 2 || !slices.Equal(nodesOf(lines), []int{0, 1, 0, 1}) {
		t.Fatalf("want the incr twice at the follower and twice at the leader, with delta 2; got %d lines: %v", len(lines), lines)
	}
	if n, err := c.Incr(ctx, "dropped", -1); n != 39 || err != nil {
		t.Fatalf("Incr(dropped) after a broken connection: %d, %v; want 39", n, err)
	}
	if err := c.Set(ctx, "x", "v"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Incr(ctx, "bad", 1); n != 0 || !errors.Is(err, ErrNotInteger) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Incr(bad) after outcome_unknown: %d, %v; want ErrNotInteger alone", n, err)
	}
	if n, err := c.Incr(ctx, "big", 1); n != 0 || !errors.Is(err, ErrOverflow) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Incr(big) after outcome_unknown: %d, %v; want ErrOverflow alone", n, err)
	}
	if n, err := c.Incr(ctx, "lost", 1); n != 0 || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Incr(lost), outcome_unknown at every attempt: %d, %v; want ErrUnknownOutcome", n, err)
	}
	var seqs []uint64
	for _, key := range []string{"k", "dropped", "x", "bad", "big", "lost"} {
		var attempts []seenLine
		for _, l := range fc.seen("") {
			if l.req.Key == key {
				attempts = append(attempts, l)
			}
		}
		seq := attempts[0].req.Seq
		wantOneWrite(t, c, attempts, seq)
		seqs = append(seqs, seq)
	}
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("the writes' seqs in order: %v; want 1..6, each retried under its own", seqs)
	}
}
