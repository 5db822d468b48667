package core

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// SingleConfig tunes a single node. DefaultSingleConfig gives sane values.
type SingleConfig struct {
	Limits Limits
	// SegmentBytesMax is the size past which the log starts a new segment.
	SegmentBytesMax int64
	// SnapshotLogBytesMin is how much log must accumulate since the last
	// snapshot before the next one starts. The node also waits until the log
	// is at least as large as the last snapshot, so that the cost of
	// snapshotting stays proportional to the cost of writing.
	SnapshotLogBytesMin int64
	// BatchBytesMax bounds the records a turn buffers in memory before
	// writing them out (still synced once, at the end of the turn).
	BatchBytesMax int
	// Mutation plants a bug, for the simulator's tests only (package sim,
	// cmd/sim --mutations); cmd/node never sets it.
	Mutation Mutation
	// Indexes, when set, serve the search ops; they are rebuilt from the
	// store at recovery and kept in step with it (see Indexes), paced by
	// IndexBuild (see AttachedIndexes).
	Indexes    Indexes
	IndexBuild IndexBuildConfig
}

// DefaultSingleConfig is the configuration cmd/node uses unless told otherwise.
func DefaultSingleConfig() SingleConfig {
	return SingleConfig{
		Limits:              DefaultLimits(),
		SegmentBytesMax:     64 << 20,
		SnapshotLogBytesMin: 64 << 20,
		BatchBytesMax:       4 << 20,
	}
}

// SingleNode is the single-node store: a Store behind a write-ahead log with
// group commit (GroupCommit), and snapshots written in the background of the
// loop (Snapshotter).
//
// Writes are applied to the store as they arrive, so that later requests see
// them, and their records gather in the open batch. At the end of a turn the
// batch is committed; its replies leave when it is durable. If writing it
// fails, its writes are taken back out of the store (undos) and its requests
// fail.
type SingleNode struct {
	cfg   SingleConfig
	env   Env
	store *Store
	log   *Log
	gc    *GroupCommit
	snaps *Snapshotter

	// turns ends each turn: the batch commit, the replies that wait for
	// it, and log rolls and snapshots between batches.
	turns *LocalLog[pendingReply]
	// pacer builds the indexes' graph in spare time (nil without them).
	pacer *IndexPacer
	// indexes joins cfg.Indexes to the store (nil without indexes).
	indexes *AttachedIndexes

	// The open batch: undos take its writes back out of the store if
	// writing its records fails.
	undos       []undo
	batchWrites bool
	// batchViews are the consistent scans' views the open batch opened:
	// a failed batch drops them.
	batchViews []uint64
	// views are the consistent scans' pinned copies of the store.
	views *Views
	// sink keeps touchValues' loads.
	sink byte
	// wall reads the calendar time deadlines are in (nil: the Env's
	// clock has none, and sets with ttl_ms are refused). expiryTimer
	// wakes the node at the next deadline, by the node's clock at
	// expiryDue.
	wall        WallClock
	expiryTimer Timer
	expiryDue   int64
	// expiryRetryAt: no expiry before this time of the node's clock, a
	// failed write's backoff.
	expiryRetryAt int64
}

type pendingReply struct {
	reply      ReplyFunc
	resp       Response
	write      bool // a logged write
	afterWrite bool // a read that may have seen a write of its batch
}

// NewSingleNode returns a node that Start will recover from disk.
func NewSingleNode(cfg SingleConfig) *SingleNode {
	assert(cfg.SegmentBytesMax > 0 && cfg.SnapshotLogBytesMin > 0 && cfg.BatchBytesMax > 0, "SingleConfig sizes must be positive")
	return &SingleNode{cfg: cfg, views: newViewsWith(cfg.Mutation)}
}

// Start recovers the store: the newest snapshot, then the log after it.
func (n *SingleNode) Start(env Env) error {
	n.env = env
	if err := refuseReplicatedDir(env.Disk); err != nil {
		return err
	}
	rec, err := recoverSnapshot(env.Disk, n.cfg.Mutation)
	if err != nil {
		return err
	}
	n.store = rec.Store
	n.store.mutation = n.cfg.Mutation
	decode := func(r Record) error {
		_, _, err := decodeCommandWith(r, n.cfg.Mutation)
		return err
	}
	w, err := openLog(env.Disk, rec.Names, rec.Index, decode, func(r Record) error {
		items, ats, err := decodeCommandWith(r, n.cfg.Mutation)
		if err != nil {
			return err
		}
		applyRecord(n.store, r.Type, items, ats, nil)
		return nil
	}, env.logf, n.cfg.Mutation)
	if err != nil {
		return err
	}
	// Removals and renames of the last run, and the cleanup above, may be
	// in the page cache only; recovery has read past them.
	if err := env.Disk.SyncDir(); err != nil {
		return fmt.Errorf("syncing the data directory: %w", err)
	}
	n.log = w
	n.gc = NewGroupCommit(w, n.cfg.BatchBytesMax)
	n.gc.mutation = n.cfg.Mutation
	n.snaps = NewSnapshotter(&n.env, w, n.cfg.SnapshotLogBytesMin, rec.Index, rec.Bytes)
	n.snaps.mutation = n.cfg.Mutation
	n.turns = NewLocalLog(w, n.gc, n.snaps, n.cfg.SegmentBytesMax, env.logf, LocalLogHooks[pendingReply]{
		Release:  n.sendReplies,
		Undo:     n.undoBatch,
		Snapshot: n.snapshotState,
		Begin:    n.beginBatch,
	})
	n.indexes = AttachIndexes(n.store, n.cfg.Indexes, env.Clock, n.cfg.IndexBuild, env.logf, n.cfg.Mutation)
	n.pacer = NewIndexPacer(env.Clock, n.cfg.Indexes, func() bool { return !n.indexes.Built() })
	n.wall, _ = env.Clock.(WallClock)
	n.armExpiry() // keys whose deadline passed while the node was down go at once
	env.logf("recovered %d keys: snapshot at index %d, log through index %d", n.store.Len(), rec.Index, w.nextIndex-1)
	return nil
}

func (n *SingleNode) beginBatch() {
	n.batchWrites = false
	n.undos = n.undos[:0]
	n.batchViews = n.batchViews[:0]
}

// StoreAscend is the walk of a store that a scan reads.
func StoreAscend(s *Store) func(from string, f func(key, value string) bool) { return s.Ascend }

// HandleRequest serves one request. Every reply waits for its batch: a
// write's until its record is synced, and a read's too, since it may have
// seen a write that is not durable yet.
func (n *SingleNode) HandleRequest(req *Request, reply ReplyFunc) {
	if err := n.turns.Stopped(); err != nil {
		reply(ErrorResponse(CodeUnavailable, "node stopped: %v", err))
		return
	}
	if bad := n.cfg.Limits.Validate(req); bad != nil {
		n.queue(reply, *bad, false)
		return
	}
	switch req.Op {
	case OpGet:
		value, ok := n.store.Get(req.Key)
		if !ok {
			n.queue(reply, NotFoundResponse(req.Key), false)
			return
		}
		if n.cfg.Mutation == MutReadBeforeDurable {
			reply(Response{OK: true, Value: &value})
			return
		}
		n.queue(reply, Response{OK: true, Value: &value}, false)
	case OpSet:
		if n.conditionFails(req, reply) {
			return
		}
		if req.TTLMs != 0 {
			at, bad := n.deadline(req)
			if bad != nil {
				n.queue(reply, *bad, false)
				return
			}
			n.writeExpiring(reply, req, at)
			return
		}
		n.write(reply, req, recordSet, []KV{{Key: req.Key, Value: *req.Value}}, nil)
	case OpTTL:
		if _, ok := n.store.Get(req.Key); !ok {
			n.queue(reply, NotFoundResponse(req.Key), false)
			return
		}
		n.queue(reply, TTLResponse(n.store, req.Key, n.wallMs()), false)
	case OpExpire, OpPersist:
		n.expireKey(req, reply)
	case OpIncr:
		n.incr(req, reply)
	case OpDelete:
		if n.conditionFails(req, reply) {
			return
		}
		if _, ok := n.store.Get(req.Key); !ok {
			n.queue(reply, OKResponse(), false) // nothing to log: deleting is idempotent
			return
		}
		n.write(reply, req, recordDelete, []KV{{Key: req.Key}}, nil)
	case OpBulkSet:
		n.write(reply, req, recordBulkSet, req.Items, nil)
	case OpBulkGet:
		n.queue(reply, BulkGetResponse(req.Keys, n.store.Get, n.cfg.Limits.BulkGetBytesMax(req.Presence)), false)
	case OpScan:
		resp, opened := n.views.Scan(req, n.store, StoreAscend, n.cfg.Limits.RequestBytesMax, n.env.Clock.Now(), n.wallMs(), n.env.Rand)
		if opened != 0 && n.batchWrites {
			// It holds the batch's writes: if they fail, it goes too.
			n.batchViews = append(n.batchViews, opened)
		}
		n.queue(reply, resp, false)
	case OpBulkDelete:
		// Only the keys that exist are logged; none at all: nothing to log.
		var items []KV
		for _, k := range DistinctKeys(req.Keys) {
			if _, ok := n.store.Get(k); ok {
				items = append(items, KV{Key: k})
			}
		}
		if len(items) == 0 {
			n.queue(reply, DeletedResponse(0), false)
			return
		}
		n.write(reply, req, recordBulkDelete, items, nil)
	case OpPing:
		n.queue(reply, OKResponse(), false)
	case OpStatus:
		st := n.status()
		n.queue(reply, Response{OK: true, Status: &st}, false)
	case OpSearch, OpSearchSimilar:
		// Like a read, it may see the open batch's writes, so it waits
		// for the batch.
		// Like a read, the answer waits for the batch that is open when it
		// comes: it may show this turn's writes.
		n.indexes.AnswerOfBatch(req, n.batchWrites, func(resp Response) { n.queue(reply, resp, false) })
	default:
		n.queue(reply, ErrorResponse(CodeNotImplemented, "op %q is not served by a single node", req.Op), false)
	}
}

// conditionFails answers a conditional write whose condition does not hold
// in the store as it is now, the open batch's writes included (they come
// before this one in the log), and reports whether it did. The answer
// waits for the batch like a read's: the value it reports may be one of
// the batch's writes.
func (n *SingleNode) conditionFails(req *Request, reply ReplyFunc) bool {
	cond := req.Condition()
	if cond.Kind == CondNone {
		return false
	}
	value, found := n.store.Get(req.Key)
	if cond.Holds(value, found) {
		return false
	}
	resp := ConditionFailedResponse(req.Key, cond, value, found)
	if n.cfg.Mutation == MutCondFailureBeforeDurable {
		reply(resp)
		return true
	}
	n.queue(reply, resp, false)
	return true
}

// expireKey serves an expire or a persist: the key's new deadline, or
// none, logged as a write of its own. A key that does not exist is an
// answer, not a write; like a failed condition's, it waits for the batch,
// whose writes may be what it saw.
func (n *SingleNode) expireKey(req *Request, reply ReplyFunc) {
	if _, ok := n.store.Get(req.Key); !ok {
		n.queue(reply, NotFoundResponse(req.Key), false)
		return
	}
	var at int64
	if req.Op == OpExpire {
		var bad *Response
		if at, bad = n.deadline(req); bad != nil {
			n.queue(reply, *bad, false)
			return
		}
	}
	n.write(reply, req, recordDeadline, []KV{{Key: req.Key}}, []int64{at})
	if at != 0 {
		n.armExpiry()
	}
}

// deadline is the calendar time at which a set's or an expire's key
// expires, ttl_ms from now, or the answer that refuses it. A deadline is
// after the epoch (the deadlines' order is their bytes'): a calendar clock
// that reads before 1970 (or past 2262, where Go's nanoseconds wrap) gives
// none, where it failed an assertion and took the node down.
func (n *SingleNode) deadline(req *Request) (int64, *Response) {
	if n.wall == nil {
		r := ErrorResponse(CodeNotImplemented, "ttl_ms: this node has no calendar clock to expire keys by")
		return 0, &r
	}
	now := n.wallMs()
	if now < 0 {
		r := ErrorResponse(CodeUnavailable, "ttl_ms: this node's calendar clock reads %d ms from the Unix epoch, before it: set the clock", now)
		return 0, &r
	}
	return now + int64(req.TTLMs), nil
}

// incr serves an incr, logged as the set of the value it makes: replay
// then needs no arithmetic, and the record is one every build reads. The
// key's deadline, if it has one, is logged with it and kept, as Redis
// keeps it. A refusal (not a counter, an overflow) is an answer, not a
// write: like a failed condition's, it waits for the batch.
func (n *SingleNode) incr(req *Request, reply ReplyFunc) {
	old, found := n.store.Get(req.Key)
	sum, code := Increment(old, found, req.IncrDelta())
	resp := IncrResponse(req.Key, sum, code)
	if code != "" {
		n.queue(reply, resp, false)
		return
	}
	item := []KV{{Key: req.Key, Value: *resp.Value}}
	if at, ok := n.store.Deadline(req.Key); ok && n.cfg.Mutation != MutIncrDropsDeadline {
		n.write(reply, req, recordSetExpiring, item, []int64{at})
	} else {
		n.write(reply, req, recordSet, item, nil)
	}
}

func (n *SingleNode) queue(reply ReplyFunc, resp Response, write bool) {
	n.turns.Queue(pendingReply{reply: reply, resp: resp, write: write, afterWrite: n.batchWrites && !write})
}

// writeExpiring is the write of a set whose key expires at the calendar
// time at (milliseconds since the Unix epoch).
func (n *SingleNode) writeExpiring(reply ReplyFunc, req *Request, at int64) {
	n.write(reply, req, recordSetExpiring, []KV{{Key: req.Key, Value: *req.Value}}, []int64{at})
	n.armExpiry()
}

// write logs and applies the writes of req (nil: the node's own, an
// expiry), with their deadlines ats (see applyRecord).
func (n *SingleNode) write(reply ReplyFunc, req *Request, typ byte, items []KV, ats []int64) {
	if req != nil && (typ == recordSet || typ == recordSetExpiring || typ == recordBulkSet) {
		if full := n.indexes.Full(n.cfg.Limits); full != nil {
			n.queue(reply, *full, false)
			return
		}
		// The store as the open batch left it: its writes come first.
		held := n.store.DataBytes()
		if n.cfg.Limits.NearDataBound(held, UpperDataGrowth(items)) {
			if full := n.cfg.Limits.StoreFull(held, n.store.DataGrowth(items)); full != nil {
				n.queue(reply, *full, false)
				return
			}
		}
	}
	var payload []byte
	switch typ {
	case recordSet:
		payload = encodeSet(nil, items[0].Key, items[0].Value)
	case recordSetExpiring:
		payload = encodeSetExpiring(nil, items[0].Key, items[0].Value, ats[0])
	case recordExpire:
		payload = encodeExpire(nil, items, ats)
	case recordDelete:
		payload = encodeDelete(nil, items[0].Key)
	case recordDeadline:
		payload = encodeKeyDeadline(nil, items[0].Key, ats[0])
	case recordBulkDelete:
		payload = encodeBulkDelete(nil, items)
	case recordBulkSet:
		if n.cfg.Mutation == MutBulkSetRecordPerItem {
			last := len(items) - 1
			for _, kv := range items[:last] {
				n.gc.Add(recordSet, encodeSet(nil, kv.Key, kv.Value))
			}
			typ, payload = recordSet, encodeSet(nil, items[last].Key, items[last].Value)
			break
		}
		payload = encodeBulkSetWith(nil, items, n.cfg.Mutation)
	}
	if recordHeaderBytes+len(payload) > recordBytesMax {
		assert(req != nil, "an expiry is bounded below the record limit")
		n.queue(reply, ErrorResponse(CodeTooLarge, "write is %d bytes encoded; the log's record limit is %d", len(payload), recordBytesMax), false)
		return
	}
	resp := OKResponse()
	if typ == recordDeadline && ats[0] == 0 && n.wall != nil {
		// A persist answers what the key had left (by a calendar
		// clock: without one, what it had left is not known).
		resp = TTLResponse(n.store, items[0].Key, n.wallMs())
	}
	n.gc.Add(typ, payload)
	var deleted uint64
	if idx := n.cfg.Indexes; idx != nil && req != nil {
		idx.Expect(req.Prepared)
		deleted = applyRecord(n.store, typ, items, ats, &n.undos)
		idx.Expect(nil)
	} else {
		deleted = applyRecord(n.store, typ, items, ats, &n.undos)
	}
	n.batchWrites = true
	if req == nil {
		return // an expiry: no one waits for it
	}
	switch {
	case typ == recordBulkDelete:
		assert(deleted == uint64(len(items)), "bulk_delete logs only keys that exist")
		resp = DeletedResponse(deleted)
	case req.Op == OpIncr:
		resp.Value = &items[0].Value // the new value is the answer
	}
	n.queue(reply, resp, true)
	if req.DebugSimulateFail {
		n.snaps.Force(true)
	}
}

// HandleMessage ignores peer messages: a single node has no peers.
func (n *SingleNode) HandleMessage(from NodeID, msg []byte) {}

// Flush ends the turn. Unless a batch is still syncing, it commits the open
// batch: one write and one fsync for all its records, then its replies. A
// failed write undoes the batch and fails its requests; a failed fsync stops
// the node, because the kernel may have dropped the pages.
func (n *SingleNode) Flush() error {
	if n.batchWrites {
		n.pacer.Wrote()
	}
	if n.views.Len() > 0 {
		n.views.Sweep(n.env.Clock.Now()) // no clock read on a turn without views
	}
	if err := n.turns.EndTurn(n.batchWrites); err != nil {
		return err
	}
	n.snaps.Step()
	return n.turns.Stopped()
}

func (n *SingleNode) sendReplies(replies []pendingReply) {
	if len(replies) > 1 {
		n.sink += touchValues(replies)
	}
	for _, p := range replies {
		p.reply(p.resp)
	}
}

// touchValues loads the first cache lines of the values that replies
// return, before any reply is encoded. The values lie anywhere in the heap,
// and encoding a reply is the first read of its value's bytes: encoding
// them in turn waited for one cache miss after another, where loads that do
// not depend on each other let the processor fetch all the lines at once.
// (At 16 pipelined GETs the reply's check of its value took 12% of the
// server's CPU, nearly all of it that wait.) The sum it returns is kept
// (SingleNode.sink) so that the compiler keeps the loads.
func touchValues(replies []pendingReply) byte {
	const lineBytes = 64
	var x byte
	for i := range replies {
		v := replies[i].resp.Value
		if v == nil || len(*v) == 0 {
			continue
		}
		s := (*v)[:min(len(*v), touchValueBytesMax)]
		for off := 0; off < len(s); off += lineBytes {
			x += s[off]
		}
		x += s[len(s)-1] // a value need not start at a line
	}
	return x
}

// touchValueBytesMax bounds the bytes of one value touchValues loads: past
// a few lines, reading a value in order is what the processor's own
// prefetching does well.
const touchValueBytesMax = 256

// undoBatch takes a batch whose write failed (and that GroupCommit cut
// back out of the log) out of the store, and fails its writes and the
// reads that may have seen them.
func (n *SingleNode) undoBatch(cause error, replies []pendingReply) []pendingReply {
	if n.cfg.Mutation != MutUndoSkipped {
		n.store.rollback(n.undos)
	}
	n.indexes.Undone() // a search that saw the batch and answers later fails too
	for _, id := range n.batchViews {
		n.views.Drop(id) // its clone holds the undone writes
	}
	code := CodeIOError
	if errors.Is(cause, ErrDiskFull) {
		code = CodeDiskFull
	}
	n.env.logf("write failed, batch undone: %v", cause)
	// An undone expiry's keys are back, with their deadlines, and due: on
	// a disk that refuses writes, retrying at once would write and undo
	// a batch every turn, and fail the reads that share it.
	n.expiryRetryAt = n.env.Clock.Now() + int64(expiryRecheck)
	n.armExpiry()
	for i := range replies {
		p := &replies[i]
		switch {
		case p.write:
			p.resp = ErrorResponse(code, "write not persisted and not applied: %v", cause)
		case p.afterWrite:
			p.resp = ErrorResponse(CodeUnavailable, "a write before this read failed to persist; retry")
		}
	}
	return replies
}

// snapshotState is the state a snapshot due before the open batch holds:
// the store already holds the batch's writes, and its undos give back the
// state just before them.
func (n *SingleNode) snapshotState() (*Store, uint64, SnapshotMeta) {
	state := n.store.Clone()
	if n.cfg.Mutation != MutSnapshotHasOpenBatch {
		state.rollback(n.undos)
	}
	index := n.gc.FirstIndex() - 1
	if n.cfg.Mutation == MutSnapshotIndexOffByOne {
		index++
	}
	return state, index, SnapshotMeta{}
}

func (n *SingleNode) status() Status {
	return Status{
		Mode:          "single",
		Keys:          n.store.Len(),
		LastIndex:     n.log.NextIndex() - 1,
		SnapshotIndex: n.snaps.Index(),
		WALSegments:   n.log.Segments(),
		WALBytes:      n.log.TotalBytes(),
		Snapshotting:  n.snaps.Writing(),
		ScanViews:     n.views.Len(),
		Expiring:      n.store.Expiring(),
		DataBytes:     n.store.DataBytes(),
		DataBytesMax:  n.cfg.Limits.DataBytesMax,
		IndexBytesMax: IndexBytesMax(n.indexes, n.cfg.Limits),
		Indexes:       n.indexes.Status(),
	}
}

// Metrics implements MetricsReporter.
func (n *SingleNode) Metrics() Metrics {
	return Metrics{Status: n.status(), Log: n.gc.Counters(), Snapshots: n.snaps.Counters()}
}

// Store exposes the state for tests and checkers. Callers must not modify it.
func (n *SingleNode) Store() *Store { return n.store }

// Close releases open files. The node must not be used afterwards.
func (n *SingleNode) Close() {
	if n.snaps != nil {
		n.snaps.Close()
	}
	if n.log != nil {
		n.log.Close()
	}
}

// Expiry. A key whose deadline passed is deleted by the node, as a write of
// its own (recordExpire) in the batch of the turn that finds it due: reads
// see the key until then, and not after, like any delete. The node wakes for
// the earliest deadline by a timer, which runs by its monotonic clock while
// deadlines are calendar time: it looks again at least every expiryRecheck,
// so that a calendar clock set forward is noticed.
const (
	expiryRecheck = time.Second
)

// wallMs is the calendar time in milliseconds since the Unix epoch.
func (n *SingleNode) wallMs() int64 {
	if n.wall == nil {
		return 0
	}
	return n.wall.Wall() / int64(time.Millisecond)
}

// armExpiry makes sure the node wakes for the earliest deadline.
func (n *SingleNode) armExpiry() {
	at, ok := n.store.NextDeadline()
	if !ok || n.wall == nil || n.cfg.Mutation == MutExpiryTimerLost {
		return
	}
	// Due once the clock's millisecond is past the deadline.
	wait := min(max(time.Duration(at+1-n.wallMs())*time.Millisecond, 0), expiryRecheck)
	wait = max(wait, time.Duration(n.expiryRetryAt-n.env.Clock.Now()))
	due := n.env.Clock.Now() + int64(wait)
	if n.expiryTimer != nil {
		if n.expiryDue <= due || n.cfg.Mutation == MutExpiryRearmSkipped {
			return // it wakes the node early enough
		}
		n.expiryTimer.Stop()
	}
	n.expiryTimer, n.expiryDue = n.env.Clock.AfterFunc(wait, n.expire), due
}

// expire deletes the keys whose deadline passed, up to expireKeysMax.
func (n *SingleNode) expire() {
	n.expiryTimer = nil
	if n.turns.Stopped() != nil {
		return
	}
	if n.env.Clock.Now() < n.expiryRetryAt {
		n.armExpiry() // after a failed write, not before expiryRecheck
		return
	}
	now := n.wallMs()
	if n.cfg.Mutation == MutExpireEarly {
		now += expireEarlyBy
	}
	items, ats := n.store.DueBatch(now)
	if len(items) > 0 {
		n.write(nil, nil, recordExpire, items, ats)
	}
	n.armExpiry()
}

// Replicated nodes' state files (election's raft-state, mesh's mesh-state),
// which no single node writes.
var replicatedStateFiles = []struct{ name, owner string }{
	{"raft-state", "a cluster node's"},
	{"mesh-state", "a mesh node's"},
}

// refuseReplicatedDir refuses a cluster or a mesh node's data directory.
// A log record tells the kinds apart, but a replicated node's log is
// empty until its first write: a single node started there took the
// directory, wrote its own records into it, and the replicated node could
// no longer start on it (found by review).
func refuseReplicatedDir(d Disk) error {
	names, err := d.List()
	if err != nil {
		return fmt.Errorf("listing the data directory: %w", err)
	}
	for _, f := range replicatedStateFiles {
		if slices.Contains(names, f.name) {
			return fmt.Errorf("%w: the data directory holds %s, so it is %s, not a single node's: start that node on it, or the single node on another directory", ErrForeignLog, f.name, f.owner)
		}
	}
	return nil
}

// IndexesCover reports whether the indexes hold key's value (whatever it
// holds): a rebuild in steps has walked past it (see AttachedIndexes).
// For the simulator's index checker.
func (n *SingleNode) IndexesCover(key string) bool { return n.indexes.Covers(key) }
