package main

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"dkv/core"
	"dkv/internal/indexes"
	"dkv/vecidx"

	"pgregory.net/rapid"
)

// callLog is a core.Indexes that writes down the calls it gets. Its reads
// answer with the number of calls before them, so a test sees what a read
// saw. Put waits on gate when it is set.
type callLog struct {
	mu       sync.Mutex
	calls    []string
	gate     chan struct{}
	workLeft int
	puts     int
}

// add writes c down and returns the number of calls before it.
func (l *callLog) add(c string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
	return len(l.calls) - 1
}

func (l *callLog) Put(key, value string) {
	if l.gate != nil {
		<-l.gate
	}
	l.add("put " + key + "=" + value)
	l.mu.Lock()
	l.workLeft++
	l.puts++
	l.mu.Unlock()
}
func (l *callLog) Remove(key string) { l.add("remove " + key) }
func (l *callLog) Reset()            { l.add("reset") }
func (l *callLog) Loaded()           { l.add("loaded") }
func (l *callLog) Expect(p any)      { l.add(fmt.Sprintf("expect %v", p)) }
func (l *callLog) Prepare(req *core.Request) {
	req.Prepared = "prepared " + req.Key
}
func (l *callLog) Work(budget int) bool {
	if budget > 0 {
		l.add(fmt.Sprintf("work %d", budget))
		l.workLeft = max(0, l.workLeft-budget)
	}
	return l.workLeft > 0
}
func (l *callLog) Search(req *core.Request) core.Response {
	return core.Response{OK: true, Hits: make([]core.Hit, l.add("search "+req.Query))}
}
func (l *callLog) Status() core.IndexStatus {
	return core.IndexStatus{Docs: l.add("status")}
}

// Bytes counts 100 a Put.
func (l *callLog) Bytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return 100 * int64(l.puts)
}

// gatedWorker starts a worker over a callLog whose Puts wait at a gate,
// and hands it a first Put, which it takes and waits in: the calls queued
// next stay queued until the test closes l.gate.
func gatedWorker(t *testing.T) (*callLog, *indexWorker) {
	t.Helper()
	l := &callLog{gate: make(chan struct{})}
	w := newIndexWorker(l)
	t.Cleanup(w.close)
	w.Put("first", "")
	waitQueued(w, 0)
	return l, w
}

// waitQueued waits until the worker's queue holds n calls.
func waitQueued(w *indexWorker, n int) {
	for w.queueLen() != n {
		time.Sleep(time.Millisecond)
	}
}

func (l *callLog) log() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// The worker hands the indexes the node's calls in the node's order, and a
// read answers only after every call before it ran.
func TestIndexWorkerKeepsTheNodesOrder(t *testing.T) {
	l := &callLog{}
	w := newIndexWorker(l)
	defer w.close()
	var want []string
	for i := range 1000 {
		k := fmt.Sprintf("k%d", i%37)
		switch i % 7 {
		case 0:
			w.Expect(i)
			want = append(want, fmt.Sprintf("expect %d", i))
		case 1:
			w.Remove(k)
			want = append(want, "remove "+k)
		case 2:
			w.Work(2)
			want = append(want, "work 2")
		case 3:
			if i%3 == 0 {
				r := w.Search(&core.Request{Query: k})
				want = append(want, "search "+k)
				if len(r.Hits) != len(want)-1 {
					t.Fatalf("search %d saw %d calls before it, want %d", i, len(r.Hits), len(want)-1)
				}
				continue
			}
			st := w.Status()
			want = append(want, "status")
			if st.Docs != len(want)-1 {
				t.Fatalf("status %d saw %d calls before it, want %d", i, st.Docs, len(want)-1)
			}
		default:
			w.Put(k, fmt.Sprint(i))
			want = append(want, "put "+k+"="+fmt.Sprint(i))
		}
	}
	w.Reset()
	w.Put("a", "b")
	w.Loaded() // waits
	want = append(want, "reset", "put a=b", "loaded")
	if got := l.log(); !reflect.DeepEqual(got, want) {
		t.Fatalf("the indexes got %d calls, %q… ; want %d", len(got), got[:min(len(got), 5)], len(want))
	}
	// Prepare runs on the caller's goroutine, not through the queue.
	req := &core.Request{Key: "x"}
	w.Prepare(req)
	if req.Prepared != "prepared x" {
		t.Fatalf("Prepare left %v", req.Prepared)
	}
}

// Work(0) answers without waiting: true once a change is queued, and
// false once a Work the worker ran found nothing left and nothing changed
// after it.
func TestIndexWorkerWorkAnswer(t *testing.T) {
	l := &callLog{}
	w := newIndexWorker(l)
	defer w.close()
	if w.Work(0) {
		t.Fatal("Work(0) true before any change")
	}
	w.Put("a", "1")
	w.Put("b", "2")
	if !w.Work(0) {
		t.Fatal("Work(0) false after a Put")
	}
	w.Work(1)
	w.Status() // the Work above has run
	if !w.Work(0) {
		t.Fatal("Work(0) false with a unit of work left")
	}
	w.Work(1)
	w.Status()
	if w.Work(0) {
		t.Fatal("Work(0) true after a Work that left none")
	}
	// A change queued behind a Work keeps the answer true whatever that
	// Work finds.
	w.Work(1)
	w.Remove("a")
	w.Status()
	if !w.Work(0) {
		t.Fatal("Work(0) false after a Remove queued behind a Work")
	}
}

// The queue holds at most indexQueueOpsMax calls: past it the node waits,
// and goes on once the worker takes them.
func TestIndexWorkerQueueBound(t *testing.T) {
	l, w := gatedWorker(t)
	posted := make(chan int, 1)
	go func() {
		for i := range indexQueueOpsMax + 1 {
			w.Remove(fmt.Sprint(i))
		}
		posted <- indexQueueOpsMax + 1
	}()
	for w.queueLen() < indexQueueOpsMax {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-posted:
		t.Fatalf("%d calls queued past the bound of %d", indexQueueOpsMax+1, indexQueueOpsMax)
	case <-time.After(50 * time.Millisecond):
	}
	if n := w.queueLen(); n != indexQueueOpsMax {
		t.Fatalf("queue holds %d calls, want the bound %d", n, indexQueueOpsMax)
	}
	// A status asked now says how many calls wait, and answers once the
	// worker has run them.
	status := make(chan core.IndexStatus)
	go func() { status <- w.Status() }()
	for !w.blockedPosters() {
		time.Sleep(time.Millisecond)
	}
	close(l.gate)
	<-posted
	st := <-status
	if st.Queued != indexQueueOpsMax {
		t.Fatalf("status: %d calls queued, want %d", st.Queued, indexQueueOpsMax)
	}
	// Before it: the first Put and every Remove but the one that waited
	// beside it (which of the two got in first is up to the scheduler).
	if st.Docs != indexQueueOpsMax+1 && st.Docs != indexQueueOpsMax+2 {
		t.Fatalf("the status saw %d calls before it, want %d or %d", st.Docs, indexQueueOpsMax+1, indexQueueOpsMax+2)
	}
}

// Once a wait on the worker returns (Loaded, a status), Bytes counts every
// call queued before it, though the worker counts at the end of a batch and
// the wait's call may not be the batch's last: a node restarted with its
// rebuild Loaded serves at once, and its first write's check against
// --max-index-bytes read the count from before the rebuild's last batch.
func TestIndexWorkerBytesCountedBeforeAWaitReturns(t *testing.T) {
	l, w := gatedWorker(t)
	// Behind it, in the worker's next batch: three puts, a wait, and a
	// call that holds the batch open until the test has read Bytes.
	w.Put("second", "")
	w.Put("third", "")
	w.Put("fourth", "")
	seen := make(chan int64, 1)
	go func() {
		w.wait(func() {})
		seen <- w.Bytes()
	}()
	waitQueued(w, 4)
	hold := make(chan struct{})
	go w.wait(func() { <-hold })
	waitQueued(w, 5)
	close(l.gate)
	got := <-seen
	close(hold)
	if got != 400 {
		t.Fatalf("after a wait behind four puts, Bytes says %d, want 400", got)
	}
}

// The queue holds at most indexQueueBytesMax bytes of keys and values too:
// a call that would take it past them waits, as one past indexQueueOpsMax
// does, and a rebuild sees the bytes in Backlog. Counted in calls alone,
// 1,024 values of 100 KB queued were 2 s of indexing, which a status op
// waited for with the node's loop. A value over the bound still gets into
// an empty queue, and the worker takes at most indexBatchBytesMax bytes at
// a time (at least one call).
func TestIndexWorkerQueueBytesBound(t *testing.T) {
	l := &callLog{gate: make(chan struct{})}
	w := newIndexWorker(l)
	opened := false
	defer func() {
		if !opened { // a failure: let the worker go on, and stop it
			close(l.gate)
		}
		w.close()
	}()
	huge := strings.Repeat("v", indexQueueBytesMax+1)
	w.Put("h", huge) // into the empty queue; the worker takes it and waits at the gate
	for w.queueLen() != 0 {
		time.Sleep(time.Millisecond)
	}
	value := strings.Repeat("v", 512<<10)
	const fit = indexQueueBytesMax / (512<<10 + 1) // keys of one byte
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		for i := range fit + 1 {
			w.Put(fmt.Sprint(i), value)
		}
	}()
	for w.queueLen() < fit {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-posted:
		t.Fatalf("%d values of 512 KiB queued past the bound of %d bytes", fit+1, indexQueueBytesMax)
	case <-time.After(50 * time.Millisecond):
	}
	if calls, bytes := w.Backlog(); calls != fit || bytes != fit*(512<<10+1) {
		t.Fatalf("backlog: %d calls of %d bytes, want %d of %d", calls, bytes, fit, fit*(512<<10+1))
	}
	// Each batch takes one of these values: the queue shrinks by one at
	// each Put the worker runs.
	for i := range fit {
		l.gate <- struct{}{}
		if n := w.queueLen(); n < fit-1-i {
			t.Fatalf("before put %d the worker took %d values of 512 KiB at once", i, fit-n)
		}
	}
	close(l.gate)
	opened = true
	<-posted
	w.Status() // after every Put
	if calls, bytes := w.Backlog(); calls != 0 || bytes != 0 {
		t.Fatalf("backlog of a worker that ran everything: %d calls of %d bytes", calls, bytes)
	}
}

// The worker takes at most indexBatchOpsMax calls from the queue at a time,
// so that a node waiting for room in a full queue gets it as each batch is
// taken, not once the worker has run all that was queued.
func TestIndexWorkerTakesBoundedBatches(t *testing.T) {
	l := &callLog{gate: make(chan struct{})}
	w := newIndexWorker(l)
	const puts = indexQueueOpsMax + 2*indexBatchOpsMax
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		for i := range puts {
			w.Put(fmt.Sprint(i), "v")
		}
	}()
	opened := false
	defer func() {
		if !opened {
			close(l.gate)
		}
		<-posted
		w.close()
	}()
	// The worker waits at the gate in the first Put of its first batch
	// while the queue fills behind it.
	for w.queueLen() < indexQueueOpsMax {
		select {
		case <-posted:
			t.Fatalf("all %d puts were queued and the queue never filled: the worker took more than %d at once", puts, puts-indexQueueOpsMax)
		default:
			time.Sleep(time.Millisecond)
		}
	}
	last := w.queueLen()
	for i := range puts {
		l.gate <- struct{}{} // the worker is in a Put: its batch is taken
		n := w.queueLen()
		if last-n > indexBatchOpsMax {
			close(l.gate)
			opened = true
			t.Fatalf("before put %d the worker took %d calls from the queue at once, past the bound of %d", i, last-n, indexBatchOpsMax)
		}
		last = n
	}
}

// hold keeps the worker busy until the returned release is called, so that
// the calls posted meanwhile wait and are taken together.
func hold(w *indexWorker) (release func()) {
	gate, held := make(chan struct{}), make(chan struct{})
	go w.wait(func() { close(held); <-gate })
	<-held
	return func() { close(gate) }
}

// Puts that nobody prepared (under a nil Expect) and that come in one
// batch have their values analysed by the worker and its analysers, and
// each runs with its own work expected, then the node's nil again; a Put
// under the node's own Expect keeps it.
func TestIndexWorkerPreparesUnpreparedPuts(t *testing.T) {
	l := &callLog{}
	w := newIndexWorker(l)
	w.analysers = 1 // on one processor too
	defer w.close()
	release := hold(w)
	w.Put("a", "1")
	w.Put("b", "2")
	w.Expect("node's")
	w.Put("c", "3")
	w.Expect(nil)
	w.Put("d", "4")
	release()
	w.Status()
	want := []string{
		"expect prepared a", "put a=1", "expect <nil>",
		"expect prepared b", "put b=2", "expect <nil>",
		"expect node's", "put c=3", "expect <nil>",
		"expect prepared d", "put d=4", "expect <nil>",
		"status",
	}
	if got := l.log(); !reflect.DeepEqual(got, want) {
		t.Fatalf("the indexes got %q, want %q", got, want)
	}
}

// close runs what is queued, ends the worker's goroutine, and a call after
// it is a bug that panics with a clear message.
func TestIndexWorkerClose(t *testing.T) {
	l := &callLog{}
	w := newIndexWorker(l)
	for i := range 100 {
		w.Put(fmt.Sprint(i), "v")
	}
	w.close()
	puts := 0
	for _, c := range l.log() {
		if strings.HasPrefix(c, "put ") {
			puts++
		}
	}
	if puts != 100 {
		t.Fatalf("close ran %d of 100 queued puts", puts)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "after the index worker stopped") {
			t.Fatalf("a call after close: %v", r)
		}
	}()
	w.Put("late", "v")
}

// The real indexes behind the worker answer every search and status as the
// same indexes called directly, for any sequence of a node's calls.
func TestIndexWorkerMatchesDirectIndexes(t *testing.T) {
	m, err := vecidx.Default()
	if err != nil {
		t.Fatal(err)
	}
	model := indexes.CodedModel(m)
	words := []string{"river", "bank", "money", "water", "boat", "loan", "fish", "stream", "the", "of", "deposit", "shore"}
	rapid.Check(t, func(t *rapid.T) {
		cfg := indexes.DefaultConfig(model, "built-in")
		cfg.Vec.ExactBelow = 4 // graphs from a few values on
		cfg.Vec.SegmentVectors = 8
		direct := indexes.New(cfg)
		w := newIndexWorker(indexes.New(cfg))
		w.analysers = 1 // bursts below are analysed in parallel on any machine
		defer w.close()
		text := func(t *rapid.T) string {
			n := rapid.IntRange(0, 8).Draw(t, "words")
			ws := make([]string, n)
			for i := range ws {
				ws[i] = rapid.SampledFrom(words).Draw(t, "word")
			}
			return strings.Join(ws, " ")
		}
		key := func(t *rapid.T) string { return fmt.Sprintf("k%d", rapid.IntRange(0, 9).Draw(t, "key")) }
		for range rapid.IntRange(1, 60).Draw(t, "calls") {
			switch rapid.IntRange(0, 7).Draw(t, "call") {
			case 7:
				// A burst of writes the worker takes in one batch and
				// analyses beside its analysers (prepareBatch).
				release := hold(w)
				for range rapid.IntRange(2, 12).Draw(t, "burst") {
					k, v := key(t), text(t)
					direct.Put(k, v)
					w.Put(k, v)
				}
				release()
			case 0, 1:
				k, v := key(t), text(t)
				direct.Put(k, v)
				w.Put(k, v)
			case 2:
				// A write with prepared work, as a node applies one (each
				// Set takes its own: a Put owns the prepared vector).
				k, v := key(t), text(t)
				req, wreq := &core.Request{Op: core.OpSet, Key: k, Value: &v}, &core.Request{Op: core.OpSet, Key: k, Value: &v}
				direct.Prepare(req)
				w.Prepare(wreq)
				direct.Expect(req.Prepared)
				direct.Put(k, v)
				direct.Expect(nil)
				w.Expect(wreq.Prepared)
				w.Put(k, v)
				w.Expect(nil)
			case 3:
				k := key(t)
				direct.Remove(k)
				w.Remove(k)
			case 4:
				b := rapid.IntRange(1, 3).Draw(t, "budget")
				direct.Work(b)
				w.Work(b)
			case 5:
				q := rapid.SampledFrom(words).Draw(t, "query")
				for _, req := range []core.Request{
					{Op: core.OpSearch, Query: q, Mode: core.SearchModeAny},
					{Op: core.OpSearchSimilar, Query: q, TopK: 5},
				} {
					a, b := req, req
					if got, want := w.Search(&a), direct.Search(&b); !reflect.DeepEqual(got, want) {
						t.Fatalf("%s %q through the worker: %+v, directly: %+v", req.Op, q, got, want)
					}
				}
			case 6:
				got, want := w.Status(), direct.Status()
				if got.Queued < 0 || got.Queued > indexQueueOpsMax {
					t.Fatalf("status through the worker: %d queued", got.Queued)
				}
				got.Queued = 0 // the queue when asked: the direct indexes have none
				if got != want {
					t.Fatalf("status through the worker: %+v, directly: %+v", got, want)
				}
			}
		}
	})
}

// blockedPosters reports whether a caller waits for room in the full queue
// besides the test's poster: the status of TestIndexWorkerQueueBound.
func (w *indexWorker) blockedPosters() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.waiting >= 2
}

// SearchLater returns at once, even while the worker is busy; the search
// sees the calls queued before it and none after, and its answer reaches
// the node through postNode, never on the worker's goroutine (which the
// node may be waiting for).
func TestIndexWorkerSearchLater(t *testing.T) {
	l := &callLog{}
	w := newIndexWorker(l)
	defer w.close()
	posted := make(chan func(), 1)
	w.postNode = func(f func()) bool { posted <- f; return true }
	release := hold(w)
	w.Put("a", "1")
	req := &core.Request{Op: core.OpSearch, Query: "q"}
	var answer core.Response
	w.SearchLater(req, func(r core.Response) { answer = r })
	req.Query = "changed after the call" // the worker searches its own copy
	w.Put("b", "2")
	select {
	case <-posted:
		t.Fatal("an answer posted while the worker was held")
	default:
	}
	release()
	(<-posted)()
	if got := l.log(); !answer.OK || len(answer.Hits) != 1 || got[1] != "search q" {
		t.Fatalf("the search saw %d calls before it (want 1, put a); the log: %q", len(answer.Hits), got)
	}
	w.wait(func() {})
	if got := l.log(); got[len(got)-1] != "put b=2" {
		t.Fatalf("put b did not follow the search: %q", got)
	}
}
