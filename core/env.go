package core

import (
	"errors"
	"io"
	"time"
)

// NodeID names a node within a cluster or mesh. A single node is node 0.
type NodeID int

// Clock is the only source of time that node logic sees. Under realnet it is
// the OS monotonic clock; under sim it is virtual time advanced by the event
// queue.
type Clock interface {
	// Now returns nanoseconds since an arbitrary, fixed origin. It never
	// goes backwards on one node.
	Now() int64
	// AfterFunc arranges for f to run on the node's goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// WallClock is a Clock that also reads calendar time, which nodes on
// different machines can compare (Clock.Now's origin is per process). The
// mesh's hybrid logical clock needs it. Calendar time may jump either way (an
// operator or NTP sets it); node logic must not trust it to be monotonic.
type WallClock interface {
	Clock
	// Wall returns nanoseconds since the Unix epoch.
	Wall() int64
}

// Timer is a pending AfterFunc callback.
type Timer interface {
	// Stop prevents the callback from running if it has not run yet and
	// reports whether it did so.
	Stop() bool
}

// Network carries framed peer messages. Delivery is best effort: a message
// may be late, duplicated, reordered or lost, and the node must cope.
type Network interface {
	Send(to NodeID, msg []byte)
}

// Disk is a flat directory of files: the node's data directory. Every call is
// synchronous. Durability follows POSIX: file contents are durable only after
// File.Sync, and a create, rename or remove only after SyncDir.
type Disk interface {
	// List returns the names of the files in the directory, sorted.
	List() ([]string, error)
	// ReadFile returns the whole content of a file.
	ReadFile(name string) ([]byte, error)
	// Create makes a new empty file (truncating any existing one), open for
	// appending.
	Create(name string) (File, error)
	// OpenAppend opens an existing file for appending at its end.
	OpenAppend(name string) (File, error)
	Rename(from, to string) error
	Remove(name string) error
	// SyncDir makes creates, renames and removes durable.
	SyncDir() error
}

// File is an append-only open file.
type File interface {
	// Append writes p at the end of the file. On error an unknown prefix of
	// p may have been written; the caller truncates back.
	Append(p []byte) error
	// Sync makes everything appended so far durable (fdatasync). An error is
	// final: the unsynced data may be gone even if a later Sync succeeds.
	Sync() error
	// Truncate cuts the file to size bytes.
	Truncate(size int64) error
	// Overwrite writes p over bytes the file holds already, from off
	// (off+len(p) <= Size). A file system that overwrites in place (ext4,
	// xfs, tmpfs; not a copy-on-write one) needs no new space for it, so
	// it works on a full disk. As for Append, the bytes are durable only
	// after Sync, a crash before may leave each sector old or new, and on
	// error an unknown part of p may have been written.
	Overwrite(p []byte, off int64) error
	// Size is the current length, including unsynced data.
	Size() int64
	Close() error
}

// AsyncFile is a File that can sync in the background. A host that offers it
// lets the node go on serving while the disk syncs, so the next batch builds
// up during the fsync of the last: pipelined group commit. The host chooses:
// realnet syncs inline where its event loops wait holding their processors
// (a loop that woke for each request as it came cost more than the overlap
// saved), and reports in a later turn all the same.
type AsyncFile interface {
	File
	// SyncAsync starts making everything appended so far durable and calls
	// done with the outcome, on the node's goroutine, in a later turn. At most
	// one SyncAsync per file is in flight; Append may be called meanwhile.
	// An error is final, as for Sync.
	SyncAsync(done func(error))
}

// SyncCutter is an AsyncFile that can cut a failed sync's data back out at
// once. CutOnSyncFailure(size), called just before SyncAsync, asks that if
// that sync fails, the file be truncated to size (and synced) before the
// failure is reported: GroupCommit.cutUnsynced says why the batch must go,
// and a process that dies between the failed fsync and a cut made in a
// later turn would leave it behind for its restart to read. The window
// left is the time between the failed fsync and the truncate, on one
// goroutine.
type SyncCutter interface {
	CutOnSyncFailure(size int64)
}

// CacheDropper is a Disk that can drop a file's clean pages from the page
// cache, so that the next read returns what the medium holds. Recovery does
// so before it reads what an earlier life may have failed to sync: ext4
// marks the pages a failed fsync could not write clean and keeps them
// readable, and a later fsync reports success without writing them. A
// process that died between such a failure and its cut (SyncCutter), or a
// start whose own fsync of a crashed process's tail failed that way, left
// pages a restart would read as written and serve, though a power loss
// takes them back. Dropped, they read as what the medium holds (zeros where
// the file grew, a torn tail recovery cuts). Dirty pages are not dropped:
// the crashed process's unsynced writes stay, for recovery's fsync.
type CacheDropper interface {
	DropCache(name string) error
}

// dropCache drops name's clean pages if d can. It is a safeguard, not a
// step recovery depends on: a failure is logged and the start goes on.
func dropCache(d Disk, name string, logf func(string, ...any)) {
	if cd, ok := d.(CacheDropper); ok {
		if err := cd.DropCache(name); err != nil {
			logf("could not drop the cached pages of %s before reading it (%v): a write an earlier life failed to sync may be read as written", name, err)
		}
	}
}

// Reserver is a File that can zero-fill space past its end ahead of the
// writes that will land there, so that syncing them needs no metadata update
// (on Linux, an fdatasync that flushes data alone). Reserved zeros are part
// of the file: ReadFile returns them after the data, which recovery reads as
// a zeroed tail, and Truncate drops them.
type Reserver interface {
	File
	// Reserve makes sure about n zero bytes follow Size. It is an
	// optimisation: an error leaves the file usable.
	Reserve(n int64) error
}

// RangeReader is a Disk that can read a file a piece at a time, so that a
// large file (a snapshot a cluster leader sends a follower) need not be
// read whole in one call, nor held whole in memory, to be sent in chunks.
type RangeReader interface {
	// OpenRead opens an existing file for reading. The handle reads the
	// file it opened, as a POSIX descriptor does: a later rename or
	// remove of the name, or a new file under it, does not change what it
	// reads. A missing file is an error.
	OpenRead(name string) (ReadHandle, error)
}

// ReadHandle is a file open for reading. The caller closes it; a handle
// holds a descriptor (and a removed file's space) until then.
type ReadHandle interface {
	// ReadAt reads len(p) bytes at off, as io.ReaderAt: fewer only with
	// an error. A read that reaches the end of the file returns the bytes
	// before it and io.EOF; at or past the end, 0 and io.EOF. Any other
	// error (an unreadable sector) is the read's failure; a later read may
	// succeed.
	ReadAt(p []byte, off int64) (int, error)
	// Size is the file's length when it was opened.
	Size() int64
	Close() error
}

// OpenRead opens name for ranged reads where d can (RangeReader). A Disk
// without it reads the file whole, and the handle serves that copy from
// memory.
func OpenRead(d Disk, name string) (ReadHandle, error) {
	if rr, ok := d.(RangeReader); ok {
		return rr.OpenRead(name)
	}
	data, err := d.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return MemHandle(data), nil
}

// memHandle is a ReadHandle over bytes in memory.
type memHandle struct{ data []byte }

// MemHandle returns a ReadHandle that reads data, for tests and for a Disk
// without RangeReader.
func MemHandle(data []byte) ReadHandle { return &memHandle{data: data} }

func (h *memHandle) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("ReadAt: negative offset")
	}
	if off >= int64(len(h.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *memHandle) Size() int64  { return int64(len(h.data)) }
func (h *memHandle) Close() error { h.data = nil; return nil }

// Rand is the node's seeded source of randomness.
type Rand interface {
	// Uint64 returns a pseudo-random 64-bit value.
	Uint64() uint64
}

// Intn returns a pseudo-random int in [0, n) from r. n must be positive.
func Intn(r Rand, n int) int {
	assert(n > 0, "Intn: n must be positive")
	return int(r.Uint64() % uint64(n))
}

// Env is everything a node may touch of the outside world.
type Env struct {
	ID      NodeID
	Clock   Clock
	Network Network
	Disk    Disk
	Rand    Rand
	// Logf writes one operator-facing log line. It may be nil.
	Logf func(format string, args ...any)
}

func (e *Env) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// assert panics when an invariant that protects data does not hold. A broken
// invariant means a bug; carrying on could corrupt what is on disk.
func assert(ok bool, msg string) {
	if !ok {
		panic("dkv: assertion failed: " + msg)
	}
}
