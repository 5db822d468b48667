package mesh_test

import (
	"strings"
	"testing"
	"time"

	"dkv/core"
)

// A node on a new data directory whose calendar is more than the max
// offset behind its peers', or ahead of them, never hears them name its
// incarnation: one side drops the other's every message. Its held writes
// are refused naming the clocks, not only peers that "have not answered",
// which sent an operator after nodes that were up and talking.
func TestNewNodeOutOfStepSaysSoWhenItRefusesWrites(t *testing.T) {
	for _, skew := range []time.Duration{-3 * time.Second, 3 * time.Second} {
		w := newWorld(t, 3, nil)
		w.run(3 * time.Second)
		w.skew[0] = int64(skew)
		w.restart(0, true)
		w.run(5 * time.Second)
		v := "x"
		r := w.do(0, &core.Request{Op: core.OpSet, Key: "k", Value: &v})
		if r.OK || r.Error.Code != core.CodeUnavailable {
			t.Fatalf("calendar off by %v: a write on the new directory answered %+v; want unavailable", skew, r)
		}
		if !strings.Contains(r.Error.Message, "check the clocks") || !strings.Contains(r.Error.Message, "max offset") {
			t.Errorf("calendar off by %v: the refusal does not name the clocks: %s", skew, r.Error.Message)
		}
	}
}
