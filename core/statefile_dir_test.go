package core_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"dkv/core"
	"dkv/sim"
)

// A state file whose first save was renamed into place but whose directory
// was not synced (the process died there) is opened after a restart from
// the page cache; the node then acts on that state (votes in its term), so
// the open makes its name durable as well as its bytes. Without it, a power
// loss later took the name back while a log file created after it kept its
// own: the cluster node found a log without raft-state and refused to start
// (the simulator's seed 1950265 of 3,000 requests, five-node cluster).
func TestStateFileOpenSyncsItsName(t *testing.T) {
	saved := []byte("term 7, vote 2")
	// The bytes of a file holding saved, as a save writes them.
	src := sim.NewDisk(rand.New(rand.NewPCG(1, 1)), sim.DiskFaults{})
	f, _, err := core.OpenStateFile(src, "raft-state", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Save(saved); err != nil {
		t.Fatal(err)
	}
	f.Close()
	content, _ := src.DurableBytes("raft-state")

	d := sim.NewDisk(rand.New(rand.NewPCG(2, 2)), sim.DiskFaults{}) // a power loss keeps no unsynced directory change
	tmp, err := d.Create("raft-state.tmp")
	if err != nil {
		t.Fatal(err)
	}
	if err := tmp.Append(content); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Sync(); err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	if err := d.Rename("raft-state.tmp", "raft-state"); err != nil {
		t.Fatal(err)
	}
	d.ProcessCrash() // before the directory sync
	f, state, err := core.OpenStateFile(d, "raft-state", t.Logf)
	if err != nil || !bytes.Equal(state, saved) {
		t.Fatalf("open after the process crash: %q, %v; want %q", state, err, saved)
	}
	f.Close()
	d.Crash() // a power loss
	f, state, err = core.OpenStateFile(d, "raft-state", t.Logf)
	if err != nil || !bytes.Equal(state, saved) {
		t.Fatalf("open after a power loss: %q, %v; want %q, which the node acted on", state, err, saved)
	}
	f.Close()
}
