package election

import "dkv/core"

// Mutation is a deliberate bug, planted only by tests that prove the
// simulator catches it (sim's planted-bug tests). A node built by cmd/node
// never has one: nothing outside tests sets NodeConfig.Mutation.
type Mutation uint8

const (
	MutNone Mutation = iota
	// MutReadWithoutIndex: the leader answers reads from its state at
	// once, without confirming with a majority that it still leads.
	MutReadWithoutIndex
	// MutCommitBeforePersist: after a failed log write, the node takes the
	// entries as persisted anyway, so a leader counts its own copy toward a
	// quorum (and a follower's later acknowledgements vouch for them)
	// though its disk lacks them. (Counting its copy at proposal time would
	// change nothing here: the leader persists a turn's entries before it
	// handles any acknowledgement of them.)
	MutCommitBeforePersist
	// MutSessionsNotInSnapshot: snapshots carry an empty session table.
	MutSessionsNotInSnapshot
	// MutVoteNotPersisted: a vote is sent without being saved.
	MutVoteNotPersisted
	// MutInstallUnindexed: a snapshot installed from the leader replaces
	// the store, but the indexes are not rebuilt from it.
	MutInstallUnindexed
	// MutCondFailureKeptInSession: a session write whose condition did not
	// hold is recorded in the session table as if it had applied, so a
	// retry of it is answered as a duplicate: success.
	MutCondFailureKeptInSession
	// MutConditionAtPropose: the leader checks a write's condition against
	// its applied state when it proposes the write, and logs it without
	// the condition, where entries before it may still change the key.
	MutConditionAtPropose
	// MutRefusedNotKept: a session write whose condition did not hold is
	// not recorded, so a copy of it that comes later (a retry, an attempt
	// the network held back) is checked and may apply after its client
	// was told nothing was written.
	MutRefusedNotKept
	// MutExpireAtPropose: the leader deletes the keys whose deadline
	// passed from its store when it proposes their expiry, before the
	// expiry commits: its reads see them gone, and a new leader, whose
	// log never got the expiry, has them back.
	MutExpireAtPropose
	// MutExpiryAsPlainDelete: the expiry command deletes its keys whatever
	// they hold when it applies, as a bulk_delete would: a write that
	// committed between the leader's proposing the expiry and its applying
	// is lost.
	MutExpiryAsPlainDelete
	// MutIncrRetryApplies: a copy of a session incr that already applied
	// (a retry, a held attempt) is taken for a new one and adds its delta
	// again, as if the session table knew only writes that can repeat.
	MutIncrRetryApplies
	// MutTransferVoteUnchecked: a vote request of a hand-over
	// (transferVote) is granted without checking that the candidate's log
	// is as up to date as the voter's, the leader having chosen it. A
	// late copy of a hand-over's MsgTimeoutNow, after the hand-over timed
	// out and the leader took more writes, elects a node that lacks them.
	MutTransferVoteUnchecked
	// MutRejoinNewByOwnLog: a node on an empty directory takes the cluster
	// for new by its own empty log, once it has heard every peer, rather
	// than by theirs: a node whose disk was lost votes at once, its empty
	// log granting any candidate, as if it had never helped commit.
	MutRejoinNewByOwnLog
)

var mutationNames = core.MutationNames[Mutation]{
	MutNone:                     "none",
	MutReadWithoutIndex:         "read-without-index",
	MutCommitBeforePersist:      "commit-before-persist",
	MutSessionsNotInSnapshot:    "sessions-not-in-snapshot",
	MutVoteNotPersisted:         "vote-not-persisted",
	MutInstallUnindexed:         "install-unindexed",
	MutCondFailureKeptInSession: "condition-failure-kept-in-session",
	MutConditionAtPropose:       "condition-at-propose",
	MutRefusedNotKept:           "refused-not-kept",
	MutExpireAtPropose:          "expire-at-propose",
	MutExpiryAsPlainDelete:      "expiry-as-plain-delete",
	MutIncrRetryApplies:         "incr-retry-applies",
	MutTransferVoteUnchecked:    "transfer-vote-unchecked",
	MutRejoinNewByOwnLog:        "rejoin-new-by-own-log",
}

func (m Mutation) String() string { return mutationNames.Name(m) }

// Mutations lists the planted bugs, MutNone excluded.
func Mutations() []Mutation { return mutationNames.All() }

// ParseMutation returns the mutation called name.
func ParseMutation(name string) (Mutation, error) { return mutationNames.Parse("election", name) }
