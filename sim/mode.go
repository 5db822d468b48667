package sim

import (
	"fmt"
	"sort"
	"strings"

	"dkv/core"
)

// Mode is a kind of deployment the simulator can run: how many nodes, how
// to make one, and which node a client talks to. The cluster and mesh modes
// plug in here; the world, the faults, the clients and the checkers are the
// same for all.
type Mode struct {
	Name  string
	Nodes int
	// NewNode makes a fresh node (for a first start or a restart) for node
	// id, configured from the seed's mix.
	NewNode func(id int, mix *FaultMix) core.Node
	// Target picks the node a client sends its next request to; leader is
	// the last leader a not_leader answer named to it ("" if none).
	Target func(s *Sim, client int, leader string) int
	// SettlesUnknowns: a request's effect, if any, is settled once the
	// node that took it answers, or dies and restarts — no other node can
	// apply it later. True for a single node; not for a cluster, where a
	// follower may commit a dead leader's entry.
	SettlesUnknowns bool
}

var modes = map[string]Mode{
	"single": {
		Name:  "single",
		Nodes: 1,
		NewNode: func(id int, mix *FaultMix) core.Node {
			cfg := core.DefaultSingleConfig()
			cfg.SegmentBytesMax = mix.SegBytes
			cfg.SnapshotLogBytesMin = mix.SnapBytes
			cfg.BatchBytesMax = mix.BatchMax
			return core.NewSingleNode(cfg)
		},
		Target:          func(*Sim, int, string) int { return 0 },
		SettlesUnknowns: true,
	},
}

// Modes lists the registered modes, sorted.
func Modes() []string {
	var names []string
	for n := range modes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupMode returns the named mode.
func LookupMode(name string) (Mode, error) {
	m, ok := modes[name]
	if !ok {
		return Mode{}, fmt.Errorf("unknown mode %q (have %s)", name, strings.Join(Modes(), ", "))
	}
	return m, nil
}
