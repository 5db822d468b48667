package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dkv/checks"
	"dkv/client"
)

// The simulator checks the node logic; this checks the rest of the path a
// real write takes, with the same checkers: the real server process (its
// host, which runs the node on whichever goroutine queued the work, its
// connections, its disk) and the real client (which pipelines many callers
// over one connection and passes the read between them). Clients run a
// random mix of ops on a few keys, some with deadlines so short that they
// give up mid-flight; the server is SIGKILLed twice under that load and
// restarted; then every key is read. The history must be linearizable per
// key, every acknowledged write must survive, and no BulkSet may be seen in
// part.
func TestRealServerHistoryIsLinearizable(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	// Small segments and snapshots, so that rolls and snapshots happen
	// under the load too.
	args := []string{"--port", strconv.Itoa(port), "--segment-bytes", "16384", "--snapshot-log-bytes", "65536"}
	s := start(t, dir, args...)
	addr := s.addr

	origin := time.Now()
	now := func() int64 { return int64(time.Since(origin)) }
	var mu sync.Mutex
	var h checks.History
	record := func(op checks.Op) {
		mu.Lock()
		h.Add(op)
		mu.Unlock()
	}

	// Four callers share one client, to put the pipelining and the passing
	// of the read role through this too; four have one each.
	shared, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	const workers, keys = 8, 6
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range workers {
		c := shared
		if w >= 4 {
			own, err := client.Dial(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer own.Close()
			c = own
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for req := 0; !stop.Load(); req++ {
				runOp(c, r, w, req, keys, now, record)
			}
		}()
	}

	for range 2 {
		time.Sleep(time.Second)
		kill(s)
		s = start(t, dir, args...)
	}
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()

	// The final reads, after one more crash: durability is judged on them.
	kill(s)
	s = start(t, dir, args...)
	c := dial(t, s.addr)
	for k := range keys {
		key := fmt.Sprint("k", k)
		op := checks.Op{Client: workers, Req: k, Kind: checks.KindGet, Key: key, Final: true, Call: now()}
		v, err := c.Get(context.Background(), key)
		op.Return = now()
		switch {
		case err == nil:
			op.Outcome, op.Found, op.Value = checks.OK, true, v
		case errors.Is(err, client.ErrNotFound):
			op.Outcome = checks.OK
		default:
			t.Fatalf("final read of %s: %v", key, err)
		}
		record(op)
	}

	ok, failed, unknown := h.Count()
	t.Logf("%d ops: %d ok, %d failed, %d unknown outcome", len(h.Ops), ok, failed, unknown)
	if ok < 500 || unknown == 0 {
		t.Fatalf("%d ok and %d unknown: the test needs many of the first and some of the second", ok, unknown)
	}
	lin, findings := checks.Verdict(&h, checks.LinOptions{Timeout: time.Minute, ReportDir: t.TempDir()})
	t.Logf("linearizability: %d partitions, %d ops checked in %v", lin.Partitions, lin.Checked, lin.Elapsed.Round(time.Millisecond))
	for _, f := range findings {
		t.Error(f)
	}
}

// runOp makes one random call and records it. Writes carry values unique to
// the call, so that a read names the write it saw.
func runOp(c *client.KVClient, r *rand.Rand, w, req, keys int, now func() int64, record func(checks.Op)) {
	timeout := 5 * time.Second
	if r.IntN(20) == 0 {
		// Gives up before the answer comes, often while it is in flight.
		timeout = time.Duration(100+r.IntN(2000)) * time.Microsecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	key := func() string { return fmt.Sprint("k", r.IntN(keys)) }
	value := fmt.Sprintf("c%d.%d", w, req)
	op := checks.Op{Client: w, Req: req}
	var err error
	switch p := r.IntN(100); {
	case p < 35:
		op.Kind, op.Key = checks.KindGet, key()
		op.Call = now()
		op.Value, err = c.Get(ctx, op.Key)
		op.Return = now()
		switch {
		case err == nil:
			op.Outcome, op.Found = checks.OK, true
		case errors.Is(err, client.ErrNotFound):
			op.Outcome, op.Value = checks.OK, ""
		default:
			return // a read that failed observed nothing
		}
		record(op)
		return
	case p < 70:
		op.Kind, op.Key, op.Value = checks.KindSet, key(), value
		op.Call = now()
		err = c.Set(ctx, op.Key, op.Value)
	case p < 80:
		op.Kind, op.Key = checks.KindDelete, key()
		op.Call = now()
		err = c.Delete(ctx, op.Key)
	default:
		op.Kind = checks.KindBulkSet
		for i := range 2 + r.IntN(3) {
			op.Items = append(op.Items, client.KV{Key: key(), Value: fmt.Sprintf("%s.%d", value, i)})
		}
		op.Call = now()
		err = c.BulkSet(ctx, op.Items)
	}
	op.Return = now()
	switch {
	case err == nil:
		op.Outcome = checks.OK
	case errors.Is(err, client.ErrUnknownOutcome):
		op.Outcome = checks.Unknown
	default:
		// The client promises that any other error means the write was
		// not applied; the checkers hold it to that.
		op.Outcome, op.Note = checks.Failed, err.Error()
	}
	record(op)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
