// Package election is Raft: leader election with pre-vote and check-quorum,
// log replication and commit (Ongaro and Ousterhout, "In Search of an
// Understandable Consensus Algorithm", and Ongaro's thesis for pre-vote and
// check-quorum).
//
// Raft is a pure state machine here, in the manner of etcd's raft library:
// it takes ticks, proposals and messages, and hands back, in a Ready, what
// to persist, what to send and what is committed. All I/O is the caller's,
// so the same code runs under the simulator and in production. The caller
// persists a Ready's hard state and entries before it sends its messages
// (a vote or an acknowledgement must not outlive a crash that loses what it
// vouched for), applies its committed entries, and then calls Advance.
//
// Pre-vote keeps a node that was cut off from bumping the term, and so from
// deposing a healthy leader, when it comes back: it first asks whether it
// could win, without changing any state. Check-quorum makes a leader that
// has not heard from a majority for an election timeout step down, and lets
// followers ignore vote requests while they hear from a leader. A node
// whose disk refuses writes (full, or failing) stands in no election, and a
// leader whose disk has refused its entries for an election timeout steps
// down: the followers would go on committing without it, while it could
// apply nothing and so answer nothing, and check-quorum, which hears the
// followers, would never depose it.
//
// Reads are linearizable by read index (§6.4 of the thesis): the leader
// notes its commit index, confirms with a majority that it still leads, and
// the read is served once the state machine has applied that index. A
// leader that has not yet committed an entry of its term refuses read
// indexes for the round trip that takes; Node holds such reads until then
// rather than refuse the client.
//
// The caller compacts the log with a snapshot of its state machine
// (Compact); a follower that needs entries compacted away gets that
// snapshot instead (MsgSnap).
//
// Node is the cluster node built on Raft (core.Node): the Raft log is kept
// in core's write-ahead log (one record per entry, group commit: a turn's
// entries are written and fsync'd once), the term and vote in a small state
// file, committed entries are applied to core's store, and a session table
// (sessions.go) makes a client's retried write apply once. A leader's
// MsgSnap never travels as one message: the node sends the snapshot file in
// acknowledged, checksummed chunks (transfer.go), and the follower installs
// it in an order that a crash at any point leaves recoverable.
//
// Mutation plants deliberate bugs for the simulator's tests only.
package election
