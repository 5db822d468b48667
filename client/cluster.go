package client

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"dkv/core"
)

// ClusterKVClient is a client of a dkv cluster: it has the calls of
// KVClient (Set, Get, Delete, BulkSet, Ping, Status, Do) and sends each to
// the node it believes leads, keeping one pipelined connection (a KVClient)
// per node it has talked to. It is safe for concurrent use.
//
// Finding the leader. A call goes to the last node known to lead or, when
// none is known, to the given addresses in turn. A node that answers
// not_leader naming the leader sends the call there at once (one such hop
// in a row goes without a pause); one that names no leader, or answers
// unavailable or too_many_connections, or cannot be reached, or does not answer within the attempt
// timeout (a connection it closed while idle is redialled first, within
// the same attempt), sends the call to the next address after a backoff: 10 ms
// doubling to 250 ms, each wait drawn from its upper half so that clients
// of a failed leader do not return in step. A node that has not answered
// when the call's own deadline ends the attempt, before the attempt
// timeout, is left in the same way, for the next call. A call makes at most
// WithMaxAttempts attempts (default 20), each bounded by WithAttemptTimeout
// (default 2s), and all of them by its context or, without a deadline, the
// request timeout. Ping and Status are answered by any node; the other
// reads (Get, TTL, ...) by the leader, as it confirms it still leads.
//
// Exactly-once writes. The client is one session of the cluster: a random
// client id, and a sequence number for each write (Set, SetWithTTL, the
// conditional writes, Delete, BulkSet, Expire, Persist, Incr, and any op
// Do does not know as a read), 1, 2, ... in the order calls begin. Every
// attempt of a write carries the same id and sequence number, so the
// cluster applies it at most once, however many nodes it was sent to, and
// answers a retry with the first outcome. Each write also carries acked,
// the lowest sequence number of a write still in progress: every write
// below it has been answered or given up on and is never sent again, so
// the cluster may forget it. A write begins only while fewer than 512 are
// in progress from the lowest (the seqs a cluster keeps a session); the
// next waits, within its context. Reads carry no session.
//
// Outcomes. A write that returns nil was committed. A write whose every
// attempt was refused without effect (not_leader, unavailable,
// too_many_connections, a connection refused or broken before the request
// left) returns the last refusal. A write that gives up after an attempt
// whose outcome is unknown (the connection broke or the attempt timed out
// after the request left, the server answered internal, or the context
// ended with the request out) returns an error matching ErrUnknownOutcome,
// and so does a write that the cluster refuses with session_expired after
// such an attempt (it has forgotten this session, so it cannot tell a
// retry from a new write; the earlier attempt may have applied). Such a
// write is never resent under a new sequence number: that is the caller's
// decision, after reading the key back. The cluster forgets a session once
// 16,384 other clients were active since its last write, and refuses its
// every write from then on; so on session_expired the client starts a new
// session, with a new random id, for the writes that begin later, and a
// write none of whose attempts can have applied is sent again in it, once.
// A conditional write's condition_failed, an Expire's or Persist's
// not_found and an Incr's not_integer or overflow are certain, whatever
// came of earlier attempts: the cluster keeps a refused write in the
// session too, and answers its retry with the refusal (and the retry of an
// Incr that applied with the value the first attempt made). A leader's
// disk_full or io_error (refused before it was proposed, by a leader that
// hands the office to a healthy node) is tried again at that node after a
// pause, and ends the call only when every attempt meets one. Other server
// errors (bad_request, too_large, ...) end the call at once; after an
// attempt of unknown outcome they match ErrUnknownOutcome too.
// Reads are retried freely by the same rules.
//
// Against a single node it works too: the node checks the session fields
// and ignores them. It keeps no sessions, though: a write retried after an
// attempt of unknown outcome may apply twice there (an Incr counts twice),
// and the condition_failed, not_found, not_integer or overflow that
// answers such a retry is not certain (the first attempt may have
// applied: a SetIfAbsent that took the key reported false). Use a
// KVClient, which never resends a write, against a single node.
type ClusterKVClient struct {
	ops // Set, Get, Delete, BulkSet, Ping, Status, Do: through c.do

	opts     options
	nodeOpts options       // for the KVClient of each node: no dial retries of its own
	addrs    []string      // as given, deduplicated
	done     chan struct{} // closed by Close, to end backoffs early

	mu     sync.Mutex
	nodes  map[string]*KVClient // the nodes talked to, by address; at most len(addrs)+learnedAddrsMax
	leader string               // the node believed to lead, "" when unknown
	next   int                  // index in addrs of the node to try when no leader is known
	closed bool
	// sess is the session new writes begin in. A write keeps the one it
	// began in, whose id and window it uses to the end, even after a
	// session_expired made the client start another (renew).
	sess *session
	// room, made by a write that found the session's window full, is
	// closed when the lowest write in progress ends.
	room chan struct{}
}

// Limits of a ClusterKVClient.
const (
	// addrsMax bounds the addresses given to DialCluster.
	addrsMax = 64
	// learnedAddrsMax bounds the leader addresses learned from redirects
	// that are not among those given (a node may name itself differently).
	// A redirect beyond it is treated as naming no leader.
	learnedAddrsMax = 8
	// sessionWritesMax bounds a session's writes from the lowest still in
	// progress to the newest: the cluster keeps a client's seqs from its
	// acked on, 512 at most (election's sessionSeqsMax), and past that
	// forgets the lowest, whose attempts it then refuses with
	// session_expired. More writes than that in flight would make writes
	// that never applied unknown outcomes, with no fault at all (found by
	// review: 718 of 1,000 concurrent incrs); the next one waits instead.
	sessionWritesMax = 512
	// retryBackoffBase and retryBackoffMax bound the pause before a retry.
	// The base is short: a failover's first retry goes to another node.
	retryBackoffBase = 10 * time.Millisecond
	retryBackoffMax  = 250 * time.Millisecond
)

// DialCluster returns a client of the cluster whose nodes listen at addrs
// ("host:port" each, the nodes' client addresses). It opens a connection to
// the first node that accepts one, trying the addresses in turn, each
// within the attempt timeout (WithAttemptTimeout), for 1+WithRetries
// rounds with backoff, within ctx; so a list that names no live node fails
// here, and one node that does not answer does not hold it. It does not
// wait for a leader: a cluster without one still answers Ping and Status,
// and a write waits for an election within its own context.
func DialCluster(ctx context.Context, addrs []string, opts ...Option) (*ClusterKVClient, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("dkv: dial cluster: %w", err)
	}
	list, err := clusterAddrs(addrs)
	if err != nil {
		return nil, fmt.Errorf("dkv: dial cluster: %w", err)
	}
	c := &ClusterKVClient{
		opts:     o,
		nodeOpts: o,
		addrs:    list,
		done:     make(chan struct{}),
		nodes:    make(map[string]*KVClient, len(list)),
		sess:     newSession(newClientID()),
	}
	c.nodeOpts.dialRetriesMax = 0
	c.ops = ops{do: c.do}
	if err := c.connectAny(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("dkv: dial cluster %s: %w", strings.Join(list, ","), err)
	}
	return c, nil
}

// clusterAddrs checks and deduplicates the addresses, keeping their order.
func clusterAddrs(addrs []string) ([]string, error) {
	if len(addrs) == 0 {
		return nil, errors.New("no addresses")
	}
	if len(addrs) > addrsMax {
		return nil, fmt.Errorf("%d addresses; the limit is %d", len(addrs), addrsMax)
	}
	var list []string
	seen := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		if !validAddr(a) {
			return nil, fmt.Errorf("address %q is not host:port", a)
		}
		if !seen[a] {
			seen[a] = true
			list = append(list, a)
		}
	}
	return list, nil
}

func validAddr(a string) bool {
	_, port, err := net.SplitHostPort(a)
	return err == nil && port != ""
}

// newClientID picks a random id in 1..core.ClientIDMax. It comes from the
// operating system's generator, not a seeded one: two clients started at
// once must not share a session.
func newClientID() uint64 {
	var b [8]byte
	for {
		crand.Read(b[:])
		// ClientIDMax is 2^53-1: a mask.
		if id := binary.LittleEndian.Uint64(b[:]) & core.ClientIDMax; id != 0 {
			return id
		}
	}
}

// connectAny opens a connection to the first node that accepts one.
func (c *ClusterKVClient) connectAny(ctx context.Context) error {
	errs := make([]error, len(c.addrs))
	backoff := dialBackoffBase
	for round := 0; round <= c.opts.dialRetriesMax; round++ {
		if round > 0 {
			if err := c.pause(ctx, backoff); err != nil {
				return fmt.Errorf("%w (last errors: %w)", err, errors.Join(errs...))
			}
			backoff = min(2*backoff, dialBackoffMax)
		}
		for i, addr := range c.addrs {
			n, err := c.node(addr)
			if err == nil {
				err = c.connectTo(ctx, n)
			}
			if err == nil {
				c.mu.Lock()
				c.next = i
				c.mu.Unlock()
				return nil
			}
			errs[i] = err
			if ctx.Err() != nil || errors.Is(err, ErrClosed) {
				return errors.Join(errs...)
			}
		}
	}
	return errors.Join(errs...)
}

// connectTo opens a connection to the node n, within the attempt timeout,
// as a call's attempt at it would: a node that takes the connection and
// then answers nothing (stopped, or hung) held DialCluster for the dial
// timeout, its password's or TLS handshake's answer included, which is
// often the caller's whole budget (cmd/kv gives both its --timeout),
// though the next node would have served (found by review).
func (c *ClusterKVClient) connectTo(ctx context.Context, n *KVClient) error {
	actx, cancel := context.WithTimeout(ctx, c.opts.attemptTimeout)
	defer cancel()
	_, err := n.conn(actx)
	if err != nil && ctx.Err() == nil && actx.Err() != nil && errors.Is(err, actx.Err()) {
		err = &attemptTimeoutError{addr: n.addr, timeout: c.opts.attemptTimeout, err: err}
	}
	return err
}

// Addrs returns the node addresses the client was given, deduplicated.
func (c *ClusterKVClient) Addrs() []string { return append([]string(nil), c.addrs...) }

// Leader is the address of the node the client last learned to lead (from
// a write or get it served, or a redirect), or "" when it knows none.
func (c *ClusterKVClient) Leader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// ClientID is the id of the client's session, sent with every write. It
// changes only when the cluster has forgotten the session
// (session_expired) and the client starts another.
func (c *ClusterKVClient) ClientID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.id
}

// Close closes every connection. Calls outstanding fail with ErrClosed
// (writes that may have been applied with ErrUnknownOutcome too), and so do
// all later calls.
func (c *ClusterKVClient) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	nodes := c.nodes
	c.nodes = nil
	c.mu.Unlock()
	for _, n := range nodes {
		n.Close()
	}
	return nil
}

// node returns the client of the node at addr, made on first use; it
// dials on its first call.
func (c *ClusterKVClient) node(addr string) (*KVClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	n := c.nodes[addr]
	if n == nil {
		n = newKVClient(addr, c.nodeOpts)
		c.nodes[addr] = n
	}
	return n, nil
}

// first is the node to send a new call to.
func (c *ClusterKVClient) first() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader != "" {
		return c.leader
	}
	return c.addrs[c.next]
}

// after is the node to try once addr has failed to serve a call: addr is
// no longer believed to lead, and the turn moves past it (once, however
// many concurrent calls saw it fail).
func (c *ClusterKVClient) after(addr string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader == addr {
		c.leader = ""
	}
	if c.addrs[c.next] == addr {
		c.next = (c.next + 1) % len(c.addrs)
	}
	return c.addrs[c.next]
}

// follow records that leader leads, as a redirect or an answer says, and
// reports whether the client will go there: not if the address is malformed
// or one too many learned.
func (c *ClusterKVClient) follow(leader string) bool {
	if !validAddr(leader) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, known := c.nodes[leader]; !known && len(c.nodes) >= len(c.addrs)+learnedAddrsMax {
		return false
	}
	c.leader = leader
	return true
}

// do sends req to the cluster by the rules in ClusterKVClient's doc.
func (c *ClusterKVClient) do(ctx context.Context, req core.Request) (*core.Response, error) {
	began := time.Now()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.requestTimeout)
		defer cancel()
	}
	write := !isRead(req.Op)
	req.ClientID, req.Seq, req.Acked = 0, 0, 0
	var sess *session // the write's, which a renewal replaces
	if write {
		var err error
		if sess, req.Seq, err = c.beginWrite(ctx); err != nil {
			return nil, err // nothing was sent
		}
		req.ClientID = sess.id
		defer func() {
			if sess != nil {
				c.endWrite(sess, req.Seq)
			}
		}()
		// The server's silence is timed from here: a wait for the
		// window counted as its own, and a slow but live connection was
		// broken as stalled (found by review).
		began = time.Now()
	}
	var (
		unknown bool  // an attempt of this write may have been applied
		lastErr error // why the last attempt failed
		// lastAnswer is the last node's answer among the failures: when
		// the last attempt failed to reach its node (a node of a new
		// cluster not yet started), it says why the cluster refused, which
		// the dial error hid (found by review).
		lastAnswer *ServerError
		hopped     bool // the last retry followed a redirect without a pause
		renewed    bool // the write was moved to a new session
		// tlsRefused are the nodes whose TLS refused the client in this
		// call: asked again, they would only refuse again.
		tlsRefused map[string]bool
	)
	// giveUp ends the call with err, which says why the last attempt
	// failed or why no further one is made.
	giveUp := func(err error) error {
		if unknown {
			return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		}
		return err
	}
	backoff := retryBackoffBase
	addr := c.first()
	for attempt := 1; ; attempt++ {
		if write {
			req.Acked = c.acked(sess)
		}
		late := ctx.Err() != nil // the call's time was up before this attempt
		resp, sent, err := c.attempt(ctx, addr, &req, began)
		pause := true
		switch {
		case err == nil && resp.OK:
			if req.Op != core.OpPing && req.Op != core.OpStatus {
				// Only the leader serves the other ops.
				c.follow(addr)
			}
			return resp, nil
		case err == nil:
			se := serverError(resp)
			switch se.Code {
			case core.CodeNotLeader:
				if se.Leader != "" && c.follow(se.Leader) {
					addr = se.Leader
					pause = hopped
				} else {
					addr = c.after(addr)
				}
			case core.CodeUnavailable, core.CodeTooManyConns:
				// Refused without effect. A node at its --max-conns
				// answers a new connection's first request so, unread,
				// and closes it: as good as a connection refused
				// (found by review: the call ended at once).
				addr = c.after(addr)
			case core.CodeDiskFull, core.CodeIOError:
				// A leader whose disk refuses writes refuses a write
				// before it proposes it, so it never applies; and it
				// hands the office to a node whose disk takes writes
				// within an election timeout, if there is one. Ended at
				// once, the call failed where the next attempt would
				// have gone through the new leader (found by review:
				// 3 writes of 100 while a leader's disk filled). If
				// every attempt meets one (most disks full), the call
				// ends with it. The next attempt goes to the same node,
				// after a pause: it redirects once it has handed over,
				// and a follower would only send the call back to it
				// (the call then ended on that redirect, not the disk).

			case core.CodeOutcomeUnknown:
				// Proposed, but its node could not learn its fate (it lost
				// the leadership or its majority). A retry under the same
				// seq applies it at most once and learns the outcome.
				unknown = unknown || write
				addr = c.after(addr)
			case core.CodeSessionExpired:
				if !write {
					return resp, se
				}
				// The cluster has forgotten the session: it refuses
				// every write of it from now on, so new writes need
				// another (found by review: a client idle while 16,384
				// others were active had every write refused so).
				c.renew(sess)
				if unknown || renewed {
					return resp, giveUp(se)
				}
				// No attempt of this write can have applied: this one
				// was refused, the others never reached a leader. So it
				// goes again, once, as the new session's.
				renewed = true
				c.endWrite(sess, req.Seq)
				var err error
				if sess, req.Seq, err = c.beginWrite(ctx); err != nil {
					return nil, fmt.Errorf("%w (after session_expired: %w)", err, se)
				}
				req.ClientID = sess.id
				pause = false
			case core.CodeInternal:
				unknown = unknown || write
				return resp, giveUp(se)
			case core.CodeConditionFailed, core.CodeConditionRefusedEarlier, core.CodeNotFound, core.CodeNotInteger, core.CodeOverflow:
				// Certain, whatever came of earlier attempts: the
				// session records the write as refused (a condition
				// unmet, an expire or persist of a missing key, an
				// incr of a key that is no counter or whose sum
				// overflows), so no copy of it applies later; had one
				// applied before, this one would be its duplicate,
				// answered as it was. (A read's not_found follows no
				// attempt of unknown outcome.)
				return resp, se
			default:
				return resp, giveUp(se)
			}
			lastErr, lastAnswer = se, se
		default:
			// A TLS refusal is the server's before it read anything.
			tlsErr := errors.Is(err, ErrTLS)
			unknown = unknown || (write && sent && !tlsErr)
			// A second refusal by one node ends the call: its other
			// nodes were tried in between, and a certificate does not
			// change within a call (found by review: a client without
			// the certificate the nodes ask for made its 20 attempts,
			// handshakes and backoffs, some 3 s, on every call).
			if ctx.Err() != nil || !retryable(err) || tlsErr && tlsRefused[addr] {
				if !late && errors.Is(ctx.Err(), context.DeadlineExceeded) && errors.Is(err, context.DeadlineExceeded) {
					// The call's deadline, shorter than the attempt
					// timeout, ended the attempt before the node
					// answered: the node is left for the next call, as
					// after an attempt timeout (found by review: with
					// deadlines under 2 s, every call went to a leader
					// stopped for good, and timed out there, while the
					// other nodes had elected another). A node that
					// was only slow costs the next call a redirect.
					c.after(addr)
				}
				if lastErr != nil {
					err = fmt.Errorf("%w (attempt %d; the one before failed: %w)", err, attempt, lastErr)
				}
				return nil, giveUp(err)
			}
			if tlsErr {
				if tlsRefused == nil {
					tlsRefused = make(map[string]bool)
				}
				tlsRefused[addr] = true
			}
			lastErr = err
			addr = c.after(addr)
		}
		if attempt >= c.opts.clusterAttemptsMax {
			err := fmt.Errorf("%s, the last: %w", attemptsFailed(attempt), lastErr)
			if lastAnswer != nil && lastErr != error(lastAnswer) {
				// Said, not wrapped: what the call failed of is the
				// last attempt's error, as a caller tests it.
				err = fmt.Errorf("%w; the last node to answer said: %v", err, lastAnswer)
			}
			return nil, giveUp(err)
		}
		hopped = !pause
		if pause {
			if err := c.pause(ctx, backoff); err != nil {
				return nil, giveUp(fmt.Errorf("%w (after %d attempts, the last: %w)", err, attempt, lastErr))
			}
			backoff = min(2*backoff, retryBackoffMax)
		}
	}
}

// attempt sends req once to the node at addr, within the attempt timeout.
func (c *ClusterKVClient) attempt(ctx context.Context, addr string, req *core.Request, began time.Time) (*core.Response, bool, error) {
	n, err := c.node(addr)
	if err != nil {
		return nil, false, err
	}
	actx, cancel := context.WithTimeout(ctx, c.opts.attemptTimeout)
	defer cancel()
	resp, sent, err := n.send(actx, req, began)
	var lost *connError
	if err != nil && !sent && errors.As(err, &lost) && actx.Err() == nil {
		// The connection was found dead before the request went out on
		// it: the node closed it for being idle, most likely, which says
		// nothing of the node. It gets one more try on a new connection,
		// as a KVClient's call does, before the call moves on (found by
		// review: every call after an idle spell spent an attempt and a
		// backoff on the leader's closed connection, then went to a
		// follower).
		resp, sent, err = n.send(actx, req, began)
	}
	if err != nil && ctx.Err() == nil && actx.Err() != nil && errors.Is(err, actx.Err()) {
		err = &attemptTimeoutError{addr: addr, timeout: c.opts.attemptTimeout, err: err}
	}
	return resp, sent, err
}

// attemptTimeoutError is an attempt that ran out of its own time.
type attemptTimeoutError struct {
	addr    string
	timeout time.Duration
	err     error
}

func (e *attemptTimeoutError) Error() string {
	return fmt.Sprintf("no answer from %s within the attempt timeout of %v: %v", e.addr, e.timeout, e.err)
}
func (e *attemptTimeoutError) Unwrap() error { return e.err }

// retryable reports whether a failed attempt (with the caller's context
// alive) may be tried again at another node: the node could not be reached,
// its connection broke, it did not answer in time, or its TLS handshake
// failed (each node has a certificate of its own: one expired or misnamed
// need not stop the others; a client whose own TLS config is wrong fails
// at every node, and DialCluster says so at once). Not a closed client,
// nor a request that no node would take (too large, not encodable), nor a
// response the client could not read.
func retryable(err error) bool {
	var (
		lost    *connError
		timeout *attemptTimeoutError
		netErr  net.Error
	)
	switch {
	case errors.Is(err, ErrClosed):
		return false
	case errors.Is(err, ErrTLS):
		return true
	case errors.As(err, &lost), errors.As(err, &timeout):
		return true
	case errors.As(err, &netErr):
		return true // a dial
	}
	return false
}

// pause waits about d (its upper half, at random), within ctx and until
// Close.
func (c *ClusterKVClient) pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
}

// beginWrite numbers the next write in the current session, once its
// window has room for it (sessionWritesMax), within ctx and until Close.
// The session is nil when it fails.
func (c *ClusterKVClient) beginWrite(ctx context.Context) (*session, uint64, error) {
	for {
		c.mu.Lock()
		if s := c.sess; s.inProgress() < sessionWritesMax {
			seq := s.begin()
			c.mu.Unlock()
			return s, seq, nil
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room
		c.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("%w (waiting for one of the session's %d writes in progress to end)", ctx.Err(), sessionWritesMax)
		case <-c.done:
			return nil, 0, ErrClosed
		}
	}
}

// endWrite records that the write seq of s ended.
func (c *ClusterKVClient) endWrite(s *session, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	low := s.low
	s.end(seq)
	if s == c.sess && s.low != low && c.room != nil {
		close(c.room) // the window moved
		c.room = nil
	}
}

func (c *ClusterKVClient) acked(s *session) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.acked()
}

// renew starts a new session for the writes that begin from now on, if s,
// which the cluster has forgotten, is still the current one. The writes
// in progress in s end in it.
func (c *ClusterKVClient) renew(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != s {
		return // another write renewed it already
	}
	c.sess = newSession(newClientID())
	if c.room != nil {
		close(c.room) // the new session's window is empty
		c.room = nil
	}
}

// session numbers a client's writes and knows which are still in progress.
// Writes begin in sequence order but may end in any order.
type session struct {
	id    uint64              // the client id the cluster knows it by
	next  uint64              // the seq of the next write to begin
	low   uint64              // the lowest seq begun and not ended; next if none
	ended map[uint64]struct{} // seqs above low that have ended
}

func newSession(id uint64) *session {
	return &session{id: id, next: 1, low: 1, ended: map[uint64]struct{}{}}
}

func (s *session) begin() uint64 {
	seq := s.next
	s.next++
	return seq
}

// end records that the write seq was answered or given up on: it will
// never be sent again.
func (s *session) end(seq uint64) {
	if seq < s.low || seq >= s.next {
		panic(fmt.Sprintf("dkv client: write %d ended, but only %d..%d are in progress", seq, s.low, s.next-1))
	}
	if seq != s.low {
		if _, dup := s.ended[seq]; dup {
			panic(fmt.Sprintf("dkv client: write %d ended twice", seq))
		}
		s.ended[seq] = struct{}{}
		return
	}
	s.low++
	for {
		if _, ok := s.ended[s.low]; !ok {
			break
		}
		delete(s.ended, s.low)
		s.low++
	}
}

// acked is the lowest seq still in progress: every write below it has ended.
func (s *session) acked() uint64 { return s.low }

// inProgress counts the seqs from the lowest in progress to the newest,
// ended or not: those the cluster may hold for the session.
func (s *session) inProgress() uint64 { return s.next - s.low }
