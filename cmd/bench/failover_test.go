package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The failover benchmark, cut short: real SIGKILLs (and SIGTERMs, which
// hand the office over) of a real leader, each followed by a write
// acknowledged by another node.
func TestFailoverBench(t *testing.T) {
	for _, stop := range []string{"kill", "term"} {
		t.Run(stop, func(t *testing.T) { failoverBench(t, stop) })
	}
}

// failoverBench runs the benchmark, stopping the leader by stop (--stop).
func failoverBench(t *testing.T, stop string) {
	bin := testNodeBin(t)
	var out bytes.Buffer
	res, err := failover(failoverConfig{
		kills: 2, writers: 2, pause: 5 * time.Millisecond, timeout: 30 * time.Second,
		dir: t.TempDir(), nodeBin: bin, stop: stop,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res.acked) != 2 || len(res.elected)+res.unseen != 2 {
		t.Fatalf("%d failovers timed, want 2\n%s", len(res.acked), out.String())
	}
	for _, want := range []string{"first acknowledged write", "another leader in status", "median", signalName(stop)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
