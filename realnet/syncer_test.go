package realnet

import (
	"errors"
	"testing"

	"dkv/core"
)

// failingFile is a core.File whose first sync fails; it records the
// truncates and syncs made on it.
type failingFile struct {
	core.File
	size    int64
	syncs   int
	cuts    []int64
	syncErr error
}

func (f *failingFile) Sync() error {
	f.syncs++
	if f.syncs == 1 {
		return f.syncErr
	}
	return nil
}

func (f *failingFile) Truncate(size int64) error {
	f.cuts = append(f.cuts, size)
	f.size = size
	return nil
}

// A sync that fails cuts the file back to the size the node gave before
// it reports (core.SyncCutter): a process killed before the node's own cut,
// a turn later, left the batch for its restart to read back. A sync that
// works, or one with no size given, cuts nothing.
func TestFailedSyncCutsTheFileAtOnce(t *testing.T) {
	eio := errors.New("EIO")
	f := &failingFile{size: 300, syncErr: eio}
	sf := &syncFile{File: f, h: &Host{}, cutTo: -1}
	sf.CutOnSyncFailure(120)
	if err := sf.cutIfFailed(f.Sync(), sf.cutTo); !errors.Is(err, eio) {
		t.Fatalf("err = %v, want the sync's", err)
	}
	if len(f.cuts) != 1 || f.cuts[0] != 120 || f.syncs != 2 {
		t.Fatalf("cuts %v, syncs %d: want one cut to 120, synced after", f.cuts, f.syncs)
	}
	if err := sf.cutIfFailed(nil, 120); err != nil || len(f.cuts) != 1 {
		t.Fatalf("a sync that worked cut the file: %v, cuts %v", err, f.cuts)
	}
	if err := sf.cutIfFailed(eio, -1); !errors.Is(err, eio) || len(f.cuts) != 1 {
		t.Fatalf("a sync with no size given cut the file: %v, cuts %v", err, f.cuts)
	}
}
