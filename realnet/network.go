package realnet

import "dkv/core"

// nullNetwork is the Network of a single node, which has no peers. Sending
// is a bug in the node, but dropping is what Network promises may happen to
// any message, so it is dropped rather than crashing the server.
type nullNetwork struct{}

var _ core.Network = nullNetwork{}

func (nullNetwork) Send(to core.NodeID, msg []byte) {}
