package election

import "fmt"

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
	mutationEnd
)

var mutationNames = [...]string{
	MutNone:                  "none",
	MutReadWithoutIndex:      "read-without-index",
	MutCommitBeforePersist:   "commit-before-persist",
	MutSessionsNotInSnapshot: "sessions-not-in-snapshot",
	MutVoteNotPersisted:      "vote-not-persisted",
}

func (m Mutation) String() string {
	if m < mutationEnd {
		return mutationNames[m]
	}
	return fmt.Sprintf("mutation(%d)", uint8(m))
}

// Mutations lists the planted bugs, MutNone excluded.
func Mutations() []Mutation {
	var out []Mutation
	for m := MutNone + 1; m < mutationEnd; m++ {
		out = append(out, m)
	}
	return out
}

// ParseMutation returns the mutation called name.
func ParseMutation(name string) (Mutation, error) {
	for m := MutNone; m < mutationEnd; m++ {
		if mutationNames[m] == name {
			return m, nil
		}
	}
	return MutNone, fmt.Errorf("election: no mutation called %q", name)
}
