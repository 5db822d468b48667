package sim

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"dkv/checks"
	"dkv/core"
	"dkv/mesh"
)

// The mesh mode: three master-less nodes, any of which takes any request.
// A mesh is not linearizable (two nodes may take conflicting writes at
// once, and the higher stamp wins), so its runs are judged by the mesh's
// own promises instead (checkMesh):
//
//   - convergence: once the faults stop, the live nodes come to hold the
//     same item (value or tombstone, and stamp) for every key, within
//     meshSettleMax; again after the final power cut;
//   - durability: for every key, the final item's stamp is at least that of
//     every acknowledged write of the key, and if equal it is that write; a
//     higher one is a write some client sent; a key that is gone had a
//     delete;
//   - no resurrection, and stamps never decrease: what a node answers for
//     a key (a write's stamp, a read's stamp) is never below what it
//     answered for that key before the request was sent;
//   - a node's clock: a node's write acknowledged after another of its
//     writes was has the higher stamp, across restarts;
//   - a client's order: each client's acknowledged writes have rising
//     stamps, whichever nodes took them, since the client passes its last
//     stamp (after) with every write, as KVClient does.
//
// Acknowledged writes that a concurrent write with a higher stamp replaced
// are counted (Result.MeshOverwritten): last writer wins drops them by
// design.

// meshSettleMax bounds the virtual time from the faults stopping to the
// last final read, and the convergence after the final power cut: anti-
// entropy rounds every 50 ms of virtual time repair a few keys' worth of
// divergence in a few rounds.
const meshSettleMax = 5 * time.Second

func meshMode() Mode {
	const nodes = 3
	ids := []core.NodeID{0, 1, 2}
	return Mode{
		Name:  "mesh",
		Nodes: nodes,
		NewNode: func(id int, mix *FaultMix, mutation string, _ func(uint64, uint64, uint64, uint64, string), idx core.Indexes) core.Node {
			cfg := mesh.DefaultConfig(core.NodeID(id), ids)
			cfg.Indexes, cfg.IndexBuild = idx, mix.indexBuild()
			if mutation != "" {
				m, err := mesh.ParseMutation(mutation)
				if err != nil {
					panic(err)
				}
				cfg.Mutation = m
			}
			cfg.MeshID = 0x5eed
			cfg.SegmentBytesMax = mix.SegBytes
			cfg.SnapshotLogBytesMin = mix.SnapBytes
			cfg.BatchBytesMax = mix.BatchMax
			cfg.Limits.DataBytesMax = mix.DataBytesMax
			cfg.Limits.IndexBytesMax = mix.IndexBytesMax
			// Virtual time is cheap; rounds are frequent, and small, so
			// that a round's bounds (summary, push) and the cursor that
			// resumes a pass are exercised in every run.
			cfg.AntiEntropyInterval = 200 * time.Millisecond
			cfg.RoundTimeout = 200 * time.Millisecond
			cfg.QuorumTimeout = 300 * time.Millisecond
			cfg.QuorumResend = 40 * time.Millisecond
			cfg.SummaryItemsMax = 3
			cfg.PushBytesMax = 2 << 10
			cfg.CollectPerTurnMax = 2
			cfg.MaxOffset = time.Second
			n, err := mesh.NewNode(cfg)
			if err != nil {
				panic(err)
			}
			return n
		},
		Target: func(s *Sim, client int, _ string) int {
			return s.wr.IntN(nodes)
		},
		ChaosMax:  20 * time.Second,
		SettleMax: meshSettleMax,
		Mesh:      true,
		// Calendar clocks disagree by up to ±250 ms between nodes and jump
		// by up to ±150 ms at each start: within the max offset (1 s), so
		// nodes keep talking, but enough that calendar time alone would
		// order writes wrongly.
		ClockSkew: 250 * time.Millisecond,
		ClockStep: 150 * time.Millisecond,
	}
}

// meshOp is one answered request of a mesh run.
type meshOp struct {
	client, node int
	kind         checks.Kind
	keys         []string // the written keys (bulk: several), or the read key
	values       []string // written values, by key; a read's value
	found        bool     // a read found a value
	stamp        mesh.Stamp
	call, ret    int64
	attempt      int64
}

// isDelete reports whether op wrote tombstones.
func (op *meshOp) isDelete() bool {
	return op.kind == checks.KindDelete || op.kind == checks.KindBulkDelete
}

// meshState is what a mesh run records for its checker.
type meshState struct {
	ops []meshOp
	// sent: every value any attempt wrote to a key, and whether any
	// attempt deleted it, acknowledged or not: what the final state may
	// hold beyond the acknowledged writes.
	sent    map[string]map[string]bool
	deleted map[string]bool
	// deleteAttempts counts the delete attempts of each key (a bulk_delete
	// counts once for each key it names), answered or not.
	deleteAttempts map[string]int
	// overwritten counts acknowledged writes a concurrent one replaced.
	overwritten int
	// settled: when the nodes converged after the faults stopped, and
	// after the final power cut.
	convergedAt, finalAt int64
	// wipe is the node whose data directory is lost once the nodes first
	// converge after the faults stop (-1: none); wiped, whether it was.
	wipe        int
	wiped       bool
	wipeCheckAt int64
	wipedAt     int64 // when it was
	// jump is the seed's clock jump, if any.
	jump meshJumpState
}

// meshWipeProb is the share of seeds in which a node's data directory is
// lost once the nodes have converged: it must rebuild from its peers, who
// must notice its new incarnation, and nothing acknowledged may be lost
// (every write is on the other nodes by then).
const meshWipeProb = 0.5

// meshWipe wipes the seed's chosen node, once, and reports whether it did.
func (s *Sim) meshWipe() bool {
	if s.mesh.wipe < 0 || s.mesh.wiped {
		return false
	}
	h := s.hosts[s.mesh.wipe]
	if h.gone != "" || !h.up {
		return false
	}
	// Wait, a while at most, for every node's horizon to pass every item:
	// then the wiped node rebuilds from items all at or below its peers'
	// horizons, and the tombstones are collected first.
	if s.w.now < s.mesh.wipeCheckAt {
		return true
	}
	s.mesh.wipeCheckAt = s.w.now + int64(10*time.Millisecond)
	if s.w.now-s.quietAt < int64(s.mode.SettleMax/2) {
		nodes, _ := s.meshNodes()
		var top mesh.Stamp
		nodes[0].Items(func(it mesh.Item) bool {
			if top.Less(it.Stamp) {
				top = it.Stamp
			}
			return true
		})
		for _, n := range nodes {
			if n.Horizon().Less(top) {
				return true
			}
		}
	}
	s.mesh.wiped, s.mesh.wipedAt = true, s.w.now
	s.trace(h.addr, "wipe", 0, 0, "")
	h.crash("data directory lost", true)
	h.disk.Wipe()
	return true
}

// meshSend notes a write attempt and fills in the client's stamp token
// and, at times, a quorum.
func (c *client) meshSend(req *core.Request) {
	s := c.s
	if s.mesh.sent == nil {
		s.mesh.sent, s.mesh.deleted = map[string]map[string]bool{}, map[string]bool{}
	}
	note := func(key, value string) {
		if s.mesh.sent[key] == nil {
			s.mesh.sent[key] = map[string]bool{}
		}
		s.mesh.sent[key][value] = true
	}
	switch req.Op {
	case core.OpSet:
		note(req.Key, *req.Value)
	case core.OpDelete:
		s.mesh.deleted[req.Key] = true
	case core.OpBulkSet:
		for _, kv := range req.Items {
			note(kv.Key, kv.Value)
		}
	case core.OpBulkDelete:
		for _, key := range req.Keys {
			s.mesh.deleted[key] = true
		}
	default:
		return
	}
	if !c.token.IsZero() {
		req.After = c.token.String()
	}
	// One write in five waits for more nodes than this one.
	if q := s.wr.IntN(10); q < 2 {
		req.Quorum = uint64(2 + q)
	}
}

// meshAttempt counts a delete attempt of each key it names (a mesh
// retry is a new write, with a stamp of its own).
func (c *client) meshAttempt(req *core.Request) {
	s := c.s
	if s.mesh.deleteAttempts == nil {
		s.mesh.deleteAttempts = map[string]int{}
	}
	switch req.Op {
	case core.OpDelete:
		s.mesh.deleteAttempts[req.Key]++
	case core.OpBulkDelete:
		for _, key := range slices.Compact(slices.Sorted(slices.Values(req.Keys))) {
			s.mesh.deleteAttempts[key]++
		}
	}
}

// meshAnswered records an answered attempt (ok, or a get's not_found).
func (c *client) meshAnswered(a *attempt, resp *core.Response) {
	s := c.s
	op := meshOp{client: c.id, node: a.node, kind: a.op.Kind, call: a.op.Call, ret: s.w.now, attempt: a.id}
	if resp.Stamp != "" {
		st, err := mesh.ParseStamp(resp.Stamp)
		if err != nil {
			s.fail("protocol", fmt.Sprintf("attempt %d answered a malformed stamp %q: %v", a.id, resp.Stamp, err))
			return
		}
		op.stamp = st
		if c.token.Less(st) {
			c.token = st
		}
	}
	switch a.op.Kind {
	case checks.KindGet:
		op.keys = []string{a.op.Key}
		if resp.OK {
			op.found, op.values = true, []string{*resp.Value}
		}
		if op.found && op.stamp.IsZero() {
			s.fail("protocol", fmt.Sprintf("get %s (attempt %d) found a value without a stamp", a.op.Key, a.id))
			return
		}
	case checks.KindSet:
		op.keys, op.values = []string{a.op.Key}, []string{a.op.Value}
	case checks.KindDelete:
		op.keys = []string{a.op.Key}
	case checks.KindBulkSet:
		for _, kv := range a.op.Items {
			op.keys, op.values = append(op.keys, kv.Key), append(op.values, kv.Value)
		}
	case checks.KindBulkDelete:
		// One tombstone per distinct key, all at the write's stamp.
		for _, kv := range a.op.Items {
			if !slices.Contains(op.keys, kv.Key) {
				op.keys = append(op.keys, kv.Key)
			}
		}
	case checks.KindBulkGet:
		// A bulk_get answers no stamps, so it cannot join the stamp
		// checks below; what it can be held to is that every value it
		// read is one some client sent for that key.
		for i, kv := range a.op.Items {
			if v := a.op.Reads[i]; v != nil && !s.mesh.sent[kv.Key][*v] {
				s.fail("durability", fmt.Sprintf("%s (attempt %d) read %s for key %s from node %d, which no client wrote", a.req.Op, a.id, shortValue(*v), kv.Key, a.node))
				return
			}
		}
		return
	}
	if op.kind != checks.KindGet && op.stamp.IsZero() {
		s.fail("protocol", fmt.Sprintf("%s (attempt %d) was acknowledged without a stamp", a.req.Op, a.id))
		return
	}
	s.mesh.ops = append(s.mesh.ops, op)
}

// meshNodes returns the mesh nodes that are not gone, by id; ok is false
// if one of them is down.
func (s *Sim) meshNodes() (nodes []*mesh.Node, ok bool) {
	for _, h := range s.hosts {
		if h.gone != "" {
			continue
		}
		n, isMesh := h.node.(*mesh.Node)
		if !isMesh || !h.up {
			return nil, false
		}
		nodes = append(nodes, n)
	}
	return nodes, true
}

// meshConverged reports whether every node that is not gone is up and
// holds the same items.
func (s *Sim) meshConverged() bool {
	nodes, ok := s.meshNodes()
	if !ok {
		return false
	}
	if len(nodes) == 0 {
		return true
	}
	if s.nodeLost() {
		ref := meshCompared(nodes[0], true)
		for _, n := range nodes[1:] {
			if !slices.Equal(meshCompared(n, true), ref) {
				return false
			}
		}
		return true
	}
	for _, n := range nodes[1:] {
		if n.StateHash() != nodes[0].StateHash() {
			return false
		}
	}
	return true
}

// nodeLost reports whether a node refused to start from a damaged disk and
// is gone for good. The others then agree on every key's value, but not on
// its tombstones: a tombstone is collected once every node is known to
// hold it, at or below the collecting node's refusal point, which a gone
// node's silence holds back for good; a node that collected one before the
// loss no longer holds it, while another never may (mesh seed 289).
func (s *Sim) nodeLost() bool {
	for _, h := range s.hosts {
		if h.gone != "" {
			return true
		}
	}
	return false
}

// meshCompared is what two converged nodes must hold alike: every item,
// or, with liveOnly (a node is lost), every live one.
func meshCompared(n *mesh.Node, liveOnly bool) []mesh.Item {
	items := meshItems(n)
	if liveOnly {
		items = slices.DeleteFunc(items, func(it mesh.Item) bool { return it.Tomb })
	}
	return items
}

// items lists what n holds, in order.
func meshItems(n *mesh.Node) []mesh.Item {
	var out []mesh.Item
	n.Items(func(it mesh.Item) bool {
		out = append(out, it)
		return true
	})
	return out
}

// checkMesh judges a mesh run by the promises listed at the top of this
// file.
func (s *Sim) checkMesh() []checks.Finding {
	var out []checks.Finding
	add := func(check, format string, args ...any) {
		if len(out) < 20 {
			out = append(out, checks.Finding{Check: check, Msg: fmt.Sprintf(format, args...)})
		}
	}
	// Convergence, item by item (StateHash only summarises).
	if s.serviceGone() {
		return out // the nodes left cannot be judged (Result.Refusals says why)
	}
	nodes, ok := s.meshNodes()
	if !ok {
		add("convergence", "a mesh node is down at the end of the run")
		return out
	}
	if len(nodes) == 0 {
		return out // every node refused to start from a damaged disk
	}
	final := map[string]mesh.Item{}
	ref := meshItems(nodes[0])
	for _, it := range ref {
		final[it.Key] = it
	}
	lost := s.nodeLost()
	for i, n := range nodes[1:] {
		if got, want := meshCompared(n, lost), meshCompared(nodes[0], lost); !slices.Equal(got, want) {
			add("convergence", "after the run the nodes differ: %s", describeDiff(want, got, i+1))
		}
	}
	// A write acknowledged by a node that later refused to start from a
	// damaged disk may have died with it: it is not judged.
	gone := map[int]bool{}
	for _, h := range s.hosts {
		gone[h.id] = h.gone != ""
	}
	type acked struct {
		op    *meshOp
		value string
		tomb  bool
	}
	best := map[string]acked{}
	for i := range s.mesh.ops {
		op := &s.mesh.ops[i]
		if op.kind == checks.KindGet || gone[op.node] {
			continue
		}
		for j, key := range op.keys {
			w := acked{op: op, tomb: op.isDelete()}
			if !w.tomb {
				w.value = op.values[j]
			}
			// Within one bulk_set a later item of a key wins.
			if b, ok := best[key]; !ok || b.op.stamp.Less(op.stamp) || b.op == op {
				best[key] = w
			}
		}
	}
	for _, key := range sortedKeys(best) {
		w := best[key]
		f, held := final[key]
		switch {
		case !held:
			// A collected tombstone, if a delete was ever sent; its stamp
			// is gone with it.
			if !w.tomb && !s.mesh.deleted[key] {
				add("durability", "key %s is gone, but its newest acknowledged write (attempt %d, stamp %s, %s) was a set and no delete of it was ever sent", key, w.op.attempt, w.op.stamp, shortValue(w.value))
			}
		case f.Stamp.Less(w.op.stamp):
			add("durability", "key %s holds stamp %s, below its acknowledged write (attempt %d, stamp %s, %s)", key, f.Stamp, w.op.attempt, w.op.stamp, describeWrite(w.tomb, w.value))
		case f.Stamp == w.op.stamp && (f.Tomb != w.tomb || f.Value != w.value):
			add("durability", "key %s holds %s at stamp %s, but the write acknowledged with that stamp (attempt %d) was %s", key, describeWrite(f.Tomb, f.Value), f.Stamp, w.op.attempt, describeWrite(w.tomb, w.value))
		}
	}
	// Whatever the final state holds was sent by some client.
	for _, key := range sortedKeys(final) {
		f := final[key]
		if f.Tomb && !s.mesh.deleted[key] || !f.Tomb && !s.mesh.sent[key][f.Value] {
			add("durability", "key %s holds %s (stamp %s), which no client wrote", key, describeWrite(f.Tomb, f.Value), f.Stamp)
		}
	}
	// A node never answers a stamp below one it answered for the key
	// before; a write's stamp is above it. And a node's writes, and a
	// client's, have rising stamps.
	type nodeKey struct {
		node int
		key  string
	}
	seen := map[nodeKey][]*meshOp{}
	byNode := map[int][]*meshOp{}
	byClient := map[int][]*meshOp{}
	for i := range s.mesh.ops {
		op := &s.mesh.ops[i]
		if op.kind != checks.KindGet {
			byNode[op.node] = append(byNode[op.node], op)
			byClient[op.client] = append(byClient[op.client], op)
		}
		if op.kind == checks.KindGet && !op.found {
			continue
		}
		for _, key := range op.keys {
			seen[nodeKey{op.node, key}] = append(seen[nodeKey{op.node, key}], op)
		}
	}
	for _, nk := range slices.SortedFunc(maps.Keys(seen), func(a, b nodeKey) int {
		return cmp.Or(cmp.Compare(a.node, b.node), cmp.Compare(a.key, b.key))
	}) {
		if v := risingAfter(seen[nk], func(a, b *meshOp) bool {
			return b.kind == checks.KindGet && !b.stamp.Less(a.stamp) || b.kind != checks.KindGet && a.stamp.Less(b.stamp)
		}); v != "" {
			check := "stamps"
			if rest := seen[nk]; slices.ContainsFunc(rest, (*meshOp).isDelete) {
				check = "resurrection"
			}
			add(check, "node %d, key %s: %s", nk.node, nk.key, v)
		}
	}
	wipedNode := -1
	if s.mesh.wiped {
		wipedNode = s.mesh.wipe
	}
	for _, msg := range unexplainedNotFound(s.mesh.ops, s.mesh.deleteAttempts, wipedNode, s.mesh.wipedAt) {
		add("stamps", "%s", msg)
	}
	s.checkClockJump(add)
	for _, id := range sortedKeys(byNode) {
		if v := risingAfter(byNode[id], func(a, b *meshOp) bool { return a.stamp.Less(b.stamp) }); v != "" {
			add("node-clock", "node %d's writes: %s", id, v)
		}
	}
	for _, id := range sortedKeys(byClient) {
		ops := byClient[id]
		for i := 1; i < len(ops); i++ {
			if !ops[i-1].stamp.Less(ops[i].stamp) {
				add("client-order", "client %d's write (attempt %d, stamp %s) is not above its previous acknowledged write (attempt %d, stamp %s), though it carried that stamp",
					id, ops[i].attempt, ops[i].stamp, ops[i-1].attempt, ops[i-1].stamp)
				break
			}
		}
	}
	if msg := s.meshCollect(); msg != "" {
		add("collection", "%s", msg)
	}
	// Overwrites that last writer wins made: acknowledged writes that a
	// write called before they returned replaced.
	for i := range s.mesh.ops {
		op := &s.mesh.ops[i]
		if op.kind == checks.KindGet {
			continue
		}
		for _, key := range op.keys {
			if b, ok := best[key]; ok && b.op != op && b.op.call < op.ret && op.stamp.Less(b.op.stamp) {
				s.mesh.overwritten++
			}
		}
	}
	return out
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K { return slices.Sorted(maps.Keys(m)) }

// meshCollectMax bounds the virtual time, from the end of a run, in which
// the nodes must collect every tombstone: every node holds them all (they
// converged), and the network is whole, so a few anti-entropy passes of
// each node with each peer (rounds every 200 ms) raise every stability
// and refusal point above them. A node whose calendar jumped may run
// ahead of it for up to meshJumpMax, its messages refused meanwhile.
const meshCollectMax = 10*time.Second + meshJumpMax

// meshCollect runs the world on after a run that converged until every
// node has collected every tombstone, and says what is left if they have
// not within meshCollectMax. That tombstones go is a promise too: a mesh
// that stopped collecting them kept every delete, toward its data bound,
// and a planted bug that let no pass count toward the horizon (so nothing
// was ever collected) went unnoticed for 300 seeds. A node gone for good
// (refused to start) holds every tombstone on the others, rightly.
func (s *Sim) meshCollect() string {
	if s.serviceGone() || s.nodeLost() {
		return ""
	}
	nodes, ok := s.meshNodes()
	if !ok || len(nodes) < 2 {
		return ""
	}
	held := func() []int {
		var tombs []int
		for _, n := range nodes {
			tombs = append(tombs, n.Tombstones())
		}
		return tombs
	}
	end := s.w.now + int64(meshCollectMax)
	for next := s.w.now; s.w.now <= end; {
		if s.w.now >= next {
			if slices.Max(held()) == 0 {
				return ""
			}
			next = s.w.now + int64(10*time.Millisecond)
		}
		if !s.w.Step() {
			break
		}
	}
	return fmt.Sprintf("the nodes still hold %v tombstones %v after the run, with every node up and the network whole", held(), meshCollectMax)
}

// risingAfter checks that for every pair of ops where the second was called
// after the first returned, ok(first, second) holds; it describes the first
// pair that fails.
func risingAfter(ops []*meshOp, ok func(a, b *meshOp) bool) string {
	for j, b := range ops {
		for _, a := range ops[:j] {
			if a.ret < b.call && !ok(a, b) {
				return fmt.Sprintf("%s (attempt %d, answered at %s, stamp %s) then %s (attempt %d, called at %s, stamp %s)",
					a.kind, a.attempt, checks.FormatTime(a.ret), a.stamp, b.kind, b.attempt, checks.FormatTime(b.call), b.stamp)
			}
		}
	}
	return ""
}

func describeWrite(tomb bool, value string) string {
	if tomb {
		return "a tombstone"
	}
	return shortValue(value)
}

// shortValue quotes a value for a finding, cut after its first 40 bytes:
// values carry kilobytes of padding (BulkPad), which made a finding one
// line of kilobytes (found by review).
func shortValue(v string) string {
	const shown = 40
	if len(v) <= shown {
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%q… (%d bytes)", v[:shown], len(v))
}

// describeDiff names the first key where node i's items differ from node
// 0's.
func describeDiff(ref, got []mesh.Item, i int) string {
	for k := 0; k < max(len(ref), len(got)); k++ {
		switch {
		case k >= len(ref):
			return fmt.Sprintf("node %d also holds %s", i, describeItem(got[k]))
		case k >= len(got):
			return fmt.Sprintf("node 0 also holds %s", describeItem(ref[k]))
		case ref[k] != got[k]:
			return fmt.Sprintf("node 0 holds %s, node %d %s", describeItem(ref[k]), i, describeItem(got[k]))
		}
	}
	return "no difference found"
}

func describeItem(it mesh.Item) string {
	return fmt.Sprintf("%s=%s@%s", it.Key, describeWrite(it.Tomb, it.Value), it.Stamp)
}

// meshSummary is the mesh run's line in cmd/sim's report.
func (r *Result) meshSummary() string {
	if r.Mode != "mesh" {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "overwritten by concurrent writes: %d", r.MeshOverwritten)
	return b.String()
}

// unexplainedNotFound returns, for each get that found nothing, a message
// if nothing explains it: a node that answered a key's value, or took a
// write of it, before the get was sent answers not_found for it only once
// a delete stamped above that value can have reached it, an acknowledged
// one (its stamp is known) or one whose outcome is not (any stamp). A
// not_found carries no stamp, so the stamp checks pass it by; without this
// one a node could drop its own acknowledged write from its answers, and
// anti-entropy put it back before the end (found by review). A node
// whose data directory was lost (wipedNode, at wipedAt; -1: none) answers
// from what it rebuilds, and what it answered before is not held against
// it.
func unexplainedNotFound(ops []meshOp, deleteAttempts map[string]int, wipedNode int, wipedAt int64) []string {
	type nodeKey struct {
		node int
		key  string
	}
	ackedDeletes := map[string][]mesh.Stamp{}
	live := map[nodeKey][]*meshOp{} // values answered and writes taken, by node and key
	for i := range ops {
		op := &ops[i]
		switch {
		case op.isDelete():
			for _, key := range op.keys {
				ackedDeletes[key] = append(ackedDeletes[key], op.stamp)
			}
		case op.kind != checks.KindGet || op.found:
			for _, key := range op.keys {
				live[nodeKey{op.node, key}] = append(live[nodeKey{op.node, key}], op)
			}
		}
	}
	var out []string
	for i := range ops {
		op := &ops[i]
		if op.kind != checks.KindGet || op.found {
			continue
		}
		key := op.keys[0]
		if deleteAttempts[key] > len(ackedDeletes[key]) {
			continue // a delete of unknown stamp may explain it
		}
		var top *meshOp
		for _, prior := range live[nodeKey{op.node, key}] {
			if op.node == wipedNode && prior.ret < wipedAt && op.call >= wipedAt {
				continue // a life before the wipe
			}
			if prior.ret < op.call && (top == nil || top.stamp.Less(prior.stamp)) {
				top = prior
			}
		}
		if top == nil || slices.ContainsFunc(ackedDeletes[key], func(d mesh.Stamp) bool { return top.stamp.Less(d) }) {
			continue
		}
		how := "took a write of"
		if top.kind == checks.KindGet {
			how = "answered"
		}
		out = append(out, fmt.Sprintf("node %d, key %s: get (attempt %d, answered at %s) found nothing, after the node %s it at stamp %s (attempt %d), and no delete of the key above that stamp was ever sent",
			op.node, key, op.attempt, time.Duration(op.ret), how, top.stamp, top.attempt))
	}
	return out
}

// A clock jump: in meshJumpProb of the seeds, one node's calendar steps
// ahead or back by more than the max offset plus the widest disagreement
// the skews and steps allow, for a while of the chaos phase, then steps
// back (or at the quiet phase at the latest). Its peers drop its messages,
// or it theirs, as too far ahead; the node must stop taking writes soon
// after, until the clocks agree (mesh/offset.go), and after the jump back
// its hybrid clock, still ahead of its calendar, must hold writes too
// (clockAhead). The jump is drawn from a stream of its own, so the seeds
// without one run as before.
const (
	meshJumpProb   = 0.3
	streamMeshJump = 300
	// meshJumpMin and meshJumpMax bound the size of a jump: beyond the
	// max offset (1 s) plus twice the skew and step (800 ms), so the node
	// is out of step with both peers; and small enough that the lead its
	// hybrid clock keeps after the jump back drains within the settle
	// time.
	meshJumpMin = 2 * time.Second
	meshJumpMax = 2500 * time.Millisecond
	// meshJumpSample is how often the run samples whether a node is out
	// of step with both peers (meshJumpWatch).
	meshJumpSample = time.Millisecond
	// meshOutOfStepGrace is how long a node out of step with both peers,
	// all three up and the network whole, may still take writes: its
	// peers refuse its first message after the jump (or it theirs), and
	// each round again, every 200 ms here; three rounds allow for lost
	// and slow messages.
	meshOutOfStepGrace = 600 * time.Millisecond
)

// meshJumpState is a run's clock jump and what the run saw of it.
type meshJumpState struct {
	node int   // the jumping node, -1 none
	size int64 // signed
	// outSince is, per node, when it last became out of step with both
	// peers while all were up and the network whole, -1 when it is not;
	// spans lists those stretches, [from, to), for the checker.
	outSince []int64
	spans    [][3]int64 // node, from, to
}

// scheduleClockJump draws the seed's clock jump, if any, and schedules it.
func (s *Sim) scheduleClockJump() {
	s.mesh.jump.node = -1
	if !s.mode.Mesh {
		return
	}
	r := stream(s.cfg.Seed, streamMeshJump)
	if r.Float64() >= meshJumpProb {
		return
	}
	j := &s.mesh.jump
	j.node = r.IntN(s.mode.Nodes)
	j.size = int64(meshJumpMin) + r.Int64N(int64(meshJumpMax-meshJumpMin)+1)
	if r.IntN(2) == 0 {
		j.size = -j.size
	}
	at := time.Duration(r.Int64N(int64(time.Second)))
	lasts := 500*time.Millisecond + time.Duration(r.Int64N(int64(time.Second)))
	j.outSince = slices.Repeat([]int64{-1}, s.mode.Nodes)
	s.w.After(at, func() {
		if !s.chaos() {
			return
		}
		h := s.hosts[j.node]
		h.clock.wallJump = j.size
		s.trace(h.addr, "clock-jump", j.size, 0, "")
		end := s.w.now + int64(lasts)
		var watch func()
		watch = func() {
			s.meshJumpWatch()
			if s.chaos() && s.w.now < end {
				s.w.After(meshJumpSample, watch)
				return
			}
			h.clock.wallJump = 0
			s.trace(h.addr, "clock-back", 0, 0, "")
			s.meshJumpWatch()
		}
		watch()
	})
}

// meshJumpWatch samples which nodes are out of step with both peers, all
// three up, the network whole, and opens or closes their spans. A restart
// of any of the three ends a span where it happened (a node forgets its
// peers' refusals, and its peers a node's, when it restarts), however
// short the time between two samples.
func (s *Sim) meshJumpWatch() {
	j := &s.mesh.jump
	whole := !s.net.Partitioned()
	var lastUp int64
	for _, h := range s.hosts {
		lastUp = max(lastUp, h.upAt)
	}
	for _, h := range s.hosts {
		out := whole && h.up && h.gone == ""
		for _, p := range s.hosts {
			if p == h {
				continue
			}
			gap := h.clock.Wall() - p.clock.Wall()
			out = out && p.up && p.gone == "" && max(gap, -gap) > int64(time.Second+50*time.Millisecond)
		}
		if since := j.outSince[h.id]; since >= 0 && (!out || lastUp > since) {
			end := s.w.now
			if lastUp > since {
				end = min(end, lastUp)
			}
			j.spans = append(j.spans, [3]int64{int64(h.id), since, end})
			j.outSince[h.id] = -1
		}
		if out && j.outSince[h.id] < 0 {
			j.outSince[h.id] = s.w.now
		}
	}
}

// checkClockJump finds acknowledged writes that a node took while out of
// step with both its peers for longer than the grace: called after the
// request was sent, answered before the span ended.
func (s *Sim) checkClockJump(add func(check, format string, args ...any)) {
	j := &s.mesh.jump
	for i := range s.mesh.ops {
		op := &s.mesh.ops[i]
		if op.kind == checks.KindGet {
			continue
		}
		for _, sp := range j.spans {
			if int(sp[0]) != op.node || op.call < sp[1]+int64(meshOutOfStepGrace) || op.ret > sp[2] {
				continue
			}
			add("clock-offset", "node %d acknowledged %s (attempt %d, called at %s, stamp %s) while its calendar had been more than the max offset from both peers' for %s (since %s; the clock jumped %s)",
				op.node, op.kind, op.attempt, checks.FormatTime(op.call), op.stamp, time.Duration(op.call-sp[1]), checks.FormatTime(sp[1]), time.Duration(j.size))
		}
	}
}

// outOfStep sums the spans' time past the grace.
func (j *meshJumpState) outOfStep() time.Duration {
	var d int64
	for _, sp := range j.spans {
		d += max(0, sp[2]-sp[1]-int64(meshOutOfStepGrace))
	}
	return time.Duration(d)
}
