package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"dkv/client"
	"dkv/internal/nodeproc"
	"dkv/internal/progress"
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
}

func (r runResult) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func runThroughput(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg throughputConfig
	var sizes, sweep string
	fs.IntVar(&cfg.clients, "clients", 50, "concurrent clients, one connection each")
	fs.StringVar(&sizes, "sizes", "0,100000,1000000", "comma-separated store sizes (keys) to pre-populate")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time per run")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured time before each run")
	fs.IntVar(&cfg.valueBytes, "value-bytes", 100, "bytes per value")
	fs.DurationVar(&cfg.baselineTime, "baseline-duration", 2500*time.Millisecond, "time per run spent measuring the raw fdatasync rate, between the run's slices")
	fs.StringVar(&cfg.dir, "dir", ".", "directory (on the disk to test) for data directories; removed afterwards")
	fs.StringVar(&cfg.nodeBin, "node-bin", "", "prebuilt cmd/node binary (default: build one)")
	fs.BoolVar(&cfg.unsafeRef, "unsafe-reference", true, "also run with --unsafe-no-fsync, as the CPU-bound reference")
	fs.StringVar(&sweep, "sweep", "", "comma-separated client counts (e.g. 1,2,5,10,20) also measured on the empty store, durable and with\n--unsafe-no-fsync, for the throughput-against-clients plot (default: 1 client, durable only)")
	fs.StringVar(&cfg.plotDir, "plot", "", "directory to write PNG plots into: throughput and latency percentiles against clients")
	if err := fs.Parse(args); err != nil {
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
	work, bin, err := workspace(cfg.dir, "dkv-bench-", cfg.nodeBin, out)
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	fmt.Fprintf(out, "baseline: 4 KiB write+fdatasync on %s, measured between the slices of every run\n", work)

	echo, stopEcho, err := echoFloor()
	if err != nil {
		return err
	}
	defer stopEcho()

	var results []runResult
	var restart time.Duration
	var restartKeys int
	for i, size := range cfg.sizes {
		dataDir := filepath.Join(work, fmt.Sprintf("data-%d", i))
		p, err := nodeproc.Start(bin, dataDir)
		if err != nil {
			return err
		}
		value := strings.Repeat("p", cfg.valueBytes)
		if err := populate(p.Addr, size, func(int) string { return value }, out, cfg.progress); err != nil {
			p.Kill()
			return err
		}
		space := max(size, 100_000)
		counts := []int{cfg.clients}
		if i == 0 {
			counts = cfg.clientCounts(true)
		}
		for _, n := range counts {
			r, err := measure(p.Addr, fmt.Sprintf("durable, %d keys", size), size, space, n, cfg, work, echo, out)
			if err != nil {
				p.Kill()
				return err
			}
			results = append(results, r)
		}
		if size == slicesMax(cfg.sizes) && size > 0 {
			// Recovery after SIGKILL: the worst case, with whatever log has
			// accumulated since the last snapshot to replay.
			p.Kill()
			start := time.Now()
			p2, err := nodeproc.Start(bin, dataDir)
			if err != nil {
				return err
			}
			c, err := client.Dial(p2.Addr)
			if err != nil {
				p2.Kill()
				return err
			}
			if _, err := c.Get(context.Background(), keyName(0)); err != nil {
				c.Close()
				p2.Kill()
				return fmt.Errorf("get after restart: %w", err)
			}
			restart, restartKeys = time.Since(start), size
			c.Close()
			p = p2
			fmt.Fprintf(out, "restart after SIGKILL with %d keys: ready in %v\n", size, restart.Round(time.Millisecond))
		}
		p.Kill()
		os.RemoveAll(dataDir)
	}
	var unsafeRuns []runResult
	if cfg.unsafeRef {
		dataDir := filepath.Join(work, "data-unsafe")
		p, err := nodeproc.Start(bin, dataDir, "--unsafe-no-fsync")
		if err != nil {
			return err
		}
		for _, n := range cfg.clientCounts(false) {
			r, err := measure(p.Addr, "UNSAFE no fsync, 0 keys", 0, 100_000, n, cfg, work, echo, out)
			if err != nil {
				p.Kill()
				return err
			}
			unsafeRuns = append(unsafeRuns, r)
		}
		p.Kill()
	}
	// The headline reference: the unsafe run with --clients.
	var unsafeRun *runResult
	if len(unsafeRuns) > 0 {
		unsafeRun = &unsafeRuns[0]
	}

	fmt.Fprintf(out, "\nthroughput: %d-byte values, %v per run; raw = 4 KiB write+fdatasync/s measured between the run's slices\n\n", cfg.valueBytes, cfg.duration)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tclients\tops/s\traw/s\tx raw\tp50\tp99\tp99.9\terrors\t")
	all := append(slices.Clone(results), unsafeRuns...)
	for _, r := range all {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2f\t%s\t%s\t%s\t%d\t\n", r.name, r.clients, r.rate(), r.raw, r.rate()/r.raw,
			ms(r.lat.percentile(50)), ms(r.lat.percentile(99)), ms(r.lat.percentile(99.9)), r.errors)
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

// measureSlices is how many pieces a run is cut into, with the raw fsync
// baseline measured between them: the disk's speed drifts on a shared
// machine, and interleaving puts the run and its baseline in the same weather.
const measureSlices = 5

// measure runs clients that each Set random keys of the key space, one at a
// time, after a warmup, in slices interleaved with the raw fsync baseline.
func measure(addr, name string, keys, space, clients int, cfg throughputConfig, dir string, echo func(time.Duration) (time.Duration, error), out io.Writer) (runResult, error) {
	fmt.Fprintf(out, "run: %s, %d clients, %v in %d slices interleaved with the fdatasync baseline ...\n", name, clients, cfg.duration, measureSlices)
	value := strings.Repeat("v", cfg.valueBytes)
	conns := make([]*client.KVClient, clients)
	for i := range conns {
		c, err := client.Dial(addr)
		if err != nil {
			return runResult{}, err
		}
		defer c.Close()
		conns[i] = c
	}
	var measuring, paused, stop atomic.Bool
	var busy atomic.Int64
	perClient := make([]latencies, clients)
	errCount := make([]int, clients)
	var g sync.WaitGroup
	for i, c := range conns {
		g.Add(1)
		go func() {
			defer g.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			lat := make(latencies, 0, 1<<16)
			for !stop.Load() {
				if paused.Load() {
					time.Sleep(time.Millisecond)
					continue
				}
				busy.Add(1)
				key := keyName(r.IntN(space))
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := c.Set(ctx, key, value)
				cancel()
				counted := measuring.Load()
				busy.Add(-1)
				if !counted {
					continue
				}
				if err != nil {
					errCount[i]++
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			perClient[i] = lat
		}()
	}
	time.Sleep(cfg.warmup)
	// The bar counts measured milliseconds: the baseline's time between the
	// slices is not the run's.
	var measuredMs atomic.Int64
	var sliceStart atomic.Pointer[time.Time]
	bar := progress.Start(cfg.progress, progress.Spec{
		Title: fmt.Sprintf("%s, %d clients, measuring %v", name, clients, cfg.duration), Total: max(cfg.duration.Milliseconds(), 1), Unit: "ms measured",
		Count: func() int64 {
			n := measuredMs.Load()
			if t := sliceStart.Load(); t != nil {
				n += time.Since(*t).Milliseconds()
			}
			return n
		},
	})
	defer bar.Finish()
	slice := cfg.duration / measureSlices
	var elapsed time.Duration
	var rawSum float64
	var echoSum time.Duration
	var inPlaceSum float64
	for k := 0; k < measureSlices; k++ {
		measuring.Store(true)
		start := time.Now()
		sliceStart.Store(&start)
		time.Sleep(slice)
		measuring.Store(false)
		elapsed += time.Since(start)
		sliceStart.Store(nil)
		measuredMs.Store(elapsed.Milliseconds())
		// Quiesce the clients, then measure the disk alone.
		paused.Store(true)
		for busy.Load() > 0 {
			time.Sleep(100 * time.Microsecond)
		}
		raw, err := rawSyncRate(dir, cfg.baselineTime/measureSlices)
		if err == nil && clients == 1 {
			var rt time.Duration
			rt, err = echo(cfg.baselineTime / measureSlices / 2)
			echoSum += rt
			if err == nil {
				var ip float64
				ip, err = inPlaceSyncRate(dir, cfg.baselineTime/measureSlices/2)
				inPlaceSum += ip
			}
		}
		if err != nil {
			stop.Store(true)
			g.Wait()
			return runResult{}, err
		}
		rawSum += raw
		paused.Store(false)
	}
	stop.Store(true)
	g.Wait()
	bar.Finish()
	r := runResult{name: name, keys: keys, clients: clients, elapsed: elapsed, raw: rawSum / measureSlices, inPlace: inPlaceSum / measureSlices, echo: echoSum / measureSlices}
	for i := range perClient {
		r.lat = append(r.lat, perClient[i]...)
		r.errors += errCount[i]
	}
	r.ops = len(r.lat)
	fmt.Fprintf(out, "  %.0f ops/s, p50 %s, p99 %s; raw fdatasync %.0f/s\n", r.rate(), ms(r.lat.percentile(50)), ms(r.lat.percentile(99)), r.raw)
	return r, nil
}
