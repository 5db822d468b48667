package sim

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The cluster's CI budget: seeds 1..N of each cluster mode, plus a few
// drawn afresh each run (printed, so a failure can be replayed with
// -mode=cluster -seed=N). `go run ./cmd/sim --mode cluster --seeds 10000`
// runs many more.
var clusterBudget = []struct {
	mode          string
	seeds, random int
}{
	{"cluster", 300, 5},
	{"cluster5", 60, 2},
}

func TestSimCluster(t *testing.T) {
	skipWhenReplaying(t)
	for _, b := range clusterBudget {
		t.Run(b.mode, func(t *testing.T) {
			n := b.seeds
			if testing.Short() {
				n = 20
			}
			var seeds []uint64
			for i := 1; i <= n; i++ {
				seeds = append(seeds, uint64(i))
			}
			var random []uint64
			for range b.random {
				random = append(random, rand.Uint64()%1_000_000_000)
			}
			t.Logf("seeds 1..%d and random seeds %v", n, random)
			seeds = append(seeds, random...)
			start := time.Now()
			results := runSeeds(seeds, Config{Mode: b.mode, ReportDir: "testdata/reports"})
			ops, failed := 0, 0
			for _, r := range results {
				ops += r.Ops
				if r.Failed() {
					failed++
					t.Errorf("%s", r.Report())
				}
			}
			t.Logf("%d seeds, %d failed, %d client ops in %v", len(seeds), failed, ops, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestClusterDeterminism: a cluster run, with its three nodes' timers,
// elections and snapshot transfers, is a pure function of its seed too.
func TestClusterDeterminism(t *testing.T) {
	skipWhenReplaying(t)
	var seeds []uint64
	for i := 0; i < 30; i++ {
		seeds = append(seeds, uint64(5000+i))
	}
	base := Config{Mode: "cluster", Ops: 300, NoReport: true}
	first, second := runSeeds(seeds, base), runSeeds(seeds, base)
	for i, seed := range seeds {
		if a, b := first[i], second[i]; a.Hash != b.Hash || a.Steps != b.Steps {
			t.Errorf("cluster seed %d is not deterministic: hash %016x vs %016x, %d vs %d events", seed, a.Hash, b.Hash, a.Steps, b.Steps)
		}
	}
}
