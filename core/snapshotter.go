package core

import (
	"fmt"
	"slices"
	"time"
)

// snapshotRetryDelay spaces attempts after a failed snapshot, so a full disk
// is not hammered every turn; it doubles with each failure in a row, up to
// snapshotRetryDelayMax (each attempt of the single node and a mesh node
// rolls the log to a new segment first).
const (
	snapshotRetryDelay    = time.Second
	snapshotRetryDelayMax = 64 * time.Second
)

// Snapshotter decides when a node snapshots its store and writes the
// snapshot in the background of the node's turns: a bounded chunk per turn
// from a copy-on-write clone, so writes go on meanwhile. Once a snapshot is
// durable (file synced, renamed, directory synced) the previous one and the
// log segments it covers are removed. A failed snapshot is abandoned and
// retried later; the log still holds everything.
type Snapshotter struct {
	env *Env
	log *Log
	// logBytesMin: how much log must accumulate since the last snapshot
	// before the next is due. The node also waits until the log is at
	// least as large as the last snapshot, so that the cost of snapshotting
	// stays proportional to the cost of writing.
	logBytesMin int64

	w     *snapshotWriter
	index uint64 // of the last durable snapshot; 0: none
	bytes int64  // its size
	// logBase is the caller's count of log bytes added when the last
	// snapshot started (negative: the log recovered at start counts too);
	// failedBase is what it was before the one being written started,
	// given back if that one fails: the log it would have let go is still
	// there, and the retry is due on it. (Kept, the next attempt waited
	// for as much log again as made the failed one due: found by review.)
	logBase    int64
	failedBase int64
	force      bool
	simFail    bool
	retryAfter int64
	failures   int // in a row, since the last snapshot that became durable
	timer      Timer
	mutation   Mutation // a planted bug, for the simulator's tests (SingleConfig)

	// startedAt is the Clock reading when the snapshot being written
	// started; counters are the running totals an operator's metrics show.
	startedAt int64
	counters  SnapshotCounters
}

// NewSnapshotter manages the snapshots of a node whose newest durable
// snapshot (if any) is at index and bytes long.
func NewSnapshotter(env *Env, log *Log, logBytesMin int64, index uint64, bytes int64) *Snapshotter {
	assert(logBytesMin > 0, "Snapshotter: logBytesMin must be positive")
	return &Snapshotter{env: env, log: log, logBytesMin: logBytesMin, index: index, bytes: bytes, logBase: -log.TotalBytes()}
}

// Index is the index of the newest durable snapshot, 0 if none.
func (s *Snapshotter) Index() uint64 { return s.index }

// Counters are the snapshots' running totals since the node started.
func (s *Snapshotter) Counters() SnapshotCounters { return s.counters }

// Writing reports whether a snapshot is being written.
func (s *Snapshotter) Writing() bool { return s.w != nil }

// Force makes the next Due true; with simFail the snapshot fails at random
// (debug_simulate_fail).
func (s *Snapshotter) Force(simFail bool) { s.force, s.simFail = true, simFail }

// Due reports whether a snapshot should start. added counts the log bytes
// the caller has added since it started (GroupCommit.BytesAdded).
func (s *Snapshotter) Due(added int64) bool {
	since := added - s.logBase
	return s.w == nil && s.env.Clock.Now() >= s.retryAfter &&
		(s.force || (since >= s.logBytesMin && since >= s.bytes))
}

// Start begins a snapshot of state (which the snapshotter keeps; the caller
// passes a clone it no longer writes) as of log index. added is as for Due.
func (s *Snapshotter) Start(state *Store, index uint64, meta SnapshotMeta, added int64) {
	failAt := -1
	if s.simFail && Intn(s.env.Rand, 2) == 0 {
		failAt = 1
	}
	s.force, s.simFail = false, false
	w, err := startSnapshot(s.env.Disk, state, index, meta, failAt)
	if err != nil {
		s.Fail(err)
		return
	}
	w.mutation = s.mutation
	s.w = w
	s.failedBase, s.logBase = s.logBase, added
	s.startedAt = s.env.Clock.Now()
	s.env.logf("snapshot at index %d started (%d keys)", index, state.Len())
}

// Fail abandons the snapshot being written, or the one about to start,
// and schedules the next attempt.
func (s *Snapshotter) Fail(err error) {
	s.env.logf("snapshot failed, the log stays whole (will retry): %v", err)
	s.counters.Failed++
	if s.w != nil {
		s.w.abort(s.env.Disk)
		s.w = nil
		s.logBase = s.failedBase
	}
	s.retryLater()
}

// retryLater schedules the next attempt after a failure.
func (s *Snapshotter) retryLater() {
	s.retryAfter = s.env.Clock.Now() + int64(min(snapshotRetryDelay<<min(s.failures, 6), snapshotRetryDelayMax))
	s.failures++
}

// Step writes the next chunk of the snapshot in progress, if any. It
// returns the index of a snapshot that became durable in this step, or 0.
func (s *Snapshotter) Step() uint64 {
	if s.w == nil {
		return 0
	}
	done, err := s.w.step(s.env.Disk)
	if err != nil {
		s.Fail(err)
		return 0
	}
	if !done {
		s.armTimer()
		return 0
	}
	return s.finish()
}

func (s *Snapshotter) finish() uint64 {
	w := s.w
	s.w = nil
	if s.mutation == MutLogRemovedBeforeDirSync {
		_ = s.log.RemoveBefore(w.index)
	}
	if err := s.env.Disk.SyncDir(); err != nil {
		// The rename may or may not be durable; either way the log is whole,
		// so recovery works from whichever snapshot it finds. The file
		// goes, best effort: no later snapshot removes it (each removes
		// the one before it that became durable), and each failure in a
		// row left a copy of the whole store behind until the next start
		// (found by review). Not when it has the durable snapshot's name
		// (a snapshot at the same index, which Force can ask for): the
		// rename replaced that one, and the log it covers is gone.
		if w.index != s.index {
			_ = s.env.Disk.Remove(snapName(w.index))
		}
		s.env.logf("snapshot %s: directory sync failed (will retry): %v", snapName(w.index), err)
		s.retryLater()
		s.counters.Failed++
		s.logBase = s.failedBase
		return 0
	}
	prevIndex := s.index
	s.index, s.bytes = w.index, w.bytes
	s.failures = 0
	if prevIndex != s.index {
		// Best effort: there may be no earlier snapshot, and a leftover is
		// removed at the next start.
		_ = s.env.Disk.Remove(snapName(prevIndex))
	}
	if err := s.log.RemoveBefore(w.index); err != nil {
		s.env.logf("removing covered log segments (will retry at next snapshot): %v", err)
	}
	took := s.env.Clock.Now() - s.startedAt
	c := &s.counters
	c.Written++
	c.Nanos += took
	c.LastNanos, c.LastBytes, c.LastKeys = took, w.bytes, int(w.count)
	s.env.logf("snapshot at index %d written (%d keys, %d bytes) in %v", w.index, w.count, w.bytes, time.Duration(took))
	return w.index
}

// armTimer makes sure the loop takes another turn while a snapshot is being
// written, even when no requests arrive.
func (s *Snapshotter) armTimer() {
	if s.timer != nil {
		return
	}
	s.timer = s.env.Clock.AfterFunc(time.Millisecond, func() { s.timer = nil })
}

// Installed records a snapshot that arrived whole from elsewhere (a cluster
// leader's) and is durable under its name: it becomes the newest, and the
// older one goes. added is as for Due: the log since counts from here, as
// from a snapshot of the node's own. (Counted from the node's last own
// snapshot, the log it had before the install, which the install replaced,
// made the next one due at once: the node wrote again the state it had
// just received, found by review.)
func (s *Snapshotter) Installed(index uint64, bytes, added int64) {
	if s.w != nil {
		s.w.abort(s.env.Disk)
		s.w = nil
	}
	if s.index != index {
		_ = s.env.Disk.Remove(snapName(s.index))
	}
	s.index, s.bytes, s.logBase = index, bytes, added
}

// Close drops a snapshot in progress.
func (s *Snapshotter) Close() {
	if s.w != nil {
		s.w.abort(s.env.Disk)
		s.w = nil
	}
}

// Recovered is what RecoverSnapshot found on disk.
type Recovered struct {
	Store *Store // the newest snapshot's, or empty
	Index uint64 // its index, 0 without one
	Bytes int64
	Meta  SnapshotMeta
	// Names lists the directory's files after the cleanup: what the log
	// recovers from.
	Names []string
}

// RecoverSnapshot loads the newest snapshot of a data directory, removing
// unfinished and older ones. A read that fails or does not check out is
// retried a few times before it is believed: a transient read error is not
// damage.
func RecoverSnapshot(d Disk) (*Recovered, error) { return recoverSnapshot(d, MutNone) }

// recoverSnapshot is RecoverSnapshot with a planted mutation (a single
// node's SingleConfig.Mutation).
func recoverSnapshot(d Disk, mut Mutation) (*Recovered, error) {
	names, err := d.List()
	if err != nil {
		return nil, fmt.Errorf("listing data directory: %w", err)
	}
	var snaps []string
	r := &Recovered{Store: NewStore()}
	for _, name := range names {
		if _, ok := parseIndexName(name, snapPrefix, snapTmpSuffix); ok {
			// A snapshot that never reached its rename: never relied upon.
			if err := d.Remove(name); err != nil {
				return nil, fmt.Errorf("removing unfinished snapshot %s: %w", name, err)
			}
			continue
		}
		if _, ok := parseIndexName(name, snapPrefix, snapSuffix); ok {
			snaps = append(snaps, name)
		}
		r.Names = append(r.Names, name)
	}
	if len(snaps) == 0 {
		return r, nil
	}
	newest := snaps[len(snaps)-1]
	if mut == MutRecoverOldestSnapshot {
		newest = snaps[0]
	}
	for range readAttempts { // a transient read error is not damage
		if r.Store, r.Index, r.Meta, r.Bytes, err = readSnapshot(d, newest, mut); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if want, _ := parseIndexName(newest, snapPrefix, snapSuffix); want != r.Index {
		return nil, fmt.Errorf("%w: %s holds index %d", ErrCorrupt, newest, r.Index)
	}
	// The newest snapshot's name may be in the page cache only (a crash
	// came after its rename, before the directory sync). What follows
	// removes what it covers — older snapshots here, log segments in
	// OpenLog — so its entry must be durable first, or a power loss could
	// keep the removals and lose the snapshot (the simulator's directory
	// entries, lost one by one, found it).
	if err := d.SyncDir(); err != nil {
		return nil, fmt.Errorf("syncing the data directory before removing what %s covers: %w", newest, err)
	}
	older := snaps[:len(snaps)-1]
	for _, old := range older {
		if err := d.Remove(old); err != nil {
			return nil, fmt.Errorf("removing old snapshot %s: %w", old, err)
		}
	}
	r.Names = slices.DeleteFunc(r.Names, func(name string) bool { return slices.Contains(older, name) })
	return r, nil
}

// ReadSnapshot checks and decodes the snapshot file called name (a store,
// its index, its meta and the file's size) as recovery does: a chunk at a
// time where d can, so that the file is never held whole beside the store
// it fills. A cluster node reading back a snapshot it received can use it
// in place of ReadFile and LoadSnapshot.
func ReadSnapshot(d Disk, name string) (*Store, uint64, SnapshotMeta, int64, error) {
	return readSnapshot(d, name, MutNone)
}

// readSnapshot reads and decodes the snapshot file name, a chunk at a time
// where d can (RangeReader), so that the file is never held whole beside
// the store it fills (snapshotReadBytes); it also returns the file's size.
func readSnapshot(d Disk, name string, mut Mutation) (*Store, uint64, SnapshotMeta, int64, error) {
	rr, ok := d.(RangeReader)
	if !ok {
		data, err := d.ReadFile(name)
		if err != nil {
			return nil, 0, SnapshotMeta{}, 0, fmt.Errorf("reading %s: %w", name, err)
		}
		s, index, meta, err := loadSnapshotWith(name, data, mut)
		return s, index, meta, int64(len(data)), err
	}
	h, err := rr.OpenRead(name)
	if err != nil {
		return nil, 0, SnapshotMeta{}, 0, fmt.Errorf("reading %s: %w", name, err)
	}
	s, index, meta, err := loadSnapshotFrom(name, h, snapshotReadBytes, mut)
	size := h.Size()
	// Not deferred: no I/O may run while a simulated crash unwinds.
	h.Close()
	return s, index, meta, size, err
}

// SnapshotName is the file name of the snapshot at index.
func SnapshotName(index uint64) string { return snapName(index) }
