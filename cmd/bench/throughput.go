package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"dkv/client"
	"dkv/internal/certgen"
	"dkv/internal/nodeproc"
	"dkv/internal/progress"
	"dkv/internal/tlsfiles"
)

type throughputConfig struct {
	clients      int
	sizes        []int
	duration     time.Duration
	warmup       time.Duration
	valueBytes   int
	baselineTime time.Duration
	dir          string
	nodeBin      string
	unsafeRef    bool
	tls          bool      // also the empty store over TLS, against a plain server of the same host kind
	slices       int       // pieces each load's time is cut into, the loads taking turns
	sweep        []int     // client counts also measured on the empty store (and unsafe); nil: 1 client, durable only
	plotDir      string    // write the plots here; "" for none
	progress     io.Writer // progress bar or lines; nil for none
}

type runResult struct {
	name    string
	keys    int
	clients int
	ops     int
	elapsed time.Duration
	lat     latencies
	errors  int
	raw     float64       // 4 KiB write+fdatasync per second, interleaved with the run
	inPlace float64       // in-place record write+fdatasync per second (one client only)
	echo    time.Duration // mean round trip to an echo process, interleaved with the run (one client only)
	cpu     time.Duration // the server's user+system time per op in the measured slices (/proc)
}

// throughputLoad is one load of the throughput benchmark: a server (its
// store size, durable or not) and a count of clients, as a system that
// takes its turns with the others; raw, inPlace and echo sum the baselines
// measured after its slices.
type throughputLoad struct {
	sys     *system
	keys    int
	kind    loadKind
	conns   []*client.KVClient
	raw     float64
	inPlace float64
	echo    time.Duration
}

// loadKind is what a load's server is beside the durable ones of the
// store sizes, whose ratios the figures are.
type loadKind uint8

const (
	loadDurable       loadKind = iota
	loadUnsafe                 // --unsafe-no-fsync: the CPU-bound reference
	loadTLS                    // --tls-cert: the default host, over TLS
	loadTLSGoroutines          // --tls-cert --event-loops 0: TLS served by goroutines
)

func (r runResult) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func runThroughput(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg throughputConfig
	var sizes, sweep string
	fs.IntVar(&cfg.clients, "clients", 50, "concurrent clients, one connection each")
	fs.StringVar(&sizes, "sizes", "0,100000,1000000", "comma-separated store sizes (keys) to pre-populate")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time per load (store size and client count)")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured time per load before its first slice")
	fs.IntVar(&cfg.slices, "slices", 10, "pieces each load's time is cut into; the loads take turns, so that all see the same weather (1..1000)")
	fs.IntVar(&cfg.valueBytes, "value-bytes", 100, "bytes per value")
	fs.DurationVar(&cfg.baselineTime, "baseline-duration", 2500*time.Millisecond, "time per load spent measuring the raw fdatasync rate, after its slices")
	fs.StringVar(&cfg.dir, "dir", ".", "directory (on the disk to test) for data directories; removed afterwards")
	fs.StringVar(&cfg.nodeBin, "node-bin", "", "prebuilt cmd/node binary (default: build one)")
	fs.BoolVar(&cfg.unsafeRef, "unsafe-reference", true, "also run with --unsafe-no-fsync, as the CPU-bound reference")
	fs.BoolVar(&cfg.tls, "tls", false, "also measure the empty store over TLS (--tls-cert), served by the event loop as plain connections are\nand by goroutines (--event-loops 0), with --clients clients each")
	fs.StringVar(&sweep, "sweep", "", "comma-separated client counts (e.g. 1,2,5,10,20) also measured on the empty store, durable and with\n--unsafe-no-fsync, for the throughput-against-clients plot (default: 1 client, durable only)")
	fs.StringVar(&cfg.plotDir, "plot", "", "directory to write PNG plots into: throughput and latency percentiles against clients")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.slices < 1 || cfg.slices > slicesPerLoadMax {
		fmt.Fprintf(stderr, "--slices %d: want 1..%d\n", cfg.slices, slicesPerLoadMax)
		return 2
	}
	if cfg.duration <= 0 || cfg.baselineTime <= 0 {
		fmt.Fprintln(stderr, "--duration and --baseline-duration must be positive")
		return 2
	}
	if cfg.clients < 1 || cfg.clients > clientsMax {
		fmt.Fprintf(stderr, "--clients %d: want 1..%d\n", cfg.clients, clientsMax)
		return 2
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			fmt.Fprintf(stderr, "bad --sizes entry %q\n", s)
			return 2
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	if sweep != "" {
		for _, s := range strings.Split(sweep, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 || n > clientsMax {
				fmt.Fprintf(stderr, "bad --sweep entry %q: want a client count 1..%d\n", s, clientsMax)
				return 2
			}
			cfg.sweep = append(cfg.sweep, n)
		}
	}
	cfg.progress = stderr
	if err := throughput(cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "bench throughput: %v\n", err)
		return 1
	}
	return 0
}

// slicesPerLoadMax bounds --slices: each slice has a lead-in and a
// baseline of its own, and past a thousand they are most of the run.
const slicesPerLoadMax = 1000

// clientsMax bounds the concurrent clients of one run: each is a
// connection and a goroutine, and a sweep past a few hundred measures the
// load generator on this machine more than the server.
const clientsMax = 1000

// clientCounts is the client counts a run measures: --clients first (its
// figures are the headline), then the sweep's, or else one client for the
// durable store (its per-op breakdown), each once.
func (cfg throughputConfig) clientCounts(durable bool) []int {
	counts := []int{cfg.clients}
	extra := cfg.sweep
	if extra == nil && durable {
		extra = []int{1}
	}
	for _, n := range slices.Sorted(slices.Values(extra)) {
		if !slices.Contains(counts, n) {
			counts = append(counts, n)
		}
	}
	return counts
}

func throughput(cfg throughputConfig, out io.Writer) error {
	if cfg.slices < 1 {
		return fmt.Errorf("slices %d: want at least 1", cfg.slices)
	}
	work, bin, err := workspace(cfg.dir, "dkv-bench-", cfg.nodeBin, out)
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	fmt.Fprintf(out, "baseline: 4 KiB write+fdatasync on %s, measured after every slice of every load, with the servers stopped\n", work)
	if fs := memoryFS(work); fs != "" {
		fmt.Fprintf(out, "WARNING: %s is on %s, in memory: an fsync costs nothing there; give --dir on a disk\n", work, fs)
	}

	echo, stopEcho, err := echoFloor()
	if err != nil {
		return err
	}
	defer stopEcho()

	// Every load's server runs from the start and every load's clients stay
	// connected; the loads take turns in slices (alternate), each with the
	// disk's baseline measured after it with every server stopped. A ratio
	// of two loads (1M keys against 0, durable against unsafe) so compares
	// rates taken in the same weather: measured one after the other, the
	// store-size ratio swung from 0.73 to 1.28 between two runs as the
	// disk's own rate moved from 3,106 to 4,835 fsyncs a second.
	var loads []*throughputLoad
	var servers []*nodeproc.Process
	defer func() {
		for _, p := range servers {
			p.Kill()
		}
	}()
	addLoads := func(p *nodeproc.Process, label string, keys, space int, counts []int, kind loadKind, opts ...client.Option) error {
		for _, n := range counts {
			l := &throughputLoad{keys: keys, kind: kind, sys: &system{
				name: label, space: space, pids: []int{p.Pid()}, roles: []string{label},
				cpus: make([]time.Duration, 1), pause: true, procs: []*nodeproc.Process{p},
			}}
			for range n {
				c, err := client.Dial(p.Addr, opts...)
				if err != nil {
					return err
				}
				l.conns = append(l.conns, c)
				l.sys.sets = append(l.sys.sets, c.Set)
			}
			loads = append(loads, l)
		}
		return nil
	}
	defer func() {
		for _, l := range loads {
			for _, c := range l.conns {
				c.Close()
			}
		}
	}()
	biggest, biggestDir := -1, ""
	for i, size := range cfg.sizes {
		dataDir := filepath.Join(work, fmt.Sprintf("data-%d", i))
		p, err := nodeproc.Start(bin, dataDir)
		if err != nil {
			return err
		}
		servers = append(servers, p)
		value := strings.Repeat("p", cfg.valueBytes)
		if err := populate(p.Addr, size, func(int) string { return value }, out, cfg.progress); err != nil {
			return err
		}
		counts := []int{cfg.clients}
		if i == 0 {
			counts = cfg.clientCounts(true)
		}
		if err := addLoads(p, fmt.Sprintf("durable, %d keys", size), size, max(size, 100_000), counts, loadDurable); err != nil {
			return err
		}
		if size == slicesMax(cfg.sizes) && size > 0 {
			biggest, biggestDir = len(servers)-1, dataDir
		}
	}
	if cfg.unsafeRef {
		p, err := nodeproc.Start(bin, filepath.Join(work, "data-unsafe"), "--unsafe-no-fsync")
		if err != nil {
			return err
		}
		servers = append(servers, p)
		if err := addLoads(p, "UNSAFE no fsync, 0 keys", 0, 100_000, cfg.clientCounts(false), loadUnsafe); err != nil {
			return err
		}
	}
	if cfg.tls {
		certs, err := certgen.Write(work, []string{"127.0.0.1"}, 24*time.Hour)
		if err != nil {
			return err
		}
		tc, err := tlsfiles.Client(certs.CA, "", "", "")
		if err != nil {
			return err
		}
		for _, v := range []struct {
			label string
			kind  loadKind
			flags []string
			opts  []client.Option
		}{
			{"durable over TLS, 0 keys", loadTLS, []string{"--tls-cert", certs.Cert, "--tls-key", certs.Key}, []client.Option{client.WithTLS(tc)}},
			{"durable over TLS, 0 keys, goroutines", loadTLSGoroutines, []string{"--tls-cert", certs.Cert, "--tls-key", certs.Key, "--event-loops", "0"}, []client.Option{client.WithTLS(tc)}},
		} {
			p, err := nodeproc.Start(bin, filepath.Join(work, fmt.Sprintf("data-tls-%d", v.kind)), v.flags...)
			if err != nil {
				return err
			}
			servers = append(servers, p)
			if err := addLoads(p, v.label, 0, 100_000, []int{cfg.clients}, v.kind, v.opts...); err != nil {
				return err
			}
		}
	}
	loadOf := make(map[*system]*throughputLoad, len(loads))
	systems := make([]*system, len(loads))
	for i, l := range loads {
		loadOf[l.sys] = l
		systems[i] = l.sys
		fmt.Fprintf(out, "load: %s, %d clients\n", l.sys.name, len(l.conns))
	}
	baseline := cfg.baselineTime / time.Duration(cfg.slices)
	ac := clusterBenchConfig{
		duration: cfg.duration, warmup: cfg.warmup, slices: cfg.slices, valueBytes: cfg.valueBytes, space: 100_000,
		progress: cfg.progress,
		between: func(s *system) error {
			l := loadOf[s]
			raw, err := rawSyncRate(work, baseline)
			if err != nil {
				return err
			}
			l.raw += raw
			if len(l.conns) == 1 {
				rt, err := echo(baseline / 2)
				if err != nil {
					return err
				}
				ip, err := inPlaceSyncRate(work, baseline/2)
				if err != nil {
					return err
				}
				l.echo += rt
				l.inPlace += ip
			}
			return nil
		},
	}
	fmt.Fprintf(out, "run: %d loads, %v each in %d slices taking turns, after %v of warmup each; the fdatasync baseline after every slice ...\n",
		len(loads), cfg.duration, cfg.slices, cfg.warmup)
	if err := alternate(systems, ac); err != nil {
		return err
	}
	var results, unsafeRuns, tlsRuns []runResult
	var goroutinesRun, tlsRun *runResult // over TLS: on goroutines, on the default host
	for _, l := range loads {
		r := l.sys.res
		r.keys = l.keys
		n := float64(cfg.slices)
		r.raw, r.inPlace, r.echo = l.raw/n, l.inPlace/n, l.echo/time.Duration(cfg.slices)
		r.cpu = l.sys.cpuPerOp()
		switch l.kind {
		case loadUnsafe:
			unsafeRuns = append(unsafeRuns, r)
		case loadTLS, loadTLSGoroutines:
			tlsRuns = append(tlsRuns, r)
		default:
			results = append(results, r)
		}
	}
	var restart time.Duration
	var restartKeys int
	if biggest >= 0 {
		// Recovery after SIGKILL: the worst case, with whatever log has
		// accumulated since the last snapshot to replay.
		servers[biggest].Kill()
		start := time.Now()
		p2, err := nodeproc.Start(bin, biggestDir)
		if err != nil {
			return err
		}
		servers[biggest] = p2
		c, err := client.Dial(p2.Addr)
		if err != nil {
			return err
		}
		_, err = c.Get(context.Background(), keyName(0))
		c.Close()
		if err != nil {
			return fmt.Errorf("get after restart: %w", err)
		}
		restart, restartKeys = time.Since(start), slicesMax(cfg.sizes)
		fmt.Fprintf(out, "restart after SIGKILL with %d keys: ready in %v\n", restartKeys, restart.Round(time.Millisecond))
	}
	// The headline reference: the unsafe run with --clients.
	var unsafeRun *runResult
	if len(unsafeRuns) > 0 {
		unsafeRun = &unsafeRuns[0]
	}

	fmt.Fprintf(out, "\nthroughput: %d-byte values, %v per load in %d slices taking turns; raw = 4 KiB write+fdatasync/s measured after the load's slices; CPU/op from /proc\n\n", cfg.valueBytes, cfg.duration, cfg.slices)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tclients\tops/s\traw/s\tx raw\tp50\tp99\tp99.9\terrors\tserver CPU/op\t")
	all := append(append(slices.Clone(results), unsafeRuns...), tlsRuns...)
	for i := range tlsRuns {
		if loads[len(loads)-len(tlsRuns)+i].kind == loadTLS {
			tlsRun = &tlsRuns[i]
		} else {
			goroutinesRun = &tlsRuns[i]
		}
	}
	for _, r := range all {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2f\t%s\t%s\t%s\t%d\t%.1fµs\t\n", r.name, r.clients, r.rate(), r.raw, r.rate()/r.raw,
			ms(r.lat.percentile(50)), ms(r.lat.percentile(99)), ms(r.lat.percentile(99.9)), r.errors, float64(r.cpu.Nanoseconds())/1000)
	}
	tw.Flush()
	fmt.Fprintln(out)
	// The figures the single-node issue asks for, as ratios of this run.
	var first, last *runResult
	for i := range results {
		if results[i].clients == cfg.clients {
			if first == nil {
				first = &results[i]
			}
			last = &results[i]
		}
	}
	if first != nil {
		fmt.Fprintf(out, "group commit: %d clients = %.1f x raw fdatasync rate (target >= 25)\n", cfg.clients, first.rate()/first.raw)
		if unsafeRun != nil {
			fmt.Fprintf(out, "cpu bound:    durable / unsafe-no-fsync = %.2f (target >= 0.6 when the disk is fast)\n", first.rate()/unsafeRun.rate())
		}
		fmt.Fprintf(out, "store size:   %d keys / %d keys = %.2f (target within 0.75..1.25)\n", last.keys, first.keys, last.rate()/first.rate())
	}
	for _, r := range results {
		if r.clients == 1 {
			inPlace := time.Duration(float64(time.Second) / r.inPlace)
			perOp := time.Duration(float64(time.Second) / r.rate())
			fmt.Fprintf(out, "one client:   %.2f x raw fdatasync rate (target >= 0.8)\n", r.rate()/r.raw)
			fmt.Fprintf(out, "              dkv's log syncs in place (space zero-filled ahead), cheaper than the raw baseline's append:\n")
			fmt.Fprintf(out, "              %d-byte in-place write+fdatasync %.0f/s, and one client reaches %.2f x that\n", inPlaceRecordBytes, r.inPlace, r.rate()/r.inPlace)
			fmt.Fprintf(out, "              per op %v = in-place fdatasync %v + process-to-process TCP round trip %v (echo floor) + the rest %v\n",
				perOp.Round(time.Microsecond), inPlace.Round(time.Microsecond), r.echo.Round(time.Microsecond), (perOp - inPlace - r.echo).Round(time.Microsecond))
		}
	}
	if tlsRun != nil && goroutinesRun != nil {
		us := func(r *runResult) float64 { return float64(r.cpu.Nanoseconds()) / 1000 }
		if first != nil {
			fmt.Fprintf(out, "TLS:          over TLS / plain, both on the default host (event loop) = %.2f; server CPU per op %.1f against %.1f µs\n",
				tlsRun.rate()/first.rate(), us(tlsRun), us(first))
		}
		fmt.Fprintf(out, "              over TLS, event loop / goroutines (--event-loops 0) = %.2f; server CPU per op %.1f against %.1f µs\n",
			tlsRun.rate()/goroutinesRun.rate(), us(tlsRun), us(goroutinesRun))
	}
	if restartKeys > 0 {
		fmt.Fprintf(out, "restart:      %d keys ready in %.2fs (target <= 3s)\n", restartKeys, restart.Seconds())
	}
	if cfg.plotDir != "" {
		points := make([]throughputPoint, len(all))
		for i, r := range all {
			points[i] = r.point()
		}
		paths, err := plotThroughput(cfg.plotDir, points)
		if err != nil {
			return err
		}
		for _, p := range paths {
			fmt.Fprintf(out, "plot: %s\n", p)
		}
	}
	return nil
}

func slicesMax(s []int) int {
	m := 0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

func keyName(i int) string { return fmt.Sprintf("key%08d", i) }

// populate fills the store with keys 0..n-1, key i holding value(i),
// through pipelined BulkSets, showing its progress on progressOut.
func populate(addr string, n int, value func(i int) string, out, progressOut io.Writer) error {
	if n == 0 {
		return nil
	}
	const batch, workers = 1000, 4
	var next, done atomic.Int64
	start := time.Now()
	bar := progress.Start(progressOut, progress.Spec{
		Title: fmt.Sprintf("populating %d keys", n), Total: int64(n), Unit: "keys", Count: done.Load,
		Detail: func() string {
			return fmt.Sprintf("%.0f keys/s", float64(done.Load())/time.Since(start).Seconds())
		},
	})
	defer bar.Finish()
	// The first failure stops the other workers through ctx.
	g, ctx := errgroup.WithContext(context.Background())
	for range workers {
		g.Go(func() error {
			c, err := client.DialContext(ctx, addr)
			if err != nil {
				return err
			}
			defer c.Close()
			for {
				from := int(next.Add(batch)) - batch
				if from >= n {
					return nil
				}
				items := make([]client.KV, 0, batch)
				for i := from; i < min(from+batch, n); i++ {
					items = append(items, client.KV{Key: keyName(i), Value: value(i)})
				}
				bctx, cancel := context.WithTimeout(ctx, time.Minute)
				err := c.BulkSet(bctx, items)
				cancel()
				if err != nil {
					return fmt.Errorf("populate: %w", err)
				}
				done.Add(int64(len(items)))
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	bar.Finish()
	fmt.Fprintf(out, "  populated %d keys in %v\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}
