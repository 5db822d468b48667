package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"dkv/client/clienttest"
	"dkv/core"
)

// The tests here stand in for a cluster with scripted raw servers, one per
// node: each request is answered as the test's script says, and every
// request line is recorded as it arrived, so tests assert on what went over
// the wire.

// reply is a scripted node's answer to one request.
type reply struct {
	resp core.Response // sent with the request's id
	drop bool          // close the connection unanswered, as a crash would
	hang bool          // answer nothing more on this connection
}

func okReply(req *core.Request) reply {
	resp := core.OKResponse()
	switch req.Op {
	case core.OpGet:
		resp = valueOf(req)
	case core.OpStatus:
		resp.Status = &core.Status{Mode: "cluster"}
	}
	return reply{resp: resp}
}

func errReply(code string) reply {
	return reply{resp: core.ErrorResponse(code, "scripted %s", code)}
}

func notLeader(leader string) reply {
	r := errReply(core.CodeNotLeader)
	r.resp.Error.Leader = leader
	return r
}

// seenLine is a request line as a node received it.
type seenLine struct {
	node int
	raw  string // newline excluded
	req  *core.Request
}

// fakeCluster is n scripted nodes on loopback.
type fakeCluster struct {
	t     *testing.T
	addrs []string
	lns   []net.Listener

	mu    sync.Mutex
	lines []seenLine
}

// newFakeCluster listens on n ports; serve starts answering. The two steps
// let a script refer to the cluster's addresses.
func newFakeCluster(t *testing.T, n int) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{t: t}
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fc.lns = append(fc.lns, ln)
		fc.addrs = append(fc.addrs, ln.Addr().String())
	}
	return fc
}

func (fc *fakeCluster) serve(script func(node int, req *core.Request) reply) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	for node, ln := range fc.lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, nc)
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer nc.Close()
					fc.serveConn(node, nc, script)
				}()
			}
		}()
	}
	fc.t.Cleanup(func() {
		for _, ln := range fc.lns {
			ln.Close()
		}
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

func (fc *fakeCluster) serveConn(node int, nc net.Conn, script func(int, *core.Request) reply) {
	r := bufio.NewReader(nc)
	silent := false
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		raw := string(line[:len(line)-1])
		req, bad := core.DecodeRequest(line[:len(line)-1])
		if bad != nil {
			fc.t.Errorf("node %d got a malformed request %q: %s", node, raw, bad.Error.Message)
			return
		}
		fc.mu.Lock()
		fc.lines = append(fc.lines, seenLine{node: node, raw: raw, req: req})
		fc.mu.Unlock()
		if silent {
			continue
		}
		rp := script(node, req)
		switch {
		case rp.drop:
			return
		case rp.hang:
			silent = true
			continue
		}
		rp.resp.ID = req.ID
		if _, err := nc.Write(core.AppendResponse(nil, &rp.resp)); err != nil {
			return
		}
	}
}

// seen returns the lines received so far of the given op ("" for all).
func (fc *fakeCluster) seen(op string) []seenLine {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var out []seenLine
	for _, l := range fc.lines {
		if op == "" || l.req.Op == op {
			out = append(out, l)
		}
	}
	return out
}

// nodesOf lists the nodes that received lines, in order.
func nodesOf(lines []seenLine) []int {
	var out []int
	for _, l := range lines {
		out = append(out, l.node)
	}
	return out
}

// withoutID is a request line minus its leading "id" member, which the
// client changes on every attempt: what remains of two attempts of one
// write must be the same bytes.
func withoutID(t *testing.T, raw string) string {
	t.Helper()
	i := strings.IndexByte(raw, ',')
	if !strings.HasPrefix(raw, `{"id":`) || i < 0 {
		t.Fatalf("request line %q does not begin with its id", raw)
	}
	return raw[i+1:]
}

// wantOneWrite fails t unless lines (at least one) are attempts of one
// write of client c with sequence number seq: the same bytes but for the
// id.
func wantOneWrite(t *testing.T, c *ClusterKVClient, lines []seenLine, seq uint64) {
	t.Helper()
	if len(lines) == 0 {
		t.Fatal("no attempt of the write was received")
	}
	for _, l := range lines {
		if l.req.ClientID != c.ClientID() || l.req.Seq != seq {
			t.Fatalf("attempt %s carries client_id %d, seq %d; want %d, %d", l.raw, l.req.ClientID, l.req.Seq, c.ClientID(), seq)
		}
		if a, b := withoutID(t, l.raw), withoutID(t, lines[0].raw); a != b {
			t.Fatalf("attempts of one write differ:\n%s\n%s", lines[0].raw, l.raw)
		}
	}
}

func dialClusterT(t *testing.T, addrs []string, opts ...Option) *ClusterKVClient {
	t.Helper()
	c, err := DialCluster(ctxT(t), addrs, opts...)
	if err != nil {
		t.Fatalf("DialCluster: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func isReadOp(op string) bool { return op == core.OpGet || op == core.OpPing || op == core.OpStatus }

// Followers name the leader; the client goes there, remembers it, and
// sends later calls straight to it.
func TestClusterFindsLeaderThroughRedirects(t *testing.T) {
	fc := newFakeCluster(t, 3)
	fc.serve(func(node int, req *core.Request) reply {
		if node != 2 && req.Op != core.OpPing && req.Op != core.OpStatus {
			return notLeader(fc.addrs[2])
		}
		return okReply(req)
	})
	c := dialClusterT(t, fc.addrs)
	ctx := ctxT(t)
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if got := c.Leader(); got != fc.addrs[2] {
		t.Fatalf("Leader() = %q; want %q", got, fc.addrs[2])
	}
	if v, err := c.Get(ctx, "k"); err != nil || v != "k" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := c.BulkSet(ctx, []KV{{Key: "a", Value: "1"}}); err != nil {
		t.Fatalf("BulkSet: %v", err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if st, err := c.Status(ctx); err != nil || st.Mode != "cluster" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	// One redirect in all: the set's first attempt, at the node dialled.
	if got := nodesOf(fc.seen("")); fmt.Sprint(got) != "[0 2 2 2 2 2 2]" {
		t.Fatalf("requests went to nodes %v; want [0 2 2 2 2 2 2]", got)
	}
	wantOneWrite(t, c, fc.seen(core.OpSet), 1)
}

// During an election nodes name no leader: the client goes round the
// nodes, with pauses, until one leads. Every attempt is the same write.
func TestClusterRedirectNamingNoLeader(t *testing.T) {
	fc := newFakeCluster(t, 3)
	var writes atomic.Int32
	fc.serve(func(node int, req *core.Request) reply {
		if writes.Add(1) <= 4 {
			return notLeader("")
		}
		if node != 1 {
			return notLeader(fc.addrs[1])
		}
		return okReply(req)
	})
	c := dialClusterT(t, fc.addrs)
	if err := c.Set(ctxT(t), "k", "v"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	lines := fc.seen(core.OpSet)
	if got := nodesOf(lines); fmt.Sprint(got) != "[0 1 2 0 1]" {
		t.Fatalf("attempts went to nodes %v; want [0 1 2 0 1]", got)
	}
	wantOneWrite(t, c, lines, 1)
}

// The leader's connection breaks under a write (it crashed): the write's
// outcome there is unknown, so the client retries it, with the same client
// id and sequence number, at another node, which redirects to the new
// leader.
func TestClusterFailoverMidWrite(t *testing.T) {
	fc := newFakeCluster(t, 3)
	fc.serve(func(node int, req *core.Request) reply {
		switch node {
		case 0:
			return reply{drop: true}
		case 1:
			return notLeader(fc.addrs[2])
		}
		return okReply(req)
	})
	c := dialClusterT(t, fc.addrs)
	if err := c.Set(ctxT(t), "k", "v"); err != nil {
		t.Fatalf("Set across a failover: %v", err)
	}
	lines := fc.seen(core.OpSet)
	if got := nodesOf(lines); fmt.Sprint(got) != "[0 1 2]" {
		t.Fatalf("attempts went to nodes %v; want [0 1 2]", got)
	}
	wantOneWrite(t, c, lines, 1)
	if lines[0].req.Acked != 1 {
		t.Fatalf("acked = %d; want 1 (seq 1 still in progress)", lines[0].req.Acked)
	}
	// The next write goes to the new leader, as the next in sequence.
	if err := c.Delete(ctxT(t), "k"); err != nil {
		t.Fatal(err)
	}
	del := fc.seen(core.OpDelete)
	if len(del) != 1 || del[0].node != 2 || del[0].req.Seq != 2 || del[0].req.Acked != 2 {
		t.Fatalf("delete went to %v as %s; want node 2 with seq 2, acked 2", nodesOf(del), del[0].raw)
	}
}

// A read is retried freely, at another node, when its connection breaks.
func TestClusterReadRetriedAfterBrokenConnection(t *testing.T) {
	fc := newFakeCluster(t, 2)
	fc.serve(func(node int, req *core.Request) reply {
		if node == 0 {
			return reply{drop: true}
		}
		return okReply(req)
	})
	c := dialClusterT(t, fc.addrs)
	if v, err := c.Get(ctxT(t), "k"); err != nil || v != "k" {
		t.Fatalf("Get = %q, %v; want k from node 1", v, err)
	}
}

// unavailable promises no effect: retried, and the write still applies
// once (one sequence number).
func TestClusterUnavailableRetried(t *testing.T) {
	fc := newFakeCluster(t, 3)
	var mu sync.Mutex
	seen := map[string]int{}
	fc.serve(func(node int, req *core.Request) reply {
		mu.Lock()
		seen[req.Op]++
		n := seen[req.Op]
		mu.Unlock()
		if n <= 2 {
			return errReply(core.CodeUnavailable)
		}
		return okReply(req)
	})
	c := dialClusterT(t, fc.addrs)
	if err := c.Set(ctxT(t), "k", "v"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if v, err := c.Get(ctxT(t), "k"); err != nil || v != "k" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	sets := fc.seen(core.OpSet)
	if len(sets) != 3 {
		t.Fatalf("the set was sent %d times; want 3", len(sets))
	}
	wantOneWrite(t, c, sets, 1)
	if n := len(fc.seen(core.OpGet)); n != 3 {
		t.Fatalf("the get was sent %d times; want 3", n)
	}
}

// A leader whose disk refuses writes answers disk_full (or io_error)
// before proposing, and hands the office to a healthy node: the write is
// tried again and goes through the new one, where the call ended at once
// (found by review). When every attempt meets one (most of the disks
// full), the call ends with it, not with ErrUnknownOutcome.
func TestClusterDiskFullLeaderRetried(t *testing.T) {
	fc := newFakeCluster(t, 3)
	var mu sync.Mutex
	refusals := 0
	fc.serve(func(node int, req *core.Request) reply {
		if req.Op != core.OpSet {
			return okReply(req)
		}
		mu.Lock()
		defer mu.Unlock()
		if refusals < 2 {
			refusals++
			return errReply(core.CodeDiskFull)
		}
		if refusals < 4 && req.Key == "io" {
			refusals++
			return errReply(core.CodeIOError)
		}
		return okReply(req)
	})
	c := dialClusterT(t, fc.addrs)
	if err := c.Set(ctxT(t), "k", "v"); err != nil {
		t.Fatalf("Set after two disk_full answers: %v", err)
	}
	if err := c.Set(ctxT(t), "io", "v"); err != nil {
		t.Fatalf("Set after two io_error answers: %v", err)
	}

	full := newFakeCluster(t, 3)
	full.serve(func(node int, req *core.Request) reply {
		if req.Op != core.OpSet {
			return okReply(req)
		}
		return errReply(core.CodeDiskFull)
	})
	c = dialClusterT(t, full.addrs, WithMaxAttempts(5))
	err := c.Set(ctxT(t), "k", "v")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != core.CodeDiskFull || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Set with every attempt refused disk_full: %v; want disk_full, not unknown", err)
	}
	if n := len(full.seen(core.OpSet)); n != 5 {
		t.Fatalf("the set was sent %d times; want 5 (every attempt)", n)
	}
}

// session_expired: the cluster has forgotten the session. After an
// attempt of unknown outcome, that one may have applied: the write is not
// retried, under its own sequence number or a new one, and the next write
// goes in a new session. A write refused so at its first attempt goes
// again in a new session, once; refused there too, it gives up.
func TestClusterSessionExpiredIsUnknownOutcome(t *testing.T) {
	fc := newFakeCluster(t, 1)
	var dropped atomic.Bool
	fc.serve(func(_ int, req *core.Request) reply {
		switch {
		case req.Key == "expired":
			return errReply(core.CodeSessionExpired)
		case req.Key == "dropped" && !dropped.Swap(true):
			return reply{drop: true}
		case req.Key == "dropped":
			return errReply(core.CodeSessionExpired)
		}
		return okReply(req)
	})
	c := dialClusterT(t, fc.addrs)
	first := c.ClientID()
	err := c.Set(ctxT(t), "dropped", "v")
	var se *ServerError
	if !errors.Is(err, ErrUnknownOutcome) || !errors.As(err, &se) || se.Code != core.CodeSessionExpired {
		t.Fatalf("err = %v; want ErrUnknownOutcome and session_expired", err)
	}
	sets := fc.seen(core.OpSet)
	if n := len(sets); n != 2 || sets[1].req.ClientID != first || sets[1].req.Seq != 1 {
		t.Fatalf("the write was sent %d times (%v); want twice, both as seq 1 of %d", n, sets, first)
	}
	if err := c.Set(ctxT(t), "next", "v"); err != nil {
		t.Fatal(err)
	}
	last := fc.seen(core.OpSet)[2].req
	if last.ClientID == first || last.Seq != 1 || last.Acked != 1 {
		t.Fatalf("next write has client_id %d, seq %d, acked %d; want a new session's 1, 1", last.ClientID, last.Seq, last.Acked)
	}

	second := c.ClientID()
	err = c.Set(ctxT(t), "expired", "v")
	if !errors.Is(err, ErrUnknownOutcome) || !errors.As(err, &se) || se.Code != core.CodeSessionExpired {
		t.Fatalf("err = %v; want ErrUnknownOutcome and session_expired", err)
	}
	sets = fc.seen(core.OpSet)[3:]
	if len(sets) != 2 || sets[0].req.ClientID != second || sets[1].req.ClientID == second || sets[1].req.Seq != 1 {
		t.Fatalf("the write was sent as %v; want once in session %d, once as a new session's seq 1", sets, second)
	}
}

// A write that gives up after any attempt of unknown outcome reports
// ErrUnknownOutcome, whatever the last attempt said; one refused without
// effect every time reports the refusal.
func TestClusterGivingUp(t *testing.T) {
	for _, tc := range []struct {
		name        string
		nodes       int
		closed      int // nodes after the live ones where nothing listens
		opts        []Option
		script      func(attempt int32) reply
		wantUnknown bool
		wantCode    string // "" for none
		wantErr     error
		wantSent    int    // attempts that reached a node; -1 for at least one
		wantSaid    string // in the error's message, when set
	}{
		{
			name: "every attempt dropped", nodes: 3, opts: []Option{WithMaxAttempts(4)},
			script:      func(int32) reply { return reply{drop: true} },
			wantUnknown: true, wantSent: 4,
		},
		{
			name: "dropped, then no leader", nodes: 3, opts: []Option{WithMaxAttempts(4)},
			script: func(n int32) reply {
				if n == 1 {
					return reply{drop: true}
				}
				return notLeader("")
			},
			wantUnknown: true, wantCode: core.CodeNotLeader, wantSent: 4,
		},
		{
			name: "every attempt timed out", nodes: 2, opts: []Option{WithMaxAttempts(3), WithAttemptTimeout(50 * time.Millisecond)},
			script: func(int32) reply { return reply{hang: true} },
			// On a loaded machine a dial may outlast an attempt.
			wantUnknown: true, wantSent: -1,
		},
		{
			name: "internal", nodes: 3,
			script:      func(int32) reply { return errReply(core.CodeInternal) },
			wantUnknown: true, wantCode: core.CodeInternal, wantSent: 1,
		},
		{
			name: "no leader, others refuse connections", nodes: 1, closed: 2, opts: []Option{WithMaxAttempts(4)},
			script:   func(int32) reply { return notLeader("") },
			wantCode: core.CodeNotLeader, wantSent: 2,
		},
		{
			name: "no leader, last refused", nodes: 1, closed: 2, opts: []Option{WithMaxAttempts(5)},
			script:  func(int32) reply { return notLeader("") },
			wantErr: syscall.ECONNREFUSED, wantSent: 2,
		},
		{
			// The last attempt's dial error is the error, and the last
			// answer a node gave (why a new cluster does not elect, say)
			// is said with it: it was lost.
			name: "unavailable, last refused", nodes: 1, closed: 2, opts: []Option{WithMaxAttempts(3)},
			script:  func(int32) reply { return errReply(core.CodeUnavailable) },
			wantErr: syscall.ECONNREFUSED, wantSent: 1, wantSaid: "the last node to answer said: server error unavailable: scripted unavailable",
		},
		{
			name: "unavailable", nodes: 3, opts: []Option{WithMaxAttempts(3)},
			script:   func(int32) reply { return errReply(core.CodeUnavailable) },
			wantCode: core.CodeUnavailable, wantSent: 3,
		},
		{
			name: "disk_full", nodes: 3, opts: []Option{WithMaxAttempts(3)},
			script:   func(int32) reply { return errReply(core.CodeDiskFull) },
			wantCode: core.CodeDiskFull, wantSent: 3,
		},
		{
			name: "disk_full after a dropped attempt", nodes: 3, opts: []Option{WithMaxAttempts(3)},
			script: func(n int32) reply {
				if n == 1 {
					return reply{drop: true}
				}
				return errReply(core.CodeDiskFull)
			},
			wantUnknown: true, wantCode: core.CodeDiskFull, wantSent: 3,
		},
		{
			name: "bad_request", nodes: 3,
			script:   func(int32) reply { return errReply(core.CodeBadRequest) },
			wantCode: core.CodeBadRequest, wantSent: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeCluster(t, tc.nodes)
			var n atomic.Int32
			fc.serve(func(_ int, req *core.Request) reply {
				if isReadOp(req.Op) {
					return okReply(req)
				}
				return tc.script(n.Add(1))
			})
			addrs := fc.addrs
			for range tc.closed {
				addrs = append(addrs, closedAddr(t))
			}
			c := dialClusterT(t, addrs, tc.opts...)
			err := c.Set(ctxT(t), "k", "v")
			if err == nil {
				t.Fatal("Set succeeded")
			}
			if got := errors.Is(err, ErrUnknownOutcome); got != tc.wantUnknown {
				t.Fatalf("err = %v; ErrUnknownOutcome %v, want %v", err, got, tc.wantUnknown)
			}
			var se *ServerError
			if tc.wantCode != "" && (!errors.As(err, &se) || se.Code != tc.wantCode) {
				t.Fatalf("err = %v; want code %s", err, tc.wantCode)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v; want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantSaid) {
				t.Fatalf("err = %v; want it to say %q", err, tc.wantSaid)
			}
			lines := fc.seen(core.OpSet)
			if tc.wantSent >= 0 && len(lines) != tc.wantSent {
				t.Fatalf("the write reached a node %d times; want %d", len(lines), tc.wantSent)
			}
			wantOneWrite(t, c, lines, 1)
		})
	}
}

// A node that does not answer within the attempt timeout is left for
// another, and the write retried there as the same write.
func TestClusterAttemptTimeoutMovesOn(t *testing.T) {
	fc := newFakeCluster(t, 2)
	fc.serve(func(node int, req *core.Request) reply {
		if node == 0 {
			return reply{hang: true}
		}
		return okReply(req)
	})
	c := dialClusterT(t, fc.addrs, WithAttemptTimeout(200*time.Millisecond))
	if err := c.Set(ctxT(t), "k", "v"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	// Attempts may time out at node 1 too on a loaded machine, and the
	// nodes record in their own time: only the set of nodes is certain.
	lines := fc.seen(core.OpSet)
	nodes := map[int]bool{}
	for _, l := range lines {
		nodes[l.node] = true
	}
	if !nodes[0] || !nodes[1] {
		t.Fatalf("attempts went to nodes %v; want both", nodesOf(lines))
	}
	wantOneWrite(t, c, lines, 1)
}

// acked is the lowest sequence number still waiting for an answer: held
// at 1 while the first write is unanswered, then past every write.
func TestClusterAckedAdvances(t *testing.T) {
	firstIn := make(chan struct{})
	var mu sync.Mutex
	var got []string // "seq/acked" per write, in arrival order
	srv := newRawServer(t, func(_ int, nc net.Conn) {
		lc := newLineConn(nc)
		record := func(req *core.Request) {
			mu.Lock()
			got = append(got, fmt.Sprintf("%d/%d", req.Seq, req.Acked))
			mu.Unlock()
		}
		// Hold the first write's answer until two more writes are in.
		var held []*core.Request
		for len(held) < 3 {
			req, err := lc.read()
			if err != nil {
				return
			}
			record(req)
			held = append(held, req)
			if len(held) == 1 {
				close(firstIn)
			}
		}
		for _, req := range held {
			lc.write(core.Response{ID: req.ID, OK: true})
		}
		for {
			req, err := lc.read()
			if err != nil {
				return
			}
			record(req)
			lc.write(core.Response{ID: req.ID, OK: true})
		}
	})
	c := dialClusterT(t, []string{srv.addr})
	ctx := ctxT(t)
	errs := make(chan error, 3)
	go func() { errs <- c.Set(ctx, "first", "v") }()
	<-firstIn
	for _, k := range []string{"b", "c"} {
		go func() { errs <- c.Set(ctx, k, "v") }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"d", "e"} {
		if err := c.Set(ctx, k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// b and c begin in either order: seqs 2 and 3.
	if len(got) != 5 || got[0] != "1/1" || !(got[1] == "2/1" && got[2] == "3/1" || got[1] == "3/1" && got[2] == "2/1") || got[3] != "4/4" || got[4] != "5/5" {
		t.Fatalf("writes arrived as seq/acked %v; want [1/1 2/1 3/1 4/4 5/5] (2 and 3 in either order)", got)
	}
}

// The session's bookkeeping, with writes ending out of order.
func TestSessionAcked(t *testing.T) {
	s := newSession(1)
	if s.acked() != 1 {
		t.Fatalf("acked of a new session = %d; want 1", s.acked())
	}
	for want := uint64(1); want <= 4; want++ {
		if seq := s.begin(); seq != want {
			t.Fatalf("begin = %d; want %d", seq, want)
		}
	}
	for _, step := range []struct{ end, acked uint64 }{{3, 1}, {2, 1}, {1, 4}, {4, 5}} {
		s.end(step.end)
		if got := s.acked(); got != step.acked {
			t.Fatalf("after end(%d) acked = %d; want %d", step.end, got, step.acked)
		}
	}
	if len(s.ended) != 0 {
		t.Fatalf("ended holds %v after every write ended", s.ended)
	}
	for _, seq := range []uint64{4, 5} { // ended already; never begun
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("end(%d) did not panic", seq)
				}
			}()
			s.end(seq)
		}()
	}
}

// Concurrent callers each get a sequence number of their own, all under
// the client's one id; reads carry no session.
func TestClusterConcurrentWritesGetDistinctSeqs(t *testing.T) {
	srv := clienttest.NewServer(t)
	c := dialClusterT(t, []string{srv.Addr})
	ctx := ctxT(t)
	const workers, opsEach = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range opsEach {
				k := fmt.Sprintf("w%d-%d", w, i)
				var err error
				switch i % 3 {
				case 0:
					err = c.Set(ctx, k, "v")
				case 1:
					err = c.BulkSet(ctx, []KV{{Key: k, Value: "v"}})
				case 2:
					err = c.Delete(ctx, k)
				}
				if err == nil {
					_, err = c.Get(ctx, k)
					if errors.Is(err, ErrNotFound) {
						err = nil
					}
				}
				if err != nil {
					errs <- err
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
	id := c.ClientID()
	if id < 1 || id > core.ClientIDMax {
		t.Fatalf("client id %d is outside 1..%d", id, uint64(core.ClientIDMax))
	}
	seqs := map[uint64]bool{}
	for _, req := range srv.Requests() {
		if req.Op == core.OpGet {
			if req.ClientID != 0 || req.Seq != 0 || req.Acked != 0 {
				t.Fatalf("a get carries a session: %+v", req)
			}
			continue
		}
		if req.ClientID != id || req.Seq == 0 || req.Acked == 0 || req.Acked > req.Seq || seqs[req.Seq] {
			t.Fatalf("write %+v: want client id %d, a new seq, and 1 <= acked <= seq", req, id)
		}
		seqs[req.Seq] = true
	}
	if len(seqs) != workers*opsEach {
		t.Fatalf("%d distinct seqs; want %d", len(seqs), workers*opsEach)
	}
	for seq := uint64(1); seq <= workers*opsEach; seq++ {
		if !seqs[seq] {
			t.Fatalf("seq %d was never sent: seqs have gaps", seq)
		}
	}
	other := dialClusterT(t, []string{srv.Addr})
	if other.ClientID() == id {
		t.Fatalf("two clients share client id %d", id)
	}
}

// Reads carry no session fields on the wire, even through Do.
func TestClusterReadsCarryNoSession(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.serve(func(_ int, req *core.Request) reply { return okReply(req) })
	c := dialClusterT(t, fc.addrs)
	ctx := ctxT(t)
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, &core.Request{Op: core.OpGet, Key: "k", ClientID: 7, Seq: 7, Acked: 7}); err != nil {
		t.Fatal(err)
	}
	// And Do numbers a write itself, whatever the caller put there.
	if _, err := c.Do(ctx, &core.Request{Op: core.OpSet, Key: "k", Value: ptr("v"), ClientID: 7, Seq: 7}); err != nil {
		t.Fatal(err)
	}
	lines := fc.seen("")
	if len(lines) != 5 {
		t.Fatalf("%d requests; want 5", len(lines))
	}
	for _, l := range lines[:4] {
		for _, field := range []string{"client_id", "seq", "acked"} {
			if strings.Contains(l.raw, `"`+field+`"`) {
				t.Fatalf("read %s carries %s", l.raw, field)
			}
		}
	}
	wantOneWrite(t, c, lines[4:], 1)
}

// The caller's deadline bounds a call, however many attempts remain.
func TestClusterContextDeadline(t *testing.T) {
	const yes, no, either = "yes", "no", "either"
	for _, tc := range []struct {
		name       string
		script     reply
		call       func(ctx context.Context, c *ClusterKVClient) error
		noDeadline bool
		// Whether the error matches ErrUnknownOutcome. A write refused
		// with not_leader until its deadline is unknown if the deadline
		// fell while an attempt was out, known not applied if it fell in
		// a pause: either, by timing.
		wantUnknown string
	}{
		{"write to a hung leader", reply{hang: true},
			func(ctx context.Context, c *ClusterKVClient) error { return c.Set(ctx, "k", "v") }, false, yes},
		{"write without a leader", notLeader(""),
			func(ctx context.Context, c *ClusterKVClient) error { return c.Set(ctx, "k", "v") }, false, either},
		{"read without a leader", notLeader(""),
			func(ctx context.Context, c *ClusterKVClient) error { _, err := c.Get(ctx, "k"); return err }, false, no},
		{"write to a hung leader, request timeout", reply{hang: true},
			func(ctx context.Context, c *ClusterKVClient) error { return c.Set(ctx, "k", "v") }, true, yes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeCluster(t, 3)
			fc.serve(func(_ int, req *core.Request) reply {
				if req.Op == core.OpPing {
					return okReply(req)
				}
				return tc.script
			})
			const timeout = 300 * time.Millisecond
			c := dialClusterT(t, fc.addrs, WithMaxAttempts(1000), WithRequestTimeout(timeout))
			ctx := context.Background()
			if !tc.noDeadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			start := time.Now()
			err := tc.call(ctx, c)
			if d := time.Since(start); d > timeout+2*time.Second {
				t.Fatalf("the call returned after %v; its deadline was %v", d, timeout)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v; want DeadlineExceeded", err)
			}
			if got := errors.Is(err, ErrUnknownOutcome); tc.wantUnknown != either && got != (tc.wantUnknown == yes) {
				t.Fatalf("err = %v; ErrUnknownOutcome %v, want %s", err, got, tc.wantUnknown)
			}
			var se *ServerError
			if tc.script.resp.Error != nil && (!errors.As(err, &se) || se.Code != core.CodeNotLeader) {
				t.Fatalf("err = %v; want it to say why the attempts failed (not_leader)", err)
			}
		})
	}
}

// A redirect to an address that is not host:port counts as naming no
// leader.
func TestClusterIgnoresMalformedLeader(t *testing.T) {
	fc := newFakeCluster(t, 2)
	fc.serve(func(node int, req *core.Request) reply {
		if node == 0 {
			return notLeader("not an address")
		}
		return okReply(req)
	})
	c := dialClusterT(t, fc.addrs)
	if err := c.Set(ctxT(t), "k", "v"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if got := nodesOf(fc.seen(core.OpSet)); fmt.Sprint(got) != "[0 1]" {
		t.Fatalf("attempts went to nodes %v; want [0 1]", got)
	}
}

func TestDialCluster(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.serve(func(_ int, req *core.Request) reply { return okReply(req) })
	down := closedAddr(t)

	// A dead first address is skipped, and calls start at the live one.
	c := dialClusterT(t, []string{down, fc.addrs[0], fc.addrs[0]}, WithRetries(0))
	if got := c.Addrs(); len(got) != 2 {
		t.Fatalf("Addrs() = %v; want the two distinct addresses", got)
	}
	if err := c.Set(ctxT(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	if n := len(fc.seen(core.OpSet)); n != 1 {
		t.Fatalf("the set reached the live node %d times; want 1", n)
	}

	for _, tc := range []struct {
		addrs []string
		opts  []Option
		want  string
	}{
		{nil, nil, "no addresses"},
		{[]string{"localhost"}, nil, "not host:port"},
		{[]string{fc.addrs[0]}, []Option{WithMaxAttempts(0)}, "must be at least 1"},
		{[]string{fc.addrs[0]}, []Option{WithAttemptTimeout(0)}, "must be positive"},
		{[]string{down, closedAddr(t)}, []Option{WithRetries(1)}, "connection refused"},
	} {
		c, err := DialCluster(ctxT(t), tc.addrs, tc.opts...)
		if err == nil {
			c.Close()
			t.Errorf("DialCluster(%q) succeeded", tc.addrs)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DialCluster(%q): err = %v; want it to say %q", tc.addrs, err, tc.want)
		}
	}
}

// Close fails a call in progress (a write that left, with unknown outcome)
// and every later call.
func TestClusterClose(t *testing.T) {
	fc := newFakeCluster(t, 1)
	in := make(chan struct{}, 1)
	fc.serve(func(_ int, req *core.Request) reply {
		in <- struct{}{}
		return reply{hang: true}
	})
	c := dialClusterT(t, fc.addrs)
	errs := make(chan error, 1)
	go func() { errs <- c.Set(ctxT(t), "k", "v") }()
	<-in
	c.Close()
	if err := <-errs; !errors.Is(err, ErrClosed) || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("outstanding Set: err = %v; want ErrClosed and ErrUnknownOutcome", err)
	}
	if err := c.Ping(ctxT(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: err = %v; want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// outcome_unknown: the write was proposed by a node that lost its majority
// or leadership; it may still apply. The client retries it elsewhere under
// the same seq, and reports ErrUnknownOutcome if it never learns more.
func TestClusterOutcomeUnknownRetriedUnderSameSeq(t *testing.T) {
	fc := newFakeCluster(t, 3)
	fc.serve(func(node int, req *core.Request) reply {
		if node == 0 || req.Key == "lost" {
			return errReply(core.CodeOutcomeUnknown)
		}
		return okReply(req)
	})
	c := dialClusterT(t, fc.addrs, WithMaxAttempts(4))
	if err := c.Set(ctxT(t), "k", "v"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	sets := fc.seen(core.OpSet)
	if len(sets) != 2 {
		t.Fatalf("the set was sent %d times; want 2 (node 0, then node 1)", len(sets))
	}
	wantOneWrite(t, c, sets, 1)
	err := c.Set(ctxT(t), "lost", "v")
	if !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Set after outcome_unknown on every attempt = %v; want ErrUnknownOutcome", err)
	}
}

// More writes in flight than the cluster keeps seqs for (512 a session)
// wait for room rather than go out: past the bound the cluster forgot the
// lowest and refused its attempts with session_expired, and incrs that
// never applied came back as unknown outcomes with no fault at all (found
// by review: 718 of 1,000 concurrent incrs on a healthy cluster).
func TestClusterClientKeepsItsSessionWindow(t *testing.T) {
	c := dialClusterT(t, []string{startSoloCluster(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const callers, each = 1000, 3
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := c.Incr(ctx, "hits", 1); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 3 {
			t.Errorf("incr: %v", err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d incrs failed", failed, callers*each)
	}
	if v, err := c.Get(ctx, "hits"); err != nil || v != strconv.Itoa(callers*each) {
		t.Fatalf("hits = %q, %v; want %d", v, err, callers*each)
	}
}

// The window itself: a write waits while 512 are in progress from the
// lowest, until the lowest ends (another's end is not room: the cluster
// still holds every seq from the lowest on), or its context ends.
func TestSessionWindowWaitsForTheLowest(t *testing.T) {
	c := &ClusterKVClient{done: make(chan struct{}), sess: newSession(1)}
	ctx := context.Background()
	for i := range sessionWritesMax {
		if _, seq, err := c.beginWrite(ctx); err != nil || seq != uint64(i+1) {
			t.Fatalf("write %d: seq %d, %v", i, seq, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := c.beginWrite(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a write past the window: %v, want it to wait out its context", err)
	}
	got := make(chan uint64)
	go func() {
		_, seq, _ := c.beginWrite(ctx)
		got <- seq
	}()
	c.endWrite(c.sess, 2) // not the lowest
	select {
	case seq := <-got:
		t.Fatalf("write %d began after a write other than the lowest ended", seq)
	case <-time.After(20 * time.Millisecond):
	}
	c.endWrite(c.sess, 1)
	select {
	case seq := <-got:
		if seq != sessionWritesMax+1 {
			t.Fatalf("the waiting write got seq %d, want %d", seq, sessionWritesMax+1)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting write did not begin once the lowest ended")
	}
	if _, _, err := c.beginWrite(ctx); err != nil { // the window full again
		t.Fatal(err)
	}
	close(c.done)
	if _, _, err := c.beginWrite(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("a write waiting on a closed client: %v, want ErrClosed", err)
	}
}

// A write's wait for the session's window is not the server's silence:
// timed from the call, a write that waited most of its timeout and was
// then sent found its slow but live connection stalled, and broke it
// (found by review). The connection stays.
func TestSessionWindowWaitIsNotAStall(t *testing.T) {
	fc := newFakeCluster(t, 1)
	var accepts atomic.Int64
	fc.lns[0] = &acceptCounter{Listener: fc.lns[0], n: &accepts}
	fc.serve(func(node int, req *core.Request) reply {
		if req.Op == core.OpSet || (req.Op == core.OpGet && req.Key == "slow") {
			time.Sleep(60 * time.Millisecond) // slow but live
		}
		return okReply(req)
	})
	c := dialClusterT(t, fc.addrs, WithRequestTimeout(400*time.Millisecond))
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := accepts.Load()
	for range sessionWritesMax {
		if _, _, err := c.beginWrite(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var setErr, getErr error
	wg.Add(2)
	go func() { defer wg.Done(); setErr = c.Set(context.Background(), "k", "v") }()
	time.Sleep(370 * time.Millisecond) // the Set waits most of its 400 ms
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, getErr = c.Get(ctx, "slow") // in flight on the same connection
	}()
	time.Sleep(10 * time.Millisecond)
	c.endWrite(c.sess, 1) // room: the Set goes out with some 20 ms left
	wg.Wait()
	if getErr != nil {
		t.Errorf("the get beside it: %v", getErr)
	}
	if n := accepts.Load() - before; n != 0 {
		t.Errorf("the client dialled %d new connections (set: %v): it took the wait for a stall", n, setErr)
	}
}

// acceptCounter counts the connections a listener accepts.
type acceptCounter struct {
	net.Listener
	n *atomic.Int64
}

func (l *acceptCounter) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return nc, err
}
