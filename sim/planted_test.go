package sim

import (
	"testing"

	"dkv/election"
)

// TestCatchesClusterMutations plants each of the cluster's mutations (a
// realistic one-line mistake in the Raft node, election.Mutations) and
// requires the simulator to catch it within 100 seeds, by a check a user
// would suffer from (a lost or inconsistent write) or the one that names
// the broken promise: a retried write the cluster can no longer
// deduplicate, a restart without the vote it sent, the log's assertion
// that the entries Raft took as persisted are on disk.
func TestCatchesClusterMutations(t *testing.T) {
	skipWhenReplaying(t)
	for _, m := range election.Mutations() {
		t.Run(m.String(), func(t *testing.T) {
			t.Parallel()
			want := []string{"durability", "linearizability", "atomicity"}
			switch m {
			case election.MutSessionsNotInSnapshot:
				want = append(want, "raft") // replicas decide a retried write differently
			case election.MutVoteNotPersisted:
				want = append(want, "raft") // a restart without the vote it sent
			case election.MutCommitBeforePersist:
				want = append(want, "node") // the log's own assertion: entries missing from the disk
			case election.MutInstallUnindexed:
				want = append(want, "indexes") // a follower's indexes miss the installed state
			case election.MutExpireAtPropose:
				want = append(want, "raft") // the leader's replica decides the expiry apart
			case election.MutRejoinNewByOwnLog:
				want = append(want, "raft") // a leader whose log lacks an entry another node applied
			}
			seeds := 100
			if m == election.MutTransferVoteUnchecked {
				// It needs a graceful stop (30% of seeds) whose hand-over
				// timed out, more writes, and then a late copy of its
				// MsgTimeoutNow: seed 718 is the first of 800 that has
				// them all (661 before every node on an empty directory
				// rejoined and a new cluster's nodes waited for each
				// other, 128 before reads were answered ahead of the
				// entries after them: each moved the schedules).
				// TestCatchesMutations runs it to that seed; election's
				// random Raft schedules, which hand over far more often,
				// catch it at their seed 437
				// (TestRandomSchedulesCatchATransferVoteUnchecked).
				t.Skip("caught at seed 718 by TestCatchesMutations, and by election's Raft schedules at seed 437")
			}
			seed, caught := catchMutation(t, "cluster", m.String(), seeds, want)
			if !caught {
				t.Fatalf("mutation %s went unnoticed for %d seeds", m, seeds)
			}
			t.Logf("caught at seed %d", seed)
		})
	}
}

// catchMutation runs seeds in order with the mutation planted and returns
// the first that fails with it, by one of the wanted checks, and passes
// without it (CatchMutation).
func catchMutation(t *testing.T, mode, mutation string, seeds int, want []string) (uint64, bool) {
	c := CatchMutation(PlantedMutation{Name: mutation, Mode: mode}, CatchConfig{Seeds: seeds, Want: want, Logf: t.Logf})
	if c.Caught {
		t.Logf("seed %d: %s", c.Seed, c.Finding)
	}
	return c.Seed, c.Caught
}
