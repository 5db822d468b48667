// Package mesh is the master-less replication mode: every node takes reads
// and writes, and replicates to every peer.
//
// Each write is stamped by a hybrid logical clock (hlc.go), made durable in
// the node's own log, acknowledged, and then sent to every peer; a replica
// keeps, per key, the item with the highest stamp (last writer wins), and a
// delete leaves a stamped tombstone. What a lost message or a down node
// missed, anti-entropy (antientropy.go) repairs: peers compare digests of
// hashed key buckets and exchange only the items of buckets that differ, a
// bounded amount per round. A tombstone is collected only below a horizon
// that every node is known to have passed with every peer (horizon.go), so a
// deleted key never comes back. A node whose data directory is new holds
// writes until every peer has answered it (join.go), so that its clock,
// lost with the old directory, is first lifted above what its peers refuse.
//
// The node is a pure state machine driven through core.Node, like the
// single node and the cluster node, and reuses their storage parts: the
// replica's state lives in a core.Store (version.go), writes go to a
// core.Log through core.GroupCommit, and core.Snapshotter snapshots it.
package mesh

// assert panics when an invariant that protects data does not hold.
func assert(ok bool, msg string) {
	if !ok {
		panic("dkv/mesh: assertion failed: " + msg)
	}
}
