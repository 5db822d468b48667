package sim

import (
	"testing"

	"dkv/core"
)

// notCaughtYet names the planted bugs that the simulator is known to miss
// within MutationSeeds seeds, and why: each is a gap in the fault model or
// the workload, not a bug to hide. The test still runs them: a miss is
// skipped with its reason (never passed in silence), and a catch is logged
// with the line to delete here.
var notCaughtYet = map[string]string{
	"early-write-while-syncing": "its one catch (seed 493, 1 in 800 to 1,500 seeds) came through a failed fsync, which the node now answers by cutting the syncing batch, and the records written early after it, out of the log (GroupCommit.cutUnsynced); what is left of its danger, a power loss during the fsync that keeps the early records of the next batch and a hole before the syncing batch's last record, came in none of 4,000 seeds of 1,000 ops nor 800 of 4,000",
}

// TestCatchesMutations plants each bug of the catalogue (MutationCatalogue:
// realistic one- or two-line mistakes in the storage engine, the single
// node, the protocol codec and the Raft node) and requires the simulator
// alone — no unit test — to catch it within MutationSeeds seeds: a seed
// that fails with the bug and passes without it.
func TestCatchesMutations(t *testing.T) {
	skipWhenReplaying(t)
	for _, m := range MutationCatalogue() {
		t.Run(m.Mode+"/"+m.Name, func(t *testing.T) {
			t.Parallel()
			why, known := notCaughtYet[m.Name]
			if known && testing.Short() {
				t.Skipf("not caught within %d seeds, known: %s", MutationSeeds, why)
			}
			c := CatchMutation(m, CatchConfig{Logf: t.Logf})
			switch {
			case c.Caught && known:
				t.Logf("caught at seed %d by %s (%s), though listed in notCaughtYet: delete its line there", c.Seed, c.Check, c.Finding)
			case c.Caught:
				t.Logf("caught at seed %d by %s: %s", c.Seed, c.Check, c.Finding)
			case known:
				t.Skipf("not caught within %d seeds, known: %s", c.Seeds, why)
			default:
				t.Fatalf("mutation %s went unnoticed for %d seeds", m.Name, c.Seeds)
			}
		})
	}
}

// The catalogue's names are unique (cmd/sim --mutation picks one by name),
// and every entry of notCaughtYet is in it.
func TestMutationCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range MutationCatalogue() {
		if seen[m.Name] {
			t.Errorf("two mutations called %s", m.Name)
		}
		seen[m.Name] = true
		if _, err := LookupMode(m.Mode); err != nil {
			t.Errorf("%s: %v", m.Name, err)
		}
	}
	for name := range notCaughtYet {
		if !seen[name] {
			t.Errorf("notCaughtYet lists %s, which is not in the catalogue", name)
		}
	}
	if n := len(core.Mutations()); n < 16 {
		t.Errorf("core plants %d mutations; the catalogue wants at least 16 of the storage engine, node and codec", n)
	}
}

// TestCatchesByTheirOwnChecks: the planted bugs that went through 1,000
// seeds uncaught until a check was written for them are caught, each
// within a few seeds, by that check (TestCatchesMutations and
// TestCatchesMeshMutations also run them, by any check).
func TestCatchesByTheirOwnChecks(t *testing.T) {
	skipWhenReplaying(t)
	for _, c := range []struct {
		mutation, mode, check string
		seeds                 int
	}{
		// Caught at seed 23: a key outlives its deadline past a turn
		// that took every waiting event (checkExpiryPrompt).
		{"expiry-rearm-skipped", "single", "expiry", 40},
		// Caught at seed 7: a store_full for a write that fitted
		// (dataBoundWanted).
		{"data-growth-ignores-old", "single", "data-bytes", 20},
		// Caught at seed 1: a scan page lacks a live key the node held
		// (meshScanWanted).
		{"scan-tomb-ends-bucket", "mesh", "scan", 10},
	} {
		t.Run(c.mutation, func(t *testing.T) {
			t.Parallel()
			seed, caught := catchMutation(t, c.mode, c.mutation, c.seeds, []string{c.check})
			if !caught {
				t.Fatalf("mutation %s went unnoticed by the %s check for %d seeds", c.mutation, c.check, c.seeds)
			}
			t.Logf("caught at seed %d", seed)
		})
	}
}
