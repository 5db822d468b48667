package election_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/election"
	"dkv/sim"
)

// The cluster node is tested mostly by the simulator's cluster modes and
// the real-process tests of cmd/node/clustertest. These tests drive one
// node directly, on the simulator's disk, for what is easiest to see from
// up close: what it refuses to start on.

// stepClock is a Clock whose timers run when the test moves time.
type stepClock struct {
	now    int64
	timers []stepTimer
	// wallShift moves calendar time (Wall) alone, as a clock set wrong.
	wallShift int64
}

type stepTimer struct {
	at      int64
	f       func()
	stopped *bool
}

func (c *stepClock) Now() int64 { return c.now }

// Wall implements core.WallClock: calendar time from 2026-01-01.
func (c *stepClock) Wall() int64 { return 1767225600*int64(time.Second) + c.now + c.wallShift }

func (c *stepClock) AfterFunc(d time.Duration, f func()) core.Timer {
	stopped := new(bool)
	c.timers = append(c.timers, stepTimer{at: c.now + int64(d), f: f, stopped: stopped})
	return stopTimer{stopped}
}

type stopTimer struct{ stopped *bool }

func (t stopTimer) Stop() bool { was := !*t.stopped; *t.stopped = true; return was }

// advance moves time by d and runs the timers that fall due, in order.
func (c *stepClock) advance(d time.Duration) {
	c.now += int64(d)
	for {
		due := -1
		for i, t := range c.timers {
			if t.at <= c.now && (due < 0 || t.at < c.timers[due].at) {
				due = i
			}
		}
		if due < 0 {
			return
		}
		t := c.timers[due]
		c.timers = append(c.timers[:due], c.timers[due+1:]...)
		if !*t.stopped {
			t.f()
		}
	}
}

type pcg struct{ r *rand.Rand }

func (p pcg) Uint64() uint64 { return p.r.Uint64() }

// soloNode is a one-voter cluster: it elects itself and commits alone.
type soloNode struct {
	t     *testing.T
	disk  *sim.Disk
	clock *stepClock
	node  *election.Node
	cfg   election.NodeConfig
}

func newSolo(t *testing.T, disk *sim.Disk, clusterID uint64) (*soloNode, error) {
	return newSoloWith(t, disk, clusterID, nil)
}

// newSoloWith is newSolo with the node's config changed by edit (nil:
// the default).
func newSoloWith(t *testing.T, disk *sim.Disk, clusterID uint64, edit func(*election.NodeConfig)) (*soloNode, error) {
	cfg := election.DefaultNodeConfig(0, []core.NodeID{0})
	cfg.ClusterID = clusterID
	if edit != nil {
		edit(&cfg)
	}
	s := &soloNode{t: t, disk: disk, clock: &stepClock{}, cfg: cfg}
	n, err := election.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.node = n
	err = n.Start(core.Env{ID: 0, Clock: s.clock, Disk: disk, Rand: pcg{rand.New(rand.NewPCG(1, 2))}, Logf: t.Logf})
	if err == nil {
		err = n.Flush()
	}
	return s, err
}

// lead ticks until the node leads and has committed its first entry.
func (s *soloNode) lead() {
	for range 100 {
		s.clock.advance(s.cfg.TickInterval)
		if err := s.node.Flush(); err != nil {
			s.t.Fatal(err)
		}
		if s.node.Raft().State() == election.Leader && s.node.Raft().Committed() > 0 {
			return
		}
	}
	s.t.Fatal("a one-voter cluster did not elect itself")
}

func (s *soloNode) set(key, value string) {
	s.t.Helper()
	if r := s.do(&core.Request{Op: core.OpSet, Key: key, Value: &value}); !r.OK {
		s.t.Fatalf("set %s: %+v", key, r.Error)
	}
}

// do sends one request and flushes until it is answered.
func (s *soloNode) do(req *core.Request) core.Response {
	s.t.Helper()
	var got *core.Response
	s.node.HandleRequest(req, func(r core.Response) { got = &r })
	for range 10 {
		if err := s.node.Flush(); err != nil {
			s.t.Fatal(err)
		}
		if got != nil {
			return *got
		}
	}
	s.t.Fatalf("%s: no answer", req.Op)
	return core.Response{}
}

// A session write refused for its condition is never applied by a copy of
// it that comes later: an attempt the network held back, or a retry. (The
// client was told nothing was written, and may have moved on.) A copy is
// a refusal now, with the key's value, while the condition still fails;
// once the key has changed so that it would hold, the answer says the
// write was refused earlier. Found by review: before the seq of a refused
// write was recorded, a late copy applied.
func TestRefusedSessionWriteIsNeverAppliedLater(t *testing.T) {
	disk := sim.NewDisk(rand.New(rand.NewPCG(3, 4)), sim.DiskFaults{})
	s, err := newSolo(t, disk, 7)
	if err != nil {
		t.Fatal(err)
	}
	s.lead()
	s.set("k", "other")
	attempt := func() *core.Request {
		v := "mine"
		return &core.Request{Op: core.OpSet, Key: "k", Value: &v, IfAbsent: true, ClientID: 1, Seq: 5, Acked: 5}
	}
	code := func(r core.Response) string {
		if r.Error == nil {
			return "ok"
		}
		return r.Error.Code
	}
	if r := s.do(attempt()); code(r) != core.CodeConditionFailed || r.Value == nil || *r.Value != "other" {
		t.Fatalf("first attempt: %s %v, want condition_failed with \"other\"", code(r), r.Value)
	}
	if r := s.do(attempt()); code(r) != core.CodeConditionFailed || r.Value == nil || *r.Value != "other" {
		t.Fatalf("a copy while the condition still fails: %s %v, want condition_failed with \"other\"", code(r), r.Value)
	}
	if r := s.do(&core.Request{Op: core.OpDelete, Key: "k", ClientID: 2, Seq: 1, Acked: 1}); !r.OK {
		t.Fatal(r.Error)
	}
	if r := s.do(attempt()); code(r) != core.CodeConditionRefusedEarlier || r.Value != nil {
		t.Fatalf("a late copy once the condition holds: %s %v, want condition_refused_earlier without a value", code(r), r.Value)
	}
	if g := s.do(&core.Request{Op: core.OpGet, Key: "k"}); g.Value != nil {
		t.Fatalf("k = %q: a write its client was told was refused took effect later", *g.Value)
	}
	// The record survives a restart (the log is replayed) and is dropped
	// once the client acknowledges its answer: its next write, seq 6.
	s.node.Close()
	disk.Crash()
	if s, err = newSolo(t, disk, 7); err != nil {
		t.Fatal(err)
	}
	s.lead()
	if r := s.do(attempt()); code(r) != core.CodeConditionRefusedEarlier {
		t.Fatalf("a late copy after a restart: %s", code(r))
	}
	v := "next"
	if r := s.do(&core.Request{Op: core.OpSet, Key: "k2", Value: &v, ClientID: 1, Seq: 6, Acked: 6}); !r.OK {
		t.Fatal(r.Error)
	}
	if r := s.do(attempt()); code(r) != core.CodeSessionExpired {
		t.Fatalf("a copy below acked: %s, want session_expired (stale)", code(r))
	}
}

// A record damaged in the middle of a cluster node's log is found by its
// checksum at the next start, which is refused naming the file: the node
// never serves from it. (Wiped, it would catch up from the leader by
// snapshot transfer: cmd/node/clustertest.)
func TestClusterNodeRefusesADamagedLog(t *testing.T) {
	disk := sim.NewDisk(rand.New(rand.NewPCG(3, 4)), sim.DiskFaults{})
	s, err := newSolo(t, disk, 7)
	if err != nil {
		t.Fatal(err)
	}
	s.lead()
	for i := range 5 {
		s.set(fmt.Sprint("k", i), fmt.Sprint("v", i))
	}
	s.node.Close()
	disk.Crash()
	if _, err := newSolo(t, disk, 7); err != nil {
		t.Fatalf("a clean restart failed: %v", err)
	}
	disk.Crash()
	disk.Corrupt("wal-00000000000000000001.log", 30) // inside the second entry
	_, err = newSolo(t, disk, 7)
	if !errors.Is(err, core.ErrCorrupt) || !strings.Contains(err.Error(), "wal-00000000000000000001.log") {
		t.Fatalf("start on a damaged log: %v; want ErrCorrupt naming the file", err)
	}
}

// A node refuses another cluster's data directory, and a single node's.
func TestClusterNodeRefusesForeignDirectories(t *testing.T) {
	disk := sim.NewDisk(rand.New(rand.NewPCG(5, 6)), sim.DiskFaults{})
	s, err := newSolo(t, disk, 7)
	if err != nil {
		t.Fatal(err)
	}
	s.lead()
	s.set("a", "1")
	s.node.Close()
	if _, err := newSolo(t, disk, 8); err == nil || !strings.Contains(err.Error(), "belongs to node 0 of cluster") {
		t.Fatalf("start with another cluster id: %v", err)
	}

	single := sim.NewDisk(rand.New(rand.NewPCG(7, 8)), sim.DiskFaults{})
	sn := core.NewSingleNode(core.DefaultSingleConfig())
	if err := sn.Start(core.Env{Clock: &stepClock{}, Disk: single, Rand: pcg{rand.New(rand.NewPCG(1, 1))}}); err != nil {
		t.Fatal(err)
	}
	v := "1"
	sn.HandleRequest(&core.Request{Op: core.OpSet, Key: "a", Value: &v}, func(core.Response) {})
	if err := sn.Flush(); err != nil {
		t.Fatal(err)
	}
	sn.Close()
	if _, err := newSolo(t, single, 7); !errors.Is(err, core.ErrForeignLog) {
		t.Fatalf("start on a single node's directory: %v; want ErrForeignLog", err)
	}
}

// A key set with ttl_ms goes once its deadline passes by the leader's
// clock, through an expiry the leader proposes, and stays gone through a
// restart (the log is replayed); ttl reads what is left.
func TestClusterKeysExpire(t *testing.T) {
	disk := sim.NewDisk(rand.New(rand.NewPCG(3, 4)), sim.DiskFaults{})
	s, err := newSolo(t, disk, 7)
	if err != nil {
		t.Fatal(err)
	}
	s.lead()
	v := "1"
	if r := s.do(&core.Request{Op: core.OpSet, Key: "a", Value: &v, TTLMs: 100, ClientID: 1, Seq: 1}); !r.OK {
		t.Fatal(r.Error)
	}
	s.set("b", "2")
	if r := s.do(&core.Request{Op: core.OpTTL, Key: "a"}); !r.OK || r.TTLMs == nil || *r.TTLMs != 100 {
		t.Fatalf("ttl of a: %+v %v, want 100 ms", r.Error, r.TTLMs)
	}
	s.clock.advance(60 * time.Millisecond)
	if r := s.do(&core.Request{Op: core.OpGet, Key: "a"}); !r.OK {
		t.Fatalf("a before its deadline: %+v", r.Error)
	}
	for range 5 {
		s.clock.advance(s.cfg.TickInterval)
		if err := s.node.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if r := s.do(&core.Request{Op: core.OpGet, Key: "a"}); r.OK {
		t.Fatalf("a after its deadline: %q", *r.Value)
	}
	if r := s.do(&core.Request{Op: core.OpGet, Key: "b"}); !r.OK {
		t.Fatalf("b, which has no deadline: %+v", r.Error)
	}
	s.node.Close()
	disk.Crash()
	if s, err = newSolo(t, disk, 7); err != nil {
		t.Fatal(err)
	}
	s.lead()
	if r := s.do(&core.Request{Op: core.OpGet, Key: "a"}); r.OK {
		t.Fatalf("a after a restart: %q", *r.Value)
	}
}

// expire and persist in a cluster: proposed with the leader's deadline,
// applied only to a key that exists (a refusal, kept by the session, is
// not_found again when retried), and replayed after a restart.
func TestClusterExpireAndPersist(t *testing.T) {
	disk := sim.NewDisk(rand.New(rand.NewPCG(3, 4)), sim.DiskFaults{})
	s, err := newSolo(t, disk, 7)
	if err != nil {
		t.Fatal(err)
	}
	s.lead()
	s.set("a", "1")
	s.set("b", "2")
	if r := s.do(&core.Request{Op: core.OpExpire, Key: "a", TTLMs: 100, ClientID: 1, Seq: 1}); !r.OK {
		t.Fatal(r.Error)
	}
	if r := s.do(&core.Request{Op: core.OpTTL, Key: "a"}); !r.OK || r.TTLMs == nil || *r.TTLMs != 100 {
		t.Fatalf("ttl of a: %+v %v, want 100 ms", r.Error, r.TTLMs)
	}
	missing := &core.Request{Op: core.OpExpire, Key: "nope", TTLMs: 100, ClientID: 1, Seq: 2}
	for range 2 { // the retry meets the session's record of the refusal
		if r := s.do(missing); r.OK || r.Error.Code != core.CodeNotFound {
			t.Fatalf("expire of a missing key: %+v, want not_found", r)
		}
	}
	if r := s.do(&core.Request{Op: core.OpPersist, Key: "nope", ClientID: 1, Seq: 3}); r.OK || r.Error.Code != core.CodeNotFound {
		t.Fatalf("persist of a missing key: %+v, want not_found", r)
	}
	if r := s.do(&core.Request{Op: core.OpExpire, Key: "b", TTLMs: 100, ClientID: 1, Seq: 4}); !r.OK {
		t.Fatal(r.Error)
	}
	s.clock.advance(40 * time.Millisecond)
	r := s.do(&core.Request{Op: core.OpPersist, Key: "b", ClientID: 1, Seq: 5})
	if !r.OK || r.TTLMs == nil || *r.TTLMs != 60 {
		t.Fatalf("persist of b: %+v %v, want ok with 60 ms left", r.Error, r.TTLMs)
	}
	for range 10 {
		s.clock.advance(s.cfg.TickInterval)
		if err := s.node.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if r := s.do(&core.Request{Op: core.OpGet, Key: "a"}); r.OK {
		t.Fatalf("a after its deadline: %q", *r.Value)
	}
	if r := s.do(&core.Request{Op: core.OpGet, Key: "b"}); !r.OK || *r.Value != "2" {
		t.Fatalf("b, whose deadline was taken away: %+v", r)
	}
	s.node.Close()
	disk.Crash()
	if s, err = newSolo(t, disk, 7); err != nil {
		t.Fatal(err)
	}
	s.lead()
	if r := s.do(&core.Request{Op: core.OpTTL, Key: "b"}); !r.OK || r.TTLMs != nil {
		t.Fatalf("b after a restart: %+v %v, want no deadline", r.Error, r.TTLMs)
	}
}

// A leader's expiry names at most core.ExpireBytesMax bytes of key: 1,024
// due keys of 64 KiB made a command over the log's record limit, and the
// leader panicked on its tick, as would every node that led after it
// (found by review). They go, 16 an expiry.
func TestClusterExpiryOfLongKeysFitsACommand(t *testing.T) {
	disk := sim.NewDisk(rand.New(rand.NewPCG(3, 4)), sim.DiskFaults{})
	cfg := election.DefaultNodeConfig(0, []core.NodeID{0})
	cfg.ClusterID = 7
	cfg.Limits.KeyBytesMax = 64 << 10
	s := &soloNode{t: t, disk: disk, clock: &stepClock{}, cfg: cfg}
	n, err := election.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.node = n
	if err := n.Start(core.Env{ID: 0, Clock: s.clock, Disk: disk, Rand: pcg{rand.New(rand.NewPCG(1, 2))}}); err != nil {
		t.Fatal(err)
	}
	s.lead()
	pad := strings.Repeat("k", 64<<10-5)
	v := "v"
	for i := range 1024 {
		if r := s.do(&core.Request{Op: core.OpSet, Key: fmt.Sprintf("%s%05d", pad, i), Value: &v, TTLMs: 10}); !r.OK {
			t.Fatal(r.Error)
		}
	}
	for range 200 {
		s.clock.advance(s.cfg.TickInterval)
		if err := s.node.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if left := s.node.Store().Len(); left != 0 {
		t.Fatalf("%d keys left after their deadline", left)
	}
}

func incrOf(key string, delta int64, client, seq uint64) *core.Request {
	return &core.Request{Op: core.OpIncr, Key: key, Delta: &delta, ClientID: client, Seq: seq}
}

func wantIncrAnswer(t *testing.T, r core.Response, want string) {
	t.Helper()
	switch {
	case strings.HasPrefix(want, "error:"):
		if r.OK || r.Error.Code != strings.TrimPrefix(want, "error:") {
			t.Fatalf("incr answered %+v %v, want %s", r.Error, r.Value, want)
		}
	case !r.OK || r.Value == nil || *r.Value != want:
		t.Fatalf("incr answered %+v %v, want %s", r.Error, r.Value, want)
	}
}

// incr in a cluster: the replicas add the delta as the command applies,
// the key's deadline kept; the retry of an applied incr (its client and
// seq) is answered as the first attempt was, number or refusal, and adds
// nothing; and the answers the session table keeps go with it into
// snapshots, so a retry after the log was compacted is answered so too.
func TestClusterIncr(t *testing.T) {
	disk := sim.NewDisk(rand.New(rand.NewPCG(3, 4)), sim.DiskFaults{})
	small := func(cfg *election.NodeConfig) { cfg.SnapshotLogBytesMin = 512 }
	s, err := newSoloWith(t, disk, 7, small)
	if err != nil {
		t.Fatal(err)
	}
	s.lead()
	wantIncrAnswer(t, s.do(incrOf("n", 5, 1, 1)), "5")
	wantIncrAnswer(t, s.do(incrOf("n", 5, 1, 1)), "5") // a retry: not added again
	wantIncrAnswer(t, s.do(incrOf("n", -7, 1, 2)), "-2")
	wantIncrAnswer(t, s.do(&core.Request{Op: core.OpIncr, Key: "n"}), "-1") // no session, delta 1
	s.set("name", "alice")
	wantIncrAnswer(t, s.do(incrOf("name", 1, 1, 3)), "error:"+core.CodeNotInteger)
	s.set("big", "9223372036854775807")
	wantIncrAnswer(t, s.do(incrOf("big", 1, 1, 4)), "error:"+core.CodeOverflow)
	s.set("name", "1") // the retry is answered as the first attempt was, whatever the key holds now
	wantIncrAnswer(t, s.do(incrOf("name", 1, 1, 3)), "error:"+core.CodeNotInteger)
	wantIncrAnswer(t, s.do(incrOf("big", 1, 1, 4)), "error:"+core.CodeOverflow)
	if r := s.do(&core.Request{Op: core.OpGet, Key: "name"}); !r.OK || *r.Value != "1" {
		t.Fatalf("name after a refused incr's retry: %+v", r)
	}
	// A seq applied as another write is no incr's: the answer says so.
	v := "x"
	if r := s.do(&core.Request{Op: core.OpSet, Key: "other", Value: &v, ClientID: 1, Seq: 5}); !r.OK {
		t.Fatal(r.Error)
	}
	wantIncrAnswer(t, s.do(incrOf("n", 1, 1, 5)), "error:"+core.CodeBadRequest)

	v = "10"
	if r := s.do(&core.Request{Op: core.OpSet, Key: "limited", Value: &v, TTLMs: 100}); !r.OK {
		t.Fatal(r.Error)
	}
	s.clock.advance(30 * time.Millisecond)
	wantIncrAnswer(t, s.do(incrOf("limited", 1, 1, 6)), "11")
	if r := s.do(&core.Request{Op: core.OpTTL, Key: "limited"}); !r.OK || r.TTLMs == nil || *r.TTLMs != 70 {
		t.Fatalf("ttl of limited after an incr: %+v %v, want 70 ms", r.Error, r.TTLMs)
	}

	// Compact the log past the incrs, then restart from the snapshot.
	for i := range 40 {
		s.set(fmt.Sprintf("filler%d", i), strings.Repeat("f", 100))
	}
	first := s.node.Metrics().Status.SnapshotIndex
	if first < 8 {
		t.Fatalf("snapshot at index %d: the log was not compacted past the incrs", first)
	}
	s.node.Close()
	disk.Crash()
	if s, err = newSoloWith(t, disk, 7, small); err != nil {
		t.Fatal(err)
	}
	s.lead()
	wantIncrAnswer(t, s.do(incrOf("n", -7, 1, 2)), "-2")
	wantIncrAnswer(t, s.do(incrOf("big", 1, 1, 4)), "error:"+core.CodeOverflow)
	wantIncrAnswer(t, s.do(incrOf("limited", 1, 1, 6)), "11")
	if r := s.do(&core.Request{Op: core.OpGet, Key: "n"}); !r.OK || *r.Value != "-1" {
		t.Fatalf("n after a restart and retries: %+v", r)
	}
	wantIncrAnswer(t, s.do(incrOf("n", 1, 1, 7)), "0")
}

// An incr whose seq is the lowest of more than the session keeps (a late
// retry behind 512 newer writes) is forgotten as it applies: it is
// answered, and keeps no answer. Keeping one asserted that the seq was
// held, and every replica stopped at that entry, again after a restart
// (found by review).
func TestClusterIncrPastTheSeqBound(t *testing.T) {
	disk := sim.NewDisk(rand.New(rand.NewPCG(3, 4)), sim.DiskFaults{})
	s, err := newSolo(t, disk, 7)
	if err != nil {
		t.Fatal(err)
	}
	s.lead()
	v := "x"
	for seq := uint64(2); seq <= 513; seq++ {
		if r := s.do(&core.Request{Op: core.OpSet, Key: "k", Value: &v, ClientID: 1, Seq: seq, Acked: 1}); !r.OK {
			t.Fatal(r.Error)
		}
	}
	late := incrOf("n", 5, 1, 1)
	late.Acked = 1
	wantIncrAnswer(t, s.do(late), "5")
	if r := s.do(late); r.OK || r.Error.Code != core.CodeSessionExpired {
		t.Fatalf("a retry of the forgotten incr: %+v %v, want session_expired (stale)", r.Error, r.Value)
	}
	s.node.Close()
	disk.Crash()
	if s, err = newSolo(t, disk, 7); err != nil {
		t.Fatal(err)
	}
	s.lead()
	if r := s.do(&core.Request{Op: core.OpGet, Key: "n"}); !r.OK || *r.Value != "5" {
		t.Fatalf("n after a restart: %+v", r)
	}
}
