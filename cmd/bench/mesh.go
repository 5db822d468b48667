package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"dkv/client"
	"dkv/internal/nodeproc"
)

type meshBenchConfig struct {
	clusterBenchConfig // clients, duration, slices, ... as the cluster benchmark's
	// lagEvery: one write in lagEvery (per client) is a probe of
	// replication lag; 0 measures none.
	lagEvery int
	// lagPoll is the pause between two reads of a probe on a peer.
	lagPoll time.Duration
	// catchupKeys are written while one node is down, in bulk sets of
	// catchupBatch; 0 skips the catch-up figure.
	catchupKeys  int
	catchupBatch int
	meshFlags    string // more cmd/node flags for the mesh's nodes only
}

func runMeshBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mesh", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg meshBenchConfig
	cfg.register(fs, "(the mesh's spread over its 3 nodes)")
	fs.IntVar(&cfg.valueBytes, "value-bytes", 100, "bytes per value")
	fs.StringVar(&cfg.flags, "server-flags", "", "extra cmd/node flags for every node of both systems (e.g. --unsafe-no-fsync)")
	fs.StringVar(&cfg.meshFlags, "mesh-flags", "", "extra cmd/node flags for the mesh's nodes only (e.g. --write-quorum 2)")
	fs.IntVar(&cfg.lagEvery, "lag-every", 100, "one mesh write in this many (per client) is a probe of replication lag, read on the other two nodes until seen; 0: none")
	fs.DurationVar(&cfg.lagPoll, "lag-poll", 500*time.Microsecond, "pause between a probe's reads of a peer")
	fs.IntVar(&cfg.catchupKeys, "catchup-keys", 100_000, "keys written while one mesh node is down, before timing its catch-up; 0: skip")
	fs.IntVar(&cfg.catchupBatch, "catchup-batch", 500, "keys per bulk_set of those writes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.clients < 1 || cfg.slices < 1 || cfg.duration <= 0 || cfg.space < 1 || cfg.lagEvery < 0 || cfg.catchupKeys < 0 || cfg.catchupBatch < 1 {
		fmt.Fprintln(stderr, "need --clients, --slices, --duration, --keys and --catchup-batch positive, --lag-every and --catchup-keys not negative")
		return 2
	}
	cfg.progress = stderr
	if _, err := meshBench(cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "bench mesh: %v\n", err)
		return 1
	}
	return 0
}

type meshBenchResult struct {
	single, mesh runResult
	lag          latencies // acknowledgement to visible on both peers
	lagLost      int       // probes not seen on a peer within lagTimeout
	catchup      time.Duration
	restart      time.Duration // of the catch-up's node, to serving
	catchupKeys  int           // keys the caught-up node holds
}

// lagTimeout bounds how long a probe is looked for on a peer.
const lagTimeout = 30 * time.Second

// lagProbe is a write whose arrival on the other nodes is timed.
type lagProbe struct {
	key, value string
	acked      time.Time
	peers      []*client.KVClient // the nodes the write did not go to
}

// meshBench measures durable Sets from cfg.clients clients into a single
// node and into a 3-node mesh (the clients spread over its nodes, each
// write acknowledged once durable on the node it went to), in alternating
// slices of the same run; the replication lag of a sample of the mesh's
// writes; and how long a mesh node that was down while cfg.catchupKeys
// keys were written takes to hold them all after it restarts.
func meshBench(cfg meshBenchConfig, out io.Writer) (*meshBenchResult, error) {
	work, bin, err := workspace(cfg.dir, "dkv-bench-mesh-", cfg.nodeBin, out)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	flags := strings.Fields(cfg.flags)
	single, err := nodeproc.Start(bin, filepath.Join(work, "single"), flags...)
	if err != nil {
		return nil, err
	}
	defer single.Kill()
	m, err := nodeproc.NewMesh(bin, filepath.Join(work, "mesh"), 3, append(slices.Clone(flags), strings.Fields(cfg.meshFlags)...)...)
	if err != nil {
		return nil, err
	}
	defer m.KillAll()
	if err := m.StartAll(); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "single node on %s; 3-node mesh on %s; server flags %q, mesh flags %q\n", single.Addr, strings.Join(m.Addrs(), ","), cfg.flags, cfg.meshFlags)
	systems := []*system{
		{name: "single node", pids: []int{single.Pid()}, roles: []string{"single"}},
		{name: "3-node mesh"},
	}
	for i := range m.Size() {
		systems[1].pids = append(systems[1].pids, m.Node(i).Pid())
		systems[1].roles = append(systems[1].roles, fmt.Sprintf("mesh node %d", i))
	}
	for _, s := range systems {
		s.cpus = make([]time.Duration, len(s.pids))
	}

	// The lag probes: a sampled write goes to a key of its own, and
	// probers read it on the other two nodes until both have it.
	probes := make(chan lagProbe, 4096)
	var lagMu sync.Mutex
	res := &meshBenchResult{}
	var probers sync.WaitGroup
	readers := make([]*client.KVClient, m.Size()) // shared by the probers
	for i := range readers {
		if readers[i], err = client.Dial(m.Addr(i)); err != nil {
			return nil, err
		}
		defer readers[i].Close()
	}
	for range 8 {
		probers.Add(1)
		go func() {
			defer probers.Done()
			for p := range probes {
				seen := probeLag(p, cfg.lagPoll)
				lagMu.Lock()
				if seen < 0 {
					res.lagLost++
				} else {
					res.lag = append(res.lag, seen)
				}
				lagMu.Unlock()
			}
		}()
	}
	var dropped atomic.Int64 // probes that found the queue full
	for ci := range cfg.clients {
		c, err := client.Dial(single.Addr)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		systems[0].sets = append(systems[0].sets, c.Set)
		node := ci % m.Size()
		mc, err := client.Dial(m.Addr(node))
		if err != nil {
			return nil, err
		}
		defer mc.Close()
		var peers []*client.KVClient
		for j, r := range readers {
			if j != node {
				peers = append(peers, r)
			}
		}
		n := 0
		systems[1].sets = append(systems[1].sets, func(ctx context.Context, key, value string) error {
			n++
			if cfg.lagEvery == 0 || n%cfg.lagEvery != 0 {
				return mc.Set(ctx, key, value)
			}
			key = fmt.Sprintf("lag-%d-%d", ci, n)
			err := mc.Set(ctx, key, value)
			if err == nil {
				select {
				case probes <- lagProbe{key: key, value: value, acked: time.Now(), peers: peers}:
				default:
					dropped.Add(1)
				}
			}
			return err
		})
	}

	fmt.Fprintf(out, "run: %d clients each (the mesh's spread over its 3 nodes), %d-byte values, %v per system in %d alternating slices, after %v of warmup each; one mesh write in %d probes replication lag ...\n",
		cfg.clients, cfg.valueBytes, cfg.duration, cfg.slices, cfg.warmup, cfg.lagEvery)
	if err := alternate(systems, cfg.clusterBenchConfig); err != nil {
		return nil, err
	}
	close(probes)
	probers.Wait()
	res.single, res.mesh = systems[0].res, systems[1].res

	fmt.Fprintf(out, "\nmesh: durable Sets of %d-byte values, %d clients, %v per system (slices alternating)\n\n", cfg.valueBytes, cfg.clients, cfg.duration)
	printSystems(out, systems)
	s, c := res.single, res.mesh
	fmt.Fprintln(out)
	fmt.Fprintf(out, "throughput: mesh / single = %.2f (target >= 0.5)\n", c.rate()/s.rate())
	fmt.Fprintf(out, "p99:        mesh / single = %.2f\n", float64(c.lat.percentile(99))/float64(s.lat.percentile(99)))
	fmt.Fprintf(out, "p50:        mesh / single = %.2f\n", float64(c.lat.percentile(50))/float64(s.lat.percentile(50)))
	fmt.Fprintf(out, "CPU/op:     mesh / single = %.2f (all three nodes' CPU time from /proc against the single node's; the lag probes' reads count in the mesh's)\n",
		float64(systems[1].cpuPerOp())/float64(systems[0].cpuPerOp()))
	fmt.Fprintf(out, "replication lag (acknowledged on one node -> readable on both others, polled every %v): p50 %s, p99 %s, max %s over %d probes; %d not seen within %v, %d not probed (queue full)\n",
		cfg.lagPoll, ms(res.lag.percentile(50)), ms(res.lag.percentile(99)), ms(res.lag.percentile(100)), len(res.lag), res.lagLost, lagTimeout, dropped.Load())

	// What anti-entropy had to carry, against what replication sent:
	// writes that were lost on the way, or overtaken by a round.
	for i := range m.Size() {
		st, err := m.MeshStatus(i, 5*time.Second)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		for _, p := range st.Peers {
			fmt.Fprintf(&b, "; to node %d: %d writes replicated, %d items by anti-entropy (%d passes)", p.ID, p.Replicated, p.ItemsSent, p.Passes)
		}
		fmt.Fprintf(out, "mesh node %d: %d keys%s\n", i, st.Keys, b.String())
	}
	// What the nodes logged about lost messages explains a lag's tail:
	// a write whose message is dropped arrives by anti-entropy instead.
	for i := range m.Size() {
		var lines []string
		for _, l := range strings.Split(m.Process(i).Stderr(), "\n") {
			if strings.Contains(l, "dropped") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 0 {
			fmt.Fprintf(out, "mesh node %d logged %d lines of dropped messages, the last: %s\n", i, len(lines), lines[len(lines)-1])
		}
	}

	if cfg.catchupKeys > 0 {
		if err := meshCatchup(m, cfg, res, out); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// probeLag reads p on each of its peers until it is there, and returns the
// time from its acknowledgement until the last peer had it, or -1 if one
// did not within lagTimeout.
func probeLag(p lagProbe, poll time.Duration) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
	defer cancel()
	for _, r := range p.peers {
		for {
			v, err := r.Get(ctx, p.key)
			if err == nil && v == p.value {
				break
			}
			if ctx.Err() != nil || err != nil && !errors.Is(err, client.ErrNotFound) {
				return -1
			}
			time.Sleep(poll)
		}
	}
	return time.Since(p.acked)
}

// meshCatchup stops node 2, writes cfg.catchupKeys new keys to nodes 0 and
// 1, restarts node 2, and times until it holds as many keys as they do; it
// then reads a sample of the new keys on node 2.
func meshCatchup(m *nodeproc.Cluster, cfg meshBenchConfig, res *meshBenchResult, out io.Writer) error {
	const down = 2
	// Every node holds the same keys first (the load's replication and
	// anti-entropy done), so that the count to reach is known exactly.
	before, err := waitMeshKeys(m, []int{0, 1, 2}, -1, time.Minute)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\ncatch-up: node %d is killed; %d new keys go to nodes 0 and 1 in bulk sets of %d ...\n", down, cfg.catchupKeys, cfg.catchupBatch)
	m.Kill(down)
	value := strings.Repeat("c", cfg.valueBytes)
	var wg sync.WaitGroup
	errs := make([]error, down)
	began := time.Now()
	for node := range down {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kv, err := client.Dial(m.Addr(node))
			if err != nil {
				errs[node] = err
				return
			}
			defer kv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			for from := node * cfg.catchupBatch; from < cfg.catchupKeys; from += down * cfg.catchupBatch {
				var items []client.KV
				for k := from; k < min(from+cfg.catchupBatch, cfg.catchupKeys); k++ {
					items = append(items, client.KV{Key: fmt.Sprintf("catchup%08d", k), Value: value})
				}
				if err := kv.BulkSet(ctx, items); err != nil {
					errs[node] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(out, "written in %v\n", time.Since(began).Round(time.Millisecond))
	target := before + cfg.catchupKeys
	if _, err := waitMeshKeys(m, []int{0, 1}, target, time.Minute); err != nil {
		return err
	}
	restarted := time.Now()
	if _, err := m.Start(down); err != nil {
		return err
	}
	res.restart = time.Since(restarted)
	if _, err := waitMeshKeys(m, []int{down}, target, time.Minute); err != nil {
		return err
	}
	res.catchup = time.Since(restarted)
	res.catchupKeys = target
	fmt.Fprintf(out, "node %d restarted (serving after %v) and holds all %d keys %v after its restart (target <= 10 s)\n",
		down, res.restart.Round(time.Millisecond), target, res.catchup.Round(time.Millisecond))
	// What the count says, the keys say: a sample, read on node 2.
	kv, err := client.Dial(m.Addr(down))
	if err != nil {
		return err
	}
	defer kv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	step := max(1, cfg.catchupKeys/1000)
	for k := 0; k < cfg.catchupKeys; k += step {
		key := fmt.Sprintf("catchup%08d", k)
		if v, err := kv.Get(ctx, key); err != nil || v != value {
			return fmt.Errorf("node %d after its catch-up: get %q = %d bytes, %v", down, key, len(v), err)
		}
	}
	return nil
}

// waitMeshKeys waits until every node of nodes reports the same live key
// count, and that count is want (any, if want < 0); it returns the count.
func waitMeshKeys(m *nodeproc.Cluster, nodes []int, want int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		counts := make([]int, 0, len(nodes))
		for _, i := range nodes {
			st, err := m.MeshStatus(i, 5*time.Second)
			if err != nil {
				counts = append(counts, -1)
				continue
			}
			counts = append(counts, st.Keys)
		}
		same := counts[0] >= 0
		for _, n := range counts {
			same = same && n == counts[0]
		}
		if same && (want < 0 || counts[0] == want) {
			return counts[0], nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("mesh nodes %v hold %v keys after %v; want the same count, %d", nodes, counts, timeout, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
