package realnet

import (
	"dkv/core"
	"fmt"
)

// inlineSyncRequestsMax is the load under which an fsync runs on the loop
// itself: with this few requests in flight there is no next batch to gather
// during the fsync, and handing it to another goroutine and back only adds
// two wake-ups to every write's latency.
const inlineSyncRequestsMax = 1

// syncDisk hands the node core.AsyncFiles. Where the event loops wait
// holding their processors (Host.loopsWait, the default on Linux with two
// or more), every SyncAsync syncs inline and reports in the next turn: the
// batch that gathers during the fsync is the next group commit. Elsewhere,
// under load, each SyncAsync runs the fsync on a goroutine of its own and
// posts the outcome back into the loop, so the loop goes on serving while
// the disk works: pipelined group commit; with a lone request in flight it
// syncs inline there too.
type syncDisk struct {
	core.Disk
	h *Host
}

func (d syncDisk) Create(name string) (core.File, error) {
	f, err := d.Disk.Create(name)
	if err != nil {
		return nil, err
	}
	return &syncFile{File: f, h: d.h, name: name, cutTo: -1}, nil
}

func (d syncDisk) OpenAppend(name string) (core.File, error) {
	f, err := d.Disk.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return &syncFile{File: f, h: d.h, name: name, cutTo: -1}, nil
}

// DropCache implements core.CacheDropper where the disk does (Linux,
// FreeBSD); elsewhere there is no call that drops a file's clean pages,
// and nothing is done.
func (d syncDisk) DropCache(name string) error {
	if cd, ok := d.Disk.(core.CacheDropper); ok {
		return cd.DropCache(name)
	}
	return nil
}

// OpenRead implements core.RangeReader where the disk does (disk.Dir);
// elsewhere the file is read whole and served from memory.
func (d syncDisk) OpenRead(name string) (core.ReadHandle, error) {
	return core.OpenRead(d.Disk, name)
}

type syncFile struct {
	core.File
	h    *Host
	name string // for the fsync metrics
	// cutTo is where the next SyncAsync cuts the file if its fsync fails
	// (core.SyncCutter); -1: nowhere.
	cutTo int64
}

// heldSyncer is a file that can fsync without the runtime's system-call
// wrapper, for a goroutine that holds its processor anyway (disk.File.
// SyncHeld).
type heldSyncer interface {
	SyncHeld() error
}

// Sync implements core.File, timing the fsync for the host's metrics.
func (f *syncFile) Sync() error { return f.timed(f.File.Sync) }

// syncHeld is Sync where the loops wait (Host.loopsWait): the turns run
// on a loop, which holds its processor while it blocks, so the fsync
// skips the runtime's wrapper too, where the file can (heldSyncer).
// Around start and shutdown a turn may run on Run's goroutine instead,
// which then holds a processor for that fsync: the other one is free.
func (f *syncFile) syncHeld() error {
	if hs, ok := f.File.(heldSyncer); ok {
		f.h.heldSyncs.Add(1)
		return f.timed(hs.SyncHeld)
	}
	return f.Sync()
}

func (f *syncFile) timed(sync func() error) error {
	m := f.h.metrics
	if m == nil {
		return sync()
	}
	start := monoNow()
	err := sync()
	m.Fsync(f.name, monoNow()-start, err)
	return err
}

var _ core.AsyncFile = (*syncFile)(nil)

// SyncAsync implements core.AsyncFile. It is called on the loop goroutine.
// The node keeps at most one in flight per file and appends meanwhile; an
// fdatasync that starts late covers those appends too, which is harmless.
// Where the event loops wait holding their processors (Host.loopsWait) it
// always syncs inline, and raw (syncHeld), as Redis does: the requests
// that arrive meanwhile wait in their sockets and the next turn takes
// them together, where a background fsync would have the loop wake for
// each as it comes.
func (f *syncFile) SyncAsync(done func(error)) {
	h := f.h
	cutTo := f.cutTo
	f.cutTo = -1
	if h.loopsWait {
		start := monoNow()
		err := f.cutIfFailed(f.syncHeld(), cutTo)
		h.gather.noteSync(monoNow() - start)
		h.local = append(h.local, func() { done(err) })
		return
	}
	if h.requestsInFlight.Load() <= inlineSyncRequestsMax {
		err := f.cutIfFailed(f.Sync(), cutTo)
		h.local = append(h.local, func() { done(err) })
		return
	}
	h.syncsInFlight.Add(1)
	h.backgroundSyncs.Add(1)
	go func() {
		// The node writes nothing to the file while its sync is in
		// flight (core.GroupCommit), so the cut races with nothing.
		err := f.cutIfFailed(f.Sync(), cutTo)
		if !h.post(func() {
			h.syncsInFlight.Add(-1)
			done(err)
		}) {
			h.syncsInFlight.Add(-1) // the loop is gone; nobody waits for the reply
		}
	}()
}

// CutOnSyncFailure implements core.SyncCutter: the next SyncAsync, if its
// fsync fails, truncates the file to size before it reports.
func (f *syncFile) CutOnSyncFailure(size int64) { f.cutTo = size }

// cutIfFailed cuts the file back to cutTo (if set, ≥ 0) after a failed sync,
// at once, on the goroutine that saw the failure (core.SyncCutter says why).
// A failed cut is added to err; the node stops on err either way.
func (f *syncFile) cutIfFailed(err error, cutTo int64) error {
	if err == nil || cutTo < 0 {
		return err
	}
	if cutErr := f.Truncate(cutTo); cutErr != nil {
		return fmt.Errorf("%w; cutting the unsynced batch back out failed too (%v)", err, cutErr)
	}
	if syncErr := f.Sync(); syncErr != nil {
		return fmt.Errorf("%w; syncing the log cut back failed too (%v)", err, syncErr)
	}
	return err
}

// Reserve passes core.Reserver through to the disk's file, where it has it.
func (f *syncFile) Reserve(n int64) error {
	if r, ok := f.File.(core.Reserver); ok {
		return r.Reserve(n)
	}
	return nil
}
