package election

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"dkv/core"
)

// testRand is core.Rand on a seeded generator.
type testRand struct{ r *rand.Rand }

func (t testRand) Uint64() uint64 { return t.r.Uint64() }

// member is one node of a test cluster: its Raft, and what its disk and its
// state machine hold.
type member struct {
	r       *Raft
	hard    HardState
	snap    *Snapshot // on disk
	snapped []Entry   // snap's entries, decoded once
	log     []Entry   // on disk, after snap
	applied []Entry   // the state machine: every entry applied, from index 1
	up      bool
}

// The test's state machine is the list of entries applied; a snapshot of it
// is that list, in the message codec's entry encoding.
func snapshotData(applied []Entry) []byte {
	return AppendMessage(nil, &Message{Type: MsgApp, Entries: applied})
}

func restoreData(t testing.TB, data []byte) []Entry {
	m, err := DecodeMessage(data)
	if err != nil {
		t.Fatalf("snapshot data: %v", err)
	}
	return m.Entries
}

// diskEntry is the entry at index i on m's disk, if it is there.
func (m *member) diskEntry(i uint64) (Entry, bool) {
	base := uint64(0)
	if m.snap != nil {
		base = m.snap.Index
	}
	if i <= base || i > base+uint64(len(m.log)) {
		return Entry{}, false
	}
	return m.log[i-base-1], true
}

// cluster runs nodes over a network that the test controls, and checks
// Raft's safety properties after every step: one leader per term at most,
// and every node applies the same entry at each index, in order.
type cluster struct {
	t        testing.TB
	rand     *rand.Rand
	cfg      func(id core.NodeID) Config
	members  []*member
	inflight []Message
	cut      [][]bool // cut[a][b]: a's messages to b are lost

	leaders       map[uint64]core.NodeID // term -> the leader seen in it
	committed     map[uint64]Entry       // index -> the entry applied there
	proposals     int
	crashes       int
	compactions   int
	snapshotsSent int

	// Reads: the index each read must reach, the highest index applied
	// anywhere when it was asked (a write acknowledged before the read
	// began must be visible to it), and how reads ended.
	readFloor   map[uint64]uint64
	maxApplied  uint64
	readsServed int
	readsLost   int
	nextRead    uint64
}

func newCluster(t testing.TB, n int, seed uint64) *cluster {
	c := &cluster{
		t:         t,
		rand:      rand.New(rand.NewPCG(seed, 1)),
		leaders:   map[uint64]core.NodeID{},
		committed: map[uint64]Entry{},
		readFloor: map[uint64]uint64{},
	}
	var peers []core.NodeID
	for i := range n {
		peers = append(peers, core.NodeID(i))
	}
	c.cfg = func(id core.NodeID) Config {
		cfg := DefaultConfig(id, peers, testRand{rand.New(rand.NewPCG(seed, uint64(id)+100))})
		cfg.EntriesPerMsgMax = 4
		cfg.InflightEntriesMax = 16
		cfg.UncommittedEntriesMax = 64
		return cfg
	}
	c.cut = make([][]bool, n)
	for i := range n {
		c.cut[i] = make([]bool, n)
		c.members = append(c.members, &member{hard: HardState{Vote: None}})
		c.restart(i)
	}
	return c
}

func (c *cluster) restart(i int) {
	m := c.members[i]
	cfg := c.cfg(core.NodeID(i))
	cfg.HardState, cfg.Snapshot, cfg.Entries = m.hard, m.snap, slices.Clone(m.log)
	r, err := New(cfg)
	if err != nil {
		c.t.Fatalf("restart node %d: %v", i, err)
	}
	m.r, m.applied, m.up = r, nil, true
	if m.snap != nil {
		m.applied = slices.Clone(m.snapped)
	}
}

func (c *cluster) crash(i int) {
	c.members[i].up = false
	c.members[i].r = nil
}

// process does what a host does with a node's Ready: persist, send, apply,
// advance; and checks the safety properties on the way.
func (c *cluster) process(i int) {
	m := c.members[i]
	for m.up && m.r.HasReady() {
		rd := m.r.Ready()
		if rd.Snapshot != nil {
			if rd.Snapshot.Index <= uint64(len(m.applied)) {
				c.t.Fatalf("node %d got a snapshot at %d, behind what it applied (%d)", i, rd.Snapshot.Index, len(m.applied))
			}
			m.snap, m.snapped, m.log = rd.Snapshot, restoreData(c.t, rd.Snapshot.Data), nil
		}
		if rd.HardStateChanged {
			if rd.HardState.Term < m.hard.Term {
				c.t.Fatalf("node %d: term went back from %d to %d", i, m.hard.Term, rd.HardState.Term)
			}
			m.hard = rd.HardState
		}
		if len(rd.Entries) > 0 {
			base := uint64(0)
			if m.snap != nil {
				base = m.snap.Index
			}
			first := rd.Entries[0].Index
			if first <= base || first > base+uint64(len(m.log))+1 {
				c.t.Fatalf("node %d: entries from %d do not follow its disk (snapshot %d, %d entries)", i, first, base, len(m.log))
			}
			m.log = append(m.log[:first-base-1], rd.Entries...)
		}
		for _, msg := range rd.Messages {
			if msg.Type == MsgSnap {
				c.snapshotsSent++
			}
			if msg.From != core.NodeID(i) {
				c.t.Fatalf("node %d sent a message from %d", i, msg.From)
			}
			// Every message crosses the wire encoding.
			dec, err := DecodeMessage(AppendMessage(nil, &msg))
			if err != nil {
				c.t.Fatalf("decode %v: %v", msg, err)
			}
			c.inflight = append(c.inflight, dec)
		}
		if rd.Snapshot != nil {
			// Installing the snapshot: the state machine becomes its.
			m.applied = slices.Clone(m.snapped)
			for _, e := range m.applied {
				c.checkCommitted(i, e)
			}
		}
		for _, e := range rd.Committed {
			if want := uint64(len(m.applied)) + 1; e.Index != want {
				c.t.Fatalf("node %d applied index %d, want %d", i, e.Index, want)
			}
			if d, ok := m.diskEntry(e.Index); !ok || d.Term != e.Term {
				c.t.Fatalf("node %d applied entry %d (term %d) that its disk does not hold", i, e.Index, e.Term)
			}
			c.checkCommitted(i, e)
			m.applied = append(m.applied, e)
		}
		for _, rs := range rd.ReadStates {
			floor, ok := c.readFloor[rs.ID]
			if !ok {
				c.t.Fatalf("node %d answered read %d, which was not asked or was answered before", i, rs.ID)
			}
			delete(c.readFloor, rs.ID)
			if rs.Lost {
				c.readsLost++
				continue
			}
			if rs.Index < floor {
				c.t.Fatalf("node %d confirmed read %d at index %d, below %d, applied before the read was asked: a stale read", i, rs.ID, rs.Index, floor)
			}
			c.readsServed++
		}
		m.r.Advance(rd)
		if m.r.State() == Leader {
			if l, ok := c.leaders[m.r.Term()]; ok && l != core.NodeID(i) {
				c.t.Fatalf("two leaders in term %d: %d and %d", m.r.Term(), l, i)
			}
			c.leaders[m.r.Term()] = core.NodeID(i)
		}
	}
}

// checkCommitted checks that entry e, applied by node i, is what every
// other node applied at its index.
func (c *cluster) checkCommitted(i int, e Entry) {
	if prev, ok := c.committed[e.Index]; ok {
		if prev.Term != e.Term || !bytes.Equal(prev.Data, e.Data) {
			c.t.Fatalf("node %d applied %d=(t%d %q), another node applied (t%d %q)", i, e.Index, e.Term, e.Data, prev.Term, prev.Data)
		}
	} else {
		c.committed[e.Index] = e
	}
	c.maxApplied = max(c.maxApplied, e.Index)
}

// compact has node i snapshot its state machine and compact its log.
func (c *cluster) compact(i int) {
	m := c.members[i]
	n := uint64(len(m.applied))
	if !m.up || n == 0 || (m.snap != nil && n <= m.snap.Index) {
		return
	}
	snap := Snapshot{Index: n, Term: m.applied[n-1].Term, Data: snapshotData(m.applied)}
	if err := m.r.Compact(snap); err != nil {
		c.t.Fatalf("node %d: compact at %d: %v", i, n, err)
	}
	// The snapshot is durable before the log it covers goes.
	d, ok := m.diskEntry(n)
	if !ok || d.Term != snap.Term {
		c.t.Fatalf("node %d compacted at %d, which its disk does not hold", i, n)
	}
	base := uint64(0)
	if m.snap != nil {
		base = m.snap.Index
	}
	m.log = slices.Clone(m.log[n-base:])
	m.snap, m.snapped = &snap, slices.Clone(m.applied)
	c.compactions++
	c.process(i)
}

func (c *cluster) tick(i int) {
	if m := c.members[i]; m.up {
		m.r.Tick()
		c.process(i)
	}
}

// deliver hands message k to its node, unless its link is cut or the node
// is down; dup keeps a copy in flight.
func (c *cluster) deliver(k int, dup bool) {
	msg := c.inflight[k]
	if !dup {
		c.inflight = slices.Delete(c.inflight, k, k+1)
	}
	to := int(msg.To)
	if to < 0 || to >= len(c.members) || c.cut[msg.From][to] || !c.members[to].up {
		return
	}
	c.members[to].r.Step(msg)
	c.process(to)
}

// deliverAll delivers until nothing is in flight. Messages beget messages,
// but a healthy cluster falls quiet between ticks; one that does not is
// stuck in a livelock.
func (c *cluster) deliverAll() {
	for n := 0; len(c.inflight) > 0; n++ {
		if n == 100_000 {
			c.t.Fatalf("messages never stop: %d delivered without a tick, %d still in flight, e.g. %v", n, len(c.inflight), c.inflight[0])
		}
		c.deliver(0, false)
	}
}

func (c *cluster) propose(i int) (uint64, error) {
	m := c.members[i]
	c.proposals++
	idx, err := m.r.Propose(fmt.Appendf(nil, "p%d", c.proposals))
	c.process(i)
	return idx, err
}

// leader is the node that leads in the highest term, if any: a leader cut
// off from the rest may still think it leads in an older one.
// read asks node i for a read index; it reports whether the node took it.
func (c *cluster) read(i int) bool {
	c.nextRead++
	if err := c.members[i].r.ReadIndex(c.nextRead); err != nil {
		return false
	}
	c.readFloor[c.nextRead] = c.maxApplied
	c.process(i)
	return true
}

func (c *cluster) leader() (int, bool) {
	l := -1
	for i, m := range c.members {
		if m.up && m.r.State() == Leader && (l < 0 || m.r.Term() > c.members[l].r.Term()) {
			l = i
		}
	}
	return l, l >= 0
}

// settle ticks and delivers everything until a leader stands.
func (c *cluster) settle(ticksMax int) int {
	c.t.Helper()
	for range ticksMax {
		for i := range c.members {
			c.tick(i)
		}
		c.deliverAll()
		if l, ok := c.leader(); ok {
			// One more round, so followers know it.
			for i := range c.members {
				c.tick(i)
			}
			c.deliverAll()
			if l2, ok := c.leader(); ok && l2 == l {
				return l
			}
		}
	}
	c.t.Fatalf("no leader after %d ticks", ticksMax)
	return -1
}

// rounds ticks every node and then delivers everything, n times.
func (c *cluster) rounds(n int) {
	for range n {
		for i := range c.members {
			c.tick(i)
		}
		c.deliverAll()
	}
}

// electWithout runs rounds in which every node but l ticks, until a leader
// other than l stands; it returns that leader.
func (c *cluster) electWithout(l, roundsMax int) (int, bool) {
	for range roundsMax {
		for i := range c.members {
			if i != l {
				c.tick(i)
			}
		}
		c.deliverAll()
		if n, ok := c.leader(); ok && n != l {
			return n, true
		}
	}
	return -1, false
}

func (c *cluster) isolate(i int, cut bool) {
	for j := range c.members {
		if j != i {
			c.cut[i][j], c.cut[j][i] = cut, cut
		}
	}
}

// entryAt is the entry at index i that node m holds: on its disk's log, or
// in its snapshot.
func (m *member) entryAt(t testing.TB, i uint64) (Entry, bool) {
	if e, ok := m.diskEntry(i); ok {
		return e, true
	}
	if m.snap != nil && i <= m.snap.Index {
		return m.snapped[i-1], true
	}
	return Entry{}, false
}

// lastDiskIndex is the last index on m's disk.
func (m *member) lastDiskIndex() uint64 {
	n := uint64(len(m.log))
	if m.snap != nil {
		n += m.snap.Index
	}
	return n
}

// checkLogMatching: if two disks hold an entry of the same index and term,
// they hold the same entries up to it (§5.3).
func (c *cluster) checkLogMatching() {
	c.t.Helper()
	for a := range c.members {
		for b := a + 1; b < len(c.members); b++ {
			ma, mb := c.members[a], c.members[b]
			for k := min(ma.lastDiskIndex(), mb.lastDiskIndex()); k >= 1; k-- {
				ea, _ := ma.entryAt(c.t, k)
				eb, _ := mb.entryAt(c.t, k)
				if ea.Term != eb.Term {
					continue
				}
				for j := uint64(1); j <= k; j++ {
					ea, _ := ma.entryAt(c.t, j)
					eb, _ := mb.entryAt(c.t, j)
					if ea.Term != eb.Term || !bytes.Equal(ea.Data, eb.Data) {
						c.t.Fatalf("log matching: nodes %d and %d agree at %d but differ at %d", a, b, k, j)
					}
				}
				break
			}
		}
	}
}

func TestElectsALeaderAndCommits(t *testing.T) {
	c := newCluster(t, 3, 1)
	l := c.settle(100)
	for range 10 {
		if _, err := c.propose(l); err != nil {
			t.Fatal(err)
		}
	}
	c.rounds(5)
	// The leader's no-op plus ten proposals, applied everywhere.
	for i, m := range c.members {
		if len(m.applied) != 11 {
			t.Fatalf("node %d applied %d entries, want 11", i, len(m.applied))
		}
	}
	// A follower refuses a proposal and names the leader.
	f := (l + 1) % 3
	_, err := c.members[f].r.Propose([]byte("x"))
	var nl *NotLeaderError
	if !asNotLeader(err, &nl) || nl.Leader != core.NodeID(l) {
		t.Fatalf("proposal to follower %d: %v; want not-leader naming %d", f, err, l)
	}
}

func asNotLeader(err error, nl **NotLeaderError) bool {
	e, ok := err.(*NotLeaderError)
	*nl = e
	return ok
}

// A node cut off from the rest keeps standing in pre-votes that fail, and
// so never raises its term; back in touch, it does not depose the leader.
func TestPreVoteKeepsACutOffNodeFromDisrupting(t *testing.T) {
	c := newCluster(t, 3, 2)
	l := c.settle(100)
	term := c.members[l].r.Term()
	cutOff := (l + 1) % 3
	c.isolate(cutOff, true)
	c.rounds(100)
	if got := c.members[cutOff].r.Term(); got != term {
		t.Fatalf("cut-off node's term went from %d to %d", term, got)
	}
	c.isolate(cutOff, false)
	c.rounds(20)
	if now, ok := c.leader(); !ok || now != l || c.members[l].r.Term() != term {
		t.Fatalf("leader %d (term %d) was deposed: leader now %d, term %d", l, term, now, c.members[now].r.Term())
	}
}

// A leader cut off from the majority steps down within an election
// timeout, and the majority elects another.
func TestCheckQuorumStepsDownACutOffLeader(t *testing.T) {
	c := newCluster(t, 3, 3)
	l := c.settle(100)
	c.isolate(l, true)
	// The leader checks at the end of each election timeout whether it
	// heard from a majority during it: the first check after the cut may
	// still count what came before it.
	cfg := c.cfg(core.NodeID(l))
	for range 2*cfg.ElectionTicks + 1 {
		c.tick(l)
	}
	if s := c.members[l].r.State(); s == Leader {
		t.Fatalf("cut-off leader %d still leads after two election timeouts", l)
	}
	if _, ok := c.electWithout(l, 100); !ok {
		t.Fatal("the majority elected no new leader")
	}
}

// A leader that appended entries it could not replicate loses them to the
// next leader's log once it comes back.
func TestUncommittedEntriesOfALostLeaderAreReplaced(t *testing.T) {
	c := newCluster(t, 3, 4)
	l := c.settle(100)
	c.isolate(l, true)
	for range 3 {
		if _, err := c.propose(l); err != nil {
			t.Fatal(err)
		}
	}
	c.inflight = nil
	n, ok := c.electWithout(l, 100)
	if !ok {
		t.Fatal("no new leader")
	}
	if _, err := c.propose(n); err != nil {
		t.Fatal(err)
	}
	c.isolate(l, false)
	c.rounds(30)
	c.checkLogMatching()
	if old, now := c.members[l].lastDiskIndex(), c.members[n].lastDiskIndex(); old != now {
		t.Fatalf("old leader's log ends at %d, the new leader's at %d", old, now)
	}
}

func TestConfigIsValidated(t *testing.T) {
	r := testRand{rand.New(rand.NewPCG(1, 1))}
	good := DefaultConfig(1, []core.NodeID{0, 1, 2}, r)
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Config){
		"not a peer":      func(c *Config) { c.ID = 5 },
		"peer twice":      func(c *Config) { c.Peers = []core.NodeID{0, 1, 1} },
		"heartbeat":       func(c *Config) { c.HeartbeatTicks = c.ElectionTicks },
		"no rand":         func(c *Config) { c.Rand = nil },
		"commit past log": func(c *Config) { c.HardState.Commit = 3 },
		"gap in log":      func(c *Config) { c.Entries = []Entry{{Term: 1, Index: 2}} },
	} {
		cfg := good
		mutate(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// Random schedules: messages lost, repeated and reordered, links cut and
// healed, nodes crashing (losing what they had not persisted) and coming
// back, proposals at whoever leads. Safety is checked after every step (see
// cluster.process); at the end the network heals, every node comes back,
// and a proposal must commit everywhere (liveness), with every committed
// entry in the leader's log (leader completeness) and the logs matching.
func TestRandomSchedulesAreSafe(t *testing.T) {
	seeds, steps := 500, 5000
	if testing.Short() {
		seeds = 30
	}
	var ran, terms, committed, crashes, served, lost, compactions, snapshotsSent int
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		n := 3 + 2*int(seed%2)
		var c *cluster
		// A subtest per seed, so that a failure names its seed: replay it
		// with -run 'TestRandomSchedulesAreSafe/seed=N$'.
		if !t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { c = runSchedule(t, n, seed, steps) }) {
			t.FailNow()
		}
		if c == nil {
			continue // left out by -run
		}
		ran++
		terms += len(c.leaders)
		committed += len(c.committed)
		crashes += c.crashes
		served += c.readsServed
		lost += c.readsLost
		compactions += c.compactions
		snapshotsSent += c.snapshotsSent
	}
	if ran < seeds {
		return // a replay of some seeds: the totals below are for the whole run
	}
	t.Logf("%d seeds: %d terms with a leader, %d entries committed, %d crashes, %d reads confirmed, %d lost to a change of leader, %d compactions, %d snapshots sent",
		seeds, terms, committed, crashes, served, lost, compactions, snapshotsSent)
	if terms < 3*seeds || committed < 10*seeds || crashes < seeds || served < seeds || lost == 0 || compactions < seeds || snapshotsSent == 0 {
		t.Fatalf("the schedules did too little to test anything")
	}
}

func runSchedule(t *testing.T, n int, seed uint64, steps int) *cluster {
	c := newCluster(t, n, seed)
	r := c.rand
	for range steps {
		switch p := r.IntN(1000); {
		case p < 200:
			c.tick(r.IntN(n))
		case p < 820:
			if len(c.inflight) == 0 {
				continue
			}
			k := r.IntN(len(c.inflight))
			switch q := r.IntN(100); {
			case q < 10:
				c.inflight = slices.Delete(c.inflight, k, k+1) // lost
			case q < 15:
				c.deliver(k, true) // delivered twice
			default:
				c.deliver(k, false)
			}
		case p < 900:
			if l, ok := c.leader(); ok {
				c.propose(l) // may be refused: too many uncommitted
			}
		case p < 940:
			// At any node that thinks it leads, deposed or not.
			if i := r.IntN(n); c.members[i].up {
				c.read(i)
			}
		case p < 945:
			c.compact(r.IntN(n))
		case p < 950:
			if i := r.IntN(n); c.members[i].up {
				c.crash(i)
				c.crashes++
			}
		case p < 975:
			if i := r.IntN(n); !c.members[i].up {
				c.restart(i)
			}
		case p < 995:
			a, b := r.IntN(n), r.IntN(n)
			c.cut[a][b] = !c.cut[a][b]
		default:
			for a := range n {
				clear(c.cut[a])
			}
		}
	}

	for a := range n {
		clear(c.cut[a])
		if !c.members[a].up {
			c.restart(a)
		}
	}
	l := c.settle(500)
	idx, err := c.propose(l)
	for tries := 0; err != nil; tries++ { // too many uncommitted: let them commit first
		if tries == 500 {
			t.Fatalf("seed %d: proposals refused for 500 rounds after healing: %v", seed, err)
		}
		for i := range n {
			c.tick(i)
		}
		c.deliverAll()
		l = c.settle(500)
		idx, err = c.propose(l)
	}
	for range 50 {
		for i := range n {
			c.tick(i)
		}
		c.deliverAll()
	}
	for i, m := range c.members {
		if uint64(len(m.applied)) < idx {
			t.Errorf("seed %d: node %d applied %d entries; the final proposal at %d never reached it", seed, i, len(m.applied), idx)
		}
	}
	l, _ = c.leader()
	for idx, e := range c.committed {
		got, ok := c.members[l].entryAt(t, idx)
		if !ok || got.Term != e.Term || !bytes.Equal(got.Data, e.Data) {
			t.Errorf("seed %d: committed entry %d (t%d) is not in leader %d's log", seed, idx, e.Term, l)
		}
	}
	c.checkLogMatching()
	return c
}

// A leader cut off from the majority cannot confirm a read, even while it
// still thinks it leads and the majority has moved on; when it steps down
// the read is answered Lost.
func TestReadIndexNeedsAMajority(t *testing.T) {
	c := newCluster(t, 3, 5)
	l := c.settle(100)
	if _, err := c.propose(l); err != nil {
		t.Fatal(err)
	}
	c.rounds(3)
	c.isolate(l, true)
	if !c.read(l) {
		t.Fatal("the leader refused a read")
	}
	cfg := c.cfg(core.NodeID(l))
	for range 2*cfg.ElectionTicks + 1 {
		for i := range c.members {
			c.tick(i)
		}
		c.deliverAll()
		if c.readsServed > 0 {
			t.Fatal("a cut-off leader confirmed a read")
		}
	}
	if c.members[l].r.State() == Leader || c.readsLost != 1 {
		t.Fatalf("cut-off leader in state %v, %d reads lost; want it stepped down and the read lost", c.members[l].r.State(), c.readsLost)
	}
}

// Only an answer to an append sent after the read began confirms it: an
// answer to an older one says nothing about who leads now.
func TestReadIndexIgnoresAnswersToOlderAppends(t *testing.T) {
	c := newCluster(t, 3, 6)
	l := c.settle(100)
	c.tick(l) // heartbeats of the round before the read, held back
	older := c.inflight
	c.inflight = nil
	if !c.read(l) {
		t.Fatal("the leader refused a read")
	}
	c.inflight = nil // the read's own round of appends is lost
	c.inflight = older
	c.deliverAll() // the old heartbeats and their answers
	if c.readsServed != 0 {
		t.Fatal("answers to appends sent before the read confirmed it")
	}
	c.tick(l) // a heartbeat of the read's round
	c.deliverAll()
	if c.readsServed != 1 {
		t.Fatalf("%d reads confirmed after a round trip of the read's round; want 1", c.readsServed)
	}
}

func TestReadIndexRefusals(t *testing.T) {
	c := newCluster(t, 3, 7)
	l := c.settle(100)
	f := (l + 1) % 3
	var nl *NotLeaderError
	if err := c.members[f].r.ReadIndex(1); !asNotLeader(err, &nl) || nl.Leader != core.NodeID(l) {
		t.Fatalf("read at a follower: %v; want not-leader naming %d", err, l)
	}
	// A leader fresh from its election, before its first commit, does
	// not know the commit index yet: entry 1 of term 1 was committed, but
	// it cannot tell.
	cfg := c.cfg(0)
	cfg.HardState = HardState{Term: 1, Vote: None, Commit: 1}
	cfg.Entries = []Entry{{Term: 1, Index: 1}, {Term: 1, Index: 2}}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for r.State() == Follower {
		r.Tick()
	}
	r.Step(Message{Type: MsgPreVoteResp, From: 1, To: 0, Term: 2})
	r.Step(Message{Type: MsgVoteResp, From: 1, To: 0, Term: 2})
	if r.State() != Leader {
		t.Fatalf("node is %v after a majority's votes", r.State())
	}
	if err := r.ReadIndex(2); err != ErrReadNotReady {
		t.Fatalf("read at a leader with no commit in its term: %v; want ErrReadNotReady", err)
	}
}

// A follower that was down while the leader compacted its log catches up
// from the leader's snapshot, then from its log.
func TestLaggingFollowerCatchesUpFromASnapshot(t *testing.T) {
	c := newCluster(t, 3, 8)
	l := c.settle(100)
	f := (l + 1) % 3
	c.crash(f)
	for range 20 {
		if _, err := c.propose(l); err != nil {
			t.Fatal(err)
		}
		c.rounds(1)
	}
	sent := c.snapshotsSent
	c.compact(l)
	snapAt := c.members[l].snap.Index
	for range 3 {
		if _, err := c.propose(l); err != nil {
			t.Fatal(err)
		}
	}
	c.restart(f)
	c.rounds(10)
	if c.snapshotsSent == sent {
		t.Fatal("the leader sent no snapshot to the lagging follower")
	}
	m := c.members[f]
	if m.snap == nil || m.snap.Index < snapAt {
		t.Fatalf("follower's snapshot %v, want one at %d or later", m.snap, snapAt)
	}
	if got, want := len(m.applied), len(c.members[l].applied); got != want {
		t.Fatalf("follower applied %d entries, the leader %d", got, want)
	}
	c.checkLogMatching()
}

// A leader does not commit an entry of an older term by counting replicas
// (§5.4.2, Figure 8 of the paper): a majority holding it is not enough,
// because a later leader may still overwrite it. It commits it only with an
// entry of its own term.
func TestOlderTermEntriesCommitOnlyWithOneOfThisTerm(t *testing.T) {
	cfg := DefaultConfig(0, []core.NodeID{0, 1, 2}, testRand{rand.New(rand.NewPCG(1, 1))})
	cfg.EntriesPerMsgMax, cfg.InflightEntriesMax = 1, 1
	cfg.HardState = HardState{Term: 1, Vote: None, Commit: 1}
	cfg.Entries = []Entry{{Term: 1, Index: 1}, {Term: 1, Index: 2}}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	persist := func() {
		for r.HasReady() {
			r.Advance(r.Ready())
		}
	}
	for r.State() == Follower {
		r.Tick()
	}
	r.Step(Message{Type: MsgPreVoteResp, From: 1, To: 0, Term: 2})
	r.Step(Message{Type: MsgVoteResp, From: 1, To: 0, Term: 2})
	persist() // the leader's no-op of term 2 is on its disk: index 3
	if r.State() != Leader || r.Term() != 2 {
		t.Fatalf("node is %v in term %d", r.State(), r.Term())
	}
	// Follower 1 lacks entry 2, then takes it: entries 1 and 2, both of
	// term 1, are now on a majority (the leader and follower 1).
	r.Step(Message{Type: MsgAppResp, From: 1, To: 0, Term: 2, Index: 2, Reject: true, RejectHint: 1})
	r.Step(Message{Type: MsgAppResp, From: 1, To: 0, Term: 2, Index: 2})
	persist()
	if c := r.Committed(); c != 1 {
		t.Fatalf("commit index %d with only term-1 entries on a majority; want 1", c)
	}
	// The no-op of term 2 reaches follower 1: now everything up to it is
	// committed, entry 2 with it.
	r.Step(Message{Type: MsgAppResp, From: 1, To: 0, Term: 2, Index: 3})
	if c := r.Committed(); c != 3 {
		t.Fatalf("commit index %d once the term-2 entry is on a majority; want 3", c)
	}
}
