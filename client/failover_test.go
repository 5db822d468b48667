package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"dkv/internal/nodeproc"
)

// Incrs from many goroutines while the leader is killed (SIGKILL, with
// writes in flight on its connections): the cluster client resends each
// in its session, so every value an Incr returns is its own (no incr
// answered twice with one value, none applied twice), and the counter
// ends between the incrs answered and those plus the ones of unknown
// outcome.
func TestClusterIncrsAcrossLeaderKill(t *testing.T) {
	incrsAcrossFault(t, func(cl *nodeproc.Cluster, leader int) { cl.Kill(leader) })
}

// The same with the leader stopped (SIGSTOP) for longer than an election,
// then let go: the incrs it held in its socket, which the client gave up
// on and sent to the new leader, reach it late, and are not applied again.
func TestClusterIncrsAcrossLeaderPause(t *testing.T) {
	incrsAcrossFault(t, func(cl *nodeproc.Cluster, leader int) {
		p := cl.Process(leader)
		p.Signal(syscall.SIGSTOP)
		time.Sleep(3 * time.Second)
		p.Signal(syscall.SIGCONT)
	})
}

func incrsAcrossFault(t *testing.T, fault func(cl *nodeproc.Cluster, leader int)) {
	cl := startCluster(t)
	c := dialClusterT(t, cl.Addrs(), WithRequestTimeout(20*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.Incr(ctx, "n", 0); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		seen    = map[int64]bool{}
		ok      int
		unknown int
		wg      sync.WaitGroup
	)
	killed := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-killed:
					if i > 60 {
						return
					}
				default:
				}
				n, err := c.Incr(ctx, "n", 1)
				mu.Lock()
				switch {
				case err == nil:
					if seen[n] {
						t.Errorf("two incrs answered %d", n)
					}
					seen[n] = true
					ok++
				case errors.Is(err, ErrUnknownOutcome):
					unknown++
				default:
					t.Errorf("incr: %v", err)
				}
				mu.Unlock()
				if err != nil && !errors.Is(err, ErrUnknownOutcome) {
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	leader, _, err := cl.WaitLeader(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fault(cl, leader)
	close(killed)
	wg.Wait()
	got, err := c.Incr(ctx, "n", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d incrs answered, %d of unknown outcome, counter %d", ok, unknown, got)
	if got < int64(ok) || got > int64(ok+unknown) {
		t.Fatalf("counter %d after %d incrs answered and %d unknown", got, ok, unknown)
	}
}

// A node at its --max-conns answers a new connection's first request with
// too_many_connections, and closes it: the node read nothing of it, as
// if it had refused the connection. A ClusterKVClient's call goes on to
// another node, as from a node that refuses connections (found by review:
// the call ended at once with the refusal, though the other nodes would
// serve it; a write came back that way too).
func TestClusterNodeAtItsConnectionLimit(t *testing.T) {
	cl := startCluster(t, "--max-conns", "1")
	leader, _, err := cl.WaitLeader(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Take a follower's one connection, and keep it; the client tries
	// that follower first.
	full := (leader + 1) % cl.Size()
	hold, err := net.Dial("tcp", cl.Addr(full))
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if _, err := hold.Write([]byte("{\"op\":\"ping\"}\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(hold).ReadString('\n'); err != nil {
		t.Fatalf("the held connection: %v", err)
	}
	addrs := []string{cl.Addr(full)}
	for i := range cl.Size() {
		if i != full {
			addrs = append(addrs, cl.Addr(i))
		}
	}
	for _, op := range []string{"ping", "set"} {
		t.Run(op, func(t *testing.T) {
			c := dialClusterT(t, addrs)
			ctx := ctxT(t)
			if op == "ping" {
				err = c.Ping(ctx)
			} else {
				err = c.Set(ctx, "k", "v")
			}
			if err != nil {
				t.Fatalf("%s with node %d at its connection limit: %v", op, full, err)
			}
		})
	}
}

// Writes in flight on a KVClient when its server is killed (SIGKILL):
// each that fails without matching ErrUnknownOutcome must not have been
// applied, and each that succeeded must be there after the restart. The
// server's log says which: the key holds the last write answered, or the
// one of unknown outcome after it.
func TestKVClientWritesAcrossServerKill(t *testing.T) {
	bin, err := nodeproc.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := nodeproc.Start(bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	c := dialT(t, p.Addr, WithRetries(0))
	type fate struct {
		ok      int  // the last value answered
		last    int  // the value of the write that failed
		unknown bool // whether its outcome is unknown
	}
	fates := make([]fate, 16)
	var wg sync.WaitGroup
	for g := range fates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for v := 1; ; v++ {
				err := c.Set(ctx, fmt.Sprint("k", g), fmt.Sprint(v))
				if err == nil {
					fates[g].ok = v
					continue
				}
				fates[g].last, fates[g].unknown = v, errors.Is(err, ErrUnknownOutcome)
				return
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	p.Kill()
	wg.Wait()
	p, err = nodeproc.StartOnPort(bin, dir, p.Port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	ctx := ctxT(t)
	certain := 0
	for g, f := range fates {
		v, err := c.Get(ctx, fmt.Sprint("k", g))
		if err != nil {
			t.Fatalf("k%d after the restart: %v", g, err)
		}
		switch {
		case v == fmt.Sprint(f.ok):
		case f.unknown && v == fmt.Sprint(f.last):
		default:
			t.Errorf("k%d = %s; the last write answered was %d, then %d failed (unknown outcome: %v)", g, v, f.ok, f.last, f.unknown)
		}
		if !f.unknown {
			certain++
		}
	}
	t.Logf("%d of %d writers ended with a certain failure", certain, len(fates))
}

// A server stopped (SIGSTOP) while calls are given up on, then let go:
// the answers of the abandoned calls arrive late and are dropped, each
// later call gets its own answer, and the connection is kept.
func TestKVClientAcrossAServerPause(t *testing.T) {
	p := startNode(t)
	c := dialT(t, p.Addr)
	ctx := ctxT(t)
	for i := range 20 {
		if err := c.Set(ctx, fmt.Sprint("k", i), fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	p.Signal(syscall.SIGSTOP)
	if err := p.WaitStopped(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			if _, err := c.Get(short, fmt.Sprint("k", i)); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Get from a stopped server: %v; want its deadline", err)
			}
		}()
	}
	wg.Wait()
	p.Signal(syscall.SIGCONT)
	for range 3 {
		for i := range 20 {
			if v, err := c.Get(ctx, fmt.Sprint("k", i)); err != nil || v != fmt.Sprint("v", i) {
				t.Fatalf("Get(k%d) after the pause = %q, %v", i, v, err)
			}
		}
	}
}

// A leader that stops answering (SIGSTOP: a hung process, or a host cut
// off with its connections open) is left by calls whose deadlines are
// shorter than the attempt timeout, as by longer ones (found by review:
// with deadlines of 500 ms, every write went to the stopped leader the
// client knew, timed out there, and reported an unknown outcome, for as
// long as it stayed stopped while calls kept coming, the other nodes
// having elected another long before).
func TestClusterShortDeadlinesLeaveAStoppedLeader(t *testing.T) {
	cl := startCluster(t)
	c := dialClusterT(t, cl.Addrs())
	if err := c.Set(ctxT(t), "k", "before"); err != nil {
		t.Fatal(err)
	}
	leader, _, err := cl.WaitLeader(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	stopped := cl.Addr(leader)
	if c.Leader() != stopped {
		t.Fatalf("the client believes %s leads; the cluster says %s", c.Leader(), stopped)
	}
	p := cl.Process(leader)
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Signal(syscall.SIGCONT) })
	if err := p.WaitStopped(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Writers one after another, as an application's requests come: the
	// connection to the stopped leader always has one waiting.
	const (
		deadline = 500 * time.Millisecond // under the attempt timeout, 2 s
		writers  = 4
		tries    = 30
	)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		succeeded bool
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range tries {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				err := c.Set(ctx, fmt.Sprint("k", w), fmt.Sprint("after ", i))
				cancel()
				mu.Lock()
				succeeded = succeeded || err == nil
				done := succeeded
				mu.Unlock()
				if done {
					return
				}
			}
		}()
	}
	wg.Wait()
	if !succeeded {
		t.Fatalf("%d writers made %d writes each with a deadline of %v, the leader stopped, and none succeeded; the client believes %q leads", writers, tries, deadline, c.Leader())
	}
	if c.Leader() == stopped {
		t.Fatalf("a write succeeded, and the client believes the stopped node %s leads", stopped)
	}
}
