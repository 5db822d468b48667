package core_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"dkv/core"
)

// A single node's directory with a snapshot and no log segment lost its
// log (segments deleted to free space, a backup of the snapshot alone):
// the node never leaves one so, since the log rolls to a segment named one
// past the snapshot, durably, before the snapshot starts, and that
// segment is never removed. The start used to make a fresh segment and
// serve the snapshot's state as the whole, the writes acknowledged after
// it gone without a word; it is refused, naming the file whose creation
// accepts the loss.
func TestSnapshotWithoutItsLogIsRefused(t *testing.T) {
	h := newHarness(t, smallSnapshots())
	for i := range 300 {
		mustOK(t, h.do(set(fmt.Sprint("k", i%20), fmt.Sprint(i))))
	}
	h.idle()
	snap := snapshotFile(t, h)
	mustOK(t, h.do(set("after", "the snapshot")))
	names, _ := h.disk.List()
	var first string
	for _, name := range names {
		if core.IsLogFile(name) {
			if first == "" {
				first = name
			}
			h.disk.Remove(name)
		}
	}
	if first == "" {
		t.Fatal("no log segment")
	}
	h.disk.SyncDir()
	h.disk.Crash()
	err := h.start()
	if !errors.Is(err, core.ErrCorrupt) || !strings.Contains(err.Error(), snap) || !strings.Contains(err.Error(), "create the empty file wal-") {
		t.Fatalf("start without the log: %v; want ErrCorrupt naming %s and the file to create", err, snap)
	}
	// The operator who accepts the loss creates the file the error names.
	name := err.Error()[strings.LastIndex(err.Error(), "wal-"):]
	name = name[:strings.Index(name, " ")]
	f, cerr := h.disk.Create(name)
	if cerr != nil {
		t.Fatal(cerr)
	}
	f.Close()
	h.disk.SyncDir()
	if err := h.start(); err != nil {
		t.Fatalf("start with the empty segment: %v", err)
	}
	if h.node.Store().Len() == 0 {
		t.Fatal("the snapshot's keys are gone")
	}
}
