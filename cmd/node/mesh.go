package main

import (
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"dkv/core"
	"dkv/mesh"
	"dkv/realnet"
)

// The mesh flags. A mesh node is told its own ports and every other node's
// replication port, in node-id order (node 1 of three lists node 0, then
// node 2), as the seed's launcher writes it:
//
//	--mode mesh --node-id 0 --kv-port 9000 --repl-port 9100 --peer-repl-ports 9101 9102
//
// --node-id, --kv-port and --repl-port are the cluster's flags, with the
// same meaning; --peer-repl-ports and the tuning flags below are the
// mesh's own, and imply --mode mesh. No node redirects a client to another
// in a mesh, so the other nodes' client ports are not needed; given (as
// --other-kv-ports, the cluster's flag), they are checked against the
// other ports and logged.
// The ranges --max-offset and --anti-entropy-interval take.
const (
	maxOffsetMin   = time.Millisecond
	maxOffsetMax   = time.Minute
	antiEntropyMin = 10 * time.Millisecond
	antiEntropyMax = 10 * time.Minute
)

const (
	flagMeshPeerRepl    = "peer-repl-ports"
	flagWriteQuorum     = "write-quorum"
	flagMaxOffset       = "max-offset"
	flagAntiEntropy     = "anti-entropy-interval"
	flagMeshID          = "mesh-id"
	flagRemovedNodes    = "removed-nodes"
	meshNodesMin        = 2
	meshNodesMax        = 9 // a limit on everything: every write is sent to every peer
	meshModeAlias       = "masterless"
	meshIDDerivationTag = "dkv mesh v1\n"
)

// meshFlagNames are the flags only a mesh node takes; any of them implies
// --mode mesh.
var meshFlagNames = []string{flagMeshPeerRepl, flagWriteQuorum, flagMaxOffset, flagAntiEntropy, flagMeshID, flagRemovedNodes}

// clusterOnlyFlagNames are the cluster flags a mesh node refuses: with
// them, the command line is a cluster node's. --rejoin is among them: a
// cluster flag kept for old command lines, which changes nothing there
// either (a node on an empty directory rejoins by itself), and a mesh node
// on a new data directory holds its writes until it has heard from every
// peer by itself (mesh/join.go).
var clusterOnlyFlagNames = []string{flagPeerRepl, flagClusterID, flagRejoin}

// meshFlags are the raw mesh flags, as parsed; the shared ones (node id,
// ports) are in clusterFlags.
type meshFlags struct {
	peerRepl    string
	writeQuorum int
	maxOffset   time.Duration
	antiEntropy time.Duration
	meshID      string
	removed     string
}

func (mf *meshFlags) register(fs *flag.FlagSet) {
	def := mesh.DefaultConfig(0, []core.NodeID{0})
	fs.StringVar(&mf.peerRepl, flagMeshPeerRepl, "", "mesh: the other nodes' replication ports (or host:port), in node-id order, space- or comma-separated; implies --mode mesh")
	fs.IntVar(&mf.writeQuorum, flagWriteQuorum, def.WriteQuorum, "mesh: nodes (this one included) that must hold a write durably before it is acknowledged; a request's quorum field overrides it")
	fs.DurationVar(&mf.maxOffset, flagMaxOffset, def.MaxOffset, "mesh: how far ahead of this node's clock a peer's stamp or a client's after-stamp may be; messages beyond it are dropped and logged (and the sender told), such writes refused; a node whose calendar is this far out of step with most peers' (by the calendar readings their messages carry) takes no writes")
	fs.DurationVar(&mf.antiEntropy, flagAntiEntropy, def.AntiEntropyInterval, "mesh: pause between anti-entropy rounds with a peer when the last one found nothing to repair")
	fs.StringVar(&mf.meshID, flagMeshID, "", "mesh: the mesh id, 16 hex digits (default: derived from every node's id and replication address); give every node the old id to keep the data after changing ports")
	fs.StringVar(&mf.removed, flagRemovedNodes, "", "mesh: ids of nodes removed from the mesh for good, comma-separated (their entries stay in --"+flagMeshPeerRepl+"); they are no peers, tombstones are collected without them, and their data directories are refused for good (see docs/OPERATIONS.md)")
}

// anySet reports whether any of names was given.
func anySet(set map[string]bool, names []string) bool {
	for _, name := range names {
		if set[name] {
			return true
		}
	}
	return false
}

// setNames lists the flags of names that were given, as "--a, --b".
func setNames(set map[string]bool, names []string) string {
	var out []string
	for _, name := range names {
		if set[name] {
			out = append(out, "--"+name)
		}
	}
	return strings.Join(out, ", ")
}

// resolveMode settles the mode from --mode and the flags given: the mesh's
// own flags imply mesh, the cluster's own imply cluster, the flags they
// share (--node-id, --kv-port, --repl-port) imply cluster unless --mode
// says mesh. "masterless" is another name for mesh.
func resolveMode(mode string, set map[string]bool) (string, error) {
	if mode == meshModeAlias {
		mode = "mesh"
	}
	meshOnly := anySet(set, meshFlagNames)
	clusterOnly := anySet(set, clusterOnlyFlagNames)
	replicated := usesCluster(set) || meshOnly
	if !set["mode"] {
		switch {
		case meshOnly && clusterOnly:
			return "", fmt.Errorf("%s are mesh flags and %s cluster flags: give one mode's flags",
				setNames(set, meshFlagNames), setNames(set, clusterOnlyFlagNames))
		case meshOnly:
			return "mesh", nil
		case replicated:
			return "cluster", nil
		}
		return mode, nil
	}
	switch mode {
	case "single":
		if replicated {
			what := "cluster"
			if meshOnly {
				what = "mesh"
			}
			return "", fmt.Errorf("--mode single does not take the %s flags (--%s and the others)", what, flagNodeID)
		}
	case "cluster":
		if meshOnly {
			return "", fmt.Errorf("--mode cluster does not take the mesh flags (%s); a cluster node lists its peers with --%s and --%s",
				setNames(set, meshFlagNames), flagPeerRepl, flagPeerKV)
		}
	case "mesh":
		if clusterOnly {
			return "", fmt.Errorf("--mode mesh does not take the cluster flags (%s); a mesh node lists its peers with --%s",
				setNames(set, clusterOnlyFlagNames), flagMeshPeerRepl)
		}
	}
	return mode, nil
}

// meshConfig is a mesh node's validated view of its mesh.
type meshConfig struct {
	members
	kvAddr string   // this node's client address
	peerKV []string // every node's client address by id, if --other-kv-ports gave them; else nil
	meshID uint64
	// removed are the nodes removed for good (--removed-nodes), in id
	// order: still in replAddrs, which the mesh id derives from, and which
	// tells a removed node that comes back that it was removed.
	removed []core.NodeID
	// explicitID: the id came from --mesh-id, not from the addresses.
	explicitID  bool
	writeQuorum int
	maxOffset   time.Duration
	antiEntropy time.Duration
}

// membership renders every node as the mesh id sees it.
func (mc *meshConfig) membership() string {
	var b strings.Builder
	for i, a := range mc.replAddrs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "node %d: repl %s", i, a)
		switch {
		case core.NodeID(i) == mc.id:
			fmt.Fprintf(&b, ", client %s", mc.kvAddr)
		case mc.peerKV != nil:
			fmt.Fprintf(&b, ", client %s", mc.peerKV[i])
		}
	}
	return b.String()
}

// deriveMeshID hashes the membership as deriveClusterID does, under
// another tag: a mesh and a cluster on the same ports have different ids,
// so neither's nodes take the other's connections or data directories.
func deriveMeshID(replAddrs []string) uint64 {
	h := sha256.New()
	h.Write([]byte(meshIDDerivationTag))
	for i, a := range replAddrs {
		fmt.Fprintf(h, "%d %s\n", i, a)
	}
	id := binary.BigEndian.Uint64(h.Sum(nil))
	if id == 0 { // zero means "not set" to Peers
		id = 1
	}
	return id
}

// resolveMesh checks the mesh flags and builds the node's view of its mesh.
// host is --host: bare ports in the lists are on it. kvPort is --kv-port or
// --port, whichever was given.
func resolveMesh(cf *clusterFlags, mf *meshFlags, host string, kvPort int, kvPortSet bool, set map[string]bool) (*meshConfig, error) {
	if missing := missingFlags(set, kvPortSet, flagNodeID, flagKVPort, flagReplPort, flagMeshPeerRepl); len(missing) > 0 {
		return nil, fmt.Errorf("mesh mode needs %s (e.g. --mode mesh --node-id 0 --kv-port 9000 --repl-port 9100 --%s 9101 9102)",
			strings.Join(missing, ", "), flagMeshPeerRepl)
	}
	peerRepl := splitList(mf.peerRepl)
	n := len(peerRepl) + 1
	if n < meshNodesMin || n > meshNodesMax {
		return nil, fmt.Errorf("--%s makes a mesh of %d nodes; it takes %d to %d", flagMeshPeerRepl, n, meshNodesMin, meshNodesMax)
	}
	var peerKV []string
	if set[flagPeerKV] {
		peerKV = splitList(cf.peerKV)
		if len(peerKV) != len(peerRepl) {
			return nil, fmt.Errorf("--%s lists %d nodes but --%s lists %d: both list every other node, in node-id order",
				flagMeshPeerRepl, len(peerRepl), flagPeerKV, len(peerKV))
		}
	}
	if cf.nodeID < 0 || cf.nodeID >= n {
		return nil, fmt.Errorf("--%s %d is out of range: --%s makes a mesh of %d nodes, ids 0..%d", flagNodeID, cf.nodeID, flagMeshPeerRepl, n, n-1)
	}
	if kvPort <= 0 || kvPort > 65535 {
		return nil, fmt.Errorf("--%s must be in 1..65535 in mesh mode, not %d", flagKVPort, kvPort)
	}
	if cf.replPort <= 0 || cf.replPort > 65535 {
		return nil, fmt.Errorf("--%s must be in 1..65535, not %d", flagReplPort, cf.replPort)
	}
	removed, err := parseRemoved(mf.removed, cf.nodeID, n)
	if err != nil {
		return nil, err
	}
	if members := n - len(removed); mf.writeQuorum < 1 || mf.writeQuorum > members {
		if len(removed) > 0 {
			return nil, fmt.Errorf("--%s %d is out of range: 1 (this node's fsync) to %d (every node of the mesh not in --%s)", flagWriteQuorum, mf.writeQuorum, members, flagRemovedNodes)
		}
		return nil, fmt.Errorf("--%s %d is out of range: 1 (this node's fsync) to %d (every node of the mesh)", flagWriteQuorum, mf.writeQuorum, n)
	}
	if mf.maxOffset <= 0 {
		return nil, fmt.Errorf("--%s must be positive", flagMaxOffset)
	}
	if mf.antiEntropy <= 0 {
		return nil, fmt.Errorf("--%s must be positive", flagAntiEntropy)
	}
	// Bounds that refuse a slip of the unit (found by review: 1ns and 24h
	// were taken): a max offset under a millisecond is below the clocks'
	// ordinary disagreement, and every node would refuse its peers; over
	// a minute, a clock that far wrong goes unnoticed while it decides
	// which write wins. An interval under 10 ms spins; over 10 minutes,
	// a divergence waits that long for repair, and the clock check, which
	// looks back ten intervals, looks back hours.
	if mf.maxOffset < maxOffsetMin || mf.maxOffset > maxOffsetMax {
		return nil, fmt.Errorf("--%s %v is out of range: %v to %v", flagMaxOffset, mf.maxOffset, maxOffsetMin, maxOffsetMax)
	}
	if mf.antiEntropy < antiEntropyMin || mf.antiEntropy > antiEntropyMax {
		return nil, fmt.Errorf("--%s %v is out of range: %v to %v", flagAntiEntropy, mf.antiEntropy, antiEntropyMin, antiEntropyMax)
	}
	mc := &meshConfig{
		members:     members{id: core.NodeID(cf.nodeID), replAddrs: make([]string, n)},
		removed:     removed,
		kvAddr:      net.JoinHostPort(host, strconv.Itoa(kvPort)),
		writeQuorum: mf.writeQuorum,
		maxOffset:   mf.maxOffset,
		antiEntropy: mf.antiEntropy,
	}
	self := cf.nodeID
	mc.replAddrs[self] = net.JoinHostPort(host, strconv.Itoa(cf.replPort))
	if peerKV != nil {
		mc.peerKV = make([]string, n)
		mc.peerKV[self] = mc.kvAddr
	}
	for k := range peerRepl {
		id := k
		if k >= self {
			id = k + 1
		}
		var err error
		if mc.replAddrs[id], err = listAddr(host, peerRepl[k]); err != nil {
			return nil, fmt.Errorf("--%s, entry %d (node %d): %w", flagMeshPeerRepl, k+1, id, err)
		}
		if peerKV != nil {
			if mc.peerKV[id], err = listAddr(host, peerKV[k]); err != nil {
				return nil, fmt.Errorf("--%s, entry %d (node %d): %w", flagPeerKV, k+1, id, err)
			}
		}
	}
	if err := mc.checkDistinct(); err != nil {
		return nil, err
	}
	if wild, named := wildcardSelf(host, peerRepl); wild && !set[flagMeshID] && named != "" {
		// As a cluster node's (clusterFlags.resolve): the mesh id hashes
		// every node's replication address as each node names it.
		return nil, fmt.Errorf("--host %s listens on every address, but it is also this node's name in the mesh id, which derives from every node's replication address: "+
			"the other nodes name this one by the address they dial (as this node names a peer: %s), derive another id, and refuse its messages. "+
			"Give --host the address the other nodes dial, or give every node the same --%s (16 hex digits of your choice)", host, named, flagMeshID)
	}
	mc.meshID = deriveMeshID(mc.replAddrs)
	if set[flagMeshID] {
		id, err := strconv.ParseUint(mf.meshID, 16, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("--%s must be a non-zero id in hex (as the data directory's refusal and the serving line print it), not %q", flagMeshID, mf.meshID)
		}
		mc.meshID, mc.explicitID = id, true
	}
	return mc, nil
}

// peerList renders the other nodes for the serving line, the removed
// ones marked: "1=host:port 2=host:port(removed)".
func (mc *meshConfig) peerList() string { return renderPeers(mc.replAddrs, mc.id, mc.removed) }

// parseRemoved reads --removed-nodes: distinct ids of the mesh's n nodes,
// not self's, leaving two nodes at least.
func parseRemoved(list string, self, n int) ([]core.NodeID, error) {
	var ids []core.NodeID
	for _, e := range splitList(list) {
		id, err := strconv.Atoi(e)
		switch {
		case err != nil:
			return nil, fmt.Errorf("--%s takes node ids (e.g. --%s 2, or 1,2), not %q", flagRemovedNodes, flagRemovedNodes, e)
		case id < 0 || id >= n:
			return nil, fmt.Errorf("--%s: node %d is not in the mesh, whose ids are 0..%d (--%s lists every other node, removed ones included)", flagRemovedNodes, id, n-1, flagMeshPeerRepl)
		case id == self:
			return nil, fmt.Errorf("--%s names this node (%d): a node is removed by restarting the others with it in --%s, and it is retired or its data directory emptied", flagRemovedNodes, id, flagRemovedNodes)
		case slices.Contains(ids, core.NodeID(id)):
			return nil, fmt.Errorf("--%s names node %d twice", flagRemovedNodes, id)
		}
		ids = append(ids, core.NodeID(id))
	}
	if n-len(ids) < meshNodesMin {
		return nil, fmt.Errorf("--%s removes %d of the mesh's %d nodes: a mesh keeps %d at least", flagRemovedNodes, len(ids), n, meshNodesMin)
	}
	slices.Sort(ids)
	return ids, nil
}

// checkDistinct refuses two uses of one address, naming both. Only the
// addresses the flags give are known: this node's two, every node's
// replication address, and the other nodes' client addresses if listed.
func (mc *meshConfig) checkDistinct() error {
	type use struct {
		addr string
		what string
		node int
	}
	self := int(mc.id)
	uses := []use{
		{mc.kvAddr, "this node's --" + flagKVPort, self},
		{mc.replAddrs[self], "this node's --" + flagReplPort, self},
	}
	for i, a := range mc.replAddrs {
		if i != self {
			uses = append(uses, use{a, fmt.Sprintf("node %d's replication port (in --%s)", i, flagMeshPeerRepl), i})
		}
	}
	for i, a := range mc.peerKV {
		if i != self {
			uses = append(uses, use{a, fmt.Sprintf("node %d's client port (in --%s)", i, flagPeerKV), i})
		}
	}
	seen := make(map[string]use, len(uses))
	for _, u := range uses {
		first, dup := seen[u.addr]
		if !dup {
			seen[u.addr] = u
			continue
		}
		hint := "every node needs its own client port and its own replication port"
		if first.node == self || u.node == self {
			hint = "the lists name the other nodes only, not this one"
		}
		if first.node == self && u.node == self {
			hint = "a node's client port and replication port must differ"
		}
		return fmt.Errorf("%s is both %s and %s: %s", u.addr, first.what, u.what, hint)
	}
	return nil
}

// describeID says where the mesh id came from, for the start's log.
func (mc *meshConfig) describeID() string {
	if mc.explicitID {
		return fmt.Sprintf("mesh %016x, given by --%s; derived from the addresses it would be %016x",
			mc.meshID, flagMeshID, deriveMeshID(mc.replAddrs))
	}
	return fmt.Sprintf("mesh %016x, derived from every node's id and replication address", mc.meshID)
}

// startHint explains a refused start of a mesh node, or is empty.
func (mc *meshConfig) startHint(err error) string { return groupStartHint(err, "mesh", flagMeshID) }

// meshNode is what run needs of a mesh node: the node and its peer
// transport, which starts once the host exists, since it delivers into it.
type meshNode struct {
	node  *mesh.Node
	peers *realnet.Peers
}

func newMeshNode(o *options, logf func(string, ...any)) (*meshNode, error) {
	mc := o.mesh
	ids := make([]core.NodeID, mc.size())
	for i := range ids {
		ids[i] = core.NodeID(i)
	}
	cfg := mesh.DefaultConfig(mc.id, ids)
	cfg.MeshID = mc.meshID
	cfg.Removed = mc.removed
	limits := o.single.Limits
	limits.QuorumMax = mc.size() - len(mc.removed) // a quorum counts the nodes not removed
	cfg.Limits = limits
	cfg.Indexes, cfg.IndexBuild = o.single.Indexes, o.single.IndexBuild
	cfg.SegmentBytesMax = o.single.SegmentBytesMax
	cfg.SnapshotLogBytesMin = o.single.SnapshotLogBytesMin
	cfg.WriteQuorum = mc.writeQuorum
	cfg.MaxOffset = mc.maxOffset
	cfg.AntiEntropyInterval = mc.antiEntropy
	node, err := mesh.NewNode(cfg)
	if err != nil {
		return nil, err
	}
	pc := realnet.DefaultPeerConfig()
	pc.ID = mc.id
	pc.Listen = mc.replAddrs[mc.id]
	pc.Peers = mc.peers()
	pc.ClusterID = mc.meshID
	pc.Group = "mesh"
	pc.Logf = logf
	// The client port's password guards the replication port too: one
	// secret per cluster, which whoever may read and write its data has.
	pc.Secret = o.hostCfg.AuthSecret
	pc.TLS = o.tls.peerCf
	// Every write is one message to every peer, not a batch per fsync as
	// in a cluster: room for a few seconds of writes at full speed. What a
	// full queue drops, anti-entropy brings later.
	pc.QueueMax = 64 << 10
	if mesh.WriteBytesMax+(64<<10) > pc.FrameBytesMax {
		// A write goes to every peer whole, in one message.
		return nil, fmt.Errorf("a write of %d bytes does not fit the peer transport's frame limit of %d", mesh.WriteBytesMax, pc.FrameBytesMax)
	}
	if cfg.PushBytesMax+(64<<10) > pc.FrameBytesMax {
		return nil, fmt.Errorf("anti-entropy pushes of %d bytes do not fit the peer transport's frame limit of %d", cfg.PushBytesMax, pc.FrameBytesMax)
	}
	peers, err := realnet.NewPeers(pc)
	if err != nil {
		return nil, err
	}
	return &meshNode{node: node, peers: peers}, nil
}
