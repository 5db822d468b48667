package election

import (
	"errors"
	"fmt"
	"slices"

	"dkv/core"
)

// None is no node: no vote cast, no leader known.
const None core.NodeID = -1

// State is a node's role.
type State uint8

const (
	Follower State = iota
	PreCandidate
	Candidate
	Leader
)

func (s State) String() string {
	switch s {
	case Follower:
		return "follower"
	case PreCandidate:
		return "pre-candidate"
	case Candidate:
		return "candidate"
	case Leader:
		return "leader"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// HardState is what must be on disk before any message that depends on it
// leaves: the term, the vote cast in it, and the commit index.
type HardState struct {
	Term   uint64
	Vote   core.NodeID
	Commit uint64
	// Rejoining: the node started on an empty directory, in place of a
	// lost one or as a new cluster's node, and has not yet made up for
	// what it may have forgot, or heard that it forgot nothing (see
	// rejoined).
	Rejoining bool
}

// Config sets up a node. Limits are in ticks and entries.
type Config struct {
	ID    core.NodeID
	Peers []core.NodeID // every voter, this node included
	// ElectionTicks is the election timeout: a follower that hears no
	// leader for a random time in [ElectionTicks, 2*ElectionTicks) stands.
	ElectionTicks int
	// HeartbeatTicks is how often a leader sends appends when it has
	// nothing new. It must be well below ElectionTicks.
	HeartbeatTicks int
	// EntriesPerMsgMax bounds the entries of one append message.
	EntriesPerMsgMax int
	// MsgBytesMax bounds the entry data of one append message; a single
	// entry larger than it still goes, alone. 0: no bound.
	MsgBytesMax int
	// InflightEntriesMax bounds the entries sent to a follower and not yet
	// acknowledged.
	InflightEntriesMax int
	// InflightBytesMax bounds the data bytes of those entries; with none
	// in flight, one entry goes whatever its size. The count alone sent a
	// follower whose disk was slow or stalled up to InflightEntriesMax
	// entries of up to EntryBytesMax each, which it holds in memory until
	// it has persisted them: tens of gigabytes of large writes (found by
	// review).
	InflightBytesMax int
	// UncommittedEntriesMax bounds the proposals a leader holds that are
	// not yet committed; more are refused with ErrProposalDropped.
	UncommittedEntriesMax int
	// UncommittedBytesMax bounds the data bytes of the entries a leader
	// holds that are not yet committed: a proposal that would take them
	// past it is refused with ErrProposalDropped. An entry may be up to
	// EntryBytesMax, so the count alone let a leader whose followers'
	// disks stalled, or that was cut off, hold thousands of them in memory
	// (UncommittedEntriesMax of 64 MiB writes: half a terabyte). A
	// proposal is never refused by it while none of the uncommitted
	// entries carries data, so that one write of any size goes in the end.
	UncommittedBytesMax int
	// ReadsPendingMax bounds the reads waiting for a majority to confirm
	// the leader; more are refused with ErrProposalDropped.
	ReadsPendingMax int
	Rand            core.Rand

	// mutation plants a bug, for the simulator's tests (NodeConfig).
	mutation Mutation

	// What the node's disk holds from before a restart: its hard state,
	// its latest snapshot (nil: none), and the entries after it.
	HardState HardState
	Snapshot  *Snapshot
	Entries   []Entry
}

// DefaultConfig has the limits a cluster uses unless told otherwise.
func DefaultConfig(id core.NodeID, peers []core.NodeID, rand core.Rand) Config {
	return Config{
		ID: id, Peers: peers, Rand: rand,
		ElectionTicks:      10,
		HeartbeatTicks:     1,
		EntriesPerMsgMax:   256,
		MsgBytesMax:        4 << 20,
		InflightEntriesMax: 4096,
		// 16 of a cluster node's largest requests (4 MiB by default)
		// on their way to a follower, or waiting for its disk.
		InflightBytesMax:      64 << 20,
		UncommittedEntriesMax: 8192,
		// A few times a cluster node's largest request (4 MiB by
		// default) and about one largest entry (EntryBytesMax).
		UncommittedBytesMax: 64 << 20,
		ReadsPendingMax:     8192,
		HardState:           HardState{Vote: None},
	}
}

var (
	// ErrNotLeader refuses a proposal to a node that is not the leader;
	// errors.As finds a *NotLeaderError naming the leader, if known.
	ErrNotLeader = errors.New("not the leader")
	// ErrProposalDropped refuses a proposal while too many, or too many
	// bytes of them, are uncommitted (Config.UncommittedEntriesMax,
	// UncommittedBytesMax), or a read while too many wait.
	ErrProposalDropped = errors.New("too many uncommitted proposals or pending reads")
	// ErrReadNotReady refuses a read to a new leader that has not yet
	// committed an entry of its term, and so does not know the commit
	// index yet (§8 of the Raft paper). It lasts one round trip.
	ErrReadNotReady = errors.New("new leader has not committed in its term yet")
)

// ReadState answers ReadIndex: the read with this ID may be served once the
// state machine has applied Index. Lost: this node stopped leading before a
// majority confirmed it, and the read must go elsewhere.
type ReadState struct {
	ID    uint64
	Index uint64
	Lost  bool
}

// pendingRead waits for a majority to answer round or a later one.
type pendingRead struct {
	id, index, round uint64
}

// NotLeaderError is ErrNotLeader with the leader this node knows of.
type NotLeaderError struct{ Leader core.NodeID }

func (e *NotLeaderError) Error() string {
	if e.Leader == None {
		return "not the leader; no leader known"
	}
	return fmt.Sprintf("not the leader; node %d is", e.Leader)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// progress is what a leader knows of one follower's log.
type progress struct {
	match uint64 // highest index known to be on the follower's disk
	next  uint64 // next index to send
	// active: the follower was heard from in this check-quorum period;
	// wasActive: in the period before it.
	active, wasActive bool
	// probing: the follower refused an append, and where its log meets
	// the leader's is being found one append at a time (etcd's probe
	// state): probeSent says one is on its way, probePrev is its prev
	// index, and only a refusal of exactly that append moves next back.
	// Acting on every refusal, as appends went out pipelined, every
	// heartbeat, proposal and read (and the network's copies) started a
	// walk back of its own, each re-sending entries (found by review).
	// An acknowledgement ends it; a heartbeat resends a probe that went
	// unanswered.
	probing   bool
	probeSent bool
	probePrev uint64
	// snapIndex is the index of the last snapshot the follower was sent:
	// while its match is below it, the follower is waiting for it, and is
	// sent no entries (they cannot follow what it holds). Sent on every
	// heartbeat, they refilled the peer's queue ahead of the snapshot's
	// chunks (found by review).
	snapIndex uint64
	// diskFailing: the follower's last acknowledgement said its disk
	// refuses writes (diskFailingHint): it could neither vote nor, elected,
	// persist, so it does not count among the nodes a leader whose own disk
	// fails could leave the office to (canHandOver).
	diskFailing bool
}

// Raft is one node's consensus state. It is not safe for concurrent use.
type Raft struct {
	cfg   Config
	id    core.NodeID
	peers []core.NodeID // sorted; this node included
	self  int           // this node's position in peers

	term  uint64
	vote  core.NodeID
	state State
	lead  core.NodeID
	log   *raftLog

	votes    []int8     // per peer in a campaign: 0 no answer, 1 granted, -1 refused
	progress []progress // per peer, when leader
	matchBuf []uint64   // maybeCommit's scratch, so an acknowledgement allocates nothing

	electionElapsed  int
	heartbeatElapsed int
	electionTimeout  int // randomized, in [ElectionTicks, 2*ElectionTicks)

	// Read index (§6.4 of the thesis), leader only. Every append carries
	// the current round; a follower's response echoes it, and so tells
	// that it took this node for leader after the round began.
	readRound  uint64
	readAcks   []uint64 // per peer: the highest round it echoed
	reads      []pendingRead
	readStates []ReadState

	// uncommittedBytes, while leading, is the data bytes of the log's
	// entries after the commit index, which Config.UncommittedBytesMax
	// bounds: counted afresh when this node takes office (an earlier
	// leader's uncommitted entries count too: they are held all the same),
	// grown by each proposal and shrunk as the commit index moves. A
	// leader's log changes in no other way: it cuts nothing, restores no
	// snapshot, and compacts only what is committed.
	uncommittedBytes int

	msgs     []Message
	prevHard HardState
	// appendsDue: proposals or acknowledgements since the last Ready let
	// entries go to followers; their appends are sent when it is taken
	// (HasReady says so: an acknowledgement that moved no commit index
	// left them waiting for the next tick's heartbeats, and a follower
	// that fell behind caught up at a window of entries a tick; found by
	// review).
	appendsDue bool
	// heartbeatsDue: reads asked for a round of confirmations since the
	// last Ready, which sends one append per follower for them all.
	heartbeatsDue bool

	// snapshot is the latest one this node has, to send to a follower
	// that needs entries it compacted away; pendingSnapshot is one
	// received from the leader, for the next Ready.
	snapshot        *Snapshot
	pendingSnapshot *Snapshot

	// A node that lost its disk forgot its votes and its log: it may have
	// voted in a term that is not over, and its log may have been one of
	// the copies that committed an entry. While rejoining it grants no
	// vote and stands in no election; it follows a leader as usual. It
	// stops once it has heard every peer (heard, heardTerm: the highest
	// term any of them holds), has heard a leader's last index (leadLast)
	// and holds, on disk, the committed log through it (see rejoined);
	// then it takes the highest term heard, with its vote in that term
	// spent, and votes only in later terms.
	rejoining bool
	heard     []bool
	heardTerm uint64
	// leadLast is the last index of a leader's log, as the leader answered
	// a question of askTerms in the term this node followed it: every
	// entry the lost disk helped commit is in that log, at or below it
	// (leadLastKnown says whether one has answered).
	leadLast      uint64
	leadLastKnown bool
	// rejoinElapsed counts ticks to the next askTerms; askNonce marks its
	// questions, and only answers that echo it count as heard: a message
	// of a peer's that was on its way before the disk was lost (a leader's
	// old append, say) may carry a term long past.
	rejoinElapsed int
	askNonce      uint64
	// peerRejoining and peerEmpty are, per peer, what its last answer to
	// askTerms said: that it is rejoining too (rejoiningHint), and that it
	// is at term 0 with an empty log (no entry, no snapshot). When every
	// peer is, no leader was ever elected, and the node stops rejoining
	// without one (see rejoined): the first start of a new cluster,
	// whose nodes all start on empty directories. When too many are
	// rejoining for a majority to vote and some log is not empty, no
	// leader can ever be elected (RejoinStuck): the caller says so, since
	// the nodes themselves would wait in silence.
	peerRejoining []bool
	peerEmpty     []bool
	// refusedRejoining is, per peer, for a node that is not rejoining,
	// whether the peer's last word was that it is: its answer to this
	// node's pre-vote refused it as rejoining (rejoiningHint), or it asked
	// this node's term (askTerms). So a node that kept its disk, when too
	// many of its peers lost theirs, can say that no leader can be elected
	// (RejoinStuck), as they do; it said an election was under way, for
	// good (found by review).
	refusedRejoining []bool
	// joinedNew: rejoining ended because every peer was at term 0 with an
	// empty log (see rejoined), for the caller's log line.
	joinedNew bool
	// settled is, at term 0, per peer, whether it answered askTerms that
	// it is no longer rejoining (the answer left after its hard state
	// said so), or stood for election. A node at term 0 stands only once
	// every peer has (forming): a new cluster's node that missed the
	// others' answers at term 0 (down, or cut off, once they had heard
	// it) found them gone on to elect without it, and could end rejoining
	// only by a leader's log; till then it could not vote, so one lost
	// disk more left too few voters for good, though a majority of disks
	// held every write (found by review: the simulator's seed 20127, a
	// 3-node cluster stuck with 2 of its nodes rejoining). The price is
	// the cluster's first election, which waits for every node to be
	// done, not only heard.
	settled []bool

	// diskFailing: the caller's disk refuses its writes (SetDiskFailing).
	// Such a node does not stand for election, and a leader steps down
	// once it has failed for an election timeout (diskFailTicks): it can
	// neither count its own copy toward a commit nor apply what the
	// followers commit, so it would hold the cluster's reads and writes
	// while check-quorum, which hears the followers, keeps it in office.
	diskFailing   bool
	diskFailTicks int

	// transferee is the follower this leader is handing the office to
	// (TransferLeadership), None when it is not; transferTicks counts the
	// ticks since the hand-over began, and timeoutNowSent whether the
	// follower was told to stand. While a hand-over lasts, proposals are
	// refused: an entry the transferee lacks would hold it back.
	transferee     core.NodeID
	transferTicks  int
	timeoutNowSent bool
	// leaving: this node is shutting down (SetLeaving): it stands in no
	// election, so that it is not handed back the office it handed over.
	leaving bool
}

// transferVote, in the Context of a vote request (which otherwise carries
// none), says that the candidate stands because its leader handed the
// office to it (MsgTimeoutNow): a voter grants it though it still hears
// that leader, where check-quorum's lease would refuse a cut-off node's.
const transferVote = 1

// ErrTransferring refuses a proposal while the leader hands the office to
// another node (TransferLeadership): at most an election timeout.
var ErrTransferring = errors.New("the leader is handing the office to another node")

// rejoiningHint, in the RejectHint of a pre-vote answer (which otherwise
// carries none), says that the answering node is rejoining: it grants no
// vote whatever it is asked. Older nodes ignore the field there.
const rejoiningHint = 1

// diskFailingHint, in the RejectHint of an append's acknowledgement (which
// otherwise carries none), says that the follower's disk refuses writes
// (SetDiskFailing). Older nodes ignore the field there.
const diskFailingHint = 1

// New makes a node from its config, restoring what its disk held.
func New(cfg Config) (*Raft, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l, err := newLog(cfg.Snapshot, cfg.Entries)
	if err != nil {
		return nil, err
	}
	peers := slices.Clone(cfg.Peers)
	slices.Sort(peers)
	hs := cfg.HardState
	if hs.Term == 0 {
		// Nothing was ever voted for; a zero HardState's Vote of 0 would
		// name node 0.
		hs.Vote = None
	}
	if hs.Commit > l.lastIndex() {
		return nil, fmt.Errorf("election: hard state commit %d is beyond the last persisted index %d", hs.Commit, l.lastIndex())
	}
	l.committed = max(l.committed, hs.Commit)
	r := &Raft{
		cfg:        cfg,
		id:         cfg.ID,
		peers:      peers,
		self:       slices.Index(peers, cfg.ID),
		term:       hs.Term,
		vote:       hs.Vote,
		log:        l,
		lead:       None,
		transferee: None,
		votes:      make([]int8, len(peers)),
		progress:   make([]progress, len(peers)),
		readAcks:   make([]uint64, len(peers)),
		snapshot:   cfg.Snapshot,
		prevHard:   hs,
	}
	r.becomeFollower(r.term, None)
	if hs.Term == 0 && len(peers) > 1 {
		r.settled = make([]bool, len(peers))
		r.settled[r.self] = true
		if !hs.Rejoining {
			r.askNonce = cfg.Rand.Uint64() | 1
		}
	}
	r.refusedRejoining = make([]bool, len(peers))
	if hs.Rejoining {
		r.rejoining = true
		r.heard = make([]bool, len(peers))
		r.heard[r.self] = true
		r.askNonce = cfg.Rand.Uint64() | 1 // never 0, which no question carries
		r.peerRejoining = make([]bool, len(peers))
		r.peerEmpty = make([]bool, len(peers))
		r.peerRejoining[r.self] = true
		// The first question goes at the first tick, not an election
		// timeout after the start: a new cluster's node that starts
		// last is heard by the others at once, and they may elect a
		// leader within their election timeout; asked later, they
		// answer at term 1, and the node must catch up before it votes,
		// so that losing that leader at once left no majority of voters
		// (TestNewClusterSurvivesLosingItsFirstLeader).
		r.rejoinElapsed = r.cfg.ElectionTicks - 1
		// A cluster of one node has no peer to hear: it is done.
		r.rejoined()
	}
	return r, nil
}

func (c *Config) validate() error {
	switch {
	case !slices.Contains(c.Peers, c.ID):
		return fmt.Errorf("election: node %d is not among the peers %v", c.ID, c.Peers)
	case len(c.Peers) != len(slicesCompact(c.Peers)):
		return fmt.Errorf("election: peers %v name a node twice", c.Peers)
	case c.ElectionTicks < 2 || c.HeartbeatTicks < 1 || c.HeartbeatTicks >= c.ElectionTicks:
		return fmt.Errorf("election: need 1 <= heartbeat ticks (%d) < election ticks (%d)", c.HeartbeatTicks, c.ElectionTicks)
	case c.EntriesPerMsgMax < 1 || c.InflightEntriesMax < c.EntriesPerMsgMax || c.InflightBytesMax < 1 || c.UncommittedEntriesMax < 1 || c.UncommittedBytesMax < 1 || c.ReadsPendingMax < 1:
		return fmt.Errorf("election: limits must be positive, and in-flight entries at least one message's worth")
	case c.Rand == nil:
		return errors.New("election: no Rand")
	}
	return nil
}

func slicesCompact(s []core.NodeID) []core.NodeID {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

// ID, Term, State and Leader describe the node, for status and tests.
func (r *Raft) ID() core.NodeID     { return r.id }
func (r *Raft) Term() uint64        { return r.term }
func (r *Raft) State() State        { return r.state }
func (r *Raft) Leader() core.NodeID { return r.lead }

// Vote is the node this one voted for in its term, None if none.
func (r *Raft) Vote() core.NodeID { return r.vote }

// Committed is the commit index this node knows of.
func (r *Raft) Committed() uint64 { return r.log.committed }

// LastIndex is the index of the last entry in the log.
func (r *Raft) LastIndex() uint64 { return r.log.lastIndex() }

// PeerProgress is what a leader knows of one follower's log.
type PeerProgress struct {
	ID          core.NodeID
	Match, Next uint64
	// Active: the follower was heard from within the last check-quorum
	// period or the current one (one to two election timeouts).
	Active bool
}

// Progress lists what this node, if it leads, knows of each follower, in
// id order; nil otherwise.
func (r *Raft) Progress() []PeerProgress {
	if r.state != Leader {
		return nil
	}
	out := make([]PeerProgress, 0, len(r.peers)-1)
	for i, p := range r.peers {
		if i != r.self {
			pr := &r.progress[i]
			out = append(out, PeerProgress{ID: p, Match: pr.match, Next: pr.next, Active: pr.active || pr.wasActive})
		}
	}
	return out
}

// WouldRestore reports whether a snapshot at (index, term) from a leader
// would replace this node's log, rather than be old news or only move its
// commit index: what handleSnapshot decides.
func (r *Raft) WouldRestore(index, term uint64) bool {
	return index > r.log.committed && !r.log.matchTerm(index, term)
}

func (r *Raft) quorum() int { return len(r.peers)/2 + 1 }

func (r *Raft) resetTimers() {
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.electionTimeout = r.cfg.ElectionTicks + core.Intn(r.cfg.Rand, r.cfg.ElectionTicks)
}

func (r *Raft) becomeFollower(term uint64, lead core.NodeID) {
	if term > r.term {
		r.term, r.vote = term, None
	}
	r.endTransfer()
	r.loseReads()
	r.state, r.lead = Follower, lead
	r.resetTimers()
}

// loseReads answers every pending read Lost: this node no longer leads.
func (r *Raft) loseReads() {
	for _, rd := range r.reads {
		r.readStates = append(r.readStates, ReadState{ID: rd.id, Lost: true})
	}
	r.reads = r.reads[:0]
}

func (r *Raft) becomePreCandidate() {
	// No term bump and no vote: a pre-vote changes nothing until it wins.
	r.state, r.lead = PreCandidate, None
	r.resetTimers()
	clear(r.votes)
}

func (r *Raft) becomeCandidate() {
	r.term++
	r.vote = r.id
	r.state, r.lead = Candidate, None
	r.resetTimers()
	clear(r.votes)
}

func (r *Raft) becomeLeader() {
	r.state, r.lead = Leader, r.id
	r.endTransfer()
	r.resetTimers()
	r.diskFailTicks = 0
	for i := range r.progress {
		r.progress[i] = progress{next: r.log.lastIndex() + 1, active: true}
	}
	clear(r.readAcks)
	r.progress[r.self].match = r.log.stable
	r.uncommittedBytes = r.log.dataBytes(r.log.committed+1, r.log.lastIndex())
	// An entry of its own term lets the leader commit what earlier terms
	// left uncommitted (§5.4.2): it may count replicas only of its term.
	r.log.append(Entry{Term: r.term, Index: r.log.lastIndex() + 1})
	r.broadcastAppend()
}

// Tick advances the node's clock by one tick.
func (r *Raft) Tick() {
	if r.rejoining || r.forming() {
		r.rejoinElapsed++
		if r.rejoinElapsed >= r.cfg.ElectionTicks {
			r.rejoinElapsed = 0
			r.askTerms()
		}
	}
	r.electionElapsed++
	if r.state != Leader {
		// A node whose disk refuses writes could not save its own vote,
		// nor, elected, persist its entries: it leaves the office to a
		// node that can.
		if r.electionElapsed >= r.electionTimeout && len(r.peers) > 0 && !r.rejoining && !r.diskFailing && !r.leaving && !r.forming() {
			r.campaign()
		} else if r.electionElapsed >= r.electionTimeout && r.state == Follower {
			// A node that may not stand (rejoining, or its disk
			// failing) no longer names a leader it has not heard from
			// for an election timeout: it named a dead leader until the
			// next was elected, to its clients in every redirect and
			// in its status (found by review: "node 0 is the leader"
			// for seconds after node 0 was killed). A campaign clears
			// the leader of the others.
			r.lead = None
		}
		return
	}
	if r.diskFailing && len(r.peers) > 1 {
		// (A leader without another voter steps down to no avail: it
		// keeps the office, and refuses writes for its disk.)
		r.diskFailTicks++
		if r.diskFailTicks >= r.cfg.ElectionTicks {
			if r.canHandOver() {
				// The followers may be committing this leader's entries
				// without it, but it can apply none of them, so neither
				// its writes nor its reads are answered; and
				// check-quorum, which hears the followers, would keep it
				// leading for good. It stands down, and does not stand
				// again while its disk fails, so a healthy node is
				// elected in its place.
				r.becomeFollower(r.term, None)
				return
			}
			// Too few healthy nodes to elect another: the disks of
			// most of the nodes refuse writes (equal disks fill
			// together). Stepping down left the cluster without a
			// leader, so it answered nothing, reads included, until
			// space was freed (found by review). Leading on, it serves
			// reads, which need no disk, and refuses writes.
			r.diskFailTicks = r.cfg.ElectionTicks
		}
	}
	if r.transferee != None {
		r.transferTicks++
		if r.transferTicks >= r.cfg.ElectionTicks {
			// The transferee did not take over within an election
			// timeout (down, cut off, or too slow to catch up): this
			// node leads on, and takes proposals again.
			r.endTransfer()
		}
	}
	r.heartbeatElapsed++
	if r.electionElapsed >= r.cfg.ElectionTicks {
		// Check quorum: a leader that did not hear from a majority in an
		// election timeout may be on the wrong side of a partition, and a
		// newer leader may be serving already. Step down.
		r.electionElapsed = 0
		active := 0
		for i := range r.progress {
			if i == r.self || r.progress[i].active {
				active++
			}
			r.progress[i].wasActive, r.progress[i].active = r.progress[i].active, false
		}
		if active < r.quorum() {
			r.becomeFollower(r.term, None)
			return
		}
	}
	if r.heartbeatElapsed >= r.cfg.HeartbeatTicks {
		r.heartbeatElapsed = 0
		for i := range r.progress {
			r.progress[i].probeSent = false // resent, in case it was lost
		}
		r.broadcastAppend()
		if r.transferee != None && r.timeoutNowSent {
			// Resent each heartbeat while the hand-over lasts, in case
			// it was lost (found by review: a lost one let the hand-over
			// time out). A copy that comes after the follower stood is
			// of an older term, and dropped.
			r.timeoutNowSent = false
			r.maybeTimeoutNow(slices.Index(r.peers, r.transferee))
		}
	}
}

// campaign starts a pre-vote: the real election follows only if a majority
// would vote for this node.
func (r *Raft) campaign() {
	r.becomePreCandidate()
	r.requestVotes(MsgPreVote, r.term+1)
}

// campaignTransfer stands for election at once, without a pre-vote: the
// leader handed the office to this node (MsgTimeoutNow), and its vote
// requests say so (transferVote).
func (r *Raft) campaignTransfer() {
	r.becomeCandidate()
	r.requestVotes(MsgVote, r.term, transferVote)
}

func (r *Raft) requestVotes(t MsgType, term uint64, context ...uint64) {
	r.votes[r.self] = 1
	if r.tally() {
		return
	}
	var ctx uint64
	if len(context) > 0 {
		ctx = context[0]
	}
	for _, p := range r.peers {
		if p != r.id {
			r.send(Message{Type: t, To: p, Term: term, Index: r.log.lastIndex(), LogTerm: r.log.lastTerm(), Context: ctx})
		}
	}
}

// tally acts on the votes so far, and reports whether the campaign ended.
func (r *Raft) tally() bool {
	granted, refused := 0, 0
	for _, v := range r.votes {
		switch v {
		case 1:
			granted++
		case -1:
			refused++
		}
	}
	switch {
	case granted >= r.quorum() && r.state == PreCandidate:
		r.becomeCandidate()
		r.requestVotes(MsgVote, r.term)
		return true
	case granted >= r.quorum():
		r.becomeLeader()
		return true
	case refused >= r.quorum():
		r.becomeFollower(r.term, None)
		return true
	}
	return false
}

// Propose appends data to the log, if this node leads. It returns the
// entry's index; the entry is committed when a Ready hands it out.
func (r *Raft) Propose(data []byte) (uint64, error) {
	if r.state != Leader {
		return 0, &NotLeaderError{Leader: r.lead}
	}
	if r.log.lastIndex()-r.log.committed >= uint64(r.cfg.UncommittedEntriesMax) {
		return 0, ErrProposalDropped
	}
	if r.uncommittedBytes > 0 && len(data) > r.cfg.UncommittedBytesMax-r.uncommittedBytes {
		// (While no uncommitted entry carries data, any entry goes: one
		// larger than the bound would otherwise be refused for good.)
		return 0, ErrProposalDropped
	}
	if r.transferee != None {
		return 0, ErrTransferring
	}
	e := Entry{Term: r.term, Index: r.log.lastIndex() + 1, Data: data}
	r.log.append(e)
	r.uncommittedBytes += len(data)
	// The appends go out with the next Ready, so that every proposal of a
	// turn travels in one message per follower, not one each.
	r.appendsDue = true
	return e.Index, nil
}

func (r *Raft) send(m Message) {
	m.From = r.id
	if m.Type == MsgAppResp && !m.Reject && r.diskFailing {
		m.RejectHint = diskFailingHint
	}
	if m.Term == 0 {
		m.Term = r.term
	}
	r.msgs = append(r.msgs, m)
}

func (r *Raft) broadcastAppend() {
	for i, p := range r.peers {
		if i != r.self {
			r.sendAppend(i, p, true)
		}
	}
}

// sendAppend sends follower i the entries from its next index on, within
// the in-flight window. With nothing to send it sends an empty append as a
// heartbeat only when heartbeat is set.
func (r *Raft) sendAppend(i int, to core.NodeID, heartbeat bool) {
	pr := &r.progress[i]
	if pr.probing && pr.probeSent {
		return // one probe at a time; the next heartbeat resends it
	}
	prev := pr.next - 1
	if prev < r.log.offset {
		// The follower needs entries that are gone into the snapshot.
		assert(r.snapshot != nil && r.snapshot.Index == r.log.offset, "sendAppend: log compacted to %d without a snapshot", r.log.offset)
		pr.next, pr.snapIndex = r.snapshot.Index+1, r.snapshot.Index
		pr.probeSent, pr.probePrev = pr.probing, r.snapshot.Index
		r.send(Message{Type: MsgSnap, To: to, Snapshot: r.snapshot, Commit: r.log.committed, Context: r.readRound})
		return
	}
	prevTerm, ok := r.log.term(prev)
	assert(ok, "sendAppend: no entry %d for follower %d (last %d)", prev, to, r.log.lastIndex())
	room := int(pr.match + uint64(r.cfg.InflightEntriesMax) - prev)
	if pr.snapIndex > pr.match {
		room = 0 // waiting for the snapshot: a heartbeat only
	}
	ents := r.log.slice(pr.next, r.log.lastIndex(), min(r.cfg.EntriesPerMsgMax, max(room, 0)))
	if len(ents) > 0 {
		// The entries sent past what the follower acknowledged (those
		// a snapshot covers aside) are in flight, or in its memory
		// waiting for its disk.
		flightRoom := r.cfg.InflightBytesMax - r.log.dataBytes(max(pr.match, r.log.offset)+1, prev)
		bytes := 0
		for i, e := range ents {
			bytes += len(e.Data)
			overMsg := r.cfg.MsgBytesMax > 0 && bytes > r.cfg.MsgBytesMax && i > 0
			// With nothing in flight, one entry goes, whatever its size.
			overFlight := bytes > flightRoom && (i > 0 || prev > pr.match)
			if overMsg || overFlight {
				ents = ents[:i]
				break
			}
		}
	}
	if len(ents) == 0 && !heartbeat {
		return
	}
	// The message gets its own copy of the entries: it may wait (for the
	// next Ready, or in the host's hands while the Ready's entries sync)
	// while this node, deposed, takes a newer leader's entries, which
	// maybeAppend writes over the log's in place.
	ents = slices.Clone(ents)
	if pr.probing {
		pr.probeSent, pr.probePrev = true, prev
	} else {
		// Pipelining: assume the entries arrive; a refusal moves next
		// back.
		pr.next += uint64(len(ents))
	}
	r.send(Message{Type: MsgApp, To: to, Index: prev, LogTerm: prevTerm, Entries: ents, Commit: r.log.committed, Context: r.readRound})
}

// Step hands the node a message from a peer.
func (r *Raft) Step(m Message) {
	i := slices.Index(r.peers, m.From)
	if i < 0 || m.From == r.id || m.To != r.id {
		return // not from a voter of this cluster, or not for this node
	}
	if m.wellFormed() != nil {
		return // DecodeMessage refuses these, naming the fault
	}
	if r.rejoining {
		defer r.rejoined()
		if m.Type == MsgPreVoteResp && m.Context == r.askNonce {
			r.heard[i] = true
			r.heardTerm = max(r.heardTerm, m.Term)
			if m.From == r.lead && m.Term == r.term {
				// The leader of this node's term answered (it led the
				// term, whether or not it still does: nothing cut its
				// log in that term).
				r.leadLast, r.leadLastKnown = max(r.leadLast, m.Index), true
			}
			r.peerRejoining[i] = m.Reject && m.RejectHint == rejoiningHint
			r.peerEmpty[i] = m.Term == 0 && m.Index == 0
		}
		if m.Type == MsgVote || (m.Type == MsgPreVote && m.Context == 0) {
			// Campaigning: this peer is no longer rejoining (an
			// askTerms question always carries a nonce).
			r.peerRejoining[i] = false
		}
	}
	switch {
	case m.Type == MsgPreVoteResp && m.Context == 0:
		r.refusedRejoining[i] = m.Reject && m.RejectHint == rejoiningHint
	case m.Type == MsgPreVote && m.Context != 0:
		r.refusedRejoining[i] = true // askTerms: it is rejoining
	case m.Type == MsgVote || m.Type == MsgPreVote || m.Type == MsgApp || m.Type == MsgSnap:
		r.refusedRejoining[i] = false // it stands, or leads
	}
	if r.settled != nil {
		// Once settled, a peer stays so: if its disk is lost after, its
		// node rejoins in place of one that was done, one lost disk.
		if m.Type == MsgPreVoteResp && m.Context == r.askNonce && !(m.Reject && m.RejectHint == rejoiningHint) {
			r.settled[i] = true
		}
		if m.Type == MsgVote || (m.Type == MsgPreVote && m.Context == 0) {
			r.settled[i] = true
		}
	}
	switch {
	case m.Term > r.term:
		if (m.Type == MsgVote || m.Type == MsgPreVote) && r.inLease() && !(m.Type == MsgVote && m.Context == transferVote) {
			// Check quorum: while a leader is heard from, a vote request
			// is some cut-off node's, and must not depose that leader;
			// unless that leader handed it the office.
			return
		}
		switch {
		case m.Type == MsgPreVote:
			// A pre-vote names the term it would stand in; ours stays.
		case m.Type == MsgPreVoteResp && !m.Reject:
			// A granted pre-vote carries the term we would stand in.
		case m.Type == MsgApp || m.Type == MsgSnap:
			r.becomeFollower(m.Term, m.From)
		default:
			r.becomeFollower(m.Term, None)
		}
	case m.Term < r.term:
		switch m.Type {
		case MsgApp, MsgSnap:
			// A leader of an older term, perhaps back from a partition:
			// our term tells it to step down.
			r.send(Message{Type: MsgAppResp, To: m.From})
		case MsgPreVote:
			r.send(Message{Type: MsgPreVoteResp, To: m.From, Reject: true, Index: r.log.lastIndex(), RejectHint: r.preVoteHint(), Context: m.Context})
		}
		return
	}

	switch m.Type {
	case MsgPreVote, MsgVote:
		r.handleVoteRequest(m)
		return
	}
	switch r.state {
	case Follower:
		if m.Type == MsgApp || m.Type == MsgSnap {
			r.electionElapsed = 0
			r.lead = m.From
			r.handleLeaderMsg(m)
		}
		if m.Type == MsgTimeoutNow && m.From == r.lead && !r.rejoining && !r.diskFailing && !r.leaving {
			// The leader hands the office over. A node that may not
			// stand (rejoining, its disk failing) lets the hand-over
			// time out.
			r.campaignTransfer()
		}
	case PreCandidate, Candidate:
		switch {
		case m.Type == MsgApp || m.Type == MsgSnap:
			// A leader of this term (or a newer one) exists.
			r.becomeFollower(m.Term, m.From)
			r.handleLeaderMsg(m)
		case (m.Type == MsgPreVoteResp && r.state == PreCandidate) || (m.Type == MsgVoteResp && r.state == Candidate):
			if m.Reject {
				r.votes[i] = -1
			} else {
				r.votes[i] = 1
			}
			r.tally()
		}
	case Leader:
		if m.Type == MsgAppResp {
			r.handleAppendResp(i, m)
		}
	}
}

// TransferLeadership hands this leader's office to the follower to: it
// stops taking proposals (ErrTransferring), brings to's log up to its own,
// then tells it to stand for election at once (MsgTimeoutNow), which it
// wins in one round trip, its log being the most up to date. Raft's
// safety is an election's, as ever. If to has not taken over within an
// election timeout, the hand-over ends and this node leads on. A graceful
// shutdown uses it, so that a rolling restart costs the cluster a round
// trip, not an election timeout, per leader restarted.
func (r *Raft) TransferLeadership(to core.NodeID) error {
	if r.state != Leader {
		return &NotLeaderError{Leader: r.lead}
	}
	i := slices.Index(r.peers, to)
	if i < 0 || to == r.id {
		return fmt.Errorf("election: node %d is not another voter of this cluster", to)
	}
	if r.transferee == to {
		return nil
	}
	r.transferee, r.transferTicks, r.timeoutNowSent = to, 0, false
	r.maybeTimeoutNow(i)
	r.appendsDue = true // what to lacks goes with the next Ready
	return nil
}

// HandOverTarget is the follower a hand-over should go to: of those heard
// from lately whose disks take writes, the one whose log is the longest
// (the lowest id among equals), those that prefer picks (heard from in
// the last heartbeats: Node.HandOver) before the others; false when there
// is none or this node does not lead. A follower that just crashed counts
// as active for up to two election timeouts, and on an idle cluster its
// log is as long as the others': without the preference, a leader stopped
// then handed the office to it when its id was the lowest (found by the
// hand-over history review).
func (r *Raft) HandOverTarget(prefer func(core.NodeID) bool) (core.NodeID, bool) {
	if r.state != Leader {
		return None, false
	}
	best, bestPreferred := -1, false
	for i := range r.peers {
		pr := &r.progress[i]
		if i == r.self || !(pr.active || pr.wasActive) || pr.diskFailing {
			continue
		}
		preferred := prefer(r.peers[i])
		if best < 0 || (preferred && !bestPreferred) || (preferred == bestPreferred && pr.match > r.progress[best].match) {
			best, bestPreferred = i, preferred
		}
	}
	if best < 0 {
		return None, false
	}
	return r.peers[best], true
}

// SetLeaving marks this node as shutting down: it stands in no election
// from now on, by its timeout or by a hand-over to it. A node that handed
// the office over and waits for its writes' answers was the most up to
// date, and a leader stopped at the same moment handed the office back to
// it, which then exited as leader (found by review).
func (r *Raft) SetLeaving() { r.leaving = true }

// Transferring is the follower this leader is handing the office to, None
// when it is not.
func (r *Raft) Transferring() core.NodeID { return r.transferee }

// maybeTimeoutNow tells peer i to stand, once, if it is the transferee and
// holds this leader's whole log.
func (r *Raft) maybeTimeoutNow(i int) {
	if r.transferee != r.peers[i] || r.timeoutNowSent || r.progress[i].match < r.log.lastIndex() {
		return
	}
	r.timeoutNowSent = true
	r.send(Message{Type: MsgTimeoutNow, To: r.transferee})
}

func (r *Raft) endTransfer() {
	r.transferee, r.transferTicks, r.timeoutNowSent = None, 0, false
}

// inLease reports whether this node heard from a leader within the
// election timeout.
func (r *Raft) inLease() bool {
	return r.lead != None && r.electionElapsed < r.cfg.ElectionTicks
}

func (r *Raft) handleVoteRequest(m Message) {
	resp := MsgVoteResp
	if m.Type == MsgPreVote {
		resp = MsgPreVoteResp
	}
	// Context is echoed: a rejoining node's question (askTerms) is told
	// from an older one by it. Index is this node's last index, which a
	// rejoining node takes from its leader (leadLast).
	last := r.log.lastIndex()
	if r.rejoining {
		r.send(Message{Type: resp, To: m.From, Reject: true, Index: last, RejectHint: r.preVoteHint(), Context: m.Context})
		return
	}
	canVote := r.vote == m.From ||
		(r.vote == None && r.lead == None) ||
		(m.Type == MsgPreVote && m.Term > r.term)
	upToDate := r.log.isUpToDate(m.Index, m.LogTerm) || (r.cfg.mutation == MutTransferVoteUnchecked && m.Type == MsgVote && m.Context == transferVote)
	if canVote && upToDate {
		// The grant carries the term asked for, so that a pre-candidate
		// does not take it for a newer term.
		r.send(Message{Type: resp, To: m.From, Term: m.Term, Index: last, Context: m.Context})
		if m.Type == MsgVote {
			r.electionElapsed = 0
			r.vote = m.From
		}
		return
	}
	r.send(Message{Type: resp, To: m.From, Reject: true, Index: last, Context: m.Context})
}

func (r *Raft) handleLeaderMsg(m Message) {
	if m.Type == MsgSnap {
		r.handleSnapshot(m)
	} else {
		r.handleAppend(m)
	}
}

// handleSnapshot takes the leader's snapshot, unless the log already holds
// what it covers.
func (r *Raft) handleSnapshot(m Message) {
	s := m.Snapshot
	if s == nil {
		return
	}
	switch {
	case s.Index <= r.log.committed:
		// Old news.
	case r.log.matchTerm(s.Index, s.Term):
		// The log has it all: only the commit index moves.
		r.log.commitTo(s.Index)
	default:
		r.forgetAcksFrom(r.log.committed + 1)
		r.log.restore(*s)
		r.snapshot, r.pendingSnapshot = s, s
	}
	// Everything up to the commit index is on this node's disk by the
	// time the acknowledgement leaves (after the Ready is persisted).
	r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.committed, Context: m.Context})
}

func (r *Raft) handleAppend(m Message) {
	if m.Index < r.log.committed {
		// Old news: what we committed matches the leader's log anyway.
		r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.committed, Context: m.Context})
		return
	}
	if r.log.matchTerm(m.Index, m.LogTerm) {
		// Where an entry conflicts with ours, maybeAppend cuts the log.
		for _, e := range m.Entries {
			if t, ok := r.log.term(e.Index); !ok || t != e.Term {
				if ok {
					r.forgetAcksFrom(e.Index)
				}
				break
			}
		}
	}
	lastNew, ok := r.log.maybeAppend(m.Index, m.LogTerm, m.Entries)
	if !ok {
		hint := r.rejectHint(m.Index, m.LogTerm)
		hintTerm, _ := r.log.term(hint) // 0 if compacted: no help to the leader
		r.send(Message{Type: MsgAppResp, To: m.From, Index: m.Index, Reject: true, RejectHint: hint, LogTerm: hintTerm, Context: m.Context})
		return
	}
	r.log.commitTo(min(m.Commit, lastNew))
	r.send(Message{Type: MsgAppResp, To: m.From, Index: lastNew, Context: m.Context})
}

// rejectHint is where a follower that refuses an append at (index,
// logTerm) guesses its log may meet the leader's: at most its last entry,
// and below its entries of terms above logTerm, none of which the leader
// holds there (an entry of a term above the leader's at index would sit
// after one of a lower term in the leader's log). So a deposed leader's
// uncommitted tail of one term is skipped in one refusal, not an entry a
// round trip; the leader's next probe checks the guess.
func (r *Raft) rejectHint(index, logTerm uint64) uint64 {
	hint := min(index, r.log.lastIndex())
	for hint > r.log.committed {
		t, ok := r.log.term(hint)
		if !ok || t <= logTerm {
			break
		}
		hint--
	}
	return hint
}

// forgetAcksFrom drops the acknowledgements waiting for the next Ready that
// vouch for the log from index on, which is about to be cut for a newer
// leader's entries or replaced by a snapshot: what they acknowledge will
// never be on this node's disk. (Many messages are stepped between two
// Readys: a turn's, and all those of a background sync.) They are for an
// older leader, to whom a lost message is nothing new.
func (r *Raft) forgetAcksFrom(index uint64) {
	r.msgs = slices.DeleteFunc(r.msgs, func(m Message) bool {
		return m.Type == MsgAppResp && !m.Reject && m.Index >= index
	})
}

func (r *Raft) handleAppendResp(i int, m Message) {
	pr := &r.progress[i]
	pr.active = true
	if !m.Reject {
		pr.diskFailing = m.RejectHint == diskFailingHint
	}
	if m.Context > r.readAcks[i] {
		r.readAcks[i] = m.Context
		r.confirmReads()
	}
	if m.Reject {
		switch {
		case pr.probing && (!pr.probeSent || m.Index != pr.probePrev):
			// Not the answer to the probe on its way: an earlier
			// append's, or a copy. That probe's answer moves next.
			return
		case !pr.probing && m.Index >= pr.next:
			return // a refusal of an append before next moved back
		}
		if m.RejectHint < pr.match {
			// The follower's log ends below what it acknowledged: it
			// lost its disk and rejoins empty (HardState.Rejoining), or
			// this refusal is older than its acknowledgements. Either
			// way it is sent its entries again from there; the commit
			// index, which it helped move, never goes back.
			pr.match = m.RejectHint
		}
		hint := m.RejectHint
		if m.LogTerm > 0 {
			// The follower's entry at hint is of term m.LogTerm: ours
			// of higher terms below it cannot match it, nor anything
			// before it there, so the probe skips them (the leader's
			// half of rejectHint; etcd's findConflictByTerm).
			for hint > pr.match {
				if t, ok := r.log.term(hint); !ok || t <= m.LogTerm {
					break
				}
				hint--
			}
		}
		pr.next = max(pr.match+1, min(m.Index, hint+1))
		pr.probing, pr.probeSent = true, false
		r.sendAppend(i, m.From, true)
		return
	}
	// The follower's acknowledgement left after its disk held the entries:
	// its log is the leader's through m.Index.
	if m.Index > r.log.lastIndex() {
		// No follower of this term can hold entries this leader has not
		// sent: a damaged or lying frame, whose index taken as the match
		// would send an append from beyond the log.
		return
	}
	if pr.probing {
		// Found where the logs meet: replicate, pipelined, from there.
		pr.probing, pr.probeSent = false, false
		pr.next = max(pr.match, m.Index) + 1
		r.appendsDue = true
	}
	if m.Index > pr.match {
		pr.match = m.Index
		pr.next = max(pr.next, m.Index+1)
		r.maybeTimeoutNow(i)
		// What the acknowledgement lets go (new entries within the
		// window, a new commit index) leaves with the next Ready, one
		// append per follower, like proposals: sending at once for every
		// acknowledgement would have a follower sync once per message.
		r.maybeCommit()
		r.appendsDue = true
	}
}

// maybeCommit commits the highest index on a majority's disks, if it is of
// this term (§5.4.2).
func (r *Raft) maybeCommit() bool {
	matches := r.matchBuf[:0]
	for i := range r.progress {
		matches = append(matches, r.progress[i].match)
	}
	slices.Sort(matches)
	r.matchBuf = matches
	n := matches[len(matches)-r.quorum()]
	if n > r.log.committed && r.log.matchTerm(n, r.term) {
		r.uncommittedBytes -= r.log.dataBytes(r.log.committed+1, n)
		r.log.commitTo(n)
		// A miscount would refuse every write for good (too high), or
		// let the leader's memory go unbounded (too low).
		assert(r.uncommittedBytes >= 0 && (n < r.log.lastIndex() || r.uncommittedBytes == 0),
			"maybeCommit: %d uncommitted bytes after committing through %d of %d", r.uncommittedBytes, n, r.log.lastIndex())
		return true
	}
	return false
}

// Uncommitted is what a leader holds that is not yet committed: entries,
// and the bytes of their data (Config.UncommittedEntriesMax,
// UncommittedBytesMax); zeros when not leading.
func (r *Raft) Uncommitted() (entries, bytes int) {
	if r.state != Leader {
		return 0, 0
	}
	return int(r.log.lastIndex() - r.log.committed), r.uncommittedBytes
}

// ReadIndex asks for a linearizable read with the caller's id: a later
// Ready carries its ReadState. Only the leader serves reads.
func (r *Raft) ReadIndex(id uint64) error {
	switch {
	case r.state != Leader:
		return &NotLeaderError{Leader: r.lead}
	case !r.log.matchTerm(r.log.committed, r.term):
		return ErrReadNotReady
	case len(r.reads) >= r.cfg.ReadsPendingMax:
		return ErrProposalDropped
	}
	// The commit index now covers every write acknowledged before this
	// read arrived; the read is safe once a majority confirms that no
	// newer leader exists, and the state machine has applied the index.
	r.readRound++
	r.reads = append(r.reads, pendingRead{id: id, index: r.log.committed, round: r.readRound})
	r.readAcks[r.self] = r.readRound
	r.confirmReads()
	if len(r.reads) > 0 {
		// The round's confirmations leave with the next Ready, one
		// append per follower for all the reads of a turn.
		r.heartbeatsDue = true
	}
	return nil
}

// confirmReads releases, in order, the reads a majority has confirmed.
func (r *Raft) confirmReads() {
	n := 0
	for _, rd := range r.reads {
		acks := 0
		for _, a := range r.readAcks {
			if a >= rd.round {
				acks++
			}
		}
		if acks < r.quorum() {
			break
		}
		r.readStates = append(r.readStates, ReadState{ID: rd.id, Index: rd.index})
		n++
	}
	r.reads = slices.Delete(r.reads, 0, n)
}

// Compact tells the node that the caller has made snap, a snapshot of its
// state machine at an applied index: the log up to there can go, and snap is
// what a follower that needs those entries gets instead.
func (r *Raft) Compact(snap Snapshot) error {
	if snap.Index > r.log.applied {
		return fmt.Errorf("election: snapshot at %d, beyond the applied index %d", snap.Index, r.log.applied)
	}
	if snap.Index <= r.log.offset {
		return nil // an older snapshot than the one we have
	}
	if t, _ := r.log.term(snap.Index); t != snap.Term {
		return fmt.Errorf("election: snapshot at %d says term %d; the log says %d", snap.Index, snap.Term, t)
	}
	r.log.compact(snap.Index)
	r.snapshot = &snap
	return nil
}

// Ready is what the node has for its caller: persist Snapshot (if any, in
// place of the whole log and state machine before it), HardState (if
// HardStateChanged) and Entries; then send Messages; then install
// Snapshot and apply Committed; then call Advance.
type Ready struct {
	Snapshot         *Snapshot
	HardState        HardState
	HardStateChanged bool
	// Entries go to the disk's log; an entry replaces the persisted entry
	// of the same index and every one after it.
	Entries   []Entry
	Messages  []Message
	Committed []Entry
	// ReadStates answer ReadIndex calls, in the order they were made.
	ReadStates []ReadState
}

func (r *Raft) hardState() HardState {
	return HardState{Term: r.term, Vote: r.vote, Commit: r.log.committed, Rejoining: r.rejoining}
}

// rejoined ends rejoining once the node has heard every peer, has heard a
// leader's last index (leadLast), and holds on disk the committed log
// through it, ending in an entry of its leader's term; or once it has
// heard every peer and each answered at term 0 with an empty log.
//
// Why leadLast: an entry the lost disk helped commit is in the log of
// every leader since (Leader Completeness: while this node rejoins it
// votes for nobody, so every leader is elected by nodes that kept their
// logs), and of the leader it was sent by. So it is at or below the last
// index of any leader that answered after the disk was lost. A committed
// entry alone proves less: it puts only the entries before it in the log,
// and the lost disk may have helped commit entries after it, which no
// other node but a leader held (the Raft harness's seed 5818: a node that
// rejoined at a committed entry of its leader's term, 38, then voted a
// log without the committed 39 into office, once the leader had crashed).
// Committed entries are the same at an index on every log, so holding the
// committed log through leadLast is holding those entries; on disk
// already (stable), they stay through a crash after the hard state that
// ends rejoining is saved. From then on the node takes the highest term
// heard, its vote in it spent, and is a voter like any other: every vote
// it forgot was in a term no higher.
//
// Why every peer at term 0 with an empty log is enough: a leader of a
// cluster of two or more nodes was elected with a peer's vote, and a node
// that votes takes the candidate's term, which is never 0 and never goes
// back. So if every peer answered, after the disk was lost (askNonce),
// at term 0, no leader was ever elected, no entry was ever written, and
// the only vote the lost disk can have held is one for this node itself,
// or, with a second disk lost at once (two of five), for that disk's node,
// whose term went back to 0 with it. Either was cast for a candidacy that
// elected nobody and ended with its process; the node may vote again in
// that term. A grant of the lost vote that outlived both processes (not
// over a connection: each end's restart closes it) would count for the
// other node's new candidacy in the term, beside the node's new vote.
// This is what lets every node on an empty directory start rejoining,
// whether its disk was lost or the cluster is new: a new cluster's nodes
// each hear the others at term 0, empty, and go on to elect a leader; a
// wiped node hears a term or a log that is not, and rejoins. (No node
// stands at term 0 before every peer is done, see settled, so that no
// node of a new cluster is left to end by a leader's log.) The price: a
// new cluster elects its first leader only once every node has answered,
// and every node is done. A majority would not do:
// with one peer of three unheard, that peer and the lost disk may have
// elected a leader and committed an entry. (The log alone would not do
// either: a node of a build before 2026-12-05 answers with index 0.)
func (r *Raft) rejoined() {
	if !r.rejoining || r.state != Follower || slices.Contains(r.heard, false) {
		return
	}
	empty := true
	for i, e := range r.peerEmpty {
		empty = empty && (e || i == r.self)
	}
	if r.cfg.mutation == MutRejoinNewByOwnLog {
		empty = r.log.lastIndex() == 0
	}
	if !empty {
		if r.lead == None || !r.leadLastKnown {
			return
		}
		c := min(r.log.committed, r.log.stable)
		if t, ok := r.log.term(c); !ok || t != r.term || c == 0 || c < r.leadLast {
			return
		}
	}
	r.joinedNew = empty
	r.rejoining, r.heard, r.peerRejoining, r.peerEmpty = false, nil, nil, nil
	if r.heardTerm > r.term {
		r.becomeFollower(r.heardTerm, None)
	}
	if r.vote == None {
		r.vote = r.id
	}
}

// askTerms asks every peer not yet heard from for its term, at the first
// tick and then once an election timeout: a rejoining node follows its
// leader, and followers do
// not otherwise talk to each other. The question is a pre-vote at this
// node's own term, which changes nothing where it lands (a pre-vote never
// does) and is answered with the peer's term: refused, by a peer whose
// term is higher, with that term; at the same term, granted or refused,
// with it. (A peer at a lower term that hears a leader answers nothing,
// and is asked again.) Its leader is asked too until it has answered in
// the term the node follows it, with its last index (leadLast). The
// question carries askNonce in Context, which the answer echoes.
func (r *Raft) askTerms() {
	forming := r.forming()
	for i, p := range r.peers {
		if forming && !r.settled[i] || r.rejoining && (!r.heard[i] || (p == r.lead && !r.leadLastKnown)) {
			r.send(Message{Type: MsgPreVote, To: p, Term: r.term, Index: r.log.lastIndex(), LogTerm: r.log.lastTerm(), Context: r.askNonce})
		}
	}
}

// forming reports whether this node, at term 0, has not yet heard that
// every peer is done rejoining (settled), and so does not stand.
func (r *Raft) forming() bool {
	return r.term == 0 && r.settled != nil && slices.Contains(r.settled, false)
}

// Unsettled lists the peers a node of a new cluster, at term 0, has not
// yet heard are done rejoining: it stands for election only once it has
// heard every one (see settled).
func (r *Raft) Unsettled() []core.NodeID {
	if !r.forming() {
		return nil
	}
	var ids []core.NodeID
	for i, s := range r.settled {
		if !s {
			ids = append(ids, r.peers[i])
		}
	}
	return ids
}

// Rejoining reports whether the node is still making up for a lost disk,
// or waiting to hear that the cluster is new (see rejoined).
func (r *Raft) Rejoining() bool { return r.rejoining }

// JoinedNew reports whether rejoining ended because every peer was at
// term 0 with an empty log: the cluster is new.
func (r *Raft) JoinedNew() bool { return r.joinedNew }

// Unheard lists the peers a rejoining node has not yet heard answer: it
// votes, on a new cluster, only once it has heard every one.
func (r *Raft) Unheard() []core.NodeID {
	var ids []core.NodeID
	for i, h := range r.heard {
		if !h {
			ids = append(ids, r.peers[i])
		}
	}
	return ids
}

// preVoteHint is the RejectHint of this node's pre-vote answers.
func (r *Raft) preVoteHint() uint64 {
	if r.rejoining {
		return rejoiningHint
	}
	return 0
}

// RejoinStuck reports, for a rejoining node that knows no leader and has
// heard every peer, how many nodes (this one included) are rejoining, when
// so many are that no leader can ever be elected: a leader needs the votes
// of a majority, a rejoining node grants none, and it stops rejoining only
// once it follows one (or every peer's log is empty, which then is not the
// case: see rejoined). It is 0 otherwise. Waiting does not help; only the
// operator can (the caller tells them). A peer that stands for election
// afterwards is taken off the count. A node that is not rejoining and
// knows no leader counts the peers whose last word was that they are
// (refusedRejoining), once its own log or term shows that the cluster is
// not new (else they go on as a new cluster's nodes).
func (r *Raft) RejoinStuck() (rejoining int) {
	if r.lead != None {
		return 0
	}
	said := r.peerRejoining
	if !r.rejoining {
		if r.term == 0 && r.log.lastIndex() == 0 {
			// A new cluster's: its peers, rejoining, hear it answer at
			// term 0 with an empty log, and stop (see rejoined).
			return 0
		}
		said = r.refusedRejoining
	} else if slices.Contains(r.heard, false) {
		return 0
	}
	for _, yes := range said {
		if yes {
			rejoining++
		}
	}
	if len(r.peers)-rejoining >= r.quorum() {
		return 0
	}
	return rejoining
}

// canHandOver reports whether enough followers heard from lately have
// disks that take writes to elect one of them: a leader whose own disk
// fails steps down only then.
func (r *Raft) canHandOver() bool {
	healthy := 0
	for i := range r.progress {
		if pr := &r.progress[i]; i != r.self && (pr.active || pr.wasActive) && !pr.diskFailing {
			healthy++
		}
	}
	return healthy >= r.quorum()
}

// CanHandOver reports whether this leader, its disk failing, could leave
// the office to a healthy node (see Tick); false when not leading.
func (r *Raft) CanHandOver() bool { return r.state == Leader && r.canHandOver() }

// SetDiskFailing tells the node whether its caller's disk refuses writes
// (full, or failing): while it does, the node stands in no election, says
// so in its acknowledgements, and a leader steps down after an election
// timeout of it if enough healthy nodes could elect another (see Tick).
func (r *Raft) SetDiskFailing(failing bool) {
	r.diskFailing = failing
	if !failing {
		r.diskFailTicks = 0
	}
}

// HasReady reports whether Ready has anything.
func (r *Raft) HasReady() bool {
	return r.hardState() != r.prevHard || r.log.stable < r.log.lastIndex() || len(r.msgs) > 0 || r.heartbeatsDue ||
		(r.appendsDue && r.state == Leader) || len(r.log.toApply()) > 0 || len(r.readStates) > 0 || r.pendingSnapshot != nil
}

// Ready returns the node's pending work. Call Advance with it before the
// next Ready. Between the two, the node may take ticks, proposals and
// messages (a caller that syncs the entries in the background does): what
// they change comes in the next Ready.
func (r *Raft) Ready() Ready {
	if r.heartbeatsDue {
		r.heartbeatsDue = false
		if r.state == Leader {
			r.broadcastAppend()
		}
	}
	if r.appendsDue {
		r.appendsDue = false
		if r.state == Leader {
			for i, p := range r.peers {
				if i != r.self {
					r.sendAppend(i, p, false)
				}
			}
		}
	}
	hs := r.hardState()
	rd := Ready{
		HardState:        hs,
		HardStateChanged: hs != r.prevHard,
		Snapshot:         r.pendingSnapshot,
		Entries:          slices.Clone(r.log.unstable()),
		Messages:         r.msgs,
		Committed:        slices.Clone(r.log.toApply()),
		ReadStates:       r.readStates,
	}
	r.msgs, r.readStates = nil, nil
	return rd
}

// Advance tells the node that rd was persisted, sent and applied.
func (r *Raft) Advance(rd Ready) {
	r.prevHard = rd.HardState
	if rd.Snapshot != nil && rd.Snapshot == r.pendingSnapshot {
		r.pendingSnapshot = nil
	}
	// A caller that persists in the background steps messages between
	// Ready and Advance: a new leader may have cut some of these entries,
	// or a snapshot replaced the log. Only what the log still holds is
	// stable (log matching: a matching entry vouches for those before it),
	// and nothing moves back.
	for i := len(rd.Entries) - 1; i >= 0; i-- {
		if e := rd.Entries[i]; r.log.matchTerm(e.Index, e.Term) {
			r.log.stable = max(r.log.stable, e.Index)
			break
		}
	}
	if n := len(rd.Committed); n > 0 {
		r.log.applied = max(r.log.applied, rd.Committed[n-1].Index)
	}
	if r.state == Leader {
		// The leader counts its own copy once its disk holds it.
		if r.log.stable > r.progress[r.self].match {
			r.progress[r.self].match = r.log.stable
			if r.maybeCommit() {
				r.broadcastAppend()
			}
		}
	}
}
