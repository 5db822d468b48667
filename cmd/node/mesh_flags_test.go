package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"dkv/core"
)

// meshLine is the launch line for node id of a 3-node mesh with
// client ports 9000+id and replication ports 9100+id.
func meshLine(id int) []string {
	kv := []string{"9000", "9001", "9002"}
	repl := []string{"9100", "9101", "9102"}
	args := []string{"--mode", "mesh", "--node-id", string(rune('0' + id)), "--kv-port", kv[id], "--repl-port", repl[id], "--peer-repl-ports"}
	args = append(args, slices.Delete(slices.Clone(repl), id, id+1)...)
	return append(args, "--data-dir", "d")
}

// The lines, as written, make three nodes of one mesh: the same
// membership, so the same mesh id, and each its own id and ports.
func TestMeshLaunchLinesMakeOneMesh(t *testing.T) {
	var ids []uint64
	for id := range 3 {
		o, err := parseFlags(meshLine(id), io.Discard)
		if err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
		mc := o.mesh
		if o.mode != "mesh" || mc == nil || o.cluster != nil || mc.id != core.NodeID(id) || o.hostCfg.ID != core.NodeID(id) || o.port != 9000+id {
			t.Fatalf("node %d: mode %q, mesh %+v, cluster %+v, host id %d, port %d", id, o.mode, mc, o.cluster, o.hostCfg.ID, o.port)
		}
		wantRepl := []string{"127.0.0.1:9100", "127.0.0.1:9101", "127.0.0.1:9102"}
		if !slices.Equal(mc.replAddrs, wantRepl) || mc.kvAddr != "127.0.0.1:900"+string(rune('0'+id)) {
			t.Errorf("node %d: repl %v, kv %v", id, mc.replAddrs, mc.kvAddr)
		}
		if p := mc.peers(); len(p) != 2 || p[core.NodeID(id)] != "" {
			t.Errorf("node %d: peers %v", id, p)
		}
		if mc.writeQuorum != 1 || mc.maxOffset != 500*time.Millisecond || mc.antiEntropy != time.Second {
			t.Errorf("node %d: defaults: quorum %d, max offset %v, anti-entropy %v", id, mc.writeQuorum, mc.maxOffset, mc.antiEntropy)
		}
		ids = append(ids, mc.meshID)
	}
	if ids[0] == 0 || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("mesh ids %x: want one non-zero id", ids)
	}
	// The same ports as a cluster make another id: neither takes the
	// other's connections or data directories.
	if o, err := parseFlags(seedLine(0), io.Discard); err != nil || o.cluster.clusterID == ids[0] {
		t.Errorf("a cluster on the mesh's ports: %v, id %x (the mesh's is %x)", err, o.cluster.clusterID, ids[0])
	}

	// Other spellings say the same: one dash, "=", commas, --port for
	// --kv-port, "masterless", or no --mode at all (--peer-repl-ports
	// implies it), and the other nodes' client ports given or not.
	for _, args := range [][]string{
		{"-mode=mesh", "-node-id=1", "-port=9001", "-repl-port=9101", "-peer-repl-ports=9100,9102"},
		{"--mode", "masterless", "--node-id", "1", "--kv-port", "9001", "--repl-port", "9101", "--peer-repl-ports", "127.0.0.1:9100", "9102"},
		{"--node-id", "1", "--kv-port", "9001", "--repl-port", "9101", "--peer-repl-ports", "9100", "9102"},
		{"--node-id", "1", "--kv-port", "9001", "--repl-port", "9101", "--peer-repl-ports", "9100 9102", "--other-kv-ports", "9000", "9002"},
	} {
		o, err := parseFlags(args, io.Discard)
		if err != nil || o.mode != "mesh" || o.mesh == nil || o.mesh.meshID != ids[0] || o.mesh.id != 1 {
			t.Errorf("%v: %v, %+v", args, err, o)
		}
	}

	// Any other membership is another mesh.
	for _, args := range [][]string{
		{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100", "--peer-repl-ports", "9102", "9101"},
		{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100", "--peer-repl-ports", "9101", "127.0.0.2:9102"},
		{"--node-id", "1", "--kv-port", "9000", "--repl-port", "9100", "--peer-repl-ports", "9101", "9102"},
	} {
		o, err := parseFlags(args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if o.mesh.meshID == ids[0] {
			t.Errorf("%v: same mesh id as the launch lines", args)
		}
	}
	// Client ports are not part of the id.
	o, err := parseFlags([]string{"--node-id", "0", "--kv-port", "8000", "--repl-port", "9100", "--peer-repl-ports", "9101", "9102"}, io.Discard)
	if err != nil || o.mesh.meshID != ids[0] {
		t.Errorf("other client port: %v, %+v", err, o)
	}
	// --mesh-id replaces the derived id.
	o, err = parseFlags(append(meshLine(0), "--mesh-id", "00000000000000ab"), io.Discard)
	if err != nil || o.mesh.meshID != 0xab || !o.mesh.explicitID {
		t.Errorf("--mesh-id: %v, %+v", err, o)
	}
	// The tuning flags.
	o, err = parseFlags(append(meshLine(2), "--write-quorum", "3", "--max-offset", "2s", "--anti-entropy-interval", "250ms"), io.Discard)
	if err != nil || o.mesh.writeQuorum != 3 || o.mesh.maxOffset != 2*time.Second || o.mesh.antiEntropy != 250*time.Millisecond {
		t.Errorf("tuning flags: %v, %+v", err, o)
	}
}

func TestBadMeshFlagsExit2(t *testing.T) {
	base := func(id, kv, repl string, peerRepl ...string) []string {
		args := []string{"--mode", "mesh", "--node-id", id, "--kv-port", kv, "--repl-port", repl, "--peer-repl-ports"}
		return append(args, peerRepl...)
	}
	ok := func(more ...string) []string { return append(base("0", "9000", "9100", "9101", "9102"), more...) }
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"mode alone", []string{"--mode=mesh"},
			"mesh mode needs --node-id, --kv-port, --repl-port, --peer-repl-ports"},
		{"missing lists", []string{"--mode", "mesh", "--node-id", "0", "--kv-port", "9000", "--repl-port", "9100"},
			"mesh mode needs --peer-repl-ports"},
		{"missing id", []string{"--kv-port", "9000", "--repl-port", "9100", "--peer-repl-ports", "9101", "9102"},
			"mesh mode needs --node-id"},
		{"list without values", []string{"--node-id", "0", "--peer-repl-ports", "--kv-port", "9000"},
			"--peer-repl-ports needs the other nodes' ports"},
		{"one node", []string{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100", "--peer-repl-ports=,"},
			`--peer-repl-ports "," has an empty entry`},
		{"too many", base("0", "9000", "9100", "1", "2", "3", "4", "5", "6", "7", "8", "9"),
			"--peer-repl-ports makes a mesh of 10 nodes; it takes 2 to 9"},
		{"id too large", base("3", "9000", "9100", "9101", "9102"),
			"--node-id 3 is out of range: --peer-repl-ports makes a mesh of 3 nodes, ids 0..2"},
		{"id negative", base("-1", "9000", "9100", "9101", "9102"),
			"--node-id -1 is out of range"},
		{"own repl port in the list", base("0", "9000", "9100", "9100", "9102"),
			"127.0.0.1:9100 is both this node's --repl-port and node 1's replication port (in --peer-repl-ports): the lists name the other nodes only"},
		{"own kv port in the list", base("1", "9001", "9101", "9001", "9102"),
			"127.0.0.1:9001 is both this node's --kv-port and node 0's replication port (in --peer-repl-ports): the lists name the other nodes only"},
		{"repl port is the kv port", base("0", "9000", "9000", "9101", "9102"),
			"127.0.0.1:9000 is both this node's --kv-port and this node's --repl-port: a node's client port and replication port must differ"},
		{"duplicate peer ports", base("0", "9000", "9100", "9101", "9101"),
			"127.0.0.1:9101 is both node 1's replication port (in --peer-repl-ports) and node 2's replication port (in --peer-repl-ports): every node needs its own"},
		{"peer kv port is a peer repl port", append(base("0", "9000", "9100", "9101", "9102"), "--other-kv-ports", "9001", "9101"),
			"127.0.0.1:9101 is both node 1's replication port (in --peer-repl-ports) and node 2's client port (in --other-kv-ports)"},
		{"kv list length", append(base("0", "9000", "9100", "9101", "9102"), "--other-kv-ports", "9001"),
			"--peer-repl-ports lists 2 nodes but --other-kv-ports lists 1"},
		{"bad entry", base("0", "9000", "9100", "9101", "x"),
			`--peer-repl-ports, entry 2 (node 2): "x" is not a port in 1..65535`},
		{"kv port 0", base("0", "0", "9100", "9101", "9102"),
			"--kv-port must be in 1..65535 in mesh mode"},
		{"repl port 0", []string{"--node-id", "0", "--kv-port", "9000", "--repl-port", "0", "--peer-repl-ports", "9101", "9102"},
			"--repl-port must be in 1..65535"},
		{"quorum 0", ok("--write-quorum", "0"),
			"--write-quorum 0 is out of range: 1 (this node's fsync) to 3 (every node of the mesh)"},
		{"quorum too large", ok("--write-quorum", "4"),
			"--write-quorum 4 is out of range"},
		{"max offset", ok("--max-offset", "0s"),
			"--max-offset must be positive"},
		{"anti-entropy interval", ok("--anti-entropy-interval", "-1s"),
			"--anti-entropy-interval must be positive"},
		{"max offset too small", ok("--max-offset", "1ns"),
			"--max-offset 1ns is out of range: 1ms to 1m0s"},
		{"max offset too large", ok("--max-offset", "24h"),
			"--max-offset 24h0m0s is out of range"},
		{"anti-entropy interval too small", ok("--anti-entropy-interval", "1ms"),
			"--anti-entropy-interval 1ms is out of range: 10ms to 10m0s"},
		{"anti-entropy interval too large", ok("--anti-entropy-interval", "1h"),
			"--anti-entropy-interval 1h0m0s is out of range"},
		{"bad mesh id", ok("--mesh-id", "xyz"),
			"--mesh-id must be a non-zero id in hex"},
		{"mesh with cluster flags", ok("--secondary-repl-ports", "9101", "9102"),
			"--mode mesh does not take the cluster flags (--secondary-repl-ports); a mesh node lists its peers with --peer-repl-ports"},
		{"mesh with cluster id", ok("--cluster-id", "ab"),
			"--mode mesh does not take the cluster flags (--cluster-id)"},
		{"both modes' flags", []string{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100", "--peer-repl-ports", "9101", "9102", "--secondary-repl-ports", "9101", "9102"},
			"--peer-repl-ports are mesh flags and --secondary-repl-ports cluster flags: give one mode's flags"},
		{"cluster with mesh flags", append(seedLine(0), "--mode", "cluster", "--write-quorum", "2"),
			"--mode cluster does not take the mesh flags (--write-quorum)"},
		{"single with mesh flags", []string{"--mode", "single", "--peer-repl-ports", "9101", "9102"},
			"--mode single does not take the mesh flags"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		var stderr bytes.Buffer
		c := run(append([]string{"--data-dir", dir}, tc.args...), &stderr)
		if c != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: %v: exit %d, stderr %q; want %d and %q", tc.name, tc.args, c, stderr.String(), exitUsage, tc.want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s: created the data directory before refusing", tc.name)
		}
	}
}

// A mesh node refused its data directory because the directory belongs to
// another mesh id hears why and what to do, as a cluster node does; any
// other refusal gets no hint.
func TestMeshStartHint(t *testing.T) {
	var mc meshConfig
	hint := mc.startHint(errors.New("the data directory belongs to node 0 of mesh 000000000000001f; this is node 0 of mesh 000000000000002e (same peers, same node id?)"))
	for _, want := range []string{"the mesh id derives from every node's id", "another mesh", "--mesh-id set to the id the data directory names"} {
		if !strings.Contains(hint, want) {
			t.Errorf("hint %q lacks %q", hint, want)
		}
	}
	if hint := mc.startHint(errors.New("disk full")); hint != "" {
		t.Errorf("a refusal for another reason got the hint %q", hint)
	}
}

// A mesh node bound to a wildcard address names itself by it in the mesh
// id, and its peers name it by the address they dial: as for a cluster
// (TestWildcardHostMakesOneCluster), it is refused at start when the list
// names other machines, and taken on one machine or with --mesh-id.
func TestWildcardHostMakesOneMesh(t *testing.T) {
	peers := []string{"--mode", "mesh", "--host", "0.0.0.0", "--node-id", "0", "--kv-port", "9000", "--repl-port", "9100",
		"--peer-repl-ports", "10.0.0.2:9101", "10.0.0.3:9102", "--data-dir", "d"}
	if _, err := parseFlags(peers, io.Discard); err == nil || !strings.Contains(err.Error(), "--host 0.0.0.0 listens on every address, but it is also this node's name in the mesh id") {
		t.Errorf("--host 0.0.0.0, peers on other machines: %v; want a refusal naming the mesh id", err)
	}
	o, err := parseFlags(append(peers, "--mesh-id", "00000000000000ab"), io.Discard)
	if err != nil || o.mesh.meshID != 0xab {
		t.Errorf("--host 0.0.0.0 with --mesh-id: %v, %+v", err, o)
	}
	var ids []uint64
	for id := range 3 {
		o, err := parseFlags(append(meshLine(id), "--host", "0.0.0.0"), io.Discard)
		if err != nil {
			t.Fatalf("node %d on one machine: %v", id, err)
		}
		ids = append(ids, o.mesh.meshID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("three nodes on one machine, --host 0.0.0.0: mesh ids %x, want one", ids)
	}
}
