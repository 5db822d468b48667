package mesh_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"dkv/sim"
)

// A mesh node whose disk is full cannot save the clock's high-water mark
// that a completed pass needs, so the pass does not count. It tries again
// an anti-entropy interval later and says so once: a pass retried at once
// spun a core and wrote 3,800 log lines a second (found by review).
func TestFullDiskNeitherSpinsNorFloodsTheLog(t *testing.T) {
	w := newWorld(t, 3, nil)
	var lines []string
	w.envs[0].Logf = func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	w.restart(0, false)
	w.run(3 * time.Second)
	w.set(1, "k", "v")
	w.run(2 * time.Second)
	w.disks[0].SetFaults(sim.DiskFaults{CapacityBytes: w.disks[0].Used()})
	sent := 0
	w.tap = func(m wmsg) {
		if m.from == 0 {
			sent++
		}
	}
	w.set(1, "k2", "v2") // items node 0 cannot store, and a clock that moves
	w.run(10 * time.Second)
	saves := 0
	for _, l := range lines {
		if strings.Contains(l, "cannot save") {
			saves++
		}
	}
	if saves != 1 {
		t.Errorf("%d lines say a save failed, want 1: %q", saves, lines)
	}
	// Two peers, a round each an interval (1 s): a few messages a round.
	if sent > 200 {
		t.Errorf("node 0 sent %d messages in 10 s on a full disk: its passes spin", sent)
	}
	w.disks[0].SetFaults(sim.DiskFaults{})
	w.run(5 * time.Second)
	if got := w.held(0, "k2"); got == "" || !strings.HasPrefix(got, "v2@") {
		t.Errorf("node 0 holds k2 = %q after its disk has room again", got)
	}
}
