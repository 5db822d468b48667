package main

import (
	"runtime"
	"sync"
	"sync/atomic"

	"dkv/core"
)

// indexWorker runs a node's indexes on a goroutine of their own, so that
// the indexing of a turn's writes (some 35 µs for a 1 KB value: the
// full-text postings and the similarity graph's link; as much again for
// the analysis, where no event loop prepared the value) overlaps the rest
// of the node's work (the store, the log, the replies, the next turn)
// instead of lengthening every turn. On two cores that gave 1.09–1.12 ×
// the indexed writes a second (docs/PERFORMANCE.md, Indexes).
//
// The indexes stay single-threaded and see the node's calls in the node's
// order: only the worker touches them. The calls that change them (Put,
// Remove, Expect, Reset, Work) are queued and return at once; the ones that
// read them (Search, Status) and Loaded wait until every call queued before
// them has run, then run on the worker and return its answer. So a search
// sees every write the node applied before it, exactly as on the node's
// goroutine, and the simulator's synchronous indexes stand for this one.
// Two things the node hands over must not change after the call: the key
// and value strings (Go strings are immutable; dkv never builds one over
// memory it reuses) and a write's prepared work (Expect), which only the
// worker uses from then on.
type indexWorker struct {
	idx core.Indexes

	mu sync.Mutex
	// queue holds the calls waiting, in the node's order: n of them from
	// head, in a ring of indexQueueOpsMax; bytes is the size of the keys
	// and values they carry (indexOp.size).
	queue   []indexOp
	head, n int
	bytes   int64
	busy    bool          // the worker is taking and running batches
	stopped bool          // close was called
	waiting int           // callers waiting for room in the full queue
	wake    chan struct{} // capacity 1: there is a batch to take
	room    *sync.Cond    // signalled when the worker takes a batch
	exited  chan struct{} // closed when the worker's goroutine ends
	// more is what Work(0) answers without waiting: the last Work's answer,
	// or true once a change is queued after that Work. changes counts the
	// changes queued, so that a Work's answer cannot undo a later change's
	// true.
	more    bool
	changes uint64
	// indexBytes is the indexes' Bytes as the worker last counted them, after
	// a batch: what Bytes answers without waiting (a bound's estimate may
	// lag, core.Indexes says, by the calls still queued).
	indexBytes atomic.Int64

	// postNode runs a function on the node's goroutine (realnet's
	// Host.Post): how SearchLater's answers reach the node. Set once,
	// before the host serves.
	postNode func(func()) bool

	// Only the worker's goroutine uses these. expect is the node's last
	// Expect as the worker has run it; analysers, the goroutines beside
	// the worker that analyse a batch's unprepared values with it
	// (prepareBatch); unprepared, the batch's Puts to analyse.
	expect     any
	analysers  int
	unprepared []int
}

// indexQueueOpsMax bounds the calls waiting for the worker; past it the
// node waits for room. A restart's rebuild queues a Put per stored value
// far faster than they are indexed, and a node under load may outrun the
// worker for a while: 4,096 writes of 1 KB are some 0.15 s of indexing,
// or 0.3 s where the worker also analyses them (one waiting event loop).
const indexQueueOpsMax = 4096

// indexQueueBytesMax bounds the calls waiting for the worker by the keys
// and values they carry, as indexQueueOpsMax does by their number: 4,096
// values of 1 KB. Indexing costs by the byte, and counted in calls alone
// a queue of large values was seconds of indexing (1,024 values of 100 KB:
// 2 s), which every search and status op waited for, the status op with
// the node's loop (found by review). A call larger than the bound is let
// into an empty queue.
const indexQueueBytesMax = 4 << 20

// indexBatchOpsMax bounds the calls the worker takes from the queue at a
// time (some 2–4 ms of indexing), so that a node waiting for room in a
// full queue gets it as each batch is taken, not only once the worker has
// run everything queued: taking the whole queue, a node that outran the
// worker stalled for most of a queue's indexing at a time (0.1 s and more),
// and every write that came meanwhile waited as long.
const indexBatchOpsMax = 64

// indexBatchBytesMax bounds a batch by the keys and values its calls
// carry, as indexBatchOpsMax does by their number (64 values of 1 KB); a
// batch takes at least one call.
const indexBatchBytesMax = 64 << 10

type indexOpKind uint8

const (
	opPut indexOpKind = iota
	opRemove
	opExpect
	opReset
	opWork
	opCall // run call: a read, or Loaded, that a caller waits for
)

type indexOp struct {
	kind       indexOpKind
	key, value string
	// prepared is opExpect's work from the node, or an opPut's own from
	// prepareBatch.
	prepared any
	budget   int
	seq      uint64 // opWork: the changes queued before it
	call     func()
}

// size is what op counts for in the queue's bytes: the key and value it
// carries.
func (op *indexOp) size() int64 { return int64(len(op.key) + len(op.value)) }

var (
	_ core.Indexes       = (*indexWorker)(nil)
	_ core.IndexBacklog  = (*indexWorker)(nil)
	_ core.LaterSearcher = (*indexWorker)(nil)
)

// indexAnalysersMax bounds the goroutines that analyse a batch's values
// beside the worker. There are as many as the cores that neither the event
// loop nor the worker keeps busy (GOMAXPROCS − 2), so none on two cores:
// there, one beside the worker measured 0.97 × the indexed writes a second
// of the worker alone (docs/PERFORMANCE.md, Indexes, sixteenth session),
// the loop, the worker and the clients keeping both cores busy already.
// On more cores they take the analysis (half of an indexed write's work on
// the worker) off the worker, as the parked event loops of the former
// default did (realnet's Host.prepare); only two cores were measured.
const indexAnalysersMax = 7

// newIndexWorker starts the worker for idx; close stops it.
func newIndexWorker(idx core.Indexes) *indexWorker {
	w := &indexWorker{
		idx:       idx,
		queue:     make([]indexOp, indexQueueOpsMax),
		wake:      make(chan struct{}, 1),
		exited:    make(chan struct{}),
		analysers: max(0, min(runtime.GOMAXPROCS(0)-2, indexAnalysersMax)),
	}
	w.room = sync.NewCond(&w.mu)
	go w.run()
	return w
}

func (w *indexWorker) run() {
	defer close(w.exited)
	batch := make([]indexOp, 0, indexBatchOpsMax)
	for range w.wake {
		for {
			w.mu.Lock()
			if w.n == 0 {
				w.busy = false
				stopped := w.stopped
				w.mu.Unlock()
				if stopped {
					return
				}
				break
			}
			batch = w.take(batch[:0])
			w.busy = true
			w.room.Broadcast()
			w.mu.Unlock()
			w.prepareBatch(batch)
			for i := range batch {
				w.do(&batch[i])
				batch[i] = indexOp{} // drop the strings and the prepared work
			}
			w.indexBytes.Store(w.idx.Bytes())
		}
	}
}

// take moves up to indexBatchOpsMax calls from the queue's head to batch,
// and no more once they carry indexBatchBytesMax bytes. The caller holds
// mu.
func (w *indexWorker) take(batch []indexOp) []indexOp {
	bytes := int64(0)
	for w.n > 0 && len(batch) < indexBatchOpsMax && bytes < indexBatchBytesMax {
		op := &w.queue[w.head]
		bytes += op.size()
		w.bytes -= op.size()
		batch = append(batch, *op)
		*op = indexOp{}
		w.head = (w.head + 1) % len(w.queue)
		w.n--
	}
	if w.n == 0 && w.bytes != 0 {
		panic("node: the index worker's empty queue holds bytes")
	}
	return batch
}

// prepareBatch analyses the values of batch's Puts that nobody prepared
// (those the node applies under a nil Expect: every write where one event
// loop reads the requests, see realnet's Host.prepare), on the worker and
// up to w.analysers goroutines beside it, and keeps each Put's work in its
// op.prepared for do. The analysis (Indexes.Prepare) is safe for
// concurrent use and is what the Put would do itself; run here, the
// worker's share of a write is the indexes' own Put, and the analyses of
// a batch run in parallel where the machine has the cores. With one
// unprepared value, or no core to spare (no analysers), the Puts analyse
// their own.
func (w *indexWorker) prepareBatch(batch []indexOp) {
	if w.analysers < 1 {
		return
	}
	todo := w.unprepared[:0]
	expect := w.expect
	for i := range batch {
		switch op := &batch[i]; op.kind {
		case opExpect:
			expect = op.prepared
		case opPut:
			if expect == nil {
				todo = append(todo, i)
			}
		}
	}
	w.unprepared = todo
	if len(todo) < 2 {
		return
	}
	var next atomic.Int64
	analyse := func() {
		for {
			k := int(next.Add(1)) - 1
			if k >= len(todo) {
				return
			}
			op := &batch[todo[k]]
			value := op.value
			req := core.Request{Op: core.OpSet, Key: op.key, Value: &value}
			w.idx.Prepare(&req)
			op.prepared = req.Prepared
		}
	}
	var wg sync.WaitGroup
	for range min(w.analysers, len(todo)-1) {
		wg.Go(analyse)
	}
	analyse()
	wg.Wait()
}

func (w *indexWorker) do(op *indexOp) {
	switch op.kind {
	case opPut:
		if op.prepared != nil {
			// Analysed by prepareBatch: the Put uses that work, and the
			// node's own expectation (none) holds again after it.
			w.idx.Expect(op.prepared)
			w.idx.Put(op.key, op.value)
			w.idx.Expect(w.expect)
			return
		}
		w.idx.Put(op.key, op.value)
	case opRemove:
		w.idx.Remove(op.key)
	case opExpect:
		w.expect = op.prepared
		w.idx.Expect(op.prepared)
	case opReset:
		w.idx.Reset()
	case opWork:
		more := w.idx.Work(op.budget)
		w.mu.Lock()
		if w.changes == op.seq {
			w.more = more
		}
		w.mu.Unlock()
	case opCall:
		// Counted first: a caller that waited (Loaded, a status) reads
		// Bytes next, and the batch's own count comes only after its last
		// call. A node restarted with its rebuild Loaded read a count from
		// before the rebuild's last batch, and took a write past
		// --max-index-bytes (a CI run under load).
		w.indexBytes.Store(w.idx.Bytes())
		op.call()
	default:
		panic("node: unknown index worker op")
	}
}

// signal wakes the worker unless a wake-up is already pending.
func (w *indexWorker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// post queues op, waiting while the queue is full.
func (w *indexWorker) post(op indexOp) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		panic("node: an index call after the index worker stopped")
	}
	size := op.size()
	for w.n == len(w.queue) || size > 0 && w.n > 0 && w.bytes+size > indexQueueBytesMax {
		w.waiting++
		w.room.Wait()
		w.waiting--
	}
	switch op.kind {
	case opWork:
		op.seq = w.changes
	case opCall:
	default:
		w.changes++
		w.more = true
	}
	w.queue[(w.head+w.n)%len(w.queue)] = op
	w.n++
	w.bytes += size
	if !w.busy {
		w.signal()
	}
}

// wait runs f on the worker after every call queued before it, and
// returns once it has.
func (w *indexWorker) wait(f func()) {
	done := make(chan struct{})
	w.post(indexOp{kind: opCall, call: func() { f(); close(done) }})
	<-done
}

// close stops the worker once it has run what is queued. The node must
// make no call after it.
func (w *indexWorker) close() {
	w.mu.Lock()
	w.stopped = true
	w.signal()
	w.mu.Unlock()
	<-w.exited
}

func (w *indexWorker) Put(key, value string) { w.post(indexOp{kind: opPut, key: key, value: value}) }
func (w *indexWorker) Remove(key string)     { w.post(indexOp{kind: opRemove, key: key}) }
func (w *indexWorker) Reset()                { w.post(indexOp{kind: opReset}) }
func (w *indexWorker) Expect(prepared any)   { w.post(indexOp{kind: opExpect, prepared: prepared}) }

// Loaded waits for the rebuild it ends, as the rebuild did before the
// worker: a small store's indexes are built before the node serves, and
// the log line that says a rebuild is done is true. (A large store's
// rebuild hands its values over in steps that keep the queue short, see
// Backlog, so this wait is brief.)
func (w *indexWorker) Loaded() { w.wait(w.idx.Loaded) }

// Backlog is the calls waiting for the worker and the bytes they carry
// (core.IndexBacklog): a rebuild in steps hands over only what keeps it
// short, so that neither the node's writes nor its loop wait behind the
// rebuild.
func (w *indexWorker) Backlog() (calls int, bytes int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, w.bytes
}

// Prepare reads only the request and the indexes' immutable parts, so the
// goroutines that read requests call it directly, in parallel, where there
// are several (realnet's Host.prepare); a Put whose value nobody prepared
// analyses it here, on the worker.
func (w *indexWorker) Prepare(req *core.Request) { w.idx.Prepare(req) }

// SearchLater (core.LaterSearcher) runs the search on the worker after
// every call queued before it, as Search does, without the node waiting:
// the answer reaches the node through postNode, in a later turn. A search
// that the node waited for held its loop, and every client's request
// with it, behind the index updates queued before it (up to 4,096, some
// 0.3 s of indexing under a write load) and the search itself. Without
// postNode (no host yet), it is Search.
func (w *indexWorker) SearchLater(req *core.Request, done func(core.Response)) {
	post := w.postNode
	if post == nil {
		done(w.Search(req))
		return
	}
	r := *req // the node's request must not be read after the call
	w.post(indexOp{kind: opCall, call: func() {
		resp := w.idx.Search(&r)
		// Not on the worker: the node may be waiting for the worker
		// (a full queue) while post waits for room in the node's queue.
		// One goroutine a search in flight, which the host's limits on
		// requests in flight bound.
		go post(func() { done(resp) })
	}})
}

func (w *indexWorker) Search(req *core.Request) (r core.Response) {
	w.wait(func() { r = w.idx.Search(req) })
	return r
}

// Status is the indexes' status, with the calls that were queued when it
// was asked: how far the worker was behind the node.
// Bytes answers at once with the worker's last count (see indexBytes).
func (w *indexWorker) Bytes() int64 { return w.indexBytes.Load() }

func (w *indexWorker) Status() (st core.IndexStatus) {
	queued := w.queueLen()
	w.wait(func() { st = w.idx.Status() })
	st.Queued = queued
	return st
}

// queueLen is the calls waiting for the worker.
func (w *indexWorker) queueLen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Work queues budget units of work (none for 0) and answers whether any
// is left as far as the worker knows: its last Work's answer, or true if a
// change was queued since. The node's pacer asks after every turn with
// writes and ticks while the answer is true; the answer is one tick late
// at worst, which costs an idle node one more tick.
func (w *indexWorker) Work(budget int) bool {
	if budget > 0 {
		w.post(indexOp{kind: opWork, budget: budget})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.more
}
