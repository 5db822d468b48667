package sim

import (
	"math/rand/v2"
	"testing"
	"time"

	"dkv/mesh"
)

// meshBudget is the mesh's CI budget: seeds 1..N, plus a few drawn afresh
// each run (printed, so a failure can be replayed with -mode=mesh -seed=N).
// `go run ./cmd/sim --mode mesh --seeds 10000` runs many more.
const meshBudget, meshRandom = 200, 5

func TestSimMesh(t *testing.T) {
	skipWhenReplaying(t)
	n := meshBudget
	if testing.Short() {
		n = 20
	}
	var seeds []uint64
	for i := 1; i <= n; i++ {
		seeds = append(seeds, uint64(i))
	}
	var random []uint64
	for range meshRandom {
		random = append(random, rand.Uint64()%1_000_000_000)
	}
	t.Logf("seeds 1..%d and random seeds %v", n, random)
	seeds = append(seeds, random...)
	start := time.Now()
	results := runSeeds(seeds, Config{Mode: "mesh", ReportDir: "testdata/reports"})
	ops, failed, overwritten := 0, 0, 0
	for _, r := range results {
		ops += r.Ops
		overwritten += r.MeshOverwritten
		if r.Failed() {
			failed++
			t.Errorf("%s", r.Report())
		}
	}
	t.Logf("%d seeds, %d failed, %d client ops (%d acknowledged writes overwritten by concurrent ones) in %v",
		len(seeds), failed, ops, overwritten, time.Since(start).Round(time.Millisecond))
}

// TestMeshDeterminism: a mesh run, with its anti-entropy timers, skewed
// calendar clocks and quorum waits, is a pure function of its seed too.
func TestMeshDeterminism(t *testing.T) {
	skipWhenReplaying(t)
	var seeds []uint64
	for i := 0; i < 30; i++ {
		seeds = append(seeds, uint64(7000+i))
	}
	base := Config{Mode: "mesh", Ops: 300, NoReport: true}
	first, second := runSeeds(seeds, base), runSeeds(seeds, base)
	for i, seed := range seeds {
		if a, b := first[i], second[i]; a.Hash != b.Hash || a.Steps != b.Steps {
			t.Errorf("mesh seed %d is not deterministic: hash %016x vs %016x, %d vs %d events", seed, a.Hash, b.Hash, a.Steps, b.Steps)
		}
	}
}

// TestCatchesMeshMutations plants each of the mesh's bugs (mesh.Mutations)
// and requires the simulator to catch it within 100 seeds, by the check
// that names the broken promise.
func TestCatchesMeshMutations(t *testing.T) {
	skipWhenReplaying(t)
	for _, m := range mesh.Mutations() {
		t.Run(m.String(), func(t *testing.T) {
			t.Parallel()
			var want []string
			switch m {
			case mesh.MutWallClockLWW:
				// A client's second write, taken by a node whose calendar
				// clock is behind, loses to its first.
				want = []string{"client-order", "stamps", "resurrection", "durability"}
			case mesh.MutCollectEarly:
				// A collected tombstone's key is refused back on one node
				// and kept on another.
				want = []string{"convergence", "resurrection", "durability"}
			case mesh.MutHLCNotPersisted:
				// A restarted node whose calendar clock stepped back
				// stamps below what it stamped before.
				want = []string{"node-clock", "stamps", "resurrection", "client-order"}
			case mesh.MutSkipLastRange:
				want = []string{"convergence"}
			case mesh.MutRefuseBelowHorizon:
				// A wiped node refuses the items it must rebuild from.
				want = []string{"convergence"}
			case mesh.MutBulkDeleteLocalOnly:
				// A value the deleting node had not heard of survives the
				// acknowledged delete on every node.
				want = []string{"durability", "resurrection"}
			default:
				t.Fatalf("mutation %s has no expected check here", m)
			}
			seed, caught := catchMutation(t, "mesh", m.String(), 100, want)
			if !caught {
				t.Fatalf("mutation %s went unnoticed for 100 seeds", m)
			}
			t.Logf("caught at seed %d", seed)
		})
	}
}
