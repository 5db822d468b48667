package clienttest

import (
	"bufio"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"dkv/core"
)

// Server is an in-memory dkv server on a loopback port. It answers each
// connection's requests one at a time, in order, as the real server does.
type Server struct {
	// Addr is the host:port to dial.
	Addr string

	ln     net.Listener
	limits core.Limits
	wg     sync.WaitGroup

	mu   sync.Mutex
	data map[string]string
	// deadlines are the keys that expire (a set's or an expire's ttl_ms)
	// and when, by now (StopClock; nil: the real time).
	deadlines map[string]time.Time
	now       func() time.Time
	conns     map[net.Conn]struct{}
	accepted  int
	requests  []core.Request
	closed    bool
	// Set by Follow: answer leader-only ops with not_leader naming leader.
	following bool
	leader    string
	// views are the open consistent scans: each a copy of data, and of
	// deadlines, as they were at its first page.
	views    map[string]view
	lastView int
}

type view struct {
	data      map[string]string
	deadlines map[string]time.Time
}

// NewServer starts a server with the default limits. It is closed when the
// test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("clienttest: listen: %v", err)
	}
	s := &Server{
		Addr:      ln.Addr().String(),
		ln:        ln,
		limits:    core.DefaultLimits(),
		data:      map[string]string{},
		deadlines: map[string]time.Time{},
		conns:     map[net.Conn]struct{}{},
		views:     map[string]view{},
	}
	s.wg.Add(1)
	go s.accept()
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server and drops every connection.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// DropConnections closes every open connection, as a crash would, and
// keeps listening.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nc := range s.conns {
		nc.Close()
	}
}

// Follow makes the server act as a cluster follower: from now on it answers
// every op but ping and status (set, get, ttl, expire, persist, incr,
// delete, bulk_set, ...) with not_leader naming leader (none if leader is
// ""), and still serves ping and status. Lead undoes it.
func (s *Server) Follow(leader string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.following, s.leader = true, leader
}

// Lead makes the server serve every op again, as a leader or a single node.
func (s *Server) Lead() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.following, s.leader = false, ""
}

// StopClock makes the server keep the deadlines of keys that expire (a
// set's or an expire's ttl_ms) by a clock that stands at start until
// advance moves it, rather than by the real time. A key is deleted once the
// clock reaches its deadline, as the server next looks: at the next
// request, or Data.
func (s *Server) StopClock(start time.Time) (advance func(time.Duration)) {
	now := start // read by s.now, and written by advance, under s.mu
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = func() time.Time { return now }
	return func(d time.Duration) {
		s.mu.Lock()
		defer s.mu.Unlock()
		now = now.Add(d)
	}
}

// Deadline reports when key expires, if it has a deadline.
func (s *Server) Deadline(key string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	at, ok := s.deadlines[key]
	return at, ok
}

// clock is the server's time. Called with s.mu held.
func (s *Server) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// expire deletes the keys whose deadline has passed. Called with s.mu held.
func (s *Server) expire() {
	now := s.clock()
	for k, at := range s.deadlines {
		if !now.Before(at) {
			delete(s.data, k)
			delete(s.deadlines, k)
		}
	}
}

// Accepted is how many connections the server has accepted.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Requests returns every well-formed request received so far, in arrival
// order.
func (s *Server) Requests() []core.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]core.Request(nil), s.requests...)
}

// Data returns a copy of the stored keys and values.
func (s *Server) Data() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	m := make(map[string]string, len(s.data))
	for k, v := range s.data {
		m[k] = v
	}
	return m
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.accepted++
		s.conns[nc] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(nc)
	}
}

func (s *Server) serve(nc net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		nc.Close()
	}()
	r := bufio.NewReader(nc)
	w := bufio.NewWriter(nc)
	for {
		// Unbounded read: this server trusts its tests.
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		line = line[:len(line)-1]
		var resp core.Response
		if len(line) > s.limits.RequestBytesMax {
			resp = core.ErrorResponse(core.CodeTooLarge, "request line is %d bytes; the limit is %d", len(line), s.limits.RequestBytesMax)
		} else {
			resp = s.handle(line)
		}
		if _, err := w.Write(core.AppendResponse(nil, &resp)); err != nil {
			return
		}
		// Flush only when no further request is already buffered, so that
		// pipelined requests get batched replies, as from the real server.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

func (s *Server) handle(line []byte) core.Response {
	req, bad := core.DecodeRequest(line)
	if bad != nil {
		return *bad
	}
	resp := s.apply(req)
	resp.ID = req.ID
	return resp
}

func (s *Server) apply(req *core.Request) core.Response {
	if bad := s.limits.Validate(req); bad != nil {
		return *bad
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, *req)
	if s.following && req.Op != core.OpPing && req.Op != core.OpStatus {
		resp := core.ErrorResponse(core.CodeNotLeader, "this node follows")
		resp.Error.Leader = s.leader
		return resp
	}
	s.expire()
	if cond := req.Condition(); cond.Kind != core.CondNone {
		cur, found := s.data[req.Key]
		if !cond.Holds(cur, found) {
			return core.ConditionFailedResponse(req.Key, cond, cur, found)
		}
	}
	switch req.Op {
	case core.OpSet:
		s.data[req.Key] = *req.Value
		delete(s.deadlines, req.Key)
		if req.TTLMs != 0 {
			s.deadlines[req.Key] = s.clock().Add(time.Duration(req.TTLMs) * time.Millisecond)
		}
	case core.OpTTL, core.OpPersist:
		if _, ok := s.data[req.Key]; !ok {
			return core.NotFoundResponse(req.Key)
		}
		at, ok := s.deadlines[req.Key]
		if !ok {
			return core.OKResponse()
		}
		// A persist answers what the key had left, as a ttl would have.
		left := uint64(max(at.Sub(s.clock()), 0) / time.Millisecond)
		if req.Op == core.OpPersist {
			delete(s.deadlines, req.Key)
		}
		return core.Response{OK: true, TTLMs: &left}
	case core.OpExpire:
		// A deadline for a key that exists, in place of its old one; the
		// value stays. (Validate has checked ttl_ms.)
		if _, ok := s.data[req.Key]; !ok {
			return core.NotFoundResponse(req.Key)
		}
		s.deadlines[req.Key] = s.clock().Add(time.Duration(req.TTLMs) * time.Millisecond)
	case core.OpIncr:
		// As the real server: the deadline stays, and a refusal writes
		// nothing.
		old, found := s.data[req.Key]
		n, code := core.Increment(old, found, req.IncrDelta())
		resp := core.IncrResponse(req.Key, n, code)
		if resp.OK {
			s.data[req.Key] = *resp.Value
		}
		return resp
	case core.OpGet:
		v, ok := s.data[req.Key]
		if !ok {
			return core.NotFoundResponse(req.Key)
		}
		return core.Response{OK: true, Value: &v}
	case core.OpDelete:
		delete(s.data, req.Key)
		delete(s.deadlines, req.Key)
	case core.OpBulkSet:
		for _, kv := range req.Items {
			s.data[kv.Key] = kv.Value
			delete(s.deadlines, kv.Key)
		}
	case core.OpBulkGet:
		return core.BulkGetResponse(req.Keys, func(k string) (string, bool) {
			v, ok := s.data[k]
			return v, ok
		}, s.limits.RequestBytesMax)
	case core.OpBulkDelete:
		var n uint64
		for _, k := range core.DistinctKeys(req.Keys) {
			if _, ok := s.data[k]; ok {
				n++
			}
			delete(s.data, k)
			delete(s.deadlines, k)
		}
		return core.DeletedResponse(n)
	case core.OpScan:
		return s.scan(req)
	case core.OpSearch, core.OpSearchSimilar:
		// As a real server started without --enable-indexes.
		return core.ErrorResponse(core.CodeIndexesDisabled, "this server keeps no indexes")
	case core.OpAuth:
		// As a real server started without --auth-file.
		return core.ErrorResponse(core.CodeAuthFailed, "this server has no password")
	case core.OpStatus:
		return core.Response{OK: true, Status: &core.Status{Mode: "fake", Keys: len(s.data), ScanViews: len(s.views)}}
	}
	return core.OKResponse()
}

// scan answers a page of a scan as the real server does: in key order,
// with ttl_ms for keys that expire, and for a consistent scan from a copy
// of the data made at its first page (its view), kept while keys are left.
// Called with s.mu held.
func (s *Server) scan(req *core.Request) core.Response {
	data, deadlines := s.data, s.deadlines
	if req.View != "" && req.Close {
		delete(s.views, req.View) // the walk ended early
		return core.Response{OK: true, Items: []core.KV{}, More: new(bool)}
	}
	if req.View != "" {
		v, ok := s.views[req.View]
		if !ok {
			return core.ErrorResponse(core.CodeScanExpired, "no view %q", req.View)
		}
		data, deadlines = v.data, v.deadlines
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	now := s.clock()
	ascend := func(from string, f func(key, value string) bool) {
		i, _ := slices.BinarySearch(keys, from)
		for _, k := range keys[i:] {
			if at, ok := deadlines[k]; ok && !now.Before(at) {
				continue // expired in a view, which expire() does not reach
			}
			if !f(k, data[k]) {
				return
			}
		}
	}
	ttlOf := func(k string) *uint64 {
		at, ok := deadlines[k]
		if !ok {
			return nil
		}
		left := uint64(max(at.Sub(now), 0) / time.Millisecond)
		return &left
	}
	resp := core.ScanResponse(req, ascend, ttlOf, s.limits.RequestBytesMax)
	switch {
	case !resp.OK || resp.More == nil:
	case req.View != "" && !*resp.More:
		delete(s.views, req.View) // the walk is over
	case req.View != "" && *resp.More:
		resp.View = req.View
	case req.Consistent && *resp.More:
		s.lastView++
		id := fmt.Sprintf("%016x", s.lastView)
		s.views[id] = view{data: maps.Clone(data), deadlines: maps.Clone(deadlines)}
		resp.View = id
	}
	return resp
}
