package sim

import (
	"math/rand/v2"
	"testing"
	"time"

	"dkv/checks"
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
			case mesh.MutIgnoreClockOffset:
				// A node whose calendar jumped takes writes its peers
				// refuse to hear of.
				want = []string{"clock-offset"}
			case mesh.MutScanTombEndsBucket:
				// A page lacks a live key the node held (the workload's
				// keys share buckets two by two: meshKeys).
				want = []string{"scan"}
			case mesh.MutPassesNeverCount:
				// The horizon never rises: every tombstone stays.
				want = []string{"collection"}
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

// A mesh node's get that finds nothing is judged: after the node answered
// a key's value or took a write of it, not_found needs a delete that can
// be above that value. Before, every not_found passed the stamp checks,
// so a node could drop its own acknowledged write from its answers and
// anti-entropy put it back before the end (found by review).
func TestMeshNotFoundNeedsADelete(t *testing.T) {
	at := func(wall int64) mesh.Stamp { return mesh.Stamp{Wall: wall} }
	set := meshOp{node: 0, kind: checks.KindSet, keys: []string{"k"}, values: []string{"v"}, stamp: at(10), call: 1, ret: 2, attempt: 1}
	miss := func(node int, call int64) meshOp {
		return meshOp{node: node, kind: checks.KindGet, keys: []string{"k"}, call: call, ret: call + 1, attempt: 9}
	}
	del := func(stamp int64) meshOp {
		return meshOp{node: 1, kind: checks.KindDelete, keys: []string{"k"}, stamp: at(stamp), call: 5, ret: 6, attempt: 2}
	}
	for _, c := range []struct {
		name     string
		ops      []meshOp
		attempts int // delete attempts of k sent
		bad      bool
	}{
		{"not_found after the node's own acknowledged set", []meshOp{set, miss(0, 3)}, 0, true},
		{"not_found sent before the set returned", []meshOp{set, miss(0, 1)}, 0, false},
		{"not_found on another node", []meshOp{set, miss(1, 3)}, 0, false},
		{"an acknowledged delete above the set", []meshOp{set, del(11), miss(0, 7)}, 1, false},
		{"only an acknowledged delete below the set", []meshOp{set, del(9), miss(0, 7)}, 1, true},
		{"a delete whose outcome is unknown", []meshOp{set, miss(0, 3)}, 1, false},
		{"after the node answered the value", []meshOp{{node: 2, kind: checks.KindGet, keys: []string{"k"}, found: true, values: []string{"v"}, stamp: at(10), call: 3, ret: 4}, miss(2, 5)}, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := unexplainedNotFound(c.ops, map[string]int{"k": c.attempts}, -1, 0)
			if (len(got) > 0) != c.bad {
				t.Fatalf("findings %q, want a finding: %v", got, c.bad)
			}
		})
	}
	// A node whose directory was lost answers from what it rebuilds.
	if got := unexplainedNotFound([]meshOp{set, miss(0, 5)}, nil, 0, 4); len(got) > 0 {
		t.Fatalf("a not_found after the node's wipe was judged: %q", got)
	}
	if got := unexplainedNotFound([]meshOp{set, miss(0, 5)}, nil, 1, 4); len(got) == 0 {
		t.Fatal("another node's wipe excused a not_found")
	}
}
