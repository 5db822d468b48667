package realnet

import (
	"sync/atomic"

	"dkv/core"
)

// syncDisk hands the node core.AsyncFiles: each SyncAsync runs the fsync on
// a goroutine of its own and posts the outcome back into the loop, so the
// loop goes on serving (and gathering the next batch) while the disk works.
type syncDisk struct {
	core.Disk
	post     func(event) bool
	inFlight *atomic.Int64 // syncs started and not yet delivered
}

func (d syncDisk) Create(name string) (core.File, error) {
	f, err := d.Disk.Create(name)
	if err != nil {
		return nil, err
	}
	return &syncFile{File: f, d: d}, nil
}

func (d syncDisk) OpenAppend(name string) (core.File, error) {
	f, err := d.Disk.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return &syncFile{File: f, d: d}, nil
}

type syncFile struct {
	core.File
	d syncDisk
}

var _ core.AsyncFile = (*syncFile)(nil)

// SyncAsync implements core.AsyncFile. The node keeps at most one in flight
// per file and appends meanwhile; an fdatasync that starts late covers those
// appends too, which is harmless.
func (f *syncFile) SyncAsync(done func(error)) {
	f.d.inFlight.Add(1)
	go func() {
		err := f.File.Sync()
		if !f.d.post(func() {
			f.d.inFlight.Add(-1)
			done(err)
		}) {
			f.d.inFlight.Add(-1) // the loop is gone; nobody waits for the reply
		}
	}()
}
