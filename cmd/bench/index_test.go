package main

import (
	"bytes"
	"strings"
	"testing"
)

// The index benchmark runs end to end, a second indexed server included,
// and reports every figure; the figures themselves are for people.
func TestIndexBenchReportsEveryFigure(t *testing.T) {
	var out bytes.Buffer
	err := indexBench(indexBenchConfig{
		clusterBenchConfig: shortRun(t, 4),
		docs:               200,
		queries:            10,
		textBytes:          300,
		altFlags:           "--gc-percent 50",
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
