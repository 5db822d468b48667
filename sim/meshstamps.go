package sim

import (
	"fmt"

	"dkv/checks"
	"dkv/core"
	"dkv/mesh"
)

// checkMeshStampsUnique holds the mesh to its promise that two writes never
// share a stamp unless they are one write (mesh.Stamp): a write's stamp
// names it, in last writer wins and in quorum acknowledgements alike. Two
// acknowledged writes of one stamp and one key leave the replicas keeping
// whichever came first and dropping the other, acknowledged, write; the
// durability check cannot see it, since the final item's stamp is that of
// the newest acknowledged write, and it compares the value with the first
// write of that stamp only. A clock that gave two writes of one turn the
// same reading (an HLC that restarts its logical counter when calendar
// time has not moved, the mutant now-same-wall-resets) went uncaught
// through 2,000 mesh seeds before this check.
func (s *Sim) checkMeshStampsUnique() []checks.Finding {
	first := map[mesh.Stamp]*meshOp{}
	for i := range s.mesh.ops {
		op := &s.mesh.ops[i]
		if op.kind == checks.KindGet {
			continue // a read's stamp is the item's it found
		}
		prev, ok := first[op.stamp]
		if !ok {
			first[op.stamp] = op
			continue
		}
		return []checks.Finding{{Check: "stamps", Msg: fmt.Sprintf(
			"two writes were acknowledged with stamp %s: %s of %v by node %d (attempt %d, client %d) and %s of %v by node %d (attempt %d, client %d)",
			op.stamp, prev.kind, prev.keys, prev.node, prev.attempt, prev.client, op.kind, op.keys, op.node, op.attempt, op.client)}}
	}
	return nil
}

// checkQuorumHeld is called as a mesh node acknowledges a write that asked
// for a quorum of q: by then q nodes hold it durably (the node itself, and
// peers that acknowledged only once it was durable on them), so each holds
// the key at the write's stamp or above, in memory as on disk. A node that
// is down, or gone, is counted as holding it (it may have acknowledged and
// crashed since: its disk has it); so is one that lacks the key, if a
// delete of the key was ever sent (a newer tombstone may have been
// collected). The durability check cannot see a quorum answered short: a
// write on one node survives the simulated faults, which lose no node's
// data for good during the chaos; so a node that waited for one peer
// acknowledgement too few (the mutant quorum-one-short) passed every
// check before this one, through 2,000 seeds.
func (s *Sim) checkQuorumHeld(node int, req *core.Request, resp *core.Response) {
	if req.Quorum < 2 || !resp.OK || resp.Stamp == "" {
		return
	}
	var key string
	switch req.Op {
	case core.OpSet, core.OpDelete:
		key = req.Key
	case core.OpBulkSet:
		if len(req.Items) == 0 {
			return
		}
		key = req.Items[0].Key
	case core.OpBulkDelete:
		if len(req.Keys) == 0 {
			return
		}
		key = req.Keys[0]
	default:
		return
	}
	stamp, err := mesh.ParseStamp(resp.Stamp)
	if err != nil {
		return // the client's check names it
	}
	views := make([]quorumView, 0, len(s.hosts))
	for _, h := range s.hosts {
		v := quorumView{id: h.id}
		n, ok := h.node.(*mesh.Node)
		if h.gone != "" || !h.up || !ok {
			v.down = true
		} else {
			v.item, v.found = n.Get(key)
		}
		views = append(views, v)
	}
	held, lack := quorumHolders(stamp, s.mesh.deleted[key], views)
	if held < int(req.Quorum) {
		s.fail("quorum", fmt.Sprintf("node %d acknowledged a %s of key %s (stamp %s) with quorum %d, but only %d node(s) hold it: nodes %v lack it",
			node, req.Op, key, stamp, req.Quorum, held, lack))
	}
}

// quorumView is what checkQuorumHeld sees of one node: down (or gone), or
// the item it holds for the key, if any.
type quorumView struct {
	id    int
	down  bool
	found bool
	item  mesh.Item
}

// quorumHolders counts the nodes that may hold a write of stamp (see
// checkQuorumHeld; deleted: a delete of the key was sent) and lists the
// others.
func quorumHolders(stamp mesh.Stamp, deleted bool, views []quorumView) (held int, lack []int) {
	for _, v := range views {
		switch {
		case v.down, v.found && !v.item.Stamp.Less(stamp), !v.found && deleted:
			held++
		default:
			lack = append(lack, v.id)
		}
	}
	return held, lack
}
