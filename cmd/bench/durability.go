package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"dkv/client"
	"dkv/internal/nodeproc"
	"dkv/internal/progress"
)

type durabilityConfig struct {
	kills         int
	writers       int
	keysPerWriter int
	groups        int
	groupSize     int
	runMin        time.Duration
	runMax        time.Duration
	valueBytes    int
	dir           string
	nodeBin       string
	seed          uint64
	serverFlags   string
	ackWait       time.Duration // the wait before a kill for a write acknowledged since the restart; 0: ackWaitTimeout
	plotDir       string        // write the plot here; "" for none
	progress      io.Writer     // progress bar or lines; nil for none
}

func runDurability(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("durability", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg durabilityConfig
	fs.IntVar(&cfg.kills, "kills", 100, "how many times to SIGKILL the server")
	fs.IntVar(&cfg.writers, "writers", 8, "concurrent writers, each with its own keys")
	fs.IntVar(&cfg.keysPerWriter, "keys", 40, "single keys per writer, written with Set")
	fs.IntVar(&cfg.groups, "groups", 8, "key groups per writer, each always written whole with one BulkSet")
	fs.IntVar(&cfg.groupSize, "group-size", 8, "keys per BulkSet group")
	fs.DurationVar(&cfg.runMin, "run-min", 20*time.Millisecond, "shortest time between restart and kill")
	fs.DurationVar(&cfg.runMax, "run-max", 300*time.Millisecond, "longest time between restart and kill")
	fs.IntVar(&cfg.valueBytes, "value-bytes", 100, "bytes per value")
	fs.StringVar(&cfg.dir, "dir", ".", "directory (on the disk to test) for the data directory; removed afterwards")
	fs.StringVar(&cfg.nodeBin, "node-bin", "", "prebuilt cmd/node binary (default: build one)")
	fs.Uint64Var(&cfg.seed, "seed", uint64(time.Now().UnixNano()), "seed for kill timing and the workload")
	fs.StringVar(&cfg.serverFlags, "server-flags", "--snapshot-log-bytes=262144 --segment-bytes=65536",
		"extra cmd/node flags (the default makes snapshots and segment rolls frequent, so kills land in them)")
	fs.StringVar(&cfg.plotDir, "plot", "", "directory to write a PNG plot into: acknowledged writes over time, with the kills and restarts")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.progress = stderr
	// A writer draws its keys and groups with rand's IntN, which panics on
	// 0, and verify reads each group's first key.
	if cfg.kills < 1 || cfg.writers < 1 || cfg.keysPerWriter < 1 || cfg.groups < 1 || cfg.groupSize < 1 || cfg.runMin < 0 || cfg.runMax < cfg.runMin {
		fmt.Fprintln(stderr, "need --kills, --writers, --keys, --groups and --group-size >= 1, and 0 <= --run-min <= --run-max")
		return 2
	}
	res, err := durability(cfg, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "bench durability: %v\n", err)
		return 1
	}
	if res.lost > 0 || res.partial > 0 {
		return 1
	}
	return 0
}

// keyState is what a key may hold: its last acknowledged value, and values
// of writes whose outcome is unknown because the server died under them.
type keyState struct {
	acked    string
	hasAcked bool
	maybe    []string
}

func (k *keyState) allows(value string, found bool) bool {
	if found && slices.Contains(k.maybe, value) {
		return true
	}
	if !k.hasAcked {
		return !found
	}
	return found && value == k.acked
}

type durabilityResult struct {
	kills, ackedWrites, ackedBulk, unknown, lost, partial, keys int
	timeline                                                    durabilityTimeline
}

// durabilityTimeline is what the plot draws: offsets from the writers'
// start.
type durabilityTimeline struct {
	acked    []ackedSample   // acknowledged writes so far, sampled
	kills    []time.Duration // each SIGKILL
	restarts []time.Duration // each restarted server ready to serve
}

type ackedSample struct {
	at time.Duration
	n  int64
}

// ackedSampleEvery is the first interval between samples of the
// acknowledged writes: fine enough to show the pauses at kills, which come
// every 20-300 ms by default.
const ackedSampleEvery = 10 * time.Millisecond

// ackedSamplesMax bounds the samples kept. When they reach it, every other
// one is dropped and the interval doubles, so a run of any length keeps
// between half of it and all of it, evenly spread.
const ackedSamplesMax = 4096

// sampleAcked records acked every interval, from every on, until stop is
// closed, then once more, and returns the samples: at most samplesMax.
func sampleAcked(acked *atomic.Int64, start time.Time, stop <-chan struct{}, every time.Duration, samplesMax int) []ackedSample {
	if samplesMax < 2 || every <= 0 {
		panic(fmt.Sprintf("sampleAcked: every %v, samplesMax %d", every, samplesMax))
	}
	samples := []ackedSample{{at: time.Since(start), n: acked.Load()}}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-stop:
		}
		samples = append(samples, ackedSample{at: time.Since(start), n: acked.Load()})
		select {
		case <-stop:
			return samples
		default:
		}
		if len(samples) == samplesMax {
			kept := samples[:0]
			for i := 0; i < len(samples); i += 2 {
				kept = append(kept, samples[i])
			}
			samples = kept
			every *= 2
			tick.Reset(every)
		}
	}
}

// ledger is the writers' record of what they were told.
type ledger struct {
	mu      sync.Mutex
	keys    map[string]*keyState
	lastErr string // the last failed write's error, for a run that fails for want of acknowledgements
}

// ackWaitTimeout bounds the wait, before a kill, for the first write
// acknowledged since the server started: well past the writers' request
// timeout, so that a write in flight ends first.
const ackWaitTimeout = 15 * time.Second

// awaitAcked waits until acked has passed since, for at most timeout: a
// kill before then would check no acknowledged write.
func awaitAcked(acked *atomic.Int64, since int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for acked.Load() <= since {
		if time.Now().After(deadline) {
			return fmt.Errorf("no write was acknowledged in %v since the server started, so a kill would check nothing", timeout)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func (l *ledger) state(key string) *keyState {
	s, ok := l.keys[key]
	if !ok {
		s = &keyState{}
		l.keys[key] = s
	}
	return s
}

// gate lets the killer stop writers from starting operations while it
// restarts the server and verifies it, without stopping operations in flight
// at the moment of the kill.
type gate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	open    bool
	busy    int
	stopped bool
}

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for !g.open && !g.stopped {
		g.cond.Wait()
	}
	if g.stopped {
		return false
	}
	g.busy++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	g.busy--
	g.cond.Broadcast()
	g.mu.Unlock()
}

func (g *gate) close() {
	g.mu.Lock()
	g.open = false
	g.mu.Unlock()
}

func (g *gate) drain() {
	g.mu.Lock()
	for g.busy > 0 {
		g.cond.Wait()
	}
	g.mu.Unlock()
}

func (g *gate) reopen() {
	g.mu.Lock()
	g.open = true
	g.cond.Broadcast()
	g.mu.Unlock()
}

func (g *gate) stop() {
	g.mu.Lock()
	g.stopped = true
	g.cond.Broadcast()
	g.mu.Unlock()
}

func durability(cfg durabilityConfig, out io.Writer) (durabilityResult, error) {
	var res durabilityResult
	work, bin, err := workspace(cfg.dir, "dkv-durability-", cfg.nodeBin, out)
	if err != nil {
		return res, err
	}
	// A run that fails keeps its data directory: the evidence of a lost
	// write or a failed recovery is in it.
	passed := false
	defer func() {
		if passed {
			os.RemoveAll(work)
			return
		}
		fmt.Fprintf(out, "data directory kept for inspection: %s\n", filepath.Join(work, "data"))
	}()
	dataDir := filepath.Join(work, "data")
	port, err := nodeproc.FreePort()
	if err != nil {
		return res, err
	}
	flags := strings.Fields(cfg.serverFlags)
	p, err := nodeproc.StartOnPort(bin, dataDir, port, flags...)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "durability: seed %d, %d kills, %d writers, server %s %s\n", cfg.seed, cfg.kills, cfg.writers, p.Addr, cfg.serverFlags)

	led := &ledger{keys: map[string]*keyState{}}
	g := &gate{open: true}
	g.cond = sync.NewCond(&g.mu)
	counts := make([]writerCount, cfg.writers)
	var acked, killsDone, lostSoFar atomic.Int64 // for the timeline and the progress
	start := time.Now()
	stopSampling := make(chan struct{})
	sampled := make(chan []ackedSample, 1)
	go func() { sampled <- sampleAcked(&acked, start, stopSampling, ackedSampleEvery, ackedSamplesMax) }()
	var wg sync.WaitGroup
	for w := 0; w < cfg.writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writer(w, p.Addr, cfg, led, g, &counts[w], &acked)
		}()
	}
	// stopAll stops the writers and the sampler; the timeline holds what
	// was sampled.
	stopAll := func() {
		g.stop()
		wg.Wait()
		close(stopSampling)
		res.timeline.acked = <-sampled
	}
	bar := progress.Start(cfg.progress, progress.Spec{
		Title: fmt.Sprintf("durability: %d SIGKILLs", cfg.kills), Total: int64(cfg.kills), Unit: "kills",
		Count: killsDone.Load,
		Detail: func() string {
			return fmt.Sprintf("%d acknowledged writes, %d lost", acked.Load(), lostSoFar.Load())
		},
	})
	defer bar.Finish()

	r := rand.New(rand.NewPCG(cfg.seed, 1))
	var ackedAtStart int64 // acknowledged writes when the server last started
	for k := 1; k <= cfg.kills; k++ {
		run := cfg.runMin + time.Duration(r.Int64N(int64(cfg.runMax-cfg.runMin)+1))
		time.Sleep(run)
		// A kill checks the writes acknowledged since the server started;
		// one after none checks nothing, and a server that refuses every
		// write after a restart must not pass for one that lost nothing.
		if err := awaitAcked(&acked, ackedAtStart, cmp.Or(cfg.ackWait, ackWaitTimeout)); err != nil {
			led.mu.Lock()
			lastErr := led.lastErr
			led.mu.Unlock()
			stopAll()
			p.Kill()
			fmt.Fprintf(out, "\nFAIL: before kill %d/%d, %v\n", k, cfg.kills, err)
			return res, fmt.Errorf("before kill %d: %w; the writers' last error: %s", k, err, lastErr)
		}
		g.close()
		p.Kill()
		res.timeline.kills = append(res.timeline.kills, time.Since(start))
		g.drain() // in-flight operations fail against the dead server
		p, err = nodeproc.StartOnPort(bin, dataDir, port, flags...)
		if err != nil {
			stopAll()
			return res, fmt.Errorf("restart after kill %d: %w", k, err)
		}
		res.timeline.restarts = append(res.timeline.restarts, time.Since(start))
		lost, partial, err := verify(p.Addr, cfg, led, out)
		if err != nil {
			stopAll()
			p.Kill()
			return res, fmt.Errorf("verify after kill %d: %w", k, err)
		}
		res.kills = k
		res.lost += lost
		res.partial += partial
		killsDone.Store(int64(k))
		lostSoFar.Store(int64(res.lost))
		ackedAtStart = acked.Load() // the gate is closed: no writer runs
		if lost > 0 || partial > 0 {
			bar.Clear()
			fmt.Fprintf(out, "  kill %d/%d: %d acknowledged writes so far, %d lost, %d partial bulk sets (%v)\n",
				k, cfg.kills, acked.Load(), res.lost, res.partial, time.Since(start).Round(time.Second))
		}
		g.reopen()
	}
	stopAll()
	bar.Finish()
	p.Stop(10 * time.Second)
	for i := range counts {
		res.ackedWrites += counts[i].acked
		res.ackedBulk += counts[i].bulk
		res.unknown += counts[i].unknown
	}
	res.keys = len(led.keys)
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kills\tacked writes\tof which bulk sets\tunknown outcome\tkeys\tlost writes\tpartial bulk sets\t")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", res.kills, res.ackedWrites, res.ackedBulk, res.unknown, res.keys, res.lost, res.partial)
	tw.Flush()
	// A run in which the writers were refused, or never connected, has
	// nothing to lose and must not pass for one that lost nothing.
	var firstErr string
	for _, c := range counts {
		if c.dialErr != nil {
			fmt.Fprintln(out, "\nFAIL: a writer could not connect")
			return res, fmt.Errorf("a writer could not connect: %w", c.dialErr)
		}
		if firstErr == "" {
			firstErr = c.firstErr
		}
	}
	if res.ackedWrites == 0 {
		fmt.Fprintln(out, "\nFAIL: no write was acknowledged, so the kills checked nothing")
		return res, fmt.Errorf("no write was acknowledged in %d kills (%d failed, the first: %s): nothing was checked", res.kills, res.unknown, firstErr)
	}
	if res.lost == 0 && res.partial == 0 {
		passed = true
		fmt.Fprintln(out, "\nPASS: every acknowledged write survived every kill; no bulk set was partly applied")
		fmt.Fprintln(out, "  (a SIGKILL leaves the page cache, so this checks a process crash: a write acknowledged before its fsync\n"+
			"  survives it too, and only a power cut, as cmd/sim simulates, would show it)")
	} else {
		fmt.Fprintln(out, "\nFAIL: acknowledged data was lost or a bulk set was partly applied")
	}
	if cfg.plotDir != "" {
		path, err := plotDurability(cfg.plotDir, res)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(out, "plot: %s\n", path)
	}
	return res, nil
}

func value(w, seq, n int) string {
	v := fmt.Sprintf("w%d-s%d-", w, seq)
	if len(v) < n {
		v += strings.Repeat("x", n-len(v))
	}
	return v
}

func groupKeys(w, g, size int) []string {
	keys := make([]string, size)
	for j := range keys {
		keys[j] = fmt.Sprintf("w%d-g%d-%d", w, g, j)
	}
	return keys
}

// writerCount is what one writer saw.
type writerCount struct {
	acked, bulk, unknown int
	firstErr             string // of the unknown outcomes
	dialErr              error  // the writer never connected
}

// writer issues one operation at a time and records every outcome.
func writer(w int, addr string, cfg durabilityConfig, led *ledger, g *gate, count *writerCount, acked *atomic.Int64) {
	// The client redials by itself after a kill; writes are never retried
	// by it, so every outcome below is the one the writer saw.
	c, err := client.Dial(addr, client.WithRequestTimeout(5*time.Second))
	if err != nil {
		count.dialErr = fmt.Errorf("writer %d: %w", w, err)
		return
	}
	defer c.Close()
	r := rand.New(rand.NewPCG(cfg.seed, uint64(w)+2))
	for seq := 0; ; seq++ {
		if !g.enter() {
			return
		}
		v := value(w, seq, cfg.valueBytes)
		var keys []string
		bulk := r.IntN(10) < 3
		if bulk {
			keys = groupKeys(w, r.IntN(cfg.groups), cfg.groupSize)
		} else {
			keys = []string{fmt.Sprintf("w%d-k%d", w, r.IntN(cfg.keysPerWriter))}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if bulk {
			items := make([]client.KV, len(keys))
			for i, k := range keys {
				items[i] = client.KV{Key: k, Value: v}
			}
			err = c.BulkSet(ctx, items)
		} else {
			err = c.Set(ctx, keys[0], v)
		}
		cancel()
		led.mu.Lock()
		for _, k := range keys {
			s := led.state(k)
			if err == nil {
				s.acked, s.hasAcked, s.maybe = v, true, nil
			} else {
				// Any error may hide an applied write (the server may have
				// synced it and died before replying): it may or may not be there.
				s.maybe = append(s.maybe, v)
			}
		}
		if err != nil {
			led.lastErr = err.Error()
		}
		led.mu.Unlock()
		if err == nil {
			count.acked++
			acked.Add(1)
			if bulk {
				count.bulk++
			}
		} else {
			count.unknown++
			if count.firstErr == "" {
				count.firstErr = err.Error()
			}
		}
		g.leave()
	}
}

// verify reads every key the writers touched and checks it against the
// ledger. What it reads becomes the new acknowledged state: it was seen.
func verify(addr string, cfg durabilityConfig, led *ledger, out io.Writer) (lost, partial int, err error) {
	c, err := client.Dial(addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	led.mu.Lock()
	defer led.mu.Unlock()
	type got struct {
		value string
		found bool
	}
	read := func(key string) (got, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v, err := c.Get(ctx, key)
		if err != nil {
			if isNotFound(err) {
				return got{}, nil
			}
			return got{}, err
		}
		return got{v, true}, nil
	}
	names := make([]string, 0, len(led.keys))
	for k := range led.keys {
		names = append(names, k)
	}
	slices.Sort(names)
	seen := map[string]got{}
	for _, k := range names {
		gv, err := read(k)
		if err != nil {
			return lost, partial, err
		}
		seen[k] = gv
		s := led.keys[k]
		if !s.allows(gv.value, gv.found) {
			lost++
			maybe := make([]string, len(s.maybe))
			for i, v := range s.maybe {
				maybe[i] = short(v)
			}
			fmt.Fprintf(out, "  LOST: key %s holds (%q, found=%v); acknowledged %q (acked=%v), unknown %q\n",
				k, short(gv.value), gv.found, short(s.acked), s.hasAcked, maybe)
		}
	}
	for w := 0; w < cfg.writers; w++ {
		for gi := 0; gi < cfg.groups; gi++ {
			keys := groupKeys(w, gi, cfg.groupSize)
			first, ok := seen[keys[0]]
			if !ok {
				continue // never written
			}
			for _, k := range keys[1:] {
				if seen[k] != first {
					partial++
					fmt.Fprintf(out, "  PARTIAL: group w%d-g%d: %s=%q but %s=%q\n", w, gi, keys[0], short(first.value), k, short(seen[k].value))
					break
				}
			}
		}
	}
	for _, k := range names {
		s := led.keys[k]
		gv := seen[k]
		s.acked, s.hasAcked, s.maybe = gv.value, gv.found, nil
	}
	return lost, partial, nil
}

func short(s string) string { return strings.TrimRight(s, "x") }

func isNotFound(err error) bool {
	return errors.Is(err, client.ErrNotFound)
}
