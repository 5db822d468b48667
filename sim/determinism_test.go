package sim

import "testing"

// TestDeterminism runs seeds twice and compares their trace hashes: a run
// must be a pure function of its seed, or a failing seed could not be
// replayed. The trace covers every delivery, turn, reply (with its value),
// crash, fault and log line, so any divergence shows.
func TestDeterminism(t *testing.T) {
	skipWhenReplaying(t)
	n := 100
	if testing.Short() {
		n = 10
	}
	var seeds []uint64
	for i := 0; i < n; i++ {
		seeds = append(seeds, uint64(1000+i))
	}
	base := Config{Ops: 500, NoReport: true}
	first := runSeeds(seeds, base)
	second := runSeeds(seeds, base)
	hashes := map[uint64]uint64{}
	for i, seed := range seeds {
		a, b := first[i], second[i]
		if a.Hash != b.Hash || a.Ops != b.Ops || a.Steps != b.Steps {
			t.Errorf("seed %d is not deterministic: hash %016x vs %016x, %d vs %d ops, %d vs %d events\n  replay: %s",
				seed, a.Hash, b.Hash, a.Ops, b.Ops, a.Steps, b.Steps, ReplayCommand(seed))
		}
		if other, dup := hashes[a.Hash]; dup {
			t.Errorf("seeds %d and %d have the same trace hash %016x: the trace does not tell runs apart", other, seed, a.Hash)
		}
		hashes[a.Hash] = seed
	}
	t.Logf("%d of %d seeds replayed to the same trace hash", len(seeds)-countFailed(t), len(seeds))
}

func countFailed(t *testing.T) int {
	if t.Failed() {
		return 1 // at least; the errors above say which
	}
	return 0
}

// TestTraceHashSeesChanges makes sure the hash covers the run's content:
// the same seed with one fault switched off must hash differently.
func TestTraceHashSeesChanges(t *testing.T) {
	skipWhenReplaying(t)
	for seed := uint64(1); seed <= 20; seed++ {
		a := Run(Config{Seed: seed, Ops: 200, NoReport: true})
		b := Run(Config{Seed: seed, Ops: 200, NoReport: true, Without: []string{"crash"}})
		if a.Mix.CrashEvery == 0 {
			continue
		}
		if a.Hash == b.Hash {
			t.Fatalf("seed %d: switching crashes off left the trace hash unchanged", seed)
		}
		return
	}
	t.Fatal("no seed among 1..20 has crashes on")
}
