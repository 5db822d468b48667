package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"dkv/core"
	"dkv/mesh"
)

// KV is one key and its value, as BulkSet takes them.
type KV = core.KV

// KVClient is a client of one dkv server over one pipelined TCP connection.
// It is safe for concurrent use by many goroutines; concurrent calls share
// the connection rather than waiting for each other's round trips.
type KVClient struct {
	ops // Set, Get, Delete, BulkSet, Ping, Status, Do: through c.do

	addr   string
	opts   options
	nextID atomic.Uint64

	// dialing is a one-token semaphore: one goroutine redials while the
	// others wait for it, each within its own context.
	dialing chan struct{}
	// closing ends, at Close, the dials in progress (and their TLS
	// handshakes and passwords), which no connection's failure reaches.
	closing  context.Context
	closeAll context.CancelFunc

	mu     sync.Mutex
	cur    *conn // nil, or the latest conn (which may have broken since)
	closed bool
	// dialsEnded counts the dials that have ended, and dialErr is why the
	// last one failed (nil if it succeeded, or if its caller's context
	// cut it short), so that the callers who waited for a dial take its
	// failure rather than each making the same dial, retries and
	// backoff again, one after another (found by review: of 50 calls
	// made at once on a server that had gone, 7 failed with its
	// "connection refused" and 43 waited out their timeouts in line).
	dialsEnded uint64
	dialErr    error
	// stamp is the highest mesh stamp this client was answered: its writes
	// (those a mesh takes: takesStamp) carry it as after, so that each wins
	// over every write it saw (see docs/PROTOCOL.md). Zero until a mesh
	// node answers.
	stamp mesh.Stamp
}

// Stamp is the highest stamp a mesh node answered this client ("" before
// any): a token that another client may pass to ObserveStamp so that its
// writes win over what this one saw.
func (c *KVClient) Stamp() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stamp.IsZero() {
		return ""
	}
	return c.stamp.String()
}

// ObserveStamp makes this client's later writes win over the write that
// stamp (another client's Stamp, or a response's) belongs to.
func (c *KVClient) ObserveStamp(stamp string) error {
	st, err := mesh.ParseStamp(stamp)
	if err != nil {
		return fmt.Errorf("dkv: %w", err)
	}
	c.observe(st)
	return nil
}

func (c *KVClient) observe(st mesh.Stamp) {
	c.mu.Lock()
	if c.stamp.Less(st) {
		c.stamp = st
	}
	c.mu.Unlock()
}

// Dial connects to the server at addr ("host:port"). The first connection is
// opened now, retried as WithRetries says, so that a wrong address fails
// here rather than on the first call.
func Dial(addr string, opts ...Option) (*KVClient, error) {
	return DialContext(context.Background(), addr, opts...)
}

// DialContext is Dial with a context that bounds the first connection,
// retries and backoff included.
func DialContext(ctx context.Context, addr string, opts ...Option) (*KVClient, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("dkv: dial %s: %w", addr, err)
	}
	c := newKVClient(addr, o)
	if _, err := c.conn(ctx); err != nil {
		return nil, fmt.Errorf("dkv: %w", err)
	}
	return c, nil
}

// newKVClient makes a client of addr that dials on its first call.
func newKVClient(addr string, opts options) *KVClient {
	c := &KVClient{addr: addr, opts: opts, dialing: make(chan struct{}, 1)}
	c.closing, c.closeAll = context.WithCancel(context.Background())
	c.ops = ops{do: c.do}
	return c
}

// Addr is the server address this client talks to.
func (c *KVClient) Addr() string { return c.addr }

// ops are the calls that KVClient and ClusterKVClient share; each client
// sends their requests through its own do, with its own retry rules.
type ops struct {
	do func(ctx context.Context, req core.Request) (*core.Response, error)
}

// Set stores value under key. A nil error means the write is durable on the
// server (fsync'd before the reply; in a cluster, on a majority of nodes).
func (c *ops) Set(ctx context.Context, key, value string) error {
	_, err := c.do(ctx, core.Request{Op: core.OpSet, Key: key, Value: &value})
	if err != nil {
		return fmt.Errorf("dkv: set %q: %w", key, err)
	}
	return nil
}

// Get returns the value of key, or an error matching ErrNotFound.
func (c *ops) Get(ctx context.Context, key string) (string, error) {
	resp, err := c.do(ctx, core.Request{Op: core.OpGet, Key: key})
	if err == nil && resp.Value == nil {
		err = fmt.Errorf("%w: get response has no value", ErrProtocol)
	}
	if err != nil {
		return "", fmt.Errorf("dkv: get %q: %w", key, err)
	}
	return *resp.Value, nil
}

// Delete removes key. Deleting a missing key succeeds.
func (c *ops) Delete(ctx context.Context, key string) error {
	_, err := c.do(ctx, core.Request{Op: core.OpDelete, Key: key})
	if err != nil {
		return fmt.Errorf("dkv: delete %q: %w", key, err)
	}
	return nil
}

// SetWithTTL stores value under key, which expires after ttl: the server
// (a cluster's leader) deletes the key once ttl has passed on its calendar
// clock, and reads see it until then. ttl is sent in whole milliseconds,
// rounded up; it must be at least a millisecond and at most ten years
// (core.TTLMsMax), else the call fails with an error matching ErrInvalidTTL
// and nothing is sent. A later Set, BulkSet or Delete of the key replaces
// the deadline (a plain Set keeps the key for good). A single node and a
// cluster take it; a mesh refuses it (not_implemented).
func (c *ops) SetWithTTL(ctx context.Context, key, value string, ttl time.Duration) error {
	ms, err := ttlMs(ttl)
	if err == nil {
		_, err = c.do(ctx, core.Request{Op: core.OpSet, Key: key, Value: &value, TTLMs: ms})
	}
	if err != nil {
		return fmt.Errorf("dkv: set %q (ttl %v): %w", key, ttl, err)
	}
	return nil
}

// SetIfAbsentWithTTL is SetIfAbsent of a key that expires after ttl (as
// SetWithTTL): a lease that frees itself. It reports whether it stored
// value: false, with a nil error, means the key existed (another holds the
// lease) and nothing was written. Renew the lease with
// CompareAndSwapWithTTL(ctx, key, value, value, ttl), release it with
// CompareAndDelete(ctx, key, value).
func (c *ops) SetIfAbsentWithTTL(ctx context.Context, key, value string, ttl time.Duration) (bool, error) {
	return c.conditionalWithTTL(ctx, core.Request{Op: core.OpSet, Key: key, Value: &value, IfAbsent: true}, ttl)
}

// CompareAndSwapWithTTL is CompareAndSwap whose key, if new is stored,
// expires after ttl (as SetWithTTL): the renewal of a lease taken with
// SetIfAbsentWithTTL, which must not extend a lease that expired and was
// taken by another.
func (c *ops) CompareAndSwapWithTTL(ctx context.Context, key, old, new string, ttl time.Duration) (bool, error) {
	return c.conditionalWithTTL(ctx, core.Request{Op: core.OpSet, Key: key, Value: &new, IfValue: &old}, ttl)
}

func (c *ops) conditionalWithTTL(ctx context.Context, req core.Request, ttl time.Duration) (bool, error) {
	ms, err := ttlMs(ttl)
	if err != nil {
		return false, fmt.Errorf("dkv: %s %q (%s): %w", req.Op, req.Key, req.Condition(), err)
	}
	req.TTLMs = ms
	return c.conditional(ctx, req)
}

// ttlMs is ttl in whole milliseconds, rounded up, if it is a ttl a set may
// carry.
func ttlMs(ttl time.Duration) (uint64, error) {
	if ttl < time.Millisecond {
		return 0, fmt.Errorf("%w: %v is less than a millisecond", ErrInvalidTTL, ttl)
	}
	ms := uint64((ttl + time.Millisecond - 1) / time.Millisecond)
	if ms > core.TTLMsMax {
		return 0, fmt.Errorf("%w: %v is more than ten years (%d ms)", ErrInvalidTTL, ttl, uint64(core.TTLMsMax))
	}
	return ms, nil
}

// TTL reports how long key has left before the server deletes it: expires
// is false, and left 0, for a key without a deadline (set without a ttl).
// left is 0 once the deadline has passed, until the server has deleted the
// key. A missing key is an error matching ErrNotFound. A mesh refuses it
// (not_implemented).
func (c *ops) TTL(ctx context.Context, key string) (left time.Duration, expires bool, err error) {
	resp, err := c.do(ctx, core.Request{Op: core.OpTTL, Key: key})
	if err == nil && resp.TTLMs != nil && *resp.TTLMs > ttlMsAnswerMax {
		err = fmt.Errorf("%w: ttl answered %d ms, more than a time.Duration holds", ErrProtocol, *resp.TTLMs)
	}
	if err != nil {
		return 0, false, fmt.Errorf("dkv: ttl %q: %w", key, err)
	}
	if resp.TTLMs == nil {
		return 0, false, nil
	}
	return time.Duration(*resp.TTLMs) * time.Millisecond, true, nil
}

// ttlMsAnswerMax is the most milliseconds a time.Duration holds.
const ttlMsAnswerMax = uint64(math.MaxInt64 / int64(time.Millisecond))

// Expire gives key, which must exist, a deadline ttl from now, in place of
// any it had, and leaves its value alone: the server (a cluster's leader)
// deletes the key once ttl has passed on its calendar clock, as after
// SetWithTTL. ttl is checked and sent as SetWithTTL's (whole milliseconds,
// rounded up, 1ms to ten years, else ErrInvalidTTL and nothing is sent). A
// missing key is an error matching ErrNotFound, and nothing is written:
// a deadline is no way to create a key. It is a write (a cluster client's
// session retries it as it does Set). A single node and a cluster take it;
// a mesh refuses it (not_implemented).
func (c *ops) Expire(ctx context.Context, key string, ttl time.Duration) error {
	ms, err := ttlMs(ttl)
	if err == nil {
		_, err = c.do(ctx, core.Request{Op: core.OpExpire, Key: key, TTLMs: ms})
	}
	if err != nil {
		return fmt.Errorf("dkv: expire %q (ttl %v): %w", key, ttl, err)
	}
	return nil
}

// Persist takes key's deadline away, so that the key stays until it is
// written or deleted, and reports whether it had one: hadTTL is true when
// the server said what the key had left. A missing key is an error
// matching ErrNotFound, and nothing is written. It is a write, like
// Expire. On a cluster, the answer to a retry of a persist that had
// already applied cannot say (the deadline it took away is gone), so
// hadTTL is false then, though the first attempt may have removed one. A
// mesh refuses it (not_implemented).
func (c *ops) Persist(ctx context.Context, key string) (hadTTL bool, err error) {
	resp, err := c.do(ctx, core.Request{Op: core.OpPersist, Key: key})
	if err != nil {
		return false, fmt.Errorf("dkv: persist %q: %w", key, err)
	}
	return resp.TTLMs != nil, nil
}

// Incr adds delta (negative to subtract; 0 allowed) to the integer key
// holds, a missing key counting as 0, and returns the new value; the key
// keeps its deadline, if it has one. A key that holds anything but a
// decimal int64 as an incr writes it is an error matching ErrNotInteger,
// and a sum outside int64 one matching ErrOverflow; nothing is written
// then. It is a write, and not idempotent: a KVClient never sends it
// twice (an answer lost on the way is ErrUnknownOutcome: the counter may
// or may not have moved), while a ClusterKVClient retries it in its
// session, which a cluster applies once, answering every retry with the
// first attempt's value or refusal. A single node keeps no sessions:
// against one, use a KVClient, or a ClusterKVClient's retry may apply
// twice. A mesh refuses it (not_implemented).
func (c *ops) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	resp, err := c.do(ctx, core.Request{Op: core.OpIncr, Key: key, Delta: &delta})
	var n int64
	if err == nil {
		n, err = incrValue(resp)
	}
	if err != nil {
		return 0, fmt.Errorf("dkv: incr %q (delta %d): %w", key, delta, err)
	}
	return n, nil
}

// incrValue reads an incr's answer: the new value, in decimal.
func incrValue(resp *core.Response) (int64, error) {
	if resp.Value == nil {
		return 0, fmt.Errorf("%w: incr response has no value", ErrProtocol)
	}
	n, err := strconv.ParseInt(*resp.Value, 10, 64)
	if err != nil {
		// The incr applied; only its answer is unreadable.
		return 0, fmt.Errorf("%w: incr answered value %q, which is not an int64", ErrProtocol, *resp.Value)
	}
	return n, nil
}

// SetIfAbsent stores value under key only if key does not exist, and
// reports whether it did: false, with a nil error, means the key existed
// and nothing was written. The check and the write are one step: of many
// clients that race to create a key, exactly one succeeds. A single node
// and a cluster take conditional writes; a mesh refuses them.
func (c *ops) SetIfAbsent(ctx context.Context, key, value string) (bool, error) {
	return c.conditional(ctx, core.Request{Op: core.OpSet, Key: key, Value: &value, IfAbsent: true})
}

// SetIfExists stores value under key only if key exists, and reports
// whether it did.
func (c *ops) SetIfExists(ctx context.Context, key, value string) (bool, error) {
	return c.conditional(ctx, core.Request{Op: core.OpSet, Key: key, Value: &value, IfExists: true})
}

// CompareAndSwap stores new under key only if key holds old, and reports
// whether it did: false means the key held another value or did not exist,
// and nothing was written.
func (c *ops) CompareAndSwap(ctx context.Context, key, old, new string) (bool, error) {
	return c.conditional(ctx, core.Request{Op: core.OpSet, Key: key, Value: &new, IfValue: &old})
}

// CompareAndDelete deletes key only if it holds old, and reports whether it
// did: the release of a lock taken with SetIfAbsent, which must not delete
// a lock that expired and was taken by another.
func (c *ops) CompareAndDelete(ctx context.Context, key, old string) (bool, error) {
	return c.conditional(ctx, core.Request{Op: core.OpDelete, Key: key, IfValue: &old})
}

// conditional sends a conditional write; its refusal is false, not an
// error. (The refusal also carries the key's value, which Do returns.)
func (c *ops) conditional(ctx context.Context, req core.Request) (bool, error) {
	_, err := c.do(ctx, req)
	switch {
	case errors.Is(err, ErrConditionFailed) && !errors.Is(err, ErrUnknownOutcome):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("dkv: %s %q (%s): %w", req.Op, req.Key, req.Condition(), err)
	}
	return true, nil
}

// BulkSet stores every item atomically: after any crash the server has all
// of them or none.
func (c *ops) BulkSet(ctx context.Context, items []KV) error {
	_, err := c.do(ctx, core.Request{Op: core.OpBulkSet, Items: items})
	if err != nil {
		return fmt.Errorf("dkv: bulk_set of %d items: %w", len(items), err)
	}
	return nil
}

// BulkGet reads keys at one instant and returns their values in the same
// order; a missing key's value is nil.
func (c *ops) BulkGet(ctx context.Context, keys ...string) ([]*string, error) {
	resp, err := c.do(ctx, core.Request{Op: core.OpBulkGet, Keys: keys})
	if err == nil && len(resp.Values) != len(keys) {
		err = fmt.Errorf("%w: bulk_get of %d keys answered %d values", ErrProtocol, len(keys), len(resp.Values))
	}
	if err != nil {
		return nil, fmt.Errorf("dkv: bulk_get of %d keys: %w", len(keys), err)
	}
	return resp.Values, nil
}

// BulkDelete deletes every key atomically and returns how many of them
// existed (a key named twice counts once). It returns -1 for the count when
// the server no longer knows it: a cluster's answer to the retry of a
// delete that had already applied.
func (c *ops) BulkDelete(ctx context.Context, keys ...string) (int, error) {
	resp, err := c.do(ctx, core.Request{Op: core.OpBulkDelete, Keys: keys})
	if err == nil && resp.Deleted != nil && *resp.Deleted > uint64(len(keys)) {
		// Not a count: as an int it could read as -1, "unknown", or
		// below (found by review). The delete applied; its count is lost.
		err = fmt.Errorf("%w: bulk_delete of %d keys answered %d deleted", ErrProtocol, len(keys), *resp.Deleted)
	}
	if err != nil {
		return 0, fmt.Errorf("dkv: bulk_delete of %d keys: %w", len(keys), err)
	}
	if resp.Deleted == nil {
		return -1, nil
	}
	return int(*resp.Deleted), nil
}

// Ping checks that the server answers.
func (c *ops) Ping(ctx context.Context) error {
	_, err := c.do(ctx, core.Request{Op: core.OpPing})
	if err != nil {
		return fmt.Errorf("dkv: ping: %w", err)
	}
	return nil
}

// Status returns the server's description of itself.
func (c *ops) Status(ctx context.Context) (*core.Status, error) {
	resp, err := c.do(ctx, core.Request{Op: core.OpStatus})
	if err == nil && resp.Status == nil {
		err = fmt.Errorf("%w: status response has no status", ErrProtocol)
	}
	if err != nil {
		return nil, fmt.Errorf("dkv: status: %w", err)
	}
	return resp.Status, nil
}

// Search returns the keys whose values match query, best first (BM25
// scores): every word must match unless AnyWord is given, and "quoted
// phrases" must match word for word. A server started without
// --enable-indexes answers an error matching ErrIndexesDisabled.
func (c *ops) Search(ctx context.Context, query string, opts ...SearchOption) ([]Hit, error) {
	req := core.Request{Op: core.OpSearch, Query: query}
	for _, o := range opts {
		o(&req)
	}
	hits, err := c.search(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("dkv: search %q: %w", query, err)
	}
	return hits, nil
}

// SearchSimilar returns the topK keys whose values' embeddings are most
// similar (cosine) to query's, a word or a few, best first.
func (c *ops) SearchSimilar(ctx context.Context, query string, topK int) ([]Hit, error) {
	if topK < 1 {
		return nil, fmt.Errorf("dkv: search_similar %q: top_k must be at least 1, not %d", query, topK)
	}
	hits, err := c.search(ctx, core.Request{Op: core.OpSearchSimilar, Query: query, TopK: uint64(topK)})
	if err != nil {
		return nil, fmt.Errorf("dkv: search_similar %q: %w", query, err)
	}
	return hits, nil
}

func (c *ops) search(ctx context.Context, req core.Request) ([]Hit, error) {
	resp, err := c.do(ctx, req)
	if err == nil && resp.Hits == nil {
		err = fmt.Errorf("%w: search response has no hits", ErrProtocol)
	}
	if err != nil {
		return nil, err
	}
	return resp.Hits, nil
}

// Hit is one search result.
type Hit = core.Hit

// A SearchOption changes how Search matches.
type SearchOption func(*core.Request)

// AnyWord makes Search match values holding any of the query's words, not
// all of them.
func AnyWord() SearchOption { return func(r *core.Request) { r.Mode = core.SearchModeAny } }

// Limit caps the hits Search returns (the server's default is 10).
func Limit(n int) SearchOption {
	return func(r *core.Request) {
		if n > 0 {
			r.Limit = uint64(n)
		}
	}
}

// Do sends req as is, except for its id, which the client replaces with its
// own to match the response, and the fields the client keeps itself: a
// KVClient's after (its stamp, on a write whose after is empty), a
// ClusterKVClient's client_id, seq and acked (its session's, on a write;
// none on a read). It returns the response whenever one arrived;
// if that response is a failure, the error is its *ServerError as well.
// Only get, bulk_get, ttl, ping, status, scan and the searches count as
// reads for retrying; any other op is treated as a write: a KVClient never
// repeats it once sent, and a ClusterKVClient repeats it only as the same
// write of its session.
func (c *ops) Do(ctx context.Context, req *core.Request) (*core.Response, error) {
	resp, err := c.do(ctx, *req)
	if err != nil {
		return resp, fmt.Errorf("dkv: %s: %w", req.Op, err)
	}
	return resp, nil
}

// Close closes the connection. Calls outstanding fail with ErrClosed (sent
// writes with ErrUnknownOutcome too), and so do all later calls.
func (c *KVClient) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	cn := c.cur
	c.cur = nil
	c.mu.Unlock()
	c.closeAll()
	if cn != nil {
		cn.fail(ErrClosed)
	}
	return nil
}

func isRead(op string) bool {
	switch op {
	case core.OpGet, core.OpBulkGet, core.OpPing, core.OpStatus, core.OpSearch, core.OpSearchSimilar, core.OpScan, core.OpTTL:
		return true
	}
	return false
}

// takesStamp reports whether op is a write that a mesh takes, and so
// carries the client's stamp as after (docs/PROTOCOL.md). Not expire,
// persist or incr: a mesh refuses them, and a server refuses a field that
// an op does not use, so a client that had met a mesh would have them
// refused for their after rather than answered not_implemented. An op the
// client does not know (through Do) carries it, as any write.
func takesStamp(op string) bool {
	switch op {
	case core.OpExpire, core.OpPersist, core.OpIncr:
		return false
	}
	return !isRead(op)
}

// attemptsMax bounds the tries of one call: a read whose connection broke,
// or any request that provably never left, gets one more on a new connection.
const attemptsMax = 2

func (c *KVClient) do(ctx context.Context, req core.Request) (*core.Response, error) {
	began := time.Now()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.requestTimeout)
		defer cancel()
	}
	read := isRead(req.Op)
	if takesStamp(req.Op) && req.After == "" {
		req.After = c.Stamp()
	}
	for attempt := 1; ; attempt++ {
		resp, sent, err := c.send(ctx, &req, began)
		if err == nil && resp.Stamp != "" {
			if st, perr := mesh.ParseStamp(resp.Stamp); perr == nil {
				c.observe(st)
			}
		}
		if err == nil {
			if !resp.OK {
				se := serverError(resp)
				if se.Code == core.CodeInternal && !read {
					// A bug in the server, which may have struck after
					// the write applied (docs/PROTOCOL.md): unknown, as
					// a ClusterKVClient reports it (found by review).
					return resp, fmt.Errorf("%w: %w", ErrUnknownOutcome, se)
				}
				return resp, se
			}
			return resp, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			if sent && !read {
				return nil, fmt.Errorf("%w (%w)", err, ErrUnknownOutcome)
			}
			return nil, err
		}
		var lost *connError
		if errors.As(err, &lost) && (read || !sent) && attempt < attemptsMax {
			continue
		}
		// An answer over the response limit was skipped unread: whether
		// it said applied or refused is unknown (found by review).
		if sent && !read && (lost != nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrResponseTooLarge)) {
			return nil, fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		}
		return nil, err
	}
}

// send makes one attempt at req, on the current connection or a new one,
// for an operation that began at began. A response is returned whatever it
// says. sent reports whether the request may have reached the server; when
// it is false, the server surely never saw it.
func (c *KVClient) send(ctx context.Context, req *core.Request, began time.Time) (resp *core.Response, sent bool, err error) {
	cl, err := c.newCall(req)
	if err != nil {
		return nil, false, err
	}
	cl.began = began
	cn, err := c.conn(ctx)
	if err != nil {
		return nil, false, err
	}
	return cn.roundTrip(ctx, cl)
}

// newCall encodes req with a fresh id. Ids are unique for the client's
// life, across reconnects, so a stale echo can never look current.
func (c *KVClient) newCall(req *core.Request) (*call, error) {
	id := strconv.AppendUint(nil, c.nextID.Add(1), 10)
	req.ID = jsontext.Value(id)
	line, err := core.AppendRequest(nil, req)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	if n := len(line) - 1; n > c.opts.requestBytesMax {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrRequestTooLarge, n, c.opts.requestBytesMax)
	}
	return &call{id: id, line: line, wake: make(chan struct{}, 1)}, nil
}

// conn returns a healthy connection, dialing a new one if the last broke.
func (c *KVClient) conn(ctx context.Context) (*conn, error) {
	cn, ended, err := c.currentOrDials()
	if cn != nil || err != nil {
		return cn, err
	}
	// Close ends the wait, the dial, its handshake and its password, as
	// it ends the calls on a connection (found by review: a call busy
	// redialling outlived Close by up to the dial timeout).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.closing, cancel)()
	select {
	case c.dialing <- struct{}{}:
	case <-ctx.Done():
		if c.closing.Err() != nil {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("waiting to reconnect to %s: %w", c.addr, ctx.Err())
	}
	defer func() { <-c.dialing }()
	// Another caller may have redialled while we waited; if that dial
	// failed, its failure is this call's too: the same dial now would
	// spend the same retries to the same end.
	cn, now, err := c.currentOrDials()
	if cn != nil || err != nil {
		return cn, err
	}
	if now != ended {
		c.mu.Lock()
		err := c.dialErr
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	cn, err = c.connect(ctx)
	c.mu.Lock()
	c.dialsEnded++
	c.dialErr = nil
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
		// Not a dial cut short by this caller's own deadline: another
		// caller, with more time, may yet succeed.
		c.dialErr = err
	}
	c.mu.Unlock()
	return cn, err
}

// connect dials, and authenticates, a new connection and makes it the
// current one. The caller holds the dialing token.
func (c *KVClient) connect(ctx context.Context) (*conn, error) {
	nc, deadline, err := c.dial(ctx)
	if err != nil {
		if c.closing.Err() != nil {
			return nil, ErrClosed
		}
		return nil, err
	}
	cn := newConn(nc, c.addr, &c.opts)
	if err := c.authenticate(ctx, cn, deadline); err != nil {
		cn.fail(err)
		if c.closing.Err() != nil {
			return nil, ErrClosed
		}
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cn.fail(ErrClosed)
		return nil, ErrClosed
	}
	c.cur = cn
	return c.cur, nil
}

// authenticate sends the password (WithPassword), if any, on cn, a new
// connection nothing else uses yet, by deadline, the end of the attempt
// that opened it.
func (c *KVClient) authenticate(ctx context.Context, cn *conn, deadline time.Time) error {
	if c.opts.password == "" {
		return nil
	}
	cl, err := c.newCall(&core.Request{Op: core.OpAuth, Password: c.opts.password})
	if err != nil {
		return err
	}
	cl.began = time.Now()
	// The password's round trip is part of opening the connection, and is
	// bounded as the dial is: Dial's context has no deadline, and a server
	// that takes the connection but never answers (a stopped process)
	// held Dial and DialCluster for ever (found by review). It shares the
	// attempt's time with the dial and the handshake: each had a dial
	// timeout of its own, so one attempt took up to three (found by
	// review).
	actx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	resp, _, err := cn.roundTrip(actx, cl)
	switch {
	case err != nil && ctx.Err() == nil && actx.Err() != nil:
		return fmt.Errorf("sending the password to %s: no answer within the dial timeout of %v: %w", c.addr, c.opts.dialTimeout, err)
	case err != nil:
		return fmt.Errorf("sending the password to %s: %w", c.addr, err)
	case !resp.OK && resp.Error != nil && resp.Error.Code == core.CodeAuthFailed:
		return fmt.Errorf("%s refused the password: %w", c.addr, serverError(resp))
	case !resp.OK:
		// Not a verdict on the password: a TLS port that was spoken to
		// in plain text, say, refuses whatever comes first (it was
		// reported as a refused password; found by review).
		return fmt.Errorf("%s refused the connection's first request, its password: %w", c.addr, serverError(resp))
	}
	return nil
}

// currentOrDials returns the current connection if it is healthy, else
// how many dials have ended so far.
func (c *KVClient) currentOrDials() (*conn, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, 0, ErrClosed
	}
	if c.cur != nil && !c.cur.broken() {
		return c.cur, 0, nil
	}
	return nil, c.dialsEnded, nil
}

// Backoff between dial attempts: doubling from dialBackoffBase up to
// dialBackoffMax, with jitter so that many clients of a restarted server do
// not redial in lockstep.
const (
	dialBackoffBase = 50 * time.Millisecond
	dialBackoffMax  = 1 * time.Second
)

// dial opens a connection, TLS's handshake done, retrying; it returns the
// end of the attempt that opened it (its start plus the dial timeout), by
// which the password must be answered too.
func (c *KVClient) dial(ctx context.Context) (net.Conn, time.Time, error) {
	d := net.Dialer{KeepAlive: 15 * time.Second}
	backoff := dialBackoffBase
	var err error
	attempt := 0
	for ; attempt <= c.opts.dialRetriesMax; attempt++ {
		if attempt > 0 {
			wait := backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, dialBackoffMax)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, time.Time{}, fmt.Errorf("dial %s: %w (last error: %w)", c.addr, ctx.Err(), err)
			}
		}
		deadline := time.Now().Add(c.opts.dialTimeout)
		actx, cancel := context.WithDeadline(ctx, deadline)
		var nc net.Conn
		nc, err = d.DialContext(actx, "tcp", c.addr)
		if err == nil && c.opts.tls != nil {
			nc, err = c.handshake(actx, nc)
		}
		cancel()
		if errors.Is(err, ErrTLS) {
			return nil, time.Time{}, fmt.Errorf("dial %s: %w", c.addr, err)
		}
		if err == nil {
			return nc, deadline, nil
		}
		if ctx.Err() != nil {
			attempt++
			break
		}
	}
	return nil, time.Time{}, fmt.Errorf("dial %s: %s: %w", c.addr, attemptsFailed(attempt), err)
}

// attemptsFailed is "1 attempt failed" or "n attempts failed", for errors.
func attemptsFailed(n int) string {
	if n == 1 {
		return "1 attempt failed"
	}
	return fmt.Sprintf("%d attempts failed", n)
}

// handshake runs the client's side of a TLS handshake on nc (WithTLS),
// within ctx, the dial attempt's. A failure that retrying cannot mend wraps
// ErrTLS; any other (the connection broke) is a dial failure like others.
func (c *KVClient) handshake(ctx context.Context, nc net.Conn) (net.Conn, error) {
	cfg := c.opts.tls
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(c.addr); err == nil {
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
	}
	tc := tls.Client(nc, cfg)
	err := tc.HandshakeContext(ctx)
	if err == nil {
		return tc, nil
	}
	nc.Close()
	var (
		verify *tls.CertificateVerificationError
		header tls.RecordHeaderError
		op     *net.OpError
	)
	switch {
	case errors.As(err, &header):
		return nil, fmt.Errorf("%w: %w (does the server speak TLS? It is started with --tls-cert for that)", ErrTLS, err)
	case errors.As(err, &verify), errors.As(err, &op) && op.Op == "remote error":
		// A certificate refused, on this side or the server's.
		return nil, fmt.Errorf("%w: %w", ErrTLS, err)
	}
	return nil, err
}

// refusedCertificate reports whether err is a TLS alert by which the
// server refused the client's certificate, or the handshake.
func refusedCertificate(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return false
	}
	msg := op.Err.Error()
	for _, word := range []string{"certificate", "unknown authority", "access denied", "handshake failure", "decrypt error"} {
		if strings.Contains(msg, word) {
			return true
		}
	}
	return false
}
