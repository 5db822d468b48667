package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The mesh benchmark runs end to end and reports every figure; the
// figures themselves are for people, not for a timed test.
func TestMeshBenchReportsEveryFigure(t *testing.T) {
	var out bytes.Buffer
	res, err := meshBench(meshBenchConfig{
		clusterBenchConfig: shortRun(t, 6),
		lagEvery:           5,
		lagPoll:            time.Millisecond,
		catchupKeys:        2000,
		catchupBatch:       100,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.single.ops == 0 || res.mesh.ops == 0 || len(res.lag) == 0 || res.catchup <= 0 {
		t.Errorf("figures missing: single %d ops, mesh %d ops, %d lag probes, catch-up %v\n%s",
			res.single.ops, res.mesh.ops, len(res.lag), res.catchup, out.String())
	}
	for _, want := range []string{"single node", "3-node mesh", "mesh node 2", "throughput: mesh / single", "replication lag", "holds all"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
