package core

import "time"

// Indexes are views of the store's values that answer the search ops: a
// full-text index and an embedding-similarity index. They are derived
// state: a node rebuilds them from its store at recovery (and after a
// snapshot install), and keeps them in step with every change to the store
// in the same turn as the change, undone writes included, so a search
// never sees a value the store does not hold. core knows them only through
// this interface; cmd/node (and the simulator) wire in the implementation,
// which lives outside core.
//
// An Indexes is node logic: it follows the same determinism rules and is
// used by one goroutine at a time, in the node's order of calls. A host may
// run it on a goroutine of its own (cmd/node does) as long as every call
// reaches it in that order and Search and Status see the effect of every
// call made before them (Work's answer, which only tells the pacer whether
// to tick again, and Bytes's, a bound's estimate, may lag); Prepare alone
// is called concurrently.
type Indexes interface {
	Observer
	// Reset forgets everything: the store is about to be replaced, and a
	// Put of every key follows, then Loaded. Between the two the indexes
	// may defer work they would otherwise do in Put.
	Reset()
	Loaded()
	// Search answers an OpSearch or OpSearchSimilar request that Validate
	// accepted, with Hits or a failure.
	Search(req *Request) Response
	// Work does up to budget units of deferred work (linking the
	// similarity index's graphs in the background of the loop) and reports whether
	// any is left; a budget of 0 only asks. A unit is about 0.1 ms.
	// Searches never see a value the store does not hold, whatever is left
	// undone.
	Work(budget int) (more bool)
	// Status describes the indexes for the status op.
	Status() IndexStatus
	// Bytes estimates the memory the indexes hold (Status's TextBytes and
	// VectorBytes together), for their bound (Limits.IndexBytesMax): it is
	// asked before every client write that sets a value while a bound is
	// set, so it must be cheap.
	Bytes() int64
	// Prepare does the part of indexing a write request's values that
	// needs only the request (finding their words, their embeddings) and
	// keeps it in req.Prepared. A host calls it on the goroutine that
	// decoded the request, off the node's loop, so it must be safe for
	// concurrent use: it reads the request and nothing else that changes.
	Prepare(req *Request)
	// Expect says that the Puts until the next Expect come from a write
	// whose Prepared this is (nil: none), so they can use its work. A Put
	// that finds no prepared work for its key and value does it itself.
	Expect(prepared any)
}

// LaterSearcher is what a host's Indexes may add: searches answered off
// the node's goroutine, so that the node's loop does not wait for them
// (cmd/node's index worker: a search there waits for every index update
// queued before it, up to 4,096 of them, some 0.3 s of indexing under a
// write load, and then for the search itself).
type LaterSearcher interface {
	// SearchLater answers req as Search would at this point of the
	// node's calls (after every call made before it, before every call
	// after it), and has done called with the answer on the node's
	// goroutine in a later turn. req must not change after the call.
	SearchLater(req *Request, done func(Response))
}

// Observer is told of every change to a Store, in the order they happen.
type Observer interface {
	// Put: key now holds value (it may have held another).
	Put(key, value string)
	// Remove: key no longer exists.
	Remove(key string)
}

// Hit is one search result: a key and its score, best first.
type Hit struct {
	Key   string  `json:"key"`
	Score float64 `json:"score"`
}

// IndexStatus is the status op's view of the indexes.
type IndexStatus struct {
	Docs      int   `json:"docs"`       // values in the full-text index
	Terms     int   `json:"terms"`      // distinct indexed words
	Postings  int64 `json:"postings"`   // (word, value) pairs
	TextBytes int64 `json:"text_bytes"` // estimated memory of the full-text index
	// Vectors: values with an embedding (a value with no known word has
	// none); Pending: those not yet linked into the index's graphs, searched
	// exactly.
	Vectors int `json:"vectors"`
	Pending int `json:"pending"`
	// Segments: the similarity index's graphs, which merges join; WorkLeft:
	// its deferred work (links, merges) left, in units of about 0.1 ms, 0
	// once it has settled and searches are fastest.
	Segments    int   `json:"segments"`
	WorkLeft    int   `json:"work_left"`
	VectorBytes int64 `json:"vector_bytes"`
	// Queued: calls that change the indexes (a write's Put, a delete's
	// Remove) waiting for the host's index worker when the status was
	// asked; always 0 where the indexes run on the node's goroutine.
	Queued int    `json:"queued"`
	Model  string `json:"model"` // where the word vectors came from
	Words  int    `json:"words"` // the model's vocabulary
	Dim    int    `json:"dim"`
	// Rebuild is the progress of a rebuild from the node's values (see
	// AttachedIndexes); absent once the indexes are built.
	Rebuild *IndexRebuild `json:"rebuild,omitempty"`
}

// IndexRebuild is a rebuild's progress: values indexed of the values the
// node held when it began (more, when writes added some).
type IndexRebuild struct {
	Indexed int `json:"indexed"`
	Total   int `json:"total"`
}

// IndexPacer gives the indexes' deferred work (Indexes.Work: linking the
// similarity index) the node's spare time, on timer ticks of the node's own
// clock. A tick comes indexTick after a turn with writes and keeps coming
// while work remains; it does indexWorkBusy units when the node wrote
// within the last indexIdleAfter, so a loaded node's writes keep the loop,
// and indexWorkIdle units otherwise, so an idle node catches up fast.
// Searches never wait for the work (what it has not reached yet they scan
// exactly), and past their own bound a Put does some of the work itself.
type IndexPacer struct {
	clock     Clock
	idx       Indexes
	timer     Timer
	lastWrite int64
	// rebuilding: see NewIndexPacer.
	rebuilding func() bool
}

const (
	indexTick      = 2 * time.Millisecond
	indexIdleAfter = 10 * time.Millisecond
	indexWorkBusy  = 1
	indexWorkIdle  = 8
)

// NewIndexPacer paces idx's work on clock; nil without indexes (its
// methods do nothing on nil).
//
// rebuilding, when it reports true, holds the work back: a rebuild in
// steps (AttachedIndexes) has the worker's time first, and the similarity
// index's links wait for its end, as they did after a rebuild in one go
// (between Reset and Loaded a Put leaves them to Work).
func NewIndexPacer(clock Clock, idx Indexes, rebuilding func() bool) *IndexPacer {
	if idx == nil {
		return nil
	}
	p := &IndexPacer{clock: clock, idx: idx, lastWrite: clock.Now(), rebuilding: rebuilding}
	p.arm() // a restart leaves the similarity index's graphs to link
	return p
}

// Wrote tells the pacer that the turn changed the indexes. The timer is
// armed only when the indexes have work, so a write that leaves none
// costs no tick. (With the similarity index's segmented graphs nearly
// every write leaves a node to link, so a loaded node does take a tick
// every 2 ms, and the unit of work it brings.)
func (p *IndexPacer) Wrote() {
	if p == nil {
		return
	}
	p.lastWrite = p.clock.Now()
	if p.timer == nil && p.idx.Work(0) {
		p.arm()
	}
}

func (p *IndexPacer) arm() {
	if p.timer == nil {
		p.timer = p.clock.AfterFunc(indexTick, p.tick)
	}
}

func (p *IndexPacer) tick() {
	p.timer = nil
	if p.rebuilding != nil && p.rebuilding() {
		p.arm()
		return
	}
	budget := indexWorkIdle
	if p.clock.Now()-p.lastWrite < int64(indexIdleAfter) {
		budget = indexWorkBusy
	}
	if p.idx.Work(budget) {
		p.arm()
	}
}

// PrepareFunc is a host's hook for Indexes.Prepare, nil without indexes.
func PrepareFunc(idx Indexes) func(*Request) {
	if idx == nil {
		return nil
	}
	return idx.Prepare
}
