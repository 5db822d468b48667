package realnet

import (
	"testing"

	"dkv/core"
	"dkv/disk"
)

// plainDisk is a core.Disk without RangeReader.
type plainDisk struct{ core.Disk }

// The node sees the disk through syncDisk: its ranged reads reach disk.Dir
// (embedding core.Disk hid them, and snapshots were read whole), and a disk
// without them is read whole.
func TestSyncDiskPassesRangedReads(t *testing.T) {
	dir, err := disk.Open(t.TempDir(), disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	f, err := dir.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Append([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct {
		d      core.Disk
		ranged bool
	}{{dir, true}, {plainDisk{dir}, false}} {
		var sd core.Disk = syncDisk{Disk: tc.d}
		h, err := core.OpenRead(sd, "f")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := h.(*disk.Reader); ok != tc.ranged {
			t.Fatalf("through syncDisk over %T, OpenRead gave %T", tc.d, h)
		}
		p := make([]byte, 5)
		if n, err := h.ReadAt(p, 0); n != 5 || err != nil || string(p) != "hello" {
			t.Fatalf("ReadAt = %d %v %q", n, err, p)
		}
		h.Close()
	}
	if _, err := core.OpenRead(syncDisk{Disk: dir}, "missing"); err == nil {
		t.Fatal("OpenRead of a missing file succeeded")
	}
}
