package clustertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"dkv/checks"
	"dkv/client"
	"dkv/internal/historytest"
)

// The history check of TestClusterHistoryIsLinearizable with the leader
// paused (SIGSTOP) for longer than an election, then let go, instead of
// killed: a deposed leader that does not know it yet. Half of the callers
// give up on an attempt after 300 ms and go on at the new leader while the
// old one sleeps; the others wait for it, their calls in its socket. Once
// the new leader has taken writes, reads of every key are sent to the old
// one on a connection it accepted before it slept, so that it may read
// them when it wakes before the new leader's messages. It must answer
// none of them from its old office: no read of a value the new leader has
// since replaced (read index), no write acknowledged that the new
// leader's log does not hold (a majority of its term). With reads served
// from the leader's store at once (election.MutReadWithoutIndex's bug,
// planted by hand) the history check fails. No test paused a leader under
// a history check (review).
func TestClusterHistoryIsLinearizableAcrossLeaderPause(t *testing.T) {
	c := startCluster(t)
	waitLeader(t, c)

	rec := historytest.NewRecorder()
	// Many keys, so that each key's history, which the linearizability
	// check searches on its own, stays small: with 6 keys, 28,000 calls
	// of a fast run left the check inconclusive after its minute on a
	// busy machine.
	const workers, keys = 6, 24
	cs := startCallers(workers, func(w int) historytest.Caller {
		attempt := 5 * time.Second // waits out the pause
		if w%2 == 0 {
			attempt = 300 * time.Millisecond // goes on at the new leader
		}
		kv := dialCluster(t, c.Addrs(), client.WithAttemptTimeout(attempt), client.WithMaxAttempts(100))
		return historytest.Caller{KV: kv, Keys: keys, Rand: rand.New(rand.NewPCG(uint64(w), 17)), ID: w, Rec: rec,
			Patient: 10 * time.Second, Impatient: 3 * time.Millisecond}
	})
	progress := func(n int64) { t.Helper(); cs.progress(t, n) }

	progress(2000)
	for round := range 3 {
		lead, _ := waitLeader(t, c)
		// A connection to the leader made before it sleeps: one made
		// while it sleeps is accepted only after it wakes, by when it
		// has read the new leader's messages.
		direct, err := client.Dial(c.Addr(lead))
		if err != nil {
			t.Fatal(err)
		}
		if err := direct.Ping(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		p := c.Process(lead)
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitStopped(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		// Past an election: the other two elect a leader, which the
		// impatient callers write through.
		next, _ := waitNewLeader(t, c, lead)
		progress(300)
		// Reads sent to the old leader now, after the new one took
		// writes: they wait in its socket, and it takes them up when it
		// wakes. Answered from its store without a majority's word, they
		// would be stale; invoked after those writes returned, the
		// history check sees it. (Reads in its socket from before the
		// pause may return old values: they began before the writes.)
		stale := readsAt(t, rec, direct, 1000+100*round, keys)
		if err := p.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		stale.Wait()
		direct.Close()
		t.Logf("round %d: paused the leader, node %d, while node %d was elected; %d calls made", round, lead, next, cs.done.Load())
		progress(1000)
	}
	cs.halt()

	waitLeader(t, c)
	kv := dialCluster(t, c.Addrs())
	historytest.FinalReads(t, kv, workers, keys, waitMax, rec)
	historytest.Judge(t, rec, 3000)
}

// readsAt sends a get of every key through kv, a client of one node, each
// as a client of its own numbered from id, and records those answered in
// the history. The reads are on their way when it returns.
func readsAt(t *testing.T, rec *historytest.Recorder, kv *client.KVClient, id, keys int) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	var sent sync.WaitGroup
	for k := range keys {
		wg.Add(1)
		sent.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), waitMax)
			defer cancel()
			op := checks.Op{Client: id + k, Kind: checks.KindGet, Key: fmt.Sprint("k", k), Call: rec.Now()}
			sent.Done()
			v, err := kv.Get(ctx, op.Key)
			op.Return = rec.Now()
			switch {
			case err == nil:
				op.Outcome, op.Found, op.Value = checks.OK, true, v
			case errors.Is(err, client.ErrNotFound):
				op.Outcome = checks.OK
			default:
				return // refused (not_leader): it observed nothing
			}
			rec.Record(op)
		}()
	}
	sent.Wait()
	time.Sleep(50 * time.Millisecond) // on the wire, in the sleeping node's socket
	return &wg
}
