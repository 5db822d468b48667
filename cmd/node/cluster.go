package main

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"dkv/core"
	"dkv/election"
	"dkv/realnet"
)

// clusterRequestBytesDefault is a cluster node's --max-request-bytes
// unless the flag says otherwise: 4 MiB, not the single node's 16 MiB. The
// leader's loop reads, logs, sends to each follower and applies one
// request in one go, some eight copies of it in fresh memory; on the 2-core
// VM a 15 MB bulk_set held it 0.5–1.5 s, past the followers' election
// timeout (200–400 ms), and one such request in three or so cost the
// cluster its leader (found by review). 4 MB requests took 48–181 ms and
// 8 MB ones 96–309 ms, with no election in 25. etcd's limit is 1.5 MiB
// for the same reason.
const clusterRequestBytesDefault = 4 << 20

// The cluster flags. A cluster node is told its own ports and, in two
// lists, every other node's, in node-id order: node 1 of three lists node 0
// then node 2. Nothing else is shared, so all nodes must be given the same
// membership; the cluster id, derived from it, makes sure they were.
const (
	flagNodeID      = "node-id"
	flagKVPort      = "kv-port"
	flagReplPort    = "repl-port"
	flagPeerRepl    = "secondary-repl-ports"
	flagPeerKV      = "other-kv-ports"
	flagClusterID   = "cluster-id"
	flagRejoin      = "rejoin"
	clusterNodesMax = 9 // a limit on everything; Raft past 9 voters is slow to commit anyway
)

// listFlags take several values: "--other-kv-ports 9001 9002" as the
// seed's launcher writes it, or "--other-kv-ports=9001,9002".
var listFlags = []string{flagPeerRepl, flagPeerKV, flagMeshPeerRepl}

// clusterFlagNames are the flags that only a cluster node takes; any of
// them implies --mode cluster.
var clusterFlagNames = []string{flagNodeID, flagKVPort, flagReplPort, flagPeerRepl, flagPeerKV, flagClusterID, flagRejoin}

// expandListFlags rewrites the list flags of args into the single-value
// form the flag package parses: the values after such a flag, up to the next
// argument that starts with "-", are joined with commas. Ports never start
// with "-", and neither do host:port pairs.
//
// A list flag given twice is refused, as is an empty entry ("9101,,9102",
// "9101,"): the flag package would keep the last list, and splitting
// would drop the empty entry, each leaving a node out of the list without
// a word, and the node ids after it shifted.
func expandListFlags(args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	seen := make(map[string]bool)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !isListFlag(name) {
			out = append(out, a)
			continue
		}
		if seen[name] {
			return nil, fmt.Errorf("--%s is given twice: give it once, with every other node's port in node-id order (e.g. --%s 7001 7002)", name, name)
		}
		seen[name] = true
		var values []string
		if hasValue && value != "" {
			values = append(values, value)
		}
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			values = append(values, args[i])
		}
		if len(values) == 0 {
			return nil, fmt.Errorf("--%s needs the other nodes' ports, in node-id order (e.g. --%s 7001 7002)", name, name)
		}
		for _, v := range values {
			for _, entry := range strings.Split(v, ",") {
				if strings.TrimSpace(entry) == "" {
					return nil, fmt.Errorf("--%s %q has an empty entry (two commas in a row, or one at an end): list every other node's port once, in node-id order (e.g. --%s 7001 7002 or --%s=7001,7002)", name, v, name, name)
				}
			}
		}
		out = append(out, "--"+name+"="+strings.Join(values, ","))
	}
	return out, nil
}

func isListFlag(name string) bool {
	for _, f := range listFlags {
		if name == f {
			return true
		}
	}
	return false
}

// clusterFlags are the raw cluster flags, as parsed.
type clusterFlags struct {
	nodeID   int
	kvPort   int
	replPort int
	peerRepl string
	peerKV   string
	// clusterID, in hex, replaces the id derived from the ports: the way
	// to keep a cluster's data directories across a change of ports.
	clusterID string
	// rejoin: --rejoin was given. It changes nothing any more (every
	// node on an empty directory rejoins, or finds the cluster new); it
	// is accepted so that command lines written for earlier builds still
	// start, and the node says so.
	rejoin bool
}

func (cf *clusterFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&cf.nodeID, flagNodeID, -1, "cluster and mesh: this node's id, 0..N-1 (N = 1 + the number of other nodes)")
	fs.IntVar(&cf.kvPort, flagKVPort, -1, "cluster and mesh: this node's client port (the name for --port there)")
	fs.IntVar(&cf.replPort, flagReplPort, 0, "cluster and mesh: this node's replication (peer) port")
	fs.StringVar(&cf.peerRepl, flagPeerRepl, "", "cluster: the other nodes' replication ports (or host:port), in node-id order, space- or comma-separated")
	fs.StringVar(&cf.peerKV, flagPeerKV, "", "cluster (and mesh, to check and log): the other nodes' client ports (or host:port), in node-id order, space- or comma-separated")
	fs.StringVar(&cf.clusterID, flagClusterID, "", "cluster: the cluster id, 16 hex digits (default: derived from every node's id and replication address); give every node the old id to keep the data after changing ports")
	fs.BoolVar(&cf.rejoin, flagRejoin, false, "cluster: no longer needed, and changes nothing: a node on an empty data directory always votes only once it has heard\n"+
		"every other node, and has caught up with the leader unless every other node is empty too (a new cluster); accepted for old command lines")
}

// clusterConfig is a cluster node's validated view of its cluster.
type clusterConfig struct {
	members
	kvAddrs   []string // every node's client address, by id
	clusterID uint64
	// explicitID: the id came from --cluster-id, not from the addresses.
	explicitID bool
	rejoin     bool
}

// members is a replicated node's view of its group, shared by the cluster
// and the mesh: its own id and every node's replication address, by id.
type members struct {
	id        core.NodeID
	replAddrs []string
}

func (m *members) size() int { return len(m.replAddrs) }

// peers is every other node's replication address.
func (m *members) peers() map[core.NodeID]string {
	out := make(map[core.NodeID]string, m.size()-1)
	for i, a := range m.replAddrs {
		if core.NodeID(i) != m.id {
			out[core.NodeID(i)] = a
		}
	}
	return out
}

// peerList renders the other nodes for the serving line: "1=host:port ...".
func (m *members) peerList() string { return renderPeers(m.replAddrs, m.id, nil) }

// renderPeers renders the nodes of addrs (a node's id is its place) other
// than self, those in removed marked: "1=host:port 2=host:port(removed)".
func renderPeers(addrs []string, self core.NodeID, removed []core.NodeID) string {
	var b strings.Builder
	for i, a := range addrs {
		if core.NodeID(i) == self {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d=%s", i, a)
		if slices.Contains(removed, core.NodeID(i)) {
			b.WriteString("(removed)")
		}
	}
	return b.String()
}

// membership renders every node as the cluster id sees it.
func (cc *clusterConfig) membership() string {
	var b strings.Builder
	for i := range cc.replAddrs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "node %d: client %s, repl %s", i, cc.kvAddrs[i], cc.replAddrs[i])
	}
	return b.String()
}

// deriveClusterID hashes the membership: every node's id and replication
// address, in id order. Nodes given the same lists agree on it without
// talking; a node given other lists gets another id, and its peers refuse
// its connections (and it theirs). Client ports are left out: they only
// name the leader in redirects. The id is kept in each data directory at
// the first start, so a node restarted with other replication ports
// refuses that directory.
func deriveClusterID(replAddrs []string) uint64 {
	h := sha256.New()
	h.Write([]byte("dkv cluster v1\n"))
	for i, a := range replAddrs {
		fmt.Fprintf(h, "%d %s\n", i, a)
	}
	id := binary.BigEndian.Uint64(h.Sum(nil))
	if id == 0 { // zero means "not set" to Peers; 2^-64 odds, but cheap to rule out
		id = 1
	}
	return id
}

// usesCluster reports whether any cluster-only flag was given.
func usesCluster(set map[string]bool) bool {
	for _, name := range clusterFlagNames {
		if set[name] {
			return true
		}
	}
	return false
}

// missingFlags lists, as --name, those of names that set does not hold;
// the KV port counts as given when kvPortSet (--port stands for it).
func missingFlags(set map[string]bool, kvPortSet bool, names ...string) []string {
	var missing []string
	for _, name := range names {
		given := set[name]
		if name == flagKVPort {
			given = kvPortSet
		}
		if !given {
			missing = append(missing, "--"+name)
		}
	}
	return missing
}

// resolve checks the cluster flags and builds the node's view of its
// cluster. host is --host: bare ports in the lists are on it. kvPort is
// --kv-port or --port, whichever was given.
func (cf *clusterFlags) resolve(host string, kvPort int, kvPortSet bool, set map[string]bool) (*clusterConfig, error) {
	if missing := missingFlags(set, kvPortSet, flagNodeID, flagKVPort, flagReplPort, flagPeerRepl, flagPeerKV); len(missing) > 0 {
		return nil, fmt.Errorf("cluster mode needs %s (e.g. --node-id 0 --kv-port 9000 --repl-port 9100 --secondary-repl-ports 9101 9102 --other-kv-ports 9001 9002)", strings.Join(missing, ", "))
	}
	peerRepl := splitList(cf.peerRepl)
	peerKV := splitList(cf.peerKV)
	if len(peerRepl) != len(peerKV) {
		return nil, fmt.Errorf("--%s lists %d nodes but --%s lists %d: both list every other node, in node-id order",
			flagPeerRepl, len(peerRepl), flagPeerKV, len(peerKV))
	}
	n := len(peerRepl) + 1
	if n < 3 || n > clusterNodesMax {
		return nil, fmt.Errorf("the lists make a cluster of %d nodes; it takes 3 to %d (a cluster of %d survives no failure)",
			n, clusterNodesMax, min(n, 2))
	}
	if cf.nodeID < 0 || cf.nodeID >= n {
		return nil, fmt.Errorf("--%s %d is out of range: the lists make a cluster of %d nodes, ids 0..%d", flagNodeID, cf.nodeID, n, n-1)
	}
	if kvPort <= 0 || kvPort > 65535 {
		return nil, fmt.Errorf("--%s must be in 1..65535 in cluster mode (the other nodes name it in redirects), not %d", flagKVPort, kvPort)
	}
	if cf.replPort <= 0 || cf.replPort > 65535 {
		return nil, fmt.Errorf("--%s must be in 1..65535, not %d", flagReplPort, cf.replPort)
	}
	cc := &clusterConfig{members: members{id: core.NodeID(cf.nodeID), replAddrs: make([]string, n)}, kvAddrs: make([]string, n)}
	self := cf.nodeID
	cc.kvAddrs[self] = net.JoinHostPort(host, strconv.Itoa(kvPort))
	cc.replAddrs[self] = net.JoinHostPort(host, strconv.Itoa(cf.replPort))
	for k := range peerRepl {
		id := k
		if k >= self {
			id = k + 1
		}
		var err error
		if cc.replAddrs[id], err = listAddr(host, peerRepl[k]); err != nil {
			return nil, fmt.Errorf("--%s, entry %d (node %d): %w", flagPeerRepl, k+1, id, err)
		}
		if cc.kvAddrs[id], err = listAddr(host, peerKV[k]); err != nil {
			return nil, fmt.Errorf("--%s, entry %d (node %d): %w", flagPeerKV, k+1, id, err)
		}
	}
	if err := cc.checkDistinct(); err != nil {
		return nil, err
	}
	if wild, named := wildcardSelf(host, peerRepl); wild && !set[flagClusterID] && named != "" {
		// The cluster id hashes every node's replication address as each
		// node names it: this one names itself by the wildcard, the
		// others by the address they dial, so every node derives another
		// id and refuses the others' connections, for good, each logging
		// "wrong cluster id" (found by review).
		return nil, fmt.Errorf("--host %s listens on every address, but it is also this node's name in the cluster id, which derives from every node's replication address: "+
			"the other nodes name this one by the address they dial (as this node names a peer: %s), derive another id, and refuse its connections. "+
			"Give --host the address the other nodes dial, or give every node the same --%s (16 hex digits of your choice)", host, named, flagClusterID)
	}
	cc.clusterID = deriveClusterID(cc.replAddrs)
	if set[flagClusterID] {
		id, err := strconv.ParseUint(cf.clusterID, 16, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("--%s must be a non-zero id in hex (as the data directory's refusal and the serving line print it), not %q", flagClusterID, cf.clusterID)
		}
		cc.clusterID, cc.explicitID = id, true
	}
	cc.rejoin = cf.rejoin
	return cc, nil
}

// wildcardSelf reports whether host is a wildcard address (0.0.0.0, ::),
// and, if so, the first entry of peerRepl that names another node by an
// address that is not one: nodes on several machines, whose lists name
// this one by its real address. ("" when every entry is a bare port or a
// wildcard, as on one machine, where every node names every other by the
// same wildcard and the ids agree.)
func wildcardSelf(host string, peerRepl []string) (wild bool, named string) {
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return false, ""
	}
	for _, entry := range peerRepl {
		h, _, err := net.SplitHostPort(entry)
		if err != nil {
			continue // a bare port: on --host
		}
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			return true, entry
		}
	}
	return true, ""
}

// checkDistinct refuses two uses of one address, naming both.
func (cc *clusterConfig) checkDistinct() error {
	type use struct {
		node int
		kind string // "kv" or "repl"
	}
	describe := func(u use) string {
		if core.NodeID(u.node) == cc.id {
			if u.kind == "kv" {
				return "this node's --" + flagKVPort
			}
			return "this node's --" + flagReplPort
		}
		if u.kind == "kv" {
			return fmt.Sprintf("node %d's client port (in --%s)", u.node, flagPeerKV)
		}
		return fmt.Sprintf("node %d's replication port (in --%s)", u.node, flagPeerRepl)
	}
	seen := make(map[string]use, 2*cc.size())
	// This node first, so that its own ports are named as what they are
	// when a list repeats them.
	order := []int{int(cc.id)}
	for i := range cc.replAddrs {
		if core.NodeID(i) != cc.id {
			order = append(order, i)
		}
	}
	for _, i := range order {
		for _, u := range []struct {
			addr string
			use  use
		}{{cc.kvAddrs[i], use{i, "kv"}}, {cc.replAddrs[i], use{i, "repl"}}} {
			first, dup := seen[u.addr]
			if !dup {
				seen[u.addr] = u.use
				continue
			}
			hint := "every node needs its own client port and its own replication port"
			if core.NodeID(first.node) == cc.id || core.NodeID(u.use.node) == cc.id {
				hint = "the lists name the other nodes only, not this one"
			}
			return fmt.Errorf("%s is both %s and %s: %s", u.addr, describe(first), describe(u.use), hint)
		}
	}
	return nil
}

// splitList splits a list flag's value (commas, as expandListFlags joins
// them, or spaces within one quoted argument).
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// listAddr turns an entry of a list into host:port: a bare port is on host.
func listAddr(host, entry string) (string, error) {
	h, p := host, entry
	if strings.Contains(entry, ":") {
		var err error
		if h, p, err = net.SplitHostPort(entry); err != nil {
			return "", fmt.Errorf("%q is neither a port nor host:port", entry)
		}
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", fmt.Errorf("%q is not a port in 1..65535", entry)
	}
	return net.JoinHostPort(h, strconv.Itoa(port)), nil
}

// describeID says where the cluster id came from, for the start's log.
func (cc *clusterConfig) describeID() string {
	if cc.explicitID {
		return fmt.Sprintf("cluster %016x (%d), given by --%s; derived from the addresses it would be %016x",
			cc.clusterID, cc.clusterID, flagClusterID, deriveClusterID(cc.replAddrs))
	}
	return fmt.Sprintf("cluster %016x (%d), derived from every node's id and replication address", cc.clusterID, cc.clusterID)
}

// startHint explains a refused start of a cluster node, or is empty.
func (cc *clusterConfig) startHint(err error) string {
	if strings.Contains(err.Error(), "holds a log but no raft-state: it is a single node's") {
		// election takes a log without raft-state for a single node's,
		// and says only that; but a cluster node's own directory whose
		// raft-state was deleted (to "reset" the node, or by a cleanup
		// of small files) is refused the same way, and its operator,
		// told that it is a single node's, has no way on (found by
		// review). Its log without the vote it was written under cannot
		// be trusted to vote: the way on is that of a lost disk.
		return "if this is a single node's directory, start it without the cluster flags. If it is this cluster node's own, " +
			"whose raft-state file (its term and vote) was removed or lost, its log cannot vote safely without it: " +
			"move the directory aside and start the node on an empty one; it catches up from the leader before it votes"
	}
	return groupStartHint(err, "cluster", flagClusterID)
}

// groupStartHint explains a refused start of a node of a cluster or mesh
// (what) whose id flag is idFlag, or is empty. A data directory of another
// group is most often this group's, before its ports changed; one of this
// group but another node is another node's directory, given by mistake
// (two directories swapped, a --node-id off by one), and the hint says
// which node it belongs to: telling that operator to give --cluster-id the
// id this node already has would send them round in circles (found by
// review). (The match is on the message that election and mesh give;
// should it change, the hint is merely lost.)
func groupStartHint(err error, what, idFlag string) string {
	m := belongsToRe.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	dirNode, dirGroup, selfNode, selfGroup := m[1], m[2], m[3], m[4]
	if dirGroup == selfGroup {
		return fmt.Sprintf("the data directory is node %[1]s's of this %[3]s, not node %[2]s's: start node %[1]s on it (--node-id %[1]s, with node %[1]s's ports), "+
			"and give node %[2]s its own directory. Never start one directory as two nodes: it holds one node's own state (a cluster node's votes, a mesh node's clocks)", dirNode, selfNode, what)
	}
	hint := fmt.Sprintf("the %[1]s id derives from every node's id and replication address, so other ports (or another order) make another %[1]s. "+
		"Start the node with the ports its %[1]s was created with; or, if the ports changed on purpose, start every node with --%[2]s set to the id the data directory names", what, idFlag)
	if dirNode != selfNode {
		hint += fmt.Sprintf(" (and this one as node %s, whose directory it is)", dirNode)
	}
	return hint
}

// belongsToRe matches election's and mesh's refusal of a data directory
// that another node wrote: its node and group, then this node's.
var belongsToRe = regexp.MustCompile(`the data directory belongs to node (\d+) of (?:cluster|mesh) ([0-9a-f]+); this is node (\d+) of (?:cluster|mesh) ([0-9a-f]+)`)

// clusterNode is what run needs of a cluster node: the node, its host
// config and its peer transport.
type clusterNode struct {
	node  *election.Node
	peers *realnet.Peers
}

// newClusterNode builds the node and its transport; the transport starts
// once the host exists (startPeers), since it delivers into the host.
func newClusterNode(o *options, logf func(string, ...any)) (*clusterNode, error) {
	cc := o.cluster
	ids := make([]core.NodeID, cc.size())
	for i := range ids {
		ids[i] = core.NodeID(i)
	}
	cfg := election.DefaultNodeConfig(cc.id, ids)
	cfg.ClusterID = cc.clusterID
	cfg.Limits = o.single.Limits
	cfg.Indexes, cfg.IndexBuild = o.single.Indexes, o.single.IndexBuild
	cfg.SegmentBytesMax = o.single.SegmentBytesMax
	cfg.SnapshotLogBytesMin = o.single.SnapshotLogBytesMin
	cfg.ClientAddrs = make(map[core.NodeID]string, cc.size())
	for i, a := range cc.kvAddrs {
		cfg.ClientAddrs[core.NodeID(i)] = a
	}
	node, err := election.NewNode(cfg)
	if err != nil {
		return nil, err
	}
	if cc.rejoin {
		// An operator who gives it to a directory restored from a copy
		// believes it makes the node safe: a copy's term and vote are
		// behind, and the node votes by them (found by review).
		logf("--rejoin is no longer needed and changes nothing: a node on an empty data directory always rejoins (or, if every other node is empty too, starts a new cluster); a node on a directory that holds raft-state votes by it, so never start one on an older copy of its directory")
	}
	pc := realnet.DefaultPeerConfig()
	pc.ID = cc.id
	pc.Listen = cc.replAddrs[cc.id]
	pc.Peers = cc.peers()
	pc.ClusterID = cc.clusterID
	pc.Logf = logf
	// The client port's password guards the replication port too: one
	// secret per cluster, which whoever may read and write its data has.
	pc.Secret = o.hostCfg.AuthSecret
	pc.TLS = o.tls.peerCf
	if election.EntryBytesMax+(64<<10) > pc.FrameBytesMax {
		// A write's entry goes to each follower in one append message.
		return nil, fmt.Errorf("a write of %d bytes does not fit the peer transport's frame limit of %d", election.EntryBytesMax, pc.FrameBytesMax)
	}
	if cfg.SnapChunkBytes+(64<<10) > pc.FrameBytesMax {
		return nil, errors.New("snapshot chunks do not fit the peer transport's frame limit")
	}
	peers, err := realnet.NewPeers(pc)
	if err != nil {
		return nil, err
	}
	return &clusterNode{node: node, peers: peers}, nil
}

// handOverWait bounds a graceful shutdown's hand-over (handOver): the
// leader's Raft gives the hand-over up after an election timeout (200 ms
// with election's defaults), and the writes it took then wait for the new
// leader to commit them; longer than both, and still short of what an
// operator's stop command (systemd's 90 s) allows.
const handOverWait = time.Second

// handOverPoll is how often a shutting-down leader looks whether its
// hand-over is done.
const handOverPoll = 5 * time.Millisecond

// handOver is a cluster leader's last act before a graceful shutdown: it
// hands the office to its most up-to-date follower (election.Node.HandOver)
// and waits until that one leads and every write this node took has its
// answer, at most wait. A leader that just stopped left the cluster without
// one for an election timeout or more (200-400 ms by default), every write
// meanwhile failing or waiting; handed over, the cluster goes on after a
// round trip. A node that does not lead, or whose followers cannot take the
// office, stops at once.
func handOver(host *realnet.Host, n *election.Node, wait time.Duration, logs *serverLog) {
	// What a look at the node found. Each look runs on the node's goroutine
	// and sends its findings back whole: a look that outlived its wait
	// wrote into the caller's variables after the caller had read them
	// (found by review).
	type look struct {
		to, lead    core.NodeID
		began, done bool
		failed      bool
		other       bool // another node leads (lead)
	}
	ask := func(f func() look) (look, bool) {
		res := make(chan look, 1)
		if !host.Post(func() { res <- f() }) {
			return look{}, false // the host stopped
		}
		select {
		case l := <-res:
			return l, true
		case <-time.After(wait):
			return look{}, false
		}
	}
	first, ok := ask(func() look {
		to, ok := n.HandOver()
		return look{to: to, began: ok}
	})
	if !ok || !first.began {
		return
	}
	to := first.to
	start := time.Now()
	var last look
	for time.Since(start) < wait {
		l, ok := ask(func() look {
			r := n.Raft()
			return look{lead: r.Leader(), done: n.HandedOver(), failed: n.HandOverFailed(),
				other: r.State() != election.Leader && r.Leader() != election.None}
		})
		if ok && l.done {
			logs.Info(fmt.Sprintf("handed the office to node %d in %v", l.lead, time.Since(start).Round(time.Millisecond)), "event", "hand_over", "to", int(l.lead))
			return
		}
		if ok && l.failed {
			// Waiting the rest of the second would hold the exit while
			// this node leads on (found by review).
			logs.Warn(fmt.Sprintf("node %d did not take the office within an election timeout; shutting down as leader (the others elect one by themselves)", to), "event", "hand_over", "to", int(to))
			return
		}
		if ok {
			last = l
		}
		time.Sleep(handOverPoll)
	}
	if last.other {
		// Another node leads, but the writes this node took as leader
		// still wait for their answers (the new leader died before
		// committing them, say): the office was handed over all the same.
		logs.Warn(fmt.Sprintf("node %d leads, but writes this node took still had no answer after %v; shutting down (their clients retry them)", last.lead, wait), "event", "hand_over", "to", int(last.lead))
		return
	}
	logs.Warn(fmt.Sprintf("node %d did not take the office within %v; shutting down anyway (the cluster elects a leader by itself)", to, wait), "event", "hand_over", "to", int(to))
}
