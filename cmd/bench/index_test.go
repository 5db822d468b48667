package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The index benchmark runs end to end, a second indexed server included,
// and reports every figure; the figures themselves are for people.
func TestIndexBenchReportsEveryFigure(t *testing.T) {
	bin := testNodeBin(t)
	var out bytes.Buffer
	err := indexBench(indexBenchConfig{
		clusterBenchConfig: clusterBenchConfig{
			clients: 4, duration: 400 * time.Millisecond, warmup: 50 * time.Millisecond, slices: 2,
			space: 1000, dir: t.TempDir(), nodeBin: bin,
		},
		docs: 200, queries: 10, textBytes: 300, altFlags: "--gc-percent 50",
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		"without indexes", "with indexes (alt)", "page faults/op", "into empty stores", "into full stores", "settled", "write throughput: indexed / plain =",
		"by slice pair (adjacent in time), indexed / plain:", "alt / indexed =", "by slice pair, alt / indexed:",
		"recall@10 =", "search (all words)", "search_similar (top 10), settled",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
