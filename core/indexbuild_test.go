package core_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/sim"

	"pgregory.net/rapid"
)

// recordingIndexes holds what the indexes were told, as a map: the
// rebuild's contract is about which calls reach them, and the simulator
// checks the real indexes against the state (sim/indexes.go).
type recordingIndexes struct {
	held            map[string]string
	resets, loadeds int
}

// backlogIndexes are recordingIndexes that say how far behind they are, as
// a host's index worker does.
type backlogIndexes struct {
	*recordingIndexes
	backlog      int
	backlogBytes int64
}

func (b *backlogIndexes) Backlog() (int, int64) { return b.backlog, b.backlogBytes }

func newRecording() *recordingIndexes { return &recordingIndexes{held: map[string]string{}} }

func (r *recordingIndexes) Put(key, value string) { r.held[key] = value }
func (r *recordingIndexes) Remove(key string)     { delete(r.held, key) }
func (r *recordingIndexes) Reset()                { r.held = map[string]string{}; r.resets++ }
func (r *recordingIndexes) Loaded()               { r.loadeds++ }
func (r *recordingIndexes) Search(req *core.Request) core.Response {
	return core.Response{OK: true, Hits: []core.Hit{{Key: fmt.Sprint(len(r.held))}}}
}
func (r *recordingIndexes) Work(int) bool            { return false }
func (r *recordingIndexes) Status() core.IndexStatus { return core.IndexStatus{Docs: len(r.held)} }
func (r *recordingIndexes) Bytes() int64             { return 0 }
func (r *recordingIndexes) Prepare(*core.Request)    {}
func (r *recordingIndexes) Expect(any)               {}
func storeMap(s *core.Store) map[string]string {
	out := map[string]string{}
	s.Ascend("", func(k, v string) bool { out[k] = v; return true })
	return out
}
func tick(c *manualClock)      { c.now += int64(2 * time.Millisecond); c.fire() }
func searchReq() *core.Request { return &core.Request{Op: core.OpSearch, Query: "x"} }
func covered(s *core.Store, a *core.AttachedIndexes) map[string]string {
	out := storeMap(s)
	for k := range out {
		if !a.Covers(k) {
			delete(out, k)
		}
	}
	return out
}

// A rebuild in steps, with writes and deletes between the steps: at every
// moment the indexes hold exactly the values at the keys the walk has
// passed, a search is refused until the walk is done, and then they hold
// the store.
func TestRebuildInStepsKeepsChangesInStep(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		clock := &manualClock{}
		s := core.NewStore()
		key := rapid.SampledFrom([]string{"", "a", "ab", "b", "ba", "c", "d", "dd", "e", "f", "g", "zz"})
		for range rapid.IntRange(0, 12).Draw(t, "initial") {
			s.Set(key.Draw(t, "key"), rapid.StringMatching("[a-z]{0,3}").Draw(t, "value"))
		}
		rec := newRecording()
		step := rapid.IntRange(1, 4).Draw(t, "step")
		a := core.AttachIndexes(s, rec, clock, core.IndexBuildConfig{InlineValuesMax: -1, StepValues: step}, t.Logf, core.MutNone)
		for i := range rapid.IntRange(0, 40).Draw(t, "actions") {
			switch rapid.IntRange(0, 2).Draw(t, "action") {
			case 0:
				s.Set(key.Draw(t, "key"), fmt.Sprint("v", i))
			case 1:
				s.Delete(key.Draw(t, "key"))
			case 2:
				tick(clock)
			}
			if got, want := rec.held, covered(s, a); !maps.Equal(got, want) {
				t.Fatalf("after action %d the indexes hold %v; the keys walked hold %v", i, got, want)
			}
			if resp := a.Search(searchReq()); a.Built() != resp.OK {
				t.Fatalf("built %v, and a search answered %+v", a.Built(), resp)
			}
		}
		for range s.Len() + 2 { // a step hands over at least one value
			tick(clock)
		}
		if !a.Built() || !maps.Equal(rec.held, storeMap(s)) {
			t.Fatalf("built %v; the indexes hold %v, the store %v", a.Built(), rec.held, storeMap(s))
		}
		if rec.resets != 1 || rec.loadeds != 1 {
			t.Fatalf("%d resets and %d loadeds, want one of each", rec.resets, rec.loadeds)
		}
		if st := a.Status(); st.Rebuild != nil {
			t.Fatalf("a built index reports a rebuild: %+v", st.Rebuild)
		}
	})
}

// A store of at most InlineValuesMax values is indexed before AttachIndexes
// returns, and arms no timer; a larger one is not, says how far it got in
// the status op and in a search's refusal, and finishes on ticks.
func TestRebuildInlineOnlyWhenSmall(t *testing.T) {
	for _, n := range []int{0, 3, 4, 5} {
		clock := &manualClock{}
		s := core.NewStore()
		for i := range n {
			s.Set(fmt.Sprintf("k%d", i), "v")
		}
		rec := newRecording()
		a := core.AttachIndexes(s, rec, clock, core.IndexBuildConfig{InlineValuesMax: 4, StepValues: 2}, t.Logf, core.MutNone)
		if inline := n <= 4; a.Built() != inline || (len(clock.timers) == 0) != inline {
			t.Fatalf("%d values: built %v with %d timers, want built %v", n, a.Built(), len(clock.timers), inline)
		}
		if a.Built() {
			continue
		}
		resp := a.Search(searchReq())
		if resp.OK || resp.Error.Code != core.CodeUnavailable || !strings.Contains(resp.Error.Message, "0 of 5 indexed") {
			t.Fatalf("a search during the rebuild: %+v", resp)
		}
		tick(clock)
		if st := a.Status(); st.Rebuild == nil || *st.Rebuild != (core.IndexRebuild{Indexed: 2, Total: 5}) {
			t.Fatalf("status after one step of 2: %+v", st.Rebuild)
		}
		for range 3 {
			tick(clock)
		}
		if !a.Built() || len(rec.held) != n || len(clock.timers) != 0 {
			t.Fatalf("after 4 steps: built %v, %d values indexed, %d timers", a.Built(), len(rec.held), len(clock.timers))
		}
	}
}

// storeOfKeys is a store of n keys, k00000 on, each holding "v".
func storeOfKeys(n int) *core.Store {
	s := core.NewStore()
	for i := range n {
		s.Set(fmt.Sprintf("k%05d", i), "v")
	}
	return s
}

// A rebuild keeps a host's queue of index calls full but short: a step
// hands over what tops the backlog up to its bound, whatever StepValues
// says, and only its floor of 16 at the bound or past it.
func TestRebuildWaitsForABacklog(t *testing.T) {
	clock := &manualClock{}
	s := storeOfKeys(3000)
	rec := &backlogIndexes{recordingIndexes: newRecording(), backlog: 1024}
	a := core.AttachIndexes(s, rec, clock, core.IndexBuildConfig{InlineValuesMax: -1, StepValues: 1000}, t.Logf, core.MutNone)
	tick(clock)
	if len(rec.held) != 16 {
		t.Fatalf("a step handed over %d values with the backlog at its bound, want its floor of 16", len(rec.held))
	}
	rec.backlog = 1000
	tick(clock)
	if len(rec.held) != 16+24 {
		t.Fatalf("a step handed over %d values with a backlog of 1000, want 24", len(rec.held)-16)
	}
	rec.backlog = 0
	for range 3 { // 1,024 values a step
		tick(clock)
	}
	if !a.Built() || len(rec.held) != 3000 {
		t.Fatalf("built %v with %d values", a.Built(), len(rec.held))
	}
}

// A rebuild beside writes that keep the host's queue past its backlog's
// bound still ends: each tick hands over the floor's 16 values. Without
// the floor it handed over none for as long as the load lasted, and
// searches answered unavailable all that time.
func TestRebuildEndsBesideABacklogThatNeverFalls(t *testing.T) {
	clock := &manualClock{}
	s := storeOfKeys(3000)
	rec := &backlogIndexes{recordingIndexes: newRecording(), backlog: 4096, backlogBytes: 4 << 20}
	a := core.AttachIndexes(s, rec, clock, core.IndexBuildConfig{InlineValuesMax: -1}, t.Logf, core.MutNone)
	for range 3000/16 + 1 {
		tick(clock)
	}
	if !a.Built() || !maps.Equal(rec.held, storeMap(s)) {
		t.Fatalf("built %v with %d of %d values after %d ticks past the backlog's bound", a.Built(), len(rec.held), s.Len(), 3000/16+1)
	}
}

// A step of a rebuild is bounded by the bytes of the keys and values it
// hands over, as well as by their number: indexing costs by the byte, and
// a step of 256 values (indexes on the node's goroutine) or a host's
// backlog of 1,024 values of 100 KB was half a second or two seconds of
// indexing, which a status op waited for with the node's loop. A step
// takes values until their bytes pass the bound: 256 KiB a step, a
// backlog of 1 MiB.
func TestRebuildStepsBoundedByBytes(t *testing.T) {
	value := strings.Repeat("word ", 20_000) // 100 KB; with its key, 100,003 bytes
	for _, c := range []struct {
		name         string
		backlog      bool
		backlogBytes int64
		want         int
	}{
		{"node's goroutine", false, 0, 3},
		{"empty backlog", true, 0, 11},
		{"backlog of 0.5 MiB", true, 1 << 19, 6},
		{"backlog at its bytes", true, 1 << 20, 1}, // the floor: at least one value
	} {
		clock := &manualClock{}
		s := core.NewStore()
		for i := range 40 {
			s.Set(fmt.Sprintf("k%02d", i), value)
		}
		rec := newRecording()
		var idx core.Indexes = rec
		if c.backlog {
			idx = &backlogIndexes{recordingIndexes: rec, backlogBytes: c.backlogBytes}
		}
		a := core.AttachIndexes(s, idx, clock, core.IndexBuildConfig{InlineValuesMax: -1}, t.Logf, core.MutNone)
		tick(clock)
		if len(rec.held) != c.want {
			t.Fatalf("%s: a step handed over %d values of 100 KB, want %d", c.name, len(rec.held), c.want)
		}
		if b, ok := idx.(*backlogIndexes); ok {
			b.backlogBytes = 0
		}
		for range 40 {
			tick(clock)
		}
		if !a.Built() || !maps.Equal(rec.held, storeMap(s)) {
			t.Fatalf("%s: built %v with %d values", c.name, a.Built(), len(rec.held))
		}
	}
}

// A store of few values but many bytes is rebuilt in steps too: at most
// InlineValuesMax values and InlineBytesMax bytes of keys and values (by
// default InlineValuesMax KiB: 10,000 KiB for the default 10,000 values)
// are indexed before the node serves. Counted in values alone, 5,000
// values of 100 KB held a start for 12 s of indexing.
func TestRebuildInlineOnlyWhenFewBytes(t *testing.T) {
	for _, c := range []struct {
		values, valueBytes int
		valuesMax          int
		bytesMax           int64
		inline             bool
	}{
		{3, 298, 1000, 900, true},  // 3 x (2 + 298) bytes
		{3, 299, 1000, 900, false}, // one byte over
		{0, 0, 1000, 1, true},
		{100, 100_000, 0, 0, true},      // the default: 10,240,000 bytes; these 10,000,200
		{110, 100_000, 0, 0, false},     // 11,000,220
		{110, 100_000, 20_000, 0, true}, // 20,000 values: twice the bytes
		{3, 1030, 3, 0, false},          // 3 KiB at most; 3 x 1,032 bytes
	} {
		clock := &manualClock{}
		s := core.NewStore()
		for i := range c.values {
			s.Set(fmt.Sprintf("%02d", i%100)+strings.Repeat("x", i/100), strings.Repeat("v", c.valueBytes-i/100))
		}
		rec := newRecording()
		cfg := core.IndexBuildConfig{InlineValuesMax: c.valuesMax, InlineBytesMax: c.bytesMax}
		a := core.AttachIndexes(s, rec, clock, cfg, t.Logf, core.MutNone)
		if a.Built() != c.inline || (len(clock.timers) == 0) != c.inline {
			t.Fatalf("%d values of %d bytes, inline at most %d values and %d bytes: built %v with %d timers, want built %v",
				c.values, c.valueBytes, c.valuesMax, c.bytesMax, a.Built(), len(clock.timers), c.inline)
		}
		for range c.values + 1 {
			tick(clock)
		}
		if !a.Built() || len(rec.held) != c.values {
			t.Fatalf("%d values of %d bytes: built %v with %d values", c.values, c.valueBytes, a.Built(), len(rec.held))
		}
	}
}

// A stopped rebuild (its store replaced by an install) hands over nothing
// more, and the old store's changes no longer reach the indexes.
func TestStoppedRebuildIsSilent(t *testing.T) {
	clock := &manualClock{}
	old := core.NewStore()
	for i := range 10 {
		old.Set(fmt.Sprintf("k%d", i), "v")
	}
	rec := newRecording()
	a := core.AttachIndexes(old, rec, clock, core.IndexBuildConfig{InlineValuesMax: -1, StepValues: 3}, t.Logf, core.MutNone)
	tick(clock)
	a.Stop()
	fresh := core.NewStore()
	fresh.Set("new", "v")
	b := core.AttachIndexes(fresh, rec, clock, core.IndexBuildConfig{InlineValuesMax: -1, StepValues: 3}, t.Logf, core.MutNone)
	old.Set("k0", "changed")
	for range 5 {
		tick(clock)
	}
	if !b.Built() || !maps.Equal(rec.held, map[string]string{"new": "v"}) {
		t.Fatalf("built %v; the indexes hold %v, want only the new store's key", b.Built(), rec.held)
	}
}

// laterIndexes answer searches later, as a host's index worker does: the
// test says when (answer).
type laterIndexes struct {
	*recordingIndexes
	waiting []func()
}

func (l *laterIndexes) SearchLater(req *core.Request, done func(core.Response)) {
	resp := l.Search(req) // what the indexes hold now, after the calls before
	l.waiting = append(l.waiting, func() { done(resp) })
}

// A search answered in a later turn (core.LaterSearcher) is released like
// a read: only once the batch open when its answer came is durable, since
// the answer may show a write whose fsync is still running.
func TestLaterSearchWaitsForTheBatch(t *testing.T) {
	idx := &laterIndexes{recordingIndexes: newRecording()}
	cfg := core.DefaultSingleConfig()
	cfg.Indexes = idx
	h := newHarness(t, cfg)
	h.async = true
	if err := h.start(); err != nil { // again, with syncs the test completes
		t.Fatal(err)
	}
	var answer *core.Response
	h.node.HandleRequest(&core.Request{Op: core.OpSet, Key: "k", Value: ptr("v")}, func(core.Response) {})
	h.node.HandleRequest(&core.Request{Op: core.OpSearch, Query: "x"}, func(r core.Response) { answer = &r })
	if err := h.node.Flush(); err != nil { // the set's fsync starts
		t.Fatal(err)
	}
	if len(idx.waiting) != 1 || answer != nil {
		t.Fatalf("%d searches waiting, answer %v: the search must wait for the indexes", len(idx.waiting), answer)
	}
	idx.waiting[0]() // the answer comes in a turn of its own
	if err := h.node.Flush(); err != nil {
		t.Fatal(err)
	}
	if answer != nil {
		t.Fatalf("the search was answered (%+v) while the set it saw was not durable", *answer)
	}
	if err := h.settle(); err != nil {
		t.Fatal(err)
	}
	if answer == nil || !answer.OK || len(answer.Hits) != 1 || answer.Hits[0].Key != "1" {
		t.Fatalf("after the sync: %+v, want the answer of indexes holding the set's value", answer)
	}
}

// A search whose batch is undone (its write failed: disk full) is failed
// like a read of that batch, even when its answer comes in a later turn:
// the indexes answered it with the undone write in them.
func TestLaterSearchOfAnUndoneBatchFails(t *testing.T) {
	idx := &laterIndexes{recordingIndexes: newRecording()}
	cfg := core.DefaultSingleConfig()
	cfg.Indexes = idx
	h := newHarness(t, cfg)
	mustOK(t, h.do(set("a", "1")))
	h.disk.SetFaults(sim.DiskFaults{CapacityBytes: 200})
	var written, answer *core.Response
	h.node.HandleRequest(set("big", strings.Repeat("x", 500)), func(r core.Response) { written = &r })
	h.node.HandleRequest(searchReq(), func(r core.Response) { answer = &r })
	if err := h.node.Flush(); err != nil {
		t.Fatal(err)
	}
	if written == nil || written.OK || written.Error.Code != core.CodeDiskFull {
		t.Fatalf("the set: %+v, want disk_full", written)
	}
	if len(idx.waiting) != 1 || len(idx.held) != 1 {
		t.Fatalf("%d searches waiting, indexes hold %v", len(idx.waiting), idx.held)
	}
	h.disk.SetFaults(sim.DiskFaults{})
	idx.waiting[0]() // the answer, of indexes that held "big", comes in a turn of its own
	if err := h.node.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := h.settle(); err != nil {
		t.Fatal(err)
	}
	if answer == nil || answer.OK || answer.Error.Code != core.CodeUnavailable {
		t.Fatalf("the search of the undone batch answered %+v; want unavailable, as a get of that batch is", answer)
	}
}

// A rebuild's progress counts what its walk has still to hand over as the
// store changes beside it: inserts past the walk add to it, deletes there
// take from it, and changes the walk has passed, or updates, leave it. So
// the total it shows is what it hands over in the end. Counted from the
// values at its start, writes during a rebuild showed "3,000 of 3,000
// indexed" with values to come (found by review).
func TestRebuildProgressFollowsTheWrites(t *testing.T) {
	clock := &manualClock{}
	s := storeOfKeys(3000)
	rec := newRecording()
	a := core.AttachIndexes(s, rec, clock, core.IndexBuildConfig{InlineValuesMax: -1, StepValues: 100}, t.Logf, core.MutNone)
	tick(clock) // k00000..k00099 handed over
	for i := range 50 {
		s.Set(fmt.Sprintf("z%02d", i), "new, past the walk")
	}
	for i := range 20 {
		s.Delete(fmt.Sprintf("k%05d", 2000+i)) // past the walk
		s.Delete(fmt.Sprintf("k%05d", i))      // walked
	}
	for i := range 10 {
		s.Set(fmt.Sprintf("k%05d", 2500+i), "updated") // past the walk
		s.Set(fmt.Sprintf("a%02d", i), "new, before the walk")
	}
	st := a.Status()
	if st.Rebuild == nil || st.Rebuild.Indexed != 100 || st.Rebuild.Total != 100+2900+50-20 {
		t.Fatalf("rebuild %+v, want 100 of %d", st.Rebuild, 100+2900+50-20)
	}
	want := st.Rebuild.Total
	for !a.Built() {
		tick(clock)
		if st := a.Status(); st.Rebuild != nil && st.Rebuild.Total != want {
			t.Fatalf("rebuild %+v part way, want a total of %d", st.Rebuild, want)
		}
	}
	if !maps.Equal(rec.held, storeMap(s)) {
		t.Fatalf("the indexes hold %d values, the store %d", len(rec.held), s.Len())
	}
}
