package mesh_test

import (
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// A mesh node whose log segments were removed, its snapshot kept, does
// not start: it would serve the snapshot without the writes taken after
// it, and bring back to the whole mesh the keys deleted since.
func TestSnapshotWithoutItsLogIsRefused(t *testing.T) {
	small := func(cfg *mesh.Config) { cfg.SnapshotLogBytesMin, cfg.SegmentBytesMax = 512, 256 }
	w := newWorld(t, 3, small)
	w.run(2 * time.Second)
	for i := range 40 {
		w.set(0, "k", strings.Repeat("v", 10+i))
	}
	w.run(2 * time.Second)
	w.nodes[0].Close()
	w.disks[0].ProcessCrash()
	names, err := w.disks[0].List()
	if err != nil {
		t.Fatal(err)
	}
	snaps, logs := 0, 0
	for _, name := range names {
		switch {
		case strings.HasPrefix(name, "snap-"):
			snaps++
		case core.IsLogFile(name):
			logs++
			if err := w.disks[0].Remove(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	if snaps == 0 || logs == 0 {
		t.Fatalf("the directory holds %d snapshots and %d log segments; the test needs both: %v", snaps, logs, names)
	}
	cfg := mesh.DefaultConfig(0, w.ids)
	cfg.MeshID = 9
	small(&cfg)
	nd, err := mesh.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = nd.Start(w.envs[0])
	if err == nil || !strings.Contains(err.Error(), "no log segment follows it") || !strings.Contains(err.Error(), "empty the data directory") {
		t.Fatalf("start on a snapshot without its log: %v, want a refusal that says to empty the directory", err)
	}
}
