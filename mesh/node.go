package mesh

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"dkv/core"
)

// Config tunes a mesh node. DefaultConfig gives sane values.
type Config struct {
	ID core.NodeID
	// Nodes lists every node of the mesh, this one included.
	Nodes []core.NodeID
	// Removed lists the nodes of Nodes removed from the mesh for good
	// (removed.go): no peers of this node, and their data directories,
	// then and later, refused.
	Removed []core.NodeID
	// MeshID is written into the data directory at the first start; a
	// node started on another mesh's directory refuses to start.
	MeshID uint64
	Limits core.Limits

	SegmentBytesMax     int64
	SnapshotLogBytesMin int64
	BatchBytesMax       int

	// MaxOffset is how far ahead of this node's calendar time a peer's or
	// a client's stamp may be. A message beyond it is dropped (and logged):
	// accepting it would drag this node's clock, and every stamp after it,
	// into the future.
	MaxOffset time.Duration
	// WriteQuorum is how many nodes (this one included) must hold a write
	// durably before it is acknowledged, unless the request says otherwise.
	// 1: this node's fsync only.
	WriteQuorum int
	// QuorumTimeout bounds how long a write waits for its quorum; it is
	// answered outcome_unknown then (it is durable here and will still
	// reach the others). It also bounds how long a node that has not
	// joined its mesh (join.go) holds a write before refusing it
	// unavailable, without effect. QuorumResend is how often the write is sent again
	// to peers that have not acknowledged it.
	QuorumTimeout time.Duration
	QuorumResend  time.Duration
	// QuorumWaitsMax bounds the writes waiting for a quorum, and apart
	// the writes a node that has not joined holds (join.go); more are
	// refused unavailable.
	QuorumWaitsMax int

	// AntiEntropyInterval is the pause between anti-entropy rounds with a
	// peer when the last one found nothing to repair (rounds that repair
	// follow each other at once). RoundTimeout gives up on an unanswered
	// round; doubled, up to 32 times, for a peer heard from meanwhile (a
	// slow link; roundGivenUp).
	AntiEntropyInterval time.Duration
	RoundTimeout        time.Duration
	// SummaryItemsMax bounds the keys one summary lists, and PushBytesMax
	// the bytes of one summary's keys and of the items one push or pull
	// answer carries: the work of one round.
	SummaryItemsMax int
	PushBytesMax    int
	// CollectPerTurnMax bounds the tombstones collected in one turn.
	CollectPerTurnMax int

	// Mutation plants a bug, for the simulator's tests only.
	Mutation Mutation
	// Indexes, when set, serve the search ops over this node's live
	// values (see core.Indexes), rebuilt at start as IndexBuild paces it
	// (see core.AttachedIndexes).
	Indexes    core.Indexes
	IndexBuild core.IndexBuildConfig
}

// DefaultConfig is the configuration cmd/node uses unless told otherwise.
func DefaultConfig(id core.NodeID, nodes []core.NodeID) Config {
	limits := core.DefaultLimits()
	limits.QuorumMax = len(nodes)
	return Config{
		ID:                  id,
		Nodes:               nodes,
		Limits:              limits,
		SegmentBytesMax:     64 << 20,
		SnapshotLogBytesMin: 64 << 20,
		BatchBytesMax:       4 << 20,
		MaxOffset:           500 * time.Millisecond,
		WriteQuorum:         1,
		QuorumTimeout:       2 * time.Second,
		QuorumResend:        250 * time.Millisecond,
		QuorumWaitsMax:      100_000,
		AntiEntropyInterval: time.Second,
		RoundTimeout:        2 * time.Second,
		SummaryItemsMax:     4096,
		PushBytesMax:        4 << 20,
		CollectPerTurnMax:   1000,
	}
}

func (c *Config) validate() error {
	if !slices.Contains(c.Nodes, c.ID) {
		return fmt.Errorf("mesh: node %d is not among the nodes %v", c.ID, c.Nodes)
	}
	if len(c.Nodes) > nodesMax {
		return fmt.Errorf("mesh: %d nodes; at most %d", len(c.Nodes), nodesMax)
	}
	sorted := slices.Clone(c.Nodes)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(c.Nodes) {
		return fmt.Errorf("mesh: node ids repeat in %v", c.Nodes)
	}
	if err := c.validateRemoved(); err != nil {
		return err
	}
	if c.WriteQuorum < 1 || c.WriteQuorum > c.members() {
		return fmt.Errorf("mesh: write quorum %d; must be 1..%d (the nodes not removed)", c.WriteQuorum, c.members())
	}
	if c.Limits.QuorumMax != c.members() {
		return fmt.Errorf("mesh: Limits.QuorumMax %d must be the number of nodes not removed, %d", c.Limits.QuorumMax, c.members())
	}
	if c.SegmentBytesMax <= 0 || c.SnapshotLogBytesMin <= 0 || c.BatchBytesMax <= 0 || c.MaxOffset <= 0 ||
		c.QuorumTimeout <= 0 || c.QuorumResend <= 0 || c.QuorumWaitsMax <= 0 || c.AntiEntropyInterval <= 0 ||
		c.RoundTimeout <= 0 || c.SummaryItemsMax <= 0 || c.PushBytesMax <= 0 || c.CollectPerTurnMax <= 0 {
		return errors.New("mesh: every size, count and duration of the config must be positive")
	}
	if c.SummaryItemsMax > SummaryItemsMaxMax {
		return fmt.Errorf("mesh: SummaryItemsMax %d; at most %d (peers refuse a longer summary)", c.SummaryItemsMax, SummaryItemsMaxMax)
	}
	return nil
}

// Node is a mesh node. See the package doc.
type Node struct {
	cfg   Config
	env   core.Env
	wall  func() int64
	rep   *replica
	hlc   *HLC
	log   *core.Log
	gc    *core.GroupCommit
	snaps *core.Snapshotter
	state *core.StateFile
	saved durableState

	// turns ends each turn: the batch commit, the replies and messages
	// that wait for it, and log rolls and snapshots between batches.
	turns *core.LocalLog[pending]
	// pacer builds the indexes' graph in spare time (nil without them).
	pacer *core.IndexPacer
	// indexes joins cfg.Indexes to the replica (nil without indexes).
	indexes *core.AttachedIndexes
	// The open batch: undos take its changes back out of the replica if
	// writing it fails.
	undos       []undo
	batchWrites bool
	// views are the consistent scans' pinned copies of the replica;
	// batchViews, those the open batch opened, which a failed batch drops.
	views      *core.Views
	batchViews []uint64

	peers []*peer // every node but this one, in id order
	waits []*quorumWait
	// quorumTimer resends the waits (armQuorumTimer); nil when none is
	// pending.
	quorumTimer core.Timer
	// held are the writes taken before this node joined (join.go), in
	// arrival order; joinTimer refuses those held too long.
	// stateFailed: the last save of the node's state failed (logged once
	// until one works: stateFailing).
	stateFailed bool
	held        []heldWrite
	joinTimer   core.Timer
	// nextRound numbers anti-entropy rounds (Start: from the clock).
	nextRound uint64
	// stable is the start of the oldest of the last complete passes with
	// each peer: every peer held, then, everything this node held.
	stable Stamp
	// caughtUp is a clock reading taken once this node had completed a
	// pass with every peer since it started; zero until then. Only passes
	// that begin after it count (passCounts).
	caughtUp Stamp

	collectDue bool // the horizon moved: tombstones may be collected
	// clockAheadLogged: clockAhead logged that the clock is beyond the
	// max offset of calendar time, and it still was at its last write.
	clockAheadLogged bool
	// outOfStepLogged: outOfStep logged that this node's clock is out of
	// step with most of its peers', and it still was at its last write.
	outOfStepLogged bool
	dropped         int // messages refused (malformed or beyond the max offset)
	// stopped: a peer told this node that it was removed from the mesh
	// (removed.go); it serves nothing more.
	stopped error
	// removedAt: since this start, nodes are removed (removed.go); only
	// passes that began above it count toward the refusal point.
	removedAt Stamp
	collected int // tombstones collected since start
}

// pending is a reply or a message that waits for the batch it followed.
type pending struct {
	reply      core.ReplyFunc // a reply, or
	resp       core.Response
	to         core.NodeID // a message (reply == nil, qw == nil)
	msg        []byte
	qw         *quorumWait // a quorum write: durable here now
	repl       []Item      // a local write's items, for every peer
	quorum     Stamp       // a quorum write's stamp (zero: not one)
	write      bool        // a local write's reply (or its quorum wait)
	afterWrite bool        // a reply that may have seen a write of its batch
}

// NewNode checks cfg and returns a node that Start will recover.
func NewNode(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, views: core.NewViews()}
	for _, id := range cfg.Nodes {
		if id != cfg.ID && !slices.Contains(cfg.Removed, id) {
			n.peers = append(n.peers, &peer{id: id})
		}
	}
	slices.SortFunc(n.peers, func(a, b *peer) int { return int(a.id) - int(b.id) })
	for i, p := range n.peers {
		p.bit = uint64(1) << i
	}
	return n, nil
}

func (n *Node) logf(format string, args ...any) {
	if n.env.Logf != nil {
		n.env.Logf(format, args...)
	}
}

// snapMarker is the Extra of a mesh node's snapshots: it tells them from
// a single node's, whose values are not versions.
var snapMarker = []byte("dkv-mesh-1")

// Start recovers the replica: the newest snapshot, then the log after it.
func (n *Node) Start(env core.Env) error {
	n.env = env
	if env.ID != n.cfg.ID {
		return fmt.Errorf("mesh: the host runs node %d, the config says %d", env.ID, n.cfg.ID)
	}
	n.wall = env.Clock.Now
	if wc, ok := env.Clock.(core.WallClock); ok {
		n.wall = wc.Wall
	}
	names, err := env.Disk.List()
	if err != nil {
		return fmt.Errorf("listing data directory: %w", err)
	}
	fresh := !slices.Contains(names, stateFile)
	for _, name := range names {
		if fresh && (core.IsLogFile(name) || name != stateFile && isSnapshot(name)) {
			return fmt.Errorf("%w: the data directory holds a log but no %s: it is another kind of node's, not a mesh node's", core.ErrForeignLog, stateFile)
		}
	}
	st, saved, err := core.OpenStateFile(env.Disk, stateFile, n.logf)
	if err != nil {
		return err
	}
	n.state = st
	if saved == nil {
		// The incarnation is the calendar time of the directory's creation:
		// a peer tells a message of this directory's from a delayed one of
		// a wiped predecessor by it being higher.
		n.saved = durableState{MeshID: n.cfg.MeshID, NodeID: uint16(n.cfg.ID), Incarnation: uint64(max(n.wall(), 1))}
		if err := n.state.Save(n.saved.encode()); err != nil {
			return err
		}
	} else if n.saved, err = decodeState(saved); err != nil {
		return fmt.Errorf("%w: %s: %v", core.ErrCorrupt, stateFile, err)
	}
	if n.saved.MeshID != n.cfg.MeshID || core.NodeID(n.saved.NodeID) != n.cfg.ID {
		return fmt.Errorf("the data directory belongs to node %d of mesh %016x; this is node %d of mesh %016x (same peers, same node id?)",
			n.saved.NodeID, n.saved.MeshID, n.cfg.ID, n.cfg.MeshID)
	}
	if n.saved.Evicted {
		return fmt.Errorf("%w (a peer said so when it last ran): %s", errEvicted, evictedHint)
	}

	rec, err := core.RecoverSnapshot(env.Disk)
	if err != nil {
		return err
	}
	if rec.Index > 0 && string(rec.Meta.Extra) != string(snapMarker) {
		return fmt.Errorf("%w: snapshot at index %d is not a mesh node's", core.ErrForeignLog, rec.Index)
	}
	if err := rec.LogMissing(); err != nil {
		// A mesh node rolls to a new segment before each snapshot, as the
		// single node does, so a snapshot without a log after it is one
		// whose log was removed or lost: served, it lacked every write
		// taken after it, and a key deleted since, whose tombstone the
		// peers may have collected, would come back through anti-entropy
		// to every node (found by review).
		return fmt.Errorf("%w. For a mesh node, rather empty the data directory: the node then starts anew and takes every write from its peers, where starting from the snapshot alone can bring keys deleted since back to the whole mesh", err)
	}
	if n.rep, err = newReplica(rec.Store); err != nil {
		return err
	}
	decode := func(r core.Record) error {
		_, err := decodeRecord(r)
		return err
	}
	n.log, err = core.OpenLog(env.Disk, rec.Names, rec.Index, decode, func(r core.Record) error {
		items, err := decodeRecord(r)
		if err != nil {
			return fmt.Errorf("record %d: %w", r.Index, err)
		}
		// Replayed in log order with last writer wins, as they were
		// applied; the horizon's rule for absent keys is not applied here,
		// since a record may precede the collection that made its key
		// absent. Collecting below the horizon afterwards ends where the
		// node was.
		for i := range items {
			n.rep.apply(&items[i], nil)
		}
		return nil
	}, env.Logf)
	if err != nil {
		return err
	}
	if err := env.Disk.SyncDir(); err != nil {
		return fmt.Errorf("syncing the data directory: %w", err)
	}
	n.rep.collect(n.collectPoint(), n.rep.tombstones())
	n.indexes = n.rep.attach(n.cfg.Indexes, env.Clock, n.cfg.IndexBuild, env.Logf)
	n.pacer = core.NewIndexPacer(env.Clock, n.cfg.Indexes, func() bool { return !n.indexes.Built() })
	n.gc = core.NewGroupCommit(n.log, n.cfg.BatchBytesMax)
	n.snaps = core.NewSnapshotter(&n.env, n.log, n.cfg.SnapshotLogBytesMin, rec.Index, rec.Bytes)

	// The clock starts above every reading this node let out: the stamps
	// of its writes (durable before they leave, so in the replica, or
	// below the horizon if collected) and its stability points (the saved
	// high-water mark); and above its refusal point, which its messages
	// must never claim a clock below (Node.join).
	floor := maxStamp(n.saved.HighWater, n.rep.maxStamp, n.saved.Horizon, n.saved.Refuse)
	if n.cfg.Mutation == MutHLCNotPersisted {
		floor = Stamp{}
	}
	n.hlc = NewHLC(uint16(n.cfg.ID), floor)
	if err := n.recordRemovals(); err != nil {
		return err
	}
	// Rounds are numbered on from the clock's nanoseconds, above every
	// round of an earlier life: a peer's answers to those still arrive
	// after a restart (its transport queues them while this node is down),
	// and when each life numbered from 1, such an answer was taken for the
	// current round's, which then ended without the peer holding its push
	// (found by review). An earlier life numbered from its own start, and
	// ran far fewer rounds than the nanoseconds since; only a calendar set
	// back across the restart by more than that could make them meet.
	n.nextRound = uint64(max(n.wall(), n.hlc.Last().Wall))
	n.turns = core.NewLocalLog(n.log, n.gc, n.snaps, n.cfg.SegmentBytesMax, n.logf, core.LocalLogHooks[pending]{
		Release:  n.release,
		Undo:     n.undoBatch,
		Snapshot: n.snapshotState,
		Begin:    n.beginBatch,
	})
	for _, p := range n.peers {
		p.heard = -1
		p.offset = newOffsetEvidence()
		n.startPass(p)
		// Spread the first rounds over the interval, so that a mesh that
		// starts together does not round in lockstep; but a node that has
		// not joined (join.go) starts at once: its peers' answers are what
		// it waits for before it takes writes.
		d := time.Duration(core.Intn(env.Rand, int(n.cfg.AntiEntropyInterval)+1))
		if !n.saved.Joined {
			d = 0
		}
		n.scheduleRound(p, d)
	}
	n.join() // a mesh of one node joins at once
	n.logf("recovered mesh node %d (incarnation %d): %d keys, %d tombstones, snapshot at index %d, log through index %d, clock %s, horizon %s",
		n.cfg.ID, n.saved.Incarnation, n.rep.live, n.rep.tombstones(), rec.Index, n.log.NextIndex()-1, n.hlc.Last(), n.saved.Horizon)
	return nil
}

func isSnapshot(name string) bool {
	return len(name) > 5 && name[:5] == "snap-"
}

func maxStamp(stamps ...Stamp) Stamp {
	var m Stamp
	for _, s := range stamps {
		if m.Less(s) {
			m = s
		}
	}
	return m
}

func (n *Node) beginBatch() {
	n.batchWrites = false
	n.undos = n.undos[:0]
	n.batchViews = n.batchViews[:0]
}

// now takes a clock reading for a new write.
func (n *Node) now() Stamp {
	wall := n.wall()
	if n.cfg.Mutation == MutWallClockLWW {
		return Stamp{Wall: wall, Node: uint16(n.cfg.ID)}
	}
	return n.hlc.Now(wall)
}

// tooFarAhead reports whether s is beyond the max offset of this node's
// calendar time.
func (n *Node) tooFarAhead(s Stamp) bool {
	return s.Wall > n.wall()+int64(n.cfg.MaxOffset)
}

// clockAhead is how far the clock's last reading is ahead of calendar time,
// if that is more than the max offset, else 0. Nothing this node observes
// takes it there (every stamp observed is checked against the max offset);
// its own calendar does, when it jumped ahead and was set back, or a
// restart found it behind the stamps the node had let out. A write stamped
// then is dropped by every peer as too far ahead, with every other message
// the node sends, until calendar time catches up: acknowledged, it would
// live on this node alone, and later win over every write made elsewhere
// meanwhile (found by review). The first time in a row is logged.
func (n *Node) clockAhead() time.Duration {
	if n.cfg.Mutation == MutWallClockLWW || !n.tooFarAhead(n.hlc.Last()) {
		n.clockAheadLogged = false
		return 0
	}
	ahead := time.Duration(n.hlc.Last().Wall - n.wall())
	if !n.clockAheadLogged {
		n.logf("this node's clock %s is %s ahead of its calendar time, more than the max offset (%s): refusing writes until calendar time catches up (its peers would drop them); check this machine's clock", n.hlc.Last(), ahead, n.cfg.MaxOffset)
	}
	n.clockAheadLogged = true
	return ahead
}

// noConditions refuses a conditional write. A condition needs one order of
// writes to be checked in; a mesh's nodes take writes apart and settle them
// by stamp, so two nodes could each see a condition hold and both writes
// succeed, one then lost to the other.
const noConditions = "a mesh does not take conditional writes (if_absent, if_exists, if_value): its nodes take writes independently and the last writer wins, so a condition could hold on two nodes at once; use a single node or a cluster"

// noExpiry refuses a set with ttl_ms and a ttl. Each node would delete an
// expired key by its own clock, as a write stamped then, which could win
// over a later write of the key on another node.
const noExpiry = "a mesh does not expire keys (ttl_ms, ttl, expire, persist): each node would delete a key by its own clock, as a write that could win over a later one made on another node; use a single node or a cluster"

// noIncr refuses an incr. Two nodes that each took an incr of the same
// counter would each write their own sum, and the last writer would win:
// one increment lost. Counters that merge need a value of another kind
// (a count a node), which the mesh does not keep.
const noIncr = "a mesh does not take incr: two nodes incrementing a key at once would each write their own sum and the last writer would win, losing an increment; use a single node or a cluster"

// HandleRequest serves one client request. Every reply waits for the batch
// it joined, as the single node's do; a local write's also for its quorum.
func (n *Node) HandleRequest(req *core.Request, reply core.ReplyFunc) {
	if err := n.stoppedBy(); err != nil {
		reply(core.ErrorResponse(core.CodeUnavailable, "node stopped: %v", err))
		return
	}
	if bad := n.cfg.Limits.Validate(req); bad != nil {
		n.queue(pending{reply: reply, resp: *bad})
		return
	}
	if req.Condition().Kind != core.CondNone {
		n.queue(pending{reply: reply, resp: core.ErrorResponse(core.CodeNotImplemented, "%s", noConditions)})
		return
	}
	if req.TTLMs != 0 || req.Op == core.OpTTL || req.Op == core.OpExpire || req.Op == core.OpPersist {
		n.queue(pending{reply: reply, resp: core.ErrorResponse(core.CodeNotImplemented, "%s", noExpiry)})
		return
	}
	if req.Op == core.OpIncr {
		n.queue(pending{reply: reply, resp: core.ErrorResponse(core.CodeNotImplemented, "%s", noIncr)})
		return
	}
	switch req.Op {
	case core.OpGet:
		it, ok := n.rep.get(req.Key)
		if !ok || it.Tomb {
			n.queue(pending{reply: reply, resp: core.NotFoundResponse(req.Key)})
			return
		}
		value := it.Value
		n.queue(pending{reply: reply, resp: core.Response{OK: true, Value: &value, Stamp: it.Stamp.String()}})
	case core.OpSet:
		n.writeGrowing(req, reply, []Item{{Key: req.Key, Value: *req.Value}})
	case core.OpDelete:
		// A tombstone even for a key this node lacks: a peer may hold it.
		n.deleteGrowing(req, reply, []Item{{Key: req.Key, Tomb: true}})
	case core.OpBulkSet:
		n.writeGrowing(req, reply, bulkItems(req.Items))
	case core.OpBulkGet:
		get := func(key string) (string, bool) {
			it, ok := n.rep.get(key)
			return it.Value, ok && !it.Tomb
		}
		n.queue(pending{reply: reply, resp: core.BulkGetResponse(req.Keys, get, n.cfg.Limits.BulkGetBytesMax(req.Presence))})
	case core.OpScan:
		live := func(s *core.Store) func(from string, f func(key, value string) bool) {
			return func(from string, f func(key, value string) bool) { ascendLive(s, req.Prefix, from, n.cfg.Mutation, f) }
		}
		// A mesh expires no key (noExpiry): its store holds no deadlines,
		// and the calendar time a scan's ttl_ms would be reckoned from is
		// never read.
		resp, opened := n.views.Scan(req, n.rep.store, live, n.cfg.Limits.RequestBytesMax, n.env.Clock.Now(), 0, n.env.Rand)
		if opened != 0 && n.batchWrites {
			// It holds the batch's writes: if they fail, it goes too.
			n.batchViews = append(n.batchViews, opened)
		}
		n.queue(pending{reply: reply, resp: resp})
	case core.OpBulkDelete:
		// Tombstones for every key, as delete does; the count is of the
		// keys this node held live.
		keys := core.DistinctKeys(req.Keys)
		items := make([]Item, 0, len(keys))
		for _, k := range keys {
			if n.cfg.Mutation == MutBulkDeleteLocalOnly {
				if it, ok := n.rep.get(k); !ok || it.Tomb {
					continue
				}
			}
			items = append(items, Item{Key: k, Tomb: true})
		}
		n.deleteGrowing(req, reply, items)
	case core.OpPing:
		n.queue(pending{reply: reply, resp: core.OKResponse()})
	case core.OpStatus:
		st := n.status()
		n.queue(pending{reply: reply, resp: core.Response{OK: true, Status: &st}})
	case core.OpSearch, core.OpSearchSimilar:
		// This node's values, as a get sees them. Like a read's, the
		// answer waits for the batch that is open when it comes (this
		// turn's, or a later one's): it may show this turn's writes.
		n.indexes.AnswerOfBatch(req, n.batchWrites, func(resp core.Response) { n.queue(pending{reply: reply, resp: resp}) })
	default:
		n.queue(pending{reply: reply, resp: core.ErrorResponse(core.CodeNotImplemented, "op %q is not served by a mesh node", req.Op)})
	}
}

// bulkItems are a BulkSet's items, one per key: a later item wins over an
// earlier one of the same key (the protocol's rule), and all of them share
// one stamp, under which a replica would keep whichever came first.
func bulkItems(kvs []core.KV) []Item {
	last := make(map[string]int, len(kvs))
	for i, kv := range kvs {
		last[kv.Key] = i
	}
	items := make([]Item, 0, len(last))
	for i, kv := range kvs {
		if last[kv.Key] == i {
			items = append(items, Item{Key: kv.Key, Value: kv.Value})
		}
	}
	return items
}

// writeGrowing is write for a set or bulk_set, which the node's bound on
// its store's data bytes may refuse (core.Limits.DataBytesMax), and its
// bound on its indexes' memory (core.Limits.IndexBytesMax). Only a
// client's writes are checked: a peer's are applied whatever the bound,
// or the replicas would part for good. Deletes are never refused, though
// a tombstone for a key this node lacks takes room: they are how a full
// store is emptied.
func (n *Node) writeGrowing(req *core.Request, reply core.ReplyFunc, items []Item) {
	if full := n.indexes.Full(n.cfg.Limits); full != nil {
		n.queue(pending{reply: reply, resp: *full})
		return
	}
	if full := n.dataFull(items); full != nil {
		n.queue(pending{reply: reply, resp: *full})
		return
	}
	n.write(req, reply, items)
}

// deleteGrowing is write for a delete or bulk_delete, refused store_full
// only where its tombstones would grow the store past its data bound: a
// delete of a key this node holds (a value, or a tombstone) never grows
// it, and goes on however full the store is, as it is how a full store is
// emptied; a tombstone for a key this node lacks is a new entry. Taken
// past the bound, those had no limit at all: while a peer is down no
// tombstone is collected (horizon.go), and deletes of keys that were never
// there (a cache's invalidations, say) grew the store without end, past
// --max-data-bytes to the machine's memory (found by review).
func (n *Node) deleteGrowing(req *core.Request, reply core.ReplyFunc, items []Item) {
	if full := n.dataFull(items); full != nil {
		full.Error.Message += "; a delete of a key this node does not hold adds a tombstone, which is collected once every peer holds it (a peer that is down holds them all: see tombstones in status)"
		n.queue(pending{reply: reply, resp: *full})
		return
	}
	n.write(req, reply, items)
}

// dataFull answers a client's write of items that would grow the store's
// data bytes past their bound (core.Limits.DataBytesMax); nil when it may
// go on. Its exact growth costs a lookup a key, paid only near the bound.
func (n *Node) dataFull(items []Item) *core.Response {
	held := n.rep.store.DataBytes()
	if !n.cfg.Limits.NearDataBound(held, upperGrowth(items)) {
		return nil
	}
	return n.cfg.Limits.StoreFull(held, n.rep.growth(items))
}

// queue adds a reply or message to the open batch.
func (n *Node) queue(p pending) {
	p.afterWrite = n.batchWrites && !p.write
	n.turns.Queue(p)
}

// write stamps a client's write, logs and applies it, and queues its reply
// and its replication to every peer behind the batch.
func (n *Node) write(req *core.Request, reply core.ReplyFunc, items []Item) {
	fail := func(code, format string, args ...any) {
		n.queue(pending{reply: reply, resp: core.ErrorResponse(code, format, args...)})
	}
	if !n.saved.Joined {
		n.hold(req, reply, items) // join.go
		return
	}
	if req.After != "" {
		after, err := ParseStamp(req.After)
		if err != nil {
			fail(core.CodeBadRequest, "after: %v", err)
			return
		}
		if n.tooFarAhead(after) {
			n.logf("refused a write whose after-stamp %s is more than the max offset (%s) ahead of this node's clock", after, n.cfg.MaxOffset)
			// Not the request's fault: the stamp is a node's, one whose
			// clock ran ahead (offset.go). It can be taken once this
			// node's calendar is within the max offset of it, or now by
			// a node whose calendar is; unavailable says so.
			fail(core.CodeUnavailable, "after stamp %s is more than the max offset (%s) ahead of this node's clock: a node whose clock ran ahead stamped it; retry later or at another node, and check the clocks", after, n.cfg.MaxOffset)
			return
		}
		if n.cfg.Mutation != MutWallClockLWW {
			n.hlc.Observe(after)
		}
	}
	quorum := n.cfg.WriteQuorum
	if req.Quorum > 0 {
		quorum = int(req.Quorum)
	}
	if quorum > 1 && len(n.waits) >= n.cfg.QuorumWaitsMax {
		fail(core.CodeUnavailable, "%d writes are waiting for their quorum; retry later", len(n.waits))
		return
	}
	if ahead := n.clockAhead(); ahead > 0 {
		fail(core.CodeUnavailable, "this node's clock (%s) is %s ahead of its calendar time, more than the max offset (%s): its peers would refuse its writes as too far ahead, so it takes none until calendar time catches up (reads are served); write to another node, and check this machine's clock",
			n.hlc.Last(), ahead, n.cfg.MaxOffset)
		return
	}
	if out, ahead, who := n.outOfStep(); out && n.cfg.Mutation != MutIgnoreClockOffset {
		fail(core.CodeUnavailable, "%s, so it takes no writes until the clocks agree (reads are served): its writes would reach no peer and later win over theirs, or lose to older ones; write to another node, and check the clocks",
			n.describeOutOfStep(ahead, who))
		return
	}
	stamp := n.now()
	for i := range items {
		items[i].Stamp = stamp
	}
	payload := appendItems(nil, items)
	if len(payload) > WriteBytesMax {
		fail(core.CodeTooLarge, "write is %d bytes encoded; one write is at most %d (it must fit one log record and one message to each peer)", len(payload), WriteBytesMax)
		return
	}
	n.gc.Add(core.RecordMesh, payload)
	if idx := n.cfg.Indexes; idx != nil {
		idx.Expect(req.Prepared)
	}
	var deleted uint64
	for i := range items {
		if req.Op == core.OpBulkDelete {
			if old, ok := n.rep.get(items[i].Key); ok && !old.Tomb {
				deleted++
			}
		}
		n.rep.apply(&items[i], &n.undos)
	}
	if idx := n.cfg.Indexes; idx != nil {
		idx.Expect(nil)
	}
	n.batchWrites = true
	resp := core.Response{OK: true, Stamp: stamp.String()}
	if req.Op == core.OpBulkDelete {
		resp.Deleted = &deleted
	}
	var qw *quorumWait
	if quorum > 1 {
		qw = &quorumWait{stamp: stamp, need: quorum - 1, reply: reply, resp: resp, deadline: n.env.Clock.Now() + int64(n.cfg.QuorumTimeout)}
		n.addWait(qw)
		if len(n.waits) == 1 {
			n.armQuorumTimer()
		}
	}
	if qw != nil {
		qw.items = items
		n.queue(pending{qw: qw, write: true})
	} else {
		n.queue(pending{reply: reply, resp: resp, write: true})
	}
	// Sent only once durable here: a write exists on a peer only if it
	// survives on the node that stamped it (horizon.go relies on it).
	p := pending{repl: items}
	if qw != nil {
		p.quorum = stamp
	}
	n.queue(p)
	if req.DebugSimulateFail {
		n.snaps.Force(true)
	}
}

// WriteBytesMax bounds one write's encoded items, a mesh record's payload.
// The write must fit the log's record (64 MiB less its header) and also,
// whole, the replicate message that takes it to each peer, whose transport
// drops a message over its frame limit (realnet's, 64 MiB; cmd/node checks
// this against it at start). A write between the two was logged and
// acknowledged, then dropped on every send and every anti-entropy push,
// and never reached a peer (found by review). 64 KiB is the room left for
// a message's header, as for anti-entropy pushes.
const WriteBytesMax = 64<<20 - 64<<10

// decodeRecord reads the items of a record in a mesh node's log.
func decodeRecord(r core.Record) ([]Item, error) {
	if r.Type != core.RecordMesh {
		return nil, fmt.Errorf("%w: record type %d in a mesh node's log", core.ErrForeignLog, r.Type)
	}
	return decodeItems(r.Payload)
}

// decodeItems reads a RecordMesh payload.
func decodeItems(p []byte) ([]Item, error) {
	r := &reader{p: p}
	items := r.items()
	if r.err == nil && len(r.p) != 0 {
		r.err = errMessage
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: malformed mesh record", core.ErrCorrupt)
	}
	return items, nil
}

// encode fills in the header every message carries and encodes m; to,
// if not nil, is the one peer it goes to.
func (n *Node) encode(to *peer, m *message) []byte {
	m.clock = n.hlc.Last()
	m.stable = n.stable
	m.horizon = n.saved.Horizon
	m.inc = n.saved.Incarnation
	if to != nil {
		m.yourInc, m.passedYou = to.inc, to.passDone
	}
	return m.encode()
}

// send sends m to p now: a message that claims nothing about this node's
// durable state.
func (n *Node) send(p *peer, m *message) {
	n.env.Network.Send(p.id, n.encode(p, m))
}

// sendDurable sends m to p once everything this node holds now is
// durable: what it says this node holds, it holds across a crash.
func (n *Node) sendDurable(p *peer, m *message) {
	n.queue(pending{to: p.id, msg: n.encode(p, m)})
}

// applyRemote applies items from a peer: last writer wins, and nothing at
// or below the refusal point for a key this node lacks (its tombstone was
// collected; horizon.go). It logs the ones it kept and returns how many.
func (n *Node) applyRemote(items []Item) int {
	kept := items[:0:0]
	for i := range items {
		it := &items[i]
		if !n.refusePoint().Less(it.Stamp) {
			if _, held := n.rep.get(it.Key); !held {
				continue
			}
		}
		if n.rep.apply(it, &n.undos) {
			kept = append(kept, *it)
		}
	}
	if len(kept) > 0 {
		n.gc.Add(core.RecordMesh, appendItems(nil, kept))
		n.batchWrites = true
	}
	return len(kept)
}

// refusePoint is the stamp at or below which a write for a key this node
// lacks is refused (horizon.go).
func (n *Node) refusePoint() Stamp {
	if n.cfg.Mutation == MutRefuseBelowHorizon {
		return n.saved.Horizon
	}
	return n.saved.Refuse
}

// HandleMessage takes one peer message.
func (n *Node) HandleMessage(from core.NodeID, msg []byte) {
	if n.stoppedBy() != nil {
		return
	}
	p := n.peer(from)
	if p == nil && !slices.Contains(n.cfg.Removed, from) {
		n.drop("a message from node %d, which is not a peer of this mesh", from)
		return
	}
	m, err := decodeMessage(msg)
	if err != nil {
		n.drop("a message from node %d: %v", from, err)
		return
	}
	if n.removedSender(from, m.inc) {
		if m.kind != msgRemoved { // two nodes that removed each other answer once
			n.refuseRemoved(from, m.inc) // removed.go
		}
		return
	}
	if m.kind == msgRemoved {
		n.evicted(p, m)
		return
	}
	if m.kind == msgCalendar {
		n.calendarFrom(p, m) // offset.go: a calendar, whatever the header's clock
		return
	}
	if n.tooFarAhead(m.clock) || n.itemsTooFarAhead(m.items) {
		n.drop("a message from node %d stamped more than the max offset (%s) ahead of this node's clock (check the clocks): its clock %s", from, n.cfg.MaxOffset, m.clock)
		n.droppedAsAhead(p, n.aheadStamp(m))
		return
	}
	if m.inc < p.inc {
		n.drop("a message from node %d's earlier data directory (incarnation %d; now %d)", from, m.inc, p.inc)
		return
	}
	if n.cfg.Mutation != MutWallClockLWW {
		n.hlc.Observe(m.clock)
	}
	if m.inc != p.inc {
		n.reborn(p, m.inc)
	}
	if m.yourInc > n.saved.Incarnation {
		n.outgrow(p, m.yourInc)
	}
	if m.yourInc == n.saved.Incarnation {
		p.knowsMe = true
		if p.passedMe.Less(m.passedYou) {
			p.passedMe = m.passedYou
		}
	}
	p.heard = n.env.Clock.Now()
	if p.stable.Less(m.stable) {
		p.stable = m.stable
	}
	n.adoptHorizon(m.horizon, Stamp{})
	switch m.kind {
	case msgReplicate:
		n.applyRemote(m.items)
		if len(m.quorum) > 0 {
			if held := n.heldWrites(m); len(held) > 0 {
				n.sendDurable(p, &message{header: header{kind: msgReplicateAck}, quorum: held})
			}
		}
	case msgReplicateAck:
		// Only an acknowledgement of this incarnation's writes: a wiped
		// node's new clock may repeat a stamp of its predecessor's.
		if m.yourInc == n.saved.Incarnation {
			for _, s := range m.quorum {
				n.quorumAck(p, s)
			}
		}
	case msgDigest:
		n.answerDigest(p, m)
	case msgSummary:
		n.handleSummary(p, m)
	case msgPush:
		n.answerPush(p, m)
	case msgPushAck:
		n.handlePushAck(p, m)
	case msgClockRefused:
		n.clockRefused(p, m)
	}
	n.updateHorizon()
	n.join()
}

// outgrow takes an incarnation above inc, which peer p names as this
// node's: an earlier data directory's, created when the calendar was
// ahead of what it is now (a machine that booted with a stale clock and
// started the node before NTP set it). Every peer that knew that directory
// drops this one's messages as delayed ones of it, and the node never
// joined its mesh nor took a write, for good (found by review). Peers take
// the higher number for a new directory: they start their passes with it
// over, and must name it before it counts as heard (join.go).
func (n *Node) outgrow(p *peer, inc uint64) {
	if inc == math.MaxUint64 {
		return // no number above it: a damaged peer's, not a directory's
	}
	next := n.saved
	next.Incarnation = inc + 1
	if err := n.state.Save(next.encode()); err != nil {
		n.stateFailing("a new incarnation (peers drop this node's messages until it is)", err)
		return
	}
	n.stateSaved()
	n.logf("node %d knows an earlier data directory of this node as incarnation %d, above this one's %d (created while the calendar was behind): now incarnation %d",
		p.id, inc, n.saved.Incarnation, next.Incarnation)
	n.saved = next
	for _, q := range n.peers {
		q.knowsMe = false
		q.passedMe = Stamp{}
	}
}

// heldWrites returns the stamps of the quorum writes of replicate m that
// this node now holds: each of their items applied, or beaten by a newer
// item of its key held here. Only those are acknowledged. An item refused
// (applyRemote: at or below the refusal point, for a key this node lacks)
// is not held, and a write acknowledged regardless counted toward a quorum
// that did not hold it: a write answered ok on three nodes lived on one
// (found by review).
//
// The stamps are looked up in sorted copies, by binary search: with a
// linear search a replicate of 40,000 small quorum writes (a commit
// batch's, up to 4 MiB) took its peer 2.85 s, past the quorum timeout,
// every write of it then answered outcome_unknown (found by review). The
// message is a peer's, so its own order is not trusted.
func (n *Node) heldWrites(m *message) []Stamp {
	quorum := slices.SortedFunc(slices.Values(m.quorum), Stamp.Compare)
	var missing []Stamp
	for i := range m.items {
		it := &m.items[i]
		if _, in := slices.BinarySearchFunc(quorum, it.Stamp, Stamp.Compare); !in {
			continue
		}
		if cur, ok := n.rep.get(it.Key); !ok || cur.Stamp.Less(it.Stamp) {
			missing = append(missing, it.Stamp)
		}
	}
	slices.SortFunc(missing, Stamp.Compare)
	held := make([]Stamp, 0, len(m.quorum))
	for _, s := range m.quorum {
		if _, out := slices.BinarySearchFunc(missing, s, Stamp.Compare); !out {
			held = append(held, s)
		}
	}
	return held
}

// aheadStamp is the stamp of m that is beyond the max offset: its clock,
// or else the first item's that is.
func (n *Node) aheadStamp(m *message) Stamp {
	if n.tooFarAhead(m.clock) {
		return m.clock
	}
	for i := range m.items {
		if n.tooFarAhead(m.items[i].Stamp) {
			return m.items[i].Stamp
		}
	}
	return m.clock
}

func (n *Node) itemsTooFarAhead(items []Item) bool {
	for i := range items {
		if n.tooFarAhead(items[i].Stamp) {
			return true
		}
	}
	return false
}

// drop logs a refused message: the first few, then one in a thousand, so
// a misconfigured peer cannot flood the log.
func (n *Node) drop(format string, args ...any) {
	n.dropped++
	if n.dropped <= 10 || n.dropped%1000 == 0 {
		n.logf("dropped %s (%d dropped so far)", fmt.Sprintf(format, args...), n.dropped)
	}
}

func (n *Node) peer(id core.NodeID) *peer {
	for _, p := range n.peers {
		if p.id == id {
			return p
		}
	}
	return nil
}

// Flush ends the turn: unless a batch is still syncing, it commits the
// open one (one write, one fsync) and then releases its replies and
// messages. A failed write undoes the batch; a failed fsync stops the node.
func (n *Node) Flush() error {
	if n.batchWrites {
		n.pacer.Wrote()
	}
	if n.views.Len() > 0 {
		n.views.Sweep(n.env.Clock.Now()) // no clock read on a turn without views
	}
	if err := n.turns.EndTurn(n.batchWrites); err != nil {
		return err
	}
	if n.collectDue && !n.batchWrites {
		n.collect()
	}
	n.snaps.Step()
	return n.stoppedBy()
}

// stoppedBy is what stopped the node (a failed fsync, or its removal from
// the mesh), or nil.
func (n *Node) stoppedBy() error {
	if err := n.turns.Stopped(); err != nil {
		return err
	}
	return n.stopped
}

// release sends a durable batch's messages and replies.
//
// The batch's local writes go to every peer together, in one message per
// peer (or a few, of ReplicateBytesMax each): a message per write would
// cost each peer a wake-up, a decode and a log record per write.
func (n *Node) release(ps []pending) {
	repl := &message{header: header{kind: msgReplicate}}
	bytes, writes := 0, 0
	flush := func() {
		if len(repl.items) == 0 && len(repl.quorum) == 0 {
			return
		}
		msg := n.encode(nil, repl)
		for _, p := range n.peers {
			// Writes, as status says, not items: a bulk_set of 500 keys
			// counted 500 (found by review).
			p.replicated += int64(writes)
			n.env.Network.Send(p.id, msg)
		}
		repl = &message{header: header{kind: msgReplicate}}
		bytes, writes = 0, 0
	}
	for i := range ps {
		p := &ps[i]
		switch {
		case p.qw != nil:
			p.qw.local, p.qw.sentAt = true, n.env.Clock.Now() // its replicate leaves below
			n.quorumCheck(p.qw)
		case p.reply != nil:
			p.reply(p.resp)
		case p.repl != nil:
			size := 0
			for j := range p.repl {
				size += itemBytes(&p.repl[j])
			}
			// A message holds writes of replicateBytesMax in all, or one
			// larger write alone, so it fits a peer frame as one write
			// does (WriteBytesMax). Counting the write that overflowed a
			// message after the flush keeps the next ones out of its.
			if bytes > 0 && bytes+size > replicateBytesMax {
				flush()
			}
			bytes += size
			writes++
			repl.items = append(repl.items, p.repl...)
			if !p.quorum.IsZero() {
				repl.quorum = append(repl.quorum, p.quorum)
			}
		default:
			n.env.Network.Send(p.to, p.msg)
		}
	}
	flush()
}

// replicateBytesMax bounds the items of one replicate message (one write may
// go over it alone, up to the request limit).
const replicateBytesMax = 4 << 20

// undoBatch takes a batch whose write failed back out of the replica. Its
// local writes fail, the reads that may have seen them answer unavailable,
// and its messages are not sent: they may describe what is now undone.
// Peers repeat what they need (anti-entropy rounds time out; quorum writes
// are sent again).
func (n *Node) undoBatch(cause error, pend []pending) []pending {
	n.rep.rollback(n.undos)
	n.indexes.Undone() // a search that saw the batch and answers later fails too
	for _, id := range n.batchViews {
		n.views.Drop(id) // its clone holds the undone changes
	}
	code := core.CodeIOError
	if errors.Is(cause, core.ErrDiskFull) {
		code = core.CodeDiskFull
	}
	n.logf("write failed, batch undone: %v", cause)
	kept := pend[:0]
	for _, p := range pend {
		switch {
		case p.qw != nil:
			n.removeWait(p.qw)
			p = pending{reply: p.qw.reply, resp: core.ErrorResponse(code, "write not persisted and not applied: %v", cause)}
		case p.reply == nil:
			continue // a message
		case p.write:
			p.resp = core.ErrorResponse(code, "write not persisted and not applied: %v", cause)
		case p.afterWrite:
			p.resp = core.ErrorResponse(core.CodeUnavailable, "a write before this read failed to persist; retry")
		}
		kept = append(kept, p)
	}
	return kept
}

// snapshotState is the state a snapshot due before the open batch holds:
// the replica's, less the open batch, which its undos give back.
func (n *Node) snapshotState() (*core.Store, uint64, core.SnapshotMeta) {
	state := n.rep.store.Clone()
	for i := len(n.undos) - 1; i >= 0; i-- {
		u := n.undos[i]
		if u.existed {
			state.Set(u.sk, u.v)
		} else {
			state.Delete(u.sk)
		}
	}
	return state, n.gc.FirstIndex() - 1, core.SnapshotMeta{Extra: snapMarker}
}

func (n *Node) status() core.Status {
	now := n.env.Clock.Now()
	ms := func(since int64) int64 {
		if since < 0 {
			return -1
		}
		return (now - since) / int64(time.Millisecond)
	}
	st := &core.MeshStatus{
		NodeID:        int(n.cfg.ID),
		Clock:         n.hlc.Last().String(),
		Tombstones:    n.rep.tombstones(),
		Collected:     n.collected,
		Horizon:       n.saved.Horizon.String(),
		Complete:      n.saved.Refuse.String(),
		Stable:        n.stable.String(),
		WriteQuorum:   n.cfg.WriteQuorum,
		QuorumWaiting: len(n.waits),
	}
	for _, id := range n.cfg.Removed {
		st.Removed = append(st.Removed, int(id))
	}
	for _, p := range n.peers {
		st.Peers = append(st.Peers, core.MeshPeerStatus{
			NodeID:       int(p.id),
			HeardAgoMs:   ms(p.heard),
			Passes:       p.passes,
			PassAgoMs:    ms(p.passAt),
			PassBucket:   p.cursor.bucket,
			ItemsSent:    p.itemsSent,
			ItemsFetched: p.itemsFetched,
			Replicated:   p.replicated,
			Unreachable:  p.unreachable,
			Clock:        n.peerClock(p, now),
		})
	}
	indexes := n.indexes.Status()
	if indexes != nil && indexes.Rebuild != nil {
		indexes.Rebuild.Total = indexes.Rebuild.Indexed + n.rep.rebuildLeft()
	}
	return core.Status{
		Mode:          "mesh",
		Keys:          n.rep.live,
		LastIndex:     n.log.NextIndex() - 1,
		SnapshotIndex: n.snaps.Index(),
		WALSegments:   n.log.Segments(),
		WALBytes:      n.log.TotalBytes(),
		Snapshotting:  n.snaps.Writing(),
		ScanViews:     n.views.Len(),
		DataBytes:     n.rep.store.DataBytes(),
		DataBytesMax:  n.cfg.Limits.DataBytesMax,
		IndexBytesMax: core.IndexBytesMax(n.indexes, n.cfg.Limits),
		Indexes:       indexes,
		Mesh:          st,
	}
}

// Metrics implements core.MetricsReporter.
func (n *Node) Metrics() core.Metrics {
	return core.Metrics{Status: n.status(), Log: n.gc.Counters(), Snapshots: n.snaps.Counters()}
}

// CheckDataBytes recomputes the store's data bytes (its bound's count)
// and reports a difference, for the tests and the simulator's checkers.
func (n *Node) CheckDataBytes() error { return n.rep.store.CheckDataBytes() }

// Get returns the item this node holds for key, tombstones included, for
// tests and the simulator's checkers.
func (n *Node) Get(key string) (Item, bool) { return n.rep.get(key) }

// Items calls f for every item the node holds, tombstones included, in
// bucket order, for the simulator's convergence checker.
func (n *Node) Items(f func(it Item) bool) {
	n.rep.store.Ascend("", func(sk, v string) bool {
		it, err := decodeVersion(userKey(sk), v)
		assert(err == nil, "replica holds a malformed version")
		return f(it)
	})
}

// StateHash summarises every item the node holds: nodes that hold the same
// items have the same hash (and others, almost surely, not). It is O(1), for
// the simulator's convergence wait.
func (n *Node) StateHash() uint64 { return n.rep.total }

// Collected is how many tombstones the node collected since it started.
func (n *Node) Collected() int { return n.collected }

// Tombstones is how many tombstones the node holds.
func (n *Node) Tombstones() int { return n.rep.tombstones() }

// Horizon is the node's collection horizon.
func (n *Node) Horizon() Stamp { return n.saved.Horizon }

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
}

// IndexesCover reports whether the indexes hold key's value (whatever it
// holds): a rebuild in steps has walked past it (see
// core.AttachedIndexes; the mesh's positions are store keys). For the
// simulator's index checker.
func (n *Node) IndexesCover(key string) bool { return n.indexes.Covers(storeKey(key)) }
