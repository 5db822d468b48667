package core

import (
	"errors"
	"fmt"
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

// snapshotRetryDelay spaces attempts after a failed snapshot, so a full disk
// is not hammered every turn.
const snapshotRetryDelay = time.Second

// SingleNode is the single-node store: a Store behind a write-ahead log with
// group commit, and snapshots written in the background of the loop.
//
// Writes are applied to the store as they arrive, so that later requests see
// them, and their records gather in the open batch. At the end of a turn the
// open batch is written with one write and synced with one fsync; its replies
// leave when the fsync is done. With an AsyncFile the fsync runs in the
// background and the next batch gathers meanwhile (pipelined group commit);
// at most one batch is in flight, so batches become durable in order.
type SingleNode struct {
	cfg   SingleConfig
	env   Env
	store *Store
	wal   *wal

	// The open batch. undos can take its writes back out of the store if
	// writing its records fails.
	batch         []byte
	lastInBatch   int // offset of the last record header in batch, or -1
	undos         []undo
	replies       []pendingReply
	batchStart    int64  // size of the last segment before the batch's first record
	batchIndex    uint64 // index of the batch's first record
	batchWrites   bool
	batchWriteErr error

	// The batch whose fsync is in flight, if any: its replies wait for it.
	syncing     bool
	syncReplies []pendingReply

	snap           *snapshotWriter
	snapIndex      uint64
	snapBytes      int64
	logSinceSnap   int64
	snapForce      bool
	snapSimFail    bool
	snapRetryAfter int64
	snapTimer      Timer
	reserveFailing bool // logged once, not every turn
	stopped        error
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
	return &SingleNode{cfg: cfg, lastInBatch: -1}
}

// Start recovers the store: the newest snapshot, then the log after it.
func (n *SingleNode) Start(env Env) error {
	n.env = env
	names, err := env.Disk.List()
	if err != nil {
		return fmt.Errorf("listing data directory: %w", err)
	}
	var snaps []string
	var keep []string
	for _, name := range names {
		if _, ok := parseIndexName(name, snapPrefix, snapTmpSuffix); ok {
			// A snapshot that never reached its rename: never relied upon.
			if err := env.Disk.Remove(name); err != nil {
				return fmt.Errorf("removing unfinished snapshot %s: %w", name, err)
			}
			continue
		}
		if _, ok := parseIndexName(name, snapPrefix, snapSuffix); ok {
			snaps = append(snaps, name)
		}
		keep = append(keep, name)
	}
	n.store = NewStore()
	if len(snaps) > 0 {
		newest := snaps[len(snaps)-1]
		var data []byte
		var store *Store
		var index uint64
		for range readAttempts { // a transient read error is not damage
			if data, err = env.Disk.ReadFile(newest); err != nil {
				err = fmt.Errorf("reading %s: %w", newest, err)
				continue
			}
			if store, index, err = loadSnapshot(newest, data); err == nil {
				break
			}
		}
		if err != nil {
			return err
		}
		if want, _ := parseIndexName(newest, snapPrefix, snapSuffix); want != index {
			return fmt.Errorf("%w: %s holds index %d", ErrCorrupt, newest, index)
		}
		n.store, n.snapIndex, n.snapBytes = store, index, int64(len(data))
		for _, old := range snaps[:len(snaps)-1] {
			if err := env.Disk.Remove(old); err != nil {
				return fmt.Errorf("removing old snapshot %s: %w", old, err)
			}
		}
	}
	w, err := openWAL(env.Disk, keep, n.snapIndex, func(rec Record) error {
		items, err := decodeCommand(rec)
		if err != nil {
			return err
		}
		applyRecord(n.store, rec.Type, items, nil)
		return nil
	}, env.logf)
	if err != nil {
		return err
	}
	// Removals and renames of the last run, and the cleanup above, may be
	// in the page cache only; recovery has read past them.
	if err := env.Disk.SyncDir(); err != nil {
		return fmt.Errorf("syncing the data directory: %w", err)
	}
	n.wal = w
	n.logSinceSnap = w.totalBytes()
	n.beginBatch()
	env.logf("recovered %d keys: snapshot at index %d, log through index %d", n.store.Len(), n.snapIndex, w.nextIndex-1)
	return nil
}

func (n *SingleNode) beginBatch() {
	n.batchStart = n.wal.size()
	n.batchIndex = n.wal.nextIndex
	n.batchWrites = false
	n.batchWriteErr = nil
	n.batch = n.batch[:0]
	n.lastInBatch = -1
	n.undos = n.undos[:0]
	n.replies = n.replies[:0]
}

// HandleRequest serves one request. Every reply waits for its batch: a
// write's until its record is synced, and a read's too, since it may have
// seen a write that is not durable yet.
func (n *SingleNode) HandleRequest(req *Request, reply ReplyFunc) {
	if n.stopped != nil {
		reply(ErrorResponse(CodeUnavailable, "node stopped: %v", n.stopped))
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
			n.queue(reply, ErrorResponse(CodeNotFound, "key %q not found", req.Key), false)
			return
		}
		n.queue(reply, Response{OK: true, Value: &value}, false)
	case OpSet:
		n.write(reply, req, recordSet, []KV{{Key: req.Key, Value: *req.Value}})
	case OpDelete:
		if _, ok := n.store.Get(req.Key); !ok {
			n.queue(reply, OKResponse(), false) // nothing to log: deleting is idempotent
			return
		}
		n.write(reply, req, recordDelete, []KV{{Key: req.Key}})
	case OpBulkSet:
		n.write(reply, req, recordBulkSet, req.Items)
	case OpPing:
		n.queue(reply, OKResponse(), false)
	case OpStatus:
		st := n.status()
		n.queue(reply, Response{OK: true, Status: &st}, false)
	default:
		n.queue(reply, ErrorResponse(CodeNotImplemented, "op %q is not served by a single node", req.Op), false)
	}
}

func (n *SingleNode) queue(reply ReplyFunc, resp Response, write bool) {
	n.replies = append(n.replies, pendingReply{reply: reply, resp: resp, write: write, afterWrite: n.batchWrites && !write})
}

func (n *SingleNode) write(reply ReplyFunc, req *Request, typ byte, items []KV) {
	var payload []byte
	switch typ {
	case recordSet:
		payload = encodeSet(nil, items[0].Key, items[0].Value)
	case recordDelete:
		payload = encodeDelete(nil, items[0].Key)
	case recordBulkSet:
		payload = encodeBulkSet(nil, items)
	}
	if recordHeaderBytes+len(payload) > recordBytesMax {
		n.queue(reply, ErrorResponse(CodeTooLarge, "write is %d bytes encoded; the log's record limit is %d", len(payload), recordBytesMax), false)
		return
	}
	index := n.wal.nextIndex
	n.lastInBatch = len(n.batch)
	n.batch = appendRecord(n.batch, typ, index, payload)
	n.wal.nextIndex++
	applyRecord(n.store, typ, items, &n.undos)
	n.batchWrites = true
	n.queue(reply, OKResponse(), true)
	if req.DebugSimulateFail {
		n.snapForce, n.snapSimFail = true, true
	}
	// A large batch is written out early to bound what it holds in memory,
	// but never while another batch's fsync is in flight: then two unsynced
	// batches would share the log's tail, and a crash that keeps pages out
	// of order could leave a complete later batch behind a damaged earlier
	// one, which recovery must call corruption.
	if len(n.batch) >= n.cfg.BatchBytesMax && !n.syncing {
		n.writeBatch()
	}
}

// writeBatch writes the buffered records out without syncing, which bounds
// the memory a large batch holds. A failure is remembered; commitBatch then
// undoes the whole batch.
func (n *SingleNode) writeBatch() {
	if len(n.batch) > 0 && n.batchWriteErr == nil {
		if err := n.wal.append(n.batch); err != nil {
			n.batchWriteErr = err
		}
		n.logSinceSnap += int64(len(n.batch))
	}
	n.batch = n.batch[:0]
	n.lastInBatch = -1
}

// HandleMessage ignores peer messages: a single node has no peers.
func (n *SingleNode) HandleMessage(from NodeID, msg []byte) {}

// Flush ends the turn. Unless a batch is still syncing, it commits the open
// batch: one write and one fsync for all its records, then its replies. A
// failed write undoes the batch and fails its requests; a failed fsync stops
// the node, because the kernel may have dropped the pages.
func (n *SingleNode) Flush() error {
	if n.stopped != nil {
		return n.stopped
	}
	if !n.syncing {
		n.beforeBatch()
		n.commitBatch()
		if n.stopped != nil {
			return n.stopped
		}
	}
	n.stepSnapshot()
	return n.stopped
}

func (n *SingleNode) commitBatch() {
	if !n.batchWrites {
		n.sendReplies(n.replies)
		n.beginBatch()
		return
	}
	if n.lastInBatch >= 0 {
		// Mark the batch's end for recovery; the type byte is under the crc.
		n.batch[n.lastInBatch+8] |= recordBatchEnd
		putCRC(n.batch[n.lastInBatch:])
	}
	n.writeBatch()
	if n.batchWriteErr != nil {
		n.undoBatch()
		if n.stopped == nil {
			n.sendReplies(n.replies)
		}
		n.beginBatch()
		return
	}
	if af, ok := n.wal.file.(AsyncFile); ok {
		n.syncing = true
		n.syncReplies, n.replies = n.replies, n.syncReplies[:0]
		name := n.wal.segments[len(n.wal.segments)-1].name
		af.SyncAsync(func(err error) { n.synced(name, err) })
	} else if err := n.wal.sync(); err != nil {
		n.stopped = fmt.Errorf("fsync failed, stopping: %w", err)
	} else {
		n.sendReplies(n.replies)
	}
	n.beginBatch()
}

// synced completes the batch in flight.
func (n *SingleNode) synced(name string, err error) {
	assert(n.syncing, "a sync completed with none in flight")
	n.syncing = false
	if err != nil {
		n.stopped = fmt.Errorf("fsync failed, stopping: syncing %s: %w", name, err)
		return
	}
	n.sendReplies(n.syncReplies)
	n.syncReplies = n.syncReplies[:0]
}

func (n *SingleNode) sendReplies(replies []pendingReply) {
	for _, p := range replies {
		p.reply(p.resp)
	}
}

// undoBatch takes a failed batch back out of the log and the store and fails
// its writes, and the reads that may have seen them.
func (n *SingleNode) undoBatch() {
	cause := n.batchWriteErr
	// The truncate must be durable before the log goes on: part of the
	// batch may have reached the disk (a background fsync can run late and
	// cover it), and a later roll would seal the segment with it inside.
	if err := n.wal.truncate(n.batchStart); err != nil {
		n.stopped = fmt.Errorf("cannot undo a failed write (%v), stopping: %w", cause, err)
		return
	}
	if err := n.wal.sync(); err != nil {
		n.stopped = fmt.Errorf("fsync failed while undoing a failed write (%v), stopping: %w", cause, err)
		return
	}
	n.wal.nextIndex = n.batchIndex
	n.store.rollback(n.undos)
	code := CodeIOError
	if errors.Is(cause, ErrDiskFull) {
		code = CodeDiskFull
	}
	n.env.logf("write failed, batch undone: %v", cause)
	for i := range n.replies {
		p := &n.replies[i]
		switch {
		case p.write:
			p.resp = ErrorResponse(code, "write not persisted and not applied: %v", cause)
		case p.afterWrite:
			p.resp = ErrorResponse(CodeUnavailable, "a write before this read failed to persist; retry")
		}
	}
}

// beforeBatch runs when nothing is in flight, before the open batch is
// written: the one moment the log on disk ends exactly where the batch
// begins. It rolls the log and starts snapshots there.
func (n *SingleNode) beforeBatch() {
	if n.wal.size() != n.batchStart {
		return // part of the batch is written already: keep it in one segment
	}
	n.rollOrSnapshot()
	// Not deferred: no I/O may run while a crash unwinds (the simulator
	// crashes a node by panicking out of a disk call).
	err := n.wal.reserve()
	if err != nil && !n.reserveFailing {
		n.env.logf("cannot reserve log space ahead (fsyncs will be slower until it can): %v", err)
	}
	n.reserveFailing = err != nil
}

// rollOrSnapshot rolls the log to a new segment when the current one is
// full or a snapshot is due, and starts the snapshot.
func (n *SingleNode) rollOrSnapshot() {
	snapDue := n.snap == nil && n.env.Clock.Now() >= n.snapRetryAfter &&
		(n.snapForce || (n.logSinceSnap >= n.cfg.SnapshotLogBytesMin && n.logSinceSnap >= n.snapBytes))
	if !snapDue && n.wal.size() < n.cfg.SegmentBytesMax {
		return
	}
	// A snapshot at the batch's start needs a fresh segment there, so that
	// once it is durable every earlier segment can be removed whole.
	if err := n.wal.roll(n.batchIndex); err != nil {
		n.env.logf("cannot start a new log segment (will retry): %v", err)
		if snapDue {
			n.failSnapshot(err)
		}
		return
	}
	n.batchStart = 0
	if snapDue {
		n.startSnapshot()
	}
}

func (n *SingleNode) stepSnapshot() {
	if n.snap == nil {
		return
	}
	done, err := n.snap.step(n.env.Disk)
	if err != nil {
		n.failSnapshot(err)
		return
	}
	if !done {
		n.armSnapshotTimer()
		return
	}
	n.finishSnapshot()
}

func (n *SingleNode) startSnapshot() {
	failAt := -1
	if n.snapSimFail && Intn(n.env.Rand, 2) == 0 {
		failAt = 1
	}
	n.snapForce, n.snapSimFail = false, false
	// The store already holds the open batch's writes; the snapshot is of
	// the state just before them, which the batch's undos give back.
	state := n.store.Clone()
	state.rollback(n.undos)
	w, err := startSnapshot(n.env.Disk, state, n.batchIndex-1, failAt)
	if err != nil {
		n.failSnapshot(err)
		return
	}
	n.snap = w
	n.logSinceSnap = 0
}

func (n *SingleNode) failSnapshot(err error) {
	n.env.logf("snapshot failed, the log stays whole (will retry): %v", err)
	if n.snap != nil {
		n.snap.abort(n.env.Disk)
		n.snap = nil
	}
	n.snapRetryAfter = n.env.Clock.Now() + int64(snapshotRetryDelay)
}

func (n *SingleNode) finishSnapshot() {
	w := n.snap
	n.snap = nil
	if err := n.env.Disk.SyncDir(); err != nil {
		// The rename may or may not be durable; either way the log is whole,
		// so recovery works from whichever snapshot it finds.
		n.env.logf("snapshot %s: directory sync failed (will retry): %v", snapName(w.index), err)
		n.snapRetryAfter = n.env.Clock.Now() + int64(snapshotRetryDelay)
		return
	}
	prevIndex := n.snapIndex
	n.snapIndex, n.snapBytes = w.index, w.bytes
	if prevIndex != n.snapIndex {
		// Best effort: there may be no earlier snapshot, and a leftover is
		// removed at the next start.
		_ = n.env.Disk.Remove(snapName(prevIndex))
	}
	if err := n.wal.removeBefore(w.index); err != nil {
		n.env.logf("removing covered log segments (will retry at next snapshot): %v", err)
	}
	n.env.logf("snapshot at index %d written (%d keys, %d bytes)", w.index, w.count, w.bytes)
}

// armSnapshotTimer makes sure the loop takes another turn while a snapshot
// is being written, even when no requests arrive.
func (n *SingleNode) armSnapshotTimer() {
	if n.snapTimer != nil {
		return
	}
	n.snapTimer = n.env.Clock.AfterFunc(time.Millisecond, func() { n.snapTimer = nil })
}

func (n *SingleNode) status() Status {
	return Status{
		Mode:          "single",
		Keys:          n.store.Len(),
		LastIndex:     n.wal.nextIndex - 1,
		SnapshotIndex: n.snapIndex,
		WALSegments:   len(n.wal.segments),
		WALBytes:      n.wal.totalBytes(),
		Snapshotting:  n.snap != nil,
	}
}

// Store exposes the state for tests and checkers. Callers must not modify it.
func (n *SingleNode) Store() *Store { return n.store }

// Close releases open files. The node must not be used afterwards.
func (n *SingleNode) Close() {
	if n.snap != nil {
		n.snap.abort(n.env.Disk)
		n.snap = nil
	}
	if n.wal != nil {
		n.wal.close()
	}
}
