package core

import "fmt"

// LocalLog is the end of a turn for a node that logs its own writes and
// answers them once they are durable: the single node and a mesh node. (A
// cluster node's differs: Raft decides what is logged and when.) It holds
// what waits for a batch: the open batch's pending answers, gathered during
// the turn, and those of the batch whose fsync is in flight; and it rolls
// the log and starts snapshots at the one moment the log on disk ends where
// the open batch begins.
//
// P is the node's pending answer: a reply, or for a mesh node a message
// too. The node says what to do with them through LocalLogHooks.
type LocalLog[P any] struct {
	log             *Log
	gc              *GroupCommit
	snaps           *Snapshotter
	segmentBytesMax int64
	logf            func(string, ...any)
	hooks           LocalLogHooks[P]

	open, syncing  []P
	reserveFailing bool // logged once, not every turn
	stopped        error
}

// LocalLogHooks are the node's part of a LocalLog's work.
type LocalLogHooks[P any] struct {
	// Release answers pendings whose batch is durable, or held no write.
	Release func([]P)
	// Undo takes a batch whose write failed (and that GroupCommit cut
	// back out of the log) out of the node's memory, and returns the
	// pendings to release in its stead: its writes' failures, and
	// nothing that describes what is now undone.
	Undo func(cause error, open []P) []P
	// Snapshot gives the state just before the open batch, for a
	// snapshot at the index before its first record.
	Snapshot func() (state *Store, index uint64, meta SnapshotMeta)
	// Begin opens the next batch: the node forgets the last one's undos.
	Begin func()
}

// NewLocalLog drives the given log, group commit and snapshots.
func NewLocalLog[P any](log *Log, gc *GroupCommit, snaps *Snapshotter, segmentBytesMax int64, logf func(string, ...any), hooks LocalLogHooks[P]) *LocalLog[P] {
	assert(segmentBytesMax > 0, "LocalLog needs a positive segment size")
	assert(hooks.Release != nil && hooks.Undo != nil && hooks.Snapshot != nil && hooks.Begin != nil, "LocalLog needs every hook")
	l := &LocalLog[P]{log: log, gc: gc, snaps: snaps, segmentBytesMax: segmentBytesMax, logf: logf, hooks: hooks}
	hooks.Begin()
	return l
}

// Queue makes p wait for the open batch.
func (l *LocalLog[P]) Queue(p P) { l.open = append(l.open, p) }

// Stopped is the error that stopped the node (a failed fsync), or nil.
func (l *LocalLog[P]) Stopped() error { return l.stopped }

// EndTurn commits the open batch, unless a batch is still syncing: one
// write and one fsync for all its records (writes says whether it has
// any), then its pendings. A failed write undoes the batch and releases
// its failures; a failed fsync stops the node, because the kernel may have
// dropped the pages. It returns what stopped the node, if anything has.
func (l *LocalLog[P]) EndTurn(writes bool) error {
	if l.stopped != nil {
		return l.stopped
	}
	if !l.gc.Syncing() {
		l.beforeBatch()
		l.commit(writes)
	}
	return l.stopped
}

func (l *LocalLog[P]) commit(writes bool) {
	if !writes {
		l.hooks.Release(l.open)
		l.begin()
		return
	}
	// The pendings wait for the batch: the open list is handed over, and
	// the next batch gathers in the other.
	l.syncing, l.open = l.open, l.syncing[:0]
	writeErr, fatal := l.gc.Commit(false, l.synced)
	switch {
	case fatal != nil:
		l.stopped = fatal
	case writeErr != nil:
		l.open, l.syncing = l.syncing, l.open[:0]
		l.hooks.Release(l.hooks.Undo(writeErr, l.open))
	}
	l.begin()
}

func (l *LocalLog[P]) begin() {
	clear(l.open) // let the answers' memory go
	l.open = l.open[:0]
	l.hooks.Begin()
}

// synced completes a committed batch.
func (l *LocalLog[P]) synced(err error) {
	if err != nil {
		l.stopped = fmt.Errorf("fsync failed, stopping: %w", err)
		return
	}
	l.hooks.Release(l.syncing)
	clear(l.syncing)
	l.syncing = l.syncing[:0]
}

// beforeBatch runs when nothing is in flight, before the open batch is
// written: the one moment the log on disk ends exactly where the batch
// begins. It rolls the log and starts snapshots there.
func (l *LocalLog[P]) beforeBatch() {
	if !l.gc.Unwritten() {
		return // part of the batch is written already: keep it in one segment
	}
	l.rollOrSnapshot()
	// Not deferred: no I/O may run while a crash unwinds (the simulator
	// crashes a node by panicking out of a disk call).
	err := l.log.Reserve()
	if err != nil && !l.reserveFailing {
		l.logf("cannot reserve log space ahead (fsyncs will be slower until it can): %v", err)
	}
	l.reserveFailing = err != nil
}

// rollOrSnapshot rolls the log to a new segment when the current one is
// full or a snapshot is due, and starts the snapshot.
func (l *LocalLog[P]) rollOrSnapshot() {
	snapDue := l.snaps.Due(l.gc.BytesAdded())
	if !snapDue && l.log.Size() < l.segmentBytesMax {
		return
	}
	// A snapshot at the batch's start needs a fresh segment there, so that
	// once it is durable every earlier segment can be removed whole.
	if err := l.log.Roll(l.gc.FirstIndex()); err != nil {
		l.logf("cannot start a new log segment (will retry): %v", err)
		if snapDue {
			l.snaps.Fail(err)
		}
		return
	}
	l.gc.Rolled()
	if snapDue {
		state, index, meta := l.hooks.Snapshot()
		l.snaps.Start(state, index, meta, l.gc.BytesAdded())
	}
}
