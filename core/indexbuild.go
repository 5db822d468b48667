package core

import (
	"math"
	"time"
)

// AttachedIndexes are a node's indexes joined to the values they index: a
// rebuild from those values (at recovery, after a snapshot install), in
// steps between the node's turns, then every change as it happens.
//
// Why in steps: the indexes are derived state, rebuilt at every start, and
// indexing costs some 75 µs for a 1 KB value, so a million values are
// more than a minute of work. Done in one go, as it was, a node served
// nothing for that minute after a restart, and a cluster follower that
// installed a large snapshot stopped answering its leader for as long
// while it indexed (a follower that falls behind again meanwhile may need
// the next snapshot, and never catch up). Now a store of at most
// InlineValuesMax values, and InlineBytesMax bytes of keys and values, is
// indexed whole before the node serves, as before; a larger one a step at
// a time, on the node's timer, while the node serves every other request. Until the rebuild is done a search is
// answered "unavailable" with its progress (it would miss values), and
// the status op's indexes section shows the progress.
//
// The rebuild walks the values in the order of their position (the
// store's key; the mesh's bucketed store key), and remembers the last it
// handed over. A change at or before that position reaches the indexes at
// once, like any change after the rebuild; a change past it does not,
// since the walk will hand over whatever the position holds when it gets
// there. So at every moment the indexes hold exactly the values at the
// positions walked, and once the walk ends, every value.
type AttachedIndexes struct {
	idx   Indexes
	clock Clock
	walk  IndexWalk
	cfg   IndexBuildConfig
	logf  func(string, ...any)
	timer Timer
	// walked is the position of the last value handed over, and began
	// says that there is one; done, that the walk has passed the last.
	walked  string
	began   bool
	done    bool
	indexed int // values handed over by the walk
	total   int // values at the start, for the progress
	// left counts the values the walk has still to hand over, kept as
	// the store changes past the walk (an insert there adds one, a delete
	// takes one off), where counted says the node reports inserts (a
	// Store's observer, AttachIndexes); otherwise the progress is judged
	// by total. Counted from total alone, writes during a rebuild made its
	// progress untrue: "30,000 of 30,000 indexed" with thousands of values
	// to come (found by review).
	left    int
	counted bool
	startNs int64 // when the rebuild began, for its log line
	stopped bool  // the values were replaced: this rebuild must do nothing more
	// undone counts the batches whose changes the node took back
	// (Undone), so that a search answered later knows whether the batch
	// it may have seen was one.
	undone uint64
	// mutation plants the simulator's bug MutRebuildDropsWrites.
	mutation Mutation
}

// IndexWalk calls f for each value whose position is at or after from, in
// position order, until f returns false. pos is the value's position: for
// a Store, its key.
type IndexWalk func(from string, f func(pos, key, value string) bool)

// IndexBuildConfig paces a rebuild. A zero field takes its default.
type IndexBuildConfig struct {
	// InlineValuesMax: a rebuild of at most this many values is done
	// whole before the node serves; a larger one goes in steps. -1: none
	// (the simulator, whose stores are tiny, so that its rebuilds go in
	// steps between writes).
	InlineValuesMax int
	// StepValues bounds the values one step hands over to indexes that
	// run on the node's goroutine (see indexStepValues).
	StepValues int
	// InlineBytesMax: a rebuild whose keys and values come to more than
	// this is done in steps, however few the values; 0 takes
	// InlineValuesMax values of IndexInlineValueBytes each.
	InlineBytesMax int64
}

const (
	// IndexInlineValuesDefault: 10,000 values of 1 KB are about 0.75 s of
	// indexing on one core, which a start may take before it serves (a
	// restart's recovery of a million keys takes as long).
	IndexInlineValuesDefault = 10_000
	// IndexInlineValueBytes: the size of value that InlineValuesMax counts
	// on, so that a rebuild of InlineValuesMax values of more than this
	// on average goes in steps too: indexing costs by the byte, and 5,000
	// values of 100 KB, under the count, held a start (and would hold a
	// cluster follower's loop after a snapshot install) for 12 s of
	// indexing before it served (found by review).
	IndexInlineValueBytes = 1 << 10
	// indexStepValues: 256 values a step, a step every indexTick, for
	// indexes on the node's goroutine: about 20 ms of indexing of 1 KB
	// values a step. Indexes on a goroutine of their own, which say how
	// far behind they are (IndexBacklog), get what tops their queue up to
	// indexBacklogMax instead.
	indexStepValues = 256
	// indexStepBytes bounds a step in keys' and values' bytes too: 256
	// values of 1 KB. Counted in values alone, a step of 256 values of
	// 100 KB held the node's loop for half a second.
	indexStepBytes = 256 << 10
	// indexBacklogMax bounds the calls a rebuild lets wait for a host's
	// index goroutine: about 75 ms of indexing of 1 KB values, well under
	// the host's own queue limit, so that the rebuild does not fill the
	// queue and so block the node's loop behind it (but for its floor,
	// below, where the node's writes have filled it).
	indexBacklogMax = 1024
	// indexBacklogBytesMax is the same bound in keys' and values' bytes
	// (1,024 values of 1 KB), for indexing costs by the byte: a backlog of
	// 1,024 values of 100 KB was 2 s of indexing, and a status op, which
	// waits for the backlog, held the node's loop, and every client's
	// request with it, for as long (found by review).
	indexBacklogBytesMax = 1 << 20
	// indexBacklogFloorValues and indexBacklogFloorBytes are what a step
	// hands over whatever the backlog: 16 values of 1 KB a tick, some
	// 8,000 a second, about a quarter of what one core indexes. Without a
	// floor a rebuild beside a write load that kept the host's queue past
	// indexBacklogMax handed over nothing, tick after tick, and searches
	// answered unavailable for as long as the load lasted (32 writers of
	// bulk sets against a real node let the queue empty every second or
	// so, a slowdown; nothing bounded it). With it the
	// rebuild takes its share of the index goroutine, and the writes, which
	// wait for room in a full queue as the rebuild's steps then do, slow by
	// as much until it is done.
	indexBacklogFloorValues = 16
	indexBacklogFloorBytes  = 16 << 10
	// indexProgressValues: a line of the log every this many values.
	indexProgressValues = 100_000
)

// IndexBacklog is what a host's Indexes may add: how many calls wait for
// the goroutine that runs them (see Indexes), and the bytes of the keys
// and values they carry.
type IndexBacklog interface {
	Backlog() (calls int, bytes int64)
}

// AttachIndexes attaches idx to s: it rebuilds idx from s and keeps it in
// step with every change to s (through the store's observer). It returns
// nil for nil idx; a nil *AttachedIndexes answers searches that the node
// has no indexes.
func AttachIndexes(s *Store, idx Indexes, clock Clock, cfg IndexBuildConfig, logf func(string, ...any), mutation Mutation) *AttachedIndexes {
	if idx == nil {
		return nil
	}
	a := NewAttachedIndexes(idx, func(from string, f func(pos, key, value string) bool) {
		s.Ascend(from, func(key, value string) bool { return f(key, key, value) })
	}, s.Len(), clock, cfg, logf, mutation)
	a.counted = true
	s.Observe(storeIndexer{a})
	a.Begin()
	return a
}

// NewAttachedIndexes prepares a rebuild of idx from the total values that
// walk gives; Begin starts it. Only between the two may the node join
// its changes to the result: a node whose values are not a Store's calls
// Put and Remove itself, for every change.
func NewAttachedIndexes(idx Indexes, walk IndexWalk, total int, clock Clock, cfg IndexBuildConfig, logf func(string, ...any), mutation Mutation) *AttachedIndexes {
	if cfg.InlineValuesMax == 0 {
		cfg.InlineValuesMax = IndexInlineValuesDefault
	}
	if cfg.StepValues <= 0 {
		cfg.StepValues = indexStepValues
	}
	if cfg.InlineBytesMax <= 0 {
		cfg.InlineBytesMax = int64(max(cfg.InlineValuesMax, 0)) * IndexInlineValueBytes
	}
	return &AttachedIndexes{idx: idx, clock: clock, walk: walk, cfg: cfg, logf: logf, total: total, left: total, mutation: mutation}
}

// Begin forgets what idx held and rebuilds it: at once, if the values are
// few, or else in steps from the next tick.
func (a *AttachedIndexes) Begin() {
	a.startNs = a.clock.Now()
	a.idx.Reset()
	if a.total <= a.cfg.InlineValuesMax && a.inlineBytes() {
		for !a.done {
			a.step(a.total+1, math.MaxInt64)
		}
		return
	}
	// Not "while serving": scripts and tests wait for the word "serving"
	// as the sign that the node listens (found by a cluster test that
	// dialled a node still recovering).
	a.logf("indexes: rebuilding from %d values in steps, beside the node's other work; searches answer unavailable until it is done", a.total)
	a.arm()
}

// Stop ends the rebuild: the node is replacing its values (a snapshot
// install), and attaches the indexes to the new ones.
func (a *AttachedIndexes) Stop() {
	if a == nil {
		return
	}
	a.stopped = true
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
}

// inlineBytes reports whether the values' keys and values come to at
// most InlineBytesMax. It walks at most InlineValuesMax values, which the
// caller has checked.
func (a *AttachedIndexes) inlineBytes() bool {
	bytes := int64(0)
	a.walk("", func(_, key, value string) bool {
		bytes += int64(len(key) + len(value))
		return bytes <= a.cfg.InlineBytesMax
	})
	return bytes <= a.cfg.InlineBytesMax
}

func (a *AttachedIndexes) arm() {
	if a.timer == nil {
		a.timer = a.clock.AfterFunc(indexTick, a.tick)
	}
}

func (a *AttachedIndexes) tick() {
	a.timer = nil
	if a.stopped || a.done {
		return
	}
	budget, bytes := a.cfg.StepValues, int64(indexStepBytes)
	if b, ok := a.idx.(IndexBacklog); ok {
		// Indexes on a goroutine of their own: top their queue up, so
		// that they never wait for the next tick, whose pace a loaded
		// machine stretches. (100k values of 1 KB: 10.1–11.9 s from the
		// start to the rebuild's end, as long as the rebuild in one go
		// held the start, 9.9–11.7 s.)
		calls, queued := b.Backlog()
		budget = max(indexBacklogMax-calls, indexBacklogFloorValues)
		bytes = max(indexBacklogBytesMax-queued, indexBacklogFloorBytes)
	}
	a.step(budget, bytes)
	if !a.done {
		a.arm()
	}
}

// step hands over up to budget values from after the last walked, and
// none once their keys and values came to bytes (so at least one).
func (a *AttachedIndexes) step(budget int, bytes int64) {
	from := ""
	if a.began {
		// The least string after walked: the walk goes on past it.
		from = a.walked + "\x00"
	}
	ended := true
	a.walk(from, func(pos, key, value string) bool {
		if budget == 0 || bytes <= 0 {
			ended = false
			return false
		}
		budget--
		bytes -= int64(len(key) + len(value))
		// pos is a string the values hold (a Store's key shares its
		// item's allocation, which is never written), so keeping it costs
		// no copy.
		a.walked, a.began = pos, true
		a.idx.Put(key, value)
		a.left--
		if a.indexed++; a.indexed%indexProgressValues == 0 {
			a.logf("indexes: %d of %d values indexed", a.indexed, a.progressTotal())
		}
		return true
	})
	if !ended {
		return
	}
	a.done = true
	a.idx.Loaded()
	a.left = 0
	if a.indexed >= indexProgressValues || a.total > a.cfg.InlineValuesMax {
		a.logf("indexes: all %d values indexed in %v", a.indexed, time.Duration(a.clock.Now()-a.startNs).Round(time.Millisecond))
	}
}

// Covers reports whether the indexes hold what pos holds: the rebuild has
// walked past it (or is done), so a change to it must reach them now. A
// stopped rebuild covers nothing: its values were replaced.
func (a *AttachedIndexes) Covers(pos string) bool {
	switch {
	case a == nil || a.stopped:
		return false
	case a.done:
		return true
	}
	return a.began && pos <= a.walked
}

// passes says whether a change at pos reaches the indexes.
func (a *AttachedIndexes) passes(pos string) bool {
	if a.mutation == MutRebuildDropsWrites && !a.done {
		return false
	}
	return a.Covers(pos)
}

// Put tells the indexes that the value at pos is now value, if the
// rebuild has walked past pos; the walk hands it over otherwise.
func (a *AttachedIndexes) Put(pos, key, value string) {
	if a != nil && a.passes(pos) {
		a.idx.Put(key, value)
	}
}

// Remove tells the indexes that pos holds no value, if the rebuild has
// walked past pos (otherwise they do not hold it).
func (a *AttachedIndexes) Remove(pos, key string) {
	switch {
	case a == nil:
	case a.passes(pos):
		a.idx.Remove(key)
	case a.counted && !a.done && !a.Covers(pos):
		a.left-- // one value fewer for the walk
	}
}

// inserted tells a rebuild that pos, which held no value, now holds one
// (a Store's observer, after its Put): one more for the walk, if it has
// not passed pos.
func (a *AttachedIndexes) inserted(pos string) {
	if a.counted && !a.done && !a.Covers(pos) {
		a.left++
	}
}

// progressTotal is the values a rebuild under way will have handed over
// in all, as far as is known now.
func (a *AttachedIndexes) progressTotal() int {
	if a.counted {
		return a.indexed + max(a.left, 0)
	}
	return max(a.total, a.indexed)
}

// Full answers a client's write that sets values while the indexes are at
// their bound (Limits.IndexesFull); nil when it may go on, and always for
// a node without indexes.
func (a *AttachedIndexes) Full(l Limits) *Response {
	if a == nil || l.IndexBytesMax <= 0 {
		return nil
	}
	return l.IndexesFull(a.idx.Bytes())
}

// IndexBytesMax is the bound on a's indexes for the status op: l's, or 0
// for a node without indexes.
func IndexBytesMax(a *AttachedIndexes, l Limits) int64 {
	if a == nil {
		return 0
	}
	return l.IndexBytesMax
}

// Built reports whether the rebuild is done (false for no indexes).
func (a *AttachedIndexes) Built() bool { return a != nil && a.done }

// Search answers a validated search request: from the indexes once they
// are rebuilt; unavailable, with the rebuild's progress, before; and with
// the error that names the flag when the node has no indexes.
func (a *AttachedIndexes) Search(req *Request) Response {
	if a == nil {
		return ErrorResponse(CodeIndexesDisabled, "%s needs the server started with --enable-indexes", req.Op)
	}
	if !a.done {
		return ErrorResponse(CodeUnavailable, "the indexes are being rebuilt from this node's values (%d of %d indexed); retry when status shows no rebuild",
			a.indexed, a.progressTotal())
	}
	return a.idx.Search(req)
}

// Answer answers a validated search request by calling done: in this
// turn, as Search does, unless the indexes search on a goroutine of their
// own (LaterSearcher), which call done in a later turn. A node that waits
// for its batch before a read's reply must do the same for this one,
// whichever turn done comes in: the answer may show a write of this turn.
// A node that undoes a failed batch uses AnswerOfBatch instead.
func (a *AttachedIndexes) Answer(req *Request, done func(Response)) {
	a.AnswerOfBatch(req, false, done)
}

// AnswerOfBatch is Answer for a node that takes a batch back when its
// write fails (Undone): batchWrites says that the open batch has writes,
// which the search may see. Such a search whose answer comes in a later
// turn, after its batch was undone, is answered unavailable, as a read of
// that batch is: the indexes answered it with the undone writes in them
// (the changes that take them back were queued after the search), and it
// found values the store never held (found by review: a set refused
// disk_full, and a search beside it that found the refused value).
func (a *AttachedIndexes) AnswerOfBatch(req *Request, batchWrites bool, done func(Response)) {
	if a != nil && a.done {
		if ls, ok := a.idx.(LaterSearcher); ok {
			undone := a.undone
			ls.SearchLater(req, func(resp Response) {
				if batchWrites && a.undone != undone {
					resp = ErrorResponse(CodeUnavailable, "a write before this search failed to persist; retry")
				}
				done(resp)
			})
			return
		}
	}
	done(a.Search(req))
}

// Undone tells the indexes' searches in flight that the node took the
// open batch's changes back (its write failed). Conservatively, a later
// undone batch fails them too: a batch's outcome is known when the next
// turn begins, so only a search whose answer is late by more than a turn
// can meet one, on a disk that is failing.
func (a *AttachedIndexes) Undone() {
	if a != nil {
		a.undone++
	}
}

// Status is the status op's indexes section: nil without indexes.
func (a *AttachedIndexes) Status() *IndexStatus {
	if a == nil {
		return nil
	}
	st := a.idx.Status()
	if !a.done {
		st.Rebuild = &IndexRebuild{Indexed: a.indexed, Total: a.progressTotal()}
	}
	return &st
}

// storeIndexer is a Store's observer for its attached indexes.
type storeIndexer struct{ a *AttachedIndexes }

func (o storeIndexer) Put(key, value string) { o.a.Put(key, key, value) }
func (o storeIndexer) Remove(key string)     { o.a.Remove(key, key) }
func (o storeIndexer) Inserted(key string)   { o.a.inserted(key) }
