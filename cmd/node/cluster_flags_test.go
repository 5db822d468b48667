package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"dkv/core"
)

// seedLine is the seed launcher's command line for node id of a 3-node
// cluster with client ports 9000+id and replication ports 9100+id.
func seedLine(id int) []string {
	kv := []string{"9000", "9001", "9002"}
	repl := []string{"9100", "9101", "9102"}
	others := func(l []string) []string {
		return slices.Delete(slices.Clone(l), id, id+1)
	}
	args := []string{"--node-id", string(rune('0' + id)), "--kv-port", kv[id], "--repl-port", repl[id], "--secondary-repl-ports"}
	args = append(args, others(repl)...)
	args = append(args, "--data-dir", "d", "--other-kv-ports")
	return append(args, others(kv)...)
}

func TestExpandListFlags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"--other-kv-ports 1 2 --port 3", "--other-kv-ports=1,2 --port 3"},
		{"-secondary-repl-ports 1 2", "--secondary-repl-ports=1,2"},
		{"--other-kv-ports=1,2", "--other-kv-ports=1,2"},
		{"--other-kv-ports=1 2", "--other-kv-ports=1,2"},
		{"--other-kv-ports 1,2 -x", "--other-kv-ports=1,2 -x"},
		{"--other-kv-ports h:1 h:2", "--other-kv-ports=h:1,h:2"},
		{"--port 1 extra", "--port 1 extra"},
		{"-- --other-kv-ports 1 2", "-- --other-kv-ports 1 2"},
	} {
		got, err := expandListFlags(strings.Fields(tc.in))
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"--other-kv-ports", "--other-kv-ports --port 1", "--secondary-repl-ports=",
		"--other-kv-ports 1 --other-kv-ports 2", "--other-kv-ports=1,,2", "--other-kv-ports 1, 2", "--other-kv-ports ,1"} {
		if got, err := expandListFlags(strings.Fields(in)); err == nil {
			t.Errorf("%q: got %q, want an error", in, got)
		}
	}
}

// The seed's lines, as written, make three nodes of one cluster: the same
// membership, so the same cluster id, and each its own id and ports.
func TestSeedLaunchLinesMakeOneCluster(t *testing.T) {
	var ids []uint64
	for id := range 3 {
		o, err := parseFlags(seedLine(id), io.Discard)
		if err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
		cc := o.cluster
		if o.mode != "cluster" || cc == nil || cc.id != core.NodeID(id) || o.hostCfg.ID != core.NodeID(id) || o.port != 9000+id {
			t.Fatalf("node %d: mode %q, cluster %+v, host id %d, port %d", id, o.mode, cc, o.hostCfg.ID, o.port)
		}
		wantRepl := []string{"127.0.0.1:9100", "127.0.0.1:9101", "127.0.0.1:9102"}
		wantKV := []string{"127.0.0.1:9000", "127.0.0.1:9001", "127.0.0.1:9002"}
		if !slices.Equal(cc.replAddrs, wantRepl) || !slices.Equal(cc.kvAddrs, wantKV) {
			t.Errorf("node %d: repl %v, kv %v", id, cc.replAddrs, cc.kvAddrs)
		}
		if p := cc.peers(); len(p) != 2 || p[core.NodeID(id)] != "" {
			t.Errorf("node %d: peers %v", id, p)
		}
		ids = append(ids, cc.clusterID)
	}
	if ids[0] == 0 || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("cluster ids %x: want one non-zero id", ids)
	}

	// One dash, "=", commas, an explicit --mode and --port for --kv-port
	// say the same.
	o, err := parseFlags([]string{"-mode=cluster", "-node-id=1", "-port=9001", "-repl-port=9101",
		"-secondary-repl-ports=9100,9102", "-other-kv-ports=127.0.0.1:9000,9002"}, io.Discard)
	if err != nil || o.cluster.clusterID != ids[0] {
		t.Errorf("other spelling: %v, %+v", err, o)
	}

	// Any other membership is another cluster: the same ports in another
	// order, another host, another port.
	for _, args := range [][]string{
		{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100", "--secondary-repl-ports", "9102", "9101", "--other-kv-ports", "9002", "9001"},
		{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100", "--secondary-repl-ports", "9101", "127.0.0.2:9102", "--other-kv-ports", "9001", "9002"},
		{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100", "--secondary-repl-ports", "9101", "9103", "--other-kv-ports", "9001", "9002"},
		{"--node-id", "1", "--kv-port", "9000", "--repl-port", "9100", "--secondary-repl-ports", "9101", "9102", "--other-kv-ports", "9001", "9002"},
	} {
		o, err := parseFlags(args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if o.cluster.clusterID == ids[0] {
			t.Errorf("%v: same cluster id as the seed's lines", args)
		}
	}
	// --cluster-id replaces the derived id.
	o, err = parseFlags(append(seedLine(0), "--cluster-id", "00000000000000ab"), io.Discard)
	if err != nil || o.cluster.clusterID != 0xab || !o.cluster.explicitID {
		t.Errorf("--cluster-id: %v, %+v", err, o)
	}
	// Client ports only name the leader in redirects: not part of the id.
	o, err = parseFlags([]string{"--node-id", "0", "--kv-port", "8000", "--repl-port", "9100", "--secondary-repl-ports", "9101", "9102", "--other-kv-ports", "8001", "8002"}, io.Discard)
	if err != nil || o.cluster.clusterID != ids[0] {
		t.Errorf("other client ports: %v, cluster id %x, want %x", err, o.cluster.clusterID, ids[0])
	}
}

func TestBadClusterFlagsExit2(t *testing.T) {
	base := func(id string, kv, repl string, peerRepl, peerKV []string) []string {
		args := []string{"--node-id", id, "--kv-port", kv, "--repl-port", repl, "--secondary-repl-ports"}
		args = append(args, peerRepl...)
		args = append(args, "--other-kv-ports")
		return append(args, peerKV...)
	}
	two := []string{"9101", "9102"}
	twoKV := []string{"9001", "9002"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"count mismatch", base("0", "9000", "9100", two, []string{"9001"}),
			"--secondary-repl-ports lists 2 nodes but --other-kv-ports lists 1"},
		{"too small", base("0", "9000", "9100", []string{"9101"}, []string{"9001"}),
			"the lists make a cluster of 2 nodes; it takes 3"},
		{"id too large", base("3", "9000", "9100", two, twoKV),
			"--node-id 3 is out of range: the lists make a cluster of 3 nodes, ids 0..2"},
		{"id negative", base("-1", "9000", "9100", two, twoKV),
			"--node-id -1 is out of range"},
		{"missing id", []string{"--kv-port", "9000", "--repl-port", "9100", "--secondary-repl-ports", "9101", "9102", "--other-kv-ports", "9001", "9002"},
			"cluster mode needs --node-id"},
		{"missing lists", []string{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100"},
			"cluster mode needs --secondary-repl-ports, --other-kv-ports"},
		{"list without values", []string{"--node-id", "0", "--other-kv-ports", "--kv-port", "9000"},
			"--other-kv-ports needs the other nodes' ports"},
		{"own repl port in the list", base("0", "9000", "9100", []string{"9100", "9102"}, twoKV),
			"127.0.0.1:9100 is both this node's --repl-port and node 1's replication port (in --secondary-repl-ports): the lists name the other nodes only"},
		{"own kv port in the list", base("1", "9001", "9101", []string{"9100", "9102"}, []string{"9001", "9002"}),
			"127.0.0.1:9001 is both this node's --kv-port and node 0's client port (in --other-kv-ports): the lists name the other nodes only"},
		{"repl port is a kv port", base("0", "9000", "9000", two, twoKV),
			"127.0.0.1:9000 is both this node's --kv-port and this node's --repl-port"},
		{"peer repl port is a peer kv port", base("0", "9000", "9100", []string{"9101", "9001"}, twoKV),
			"127.0.0.1:9001 is both node 1's client port (in --other-kv-ports) and node 2's replication port (in --secondary-repl-ports): every node needs its own"},
		{"duplicate peer ports", base("0", "9000", "9100", []string{"9101", "9101"}, twoKV),
			"127.0.0.1:9101 is both node 1's replication port (in --secondary-repl-ports) and node 2's replication port"},
		{"bad entry", base("0", "9000", "9100", []string{"9101", "x"}, twoKV),
			`--secondary-repl-ports, entry 2 (node 2): "x" is not a port in 1..65535`},
		{"port out of range", base("0", "9000", "9100", []string{"9101", "70000"}, twoKV),
			`"70000" is not a port in 1..65535`},
		{"kv port 0", base("0", "0", "9100", two, twoKV),
			"--kv-port must be in 1..65535 in cluster mode"},
		{"port and kv-port disagree", append(base("0", "9000", "9100", two, twoKV), "--port", "9005"),
			"--port 9005 and --kv-port 9000 disagree"},
		{"bad cluster id", append(base("0", "9000", "9100", two, twoKV), "--cluster-id", "xyz"),
			`--cluster-id must be a non-zero id in hex`},
		{"zero cluster id", append(base("0", "9000", "9100", two, twoKV), "--cluster-id", "0"),
			`--cluster-id must be a non-zero id in hex`},
		{"single mode with cluster flags", append(base("0", "9000", "9100", two, twoKV), "--mode", "single"),
			"--mode single does not take the cluster flags"},
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

// A cluster node's request limit is 4 MiB unless --max-request-bytes says
// otherwise; a single node's and a mesh node's stay 16 MiB. The host's
// limit is the node's.
func TestClusterRequestLimitDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{seedLine(0), clusterRequestBytesDefault},
		{append(seedLine(0), "--max-request-bytes", "20000000"), 20_000_000},
		{[]string{"--port", "0"}, core.DefaultLimits().RequestBytesMax},
	} {
		o, err := parseFlags(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if o.single.Limits.RequestBytesMax != tc.want || o.hostCfg.RequestBytesMax != tc.want {
			t.Errorf("%v: request limit %d (host %d), want %d", tc.args, o.single.Limits.RequestBytesMax, o.hostCfg.RequestBytesMax, tc.want)
		}
	}
}

// A node bound to a wildcard address names itself by it in the cluster id,
// and its peers name it by the address they dial: their ids differ, and
// they refused each other's connections for good, each logging "wrong
// cluster id" (found by review). It is refused at start when the lists
// name other machines; on one machine, where every node names the others
// by the same wildcard, and with --cluster-id, it is taken, and the nodes
// agree. (parseFlags, not run: a node that is not refused serves.)
func TestWildcardHostMakesOneCluster(t *testing.T) {
	for _, tc := range []struct {
		host  string
		peers []string
		want  string
	}{
		{"0.0.0.0", []string{"10.0.0.2:9101", "10.0.0.3:9102", "10.0.0.2:9001", "10.0.0.3:9002"},
			"--host 0.0.0.0 listens on every address, but it is also this node's name in the cluster id"},
		{"::", []string{"[fd00::2]:9101", "[fd00::3]:9102", "[fd00::2]:9001", "[fd00::3]:9002"},
			"--host :: listens on every address"},
	} {
		args := []string{"--host", tc.host, "--node-id", "0", "--kv-port", "9000", "--repl-port", "9100",
			"--secondary-repl-ports", tc.peers[0], tc.peers[1], "--other-kv-ports", tc.peers[2], tc.peers[3]}
		if _, err := parseFlags(args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--host %s, peers on other machines: %v; want %q", tc.host, err, tc.want)
		}
	}
	var ids []uint64
	for id := range 3 {
		o, err := parseFlags(append(seedLine(id), "--host", "0.0.0.0"), io.Discard)
		if err != nil {
			t.Fatalf("node %d on one machine: %v", id, err)
		}
		ids = append(ids, o.cluster.clusterID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("three nodes on one machine, --host 0.0.0.0: cluster ids %x, want one", ids)
	}
	o, err := parseFlags([]string{"--host", "0.0.0.0", "--node-id", "0", "--kv-port", "9000", "--repl-port", "9100",
		"--secondary-repl-ports", "10.0.0.2:9101", "10.0.0.3:9102", "--other-kv-ports", "10.0.0.2:9001", "10.0.0.3:9002",
		"--cluster-id", "00000000000000ab"}, io.Discard)
	if err != nil || o.cluster.clusterID != 0xab {
		t.Errorf("--host 0.0.0.0 with --cluster-id: %v, %+v", err, o)
	}
}

// --rejoin changes nothing since every node on an empty directory rejoins
// by itself, and is accepted so that old command lines start; the node
// says so, where an operator who gave it to a directory restored from a
// copy would otherwise believe it made the node safe.
func TestRejoinFlagSaysItIsNoLongerNeeded(t *testing.T) {
	for _, extra := range [][]string{nil, {"--rejoin"}} {
		o, err := parseFlags(append(seedLine(0), extra...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		if _, err := newClusterNode(o, func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }); err != nil {
			t.Fatal(err)
		}
		said := slices.ContainsFunc(lines, func(l string) bool {
			return strings.HasPrefix(l, "--rejoin is no longer needed and changes nothing") && strings.Contains(l, "never start one on an older copy")
		})
		if said != (extra != nil) {
			t.Errorf("flags %v: said it is no longer needed %v; lines %q", extra, said, lines)
		}
	}
}
