package sim

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"dkv/checks"
	"dkv/core"
	"dkv/election"
	"dkv/mesh"
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
	// onApply, when not nil, is to be called with every entry a
	// replicated node applies (its Watcher checks them). idx, when not
	// nil, are the node's indexes.
	NewNode func(id int, mix *FaultMix, mutation string, onApply func(index, term, client, seq uint64, outcome string), idx core.Indexes) core.Node
	// Target picks the node a client sends its next request to; leader is
	// the last leader a not_leader answer named to it ("" if none).
	Target func(s *Sim, client int, leader string) int
	// SettlesUnknowns: a request's effect, if any, is settled once the
	// node that took it answers, or dies and restarts — no other node can
	// apply it later. True for a single node; not for a cluster, where a
	// follower may commit a dead leader's entry.
	SettlesUnknowns bool
	// Sessions: clients number their writes (client_id, seq, acked) and
	// retry an attempt whose outcome they do not know with the same
	// number, as ClusterKVClient does; the history then has one op per
	// logical request, from its first attempt's call to its last answer.
	Sessions bool
	// ChaosMax ends the chaos phase after this much virtual time even if
	// the clients have not issued all their requests: a cluster that a
	// seed's faults keep mostly unavailable would otherwise take its
	// clients' timeouts times the whole workload. 0: no bound.
	ChaosMax time.Duration
	// Watch, if set, makes the run's Watcher.
	Watch func() Watcher
	// SettleMax, if set, bounds the virtual time from the faults stopping
	// (network healed, crashes over, nodes restarting) to the last final
	// read: the liveness promise of the mode. 0: only the phases' own
	// deadlines.
	SettleMax time.Duration
	// Mesh: any node takes any request; clients pass their last stamp with
	// each write and sometimes ask for a quorum; the nodes must converge
	// before the quiet phase ends and after the final power cut; the run
	// is judged by checkMesh instead of linearizability.
	Mesh bool
	// Wipes: a scheduled crash may lose the node's disk (in half the seeds
	// without damage to synced data), and the node restarts on an empty
	// one in its place, which it does not know (a cluster node on an empty
	// directory rejoins by itself).
	Wipes bool
	// ClockSkew and ClockStep bound the nodes' calendar clocks: a skew per
	// node, and a step redrawn at every start (see clock).
	ClockSkew, ClockStep time.Duration
}

var modes = map[string]Mode{
	"single": {
		Name:  "single",
		Nodes: 1,
		NewNode: func(id int, mix *FaultMix, mutation string, _ func(uint64, uint64, uint64, uint64, string), idx core.Indexes) core.Node {
			cfg := core.DefaultSingleConfig()
			cfg.Indexes, cfg.IndexBuild = idx, mix.indexBuild()
			if mutation != "" {
				m, err := core.ParseMutation(mutation)
				if err != nil {
					panic(err)
				}
				cfg.Mutation = m
			}
			cfg.SegmentBytesMax = mix.SegBytes
			cfg.SnapshotLogBytesMin = mix.SnapBytes
			cfg.BatchBytesMax = mix.BatchMax
			cfg.Limits.DataBytesMax = mix.DataBytesMax
			cfg.Limits.IndexBytesMax = mix.IndexBytesMax
			return core.NewSingleNode(cfg)
		},
		Target:          func(*Sim, int, string) int { return 0 },
		SettlesUnknowns: true,
	},
	"cluster":  clusterMode("cluster", 3),
	"cluster5": clusterMode("cluster5", 5),
	"mesh":     meshMode(),
}

// clusterID is the simulated cluster's id (any fixed value does).
const clusterID = 0x5eed

func clusterMode(name string, nodes int) Mode {
	peers := make([]core.NodeID, nodes)
	addrs := map[core.NodeID]string{}
	for i := range peers {
		peers[i] = core.NodeID(i)
		addrs[core.NodeID(i)] = NodeAddr(i).String()
	}
	return Mode{
		Name:  name,
		Nodes: nodes,
		Wipes: true,
		NewNode: func(id int, mix *FaultMix, mutation string, onApply func(uint64, uint64, uint64, uint64, string), idx core.Indexes) core.Node {
			cfg := election.DefaultNodeConfig(core.NodeID(id), peers)
			cfg.OnApply = onApply
			cfg.Indexes, cfg.IndexBuild = idx, mix.indexBuild()
			if mutation != "" {
				m, err := election.ParseMutation(mutation)
				if err != nil {
					panic(err)
				}
				cfg.Mutation = m
			}
			cfg.ClientAddrs = addrs
			cfg.ClusterID = clusterID
			cfg.SegmentBytesMax = mix.SegBytes
			cfg.SnapshotLogBytesMin = mix.SnapBytes
			cfg.BatchBytesMax = mix.BatchMax
			cfg.Limits.DataBytesMax = mix.DataBytesMax
			cfg.Limits.IndexBytesMax = mix.IndexBytesMax
			cfg.TickInterval = clusterTick
			if mix.RaftEntriesMax > 0 {
				cfg.EntriesPerMsgMax, cfg.InflightEntriesMax = mix.RaftEntriesMax, mix.RaftInflightMax
			}
			// Small chunks, so that a transfer takes many messages and
			// their loss, reordering and duplication are exercised.
			cfg.SnapChunkBytes = 512
			n, err := election.NewNode(cfg)
			if err != nil {
				panic(err)
			}
			return n
		},
		Target: func(s *Sim, client int, leader string) int {
			var id int
			if _, err := fmt.Sscanf(leader, "n%d", &id); err == nil && id >= 0 && id < nodes {
				return id
			}
			c := s.clientByID(client)
			c.rotor++
			return c.rotor % nodes
		},
		Sessions: true,
		ChaosMax: 20 * time.Second,
		Watch:    newRaftWatch,
		// Once the faults stop, every node restarts within milliseconds,
		// a leader is elected within two election timeouts or so, and
		// every client's next request (8 attempts at most) is served:
		// 1,000 seeds took 568 ms at most. Three seconds leaves room
		// without hiding a cluster that needs tens of seconds.
		SettleMax: 3 * time.Second,
	}
}

// clusterTick is Raft's tick in the simulated cluster: elections time out
// after 50-100 ms of virtual time, which keeps runs short.
const clusterTick = 5 * time.Millisecond

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

// PlantedMutation is a bug of the mutation catalogue and the mode whose
// runs plant it.
type PlantedMutation struct{ Name, Mode string }

// MutationCatalogue lists every planted bug (a realistic one- or two-line
// mistake, set only through a node's config): the storage engine's, the
// single node's and the protocol codec's (core.Mutations) in mode single,
// the Raft node's (election.Mutations) in mode cluster. A new mode adds its
// own here.
func MutationCatalogue() []PlantedMutation {
	var out []PlantedMutation
	for _, m := range core.Mutations() {
		out = append(out, PlantedMutation{Name: m.String(), Mode: "single"})
	}
	for _, m := range election.Mutations() {
		out = append(out, PlantedMutation{Name: m.String(), Mode: "cluster"})
	}
	for _, m := range mesh.Mutations() {
		out = append(out, PlantedMutation{Name: m.String(), Mode: "mesh"})
	}
	return out
}

// The mutation test's budget: each planted bug must be caught within
// MutationSeeds seeds of MutationOps requests each. It was 500 until
// bulk_get and bulk_delete joined the workload (in half the seeds): the
// three rarest bugs moved from seeds 126–316 to 505–716, as a seed's
// catch depends on its exact interleaving, so the budget grew to 800
// rather than the workload being bent to keep the old seeds.
const (
	MutationSeeds = 800
	MutationOps   = DefaultOps
)

// CatchConfig is how CatchMutation hunts.
type CatchConfig struct {
	Seeds int // seeds 1..Seeds; default MutationSeeds
	Ops   int // requests per seed; default MutationOps
	// Want lists the checks a catch must come from; nil: any check.
	Want []string
	// OnSeed, if set, is called after each seed with the mutation planted
	// (for a progress line).
	OnSeed func(seed uint64)
	// Logf, if set, hears of seeds that failed but do not count.
	Logf func(format string, args ...any)
}

// Catch is what CatchMutation found.
type Catch struct {
	PlantedMutation
	Caught bool
	// Seed caught it; seeds run from 1, so it is also the seeds it took.
	Seed uint64
	// Check is the check that caught it (of the first finding that
	// counts), Finding that finding's first line.
	Check, Finding string
	Seeds          int // seeds run with the mutation
}

// CatchMutation runs seeds in order with the mutation planted and stops at
// the first that fails with it, by a check that counts, and passes without
// it: a catch is the mutation's, not a failure the shipped code shares.
func CatchMutation(m PlantedMutation, cc CatchConfig) Catch {
	if cc.Seeds == 0 {
		cc.Seeds = MutationSeeds
	}
	if cc.Ops == 0 {
		cc.Ops = MutationOps
	}
	logf := cc.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c := Catch{PlantedMutation: m}
	for seed := uint64(1); seed <= uint64(cc.Seeds); seed++ {
		r := Run(Config{Seed: seed, Mode: m.Mode, Mutation: m.Name, Ops: cc.Ops, NoReport: true})
		c.Seeds++
		if cc.OnSeed != nil {
			cc.OnSeed(seed)
		}
		if !r.Failed() {
			continue
		}
		var counts *checks.Finding
		for i := range r.Findings {
			if cc.Want == nil || slices.Contains(cc.Want, r.Findings[i].Check) {
				counts = &r.Findings[i]
				break
			}
		}
		if counts == nil {
			logf("seed %d: caught, as %s", seed, findingLine(r.Findings[0]))
			continue
		}
		if healthy := Run(Config{Seed: seed, Mode: m.Mode, Ops: cc.Ops, NoReport: true}); healthy.Failed() {
			logf("seed %d: fails without the mutation too: %s", seed, findingLine(healthy.Findings[0]))
			continue
		}
		c.Caught, c.Seed, c.Check = true, seed, counts.Check
		c.Finding = findingLine(*counts)
		return c
	}
	return c
}

// findingLine is the first line of a finding.
func findingLine(f checks.Finding) string {
	s, _, _ := strings.Cut(f.String(), "\n")
	return s
}

// indexBuild is the nodes' pace of an index rebuild (IndexStep).
func (m *FaultMix) indexBuild() core.IndexBuildConfig {
	if m.IndexStep == 0 {
		return core.IndexBuildConfig{}
	}
	return core.IndexBuildConfig{InlineValuesMax: -1, StepValues: m.IndexStep}
}
