package main

import (
	"bytes"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"dkv/core"
)

// --removed-nodes keeps the mesh id (the removed node's entry stays in
// --peer-repl-ports) and the node ids, and counts the write quorum among
// the nodes left.
func TestRemovedNodesFlag(t *testing.T) {
	plain, err := parseFlags(meshLine(1), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags(append(meshLine(1), "--removed-nodes", "0", "--write-quorum", "2"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	mc := o.mesh
	if mc.meshID != plain.mesh.meshID || mc.id != 1 || !slices.Equal(mc.removed, []core.NodeID{0}) || mc.writeQuorum != 2 {
		t.Errorf("--removed-nodes 0: mesh %x (want %x), id %d, removed %v, quorum %d", mc.meshID, plain.mesh.meshID, mc.id, mc.removed, mc.writeQuorum)
	}
	if got := mc.peerList(); got != "0=127.0.0.1:9100(removed) 2=127.0.0.1:9102" {
		t.Errorf("peer list %q", got)
	}
	if len(mc.peers()) != 2 {
		t.Errorf("transport peers %v: a removed node stays one, to be told it was removed", mc.peers())
	}
}

func TestBadRemovedNodesExit2(t *testing.T) {
	for _, tc := range []struct {
		more []string
		want string
	}{
		{[]string{"--removed-nodes", "x"}, `--removed-nodes takes node ids (e.g. --removed-nodes 2, or 1,2), not "x"`},
		{[]string{"--removed-nodes", "3"}, "--removed-nodes: node 3 is not in the mesh, whose ids are 0..2"},
		{[]string{"--removed-nodes", "0"}, "--removed-nodes names this node (0)"},
		{[]string{"--removed-nodes", "2,2"}, "--removed-nodes names node 2 twice"},
		{[]string{"--removed-nodes", "1,2"}, "--removed-nodes removes 2 of the mesh's 3 nodes: a mesh keeps 2 at least"},
		{[]string{"--removed-nodes", "2", "--write-quorum", "3"}, "--write-quorum 3 is out of range: 1 (this node's fsync) to 2 (every node of the mesh not in --removed-nodes)"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		var stderr bytes.Buffer
		args := append(meshLine(0), tc.more...)
		args[len(meshLine(0))-1] = dir
		if c := run(args, &stderr); c != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.more, c, stderr.String(), exitUsage, tc.want)
		}
	}
}
