package core

import "fmt"

// GroupCommit gathers the log records of one host turn into a batch and
// makes the batch durable with one write and one fsync. It is the single
// node's and the cluster node's way into the Log.
//
// A batch that is large is written out early, bounding the memory it holds,
// but it is still synced once, at Commit. The last record of a batch carries
// the batch-end bit, which recovery uses to tell a torn final batch from
// damage to a synced one. With an AsyncFile the fsync runs in the background
// while the next batch gathers (pipelined group commit); at most one batch is
// in flight, so batches become durable in log order.
type GroupCommit struct {
	log           *Log
	batchBytesMax int

	batch       []byte
	lastInBatch int    // offset of the last record header in batch, or -1
	records     int    // records in the open batch
	start       int64  // size of the last segment before the batch's first record
	firstIndex  uint64 // index of the batch's first record
	writeErr    error  // an early write failed: Commit undoes the batch
	// bytesAdded counts the bytes handed to the log, failed writes
	// included (see BytesAdded).
	bytesAdded int64
	// counters are the running totals an operator's metrics show.
	counters LogCounters

	syncing bool // the previous batch's fsync is in flight

	// mutation plants a bug, for the simulator's tests (SingleConfig).
	mutation Mutation
}

// NewGroupCommit starts batching into log. batchBytesMax bounds the records
// held in memory before they are written out.
func NewGroupCommit(log *Log, batchBytesMax int) *GroupCommit {
	assert(batchBytesMax > 0, "GroupCommit: batchBytesMax must be positive")
	g := &GroupCommit{log: log, batchBytesMax: batchBytesMax}
	g.begin()
	return g
}

func (g *GroupCommit) begin() {
	g.start = g.log.Size()
	g.firstIndex = g.log.nextIndex
	g.writeErr = nil
	g.batch = g.batch[:0]
	g.lastInBatch = -1
	g.records = 0
}

// Add appends a record to the open batch and returns its index.
func (g *GroupCommit) Add(typ byte, payload []byte) uint64 {
	// Written early to bound memory, but never while another batch's fsync
	// is in flight: then two unsynced batches would share the log's tail,
	// and a crash that keeps pages out of order could leave a complete
	// later batch behind a damaged earlier one, which recovery must call
	// corruption. What is written is the records before this one: the
	// batch's last record stays in memory until Commit marks it as the
	// batch's end (recovery needs that mark to tell damage from a torn
	// tail).
	if len(g.batch) >= g.batchBytesMax && (!g.syncing || g.mutation == MutEarlyWriteWhileSyncing) {
		g.writeOut()
	}
	index := g.log.nextIndex
	g.lastInBatch = len(g.batch)
	g.batch = appendRecord(g.batch, typ, index, payload)
	g.log.nextIndex++
	g.records++
	return index
}

// writeOut writes the buffered records without syncing. A failure is
// remembered; Commit then undoes the whole batch.
func (g *GroupCommit) writeOut() {
	if len(g.batch) > 0 && g.writeErr == nil {
		if err := g.log.Append(g.batch); err != nil {
			g.writeErr = err
		}
		g.bytesAdded += int64(len(g.batch))
	}
	g.batch = g.batch[:0]
	g.lastInBatch = -1
}

// BytesAdded counts the bytes of the records written out so far, including
// those of batches that failed and were undone: what snapshots pace on.
func (g *GroupCommit) BytesAdded() int64 { return g.bytesAdded }

// Counters are the log's running totals since the node started.
func (g *GroupCommit) Counters() LogCounters {
	c := g.counters
	c.Bytes = g.bytesAdded
	return c
}

// Records is the number of records in the open batch.
func (g *GroupCommit) Records() int { return g.records }

// FirstIndex is the index the open batch's first record has, or will have.
func (g *GroupCommit) FirstIndex() uint64 { return g.firstIndex }

// Syncing reports whether a batch's fsync is in flight.
func (g *GroupCommit) Syncing() bool { return g.syncing }

// Unwritten reports whether no byte of the open batch is in the log yet:
// the one moment the log on disk ends exactly where the batch begins, when
// the log may roll to a new segment.
func (g *GroupCommit) Unwritten() bool { return !g.syncing && g.log.Size() == g.start }

// Rolled tells the batch that the log moved to a fresh segment under it.
func (g *GroupCommit) Rolled() {
	assert(!g.syncing && g.log.Size() == 0, "the log rolls only between batches, to an empty segment")
	g.start = 0
}

// Rebased tells an empty batch that the log was cut back or started afresh
// under it (a replicated log's TruncateFrom or Reset).
func (g *GroupCommit) Rebased() {
	assert(!g.syncing && g.records == 0, "the log changes under an empty batch only")
	g.begin()
}

// Commit ends the open batch: it marks the batch's last record, writes what
// is left and syncs. It must not be called while Syncing.
//
// When writing fails, the batch is taken back out of the log (the truncate
// synced, since part of the batch may have reached the disk and a later
// fsync could cover it) and Commit returns the write error; durable is not
// called, and the caller takes the batch back out of memory. An error from
// the undo itself is returned as fatal: the log's state is unknown.
//
// Otherwise durable is called once the batch is on disk, or with the sync's
// error, which is final: the kernel may have dropped the pages. It is called
// before Commit returns when the file cannot sync in the background or
// inline is set, else in a later turn.
func (g *GroupCommit) Commit(inline bool, durable func(error)) (writeErr, fatal error) {
	assert(!g.syncing, "Commit with a sync in flight")
	if g.records == 0 {
		g.begin()
		durable(nil)
		return nil, nil
	}
	// Mark the batch's end for recovery; the type byte is under the crc.
	// Add keeps the last record in memory, so it is there to mark.
	assert(g.lastInBatch >= 0, "GroupCommit: the batch's last record was written before Commit")
	g.batch[g.lastInBatch+8] |= recordBatchEnd
	if g.mutation != MutBatchEndStaleCRC {
		putCRC(g.batch[g.lastInBatch:])
	}
	g.writeOut()
	if g.writeErr != nil {
		writeErr = g.writeErr
		fatal = g.undo()
		g.counters.Undone++
		g.begin()
		return writeErr, fatal
	}
	g.counters.Batches++
	g.counters.Records += int64(g.records)
	g.counters.BatchRecords[batchBucket(g.records)]++
	af, async := g.log.file.(AsyncFile)
	start := g.start
	if async && !inline {
		g.syncing = true
		name := g.log.lastName()
		if ack := durable; g.mutation == MutAckBeforeSync {
			ack(nil) // the sync's failure still stops the node, too late
			durable = func(err error) {
				if err != nil {
					ack(err)
				}
			}
		}
		if c, ok := af.(SyncCutter); ok && g.mutation != MutFailedSyncKept {
			c.CutOnSyncFailure(start)
		}
		af.SyncAsync(func(err error) {
			assert(g.syncing, "a sync completed with none in flight")
			g.syncing = false
			if err != nil {
				err = g.cutUnsynced(start, fmt.Errorf("syncing %s: %w", name, err))
			}
			durable(err)
		})
	} else {
		err := g.log.Sync()
		if err != nil {
			err = g.cutUnsynced(start, err)
		}
		durable(err)
	}
	g.begin()
	return nil, nil
}

// cutUnsynced cuts a batch whose fsync failed back out of the log, before
// the node stops on err. Linux may have marked the batch's pages clean
// without writing them (ext4 does: "fsyncgate"), so they stay readable in
// the page cache and a later fsync reports success without them. Left in
// place, a restart would read the batch back and serve writes that were
// never durable nor acknowledged, append new batches after it and
// acknowledge them, and a power loss would then open a hole of zeros
// where the batch was: recovery would refuse the log as damaged, or take
// the hole for a torn tail and cut the acknowledged batches after it. A
// truncate drops the pages from the cache. Nothing else writes to the
// segment while a sync is in flight (Add holds the next batch in memory,
// and the log rolls only between batches), so start is the batch's first
// byte. If the cut fails too the restart may still meet the batch; the
// error says so.
func (g *GroupCommit) cutUnsynced(start int64, err error) error {
	if g.mutation == MutFailedSyncKept {
		return err
	}
	if cutErr := g.log.Truncate(start); cutErr != nil {
		return fmt.Errorf("%w; cutting the unsynced batch back out of the log failed too (%v): a restart may read it back", err, cutErr)
	}
	if syncErr := g.log.Sync(); syncErr != nil {
		return fmt.Errorf("%w; syncing the log cut back to its last durable batch failed too (%v)", err, syncErr)
	}
	return err
}

// undo cuts a batch whose write failed back out of the log.
func (g *GroupCommit) undo() error {
	// The truncate must be durable before the log goes on: part of the
	// batch may have reached the disk (a background fsync can run late and
	// cover it), and a later roll would seal the segment with it inside.
	if err := g.log.Truncate(g.start); err != nil {
		return fmt.Errorf("cannot undo a failed write (%v), stopping: %w", g.writeErr, err)
	}
	if g.mutation == MutUndoNotSynced {
		g.log.nextIndex = g.firstIndex
		return nil
	}
	if err := g.log.Sync(); err != nil {
		return fmt.Errorf("fsync failed while undoing a failed write (%v), stopping: %w", g.writeErr, err)
	}
	if g.mutation == MutUndoKeepsIndex {
		return nil
	}
	g.log.nextIndex = g.firstIndex
	return nil
}
