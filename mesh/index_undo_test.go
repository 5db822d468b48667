package mesh_test

import (
	"fmt"
	"strings"
	"testing"

	"dkv/core"
	"dkv/mesh"
	"dkv/sim"
)

// laterIndexes count the values they hold and answer a search with that
// count, later, when the test says: as a host's index worker does.
type laterIndexes struct {
	held    map[string]bool
	waiting []func()
}

func (l *laterIndexes) Put(key, value string)    { l.held[key] = true }
func (l *laterIndexes) Remove(key string)        { delete(l.held, key) }
func (l *laterIndexes) Reset()                   { l.held = map[string]bool{} }
func (l *laterIndexes) Loaded()                  {}
func (l *laterIndexes) Work(int) bool            { return false }
func (l *laterIndexes) Status() core.IndexStatus { return core.IndexStatus{Docs: len(l.held)} }
func (l *laterIndexes) Bytes() int64             { return 0 }
func (l *laterIndexes) Prepare(*core.Request)    {}
func (l *laterIndexes) Expect(any)               {}
func (l *laterIndexes) Search(*core.Request) core.Response {
	return core.Response{OK: true, Hits: []core.Hit{{Key: fmt.Sprint(len(l.held))}}}
}
func (l *laterIndexes) SearchLater(req *core.Request, done func(core.Response)) {
	resp := l.Search(req)
	l.waiting = append(l.waiting, func() { done(resp) })
}

// A search beside a write that fails (disk full), answered in a later
// turn, is failed like a read of that batch: the indexes answered it with
// the refused value in them.
func TestLaterSearchOfAnUndoneBatchFails(t *testing.T) {
	idx := &laterIndexes{held: map[string]bool{}}
	w := newWorld(t, 1, func(c *mesh.Config) { c.Indexes = idx })
	w.set(0, "a", "1")
	w.disks[0].SetFaults(sim.DiskFaults{CapacityBytes: 200})
	big := strings.Repeat("x", 500)
	var written, answer *core.Response
	w.nodes[0].HandleRequest(&core.Request{Op: core.OpSet, Key: "big", Value: &big}, func(r core.Response) { written = &r })
	w.nodes[0].HandleRequest(&core.Request{Op: core.OpSearch, Query: "x"}, func(r core.Response) { answer = &r })
	w.flush()
	if written == nil || written.OK {
		t.Fatalf("the set: %+v, want it refused", written)
	}
	if len(idx.waiting) != 1 || len(idx.held) != 1 {
		t.Fatalf("%d searches waiting, indexes hold %v", len(idx.waiting), idx.held)
	}
	w.disks[0].SetFaults(sim.DiskFaults{})
	idx.waiting[0]() // the answer, of indexes that held "big", comes in a turn of its own
	w.run(10e6)
	if answer == nil || answer.OK || answer.Error.Code != core.CodeUnavailable {
		t.Fatalf("the search of the undone batch answered %+v; want unavailable, as a get of that batch is", answer)
	}
}
