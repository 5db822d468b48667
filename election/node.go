package election

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"dkv/core"
)

// NodeConfig configures a cluster node. Start from DefaultNodeConfig.
type NodeConfig struct {
	ID    core.NodeID
	Peers []core.NodeID // every voter, this node included
	// ClientAddrs holds every node's client address, for the redirects
	// that followers answer with. A node without one is named "node N".
	ClientAddrs map[core.NodeID]string
	// ClusterID is kept in the data directory at the first start; a node
	// started on another cluster's directory refuses to start.
	ClusterID uint64
	Limits    core.Limits

	SegmentBytesMax     int64 // log segment size that starts a new segment
	SnapshotLogBytesMin int64 // log bytes since the last snapshot that start the next
	BatchBytesMax       int   // records a turn buffers before writing them out

	// TickInterval is Raft's clock: ElectionTicks and HeartbeatTicks count
	// it.
	TickInterval   time.Duration
	ElectionTicks  int
	HeartbeatTicks int

	EntriesPerMsgMax      int
	MsgBytesMax           int
	InflightEntriesMax    int
	InflightBytesMax      int
	UncommittedEntriesMax int
	UncommittedBytesMax   int
	ReadsPendingMax       int
	// SessionsMax bounds the client sessions the cluster remembers.
	SessionsMax int
	// SnapChunkBytes is the size of one piece of a snapshot sent to a
	// follower.
	SnapChunkBytes int
	// WriteTicksMax bounds how long a proposed write waits to be applied
	// before it is answered outcome_unknown (a minority side never commits).
	WriteTicksMax int
	// Mutation plants a bug, for tests of the simulator only.
	Mutation Mutation
	// Indexes, when set, serve the search ops (linearizable, as reads
	// are); they follow the applied state (see core.Indexes), rebuilt at
	// start and after a snapshot install as IndexBuild paces it (see
	// core.AttachedIndexes).
	Indexes    core.Indexes
	IndexBuild core.IndexBuildConfig
	// OnApply, if set, sees every entry the node applies: its client
	// session (0, 0 without one) and what came of it (applied, duplicate,
	// expired, stale, unmet; empty for a leader's first entry). Replicas must
	// agree on it at every index, which an observer such as the simulator
	// checks.
	OnApply func(index, term, client, seq uint64, outcome string)
}

// DefaultNodeConfig is what a cluster node uses unless told otherwise. An
// election timeout of 10 ticks of 20 ms (200-400 ms, randomised) lets a
// failover finish well under a second, while a heartbeat every tick keeps
// a follower from standing for election by mistake on a busy machine.
func DefaultNodeConfig(id core.NodeID, peers []core.NodeID) NodeConfig {
	single := core.DefaultSingleConfig()
	rc := DefaultConfig(id, peers, nil)
	return NodeConfig{
		ID:                    id,
		Peers:                 peers,
		Limits:                single.Limits,
		SegmentBytesMax:       single.SegmentBytesMax,
		SnapshotLogBytesMin:   single.SnapshotLogBytesMin,
		BatchBytesMax:         single.BatchBytesMax,
		TickInterval:          20 * time.Millisecond,
		ElectionTicks:         rc.ElectionTicks,
		HeartbeatTicks:        rc.HeartbeatTicks,
		EntriesPerMsgMax:      rc.EntriesPerMsgMax,
		MsgBytesMax:           rc.MsgBytesMax,
		InflightEntriesMax:    rc.InflightEntriesMax,
		InflightBytesMax:      rc.InflightBytesMax,
		UncommittedEntriesMax: rc.UncommittedEntriesMax,
		UncommittedBytesMax:   rc.UncommittedBytesMax,
		ReadsPendingMax:       rc.ReadsPendingMax,
		SessionsMax:           sessionsMaxDefault,
		SnapChunkBytes:        1 << 20,
		WriteTicksMax:         250, // 5 s
	}
}

// Node is a cluster node: Raft driven through the node contract, with the
// Raft log kept in core's write-ahead log and committed entries applied to
// core's store. The leader takes writes (proposals, answered once applied)
// and reads (read index); followers redirect clients to it.
//
// A turn's proposals and appends are persisted together at Flush — one
// write and one fsync, in the background where the disk can — and no
// message that depends on them leaves before they are durable: the
// pipelined group commit of the single node, with Raft's order (persist,
// send, apply). Snapshots of the store compact the log, and reach
// followers that fell behind in chunks (transfer.go).
type Node struct {
	cfg   NodeConfig
	env   core.Env
	raft  *Raft
	store *core.Store
	// views are the consistent scans' pinned copies of the applied state.
	views *core.Views
	sess  *sessions
	log   *core.Log
	gc    *core.GroupCommit
	snaps *core.Snapshotter
	state *core.StateFile
	saved durableState

	applied, appliedTerm uint64
	// appliedAtFlush is applied at the last Flush: the pacer hears of
	// turns that applied entries (the indexes changed).
	appliedAtFlush uint64
	// pacer builds the indexes' graph in spare time (nil without them).
	pacer *core.IndexPacer
	// indexes joins cfg.Indexes to the store (nil without indexes).
	indexes  *core.AttachedIndexes
	snapTerm uint64 // term of the snapshot being written

	writes []pendingWrite // proposals waiting to be applied, by index
	// proposedGrowth are the data bytes (core.Store.DataBytes) that the
	// writes this node proposed and has not applied yet add, those that
	// grow the store, by index; proposedBytes is their sum. The bound
	// (Limits.DataBytesMax) counts them with the applied store's.
	proposedGrowth []indexedGrowth
	proposedBytes  int64
	// handOverHeld are the writes that came while this leader handed the
	// office over, and the reads that came after them (releaseHeld); at
	// most handOverHeldMax.
	handOverHeld []heldWrite
	reads        []clientRead // reads asked of Raft, in order
	confirmed    []clientRead // reads a majority confirmed, waiting for apply
	notReady     []clientRead // reads refused until the new leader commits
	readID       uint64

	out []*sendState // per peer position: a snapshot being sent
	// outFile is the snapshot file being sent, open while any send runs:
	// each chunk is read from it when it is sent. outSize is its size when
	// opened, every send's total; outBuf holds the chunk being sent.
	outFile  core.ReadHandle
	outIndex uint64
	outSize  uint64
	outBuf   []byte
	in       *recvState // a snapshot being received

	diskFailed bool // a write failed; logged once until one succeeds
	// diskErr is the last write failure while diskFailed: what a write
	// refused meanwhile is told (disk_full or io_error).
	diskErr error
	// diskProbeTicks counts the ticks to the next probeDisk.
	diskProbeTicks int
	// stuckLogged: the error that too many nodes are rejoining was logged
	// (noteStuck), and no leader has been known since.
	stuckLogged bool
	// inflight is the Ready whose entries are syncing; Raft advances past
	// it, and the next Ready is taken, once they are durable.
	inflight *Ready
	ticks    int
	// heardTick is the tick each peer was last heard from (any message),
	// by which a node that knows no leader tells a client whether one
	// can be elected now (redirect).
	heardTick map[core.NodeID]int
	// wall reads the calendar time of deadlines (nil: none, and sets with
	// ttl_ms are refused); expiryIndex and expiryTerm are the leader's
	// last expiry proposal (proposeExpiry).
	wall                    core.WallClock
	expiryIndex, expiryTerm uint64
	ticker                  core.Timer
	again                   core.Timer
	stopped                 error
	buf                     []byte

	// The role, term and leader last logged (noteRole), and how often
	// the leader or term changed: an operator's view of elections.
	seenRole      State
	seenTerm      uint64
	seenLead      core.NodeID
	leaderChanges int64
}

type pendingWrite struct {
	index, term uint64
	client, seq uint64
	key         string // an incr's, for its answer when a snapshot covers it
	reply       core.ReplyFunc
	tick        int // when it was proposed
}

type clientRead struct {
	id    uint64
	index uint64
	// after is the last write this node had proposed when the read came
	// (0: none): the read is answered only once that write has its
	// answer, so that on one connection a get after a set sees it.
	after uint64
	// upto is the last entry of this node's log when the read came:
	// those after it were proposed after it, and on one connection a
	// request must not see the writes sent after it (docs/PROTOCOL.md).
	upto uint64
	key  string
	keys []string // a bulk_get's keys; nil for a get
	// presence: the bulk_get answers which keys exist, not their values
	// (core.Request.Presence).
	presence bool
	search   *core.Request // a search op, answered by the indexes; nil for a get
	scan     *core.Request // a scan; nil for a get
	ttl      bool          // a ttl of key
	reply    core.ReplyFunc
	tick     int // when it arrived: a read waits at most WriteTicksMax (expireReads)
}

// readyRoundsMax bounds the Ready rounds of one Flush. Rounds without
// entries to persist follow each other at once (an inline sync's too: its
// committed entries come in the next round); one whose entries sync in the
// background ends the Flush.
const readyRoundsMax = 4

// NewNode returns a node that Start will recover from disk.
func NewNode(cfg NodeConfig) (*Node, error) {
	if !slices.Contains(cfg.Peers, cfg.ID) {
		return nil, fmt.Errorf("election: node %d is not among the peers %v", cfg.ID, cfg.Peers)
	}
	if cfg.SegmentBytesMax <= 0 || cfg.SnapshotLogBytesMin <= 0 || cfg.BatchBytesMax <= 0 ||
		cfg.TickInterval <= 0 || cfg.SessionsMax <= 0 || cfg.SnapChunkBytes <= 0 || cfg.WriteTicksMax <= 0 {
		return nil, errors.New("election: node sizes, limits and intervals must be positive")
	}
	return &Node{cfg: cfg, views: core.NewViews()}, nil
}

// Start recovers the node: its identity, term and vote, the newest
// snapshot, and the log after it.
// meshStateFile is a mesh node's state file (package mesh), named only to
// tell an operator whose data directory this is.
const meshStateFile = "mesh-state"

// Rejoining reports whether the node, started on an empty directory (in
// place of a lost one, or as a new cluster's), is still withholding its vote,
// or has stopped but not yet saved that it has (a crash now would bring it
// back rejoining).
func (n *Node) Rejoining() bool { return n.saved.Rejoining || (n.raft != nil && n.raft.Rejoining()) }

// Forming reports whether the node, at term 0, has not yet heard every
// peer say it is done rejoining, and so stands in no election (Raft's
// settled): a new cluster elects its first leader once one node has.
func (n *Node) Forming() bool { return n.raft != nil && len(n.raft.Unsettled()) > 0 }

func (n *Node) Start(env core.Env) error {
	n.env = env
	n.wall, _ = env.Clock.(core.WallClock)
	if env.ID != n.cfg.ID {
		return fmt.Errorf("election: the host runs node %d, the config says %d", env.ID, n.cfg.ID)
	}
	names, err := env.Disk.List()
	if err != nil {
		return fmt.Errorf("listing data directory: %w", err)
	}
	fresh := !slices.Contains(names, hardStateFile)
	for _, name := range names {
		if fresh && core.IsLogFile(name) {
			owner := "a single node's"
			if slices.Contains(names, meshStateFile) {
				owner = "a mesh node's"
			}
			return fmt.Errorf("%w: the data directory holds a log but no %s: it is %s, not a cluster node's", core.ErrForeignLog, hardStateFile, owner)
		}
		if isRecvFile(name) {
			// A snapshot being received when the node stopped: the leader
			// sends it again.
			if err := env.Disk.Remove(name); err != nil {
				return fmt.Errorf("removing %s: %w", name, err)
			}
		}
	}
	st, saved, err := core.OpenStateFile(env.Disk, hardStateFile, n.logf)
	if err != nil {
		return err
	}
	n.state = st
	if saved == nil {
		// Every node on an empty directory starts rejoining: nothing
		// here tells a lost disk from a new cluster, and a node that
		// lost its disk must not vote (Raft's rejoined). A new cluster's
		// nodes each stop once they hear that every other node is empty
		// too; a replaced disk's node once it has caught up.
		n.saved = durableState{ClusterID: n.cfg.ClusterID, NodeID: n.cfg.ID, Vote: None, Rejoining: true}
		if err := n.state.Save(n.saved.encode()); err != nil {
			return err
		}
	} else if n.saved, err = decodeDurableState(saved); err != nil {
		return fmt.Errorf("%w: %s: %v", core.ErrCorrupt, hardStateFile, err)
	}
	if n.saved.ClusterID != n.cfg.ClusterID || n.saved.NodeID != n.cfg.ID {
		return fmt.Errorf("the data directory belongs to node %d of cluster %016x; this is node %d of cluster %016x (same peers, same order, same node id?)",
			n.saved.NodeID, n.saved.ClusterID, n.cfg.ID, n.cfg.ClusterID)
	}

	rec, err := core.RecoverSnapshot(env.Disk)
	if err != nil {
		return err
	}
	if rec.Index > 0 && rec.Meta.Term == 0 {
		return fmt.Errorf("%w: snapshot at index %d has no term: it is a single node's", core.ErrForeignLog, rec.Index)
	}
	installing := n.saved.Installing
	if installing != 0 {
		if err := n.finishInstall(rec); err != nil {
			return err
		}
	}
	// Without a log segment, and no install under way (a crash in an
	// install may leave the snapshot without one), the log is lost: with
	// no snapshot either, or with one, whose state lacks the entries
	// after it (found by review: a node whose segments were deleted came
	// back a full voter at its snapshot's index, and voted a node that
	// lacked an acknowledged write into office).
	if saved != nil && !n.saved.Rejoining && (n.saved.Term > 0 || n.saved.Vote != None) &&
		installing == 0 && !slices.ContainsFunc(names, core.IsLogFile) {
		// The term and vote are here, the log and snapshot are not: they
		// were removed (a full disk's largest files, "*.log" taken for
		// the server's logs) or lost, and with them the entries this node
		// may have helped commit. A node that has voted always has one or
		// the other: the first start makes the log before any vote, a
		// snapshot's install renames it in before the log goes. Serving
		// as a voter with an empty log, it would vote a node that lacks
		// an acknowledged write into office (found by review); it rejoins
		// instead, as a node on an empty directory does, keeping its
		// term and vote.
		if rec.Index == 0 {
			n.logf("the data directory holds %s (term %d) but neither a log nor a snapshot: they were lost or removed, with the entries this node may have helped commit; rejoining", hardStateFile, n.saved.Term)
		} else {
			n.logf("the data directory holds %s (term %d) and a snapshot through index %d but no log: it was lost or removed, with the entries after the snapshot this node may have helped commit; rejoining", hardStateFile, n.saved.Term, rec.Index)
		}
		n.saved.Rejoining = true
		if err := n.state.Save(n.saved.encode()); err != nil {
			return err
		}
	}
	n.sess, err = decodeSessions(rec.Meta.Extra, n.cfg.SessionsMax)
	if err != nil {
		return fmt.Errorf("%w: snapshot at index %d: %v", core.ErrCorrupt, rec.Index, err)
	}
	n.store, n.applied, n.appliedTerm = rec.Store, rec.Index, rec.Meta.Term
	n.indexes = core.AttachIndexes(n.store, n.cfg.Indexes, env.Clock, n.cfg.IndexBuild, env.Logf, core.MutNone)
	n.pacer = core.NewIndexPacer(env.Clock, n.cfg.Indexes, func() bool { return !n.indexes.Built() })

	var entries []Entry
	n.log, err = core.OpenLog(env.Disk, rec.Names, rec.Index, decodeEntry, func(r core.Record) error {
		term, data, err := core.DecodeEntryPayload(r)
		if err != nil {
			return err
		}
		entries = append(entries, Entry{Term: term, Index: r.Index, Data: slices.Clone(data)})
		return nil
	}, env.Logf)
	if err != nil {
		return err
	}
	if err := env.Disk.SyncDir(); err != nil {
		return fmt.Errorf("syncing the data directory: %w", err)
	}
	if installing != 0 {
		// Only now, with the new log's first segment durable: a crash
		// before it left a snapshot without a log and no install
		// marked, which the next start would take for a lost log.
		n.saved.Installing = 0
		if err := n.state.Save(n.saved.encode()); err != nil {
			return err
		}
	}
	n.gc = core.NewGroupCommit(n.log, n.cfg.BatchBytesMax)
	n.snaps = core.NewSnapshotter(&n.env, n.log, n.cfg.SnapshotLogBytesMin, rec.Index, rec.Bytes)

	rc := DefaultConfig(n.cfg.ID, n.cfg.Peers, env.Rand)
	rc.ElectionTicks, rc.HeartbeatTicks = n.cfg.ElectionTicks, n.cfg.HeartbeatTicks
	rc.EntriesPerMsgMax, rc.MsgBytesMax = n.cfg.EntriesPerMsgMax, n.cfg.MsgBytesMax
	rc.InflightEntriesMax, rc.UncommittedEntriesMax, rc.ReadsPendingMax = n.cfg.InflightEntriesMax, n.cfg.UncommittedEntriesMax, n.cfg.ReadsPendingMax
	rc.UncommittedBytesMax, rc.InflightBytesMax = n.cfg.UncommittedBytesMax, n.cfg.InflightBytesMax
	rc.HardState = HardState{Term: n.saved.Term, Vote: n.saved.Vote, Commit: rec.Index, Rejoining: n.saved.Rejoining}
	if rec.Index > 0 {
		rc.Snapshot = &Snapshot{Index: rec.Index, Term: rec.Meta.Term}
	}
	rc.Entries = entries
	rc.mutation = n.cfg.Mutation
	if n.raft, err = New(rc); err != nil {
		return fmt.Errorf("%w: %v", core.ErrCorrupt, err)
	}
	n.out = make([]*sendState, len(n.raft.peers))
	n.seenRole, n.seenTerm, n.seenLead = n.raft.State(), n.raft.Term(), n.raft.Leader()
	n.armTicker()
	n.logf("recovered node %d: %d keys, snapshot at index %d (term %d), log through index %d, term %d",
		n.cfg.ID, n.store.Len(), rec.Index, rec.Meta.Term, n.log.NextIndex()-1, n.saved.Term)
	switch {
	case n.saved.Rejoining && saved == nil:
		n.logf("started on an empty data directory: no vote and no election until every other node has answered; if each is new too (term 0, empty), this is a new cluster and the nodes elect a leader; if not, this directory replaces the node's old one, and the node votes once the leader's committed log is on this disk")
	case n.saved.Rejoining && n.saved.Term == 0 && n.log.NextIndex() == 1 && rec.Index == 0:
		// A restart before the first start's wait was done (found by
		// review: it said "started on an empty data directory").
		n.logf("started again at term 0 before every other node had answered: still no vote and no election until they have; if each is new too (term 0, empty), this is a new cluster; if not, this directory replaced the node's old one, and the node votes once the leader's committed log is on this disk")
	case n.saved.Rejoining:
		n.logf("rejoining in place of a lost data directory: no vote and no election until every peer is heard from and the leader's committed log is on this disk")
	}
	return nil
}

// finishInstall completes an install of a leader's snapshot that a crash
// interrupted: if the snapshot took its name, the log of the history it
// replaced goes; if not, nothing changed. Start clears the install's mark
// once the log that follows is on disk.
func (n *Node) finishInstall(rec *core.Recovered) error {
	if rec.Index == n.saved.Installing {
		var keep []string
		for _, name := range rec.Names {
			if !core.IsLogFile(name) {
				keep = append(keep, name)
				continue
			}
			if err := n.env.Disk.Remove(name); err != nil {
				return fmt.Errorf("removing %s after installing the snapshot at %d: %w", name, rec.Index, err)
			}
		}
		if err := n.env.Disk.SyncDir(); err != nil {
			return fmt.Errorf("syncing the data directory: %w", err)
		}
		rec.Names = keep
		n.logf("finished installing the leader's snapshot at index %d: the log starts after it", rec.Index)
	}
	return nil // Start clears the mark once the new log is durable
}

func (n *Node) logf(format string, args ...any) {
	if n.env.Logf != nil {
		n.env.Logf(format, args...)
	}
}

func (n *Node) armTicker() {
	n.ticker = n.env.Clock.AfterFunc(n.cfg.TickInterval, n.tick)
}

func (n *Node) tick() {
	if n.stopped != nil {
		return
	}
	n.ticks++
	leading := n.raft.State() == Leader
	n.raft.Tick()
	n.tickTransfers()
	if n.diskFailed && n.raft.State() != Leader {
		if leading {
			n.logf("election: stepping down at term %d: the disk has refused this node's entries for an election timeout (%v); not standing again until it takes writes", n.raft.Term(), n.diskErr)
		}
		n.failWaiting()
		n.probeDisk()
	} else if n.diskFailed {
		// A leader that stays (too few healthy nodes to elect another)
		// and has nothing left to persist learns of room this way.
		n.probeDisk()
	}
	n.expireWrites()
	n.expireReads()
	n.proposeExpiry()
	n.armTicker()
}

// proposeExpiry has the leader propose the deletion of the keys whose
// deadline passed by its calendar clock, each only if its deadline is still
// the one seen (OpExpireDue): every replica deletes them when the command
// applies, so reads see a key until then and never after, on any leader,
// whatever their clocks. One expiry is in flight at a time: the next waits
// until it applied or the leadership changed, so that no key is proposed
// twice meanwhile.
func (n *Node) proposeExpiry() {
	if n.raft.State() != Leader || n.wall == nil || n.store.Expiring() == 0 {
		return
	}
	if n.expiryIndex > n.applied && n.expiryTerm == n.raft.Term() {
		return
	}
	cmd := core.Command{Op: core.OpExpireDue}
	cmd.Items, cmd.Ats = n.store.DueBatch(n.wallMs())
	if len(cmd.Items) == 0 {
		return
	}
	data, err := core.AppendCommand(nil, &cmd)
	assert(err == nil, "an expiry of %d keys fits a record: %v", len(cmd.Items), err)
	index, err := n.raft.Propose(data)
	if err != nil {
		return // not leading after all, or too much uncommitted: the next tick tries again
	}
	n.expiryIndex, n.expiryTerm = index, n.raft.Term()
	if n.cfg.Mutation == MutExpireAtPropose {
		for _, kv := range cmd.Items {
			n.store.Delete(kv.Key)
		}
	}
}

// wallMs is the calendar time in milliseconds since the Unix epoch.
func (n *Node) wallMs() int64 {
	if n.wall == nil {
		return 0
	}
	return n.wall.Wall() / int64(time.Millisecond)
}

// HandleRequest serves one client request: writes are proposed and
// answered once applied, reads wait for a majority to confirm the leader,
// and followers redirect both to the leader.
func (n *Node) HandleRequest(req *core.Request, reply core.ReplyFunc) {
	if n.stopped != nil {
		reply(core.ErrorResponse(core.CodeUnavailable, "node stopped: %v", n.stopped))
		return
	}
	if bad := n.cfg.Limits.Validate(req); bad != nil {
		reply(*bad)
		return
	}
	switch req.Op {
	case core.OpSet, core.OpDelete, core.OpBulkSet, core.OpBulkDelete, core.OpExpire, core.OpPersist, core.OpIncr:
		n.propose(req, reply)
	case core.OpGet:
		n.read(clientRead{key: req.Key, reply: reply})
	case core.OpTTL:
		n.read(clientRead{key: req.Key, ttl: true, reply: reply})
	case core.OpBulkGet:
		n.read(clientRead{keys: req.Keys, presence: req.Presence, reply: reply})
	case core.OpScan:
		if req.View != "" {
			// A consistent scan's next page reads the view its first
			// page pinned on this leader: it is of that instant, which
			// needs no read index now. Views go when the leadership
			// does (noteRole): a follower sends the client to the
			// leader, and a leader without the view says it is gone.
			if n.raft.State() != Leader && !n.views.Has(req.View, n.env.Clock.Now()) {
				reply(n.redirect())
				return
			}
			resp, _ := n.views.Scan(req, n.store, core.StoreAscend, n.cfg.Limits.RequestBytesMax, n.env.Clock.Now(), n.wallMs(), n.env.Rand)
			reply(resp)
			return
		}
		n.read(clientRead{scan: req, reply: reply})
	case core.OpSearch, core.OpSearchSimilar:
		if n.cfg.Indexes == nil {
			reply(n.indexes.Search(req)) // nil: the indexes_disabled error
			return
		}
		n.read(clientRead{search: req, reply: reply})
	case core.OpPing:
		reply(core.OKResponse())
	case core.OpStatus:
		st := n.status()
		reply(core.Response{OK: true, Status: &st})
	default:
		reply(core.ErrorResponse(core.CodeNotImplemented, "op %q is not served by a cluster node", req.Op))
	}
}

// heardTicks is how recently a peer must have been heard from to count as
// reachable: two election timeouts, so a peer between heartbeats, or one
// that only answers a campaign, counts.
func (n *Node) heardTicks() int { return 2 * n.cfg.ElectionTicks }

func (n *Node) heardWindow() time.Duration {
	return time.Duration(n.heardTicks()) * n.cfg.TickInterval
}

// peersHeard counts the peers heard from within heardTicks.
func (n *Node) peersHeard() int {
	heard := 0
	for _, p := range n.cfg.Peers {
		if at, ok := n.heardTick[p]; ok && p != n.cfg.ID && n.ticks-at <= n.heardTicks() {
			heard++
		}
	}
	return heard
}

// redirect answers a request that only the leader serves.
func (n *Node) redirect() core.Response {
	lead := n.raft.Leader()
	if rejoining := n.raft.RejoinStuck(); rejoining == len(n.cfg.Peers) {
		return core.ErrorResponse(core.CodeUnavailable, "no leader known, and none can be elected: no node may vote: every node is rejoining (on an empty data directory, while some node's log is not empty); see the nodes' logs")
	} else if rejoining > 0 {
		return core.ErrorResponse(core.CodeUnavailable, "no leader known, and none can be elected: too few nodes may vote: %d of %d are rejoining (on an empty data directory, while some node's log is not empty); see the nodes' logs", rejoining, len(n.cfg.Peers))
	}
	if unheard := n.raft.Unheard(); lead == None && len(unheard) > 0 {
		return core.ErrorResponse(core.CodeUnavailable, "no leader known: this node started on an empty data directory and votes only once every other node has answered (a new cluster elects its first leader with every node up); not yet heard: node %v; retry once they are up", unheard)
	}
	if unsettled := n.raft.Unsettled(); lead == None && len(unsettled) > 0 {
		return core.ErrorResponse(core.CodeUnavailable, "no leader known: a new cluster elects its first leader once every node has heard every other at term 0; not yet heard to be done: node %v; retry once they are up", unsettled)
	}
	if lead == None || lead == n.cfg.ID {
		if heard, quorum := n.peersHeard(), len(n.cfg.Peers)/2+1; heard+1 < quorum {
			return core.ErrorResponse(core.CodeUnavailable, "no leader known, and none can be elected now: this node has heard from %d of its %d peers in the last %v, and a leader needs %d of the %d nodes; retry once they are back",
				heard, len(n.cfg.Peers)-1, n.heardWindow(), quorum, len(n.cfg.Peers))
		}
		return core.ErrorResponse(core.CodeUnavailable, "no leader known (an election is under way); retry")
	}
	resp := core.ErrorResponse(core.CodeNotLeader, "node %d is the leader", lead)
	resp.Error.Leader = n.clientAddr(lead)
	return resp
}

func (n *Node) clientAddr(id core.NodeID) string {
	if a, ok := n.cfg.ClientAddrs[id]; ok {
		return a
	}
	return fmt.Sprintf("node %d", id)
}

func (n *Node) propose(req *core.Request, reply core.ReplyFunc) {
	if len(n.handOverHeld) > 0 {
		// Writes held during a hand-over go first: on one connection,
		// requests take effect in the order they were sent. A write that
		// came in the turn the hand-over ended (a tick's timeout, a
		// vote that deposed this node), before the turn's Flush released
		// them, was proposed ahead of them (found by review: a pipelined
		// set k=1, set k=2 left k=1).
		n.releaseHeld()
		if len(n.handOverHeld) > 0 {
			n.hold(req, reply)
			return
		}
	}
	if n.raft.State() != Leader {
		reply(n.redirect())
		return
	}
	if n.diskFailed {
		// This leader's disk refuses its entries: a write proposed now
		// would wait for the step-down (Raft's Tick) and end
		// outcome_unknown. Refused before it is proposed, it certainly
		// never applies, which the client is told as the single node
		// tells it.
		code := core.CodeIOError
		if errors.Is(n.diskErr, core.ErrDiskFull) {
			code = core.CodeDiskFull
		}
		if !n.raft.CanHandOver() {
			reply(core.ErrorResponse(code, "the leader's disk refuses writes (%v), and so do the disks of too many other nodes for another to be elected: the write was not proposed and not applied; reads are served; free space on the nodes' disks, then retry", n.diskErr))
			return
		}
		reply(core.ErrorResponse(code, "the leader's disk refuses writes (%v): the write was not proposed and not applied; retry (another node takes over if this one's disk stays failing)", n.diskErr))
		return
	}
	if resp, ok := n.answeredBefore(req); ok {
		// A retry of a write this node applied (its first answer lost,
		// or late): applied, it was committed, so its answer stands
		// whoever leads later, and is given at once. Proposed again, it
		// waited a round to its followers to be answered as a duplicate:
		// a client whose timeout was under that round timed out on every
		// retry of a write that had long applied (simulator, cluster seed
		// 302010: 16 s of retries). And its effect is its answer, not the
		// data bound, which it may well have filled itself.
		reply(resp)
		return
	}
	growth, full := n.storeFull(req)
	if full != nil {
		// Refused before it is proposed, so it never applies. Like a
		// leader's disk_full, a retry of a write whose earlier attempt's
		// outcome is unknown learns nothing from it: that attempt may
		// be in the log still.
		reply(*full)
		return
	}
	cmd := core.CommandFromRequest(req)
	if req.TTLMs != 0 {
		if n.wall == nil {
			reply(core.ErrorResponse(core.CodeNotImplemented, "ttl_ms: this node has no calendar clock to expire keys by"))
			return
		}
		// A deadline is after the epoch (the deadlines' order is their
		// bytes'): a calendar clock before 1970 gives none, where the
		// command's encoding failed an assertion and took the leader
		// down (found by review, on the single node).
		now := n.wallMs()
		if now < 0 {
			reply(core.ErrorResponse(core.CodeUnavailable, "ttl_ms: this node's calendar clock reads %d ms from the Unix epoch, before it: set the clock", now))
			return
		}
		// The deadline is the leader's: every replica applies the same.
		cmd.At = now + int64(req.TTLMs)
	}
	if n.cfg.Mutation == MutConditionAtPropose && cmd.Cond.Kind != core.CondNone && cmd.Op != core.OpExpire {
		if cur, found := n.store.Get(cmd.Items[0].Key); !cmd.Cond.Holds(cur, found) {
			reply(core.ConditionFailedResponse(cmd.Items[0].Key, cmd.Cond, cur, found))
			return
		}
		cmd.Cond = core.Condition{}
	}
	data, err := core.AppendCommand(nil, &cmd)
	if err != nil {
		reply(core.ErrorResponse(core.CodeTooLarge, "%v", err))
		return
	}
	if len(data) > EntryBytesMax {
		reply(core.ErrorResponse(core.CodeTooLarge, "write is %d bytes encoded; one write is at most %d (it must fit one log record and one message to each follower)", len(data), EntryBytesMax))
		return
	}
	index, err := n.raft.Propose(data)
	switch {
	case errors.Is(err, ErrNotLeader):
		reply(n.redirect())
		return
	case errors.Is(err, ErrProposalDropped):
		entries, bytes := n.raft.Uncommitted()
		reply(core.ErrorResponse(core.CodeUnavailable, "too many writes waiting to commit: the leader holds %d entries of %d bytes that a majority has not yet persisted (at most %d entries and %d bytes), and this write is %d bytes; its followers are slow or cut off: retry",
			entries, bytes, n.cfg.UncommittedEntriesMax, n.cfg.UncommittedBytesMax, len(data)))
		return
	case errors.Is(err, ErrTransferring):
		// Held until the hand-over ends, then sent on to the new leader
		// (not_leader, which a client follows at once) or, if it
		// failed, proposed here: refused, each went to another node
		// after a pause, and found the new leader tens or hundreds of
		// milliseconds after it was elected.
		n.hold(req, reply)
		return
	case err != nil:
		reply(core.ErrorResponse(core.CodeInternal, "%v", err))
		return
	}
	// Proposals that were at this index or after it belong to an earlier
	// leadership of this node and were cut from its log: they can never
	// commit (a leader's log holds every committed entry).
	for len(n.writes) > 0 && n.writes[len(n.writes)-1].index >= index {
		w := n.writes[len(n.writes)-1]
		n.writes = n.writes[:len(n.writes)-1]
		w.reply(superseded())
	}
	if growth > 0 {
		n.proposedGrowth = append(n.proposedGrowth, indexedGrowth{index: index, bytes: growth})
		n.proposedBytes += growth
	}
	w := pendingWrite{index: index, term: n.raft.Term(), client: req.ClientID, seq: req.Seq, reply: reply, tick: n.ticks}
	if req.Op == core.OpIncr {
		w.key = req.Key
	}
	n.writes = append(n.writes, w)
}

// indexedGrowth is the data bytes the write proposed at index adds.
type indexedGrowth struct {
	index uint64
	bytes int64
}

// storeFull refuses a write that adds growth data bytes (growth) if the
// store as applied, with the growth of the writes proposed and not yet
// applied, would pass the bound; nil when it may go on. Checked against
// the applied store alone, every write proposed within a round trip (or a
// stall of the followers' disks: up to Config.UncommittedEntriesMax of
// them, each up to EntryBytesMax) passed, and together they took the store
// past the bound by as much (found by review). A growth is reckoned
// against the applied store, so writes in flight to one new key count
// each: near the bound, that refuses more than it must, never less.
//
// It returns the growth to count for req while it is in flight: exact
// (a lookup a key) only near the bound; far from it, the write's keys and
// values counted as new (core.Limits.NearDataBound), which costs no
// lookup, and overcounts a write in flight by at most its own size.
func (n *Node) storeFull(req *core.Request) (int64, *core.Response) {
	if upperGrowth(req) > 0 {
		// A write that sets values, while the leader's indexes are at
		// their bound (core.Limits.IndexBytesMax).
		if full := n.indexes.Full(n.cfg.Limits); full != nil {
			return 0, full
		}
	}
	if n.cfg.Limits.DataBytesMax <= 0 {
		return 0, nil
	}
	i := 0
	for i < len(n.proposedGrowth) && n.proposedGrowth[i].index <= n.applied {
		// Applied (or another leader's entry took its index, and that
		// one applied): the store counts it now.
		n.proposedBytes -= n.proposedGrowth[i].bytes
		i++
	}
	n.proposedGrowth = n.proposedGrowth[i:]
	if len(n.proposedGrowth) == 0 {
		assert(n.proposedBytes == 0, "storeFull: %d data bytes in flight without a write", n.proposedBytes)
		n.proposedGrowth = nil
	}
	held := n.store.DataBytes()
	upper := upperGrowth(req)
	if !n.cfg.Limits.NearDataBound(held+n.proposedBytes, upper) {
		return upper, nil
	}
	growth := n.growth(req)
	if n.proposedBytes == 0 {
		return growth, n.cfg.Limits.StoreFull(held, growth)
	}
	if n.cfg.Limits.StoreFull(held+n.proposedBytes, growth) == nil {
		return growth, nil
	}
	r := core.ErrorResponse(core.CodeStoreFull, "the store holds %d data bytes, the %d writes in flight (proposed, not yet applied) that grow it add %d, and this write adds %d, past its bound of %d (--max-data-bytes): the write was not applied; delete keys, or raise the bound",
		held, len(n.proposedGrowth), n.proposedBytes, growth, n.cfg.Limits.DataBytesMax)
	return growth, &r
}

// incrValueBytesMax is the longest value an incr writes: an int64 in
// decimal, its sign included.
const incrValueBytesMax = 20

// upperGrowth is the most req's write can add to the store's data bytes:
// its keys counted as new (core.UpperDataGrowth).
func upperGrowth(req *core.Request) int64 {
	switch req.Op {
	case core.OpSet:
		return core.EntryDataBytes(len(req.Key), len(*req.Value))
	case core.OpBulkSet:
		return core.UpperDataGrowth(req.Items)
	case core.OpIncr:
		return core.EntryDataBytes(len(req.Key), incrValueBytesMax)
	}
	return 0
}

// growth is how many data bytes req's write would add to the store as
// this leader has applied it (core.Store.DataGrowth).
func (n *Node) growth(req *core.Request) int64 {
	switch req.Op {
	case core.OpSet:
		return n.store.DataGrowth([]core.KV{{Key: req.Key, Value: *req.Value}})
	case core.OpBulkSet:
		return n.store.DataGrowth(req.Items)
	case core.OpIncr:
		old, found := n.store.Get(req.Key)
		sum, code := core.Increment(old, found, req.IncrDelta())
		if code != "" {
			return 0 // refused when it applies, as it is now
		}
		return n.store.DataGrowth([]core.KV{{Key: req.Key, Value: strconv.FormatInt(sum, 10)}})
	}
	return 0
}

// handOverHeldMax bounds the writes a leader holds while it hands the
// office over (Node.handOverHeld); past it they are refused, unavailable.
const handOverHeldMax = 4096

// heldWrite is a write that came while this leader handed the office
// over, or a read that came after one (read not nil).
type heldWrite struct {
	req   *core.Request
	reply core.ReplyFunc
	read  *clientRead
	tick  int // when it came
}

// hold keeps a write that came during a hand-over, behind those held
// before it, for releaseHeld; past handOverHeldMax it is refused.
func (n *Node) hold(req *core.Request, reply core.ReplyFunc) {
	if len(n.handOverHeld) >= handOverHeldMax {
		reply(core.ErrorResponse(core.CodeUnavailable, "the leader is handing the office to another node (it is shutting down), and %d requests wait already; the write was not proposed: retry in a moment", len(n.handOverHeld)))
		return
	}
	n.handOverHeld = append(n.handOverHeld, heldWrite{req: req, reply: reply, tick: n.ticks})
}

// holdRead keeps a read that came while writes are held (hold) behind
// them: read at once, it saw none of them, though on its connection they
// came first and were answered first.
func (n *Node) holdRead(rd clientRead) {
	if len(n.handOverHeld) >= handOverHeldMax {
		rd.reply(core.ErrorResponse(core.CodeUnavailable, "the leader is handing the office to another node (it is shutting down), and %d requests wait already; retry in a moment", len(n.handOverHeld)))
		return
	}
	n.handOverHeld = append(n.handOverHeld, heldWrite{read: &rd, reply: rd.reply, tick: n.ticks})
}

// releaseHeld answers the writes held during a hand-over once it is over:
// this node leads still (the hand-over failed), so they are proposed; or
// another node leads, to which they are sent (not_leader); or, an election
// timeout after the first came, whatever this node knows then. The reads
// held behind them are asked in their places, in the order all came.
func (n *Node) releaseHeld() {
	if n.raft.Transferring() != None {
		return
	}
	if n.raft.State() != Leader && n.raft.Leader() == None && n.ticks-n.handOverHeld[0].tick < n.cfg.ElectionTicks {
		return // the election the hand-over began is under way
	}
	held := n.handOverHeld
	n.handOverHeld = nil
	for _, w := range held {
		if w.read != nil {
			n.read(*w.read)
			continue
		}
		n.propose(w.req, w.reply)
	}
}

// HandOver hands this node's office, if it leads, to its most up-to-date
// healthy follower (Raft.HandOverTarget, Raft.TransferLeadership), and
// returns that follower. A graceful shutdown calls it and waits, until
// HandedOver or an election timeout: the cluster then goes on after a round
// trip, where a leader that just stops leaves it without one for an
// election timeout. false: this node does not lead, or no follower can take
// the office (none heard from lately, or their disks refuse writes).
func (n *Node) HandOver() (core.NodeID, bool) {
	n.raft.SetLeaving() // whatever comes of it: the process is going
	to, ok := n.raft.HandOverTarget(func(id core.NodeID) bool {
		at, heard := n.heardTick[id]
		return heard && n.ticks-at <= 2*n.cfg.HeartbeatTicks
	})
	if !ok {
		return None, false
	}
	if err := n.raft.TransferLeadership(to); err != nil {
		return None, false
	}
	n.logf("handing the office to node %d: holding new writes until it leads (at most %v), then sending them to it", to, time.Duration(n.cfg.ElectionTicks)*n.cfg.TickInterval)
	return to, true
}

// HandedOver reports whether this node no longer leads and every write it
// took as leader has had its answer: what a graceful shutdown waits for
// after HandOver.
//
// It waits for the node to know the new leader, by an append from it:
// true as soon as this node had voted, it let the process go before the
// new leader had counted that vote (found by review), and the log named a
// node that did not lead yet.
func (n *Node) HandedOver() bool {
	lead := n.raft.Leader()
	return n.raft.State() != Leader && lead != None && lead != n.cfg.ID && len(n.writes) == 0 && len(n.handOverHeld) == 0
}

// HandOverFailed reports whether this node's hand-over has ended with the
// node leading still (the follower did not take the office within an
// election timeout): a shutdown then need not wait longer.
func (n *Node) HandOverFailed() bool {
	return n.raft.State() == Leader && n.raft.Transferring() == None
}

// Leader is the leader this node knows of, None if none.
func (n *Node) Leader() core.NodeID { return n.raft.Leader() }

func outcomeUnknown(why string) core.Response {
	return core.ErrorResponse(core.CodeOutcomeUnknown, "%s; the write may or may not be applied (retry it with the same client_id and seq)", why)
}

// expireWrites answers the writes that waited too long to be applied: a
// leader cut off from the majority, or a deposed one whose entries nobody
// commits.
func (n *Node) expireWrites() {
	i := 0
	for i < len(n.writes) && n.ticks-n.writes[i].tick >= n.cfg.WriteTicksMax {
		i++
	}
	if i == 0 {
		return
	}
	// Only a prefix in index order is cut: proposals are made in index
	// order within a leadership, and a later leadership's supersede the
	// earlier ones at the same indexes (propose), so ticks grow with index.
	expired := n.writes[:i]
	n.writes = n.writes[i:]
	why := fmt.Sprintf("not applied within %d ticks (no majority reached?)", n.cfg.WriteTicksMax)
	if n.diskFailed {
		why = fmt.Sprintf("not applied within %d ticks: this node's disk refuses writes (%v), so it cannot apply it, though the other nodes may commit it", n.cfg.WriteTicksMax, n.diskErr)
	}
	for _, w := range expired {
		w.reply(outcomeUnknown(why))
	}
}

// expireReads answers unavailable the reads that waited too long (as
// long as a write may) for a new leader's first commit or for the state
// machine to apply their index: a node whose disk refuses writes applies
// nothing, and its confirmed reads waited for it without end.
func (n *Node) expireReads() {
	late := func(rd clientRead) bool { return n.ticks-rd.tick >= n.cfg.WriteTicksMax }
	if !slices.ContainsFunc(n.confirmed, late) && !slices.ContainsFunc(n.notReady, late) {
		return
	}
	why := fmt.Sprintf("the read was not served within %d ticks: this node has not applied the writes it must see; retry", n.cfg.WriteTicksMax)
	if n.diskFailed {
		why = fmt.Sprintf("the read was not served within %d ticks: this node's disk refuses writes (%v), so it cannot apply the writes the read must see; retry", n.cfg.WriteTicksMax, n.diskErr)
	}
	n.confirmed = answerLate(n.confirmed, late, why)
	n.notReady = answerLate(n.notReady, late, why)
}

// answerLate answers unavailable the reads of rds that late picks, and
// returns the others, in order.
func answerLate(rds []clientRead, late func(clientRead) bool, why string) []clientRead {
	kept := rds[:0]
	for _, rd := range rds {
		if late(rd) {
			rd.reply(core.ErrorResponse(core.CodeUnavailable, "%s", why))
			continue
		}
		kept = append(kept, rd)
	}
	clear(rds[len(kept):])
	return kept
}

// failWaiting answers the writes and confirmed reads of a node that no
// longer leads while its disk refuses writes (the leader that stepped down
// for it, in Raft's Tick): it cannot apply them until the disk recovers,
// which may be never, and the client does better at the new leader.
func (n *Node) failWaiting() {
	for _, w := range n.writes {
		w.reply(outcomeUnknown(fmt.Sprintf("this node's disk refuses writes (%v) and it gave up the leadership, so it cannot apply the write; the other nodes may commit it", n.diskErr)))
	}
	n.writes = nil
	for _, rd := range n.confirmed {
		rd.reply(core.ErrorResponse(core.CodeUnavailable, "this node's disk refuses writes (%v) and it gave up the leadership, so it cannot apply the writes the read must see; retry at the leader", n.diskErr))
	}
	n.confirmed = nil
}

func superseded() core.Response {
	return core.ErrorResponse(core.CodeUnavailable, "the write was not committed: leadership changed before it was; retry")
}

func (n *Node) read(rd clientRead) {
	if len(n.handOverHeld) > 0 {
		// Behind the writes held during a hand-over (see propose).
		n.releaseHeld()
		if len(n.handOverHeld) > 0 {
			n.holdRead(rd)
			return
		}
	}
	if n.raft.State() != Leader {
		rd.reply(n.redirect())
		return
	}
	rd.upto = n.raft.LastIndex()
	if n.cfg.Mutation == MutReadWithoutIndex {
		n.confirmed = append(n.confirmed, rd) // index 0: answered at once
		n.releaseReads()
		return
	}
	if k := len(n.writes); k > 0 {
		// The read index (the commit index now) may be below the
		// writes proposed before it, those of its own connection among
		// them: a follower whose window of entries in flight was full
		// confirmed the read with a heartbeat, the writes not yet sent,
		// and a pipelined set k=2, get k answered ok, then k's old
		// value (found by review).
		rd.after = n.writes[k-1].index
	}
	n.readID++
	rd.id = n.readID
	rd.tick = n.ticks
	err := n.raft.ReadIndex(rd.id)
	switch {
	case err == nil:
		n.reads = append(n.reads, rd)
	case errors.Is(err, ErrReadNotReady) && len(n.notReady) < n.cfg.ReadsPendingMax:
		// A new leader learns the commit index with its first commit, a
		// round trip away: the read waits for it rather than bounce.
		n.notReady = append(n.notReady, rd)
	case errors.Is(err, ErrNotLeader):
		rd.reply(n.redirect())
	default:
		rd.reply(core.ErrorResponse(core.CodeUnavailable, "%v; retry", err))
	}
}

// retryNotReady asks again for the reads a new leader refused.
func (n *Node) retryNotReady() {
	if len(n.notReady) == 0 {
		return
	}
	waiting := n.notReady
	n.notReady = nil
	for _, rd := range waiting {
		if n.raft.State() != Leader {
			rd.reply(n.redirect())
			continue
		}
		err := n.raft.ReadIndex(rd.id)
		switch {
		case err == nil:
			n.reads = append(n.reads, rd)
		case errors.Is(err, ErrReadNotReady):
			n.notReady = append(n.notReady, rd)
		default:
			rd.reply(core.ErrorResponse(core.CodeUnavailable, "%v; retry", err))
		}
	}
}

// HandleMessage takes a peer's message.
func (n *Node) HandleMessage(from core.NodeID, msg []byte) {
	if n.stopped != nil || len(msg) == 0 {
		return
	}
	if slices.Contains(n.cfg.Peers, from) {
		if n.heardTick == nil {
			n.heardTick = make(map[core.NodeID]int, len(n.cfg.Peers))
		}
		n.heardTick[from] = n.ticks
	}
	switch msg[0] {
	case wireRaft:
		m, err := DecodeMessage(msg[1:])
		if err != nil || m.From != from {
			n.logf("dropping a message from node %d: %v (says from %d)", from, err, m.From)
			return
		}
		if m.Type == MsgSnap {
			// Snapshots travel in chunks (transfer.go), never inside a
			// Raft message.
			n.logf("dropping a whole-snapshot message from node %d", from)
			return
		}
		n.raft.Step(m)
	case wireChunk:
		c, err := decodeChunk(msg, n.cfg.SnapChunkBytes)
		if err != nil || c.From != from || c.To != n.cfg.ID {
			n.logf("dropping a snapshot chunk from node %d: %v", from, err)
			return
		}
		n.receiveChunk(&c)
	case wireChunkAck:
		a, err := decodeChunkAck(msg)
		if err != nil || a.From != from || a.To != n.cfg.ID {
			n.logf("dropping a chunk ack from node %d: %v", from, err)
			return
		}
		n.onChunkAck(&a)
	default:
		n.logf("dropping a message of unknown kind %d from node %d", msg[0], from)
	}
}

// Flush ends the turn: Raft's pending work is persisted (one write and one
// fsync for every entry of the turn, and the term and vote when they
// changed), then its messages sent, then what is committed applied and
// answered. Any disk error stops the node: it restarts from what is on
// disk, and the leader brings it up to date.
func (n *Node) Flush() error {
	if n.stopped != nil {
		return n.stopped
	}
	if n.views.Len() > 0 {
		n.views.Sweep(n.env.Clock.Now()) // no clock read on a turn without views
	}
	if len(n.handOverHeld) > 0 {
		n.releaseHeld()
	}
	for round := 0; ; round++ {
		n.retryNotReady()
		if n.inflight != nil || !n.raft.HasReady() {
			break // a Ready's entries are syncing: the next waits for them
		}
		if round == readyRoundsMax {
			n.takeAnotherTurn()
			break
		}
		ok, err := n.handleReady()
		if err != nil {
			n.stop(err)
			return n.stopped
		}
		if !ok {
			break // the disk refused a write: the next tick tries again
		}
	}
	n.stepSnapshot()
	if n.appliedAtFlush != n.applied {
		n.appliedAtFlush = n.applied
		n.pacer.Wrote()
	}
	n.noteRole()
	n.noteStuck()
	return n.stopped
}

// noteStuck logs, once, that the cluster cannot elect a leader because too
// many nodes are rejoining (Raft's RejoinStuck): the nodes would otherwise
// wait in silence for good, and only the operator can end it. The line
// starts "cannot elect a leader", which the server logs as an error. Once
// a leader is known after all (the operator restored a node from a
// backup, or the line came of a peer's answer from before it caught up),
// it says so, so that an operator reading the log (or alerting on the
// error) is not left with an error that no longer holds; the error may
// then be logged again.
func (n *Node) noteStuck() {
	if n.stuckLogged {
		if lead := n.raft.Leader(); lead != None {
			n.stuckLogged = false
			n.logf("a leader is elected after all: node %d in term %d; the cluster is no longer stuck as this node logged above", lead, n.raft.Term())
		}
		return
	}
	rejoining := n.raft.RejoinStuck()
	if rejoining == 0 {
		return
	}
	n.stuckLogged = true
	who := "every node is"
	if total := len(n.cfg.Peers); rejoining < total {
		who = fmt.Sprintf("%d of its %d nodes are", rejoining, total)
	}
	n.logf("cannot elect a leader: %s rejoining (started on an empty data directory while another node's log is not empty, and not yet caught up with a leader), and a rejoining node grants no vote, so no majority may vote. Too few nodes kept their data directories to recover the cluster's writes: restore it from a backup, or start it anew", who)
}

// noteRole logs a change of role, term or leader, one line each, once a
// turn: what an operator reads an election from.
func (n *Node) noteRole() {
	role, term, lead := n.raft.State(), n.raft.Term(), n.raft.Leader()
	if role == n.seenRole && term == n.seenTerm && lead == n.seenLead {
		return
	}
	if lead != None && (lead != n.seenLead || term != n.seenTerm) {
		n.leaderChanges++
	}
	n.seenRole, n.seenTerm, n.seenLead = role, term, lead
	if role != Leader {
		// A walk ends where the leadership does, and a follower keeps no
		// old stores alive (its snapshot installs replace the store).
		n.views.Clear()
	}
	switch {
	case role == Leader:
		n.logf("election: became leader at term %d", term)
	case role == Follower && lead != None:
		n.logf("election: following node %d, the leader at term %d", lead, term)
	case role == Follower:
		n.logf("election: follower at term %d, no leader known", term)
	case role == Candidate:
		n.logf("election: standing for election at term %d", term)
	default:
		n.logf("election: %s at term %d: no leader heard from, asking for pre-votes", role, term)
	}
}

func (n *Node) stop(err error) {
	if n.stopped == nil {
		n.stopped = fmt.Errorf("stopping: %w", err)
	}
}

// takeAnotherTurn makes sure the host runs another turn soon.
func (n *Node) takeAnotherTurn() {
	if n.again != nil {
		return
	}
	n.again = n.env.Clock.AfterFunc(0, func() { n.again = nil })
}

// handleReady persists, sends and applies one Ready. It reports false when
// the disk refused a write (full or failing): what was not persisted waits
// for another Ready.
func (n *Node) handleReady() (bool, error) {
	rd := n.raft.Ready()
	if rd.Snapshot != nil {
		if err := n.install(rd.Snapshot); err != nil {
			return false, err
		}
	} else if n.in != nil && n.in.stepped {
		n.dropReceived() // Raft did not want it after all
	}
	// A full or failing disk must not stop the node: what it cannot
	// persist it does not vouch for, and the rest goes on. An fsync that
	// fails does stop it, since the kernel may have dropped the pages.
	hardSaved := true
	if rd.HardState.Term != n.saved.Term || rd.HardState.Vote != n.saved.Vote || rd.HardState.Rejoining != n.saved.Rejoining {
		next := n.saved
		next.Term, next.Vote, next.Rejoining = rd.HardState.Term, rd.HardState.Vote, rd.HardState.Rejoining
		if n.cfg.Mutation == MutVoteNotPersisted {
			// The term is saved, the vote is not, and is sent anyway.
			onDisk := next
			onDisk.Vote = None
			if next.Term != n.saved.Term {
				hardSaved = n.state.Save(onDisk.encode()) == nil
			}
			if hardSaved {
				n.saved = next
			}
		} else if err := n.state.Save(next.encode()); err != nil {
			// The file still holds the last state saved (StateFile.Save),
			// and nothing acts on the new one until it is saved.
			n.diskFailing("saving the term and vote", err)
			hardSaved = false
		} else {
			if n.saved.Rejoining && !next.Rejoining && n.raft.JoinedNew() {
				n.logf("every other node answered at term 0 with an empty log: a new cluster, where no leader was ever elected; votes from term %d on", next.Term+1)
			} else if n.saved.Rejoining && !next.Rejoining {
				n.logf("rejoined: heard every peer and holds the committed log through index %d; votes from term %d on", rd.HardState.Commit, next.Term+1)
			}
			n.saved = next
			if len(rd.Entries) == 0 {
				// A write went through and none failed. (With entries
				// to persist, their outcome decides: a small state file
				// may save where the log cannot grow.)
				n.diskWorks()
			}
		}
	}
	// Committed entries are on this node's disk already (Raft hands out
	// only those), so they are applied now, while the Ready's own entries
	// sync.
	//
	// The reads this Ready confirms are answered between them, each
	// before the first entry proposed after it: the majority that
	// commits such an entry confirmed the read too, in the same round
	// trip, and a read answered after the turn's entries all applied saw
	// the writes that came after it (found by the hand-over history
	// review: a pipelined get k, set k=2 read 2).
	n.readStates(rd.ReadStates)
	for _, e := range rd.Committed {
		n.releaseReads()
		if err := n.apply(e); err != nil {
			return false, err
		}
	}
	n.releaseReads()
	if !hardSaved {
		// Nothing may leave that relies on the term and vote; the entries
		// wait too. Advance takes the term and vote as saved anyway, but
		// handleReady compares with what was saved, so the next Ready (at
		// the next tick at the latest) tries again.
		rd.Entries, rd.Messages = nil, nil
		n.raft.Advance(rd)
		return false, nil
	}
	// A leader's appends go out before its own copy is on disk, so that
	// the followers' fsyncs overlap its own: Raft counts the leader's copy
	// toward a quorum only once Advance says it is persisted (§10.2.1 of
	// the thesis).
	for i := range rd.Messages {
		if m := &rd.Messages[i]; early(m) {
			n.send(m)
		}
	}
	if len(rd.Entries) == 0 {
		n.finishReady(rd, true)
		return true, nil
	}
	// The entries sync in the background where the disk can (the next
	// Ready waits for them, while requests and messages go on stepping
	// Raft): pipelined group commit, as in the single node.
	n.inflight = &rd
	if err := n.persist(rd.Entries, func(err error) {
		if err != nil {
			n.stop(err) // a failed fsync: the pages may be gone
			return
		}
		n.diskWorks()
		n.finishReady(rd, true)
	}); err != nil {
		if !errors.Is(err, errWrite) {
			return false, err
		}
		n.diskFailing("writing log entries", err)
		n.finishReady(rd, false)
		return false, nil
	}
	return true, nil
}

// finishReady ends a Ready once its entries are durable (persisted), or
// known not to be: its remaining messages leave — all of them, or those
// that vouch for nothing the disk refused — and Raft advances.
func (n *Node) finishReady(rd Ready, persisted bool) {
	n.inflight = nil
	// On disk, and the leader's: the log before the first entry that
	// failed (the Ready's entries are every one not yet persisted, and an
	// append cuts a conflicting entry from the Ready's first on).
	var onDisk uint64
	if len(rd.Entries) > 0 {
		onDisk = rd.Entries[0].Index - 1
	}
	if !persisted && n.cfg.Mutation != MutCommitBeforePersist {
		// Raft takes the entries as not persisted (they come again in the
		// next Ready); an acknowledgement that relied on them must not
		// leave.
		rd.Entries = nil
	}
	for i := range rd.Messages {
		m := &rd.Messages[i]
		if early(m) {
			continue
		}
		if !persisted && m.Type == MsgAppResp && !m.Reject {
			// It acknowledges only what is on disk, and says that the
			// disk refuses writes. Dropped whole, it took with it the
			// leader's read round it echoes (Context): with most disks
			// full, no read was confirmed, though reads need no disk
			// (found by review).
			ack := *m
			ack.Index, ack.RejectHint = min(m.Index, onDisk), diskFailingHint
			n.send(&ack)
			continue
		}
		n.send(m)
	}
	n.raft.Advance(rd)
}

// early reports whether m may leave before the Ready's entries are on
// disk: a leader's appends and snapshots, which vouch for nothing of the
// sender's disk.
func early(m *Message) bool { return m.Type == MsgApp || m.Type == MsgSnap }

// errWrite marks a log write that failed and was undone: the log is as it
// was before it, and the node may go on.
var errWrite = errors.New("log write failed and was undone")

// diskFailing logs a failure to persist, once until the disk works again,
// and tells Raft, which stands in no election meanwhile and, leading,
// steps down if it lasts (Raft's Tick).
func (n *Node) diskFailing(what string, err error) {
	if !n.diskFailed {
		n.logf("%s failed; not acknowledging, voting, standing for election or taking writes until the disk takes writes again (a leader steps down after an election timeout): %v", what, err)
	}
	n.diskFailed, n.diskErr = true, err
	n.raft.SetDiskFailing(true)
}

// probeDisk tries the disk of a node that stands in no election for its
// failure, once an election timeout, when nothing else would: a node that
// has entries or a term and vote to persist retries them at every Ready,
// but one that failed only to save a vote, with no leader to send it
// anything, would take no Ready again, and every node of a cluster whose
// disks filled during an election would wait for good once they had room.
// The probe saves again the state already saved, which changes nothing.
func (n *Node) probeDisk() {
	n.diskProbeTicks++
	if n.diskProbeTicks < n.cfg.ElectionTicks || n.inflight != nil || n.raft.HasReady() {
		return
	}
	n.diskProbeTicks = 0
	if err := n.state.Save(n.saved.encode()); err != nil {
		n.diskErr = err
		return
	}
	n.diskWorks()
}

// diskWorks ends a failure of the disk: a write went through.
func (n *Node) diskWorks() {
	if n.diskFailed {
		n.logf("the disk takes writes again")
	}
	n.diskFailed, n.diskErr, n.diskProbeTicks = false, nil, 0
	n.raft.SetDiskFailing(false)
}

// persist writes entries to the log and syncs them, calling durable with
// the outcome (in a later turn when the file syncs in the background): the
// log after the first of them is replaced. An error matching errWrite is a
// write that failed and was undone; durable is then not called.
func (n *Node) persist(ents []Entry, durable func(error)) error {
	first := ents[0].Index
	if first < n.log.NextIndex() {
		if err := n.log.TruncateFrom(first); err != nil {
			return err
		}
		n.gc.Rebased()
		// This node's copies of its proposals from first on are gone. They
		// may still commit — another node may hold them and lead later —
		// so their outcome is unknown, and waiting for the log to grow
		// that far could take forever on an idle cluster.
		for len(n.writes) > 0 && n.writes[len(n.writes)-1].index >= first {
			w := n.writes[len(n.writes)-1]
			n.writes = n.writes[:len(n.writes)-1]
			w.reply(outcomeUnknown("leadership changed and this node's copy of the write was replaced"))
		}
	}
	assert(first == n.log.NextIndex(), "persist: entries start at %d, the log's next index is %d", first, n.log.NextIndex())
	if n.log.Size() >= n.cfg.SegmentBytesMax {
		// A roll that fails (a full disk, a directory sync's I/O error)
		// leaves the log as it was, so the entries go in the current
		// segment and the next persist tries again, as a single node
		// does: the node stopped here before, and on a full disk could
		// not start again (found by review).
		if err := n.log.Roll(first); err != nil {
			n.logf("cannot start a new log segment (will retry): %v", err)
		} else {
			n.gc.Rolled()
		}
	}
	_ = n.log.Reserve() // an optimisation; a failure only makes fsyncs slower
	for _, e := range ents {
		n.buf = core.AppendEntryPayload(n.buf[:0], e.Term, e.Data)
		index := n.gc.Add(core.RecordEntry, n.buf)
		assert(index == e.Index, "persist: entry %d logged as record %d", e.Index, index)
	}
	writeErr, fatal := n.gc.Commit(false, durable)
	if fatal != nil {
		return fatal
	}
	if writeErr != nil {
		return fmt.Errorf("%w: %w", errWrite, writeErr)
	}
	return nil
}

func (n *Node) send(m *Message) {
	if m.Type == MsgSnap {
		n.startTransfer(m)
		return
	}
	b := append(make([]byte, 0, 1+messageBytes(m)), wireRaft)
	n.env.Network.Send(m.To, AppendMessage(b, m))
}

// decodeEntry decodes a logged entry as recovery and apply do: its term,
// then no data (a new leader's first entry) or a command.
func decodeEntry(r core.Record) error {
	_, data, err := core.DecodeEntryPayload(r)
	if err == nil && len(data) > 0 {
		_, err = core.DecodeCommand(data)
	}
	return err
}

// apply applies one committed entry to the store and answers the write
// proposed for it, if this node proposed it.
func (n *Node) apply(e Entry) error {
	assert(e.Index == n.applied+1, "apply: entry %d after applied %d", e.Index, n.applied)
	n.applied, n.appliedTerm = e.Index, e.Term
	oc := applied
	var cmd core.Command
	var deleted uint64
	var cur string // a conditional command's key's value, once checked
	var found bool
	var was int64        // an expire's key's deadline before it applied (0: none)
	var sum result       // an incr's answer
	if len(e.Data) > 0 { // an empty entry is a new leader's first
		var err error
		cmd, err = core.DecodeCommand(e.Data)
		if err != nil {
			return fmt.Errorf("%w: committed entry %d does not decode: %v", core.ErrCorrupt, e.Index, err)
		}
		var holds func() bool
		if cmd.Cond.Kind != core.CondNone {
			holds = func() bool {
				cur, found = n.store.Get(cmd.Items[0].Key)
				return cmd.Cond.Holds(cur, found)
			}
		}
		switch {
		case cmd.ClientID != 0 && n.cfg.Mutation == MutCondFailureKeptInSession:
			if oc = n.sess.admit(cmd.ClientID, cmd.Seq, cmd.Acked, e.Index, nil); oc == applied && holds != nil && !holds() {
				oc = unmet
			}
		case cmd.ClientID != 0:
			oc = n.sess.admit(cmd.ClientID, cmd.Seq, cmd.Acked, e.Index, holds)
			if oc == unmet && n.cfg.Mutation == MutRefusedNotKept {
				n.sess.unrecord(cmd.ClientID, cmd.Seq)
			}
		case holds != nil && !holds():
			oc = unmet
		}
		if oc == applied && cmd.Op == core.OpExpireDue && n.cfg.Mutation == MutExpiryAsPlainDelete {
			cmd.Op, cmd.Ats = core.OpBulkDelete, nil
		}
		if oc == applied && cmd.Op == core.OpExpire {
			was, _ = n.store.Deadline(cmd.Items[0].Key)
		}
		if oc == duplicate && cmd.Op == core.OpIncr && n.cfg.Mutation == MutIncrRetryApplies {
			oc = applied
			n.sess.unkeep(cmd.ClientID, cmd.Seq)
		}
		switch {
		case oc == applied && cmd.Op == core.OpIncr:
			var code string
			sum.n, code = n.store.Incr(cmd.Items[0].Key, cmd.Delta)
			sum.code = resultCodeOf(code)
			if cmd.ClientID != 0 {
				n.sess.keep(cmd.ClientID, cmd.Seq, sum)
			}
		case oc == applied:
			deleted = n.store.Apply(&cmd)
		}
	}
	if n.cfg.OnApply != nil {
		what := ""
		if len(e.Data) > 0 {
			what = oc.String()
		}
		n.cfg.OnApply(e.Index, e.Term, cmd.ClientID, cmd.Seq, what)
	}
	resp := outcomeResponse(oc)
	switch {
	case cmd.Op == core.OpExpire && (oc == unmet || oc == refused):
		// Refused for a key that did not exist when it first applied:
		// that is the answer, whatever the key holds now.
		resp = core.NotFoundResponse(cmd.Items[0].Key)
	case cmd.Op == core.OpExpire && oc == applied && cmd.At == 0 && was != 0 && n.wall != nil:
		// A persist says what the key had left. (A retry's answer
		// cannot: the deadline it took away is gone.)
		left := uint64(max(was-n.wallMs(), 0))
		resp.TTLMs = &left
	case oc == unmet:
		resp = core.ConditionFailedResponse(cmd.Items[0].Key, cmd.Cond, cur, found)
	case oc == refused:
		// A copy of a refused write: not applied, whatever the key holds
		// now. If the condition still fails, that is a refusal now, with
		// the value; if it holds, the value it was refused on is gone.
		cur, found = n.store.Get(cmd.Items[0].Key)
		resp = refusedEarlier("the key has changed since so that the condition would hold")
		if !cmd.Cond.Holds(cur, found) {
			resp = core.ConditionFailedResponse(cmd.Items[0].Key, cmd.Cond, cur, found)
		}
	}
	if oc == applied && cmd.Op == core.OpBulkDelete {
		// The count is this application's; a duplicate's is not known.
		resp.Deleted = &deleted
	}
	switch {
	case oc == applied && cmd.Op == core.OpIncr:
		resp = core.IncrResponse(cmd.Items[0].Key, sum.n, sum.code.String())
	case oc == duplicate && cmd.Op == core.OpIncr:
		// Answered as the first attempt was.
		resp = n.incrAnswer(cmd.Items[0].Key, cmd.ClientID, cmd.Seq)
	}
	n.resolveWrites(e.Index, e.Term, resp)
	return nil
}

// resolveWrites answers the proposals up to index, now that the entry at
// index (of term) was applied, answering resp. A proposal at a lower index
// that is still waiting, or one at index of another term, lost its place
// in the log to another leader's entry.
func (n *Node) resolveWrites(index, term uint64, resp core.Response) {
	for len(n.writes) > 0 && n.writes[0].index <= index {
		w := n.writes[0]
		n.writes = n.writes[1:]
		if w.index != index || w.term != term {
			w.reply(superseded())
			continue
		}
		w.reply(resp)
	}
}

// incrAnswer answers an incr that its session says was applied: its
// answer then, kept by the session. None is kept when the client sent
// another write under the same seq, a client's bug the answer names.
func (n *Node) incrAnswer(key string, client, seq uint64) core.Response {
	r, ok := n.sess.result(client, seq)
	if !ok {
		return core.ErrorResponse(core.CodeBadRequest, "client %d's seq %d was applied as another write than this incr: a retry must repeat its write", client, seq)
	}
	return core.IncrResponse(key, r.n, r.code.String())
}

// answeredBefore answers a session write that this node's session table
// says was applied, as its apply answered a copy of it (a duplicate), for
// a write about to be refused store_full before it is proposed: a retry
// of a write whose answer was lost, refused so, said nothing of the
// attempt that applied, and its client could only call the outcome
// unknown. One refused for its condition goes on to the refusal: its
// copy's answer needs the apply's reading of the key.
func (n *Node) answeredBefore(req *core.Request) (core.Response, bool) {
	if req.ClientID == 0 {
		return core.Response{}, false
	}
	if _, applied, _ := n.sess.has(req.ClientID, req.Seq); !applied {
		return core.Response{}, false
	}
	if req.Op == core.OpIncr {
		return n.incrAnswer(req.Key, req.ClientID, req.Seq), true
	}
	return outcomeResponse(duplicate), true
}

// refusedEarlier answers a copy of a session write that was refused for
// its condition when it first applied.
func refusedEarlier(why string) core.Response {
	return core.ErrorResponse(core.CodeConditionRefusedEarlier, "this write (its client_id and seq) was refused when it first applied, its condition unmet, and its answer was lost; %s, so the value it was refused on is not known: nothing was written", why)
}

func outcomeResponse(oc outcome) core.Response {
	switch oc {
	case applied, duplicate:
		return core.OKResponse()
	case expired:
		return core.ErrorResponse(core.CodeSessionExpired, "the cluster no longer remembers this client's session, so a retry could not be told from a new write: not applied; the outcome of earlier attempts is unknown")
	default:
		return core.ErrorResponse(core.CodeSessionExpired, "the client had already given this write up (its seq is below acked): not applied")
	}
}

func (n *Node) readStates(states []ReadState) {
	for _, rs := range states {
		assert(len(n.reads) > 0 && n.reads[0].id == rs.ID, "read state %d does not answer the oldest read asked", rs.ID)
		rd := n.reads[0]
		n.reads = n.reads[1:]
		if rs.Lost {
			rd.reply(n.redirect())
			continue
		}
		rd.index = rs.Index
		n.confirmed = append(n.confirmed, rd)
	}
}

// releaseReads answers the confirmed reads whose index is applied.
func (n *Node) releaseReads() {
	for len(n.confirmed) > 0 && n.confirmed[0].index <= n.applied {
		rd := n.confirmed[0]
		if rd.after > 0 && len(n.writes) > 0 && n.writes[0].index <= rd.after {
			break // a write that came before it waits for its answer
		}
		n.confirmed = n.confirmed[1:]
		if n.applied > rd.upto && n.cfg.Mutation != MutReadWithoutIndex {
			// Entries proposed after the read are applied already (a
			// read a new leader confirmed once it had committed its
			// first entry): the store may hold writes sent after it on
			// its connection. Refused, it observed nothing.
			rd.reply(core.ErrorResponse(core.CodeUnavailable, "the read was confirmed only after writes that came after it were applied; retry"))
			continue
		}
		if rd.search != nil {
			// Applied entries are committed: the answer needs no wait, in
			// whichever turn it comes.
			n.indexes.Answer(rd.search, rd.reply)
			continue
		}
		if rd.keys != nil {
			rd.reply(core.BulkGetResponse(rd.keys, n.store.Get, n.cfg.Limits.BulkGetBytesMax(rd.presence)))
			continue
		}
		if rd.scan != nil {
			resp, _ := n.views.Scan(rd.scan, n.store, core.StoreAscend, n.cfg.Limits.RequestBytesMax, n.env.Clock.Now(), n.wallMs(), n.env.Rand)
			rd.reply(resp)
			continue
		}
		value, ok := n.store.Get(rd.key)
		switch {
		case !ok:
			rd.reply(core.NotFoundResponse(rd.key))
		case rd.ttl:
			rd.reply(core.TTLResponse(n.store, rd.key, n.wallMs()))
		default:
			rd.reply(core.Response{OK: true, Value: &value})
		}
	}
}

// stepSnapshot writes the snapshot in progress a chunk further, or starts
// one when enough log has gathered; a durable snapshot compacts Raft's log
// (the Snapshotter removed the log segments it covers).
func (n *Node) stepSnapshot() {
	if !n.snaps.Writing() {
		// Not while a Ready is in flight: its committed entries are applied
		// here but not yet in Raft's count, and Compact needs them there.
		if n.inflight != nil || n.applied <= n.snaps.Index() || !n.snaps.Due(n.gc.BytesAdded()) {
			return
		}
		n.snapTerm = n.appliedTerm
		meta := core.SnapshotMeta{Term: n.appliedTerm, Extra: n.sess.encode()}
		if n.cfg.Mutation == MutSessionsNotInSnapshot {
			meta.Extra = newSessions(n.cfg.SessionsMax).encode()
		}
		n.snaps.Start(n.store.Clone(), n.applied, meta, n.gc.BytesAdded())
	}
	if index := n.snaps.Step(); index > 0 {
		// Raft's snapshot must be the one on disk: it is what a follower
		// that needs compacted entries is sent.
		err := n.raft.Compact(Snapshot{Index: index, Term: n.snapTerm})
		assert(err == nil, "compacting the log at the snapshot's index %d: %v", index, err)
		n.snapshotReplaced(index)
	}
}

func (n *Node) status() core.Status {
	st := core.Status{
		Mode:          "cluster",
		Keys:          n.store.Len(),
		LastIndex:     n.raft.LastIndex(),
		SnapshotIndex: n.snaps.Index(),
		WALSegments:   n.log.Segments(),
		WALBytes:      n.log.TotalBytes(),
		Snapshotting:  n.snaps.Writing(),
		ScanViews:     n.views.Len(),
		Expiring:      n.store.Expiring(),
		DataBytes:     n.store.DataBytes(),
		DataBytesMax:  n.cfg.Limits.DataBytesMax,
		IndexBytesMax: core.IndexBytesMax(n.indexes, n.cfg.Limits),
		Indexes:       n.indexes.Status(),
	}
	cs := &core.ClusterStatus{
		NodeID:    int(n.cfg.ID),
		Role:      n.raft.State().String(),
		Term:      n.raft.Term(),
		LeaderID:  int(n.raft.Leader()),
		Commit:    n.raft.Committed(),
		Applied:   n.applied,
		Sessions:  n.sess.len(),
		Rejoining: n.Rejoining(),
	}
	if lead := n.raft.Leader(); lead != None {
		cs.Leader = n.clientAddr(lead)
	}
	for _, p := range n.raft.Progress() {
		ps := core.PeerStatus{NodeID: int(p.ID), Match: p.Match, Next: p.Next, Active: p.Active}
		if i := slices.Index(n.raft.peers, p.ID); i >= 0 && n.out[i] != nil {
			ps.Snapshot = true
		}
		cs.Peers = append(cs.Peers, ps)
	}
	st.Cluster = cs
	return st
}

// Metrics implements core.MetricsReporter.
func (n *Node) Metrics() core.Metrics {
	return core.Metrics{Status: n.status(), Log: n.gc.Counters(), Snapshots: n.snaps.Counters(), LeaderChanges: n.leaderChanges}
}

// Store exposes the applied state for tests and checkers. Callers must not
// modify it.
func (n *Node) Store() *core.Store { return n.store }

// Raft exposes the consensus state for tests and status.
func (n *Node) Raft() *Raft { return n.raft }

// Close releases open files. The node must not be used afterwards.
func (n *Node) Close() {
	if n.snaps != nil {
		n.snaps.Close()
	}
	if n.log != nil {
		n.log.Close()
	}
	if n.state != nil {
		n.state.Close()
	}
	if n.in != nil && n.in.file != nil {
		n.in.file.Close()
	}
	n.closeOut()
}

// IndexesCover reports whether the indexes hold key's value (whatever it
// holds): a rebuild in steps has walked past it (see
// core.AttachedIndexes). For the simulator's index checker.
func (n *Node) IndexesCover(key string) bool { return n.indexes.Covers(key) }
