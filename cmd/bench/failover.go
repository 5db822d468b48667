package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"dkv/client"
	"dkv/internal/nodeproc"
)

type failoverConfig struct {
	kills    int
	writers  int
	pause    time.Duration // between one writer's Sets: the load is light
	timeout  time.Duration // gives up on one failover
	dir      string
	nodeBin  string
	flags    string
	failFast bool
	// stop is how the leader goes: "kill" (SIGKILL: it dies on the spot)
	// or "term" (SIGTERM: it hands the office over, then exits).
	stop string
}

func runFailover(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg failoverConfig
	fs.IntVar(&cfg.kills, "kills", 20, "how many times to stop the leader")
	fs.StringVar(&cfg.stop, "stop", "kill", "how: kill (SIGKILL, a crash) or term (SIGTERM, a graceful stop: the leader hands the office over first)")
	fs.IntVar(&cfg.writers, "writers", 4, "writers, each with its own cluster client")
	fs.DurationVar(&cfg.pause, "pause", 5*time.Millisecond, "pause between one writer's Sets")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "longest wait for the first acknowledged write after a kill")
	fs.StringVar(&cfg.dir, "dir", ".", "directory for the data directories; removed afterwards")
	fs.StringVar(&cfg.nodeBin, "node-bin", "", "prebuilt cmd/node binary (default: build one)")
	fs.StringVar(&cfg.flags, "server-flags", "", "extra cmd/node flags for every node")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.kills < 1 || cfg.writers < 1 {
		fmt.Fprintln(stderr, "need --kills >= 1 and --writers >= 1")
		return 2
	}
	if cfg.stop != "kill" && cfg.stop != "term" {
		fmt.Fprintf(stderr, "--stop must be kill or term, not %q\n", cfg.stop)
		return 2
	}
	if _, err := failover(cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "bench failover: %v\n", err)
		return 1
	}
	return 0
}

type failoverResult struct {
	acked   []time.Duration // per kill: SIGKILL to the first write acknowledged by another node
	elected []time.Duration // per kill: SIGKILL to a status poll that shows another leader
	unseen  int             // kills after which no status poll showed another leader in time
	writes  int64
	errors  int64
}

// failover kills the leader of a 3-node cluster cfg.kills times under a
// light write load. It times, from just before the SIGKILL, the first write
// acknowledged by a node other than the killed one (the client's view of
// the failover: election, the new leader's first commit, and the client
// finding it), and restarts the killed node, caught up, before the next.
func failover(cfg failoverConfig, out io.Writer) (*failoverResult, error) {
	if cfg.stop == "" {
		cfg.stop = "kill"
	}
	work, bin, err := workspace(cfg.dir, "dkv-bench-failover-", cfg.nodeBin, out)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	cl, err := nodeproc.NewCluster(bin, filepath.Join(work, "cluster"), 3, strings.Fields(cfg.flags)...)
	if err != nil {
		return nil, err
	}
	defer cl.KillAll()
	if err := cl.StartAll(); err != nil {
		return nil, err
	}
	if _, _, err := cl.WaitLeader(30 * time.Second); err != nil {
		return nil, err
	}

	// The kill in progress: its time and the killed node's address. A
	// write counts once it is acknowledged after the kill by another node
	// (a client follows the node that acknowledged its last call, and each
	// writer has a client of its own).
	var (
		mu         sync.Mutex
		killedAt   time.Time
		killedAddr string
		firstAck   time.Time
		gotAck     = make(chan struct{}, 1)
		writes     atomic.Int64
		errCount   atomic.Int64
		stop       atomic.Bool
		wg         sync.WaitGroup
	)
	for w := range cfg.writers {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		kv, err := client.DialCluster(ctx, cl.Addrs())
		cancel()
		if err != nil {
			return nil, err
		}
		defer kv.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := kv.Set(ctx, fmt.Sprintf("w%d-%d", w, n%1000), "v")
				cancel()
				now := time.Now()
				if err != nil {
					errCount.Add(1)
					continue
				}
				writes.Add(1)
				by := kv.Leader()
				mu.Lock()
				if !killedAt.IsZero() && firstAck.IsZero() && now.After(killedAt) && by != killedAddr {
					firstAck = now
					gotAck <- struct{}{}
				}
				mu.Unlock()
				time.Sleep(cfg.pause)
			}
		}()
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()

	res := &failoverResult{}
	fmt.Fprintf(out, "failover: %d stops (%s) of the leader of a 3-node cluster on %s; %d writers, %v between a writer's Sets\n",
		cfg.kills, signalName(cfg.stop), strings.Join(cl.Addrs(), ","), cfg.writers, cfg.pause)
	for k := 1; k <= cfg.kills; k++ {
		lead, err := healthy(cl, &writes)
		if err != nil {
			return nil, fmt.Errorf("before kill %d: %w", k, err)
		}
		p := cl.Node(lead)
		mu.Lock()
		killedAt, killedAddr, firstAck = time.Now(), cl.Addr(lead), time.Time{}
		mu.Unlock()
		stopped := make(chan error, 1)
		if cfg.stop == "term" {
			go func() { stopped <- p.Stop(cfg.timeout) }()
		} else {
			p.Kill()
			stopped <- nil
		}
		elected := make(chan time.Duration, 1)
		go func() { elected <- waitOtherLeader(cl, lead, killedAt, cfg.timeout) }()
		select {
		case <-gotAck:
		case <-time.After(cfg.timeout):
			return nil, fmt.Errorf("kill %d: no write acknowledged within %v of killing node %d\n%s", k, cfg.timeout, lead, cl.Logs())
		}
		mu.Lock()
		acked := firstAck.Sub(killedAt)
		killedAt = time.Time{}
		mu.Unlock()
		el := <-elected
		res.acked = append(res.acked, acked)
		seen := fmt.Sprintf("another leader seen in status after %v", el.Round(time.Millisecond))
		if el < 0 {
			// Not a time: left out of the column, rather than the
			// timeout counted as one.
			seen = fmt.Sprintf("no other leader seen in status within %v", cfg.timeout)
			res.unseen++
		} else {
			res.elected = append(res.elected, el)
		}
		fmt.Fprintf(out, "  %s %2d: node %d; %s, first write acknowledged after %v\n",
			cfg.stop, k, lead, seen, acked.Round(time.Millisecond))
		if err := <-stopped; err != nil {
			return nil, fmt.Errorf("%s %d: node %d: %w", cfg.stop, k, lead, err)
		}
		if _, err := cl.Start(lead); err != nil {
			return nil, err
		}
	}
	res.writes, res.errors = writes.Load(), errCount.Load()

	fmt.Fprintf(out, "\nfailover: time from %s of the leader, %d stops; %d writes acknowledged, %d calls failed\n\n", signalName(cfg.stop), cfg.kills, res.writes, res.errors)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "to\tmin\tmedian\tp90\tmax\t")
	for _, row := range []struct {
		name string
		d    latencies
	}{{"another leader in status", res.elected}, {"first acknowledged write", res.acked}} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", row.name, ms(row.d.percentile(0)), ms(row.d.percentile(50)), ms(row.d.percentile(90)), ms(row.d.percentile(100)))
	}
	tw.Flush()
	if res.unseen > 0 {
		fmt.Fprintf(out, "(another leader in status: %d of the %d kills left out, no other leader seen in status within %v)\n", res.unseen, cfg.kills, cfg.timeout)
	}
	acked := latencies(res.acked)
	fmt.Fprintf(out, "\nmedian %s (target <= 500ms), max %s (target <= 1500ms)\n", ms(acked.percentile(50)), ms(acked.percentile(100)))
	return res, nil
}

// signalName is the signal --stop sends.
func signalName(stop string) string {
	if stop == "term" {
		return "SIGTERM"
	}
	return "SIGKILL"
}

// healthy waits until the cluster has a leader that every node follows,
// every node has applied the leader's commit index (a restarted node has
// caught up), and writes are being acknowledged; it returns the leader.
func healthy(cl *nodeproc.Cluster, writes *atomic.Int64) (int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		sts := cl.Statuses(time.Second)
		lead, lst := nodeproc.Leader(sts)
		ok := lead >= 0
		for _, st := range sts {
			ok = ok && st != nil && st.Leader == lead && st.Applied >= lst.Commit
		}
		if ok {
			// And the load flows through it.
			before := writes.Load()
			for time.Now().Before(deadline) && writes.Load() < before+10 {
				time.Sleep(5 * time.Millisecond)
			}
			if writes.Load() >= before+10 {
				return lead, nil
			}
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("cluster not healthy after 30s: %+v\n%s", sts, cl.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitOtherLeader polls the survivors until a node other than old leads,
// and returns how long after since that was; -1 if none did within
// timeout.
func waitOtherLeader(cl *nodeproc.Cluster, old int, since time.Time, timeout time.Duration) time.Duration {
	for time.Since(since) < timeout {
		if i, _ := nodeproc.Leader(cl.Statuses(time.Second)); i >= 0 && i != old {
			return time.Since(since)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return -1
}
