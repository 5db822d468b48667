package sim

import (
	"strings"
	"testing"

	"dkv/checks"
	"dkv/mesh"
)

// TestMeshStampsUnique: two acknowledged writes never share a stamp; a
// bulk write's keys do, as one write, and a read carries the stamp of the
// write it found.
func TestMeshStampsUnique(t *testing.T) {
	a := mesh.Stamp{Wall: 10, Logical: 0, Node: 1}
	b := mesh.Stamp{Wall: 10, Logical: 1, Node: 1}
	s := &Sim{}
	s.mesh.ops = []meshOp{
		{kind: checks.KindBulkSet, keys: []string{"k1", "k2"}, values: []string{"x", "y"}, stamp: a, attempt: 1},
		{kind: checks.KindGet, keys: []string{"k1"}, values: []string{"x"}, found: true, stamp: a, attempt: 2},
		{kind: checks.KindSet, keys: []string{"k1"}, values: []string{"z"}, stamp: b, attempt: 3},
	}
	if f := s.checkMeshStampsUnique(); len(f) != 0 {
		t.Fatalf("distinct writes' stamps: unexpected finding %v", f)
	}
	s.mesh.ops = append(s.mesh.ops, meshOp{kind: checks.KindDelete, keys: []string{"k2"}, stamp: b, attempt: 4, node: 1})
	f := s.checkMeshStampsUnique()
	if len(f) != 1 || f[0].Check != "stamps" || !strings.Contains(f[0].Msg, "two writes were acknowledged with stamp 10.1.1") {
		t.Fatalf("two writes of one stamp: got %v", f)
	}
}

// TestQuorumHolders: a node holds a quorum write if it holds its key at
// the write's stamp or above; one that is down may (it may have
// acknowledged and crashed), and so may one that lacks the key, where a
// delete of it was sent (a newer tombstone, collected).
func TestQuorumHolders(t *testing.T) {
	st := mesh.Stamp{Wall: 100, Logical: 2, Node: 0}
	older := mesh.Stamp{Wall: 100, Logical: 1, Node: 2}
	newer := mesh.Stamp{Wall: 101, Node: 1}
	views := []quorumView{
		{id: 0, found: true, item: mesh.Item{Key: "k", Stamp: st}},
		{id: 1, found: true, item: mesh.Item{Key: "k", Stamp: newer}},
		{id: 2, found: true, item: mesh.Item{Key: "k", Stamp: older}},
	}
	if held, lack := quorumHolders(st, false, views); held != 2 || len(lack) != 1 || lack[0] != 2 {
		t.Fatalf("held %d, lack %v; want 2, [2]", held, lack)
	}
	views[2] = quorumView{id: 2, down: true}
	if held, _ := quorumHolders(st, false, views); held != 3 {
		t.Fatalf("a node down may hold it: held %d, want 3", held)
	}
	views[1] = quorumView{id: 1}
	if held, lack := quorumHolders(st, false, views); held != 2 || len(lack) != 1 || lack[0] != 1 {
		t.Fatalf("a node without the key, never deleted: held %d, lack %v; want 2, [1]", held, lack)
	}
	if held, _ := quorumHolders(st, true, views); held != 3 {
		t.Fatalf("a node without a deleted key may have collected a newer tombstone: held %d, want 3", held)
	}
}
