package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"time"
)

// FaultMix is one seed's weather and workload. Swarm testing (Groce et al.,
// "Swarm Testing", ISSTA 2012): rather than every run suffering a little of
// every fault, each seed switches whole faults on or off and draws their
// rates, so some seeds are a storm of crashes with a perfect network and
// others a flaky network with no crashes — and faults that mask each other
// (a crash every millisecond hides a slow disk) get seeds of their own.
type FaultMix struct {
	// Workload.
	Clients  int
	Keys     int
	Timeout  time.Duration // client's wait for a reply before it gives up
	Retries  int           // attempts after the first, on a timeout or a retryable error
	ThinkMax time.Duration // pause between a client's ops
	WGet     int           // op weights
	WSet     int
	WDelete  int
	WBulk    int
	WStatus  int
	// WBulkGet and WBulkDel weigh bulk_get and bulk_delete of up to
	// BulkMax keys. They are drawn last and are 0 in half the seeds, so
	// that those seeds' workloads are what they were before these ops.
	WBulkGet int
	WBulkDel int
	// WScan weighs scans of a prefix of the keys, a page of 1 to 4; drawn
	// after them, and 0 in half the seeds, for the same reason.
	WScan int
	// WCond weighs conditional writes (if_absent, if_exists, if_value of
	// a value the client saw last); drawn after WScan, 0 in half the
	// seeds, and in a mesh, which refuses them.
	WCond int
	// ScanViews: half the scans ask for a consistent walk, whose next
	// pages, read from the view the first pinned, a client may ask for
	// instead of its next op (drawn after WCond, in half the seeds).
	ScanViews bool
	BulkMax   int     // items in a bulk_set, at most
	ValuePad  int     // values carry up to this many padding bytes
	SimFail   float64 // chance a write carries debug_simulate_fail
	TurnMax   int     // events a node takes per turn before it flushes
	AsyncSync bool    // files offer core.AsyncFile, as realnet's do: the fsync runs in the background
	// Reconnect: a client that gives up on a request opens a new
	// connection for the next, which does not wait behind the old one's
	// bytes (client.conn); without it, one connection a node for good.
	Reconnect bool
	// AckLag: a session client acknowledges its answers this many writes
	// late (0: at once), so that the cluster keeps their seqs longer.
	AckLag int
	// TTLProb is the chance that a set (a conditional one too) carries a
	// ttl_ms of 1 to TTLMax: the node deletes the key once it passes.
	// Drawn last, in a quarter of the seeds; 0 in a mesh, which refuses
	// it. (In a third, early-write-while-syncing, which one single-node
	// seed in 800 catches, went uncaught within 800: its seed 493 had
	// keys that expire.)
	TTLProb float64
	TTLMax  time.Duration
	// WIncr weighs incrs of a key by -3..5, or now and then by nearly
	// ±2^63 to reach an overflow; with it, half the sets write a counter. Drawn
	// last, in three seeds of ten; 0 in a mesh, which refuses incr.
	WIncr int
	// IndexStep: with indexes, a node rebuilds them (at start, after an
	// install) this many values a step, between its other turns, so that
	// writes meet a rebuild half done (core.AttachedIndexes); 0: whole
	// before the node serves, as a small store is in production. Drawn
	// last, non-zero in three seeds of four.
	IndexStep int
	// RaftEntriesMax and RaftInflightMax: a cluster's appends carry at
	// most this many entries (election's EntriesPerMsgMax), and at most
	// RaftInflightMax go unacknowledged to a follower (InflightEntriesMax);
	// 0: the defaults (256 and 4096), under which one append nearly
	// always carries every entry a follower lacks: a follower then rarely
	// keeps, past the last entry an append vouches for, a deposed
	// leader's entries the append did not reach, nor acknowledges a new
	// leader's older entries without its first one. A follower
	// that took the commit index up to its own last entry rather than
	// the last one the append vouched for went through 1,000 seeds with
	// the defaults uncaught, and is caught at seed 21 with these. Drawn
	// last, in a third of the seeds; only the cluster modes use them.
	RaftEntriesMax, RaftInflightMax int
	// DataBytesMax bounds every node's store (core.Limits.DataBytesMax),
	// small enough that the writes meet it: a refused write (store_full)
	// must apply nowhere, and the count the bound reads must stay true
	// through rollbacks, restarts, snapshots and replication (checked at
	// the end of the run). 0: no bound. Drawn last, in a fifth of the
	// seeds, less those that damage synced data.
	DataBytesMax int64
	// IndexBytesMax bounds every node's search indexes (core.Limits.
	// IndexBytesMax), small enough that the writes of an index seed meet
	// it: a write it refuses (store_full) must apply nowhere. 0: no
	// bound. Drawn in 30% of the index seeds, from a stream of its own
	// (drawIndexBound), so that the other draws stay as they were.
	IndexBytesMax int64
	// NoWipes: a cluster's crashes never lose a disk (Mode.Wipes; the
	// "wipe" switch). Never drawn: only a switch sets it.
	NoWipes   bool
	SegBytes  int64 // node config: SegmentBytesMax
	SnapBytes int64 // node config: SnapshotLogBytesMin
	BatchMax  int   // node config: BatchBytesMax
	// BulkPad pads every bulk_set value with up to this many bytes, so
	// that one BulkSet spans sectors and a tear can split it.
	BulkPad int
	// ReadAfterStart: after a node starts, each client's next requests
	// (this many) are gets, half of the keys of its last write, half of
	// any key: what a torn BulkSet, or a snapshot or log recovered
	// wrongly, would show before later writes hide it.
	ReadAfterStart int

	// Network.
	ClientNet LinkFaults // client↔node: never duplicates or reorders (TCP)
	PeerNet   LinkFaults // node↔node
	// Partitions: every PartEvery on average, a random cut lasting up to
	// PartFor, one-way with PartOneWay.
	PartEvery  time.Duration
	PartFor    time.Duration
	PartOneWay float64
	// PartLeader is the chance that a partition, in a cluster mode, cuts
	// the current leader off from the other nodes (its clients still reach
	// it): the case of a deposed leader that still takes requests.
	PartLeader float64

	// Nodes.
	CrashEvery   time.Duration // mean time between crashes of a node; 0: none
	PowerLoss    float64       // chance a crash loses unsynced data (else the process dies alone)
	MidTurnCrash float64       // chance a turn crashes after a random number of events, before Flush
	// CrashAfterError is the chance that a failed write or sync is
	// followed, within 2 ms, by a power loss.
	CrashAfterError float64
	RestartMin      time.Duration
	RestartMax      time.Duration
	DriftPPM        int64 // each node's clock runs up to this fast or slow

	// Disks.
	Disk          DiskFaults
	DiskFullEvery time.Duration // mean time between disk-full episodes; 0: none
	DiskFullFor   time.Duration
}

// mixDrawer draws values for a FaultMix from one stream.
type mixDrawer struct{ r *rand.Rand }

func (d mixDrawer) on(p float64) bool { return d.r.Float64() < p }

func (d mixDrawer) intIn(lo, hi int) int { return lo + d.r.IntN(hi-lo+1) }

// logUniform draws from [lo, hi] evenly across orders of magnitude, so that
// rare faults and frequent ones are equally likely.
func (d mixDrawer) logUniform(lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + d.r.Float64()*(math.Log(hi)-math.Log(lo)))
}

func (d mixDrawer) dur(lo, hi time.Duration) time.Duration {
	return time.Duration(d.logUniform(float64(lo), float64(hi))).Round(latencyQuantum)
}

// prob is 0 with chance 1-pOn, else log-uniform in [lo, hi].
func (d mixDrawer) prob(pOn, lo, hi float64) float64 {
	if !d.on(pOn) {
		return 0
	}
	return d.logUniform(lo, hi)
}

func (d mixDrawer) pick(xs ...int64) int64 { return xs[d.r.IntN(len(xs))] }

func (d mixDrawer) link(peer bool) LinkFaults {
	f := LinkFaults{LatencyMin: d.dur(latencyQuantum, time.Millisecond)}
	f.LatencyMax = f.LatencyMin + d.dur(latencyQuantum, 5*time.Millisecond)
	if d.on(0.3) {
		f.LatencyMax = f.LatencyMin // a steady network: many same-instant arrivals
	}
	if d.on(0.4) {
		f.SlowProb, f.SlowMax = d.logUniform(0.001, 0.1), d.dur(time.Millisecond, 300*time.Millisecond)
	}
	f.DropProb = d.prob(0.5, 0.001, 0.05)
	if peer {
		f.DupProb = d.prob(0.5, 0.001, 0.1)
		f.ReorderProb = d.prob(0.5, 0.01, 0.5)
	}
	return f
}

// keysMax is the most keys a seed's workload has (FaultMix.Keys).
const keysMax = 8

// DrawMix draws one seed's fault mix.
func DrawMix(r *rand.Rand) FaultMix {
	d := mixDrawer{r}
	m := FaultMix{
		Clients:  d.intIn(1, 8),
		Keys:     d.intIn(1, keysMax),
		Timeout:  d.dur(5*time.Millisecond, 500*time.Millisecond),
		Retries:  d.intIn(0, 3),
		WGet:     d.intIn(1, 10),
		WSet:     d.intIn(1, 10),
		WDelete:  d.intIn(0, 4),
		WBulk:    d.intIn(0, 5),
		WStatus:  d.intIn(0, 1),
		BulkMax:  d.intIn(2, 6),
		TurnMax:  int(d.pick(1, 2, 3, 8, 64, 4096)),
		SegBytes: d.pick(256, 1<<10, 4<<10, 64<<10, 64<<20),
		// Small enough that snapshots happen in every run; the node also
		// waits for the log to outgrow the last snapshot.
		SnapBytes: d.pick(512, 2<<10, 8<<10, 64<<10, 64<<20),
		BatchMax:  int(d.pick(64, 512, 4<<10, 4<<20)),
	}
	if d.on(0.7) {
		m.ThinkMax = d.dur(latencyQuantum, 5*time.Millisecond)
	}
	if d.on(0.2) {
		m.ValuePad = d.intIn(1, 4000)
	}
	m.SimFail = d.prob(0.4, 0.01, 0.3)
	m.ClientNet = d.link(false)
	m.PeerNet = d.link(true)
	if d.on(0.5) {
		m.PartEvery = d.dur(20*time.Millisecond, 2*time.Second)
		m.PartFor = d.dur(time.Millisecond, 500*time.Millisecond)
		m.PartOneWay = d.r.Float64()
	}
	if d.on(0.75) {
		m.CrashEvery = d.dur(10*time.Millisecond, 2*time.Second)
		m.PowerLoss = d.r.Float64()
		m.RestartMin = d.dur(latencyQuantum, 10*time.Millisecond)
		m.RestartMax = m.RestartMin + d.dur(latencyQuantum, 200*time.Millisecond)
	}
	m.MidTurnCrash = d.prob(0.4, 0.001, 0.05)
	if d.on(0.5) {
		m.DriftPPM = int64(d.logUniform(10, 50_000))
	}
	m.Disk = DiskFaults{
		SyncErrorProb:  d.prob(0.4, 0.0005, 0.05),
		WriteErrorProb: d.prob(0.5, 0.002, 0.05),
		TornWriteProb:  d.prob(0.6, 0.1, 1),
		HoleProb:       d.prob(0.5, 0.1, 1),
		ReadFlipProb:   d.prob(0.3, 0.001, 0.05),
		CrashOpProb:    d.prob(0.5, 0.0005, 0.03),
	}
	if d.on(0.5) {
		m.Disk.WriteLatencyMax = d.dur(latencyQuantum, time.Millisecond)
		m.Disk.SyncLatencyMax = d.dur(latencyQuantum, 10*time.Millisecond)
	}
	// Production (realnet) syncs in the background; plain Sync is the
	// fallback path of hosts that do not offer it. Both are simulated.
	m.AsyncSync = d.on(0.75)
	// New draws go last, so that the draws before them — and the mixes of
	// the seeds kept as regressions — stay as they were.

	// A client whose timeout is shorter than an ordinary round trip gives
	// up on nearly everything: its history is mostly unknowns, which tell
	// the checker little and make its search long. Timeouts start above
	// the round trip (slow-tail messages still time out).
	m.Timeout = max(m.Timeout, 2*m.ClientNet.LatencyMax+m.Disk.WriteLatencyMax+m.Disk.SyncLatencyMax+time.Millisecond)
	if d.on(0.3) {
		m.DiskFullEvery = d.dur(50*time.Millisecond, 2*time.Second)
		m.DiskFullFor = d.dur(time.Millisecond, 300*time.Millisecond)
	}
	m.PartLeader = d.prob(0.5, 0.2, 0.8)
	// Faults of synced data. A node may refuse to start after one (the
	// run then ends with a refusal, counted apart from failures), so each
	// is on in a minority of seeds and rare within it, leaving most seeds
	// long histories to check.
	m.Disk.CorruptProb = d.prob(0.15, 0.005, 0.1)
	m.Disk.LatentProb = d.prob(0.15, 0.005, 0.1)
	m.Disk.LatentPersistProb = d.r.Float64()
	m.Disk.MisdirectProb = d.prob(0.15, 0.0005, 0.01)
	// Directory changes since the last SyncDir: before this draw every one
	// was lost at a crash; now each survives on its own in most seeds.
	if d.on(0.7) {
		m.Disk.DirKeepProb = d.r.Float64()
	}
	m.BulkPad = int(d.pick(0, 0, 200, 700))
	m.ReadAfterStart = int(d.pick(0, 1, 3, 8))
	m.Disk.WritebackProb = d.prob(0.6, 0.2, 1)
	m.CrashAfterError = d.prob(0.5, 0.3, 1)
	if d.on(0.5) {
		m.WBulkGet = d.intIn(1, 4)
		m.WBulkDel = d.intIn(1, 3)
	}
	if d.on(0.5) {
		m.WScan = d.intIn(1, 3)
	}
	if d.on(0.5) {
		m.WCond = d.intIn(1, 5)
	}
	m.ScanViews = d.on(0.5)
	// Client requests held far past the client's patience, in most seeds
	// of the modes with sessions (Run turns them off in the others):
	// a retry elsewhere, then the held attempt, are how a session's
	// write can come to a node twice in either order. The odds are set
	// so that such a late copy meets a key changed since, within the
	// window acknowledgements leave open, in about one seed in fifty:
	// what refused-not-kept needs to be caught (at 0.4, 0.5 and 0.7 it
	// came once in 500 seeds after Raft's probing changed the traces).
	if d.on(0.8) {
		m.ClientNet.HoldProb, m.ClientNet.HoldMax = d.logUniform(0.02, 0.2), d.dur(300*time.Millisecond, 2*time.Second)
	}
	if d.on(0.8) {
		m.AckLag = int(d.pick(4, 16, 64, 256))
	}
	m.Reconnect = d.on(0.8)
	if d.on(0.25) {
		m.TTLProb, m.TTLMax = d.logUniform(0.05, 0.5), d.dur(2*time.Millisecond, 300*time.Millisecond).Round(time.Millisecond)
	}
	if d.on(0.3) {
		m.WIncr = d.intIn(1, 4)
	}
	if d.on(0.75) {
		m.IndexStep = d.intIn(1, 3)
	}
	if d.on(1.0 / 3) {
		m.RaftEntriesMax = d.intIn(1, 3)
		m.RaftInflightMax = m.RaftEntriesMax * d.intIn(1, 4)
	}
	if d.on(0.2) {
		bound := int64(d.logUniform(200, 20_000))
		// Not where synced data may be damaged: those seeds are the few
		// that catch a recovery that trusts damaged data, and they need
		// the store full of writes for the damage to land on and the
		// reads after a restart to find it; a small bound refuses most
		// of them (snapshot-checksum-ignored, caught at seed 505 of 800,
		// went unnoticed where its bound of 265 bytes was drawn).
		if m.Disk.CorruptProb == 0 && m.Disk.LatentProb == 0 && m.Disk.MisdirectProb == 0 {
			m.DataBytesMax = bound
		}
	}
	if m.Disk.SyncErrorProb > 0 {
		m.Disk.SyncErrorKeepsPagesEvery = 2 // drawn from nothing: see the field
		// Directory syncs fail in the same seeds, drawn from nothing too;
		// a node syncs its directory at a start, a roll and a snapshot.
		m.Disk.SyncDirErrorEvery = syncDirErrorEvery
	}
	return m
}

// Quiet returns the mix with every fault off and the workload kept: the
// weather of the final phase.
func (m FaultMix) Quiet() FaultMix {
	q := m
	q.ClientNet = LinkFaults{LatencyMin: m.ClientNet.LatencyMin, LatencyMax: m.ClientNet.LatencyMax}
	q.PeerNet = LinkFaults{LatencyMin: m.PeerNet.LatencyMin, LatencyMax: m.PeerNet.LatencyMax}
	q.PartEvery, q.CrashEvery, q.MidTurnCrash, q.DiskFullEvery = 0, 0, 0, 0
	q.Disk = DiskFaults{}
	return q
}

// String lists the mix's non-zero fields on one line, for the failure
// report and `-v` runs.
func (m FaultMix) String() string {
	var parts []string
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			f, name := v.Field(i), prefix+t.Field(i).Name
			if f.Kind() == reflect.Struct {
				walk(name+".", f)
				continue
			}
			if f.IsZero() {
				continue
			}
			switch x := f.Interface().(type) {
			case float64:
				parts = append(parts, fmt.Sprintf("%s=%.3g", name, x))
			default:
				parts = append(parts, fmt.Sprintf("%s=%v", name, x))
			}
		}
	}
	walk("", reflect.ValueOf(m))
	return strings.Join(parts, " ")
}

// faultSwitches turn one kind of fault off in a drawn mix. They let a run
// hold one known bug's trigger still while hunting for others, without
// changing anything else the seed draws.
var faultSwitches = map[string]func(m *FaultMix){
	"crash":         func(m *FaultMix) { m.CrashEvery, m.MidTurnCrash, m.Disk.CrashOpProb, m.CrashAfterError = 0, 0, 0, 0 },
	"process-crash": func(m *FaultMix) { m.PowerLoss = 1 },
	"power-loss":    func(m *FaultMix) { m.PowerLoss = 0 },
	"partition":     func(m *FaultMix) { m.PartEvery = 0 },
	"drop": func(m *FaultMix) {
		m.ClientNet.DropProb, m.PeerNet.DropProb = 0, 0
	},
	"hold":         func(m *FaultMix) { m.ClientNet.HoldProb = 0 },
	"reconnect":    func(m *FaultMix) { m.Reconnect = false },
	"ttl":          func(m *FaultMix) { m.TTLProb = 0 },
	"incr":         func(m *FaultMix) { m.WIncr = 0 },
	"readflip":     func(m *FaultMix) { m.Disk.ReadFlipProb = 0 },
	"syncerror":    func(m *FaultMix) { m.Disk.SyncErrorProb = 0 },
	"syncdirerror": func(m *FaultMix) { m.Disk.SyncDirErrorEvery = 0 },
	"writeerror":   func(m *FaultMix) { m.Disk.WriteErrorProb = 0 },
	"torn":         func(m *FaultMix) { m.Disk.TornWriteProb, m.Disk.HoleProb = 0, 0 },
	"damage": func(m *FaultMix) {
		m.Disk.CorruptProb, m.Disk.LatentProb, m.Disk.MisdirectProb = 0, 0, 0
	},
	"dirloss":   func(m *FaultMix) { m.Disk.DirKeepProb = 0 },
	"writeback": func(m *FaultMix) { m.Disk.WritebackProb = 0 },
	"diskfull":  func(m *FaultMix) { m.DiskFullEvery = 0 },
	"drift":     func(m *FaultMix) { m.DriftPPM = 0 },
	"simfail":   func(m *FaultMix) { m.SimFail = 0 },
	"async":     func(m *FaultMix) { m.AsyncSync = false },
	"wipe":      func(m *FaultMix) { m.NoWipes = true },
}

// FaultSwitches lists the names Without accepts, sorted.
func FaultSwitches() []string {
	var names []string
	for n := range faultSwitches {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Without switches off the named kinds of fault.
func (m *FaultMix) Without(names []string) error {
	for _, n := range names {
		f, ok := faultSwitches[n]
		if !ok {
			return fmt.Errorf("unknown fault %q (have %s)", n, strings.Join(FaultSwitches(), ", "))
		}
		f(m)
	}
	return nil
}

// syncDirErrorEvery: in the seeds whose syncs fail, every this-many-th
// directory sync fails too (DiskFaults.SyncDirErrorEvery).
const syncDirErrorEvery = 5
