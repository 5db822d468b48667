package core

import "fmt"

// Mutation is a deliberate bug: a realistic one- or two-line mistake in the
// storage engine, the single node or the protocol codec, planted only by
// tests that prove the simulator catches it (package sim's mutation test and
// cmd/sim --mutations). A node built by cmd/node never has one: nothing
// outside those sets SingleConfig.Mutation or Codec.Mutation, and the parts
// that need it (GroupCommit, Snapshotter, Store, the snapshot writer, …) get
// it from the node as a field, never from a global.
type Mutation uint8

const (
	MutNone Mutation = iota

	// Log records and the writes they carry (record.go).

	// MutSetKeyLenOffByOne: replaying a set record, the decoder reads the
	// key one byte short, so its last byte goes to the value.
	MutSetKeyLenOffByOne
	// MutBulkLengthsFirst: a bulk_set record is encoded with each item's
	// key and value lengths in front of both strings (the snapshot's entry
	// layout), where the decoder expects length, key, length, value.
	MutBulkLengthsFirst

	// Recovery and the log's segments (wal.go).

	// MutDamageTakenForTornTail: recovery takes any bad record in the last
	// segment for a torn tail and cuts the log there, even with valid
	// batches after it.
	MutDamageTakenForTornTail
	// MutRecoveredTailNotSynced: recovery serves the last segment without
	// syncing it, though after a process crash its tail may be in the page
	// cache only.
	MutRecoveredTailNotSynced
	// MutNewSegmentDirNotSynced: a new segment's directory entry is not
	// synced before records in it are acknowledged.
	MutNewSegmentDirNotSynced
	// MutRollKeepsReservedZeros: a segment is sealed with the zeros
	// reserved past its last record still in it.
	MutRollKeepsReservedZeros

	// Group commit and the undo of a failed batch (groupcommit.go).

	// MutAckBeforeSync: with a background fsync, the batch is reported
	// durable when the fsync starts instead of when it is done.
	MutAckBeforeSync
	// MutBatchEndStaleCRC: the batch-end bit is set in the last record's
	// type byte without recomputing the record's checksum.
	MutBatchEndStaleCRC
	// MutUndoKeepsIndex: a batch whose write failed is cut from the file,
	// but its indexes are not given back, so the next batch leaves a gap.
	MutUndoKeepsIndex
	// MutUndoNotSynced: the truncate that cuts a failed batch out of the
	// log is not synced before the log goes on.
	MutUndoNotSynced
	// MutEarlyWriteWhileSyncing: a large batch is written out early even
	// while the previous batch's fsync is in flight.
	MutEarlyWriteWhileSyncing
	// MutFailedSyncKept: a batch whose fsync failed is left in the log
	// when the node stops, and recovery reads the last segment without
	// dropping its clean pages (CacheDropper), so a restart reads the
	// batch back from the page cache (where ext4 keeps the pages that
	// failed writeback) and serves it. Either defence alone covers the
	// simulator's disk, so the mutation takes out both.
	MutFailedSyncKept

	// The snapshot file (snapshot.go) and its life cycle (snapshotter.go).

	// MutSnapshotNotSynced: the snapshot is renamed into place without
	// syncing its file.
	MutSnapshotNotSynced
	// MutSnapshotCRCBeforeTrailer: the checksum is computed before the
	// trailer (end marker and count) is appended, so it does not cover it.
	MutSnapshotCRCBeforeTrailer
	// MutSnapshotChecksumIgnored: a snapshot whose checksum does not match
	// is loaded anyway, as long as its entries parse.
	MutSnapshotChecksumIgnored
	// MutRecoverOldestSnapshot: recovery loads the first snapshot in the
	// listing (the oldest) instead of the last (the newest).
	MutRecoverOldestSnapshot
	// MutLogRemovedBeforeDirSync: a finished snapshot removes the log
	// segments it covers before the directory sync that makes its rename
	// durable.
	MutLogRemovedBeforeDirSync

	// The single node (single.go).

	// MutSnapshotIndexOffByOne: a snapshot of the state before the open
	// batch is labelled with the batch's first index instead of the one
	// before it.
	MutSnapshotIndexOffByOne
	// MutSnapshotHasOpenBatch: the snapshot's clone keeps the open batch's
	// writes (the undo that takes them out is skipped).
	MutSnapshotHasOpenBatch
	// MutReadBeforeDurable: a read is answered at once, though it may have
	// seen a write whose batch is not durable yet.
	MutReadBeforeDurable
	// MutUndoSkipped: a batch whose write failed is answered with errors
	// but its writes stay in the store.
	MutUndoSkipped
	// MutBulkSetRecordPerItem: a bulk_set is logged as one set record per
	// item instead of one record, so a crash can keep part of it.
	MutBulkSetRecordPerItem
	// MutBulkDeleteReplaysFirstKey: recovery replays only the first key of
	// a logged bulk_delete, so the others come back after a restart.
	MutBulkDeleteReplaysFirstKey

	// The store (store.go).

	// MutRollbackOldestFirst: undoing a batch restores its keys oldest
	// write first, so a key written twice ends at its middle value.
	MutRollbackOldestFirst
	// MutSetReturnsNewValue: Set reports the value it stored as the
	// previous one, so undo information holds the new value.
	MutSetReturnsNewValue
	// MutCloneSharesTree: Clone returns a store sharing the tree, not a
	// copy-on-write copy.
	MutCloneSharesTree
	// MutRollbackUnindexed: undoing a batch restores the store behind its
	// observer's back, so the indexes keep the undone writes.
	MutRollbackUnindexed

	// The protocol codec (codec.go).

	// MutResponseIDOffByOne: a response echoes the request's id only when
	// it is longer than one byte.
	MutResponseIDOffByOne
	// MutErrorCodeIsMessage: an error response carries its message in the
	// code field.
	MutErrorCodeIsMessage
	// MutRequestIDAliasesLine: a request's id is kept as a slice of the
	// line it was read from, which the connection reuses for the next one.
	MutRequestIDAliasesLine

	// The scan (scan.go).

	// MutScanFullPageIsLast: a page that fills up at its limit stops there
	// and says no key is left, without looking for one.
	MutScanFullPageIsLast

	// Conditional writes (condition.go, single.go).

	// MutCondFailureBeforeDurable: a conditional write whose condition did
	// not hold is answered at once, though the value it reports may be an
	// open batch's write that is not durable yet.
	MutCondFailureBeforeDurable

	// Consistent scans (view.go).

	// MutViewSharesStore: a consistent scan's view keeps the store itself,
	// not a copy-on-write clone of it, so its later pages read writes made
	// after its first.
	MutViewSharesStore

	// Keys that expire (deadline.go, single.go).

	// MutExpireEarly: the node deletes keys whose deadline is within
	// expireEarlyBy of now, as a clock compared in the wrong unit or with
	// a margin the wrong way would.
	MutExpireEarly
	// MutExpiryTimerLost: the node never arms its expiry timer, so keys
	// whose deadline passed stay until a write replaces them.
	MutExpiryTimerLost
	// MutPersistKeepsDeadline: Store.SetDeadline takes a zero deadline
	// for "no change" rather than "none", so a persist leaves the key's
	// deadline in place.
	MutPersistKeepsDeadline

	// Counters (counter.go, single.go).

	// MutIncrDropsDeadline: the single node logs an incr as a plain set
	// of its sum, so the key's deadline goes (as a set's would) where
	// Redis and the protocol keep it.
	MutIncrDropsDeadline

	// Indexes (indexbuild.go).

	// MutRebuildDropsWrites: while the indexes are rebuilt in steps, a
	// change reaches them only once the rebuild is done, even at a key
	// the walk has passed, so the indexes keep that key's old value.
	MutRebuildDropsWrites

	// MutExpiryRearmSkipped: a key given a deadline sooner than the one
	// the node's expiry timer is armed for leaves the timer as it is, so
	// the key outlives its deadline until that later time (up to the
	// recheck, a second).
	MutExpiryRearmSkipped

	// The data bound (store.go).

	// MutDataGrowthIgnoresOld: a set's growth of the store's data bytes
	// counts its key and value without taking off the bytes of the value
	// it replaces, so a write that fits, or shrinks the store, is refused
	// with store_full near the bound.
	MutDataGrowthIgnoresOld
)

// expireEarlyBy is how early MutExpireEarly deletes a key, in ms.
const expireEarlyBy = 20

var mutationNames = MutationNames[Mutation]{
	MutNone:                      "none",
	MutSetKeyLenOffByOne:         "set-key-len-off-by-one",
	MutBulkLengthsFirst:          "bulk-lengths-first",
	MutDamageTakenForTornTail:    "damage-taken-for-torn-tail",
	MutRecoveredTailNotSynced:    "recovered-tail-not-synced",
	MutNewSegmentDirNotSynced:    "new-segment-dir-not-synced",
	MutRollKeepsReservedZeros:    "roll-keeps-reserved-zeros",
	MutAckBeforeSync:             "ack-before-sync",
	MutBatchEndStaleCRC:          "batch-end-stale-crc",
	MutUndoKeepsIndex:            "undo-keeps-index",
	MutUndoNotSynced:             "undo-not-synced",
	MutEarlyWriteWhileSyncing:    "early-write-while-syncing",
	MutFailedSyncKept:            "failed-sync-kept",
	MutSnapshotNotSynced:         "snapshot-not-synced",
	MutSnapshotCRCBeforeTrailer:  "snapshot-crc-before-trailer",
	MutSnapshotChecksumIgnored:   "snapshot-checksum-ignored",
	MutRecoverOldestSnapshot:     "recover-oldest-snapshot",
	MutLogRemovedBeforeDirSync:   "log-removed-before-dirsync",
	MutSnapshotIndexOffByOne:     "snapshot-index-off-by-one",
	MutSnapshotHasOpenBatch:      "snapshot-has-open-batch",
	MutReadBeforeDurable:         "read-before-durable",
	MutUndoSkipped:               "undo-skipped",
	MutBulkSetRecordPerItem:      "bulk-set-record-per-item",
	MutBulkDeleteReplaysFirstKey: "bulk-delete-replays-first-key",
	MutRollbackOldestFirst:       "rollback-oldest-first",
	MutSetReturnsNewValue:        "set-returns-new-value",
	MutCloneSharesTree:           "clone-shares-tree",
	MutRollbackUnindexed:         "rollback-unindexed",
	MutResponseIDOffByOne:        "response-id-off-by-one",
	MutErrorCodeIsMessage:        "error-code-is-message",
	MutRequestIDAliasesLine:      "request-id-aliases-line",
	MutScanFullPageIsLast:        "scan-full-page-is-last",
	MutCondFailureBeforeDurable:  "condition-failure-before-durable",
	MutViewSharesStore:           "view-shares-store",
	MutExpireEarly:               "expire-early",
	MutExpiryTimerLost:           "expiry-timer-lost",
	MutPersistKeepsDeadline:      "persist-keeps-deadline",
	MutIncrDropsDeadline:         "incr-drops-deadline",
	MutRebuildDropsWrites:        "rebuild-drops-writes",
	MutExpiryRearmSkipped:        "expiry-rearm-skipped",
	MutDataGrowthIgnoresOld:      "data-growth-ignores-old",
}

func (m Mutation) String() string { return mutationNames.Name(m) }

// Mutations lists the planted bugs, MutNone excluded.
func Mutations() []Mutation { return mutationNames.All() }

// ParseMutation returns the mutation called name.
func ParseMutation(name string) (Mutation, error) { return mutationNames.Parse("core", name) }

// MutationNames is a package's catalogue of planted bugs, indexed by the
// bug's number; index 0 is "none", no bug. It gives the core and election
// Mutation types their String, list and parse alike.
type MutationNames[M ~uint8] []string

// Name is m's name.
func (n MutationNames[M]) Name(m M) string {
	if int(m) < len(n) {
		return n[m]
	}
	return fmt.Sprintf("mutation(%d)", uint8(m))
}

// All lists the bugs, "none" excluded.
func (n MutationNames[M]) All() []M {
	out := make([]M, 0, len(n)-1)
	for m := 1; m < len(n); m++ {
		out = append(out, M(m))
	}
	return out
}

// Parse returns the bug called name; pkg names the catalogue in the error.
func (n MutationNames[M]) Parse(pkg, name string) (M, error) {
	for m, s := range n {
		if s == name {
			return M(m), nil
		}
	}
	return 0, fmt.Errorf("%s: no mutation called %q", pkg, name)
}
