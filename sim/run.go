package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"dkv/checks"
	"dkv/core"
	"dkv/election"
	"dkv/mesh"
)

// Config describes one run. Only Seed is required.
type Config struct {
	Seed uint64
	Mode string // default "single"
	// Ops is the number of logical client requests of the chaos phase
	// (retries come on top); default DefaultOps.
	Ops int
	// Mix overrides the fault mix the seed would draw.
	Mix *FaultMix
	// Without switches off kinds of fault in the mix (see FaultSwitches).
	Without []string
	// Mutation plants a named bug in the node (for a cluster, one of
	// election.Mutations), to show that the simulator catches it.
	Mutation string
	// WrapNode and WrapDisk let tests run a deliberately broken node, to
	// show that the simulator catches it.
	WrapNode func(core.Node) core.Node
	WrapDisk func(core.Disk) core.Disk
	// TraceTail is how many trace entries a failure report shows; default 40.
	TraceTail int
	// ReportDir is where a porcupine report of a violation goes; default
	// os.TempDir()/dkv-sim. NoReport turns reports off.
	ReportDir string
	NoReport  bool
	// CheckTimeout bounds the linearizability check; default 60 s. Running
	// out is reported as inconclusive, never as a pass.
	CheckTimeout time.Duration
	// Indexes overrides the seed's draw of whether nodes run indexes.
	Indexes IndexChoice
}

// DefaultOps is the chaos phase's length when Config.Ops is zero.
const DefaultOps = 1000

// Result is what a run found and what it did.
type Result struct {
	Seed     uint64
	Mode     string
	Mix      FaultMix
	Indexes  bool   // the nodes ran indexes
	Hash     uint64 // of the event trace; equal for every run of one seed
	Findings []checks.Finding
	Tail     []string // the last trace entries
	History  *checks.History
	Lin      checks.LinResult

	Ops, OKs, Fails, Unknowns int // history entries by outcome
	Steps                     int64
	Virtual                   time.Duration
	Crashes, Starts, Turns    int
	NetSent, NetDropped       int64
	Syncs, DiskFaults         int
	SimWall, CheckWall        time.Duration
	// Settle is the virtual time from the faults stopping to the last
	// final read: the run's recovery, which a mode may bound
	// (Mode.SettleMax).
	Settle time.Duration
	// Refusals are the nodes that rightly refused to start from a disk a
	// fault of synced data had damaged: not failures, but the run could
	// not check what those nodes had acknowledged. Counted apart from
	// losses.
	Refusals []string
	// MeshOverwritten counts, in a mesh run, acknowledged writes that a
	// concurrent write with a higher stamp replaced (last writer wins).
	MeshOverwritten int
	// MeshCollected counts the tombstones the nodes' last incarnations
	// collected.
	MeshCollected int
	// MeshJumped: a node's calendar jumped beyond the max offset in this
	// mesh run; MeshOutOfStep, how long, past the grace, a node was out of
	// step with both peers, all up, the network whole: while the
	// clock-offset check allowed it no write.
	MeshJumped    bool
	MeshOutOfStep time.Duration
	// Wiped counts the disks a cluster run lost (Mode.Wipes), and
	// StillRejoining the nodes on an empty disk (wiped, or never done
	// since the run's start) that were still rejoining at the end.
	Wiped, StillRejoining int
	// Replaced counts the cluster nodes whose damaged disk was replaced
	// while the cluster formed (a node refused to start from it before
	// the others were done rejoining, and they would have waited for it
	// for good).
	Replaced int
	// DataBound: the run's nodes bounded their data bytes (FaultMix.
	// DataBytesMax), IndexBound their indexes (FaultMix.IndexBytesMax);
	// StoreFull counts the writes refused for either.
	DataBound, IndexBound bool
	StoreFull             int
	// HandOvers counts the leaders' graceful stops begun, HandedOver
	// those done (the node no longer led, its writes answered) when the
	// process exited.
	HandOvers, HandedOver int

	cfg Config
}

// Failed reports whether the run found anything.
func (r *Result) Failed() bool { return len(r.Findings) > 0 }

// ReplayCommand is the command that reruns seed alone. Options that change
// the run (ops, faults switched off) are part of it.
func ReplayCommand(seed uint64) string {
	return fmt.Sprintf("go test ./sim -run TestSim -seed=%d -v", seed)
}

// Replay is the command that reruns this result's run.
func (r *Result) Replay() string {
	cmd := ReplayCommand(r.Seed)
	if r.cfg.Mode != "single" {
		cmd += " -mode=" + r.cfg.Mode
	}
	if r.cfg.Ops != DefaultOps {
		cmd += fmt.Sprintf(" -ops=%d", r.cfg.Ops)
	}
	if len(r.cfg.Without) > 0 {
		cmd += " -without=" + strings.Join(r.cfg.Without, ",")
	}
	if r.cfg.Indexes != IndexesDrawn {
		cmd += " -indexes=" + r.cfg.Indexes.String()
	}
	return cmd
}

// Summary is one line about the run.
func (r *Result) Summary() string {
	verdict := "ok"
	if len(r.Refusals) > 0 {
		verdict = fmt.Sprintf("ok (%d refused to start from a damaged disk)", len(r.Refusals))
	}
	if r.Failed() {
		verdict = "FAIL"
	}
	mode := r.Mode
	if r.Indexes {
		mode += "+indexes"
	}
	return fmt.Sprintf("seed %d %s: %s, %d ops (%d ok, %d failed, %d unknown), %d crashes, %d turns, %d events, %v virtual, trace %016x, sim %v, check %v",
		r.Seed, mode, verdict, r.Ops, r.OKs, r.Fails, r.Unknowns, r.Crashes, r.Turns, r.Steps,
		r.Virtual.Round(time.Millisecond), r.Hash, r.SimWall.Round(time.Millisecond), r.CheckWall.Round(time.Millisecond))
}

// Report is the failure report: seed, mix, replay command, trace tail and
// findings.
func (r *Result) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "FAIL seed %d (mode %s)\n", r.Seed, r.Mode)
	fmt.Fprintf(&b, "  replay: %s\n", r.Replay())
	fmt.Fprintf(&b, "  faults: %s\n", r.Mix)
	fmt.Fprintf(&b, "  %s\n", r.Summary())
	fmt.Fprintf(&b, "  trace tail (last %d of %d entries):\n", len(r.Tail), r.Steps)
	for _, l := range r.Tail {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	b.WriteString("  findings:\n")
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "    %s\n", strings.ReplaceAll(f.String(), "\n", "\n      "))
	}
	return b.String()
}

// Phases of a run.
const (
	phaseChaos = iota // clients work, faults strike
	phaseQuiet        // faults off, network healed: wait for clients and nodes
	phaseFinal        // every node lost power and restarted: read every key
	phaseDone
)

// Deadlines of the phases after chaos, in virtual time. A correct node
// settles in milliseconds once faults stop; these only bound a broken one.
const (
	quietDeadline = 60 * time.Second
	finalDeadline = 60 * time.Second
	// stepsMax bounds a run's events, against a livelock that keeps virtual
	// time from advancing.
	stepsMax = 50_000_000
)

// Sim is one run in progress. It is used from one goroutine.
type Sim struct {
	cfg       Config
	mode      Mode
	mix       FaultMix
	w         *World
	r         *rand.Rand // world: crash and partition decisions
	wr        *rand.Rand // workload: what clients do
	net       *Network
	hosts     []*host
	clients   []*client
	final     *client
	hist      checks.History
	phase     int
	deadline  int64
	issued    int
	attempts  int64
	statusOps int
	// storeFull counts the writes refused for the data bound (store_full).
	storeFull int
	unknowns  []*attempt // attempts whose client gave up
	// unknownLogicals are session requests whose client gave up.
	unknownLogicals []*logical
	watch           Watcher // nil unless the mode has one
	quietAt         int64   // when the faults stopped
	settle          time.Duration
	// appliedAt is when a node first applied each session write (client,
	// seq), as its Watcher saw: what settles the writes whose clients gave
	// up on them.
	appliedAt map[[2]uint64]int64
	findings  []checks.Finding
	stopped   bool
	// mesh is what a mesh run records for its checker; cr draws the
	// calendar clocks' skews and steps.
	mesh meshState
	cr   *rand.Rand
	// wipes: in a cluster seed that draws them, a scheduled crash may lose
	// the node's disk, one node at a time; the node restarts on an empty
	// one, and rejoins by itself (a cluster node on an empty directory
	// always does). wipeR draws them.
	wipes bool
	wipeR *rand.Rand
	wiped int // disks lost
	// replaced counts the damaged disks replaced while the cluster formed
	// (replaceDisk).
	replaced int
	// handOvers counts the leaders' graceful stops begun (handover.go),
	// handedOver those whose node no longer led, its writes answered,
	// when it exited.
	handOvers, handedOver int
	// indexes: the nodes run indexes, which the index checker compares
	// with their state (indexes.go).
	indexes bool
}

// stream derives an independent random stream of the seed, so that adding
// a draw to one part of the simulator does not reshuffle every other part.
func stream(seed uint64, which uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15*(which+1)))
}

// Streams of a seed.
const (
	streamMix = iota
	streamWorld
	streamNet
	streamWork
	streamClock
	streamWipe
	streamDisk = 100 // + node id
	streamNode = 200 // + node id
)

// Run runs one seed and checks it.
func Run(cfg Config) *Result {
	start := time.Now()
	if cfg.Mode == "" {
		cfg.Mode = "single"
	}
	if cfg.Ops == 0 {
		cfg.Ops = DefaultOps
	}
	if cfg.TraceTail == 0 {
		cfg.TraceTail = 40
	}
	if cfg.CheckTimeout == 0 {
		cfg.CheckTimeout = 60 * time.Second
	}
	res := &Result{Seed: cfg.Seed, Mode: cfg.Mode, cfg: cfg}
	mode, err := LookupMode(cfg.Mode)
	if err != nil {
		res.Findings = append(res.Findings, checks.Finding{Check: "config", Msg: err.Error()})
		return res
	}
	s := &Sim{cfg: cfg, mode: mode, w: NewWorld(cfg.TraceTail)}
	if cfg.Mix != nil {
		s.mix = *cfg.Mix
	} else {
		s.mix = DrawMix(stream(cfg.Seed, streamMix))
	}
	if err := s.mix.Without(cfg.Without); err != nil {
		res.Findings = append(res.Findings, checks.Finding{Check: "config", Msg: err.Error()})
		return res
	}
	if mode.Mesh {
		s.mix.WCond = 0   // a mesh refuses conditional writes
		s.mix.TTLProb = 0 // and keys that expire
		s.mix.WIncr = 0   // and incr
	}
	// A node deletes a key once its calendar clock passes the deadline,
	// which is in whole milliseconds and taken by another node's clock
	// maybe: as early as the clocks' widest disagreement allows.
	s.hist.ExpirySlop = int64(time.Millisecond + 2*(mode.ClockSkew+mode.ClockStep))
	if !mode.Sessions {
		// Held requests, new connections and late acknowledgements are
		// how a session write comes to a node twice in either order;
		// without sessions (a single node, whose clients never resend a
		// write that may have applied; a mesh) they are off, and those
		// seeds run as they did before them.
		s.mix.ClientNet.HoldProb, s.mix.ClientNet.HoldMax, s.mix.Reconnect, s.mix.AckLag = 0, 0, false, 0
	}
	res.Mix = s.mix
	s.indexes = s.drawIndexes()
	res.Indexes = s.indexes
	if s.indexes {
		s.mix.IndexBytesMax = s.drawIndexBound()
		res.Mix.IndexBytesMax = s.mix.IndexBytesMax
	}
	s.r = stream(cfg.Seed, streamWorld)
	s.wr = stream(cfg.Seed, streamWork)
	s.cr = stream(cfg.Seed, streamClock)
	s.wipeR = stream(cfg.Seed, streamWipe)
	// Wipes only where no fault damages synced data: a wiped node and a
	// damaged disk on another are two failures, which a 3-node cluster
	// does not survive.
	d := s.mix.Disk
	s.wipes = mode.Wipes && !s.mix.NoWipes && d.CorruptProb == 0 && d.LatentProb == 0 && d.MisdirectProb == 0 && s.wipeR.Float64() < clusterWipeSeeds
	s.net = NewNetwork(s.w, stream(cfg.Seed, streamNet), s.deliver)
	s.net.Client, s.net.Peer = s.mix.ClientNet, s.mix.PeerNet
	if mode.Watch != nil {
		s.watch = mode.Watch()
	}
	s.setup()
	s.loop()
	res.SimWall = time.Since(start)
	s.check(res)
	res.CheckWall = time.Since(start) - res.SimWall
	s.fill(res)
	return res
}

func (s *Sim) setup() {
	for i := 0; i < s.mode.Nodes; i++ {
		h := &host{s: s, id: i, addr: NodeAddr(i), rand: stream(s.cfg.Seed, streamNode+uint64(i)), rejoin: true}
		h.disk = NewDisk(stream(s.cfg.Seed, streamDisk+uint64(i)), s.mix.Disk)
		h.disk.Observe = func(event, name string, n int64) {
			s.trace(h.addr, "disk-"+event, n, 0, name)
			if event == "write-error" || event == "sync-error" {
				s.crashAfterError(h)
			}
		}
		if s.mix.AsyncSync {
			h.disk.SetAsync(h)
		}
		h.cdisk = h.disk
		if s.cfg.WrapDisk != nil {
			h.cdisk = s.cfg.WrapDisk(h.disk)
		}
		h.clock = &clock{h: h, offset: s.r.Int64N(1 << 40)}
		if s.mix.DriftPPM > 0 {
			h.clock.driftPPM = s.r.Int64N(2*s.mix.DriftPPM+1) - s.mix.DriftPPM
		}
		if skew := int64(s.mode.ClockSkew); skew > 0 {
			h.clock.wallSkew = s.cr.Int64N(2*skew+1) - skew
		}
		if s.mode.Mesh && i == 0 {
			s.mesh.wipe = -1
			if s.cr.Float64() < meshWipeProb {
				s.mesh.wipe = s.cr.IntN(s.mode.Nodes)
			}
		}
		s.hosts = append(s.hosts, h)
	}
	for _, h := range s.hosts {
		h.start()
	}
	for i := 0; i < s.mix.Clients; i++ {
		c := &client{s: s, id: i, addr: ClientAddr(i)}
		s.clients = append(s.clients, c)
		c.think()
	}
	for _, h := range s.hosts {
		s.scheduleCrash(h)
		s.scheduleDiskFull(h)
	}
	s.schedulePartition()
	s.scheduleClockJump() // a mesh's (mesh.go)
	s.scheduleHandOvers() // a cluster's (handover.go)
}

// loop runs events until the run is over.
func (s *Sim) loop() {
	for !s.stopped && s.phase != phaseDone {
		if s.w.Steps >= stepsMax {
			s.fail("liveness", fmt.Sprintf("run did not finish within %d events (phase %d, virtual time %s)", stepsMax, s.phase, checks.FormatTime(s.w.now)))
			return
		}
		if s.phase == phaseQuiet && s.settled() {
			s.beginFinal()
			continue
		}
		if s.phase > phaseChaos && s.w.now > s.deadline ||
			s.phase == phaseQuiet && s.mode.Mesh && s.w.now > s.quietAt+int64(s.mode.SettleMax) {
			s.failDeadline()
			return
		}
		if !s.w.Step() {
			s.failDeadline()
			return
		}
	}
}

func (s *Sim) failDeadline() {
	switch s.phase {
	case phaseQuiet:
		var why []string
		for _, c := range s.clients {
			if !c.idle {
				why = append(why, fmt.Sprintf("client %d still busy", c.id))
			}
		}
		for _, h := range s.hosts {
			if !h.up && h.gone == "" {
				// (A node gone for good, refused to start from a damaged
				// disk, is not waited for: settled passes it by.)
				why = append(why, fmt.Sprintf("node %d down", h.id))
			}
			if h.outstanding > 0 {
				why = append(why, fmt.Sprintf("node %d holds %d requests it never answered", h.id, h.outstanding))
			}
		}
		if n := s.net.InFlight(); n > 0 {
			why = append(why, fmt.Sprintf("%d client messages still on the wire", n))
		}
		if nodes, _ := s.meshNodes(); s.mode.Mesh && len(why) == 0 && len(nodes) >= 2 {
			s.fail("convergence", fmt.Sprintf("the nodes did not converge within %v of the faults stopping: %s", s.mode.SettleMax, describeDiff(meshCompared(nodes[0], s.nodeLost()), meshCompared(nodes[1], s.nodeLost()), 1)))
			return
		}
		deadline := quietDeadline
		if s.mode.Mesh {
			deadline = s.mode.SettleMax
		}
		s.fail("liveness", fmt.Sprintf("no quiet within %v of the faults stopping: %s", deadline, strings.Join(why, "; ")))
	case phaseFinal:
		s.fail("liveness", fmt.Sprintf("the final reads did not complete within %v of faults stopping and every node restarting (%d keys left)", finalDeadline, len(s.final.keys)))
	default:
		s.fail("liveness", "the event queue ran dry during the chaos phase")
	}
}

func (s *Sim) chaos() bool { return s.phase == phaseChaos }

func (s *Sim) chance(p float64) bool { return p > 0 && s.r.Float64() < p }

func (s *Sim) trace(who Addr, kind string, a, b int64, str string) {
	s.w.Trace.Add(s.w.now, who, kind, a, b, str)
}

// fail records a finding that ends the run: the state is no longer one the
// checkers can judge.
func (s *Sim) fail(check, msg string) {
	s.trace(Nobody, "finding", 0, 0, check)
	s.findings = append(s.findings, checks.Finding{Check: check, Msg: msg})
	s.stopped = true
}

func (s *Sim) newNode(id int) core.Node {
	var onApply func(index, term, client, seq uint64, outcome string)
	if w := s.watch; w != nil {
		onApply = func(index, term, client, seq uint64, outcome string) {
			if v := w.Applied(id, index, term, outcome); v != "" {
				s.fail("raft", v)
			}
			if outcome == "applied" && client > 0 {
				s.sessionApplied(client, seq)
			}
		}
	}
	var idx core.Indexes
	if s.indexes {
		idx = newIndexes()
	}
	s.hosts[id].idx = idx
	n := s.mode.NewNode(id, &s.mix, s.cfg.Mutation, onApply, idx)
	if s.cfg.WrapNode != nil {
		n = s.cfg.WrapNode(n)
	}
	return n
}

func (s *Sim) target(c *client) Addr { return NodeAddr(s.mode.Target(s, c.id, c.leader)) }

// deliver routes an arrived message to its endpoint.
func (s *Sim) deliver(from, to Addr, msg any) {
	if to.IsNode() {
		s.hosts[int(to)].receive(from, msg)
		return
	}
	m := msg.(*response)
	m.a.c.receive(m)
}

// exp draws an exponential duration with the given mean, at least one
// quantum: the gaps between independent random events.
func (s *Sim) exp(mean time.Duration) time.Duration {
	d := time.Duration(-math.Log(1-s.r.Float64()) * float64(mean))
	return max(d.Round(latencyQuantum), latencyQuantum)
}

func (s *Sim) restartDelay() time.Duration {
	if !s.chaos() {
		return time.Millisecond
	}
	lo, hi := s.mix.RestartMin, s.mix.RestartMax
	if hi == 0 {
		lo, hi = time.Millisecond, 50*time.Millisecond
	}
	return lo + time.Duration(s.r.Int64N(int64(hi-lo)+1)).Round(latencyQuantum)
}

func (s *Sim) scheduleCrash(h *host) {
	if s.mix.CrashEvery == 0 {
		return
	}
	s.w.After(s.exp(s.mix.CrashEvery), func() {
		if !s.chaos() {
			return
		}
		if h.up {
			if s.wipes && s.canWipe() && s.wipeR.Float64() < clusterWipeCrashes {
				s.wipe(h)
			} else {
				h.crash("scheduled", s.chance(s.mix.PowerLoss))
			}
		}
		s.scheduleCrash(h)
	})
}

// clusterWipeSeeds is the share of cluster seeds (among those without
// damage to synced data) whose crashes may lose a disk, and
// clusterWipeCrashes the share of their scheduled crashes that do.
const (
	clusterWipeSeeds   = 0.5
	clusterWipeCrashes = 0.2
)

// wipe crashes h's machine and loses its disk, as when a disk dies and is
// replaced; the node restarts on the empty one, rejoining.
func (s *Sim) wipe(h *host) {
	s.trace(h.addr, "wipe", 0, 0, "")
	h.crash("disk lost", true)
	h.disk.Wipe()
	h.rejoin, h.lost = true, true
	s.wiped++
	if s.watch != nil {
		s.watch.Wiped(h.id)
	}
}

// seeRejoined clears rejoin and lost for the nodes seen up and done
// rejoining and, at term 0, waiting for their peers (host.waiting).
func (s *Sim) seeRejoined() {
	for _, h := range s.hosts {
		h.seeTerm()
		if (h.rejoin || h.lost) && h.up && h.started && !h.waiting() {
			h.rejoin, h.lost = false, false
		}
	}
}

// canReplace reports whether a cluster node that refused to start from a
// damaged disk has it replaced (replaceDisk): while some other node that
// started on an empty disk has not been seen done rejoining, and none is
// a lost disk's. At the cluster's start, a new cluster elects its first
// leader only once every node has answered at term 0 (election.Raft's
// rejoined), so a node gone for good then would hold the others for good.
// A second lost disk while one rejoins is two failures, which a cluster
// need not survive: that node stays gone (serviceGone counts both). The
// disk that replaced h's own, damaged in its turn, is not another: it was
// h's lost disk, and h stayed gone for good when it was (found by review:
// seed 20380, whose other two nodes waited for it to the end).
//
// And, whatever disks were lost before, while no node has ever led, so
// that nothing was written: a node done forming (election.Raft's settled)
// that restarts at term 0 waits for every peer again, so until a first
// leader the cluster needs them all (found by review: seeds 30174, 30340
// and 30637 of cluster5). Unless h's node was seen past term 0: its lost
// vote was then for itself or for a node whose term went back to 0 with a
// lost disk, and the node, going on as new, may vote again in that term,
// which the watch takes for a second vote (seed 40140: node 1 stood in
// term 1, its disk was replaced, and it voted for node 2 in term 1). Only
// the watch's first leader tells that nothing was written: a node seen
// done rejoining may have voted and lost its disk since (seed 112: two
// disks of three replaced just after node 1's first term).
func (s *Sim) canReplace(h *host) bool {
	if w, ok := s.watch.(*raftWatch); ok && w.Leader() < 0 && !h.stood {
		return true
	}
	s.seeRejoined()
	forming := false
	for _, o := range s.hosts {
		if o == h {
			continue
		}
		if o.lost {
			return false
		}
		forming = forming || o.rejoin && o.gone == ""
	}
	return forming
}

// replaceDisk is what an operator does with a cluster node that refused
// to start from a damaged disk while its cluster is forming (canReplace):
// replaces the disk, and starts the node on the empty one, where it
// rejoins. (Once the cluster has formed, the node stays gone: the others
// serve without it.)
func (s *Sim) replaceDisk(h *host) {
	s.trace(h.addr, "disk-replaced", 0, 0, "")
	h.disk.Wipe()
	h.rejoin, h.lost = true, true
	s.replaced++
	if s.watch != nil {
		s.watch.Wiped(h.id)
	}
	h.scheduleRestart(s.restartDelay())
}

// canWipe: one node on an empty disk at a time. No disk is lost while a
// node that started on an empty one (wiped, or at the run's start) has not
// been seen done rejoining, up or down: a node still rejoining grants no
// vote, and a second lost disk meanwhile is two failures in a cluster
// that tolerates one.
func (s *Sim) canWipe() bool {
	s.seeRejoined()
	for _, h := range s.hosts {
		if h.rejoin {
			return false
		}
	}
	return true
}

// rejoining reports whether h's node says it is still rejoining
// (election.Node.Rejoining); other modes' nodes never are.
func (h *host) rejoining() bool {
	n, ok := h.node.(interface{ Rejoining() bool })
	return ok && n.Rejoining()
}

// waiting reports whether h's node is rejoining, or, at term 0, still
// waits to hear every peer done rejoining before it stands
// (election.Node.Forming): a new cluster elects its first leader only
// then, so until one of its nodes is done so, a node gone for good holds
// the others for good (canReplace).
func (h *host) waiting() bool {
	n, ok := h.node.(interface{ Forming() bool })
	return h.rejoining() || ok && n.Forming()
}

// seeTerm notes whether h's node, up and started, is at a term above 0.
func (h *host) seeTerm() {
	if n, ok := h.node.(interface{ Raft() *election.Raft }); ok && h.up && h.started && n.Raft() != nil && n.Raft().Term() > 0 {
		h.stood = true
	}
}

// crashAfterError kills h's machine soon after a failed write or sync, with
// the mix's CrashAfterError chance: a failing disk and a dying machine go
// together (a power supply browning out, a controller resetting), and the
// steps a node takes right after an I/O error — undoing a batch, stopping —
// are where the bugs that only a crash shows hide.
func (s *Sim) crashAfterError(h *host) {
	if !s.chaos() || !s.chance(s.mix.CrashAfterError) {
		return
	}
	incarnation := h.incarnation
	s.w.After(time.Duration(s.r.Int64N(int64(2*time.Millisecond))).Round(latencyQuantum), func() {
		if h.up && h.incarnation == incarnation && s.chaos() {
			h.crash("after a disk error", true)
		}
	})
}

func (s *Sim) schedulePartition() {
	if s.mix.PartEvery == 0 {
		return
	}
	s.w.After(s.exp(s.mix.PartEvery), func() {
		if !s.chaos() {
			return
		}
		var all, side []Addr
		for _, h := range s.hosts {
			all = append(all, h.addr)
		}
		for _, c := range s.clients {
			all = append(all, c.addr)
		}
		for _, a := range all {
			if s.r.IntN(2) == 0 {
				side = append(side, a)
			}
		}
		if lw, ok := s.watch.(interface{ Leader() int }); ok && s.chance(s.mix.PartLeader) {
			// Cut the leader off from the other nodes only: its clients
			// still reach it, as they would a deposed leader.
			if l := lw.Leader(); l >= 0 {
				side, all = []Addr{NodeAddr(l)}, nil
				for _, h := range s.hosts {
					all = append(all, h.addr)
				}
			}
		}
		if len(side) == 0 || len(side) == len(all) {
			s.schedulePartition()
			return
		}
		oneWay := s.chance(s.mix.PartOneWay)
		s.net.Heal()
		s.net.Partition(side, all, oneWay)
		s.trace(Nobody, "partition", int64(len(side)), b2i(oneWay), fmt.Sprint(side))
		s.w.After(s.exp(s.mix.PartFor), func() {
			if s.chaos() {
				s.net.Heal()
				s.trace(Nobody, "heal", 0, 0, "")
			}
			s.schedulePartition()
		})
	})
}

func (s *Sim) scheduleDiskFull(h *host) {
	if s.mix.DiskFullEvery == 0 {
		return
	}
	s.w.After(s.exp(s.mix.DiskFullEvery), func() {
		if !s.chaos() {
			return
		}
		h.full = true
		h.capacity = h.disk.Used() + s.r.Int64N(4<<10)
		h.disk.SetFaults(s.diskFaults(h))
		s.trace(h.addr, "disk-full", h.capacity, 0, "")
		s.w.After(s.exp(s.mix.DiskFullFor), func() {
			h.full = false
			if s.chaos() {
				h.disk.SetFaults(s.diskFaults(h))
				s.trace(h.addr, "disk-space", 0, 0, "")
			}
			s.scheduleDiskFull(h)
		})
	})
}

// diskFaults is the fault mix h's disk should have now.
func (s *Sim) diskFaults(h *host) DiskFaults {
	if !s.chaos() {
		return DiskFaults{}
	}
	f := s.mix.Disk
	if h.full {
		f.CapacityBytes = h.capacity
	}
	return f
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// endChaos stops every fault once the workload is spent: the network heals
// and turns kind, disks stop failing. Nodes that are down come back by
// their scheduled restarts.
func (s *Sim) endChaos() {
	if s.phase != phaseChaos {
		return
	}
	s.phase = phaseQuiet
	s.quietAt = s.w.now
	s.deadline = s.w.now + int64(quietDeadline)
	q := s.mix.Quiet()
	s.net.Heal()
	s.net.Client, s.net.Peer = q.ClientNet, q.PeerNet
	for _, h := range s.hosts {
		h.disk.SetFaults(s.diskFaults(h))
	}
	s.trace(Nobody, "quiet", 0, 0, "")
}

// settled reports whether the quiet phase is over: clients idle, every
// node up and every request it took answered.
func (s *Sim) settled() bool {
	for _, c := range s.clients {
		if !c.idle {
			return false
		}
	}
	for _, h := range s.hosts {
		if h.gone != "" {
			continue
		}
		if !h.up || h.outstanding > 0 || h.turn.Pending() {
			return false
		}
	}
	// Stragglers on the wire would reach the nodes after the final crash
	// and be judged as part of the final state.
	if s.net.InFlight() != 0 {
		return false
	}
	if s.mode.Mesh {
		if !s.meshConverged() {
			return false
		}
		if s.meshWipe() {
			return false
		}
		s.mesh.convergedAt = s.w.now
	}
	return true
}

// beginFinal cuts the power of every node — every acknowledged write must
// now come back from disk alone — and reads every key once they are up.
func (s *Sim) beginFinal() {
	s.checkExpiries(false)
	s.phase = phaseFinal
	s.deadline = s.w.now + int64(finalDeadline)
	s.trace(Nobody, "final", 0, 0, "")
	for _, h := range s.hosts {
		h.crash("final power loss", true)
	}
	s.final = &client{s: s, id: len(s.clients), addr: ClientAddr(len(s.clients)), final: true}
	if s.serviceGone() {
		// Too few nodes are left to serve: nothing more can be read,
		// and what was acknowledged is judged by the history alone.
		s.w.After(10*time.Millisecond, s.finalDone)
		return
	}
	for k := 0; k < s.mix.Keys; k++ {
		s.final.keys = append(s.final.keys, s.keyName(k))
	}
	s.w.After(10*time.Millisecond, s.final.next)
}

// expiryBound is how long past its deadline a key may still be there once
// every node has been up that long, without faults: a single node looks at
// least every second (and at once at the deadline), a cluster's leader
// proposes the expiry each tick and commits it in a round.
const expiryBound = 3 * time.Second

// checkExpiries fails the run when a node that serves (the single node, a
// cluster's leader) holds a key whose deadline passed expiryBound ago by
// its own clock, every node having been up that long: the linearizability
// model lets a key expire late, and never checks that it does.
//
// After the final reads, a single node is held to more: a key whose
// deadline passed before its last start goes in its first turn (Start
// arms the expiry at once), and the final reads come after that.
func (s *Sim) checkExpiries(final bool) {
	if s.mix.TTLProb == 0 {
		return
	}
	ms := func(wall int64) int64 { return wall / int64(time.Millisecond) }
	if final {
		if h := s.hosts[0]; !s.mode.Sessions && !s.mode.Mesh && h.up {
			st := h.node.(interface{ Store() *core.Store }).Store()
			started := ms(h.clock.Wall() - (s.w.now - h.upAt))
			if at, ok := st.NextDeadline(); ok && at < started {
				s.fail("expiry", fmt.Sprintf("the node still holds, after the final reads, a key whose deadline passed %v before its last start: %d keys with a deadline",
					time.Duration(started-at)*time.Millisecond, st.Expiring()))
			}
		}
		return
	}
	for _, h := range s.hosts {
		if !h.up || s.w.now-h.upAt < int64(expiryBound) {
			return // not long enough to owe anything
		}
	}
	for _, h := range s.hosts {
		st, ok := h.node.(interface{ Store() *core.Store })
		if !ok {
			return
		}
		if m, ok := h.node.(core.MetricsReporter); ok {
			if c := m.Metrics().Status.Cluster; c != nil && c.Role != "leader" {
				continue // a follower applies what its leader proposes
			}
		}
		at, ok := st.Store().NextDeadline()
		if now := ms(h.clock.Wall()); ok && at < now-expiryBound.Milliseconds() {
			s.fail("expiry", fmt.Sprintf("node %d still holds a key whose deadline passed %v ago (every node up for %v at least): %d keys with a deadline",
				h.id, time.Duration(now-at)*time.Millisecond, expiryBound, st.Store().Expiring()))
			return
		}
	}
}

// checkExpiryPrompt holds a single node to expiring a key in the first
// turn that starts after its deadline and takes every event waiting: the
// node arms its timer for the earliest deadline (core's armExpiry), and
// moves it earlier when a sooner one comes, so the timer's event is in
// that turn or an earlier one. drained says the turn took every event
// that was waiting as it began. The margin is the timer's rounding (the
// deadline's millisecond, then one more) and its clock's drift over the
// longest wait (the recheck, a second). A node whose write failed
// retries its expiry a second later, and one just started expires what
// is due in its first turn. checkExpiries, once before the final phase,
// allows 3 s; a timer that kept its later time when a sooner deadline
// came (the mutant expiry-rearm-skipped) held keys past their deadline
// for as long as the TTLs differ (here a few ms to tens of ms; for good,
// up to the recheck), and no check saw it in 1,000 seeds. It is caught
// at seed 23 now, a key 3.5 ms past its deadline.
func (s *Sim) checkExpiryPrompt(h *host, drained bool) string {
	if s.mix.TTLProb == 0 || s.mode.Sessions || s.mode.Mesh {
		return ""
	}
	if fails := h.disk.WriteErrors + h.disk.FullErrors; fails != h.writeFails {
		h.writeFails, h.writeFailAt = fails, s.w.now
	}
	if !drained {
		return ""
	}
	st, ok := h.node.(interface{ Store() *core.Store })
	if !ok {
		return ""
	}
	at, ok := st.Store().NextDeadline()
	if !ok {
		return ""
	}
	const second = int64(time.Second)
	// A slow clock's second lasts up to 1/(1-drift) of one: twice the
	// drift is more than enough.
	margin := 3*int64(time.Millisecond) + 2*second/1_000_000*max(h.clock.driftPPM, -h.clock.driftPPM)
	wall := h.clock.Wall()
	// Calendar time at virtual time t: a single node's calendar clock
	// neither steps nor jumps.
	wallAt := func(t int64) int64 { return wall - (s.w.now - t) }
	due := at*int64(time.Millisecond) + margin
	due = max(due, wallAt(h.upAt)+margin)
	if h.writeFailAt > 0 {
		due = max(due, wallAt(h.writeFailAt)+second+margin)
	}
	if wall > due {
		return fmt.Sprintf("node %d still holds, after a turn that took every waiting event, a key whose deadline passed %v before the turn (up for %v, no failed write for a second before the deadline): %d keys with a deadline",
			h.id, time.Duration(wall-at*int64(time.Millisecond)), time.Duration(s.w.now-h.upAt), st.Store().Expiring())
	}
	return ""
}

func (s *Sim) finalDone() {
	if s.mode.Mesh && !s.serviceGone() && !s.meshConverged() {
		// The final power cut may have taken what anti-entropy had
		// repaired and not yet synced: wait for the nodes to agree again.
		if s.w.now-s.quietAt > int64(s.mode.SettleMax) {
			s.fail("convergence", fmt.Sprintf("the nodes did not converge within %v of the faults stopping (final power cut included)", s.mode.SettleMax))
			return
		}
		s.w.After(5*time.Millisecond, s.finalDone)
		return
	}
	s.mesh.finalAt = s.w.now
	s.checkExpiries(true)
	s.phase = phaseDone
	s.trace(Nobody, "done", 0, 0, "")
	s.settle = time.Duration(s.w.now - s.quietAt)
	if max := s.mode.SettleMax; max > 0 && s.settle > max {
		s.fail("liveness", fmt.Sprintf("the run took %v from the faults stopping to the last final read; this mode promises %v (a leader elected and every client's next request served)", s.settle, max))
	}
}

// nodeGone notes that a node refused to start from a damaged disk. Once too
// few nodes are left to serve, the workload stops: every further request
// would fail.
func (s *Sim) nodeGone() {
	if !s.serviceGone() {
		return
	}
	s.trace(Nobody, "service-gone", 0, 0, "")
	if s.phase == phaseFinal {
		s.finalDone() // nothing more can be read
	}
}

// serviceGone reports whether so many nodes refused to start that the rest
// cannot serve: the single node, or a cluster's majority, the nodes that
// started on an empty disk and are not yet done rejoining counted with
// them (they vote for nobody, and may never: one rejoins only once it has
// heard every other node; seed 3058 of the cluster mode lost a disk at
// its final power cut while a node that crashed hundreds of times since
// the start was still rejoining).
//
// In a mesh, one node gone is enough while another has not joined (on a
// new or wiped disk): a node joins only once every peer has named its
// incarnation, and holds its clients' writes till then, so it never will
// (the operator's way out is --removed-nodes). The client went on sending
// writes that were held and refused in turn, and no quiet came (mesh seed
// 1045: node 0's disk damaged from its first start, the other two new).
func (s *Sim) serviceGone() bool {
	s.seeRejoined()
	gone, rejoining, unjoined := 0, 0, 0
	for _, h := range s.hosts {
		if h.gone != "" {
			gone++
		} else if h.rejoin {
			rejoining++
		} else if n, ok := h.node.(*mesh.Node); ok && h.up && h.started && !n.Joined() {
			// (Up and started: a node between incarnations has not read
			// its saved state, which says whether it joined.)
			unjoined++
		}
	}
	return gone > 0 && (gone+rejoining > (len(s.hosts)-1)/2 || unjoined > 0)
}

// checkDataBytes recomputes an up node's data bytes (core.Store.DataBytes,
// which its bound reads) from what its store holds: a path that changed the
// store without the count would let the bound drift.
func checkDataBytes(h *host) error {
	if !h.up {
		return nil
	}
	switch n := h.node.(type) {
	case *core.SingleNode:
		return n.Store().CheckDataBytes()
	case *election.Node:
		return n.Store().CheckDataBytes()
	case *mesh.Node:
		return n.CheckDataBytes()
	}
	return nil
}

// check runs the checkers on a completed run.
func (s *Sim) check(res *Result) {
	res.Findings = append(res.Findings, s.findings...)
	res.History = &s.hist
	if s.stopped {
		return // the run did not complete: its history is not a whole one
	}
	for _, h := range s.hosts {
		if msg := s.checkIndexes(h, "at the end"); msg != "" {
			res.Findings = append(res.Findings, checks.Finding{Check: "indexes", Msg: msg})
		}
	}
	for _, h := range s.hosts {
		if err := checkDataBytes(h); err != nil {
			res.Findings = append(res.Findings, checks.Finding{Check: "data-bytes", Msg: fmt.Sprintf("node %d at the end: %v", h.id, err)})
		}
	}
	for _, lg := range s.unknownLogicals {
		// An attempt a node took after its client gave up.
		s.hist.Ops[lg.histIdx].Taken = lg.taken()
	}
	if s.mode.Mesh {
		res.Findings = append(res.Findings, s.checkMesh()...)
		res.Findings = append(res.Findings, s.checkMeshStampsUnique()...)
		res.MeshOverwritten = s.mesh.overwritten
		res.MeshJumped, res.MeshOutOfStep = s.mesh.jump.node >= 0, s.mesh.jump.outOfStep()
		if nodes, _ := s.meshNodes(); nodes != nil {
			for _, n := range nodes {
				res.MeshCollected += n.Collected()
			}
		}
		for _, h := range s.hosts {
			res.MeshCollected += h.collected
		}
		return
	}
	if s.mode.Sessions {
		s.settleSessions()
	}
	for _, a := range s.unknowns {
		op := &s.hist.Ops[a.histIdx]
		if a.handled {
			op.Taken = a.takenAt // a node took it after its client gave up
		}
		if !s.mode.SettlesUnknowns {
			continue
		}
		switch {
		case !a.handled:
			op.Settled = checks.SettledNoEffect
		case a.replied && a.answer.OK:
			op.Settled, op.EffectBy = checks.SettledApplied, a.effectBy
		case a.replied && a.answer.Error.Code == core.CodeConditionFailed && op.Cond.Kind != core.CondNone:
			// A refusal whose answer was lost: checked as the client
			// would have, and recorded as the read it is, made by the
			// time the node answered.
			cur, found := "", a.answer.Value != nil
			if found {
				cur = *a.answer.Value
			}
			if op.Cond.Holds(cur, found) {
				s.findings = append(s.findings, checks.Finding{Check: "protocol", Msg: fmt.Sprintf(
					"%s %s (%s, attempt %d) refused with condition_failed, but the value it reports (%q, found %v) meets the condition", a.req.Op, op.Key, op.Cond, a.id, cur, found)})
			}
			op.Kind, op.Cond, op.Outcome, op.Found, op.Value, op.Return = checks.KindGet, core.Condition{}, checks.OK, found, cur, a.effectBy
		case a.replied:
			// The answer never reached the client, so check it here
			// as the client would have.
			if code := a.answer.Error.Code; !retryable(code) && code != core.CodeNotFound {
				s.findings = append(s.findings, checks.Finding{Check: "protocol", Msg: fmt.Sprintf(
					"unexpected answer to %s (attempt %d): %+v", a.req.Op, a.id, a.answer.Error)})
			}
			op.Settled = checks.SettledNoEffect
		case a.effectBy > 0:
			op.Settled, op.EffectBy = checks.SettledMaybe, a.effectBy
		}
	}
	opts := checks.LinOptions{Timeout: s.cfg.CheckTimeout}
	if !s.cfg.NoReport {
		opts.ReportDir = s.cfg.ReportDir
		if opts.ReportDir == "" {
			opts.ReportDir = filepath.Join(os.TempDir(), "dkv-sim")
		}
		opts.ReportName = fmt.Sprintf("seed-%d.html", s.cfg.Seed)
	}
	lin, findings := checks.Verdict(&s.hist, opts)
	res.Lin = lin
	res.Findings = append(res.Findings, findings...)
}

func (s *Sim) fill(res *Result) {
	res.Hash = s.w.Trace.Hash()
	res.Tail = s.w.Trace.Tail()
	res.Ops = len(s.hist.Ops)
	res.OKs, res.Fails, res.Unknowns = s.hist.Count()
	res.Steps = s.w.Steps
	res.Settle = s.settle
	for _, h := range s.hosts {
		if h.gone != "" {
			res.Refusals = append(res.Refusals, h.gone)
		}
	}
	res.Virtual = time.Duration(s.w.now)
	res.Wiped, res.Replaced = s.wiped, s.replaced
	res.DataBound, res.IndexBound, res.StoreFull = s.mix.DataBytesMax > 0, s.mix.IndexBytesMax > 0, s.storeFull
	res.HandOvers, res.HandedOver = s.handOvers, s.handedOver
	for _, h := range s.hosts {
		if h.rejoin && h.up && h.rejoining() {
			res.StillRejoining++
		}
		res.Crashes += h.Crashes
		res.Starts += h.Starts
		res.Turns += h.Turns
		res.Syncs += h.disk.Syncs
		res.DiskFaults += h.disk.SyncErrors + h.disk.WriteErrors + h.disk.Flips + h.disk.Tears + h.disk.CrashPoints +
			h.disk.Corruptions + h.disk.Latents + h.disk.Misdirects + h.disk.DirLost + h.disk.SyncDirErrors
	}
	res.NetSent, res.NetDropped = s.net.Sent, s.net.Dropped+s.net.Cut
}
