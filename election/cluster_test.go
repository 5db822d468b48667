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
	log     []Entry // on disk
	applied []Entry // applied since the last restart
	up      bool
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

	leaders   map[uint64]core.NodeID // term -> the leader seen in it
	committed map[uint64]Entry       // index -> the entry applied there
	proposals int
	crashes   int

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
	cfg.HardState, cfg.Entries = m.hard, slices.Clone(m.log)
	r, err := New(cfg)
	if err != nil {
		c.t.Fatalf("restart node %d: %v", i, err)
	}
	m.r, m.applied, m.up = r, nil, true
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
		if rd.HardStateChanged {
			if rd.HardState.Term < m.hard.Term {
				c.t.Fatalf("node %d: term went back from %d to %d", i, m.hard.Term, rd.HardState.Term)
			}
			m.hard = rd.HardState
		}
		if len(rd.Entries) > 0 {
			first := rd.Entries[0].Index
			if first > uint64(len(m.log))+1 {
				c.t.Fatalf("node %d: entries from %d leave a gap after %d", i, first, len(m.log))
			}
			m.log = append(m.log[:first-1], rd.Entries...)
		}
		for _, msg := range rd.Messages {
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
		for _, e := range rd.Committed {
			if want := uint64(len(m.applied)) + 1; e.Index != want {
				c.t.Fatalf("node %d applied index %d, want %d", i, e.Index, want)
			}
			if e.Index > uint64(len(m.log)) || m.log[e.Index-1].Term != e.Term {
				c.t.Fatalf("node %d applied entry %d (term %d) that its disk does not hold", i, e.Index, e.Term)
			}
			if prev, ok := c.committed[e.Index]; ok {
				if prev.Term != e.Term || !bytes.Equal(prev.Data, e.Data) {
					c.t.Fatalf("node %d applied %d=(t%d %q), another node applied (t%d %q)", i, e.Index, e.Term, e.Data, prev.Term, prev.Data)
				}
			} else {
				c.committed[e.Index] = e
			}
			m.applied = append(m.applied, e)
			c.maxApplied = max(c.maxApplied, e.Index)
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

func (c *cluster) deliverAll() {
	for len(c.inflight) > 0 {
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

func (c *cluster) isolate(i int, cut bool) {
	for j := range c.members {
		if j != i {
			c.cut[i][j], c.cut[j][i] = cut, cut
		}
	}
}

func (c *cluster) checkLogMatching() {
	c.t.Helper()
	for a := range c.members {
		for b := a + 1; b < len(c.members); b++ {
			la, lb := c.members[a].log, c.members[b].log
			n := min(len(la), len(lb))
			// Find the last index where both have the same term: all before
			// it must be identical.
			for k := n - 1; k >= 0; k-- {
				if la[k].Term == lb[k].Term {
					for j := 0; j <= k; j++ {
						if la[j].Term != lb[j].Term || !bytes.Equal(la[j].Data, lb[j].Data) {
							c.t.Fatalf("log matching: nodes %d and %d agree at %d but differ at %d", a, b, k+1, j+1)
						}
					}
					break
				}
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
	for range 5 {
		for i := range c.members {
			c.tick(i)
		}
		c.deliverAll()
	}
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
	for range 100 {
		for i := range c.members {
			c.tick(i)
		}
		c.deliverAll()
	}
	if got := c.members[cutOff].r.Term(); got != term {
		t.Fatalf("cut-off node's term went from %d to %d", term, got)
	}
	c.isolate(cutOff, false)
	for range 20 {
		for i := range c.members {
			c.tick(i)
		}
		c.deliverAll()
	}
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
	for range 100 {
		for i := range c.members {
			if i != l {
				c.tick(i)
			}
		}
		c.deliverAll()
		if n, ok := c.leader(); ok && n != l {
			return
		}
	}
	t.Fatal("the majority elected no new leader")
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
	for range 100 {
		for i := range c.members {
			if i != l {
				c.tick(i)
			}
		}
		c.deliverAll()
		if n, ok := c.leader(); ok && n != l {
			break
		}
	}
	n, ok := c.leader()
	if !ok || n == l {
		t.Fatal("no new leader")
	}
	if _, err := c.propose(n); err != nil {
		t.Fatal(err)
	}
	c.isolate(l, false)
	for range 30 {
		for i := range c.members {
			c.tick(i)
		}
		c.deliverAll()
	}
	c.checkLogMatching()
	old, now := c.members[l].log, c.members[n].log
	if len(old) != len(now) {
		t.Fatalf("old leader's log has %d entries, the new leader's %d", len(old), len(now))
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
	var terms, committed, crashes, served, lost int
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		n := 3 + 2*int(seed%2)
		c := runSchedule(t, n, seed, steps)
		if t.Failed() {
			t.Fatalf("seed %d (%d nodes) failed", seed, n)
		}
		terms += len(c.leaders)
		committed += len(c.committed)
		crashes += c.crashes
		served += c.readsServed
		lost += c.readsLost
	}
	t.Logf("%d seeds: %d terms with a leader, %d entries committed, %d crashes, %d reads confirmed, %d lost to a change of leader",
		seeds, terms, committed, crashes, served, lost)
	if terms < 3*seeds || committed < 10*seeds || crashes < seeds || served < seeds || lost == 0 {
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
	for err != nil { // too many uncommitted: let them commit first
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
		ll := c.members[l].log
		if idx > uint64(len(ll)) || ll[idx-1].Term != e.Term || !bytes.Equal(ll[idx-1].Data, e.Data) {
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
	for range 3 {
		for i := range c.members {
			c.tick(i)
		}
		c.deliverAll()
	}
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
