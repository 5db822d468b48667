package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"dkv/client"
	"dkv/internal/nodeproc"
)

type metricsBenchConfig struct {
	clusterBenchConfig // clients, duration, slices, ... of the write figure
	scrapeEvery        time.Duration
	// control runs both servers without metrics: the ratio's noise floor.
	control bool
}

func runMetricsBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("metrics", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg metricsBenchConfig
	fs.IntVar(&cfg.clients, "clients", 50, "concurrent clients per server, one connection each")
	fs.DurationVar(&cfg.duration, "duration", 20*time.Second, "measured time per server, cut in --slices alternating between the two")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured time per server before the first slice")
	fs.IntVar(&cfg.slices, "slices", 20, "pieces each server's time is cut into; the servers take turns, so that both see the same weather")
	fs.IntVar(&cfg.valueBytes, "value-bytes", 100, "bytes per value")
	fs.IntVar(&cfg.space, "keys", 100_000, "key space the Sets draw from")
	fs.StringVar(&cfg.dir, "dir", ".", "directory (on the disk to test) for the data directories; removed afterwards")
	fs.StringVar(&cfg.nodeBin, "node-bin", "", "prebuilt cmd/node binary (default: build one)")
	fs.StringVar(&cfg.flags, "server-flags", "", "extra cmd/node flags for both servers")
	fs.DurationVar(&cfg.scrapeEvery, "scrape-interval", time.Second, "how often /metrics of the server with metrics is fetched during the whole run (Prometheus's default is 15s-60s: 1s is harsh)")
	fs.BoolVar(&cfg.control, "control", false, "an A/A run: the second server without metrics too, to see how far apart two equal servers measure")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.clients < 1 || cfg.slices < 1 || cfg.duration <= 0 || cfg.space < 1 || cfg.scrapeEvery <= 0 {
		fmt.Fprintln(stderr, "need --clients, --slices, --duration, --keys and --scrape-interval positive")
		return 2
	}
	cfg.progress = stderr
	if _, err := metricsBench(cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "bench metrics: %v\n", err)
		return 1
	}
	return 0
}

type metricsBenchResult struct {
	off, on *system
	scrapes int
}

// metricsBench measures durable Sets from cfg.clients clients into two
// single nodes, one without metrics and one with --metrics-addr whose
// /metrics is fetched every cfg.scrapeEvery, in alternating slices of the
// same run: the cost of metrics as a ratio of throughputs and of server
// CPU time per write.
func metricsBench(cfg metricsBenchConfig, out io.Writer) (*metricsBenchResult, error) {
	work, bin, err := workspace(cfg.dir, "dkv-bench-metrics-", cfg.nodeBin, out)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	flags := strings.Fields(cfg.flags)
	off, err := nodeproc.Start(bin, filepath.Join(work, "off"), flags...)
	if err != nil {
		return nil, err
	}
	defer off.Kill()
	maddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	onFlags := append(flags, "--metrics-addr", maddr)
	if cfg.control {
		onFlags = flags
	}
	on, err := nodeproc.Start(bin, filepath.Join(work, "on"), onFlags...)
	if err != nil {
		return nil, err
	}
	defer on.Kill()
	systems := []*system{
		{name: "metrics off", pids: []int{off.Pid()}, roles: []string{"off"}},
		{name: "metrics on", pids: []int{on.Pid()}, roles: []string{"on"}},
	}
	if cfg.control {
		systems[1].name = "metrics off (control)"
	}
	for _, s := range systems {
		s.cpus = make([]time.Duration, 1)
	}
	for range cfg.clients {
		for i, addr := range []string{off.Addr, on.Addr} {
			c, err := client.Dial(addr)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			systems[i].sets = append(systems[i].sets, c.Set)
		}
	}

	// A scraper fetches the metrics all along, as Prometheus would.
	sc := &scraper{url: "http://" + maddr + "/metrics"}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if !cfg.control {
		if _, err := sc.fetch(); err != nil {
			return nil, fmt.Errorf("first scrape: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc.run(cfg.scrapeEvery, stop)
		}()
	}

	if cfg.control {
		fmt.Fprintf(out, "two single nodes, both without metrics (--control): %s and %s; server flags %q\n", off.Addr, on.Addr, cfg.flags)
	} else {
		fmt.Fprintf(out, "two single nodes: %s without metrics, %s with --metrics-addr %s, scraped every %v; server flags %q\n",
			off.Addr, on.Addr, maddr, cfg.scrapeEvery, cfg.flags)
	}
	fmt.Fprintf(out, "run: %d clients each, %d-byte values, %v per server in %d alternating slices, after %v of warmup each ...\n",
		cfg.clients, cfg.valueBytes, cfg.duration, cfg.slices, cfg.warmup)
	err = alternate(systems, cfg.clusterBenchConfig)
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if !cfg.control {
		// The whole run's totals, for the figures below; else they are
		// the last good scrape's, and say so.
		if _, err := sc.fetch(); err != nil {
			fmt.Fprintf(out, "the last scrape failed (%v): the server's own figures below are from an earlier one, not the whole run's\n", err)
		}
	}

	fmt.Fprintf(out, "\nmetrics: durable Sets of %d-byte values, %d clients, %v per server (slices alternating)\n\n", cfg.valueBytes, cfg.clients, cfg.duration)
	printRates(out, "server", systems)
	o, n := systems[0], systems[1]
	ratio, target := "metrics on / off", " (target >= 0.97)"
	if cfg.control {
		ratio, target = "control / off", " (no target: the noise floor)"
	}
	fmt.Fprintf(out, "\nthroughput: %s = %.3f%s\n", ratio, n.res.rate()/o.res.rate(), target)
	fmt.Fprintf(out, "CPU/op:     %s = %.3f (server CPU time from /proc, %.1fµs against %.1fµs)\n",
		ratio, float64(n.cpuPerOp())/float64(o.cpuPerOp()), float64(n.cpuPerOp().Nanoseconds())/1000, float64(o.cpuPerOp().Nanoseconds())/1000)
	scrapes, failed, took, last := sc.stats()
	fmt.Fprintf(out, "scrapes: %d (%d failed), %.1fms each on average, %d bytes the last\n",
		scrapes, failed, float64(took.Microseconds())/1000/float64(max(scrapes, 1)), len(last))
	if v := sampleValues(last, "dkv_wal_batch_records_sum", "dkv_wal_batch_records_count", `dkv_requests_total{op="set",code="ok"}`); v != nil {
		fmt.Fprintf(out, "the server with metrics says: %.0f sets answered ok, %.1f records per fsync'd batch on average\n",
			v[2], v[0]/max(v[1], 1))
	}
	// Its turns and log fsyncs summed, over the time it was under load
	// (its warmup and its slices with their lead-ins and ends; between
	// them no client writes to it): the share of that time the node was
	// busy, and the disk. (Counting only the measured time, which leaves
	// out the lead-ins, a node busy throughout showed 101%.)
	if v := sampleValues(last, "dkv_turn_duration_seconds_sum", "dkv_turn_events_sum", "dkv_turn_events_count",
		`dkv_fsync_duration_seconds_sum{file="wal"}`); v != nil {
		load := n.loaded.Seconds()
		fmt.Fprintf(out, "  under load (%.0fs): its turns took %.0f%% of the time (%.1f events a turn), its log fsyncs %.0f%%\n",
			load, 100*v[0]/load, v[1]/max(v[2], 1), 100*v[3]/load)
	}
	return &metricsBenchResult{off: o, on: n, scrapes: scrapes}, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scraper fetches a /metrics page at an interval.
type scraper struct {
	url string

	mu             sync.Mutex
	scrapes, fails int
	took           time.Duration
	last           string
}

// fetch scrapes the page once; every attempt counts, a refused or timed
// out one among the failed.
func (s *scraper) fetch() (string, error) {
	c := http.Client{Timeout: 10 * time.Second}
	t0 := time.Now()
	var b []byte
	resp, err := c.Get(s.url)
	if err == nil {
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", s.url, resp.Status)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scrapes++
	s.took += time.Since(t0)
	if err != nil {
		s.fails++
		return "", err
	}
	s.last = string(b)
	return s.last, nil
}

func (s *scraper) run(every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.fetch()
		}
	}
}

func (s *scraper) stats() (scrapes, fails int, took time.Duration, last string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scrapes, s.fails, s.took, s.last
}

// sampleValues finds the values of the named samples (name and labels as
// the page writes them) in a Prometheus text page; nil if one is missing.
func sampleValues(page string, names ...string) []float64 {
	want := make(map[string]int, len(names))
	for i, n := range names {
		want[n] = i
	}
	out := make([]float64, len(names))
	found := 0
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		k, ok := want[line[:i]]
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil
		}
		out[k] = v
		found++
	}
	if found != len(names) {
		return nil
	}
	return out
}
