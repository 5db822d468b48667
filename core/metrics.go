package core

import "math/bits"

// BatchRecordsBuckets is the number of buckets in LogCounters.BatchRecords.
// Bucket i counts the batches of at most 2^i records (and more than
// 2^(i-1)); the last bucket counts every larger batch too. 2^13 is above
// what one host turn gathers (realnet's EventsPerTurnMax is 4096).
const BatchRecordsBuckets = 14

// LogCounters are the write-ahead log's running totals since the node
// started, for an operator's metrics. They are plain fields that the node
// updates on its own goroutine; a host reads them there too (Metrics).
type LogCounters struct {
	// Batches counts the batches committed: one write and one fsync each.
	Batches int64
	// Records counts the records in them.
	Records int64
	// BatchRecords is the histogram of records per batch (see
	// BatchRecordsBuckets): how many requests one fsync carried.
	BatchRecords [BatchRecordsBuckets]int64
	// Bytes counts the bytes written to the log, failed writes included.
	Bytes int64
	// Undone counts batches whose write failed and were taken back out.
	Undone int64
}

// batchBucket is the BatchRecords bucket of a batch of n records.
func batchBucket(n int) int {
	assert(n > 0, "an empty batch is not counted")
	return min(bits.Len(uint(n-1)), BatchRecordsBuckets-1)
}

// SnapshotCounters are the snapshots' running totals since the node
// started. Durations are read from the node's Clock, so they are virtual
// time under the simulator.
type SnapshotCounters struct {
	// Written counts the snapshots that became durable; Failed those
	// abandoned (the log stays whole; another is tried later).
	Written, Failed int64
	// Nanos is the time the written ones took, from start to durable.
	Nanos int64
	// LastNanos, LastBytes and LastKeys describe the newest one written.
	LastNanos, LastBytes int64
	LastKeys             int
}

// Metrics is what a node tells its host's metrics: its status (what the
// status op answers) and its counters.
type Metrics struct {
	Status    Status
	Log       LogCounters
	Snapshots SnapshotCounters
	// LeaderChanges counts the times a cluster node saw the leader or the
	// term change (0 for the other modes).
	LeaderChanges int64
}

// MetricsReporter is a node that reports Metrics. The host calls Metrics
// on the node's goroutine, between events, once Start has returned.
type MetricsReporter interface {
	Metrics() Metrics
}
