package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"dkv/internal/nodeproc"
)

// The cluster benchmark runs end to end and reports every figure; the
// figures themselves are for people, not for a timed test.
func TestClusterBenchReportsEveryFigure(t *testing.T) {
	bin, err := nodeproc.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := clusterBench(clusterBenchConfig{
		clients: 4, duration: 400 * time.Millisecond, warmup: 50 * time.Millisecond, slices: 2,
		valueBytes: 100, space: 1000, dir: t.TempDir(), nodeBin: bin,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.single.ops == 0 || res.cluster.ops == 0 {
		t.Errorf("no ops measured: single %d, cluster %d\n%s", res.single.ops, res.cluster.ops, out.String())
	}
	for _, want := range []string{"single node", "3-node cluster", "throughput: cluster / single", "p99:        cluster / single"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
