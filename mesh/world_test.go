package mesh_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
	"dkv/sim"
)

// wmsg is a message on its way: delivered once the clock reaches at.
type wmsg struct {
	from, to core.NodeID
	b        []byte
	at       int64
}

// world runs mesh nodes on one clock, a millisecond a step: every
// message is delivered after its link's latency (a millisecond unless
// latency says otherwise, or never), tap sees every message sent, a node
// may crash and restart, with its directory or without, and a node's
// calendar time may be skewed. It came with a review's findings, and runs
// the tests that replay them.
type world struct {
	t       *testing.T
	clk     *clock
	nodes   []*mesh.Node
	disks   []*sim.Disk
	envs    []core.Env
	down    map[core.NodeID]bool
	ids     []core.NodeID
	tune    func(*mesh.Config)
	timers  [][]*timer
	skew    []int64
	queue   []wmsg
	latency func(from, to core.NodeID, b []byte) time.Duration // <0: drop
	tap     func(m wmsg)                                       // sees every message sent
}

// nclock is a node's view of the shared clock: its timers die with it.
type nclock struct {
	c    *clock
	mine *[]*timer
	skew *int64
}

func (n nclock) Now() int64  { return n.c.Now() }
func (n nclock) Wall() int64 { return n.c.Wall() + *n.skew }
func (n nclock) AfterFunc(d time.Duration, f func()) core.Timer {
	t := n.c.AfterFunc(d, f).(*timer)
	*n.mine = append(*n.mine, t)
	return t
}

type wsender struct {
	w    *world
	from core.NodeID
}

func (s wsender) Send(to core.NodeID, b []byte) {
	m := wmsg{from: s.from, to: to, b: slices.Clone(b)}
	if s.w.tap != nil {
		s.w.tap(m)
	}
	d := time.Millisecond
	if s.w.latency != nil {
		d = s.w.latency(s.from, to, b)
	}
	if d < 0 {
		return
	}
	m.at = s.w.clk.now + int64(d)
	s.w.queue = append(s.w.queue, m)
}

func newWorld(t *testing.T, n int, tune func(*mesh.Config)) *world {
	w := &world{t: t, clk: &clock{}, down: map[core.NodeID]bool{}}
	var ids []core.NodeID
	for i := 0; i < n; i++ {
		ids = append(ids, core.NodeID(i))
	}
	w.ids, w.tune = ids, tune
	w.timers = make([][]*timer, n)
	w.skew = make([]int64, n)
	for _, id := range ids {
		r := rand.New(rand.NewPCG(uint64(id), 7))
		d := sim.NewDisk(r, sim.DiskFaults{})
		w.disks = append(w.disks, d)
		w.envs = append(w.envs, core.Env{ID: id, Clock: nclock{w.clk, &w.timers[id], &w.skew[id]}, Network: wsender{w, id}, Disk: d, Rand: pcg{r}, Logf: func(string, ...any) {}})
		w.nodes = append(w.nodes, nil)
		w.start(id, ids, tune)
	}
	return w
}

func (w *world) start(id core.NodeID, ids []core.NodeID, tune func(*mesh.Config)) {
	cfg := mesh.DefaultConfig(id, ids)
	cfg.MeshID = 9
	if tune != nil {
		tune(&cfg)
	}
	nd, err := mesh.NewNode(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := nd.Start(w.envs[id]); err != nil {
		w.t.Fatal(err)
	}
	w.nodes[id] = nd
	w.down[id] = false
}

func (w *world) flush() {
	for id, n := range w.nodes {
		if !w.down[core.NodeID(id)] {
			if err := n.Flush(); err != nil {
				w.t.Fatal(err)
			}
		}
	}
}

// step advances the clock 1 ms: timers, then due messages.
func (w *world) step() { w.stepFlushing(w.flush) }

// stepFlushing is step with flush in place of w.flush, which fails the
// test on a node's failed Flush.
func (w *world) stepFlushing(flush func()) {
	w.clk.now += int64(time.Millisecond)
	for _, tm := range slices.Clone(w.clk.timers) {
		if !tm.stopped && tm.at <= w.clk.now {
			tm.stopped = true
			tm.f()
		}
	}
	w.clk.timers = slices.DeleteFunc(w.clk.timers, func(tm *timer) bool { return tm.stopped })
	flush()
	var keep []wmsg
	due := w.queue
	w.queue = nil
	for _, m := range due {
		if m.at > w.clk.now {
			keep = append(keep, m)
			continue
		}
		if !w.down[m.to] {
			w.nodes[m.to].HandleMessage(m.from, m.b)
		}
	}
	w.queue = append(keep, w.queue...)
	flush()
}

func (w *world) run(d time.Duration) {
	for end := w.clk.now + int64(d); w.clk.now < end; {
		w.step()
	}
}

func (w *world) do(id core.NodeID, req *core.Request) core.Response {
	var got *core.Response
	w.nodes[id].HandleRequest(req, func(r core.Response) { got = &r })
	for i := 0; got == nil && i < 5000; i++ {
		w.step()
	}
	if got == nil {
		w.t.Fatalf("no answer to %+v", req)
	}
	return *got
}

func (w *world) set(id core.NodeID, k, v string) mesh.Stamp {
	r := w.do(id, &core.Request{Op: core.OpSet, Key: k, Value: &v})
	if !r.OK {
		w.t.Fatalf("set: %+v", r.Error)
	}
	s, _ := mesh.ParseStamp(r.Stamp)
	return s
}

func (w *world) del(id core.NodeID, k string) mesh.Stamp {
	r := w.do(id, &core.Request{Op: core.OpDelete, Key: k})
	if !r.OK {
		w.t.Fatalf("delete: %+v", r.Error)
	}
	s, _ := mesh.ParseStamp(r.Stamp)
	return s
}

func (w *world) status(id core.NodeID) *core.MeshStatus {
	r := w.do(id, &core.Request{Op: core.OpStatus})
	return r.Status.Mesh
}

func (w *world) held(id core.NodeID, k string) string {
	it, ok := w.nodes[id].Get(k)
	switch {
	case !ok:
		return "absent"
	case it.Tomb:
		return "tomb@" + it.Stamp.String()
	}
	return it.Value + "@" + it.Stamp.String()
}

// restart stops node id (a process crash: its timers die, the disk keeps
// what it wrote) and, with wipe, loses its directory; then starts it again.
func (w *world) restart(id core.NodeID, wipe bool) {
	w.nodes[id].Close()
	for _, t := range w.timers[id] {
		t.stopped = true
	}
	w.timers[id] = nil
	w.disks[id].ProcessCrash()
	if wipe {
		w.disks[id].Wipe()
	}
	w.start(id, w.ids, w.tune)
}
