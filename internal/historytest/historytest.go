// Package historytest drives a real dkv server or cluster with random calls
// on a few keys and records each call for the checkers of package checks:
// the real-process history tests of cmd/node (a single node) and
// cmd/node/clustertest (a 3-node cluster) share it, so both judge their
// histories by the same rules.
package historytest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"dkv/checks"
	"dkv/client"
	"dkv/core"
)

// KV is what both clients offer: KVClient and ClusterKVClient.
type KV interface {
	Get(ctx context.Context, key string) (string, error)
	Set(ctx context.Context, key, value string) error
	Delete(ctx context.Context, key string) error
	BulkSet(ctx context.Context, items []client.KV) error
	Do(ctx context.Context, req *core.Request) (*core.Response, error)
}

// Recorder keeps the history of concurrent callers, on one time base.
type Recorder struct {
	origin time.Time
	mu     sync.Mutex
	h      checks.History
	// wrong are answers that contradict themselves, for Judge.
	wrong []string
}

// NewRecorder starts an empty history whose time starts now. The servers
// deadline keys by the machine's calendar clock, which runs with the
// history's (monotonic) one to well within expirySlop over a test.
func NewRecorder() *Recorder {
	return &Recorder{origin: time.Now(), h: checks.History{ExpirySlop: int64(expirySlop)}}
}

// expirySlop is how much earlier than its TTL after its call the checkers
// let a key expire: a deadline is in whole milliseconds, and the calendar
// clock may be slewed against the monotonic one.
const expirySlop = 2 * time.Millisecond

// ttl draws a ttl_ms for one write in three, of 20 to 300 ms: keys that
// expire while the test runs, before and after the server is killed.
func ttl(r *rand.Rand) uint64 {
	if r.IntN(3) != 0 {
		return 0
	}
	return uint64(20 + r.IntN(281))
}

// Now is the history's time.
func (r *Recorder) Now() int64 { return int64(time.Since(r.origin)) }

// Record adds a finished call.
func (r *Recorder) Record(op checks.Op) {
	r.mu.Lock()
	r.h.Add(op)
	r.mu.Unlock()
}

// Caller is one caller's way of making calls.
type Caller struct {
	KV      KV
	Keys    int
	Rand    *rand.Rand
	ID      int // the caller's number in the history
	Rec     *Recorder
	Patient time.Duration // a call's deadline, most of the time
	// Impatient is the longest of the short deadlines one call in twenty
	// gets: it gives up before the answer comes, often while it is in
	// flight — an unknown outcome, which may take effect later still.
	Impatient time.Duration
	// seen is the value this caller last saw of each key, which its
	// if_value writes compare with, as a compare-and-set loop does.
	seen checks.Seen
}

// Call makes the caller's req-th call: a get, set, conditional set or
// delete, delete or bulk_set of random keys, recorded with its outcome. A
// third of the sets carry a ttl_ms.
func (c *Caller) Call(req int) {
	r := c.Rand
	timeout := c.Patient
	if r.IntN(20) == 0 {
		timeout = time.Duration(100+r.IntN(int(c.Impatient/time.Microsecond))) * time.Microsecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	key := func() string { return fmt.Sprint("k", r.IntN(c.Keys)) }
	value := fmt.Sprintf("c%d.%d", c.ID, req)
	op := checks.Op{Client: c.ID, Req: req}
	var err error
	switch p := r.IntN(100); {
	case p < 35:
		op.Kind, op.Key = checks.KindGet, key()
		op.Call = c.Rec.Now()
		op.Value, err = c.KV.Get(ctx, op.Key)
		op.Return = c.Rec.Now()
		switch {
		case err == nil:
			op.Outcome, op.Found = checks.OK, true
		case errors.Is(err, client.ErrNotFound):
			op.Outcome, op.Value = checks.OK, ""
		default:
			return // a read that failed observed nothing
		}
		c.saw(op)
		c.Rec.Record(op)
		return
	case p < 60:
		op.Kind, op.Key, op.Value = checks.KindSet, key(), value
		if r.IntN(2) == 0 {
			// A counter, for the incrs to add to, as unique as the
			// other values.
			op.Value = strconv.Itoa((c.ID+1)*1_000_000 + req)
		}
		if ms := ttl(r); ms != 0 {
			op.TTL = int64(ms) * int64(time.Millisecond)
			op.Call = c.Rec.Now()
			_, err = c.KV.Do(ctx, &core.Request{Op: core.OpSet, Key: op.Key, Value: &op.Value, TTLMs: ms})
			break
		}
		op.Call = c.Rec.Now()
		err = c.KV.Set(ctx, op.Key, op.Value)
	case p < 70:
		c.conditional(ctx, op, key(), value)
		return
	case p < 75:
		op.Kind, op.Key = checks.KindDelete, key()
		op.Call = c.Rec.Now()
		err = c.KV.Delete(ctx, op.Key)
	case p < 80:
		c.expire(ctx, op, key())
		return
	case p < 86:
		c.incr(ctx, op, key())
		return
	default:
		op.Kind = checks.KindBulkSet
		for i := range 2 + r.IntN(3) {
			op.Items = append(op.Items, client.KV{Key: key(), Value: fmt.Sprintf("%s.%d", value, i)})
		}
		op.Call = c.Rec.Now()
		err = c.KV.BulkSet(ctx, op.Items)
	}
	op.Return = c.Rec.Now()
	c.record(op, err)
}

// expire gives a key a deadline of 20 to 300 ms, or (one in three) takes
// it away: an expire or a persist. One answered not_found is recorded as
// the read it amounts to, of whether the key exists.
func (c *Caller) expire(ctx context.Context, op checks.Op, key string) {
	op.Kind, op.Key = checks.KindExpire, key
	req := core.Request{Op: core.OpPersist, Key: key}
	if c.Rand.IntN(3) != 0 {
		req = core.Request{Op: core.OpExpire, Key: key, TTLMs: uint64(20 + c.Rand.IntN(281))}
		op.TTL = int64(req.TTLMs) * int64(time.Millisecond)
	}
	op.Call = c.Rec.Now()
	_, err := c.KV.Do(ctx, &req)
	op.Return = c.Rec.Now()
	if errors.Is(err, client.ErrNotFound) && !errors.Is(err, client.ErrUnknownOutcome) {
		op.Kind, op.Presence, op.TTL, op.Outcome = checks.KindGet, true, 0, checks.OK
		c.Rec.Record(op)
		return
	}
	c.record(op, err)
}

// incr adds -3..5 to a key's counter. A refusal (not a counter, an
// overflow) is an answer: the op took its turn and wrote nothing.
func (c *Caller) incr(ctx context.Context, op checks.Op, key string) {
	op.Kind, op.Key, op.Delta = checks.KindIncr, key, int64(c.Rand.IntN(9)-3)
	req := core.Request{Op: core.OpIncr, Key: key, Delta: &op.Delta}
	op.Call = c.Rec.Now()
	resp, err := c.KV.Do(ctx, &req)
	op.Return = c.Rec.Now()
	switch {
	case err == nil && resp.Value != nil:
		op.Value = *resp.Value
	case err != nil && !errors.Is(err, client.ErrUnknownOutcome) && resp != nil && resp.Error != nil &&
		(resp.Error.Code == core.CodeNotInteger || resp.Error.Code == core.CodeOverflow):
		op.Refusal, op.Outcome, op.Note = resp.Error.Code, checks.OK, resp.Error.Code
		c.Rec.Record(op)
		return
	}
	c.record(op, err)
}

// record records a write's outcome from its error.
func (c *Caller) record(op checks.Op, err error) {
	switch {
	case err == nil:
		op.Outcome = checks.OK
		c.saw(op)
	case errors.Is(err, client.ErrUnknownOutcome):
		op.Outcome, op.Note = checks.Unknown, err.Error()
	default:
		// The client promises that any other error means the write was
		// not applied; the checkers hold it to that.
		op.Outcome, op.Note = checks.Failed, err.Error()
	}
	c.Rec.Record(op)
}

// conditional makes a conditional write: if_absent, if_exists or if_value
// of the value this caller saw last, a set or (with if_value) a delete. A
// refusal is recorded as the get it amounts to, of the value it reported,
// which must be one the condition does not hold for.
func (c *Caller) conditional(ctx context.Context, op checks.Op, key, value string) {
	op.Key = key
	req := core.Request{Op: core.OpSet, Key: key, Value: &value}
	old, ok := c.seen[key]
	if !ok {
		old = "never-written"
	}
	switch c.Rand.IntN(4) {
	case 0:
		req.IfAbsent = true
	case 1:
		req.IfExists = true
	case 2:
		req.IfValue = &old
	case 3:
		req = core.Request{Op: core.OpDelete, Key: key, IfValue: &old}
	}
	op.Kind, op.Cond = checks.KindDelete, req.Condition()
	if req.Op == core.OpSet {
		op.Kind, op.Value = checks.KindSet, value
		req.TTLMs = ttl(c.Rand) // with if_absent, a lease
		op.TTL = int64(req.TTLMs) * int64(time.Millisecond)
	}
	op.Call = c.Rec.Now()
	resp, err := c.KV.Do(ctx, &req)
	op.Return = c.Rec.Now()
	if !errors.Is(err, client.ErrConditionFailed) || errors.Is(err, client.ErrUnknownOutcome) {
		c.record(op, err)
		return
	}
	if resp != nil && resp.Error != nil && resp.Error.Code == core.CodeConditionRefusedEarlier {
		// A retry of a write the cluster refused when it first applied,
		// its answer lost: nothing was written, and the value it was
		// refused on is not known (it matches ErrConditionFailed too,
		// and was taken for a refusal reporting the key absent: a CI
		// run's leader kill made one).
		op.Outcome, op.Note = checks.Failed, resp.Error.Code
		c.Rec.Record(op)
		return
	}
	cur, found := "", resp != nil && resp.Value != nil
	if found {
		cur = *resp.Value
	}
	if op.Cond.Holds(cur, found) {
		c.Rec.mu.Lock()
		c.Rec.wrong = append(c.Rec.wrong, fmt.Sprintf("%s %s (%s) refused with condition_failed, but the value it reports (%q, found %v) meets the condition", req.Op, key, op.Cond, cur, found))
		c.Rec.mu.Unlock()
		return
	}
	op.Kind, op.Cond, op.Outcome, op.Found, op.Value, op.Note = checks.KindGet, core.Condition{}, checks.OK, found, cur, "condition_failed"
	c.saw(op)
	c.Rec.Record(op)
}

// saw notes what an acknowledged op says of its key's value.
func (c *Caller) saw(op checks.Op) {
	if c.seen == nil {
		c.seen = checks.Seen{}
	}
	c.seen.Note(&op)
}

// FinalReads reads every key once more, as caller id, after the last
// crash: durability is judged on these reads.
func FinalReads(t testing.TB, kv KV, id, keys int, timeout time.Duration, rec *Recorder) {
	t.Helper()
	for k := range keys {
		FinalRead(t, kv, id, k, fmt.Sprint("k", k), timeout, rec)
	}
}

// FinalRead reads key once more, as request req of caller id, after the
// last crash, and records it as a final read; a read that fails fails
// the test, for durability could not be judged without it.
func FinalRead(t testing.TB, kv KV, id, req int, key string, timeout time.Duration, rec *Recorder) {
	t.Helper()
	op := checks.Op{Client: id, Req: req, Kind: checks.KindGet, Key: key, Final: true, Call: rec.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	v, err := kv.Get(ctx, key)
	cancel()
	op.Return = rec.Now()
	switch {
	case err == nil:
		op.Outcome, op.Found, op.Value = checks.OK, true, v
	case errors.Is(err, client.ErrNotFound):
		op.Outcome = checks.OK
	default:
		t.Fatalf("final read of %s: %v", key, err)
	}
	rec.Record(op)
}

// Judge checks the history: it must hold at least okMin acknowledged calls
// and some of unknown outcome (or it tested little), be linearizable per
// key, keep every acknowledged write and show no bulk_set in part.
func Judge(t testing.TB, rec *Recorder, okMin int) {
	t.Helper()
	h := &rec.h
	ok, failed, unknown := h.Count()
	t.Logf("%d ops: %d ok, %d failed, %d unknown outcome", len(h.Ops), ok, failed, unknown)
	if ok < okMin || unknown == 0 {
		t.Fatalf("%d ok and %d unknown: the test needs many of the first and some of the second", ok, unknown)
	}
	lin, findings := checks.Verdict(h, checks.LinOptions{Timeout: time.Minute, ReportDir: t.TempDir()})
	t.Logf("linearizability: %d partitions, %d ops checked in %v", lin.Partitions, lin.Checked, lin.Elapsed.Round(time.Millisecond))
	for _, f := range findings {
		t.Error(f)
	}
	for _, w := range rec.wrong {
		t.Error(w)
	}
}
