package realnet

import (
	"testing"
	"time"
)

// worthWaiting waits through its probe, then on only while the requests
// that came, each gaining a sync, outweigh the wait of those in hand.
func TestWorthWaiting(t *testing.T) {
	const us = time.Microsecond
	for _, tc := range []struct {
		came, inHand     int
		elapsed, syncAvg time.Duration
		want             bool
	}{
		{0, 400, 20 * us, 250 * us, true},   // within the probe (31 µs)
		{0, 1, 40 * us, 250 * us, false},    // nothing came
		{10, 30, 40 * us, 250 * us, true},   // 10 × 250 ≥ 30 × 40: 50 clients, one request each
		{16, 400, 40 * us, 250 * us, false}, // 16 × 250 < 400 × 40: 16 pipelined a client
		{8, 40, 50 * us, 250 * us, true},    // just worth it: 2,000 ≥ 2,000
		{8, 41, 50 * us, 250 * us, false},
	} {
		probe := max(tc.syncAvg/gatherProbeShare, gatherProbeMin)
		if got := worthWaiting(tc.came, tc.inHand, tc.elapsed, probe, tc.syncAvg); got != tc.want {
			t.Errorf("came %d, in hand %d, after %v (sync %v): %v, want %v", tc.came, tc.inHand, tc.elapsed, tc.syncAvg, got, tc.want)
		}
	}
}
