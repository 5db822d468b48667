package main

// compare: dkv beside Redis with appendfsync always, driven by one load
// generator. The same client loop (same connections, same pipelining
// depth, same keys, same 100-byte values) speaks dkv's JSON lines, RESP2 to
// dkv, and RESP2 to Redis; only the bytes on the wire differ. The servers
// take turns, one measured window each per round, the order rotating every
// round, so that all of them see the same weather on a shared machine; each
// figure is the median over the rounds.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"dkv/client"
	"dkv/internal/nodeproc"
	"dkv/internal/progress"
)

// compareOp is what a load's requests do.
type compareOp int

const (
	opSet compareOp = iota
	opGet
	opMSet
)

// compareLoad is one load of the list.
type compareLoad struct {
	name    string // for --loads
	title   string
	op      compareOp
	clients int // connections, one goroutine each
	depth   int // requests in flight per connection: written together, then their replies read
	pairs   int // keys per MSET / bulk_set
}

// compareLoads are the loads of issue 11, in its order.
var compareLoads = []compareLoad{
	{name: "set-c1", title: "SET c1", op: opSet, clients: 1, depth: 1},
	{name: "set-c50", title: "SET c50", op: opSet, clients: 50, depth: 1},
	{name: "set-c50x16", title: "SET c50 ×16", op: opSet, clients: 50, depth: 16},
	{name: "get-c50", title: "GET c50", op: opGet, clients: 50, depth: 1},
	{name: "get-c50x16", title: "GET c50 ×16", op: opGet, clients: 50, depth: 16},
	{name: "mset10", title: "MSET of 10, c50", op: opMSet, clients: 50, depth: 1, pairs: 10},
}

// rssLoadName picks the RSS phase in --loads.
const rssLoadName = "rss"

func (l compareLoad) describe(space, valueBytes int) string {
	what := map[compareOp]string{
		opSet:  fmt.Sprintf("SET of a random key (of %s) to a %d-byte value", commas(int64(space)), valueBytes),
		opGet:  fmt.Sprintf("GET of a random key (of %s, all present)", commas(int64(space))),
		opMSet: fmt.Sprintf("MSET (dkv JSON: bulk_set) of %d random keys (of %s), %d-byte values; an op is one MSET", l.pairs, commas(int64(space)), valueBytes),
	}[l.op]
	conns := fmt.Sprintf("%d connections", l.clients)
	if l.clients == 1 {
		conns = "1 connection"
	}
	inflight := "1 request in flight on each"
	if l.depth > 1 {
		inflight = fmt.Sprintf("%d requests pipelined on each (written together, then their replies read)", l.depth)
	}
	return fmt.Sprintf("%s, %s; %s", conns, inflight, what)
}

// Limits on the flags: each bounds what one run may cost.
const (
	compareRoundsMax     = 50
	compareDurationMin   = 20 * time.Millisecond
	compareDurationMax   = 10 * time.Minute
	compareWarmupMax     = time.Minute
	compareKeysMax       = 20_000_000
	compareSpaceMax      = 10_000_000
	compareValueBytesMax = 64 << 10
	// compareReplyTimeout bounds how long any one window may wait on a
	// server beyond its own length, so that a hung server fails the run
	// rather than hanging it.
	compareReplyTimeout = time.Minute
	// fillBatchKeys and fillConns shape the fills (the key space before
	// the loads, and the RSS phase): pipelined multi-key writes, as a
	// loader would do it, on both servers alike.
	fillBatchKeys = 1000
	fillConns     = 4
	fillDepth     = 4
)

type compareConfig struct {
	loads       []compareLoad
	rss         bool // the RSS phase: fresh servers filled with keys keys
	rounds      int
	duration    time.Duration // measured time per server per load per round
	warmup      time.Duration // unmeasured time before each window
	dir         string
	nodeBin     string
	serverFlags string // more cmd/node flags
	// altFlags, when set, start a second dkv process with serverFlags
	// and these, measured as two more columns (JSON and RESP) in the same
	// rounds: two builds of the host side by side, e.g. --event-loops 0.
	altFlags   string
	redisBin   string // redis-server; "" when there is none (redisMissing says why)
	redisMiss  string
	keys       int // for the RSS phase
	space      int // key space of the loads
	valueBytes int
	progress   io.Writer // nil for none
	driver     string    // driverEpoll or driverGoroutines
}

// defaultDriver is driverEpoll where it runs, else driverGoroutines.
func defaultDriver() string {
	if epollDriverSupported {
		return driverEpoll
	}
	return driverGoroutines
}

// The load generator's designs (--driver).
const (
	// driverEpoll drives every connection of a window from one goroutine
	// over epoll (driveEpoll), where there is epoll.
	driverEpoll = "epoll"
	// driverGoroutines gives each connection a goroutine (driveConn).
	driverGoroutines = "goroutines"
)

func runCompare(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg compareConfig
	var loads, redis string
	var names []string
	for _, l := range compareLoads {
		names = append(names, l.name)
	}
	names = append(names, rssLoadName)
	fs.StringVar(&loads, "loads", strings.Join(names, ","), "comma-separated loads to run, of "+strings.Join(names, ", ")+"\n("+rssLoadName+": fresh servers filled with --keys keys, then each one's RSS)")
	fs.IntVar(&cfg.rounds, "rounds", 3, fmt.Sprintf("rounds per load, each server one window per round, the order rotating (1..%d; the issue's figures need >= 3)", compareRoundsMax))
	fs.DurationVar(&cfg.duration, "duration", 3*time.Second, "measured time of one window (one server, one load, one round)")
	fs.DurationVar(&cfg.warmup, "warmup", 500*time.Millisecond, "unmeasured time before each window, with the window's connections already loading")
	fs.StringVar(&cfg.dir, "dir", os.TempDir(), "directory (on the disk to test) for both servers' data directories; removed afterwards")
	fs.StringVar(&cfg.nodeBin, "node-bin", "", "prebuilt cmd/node binary (default: build one)")
	fs.StringVar(&cfg.serverFlags, "server-flags", "", "extra cmd/node flags")
	fs.StringVar(&cfg.altFlags, "alt-server-flags", "", "when set, a second dkv process with --server-flags and these more (e.g. \"--event-loops 0\"),\nmeasured in the same rounds as two more columns, alt JSON and alt RESP")
	fs.StringVar(&redis, "redis-server", "", `redis-server binary (default: redis-server in $PATH); "none" leaves Redis out`)
	fs.IntVar(&cfg.keys, "keys", 1_000_000, "keys the RSS phase stores in each server")
	fs.IntVar(&cfg.space, "space", 100_000, "keys the loads draw from, stored in each server before the loads")
	fs.IntVar(&cfg.valueBytes, "value-bytes", 100, "bytes per value")
	fs.StringVar(&cfg.driver, "driver", defaultDriver(), "the load generator: "+driverEpoll+" (Linux: one goroutine drives every connection over epoll,\nas redis-benchmark does) or "+driverGoroutines+" (one goroutine per connection; 14-17 µs of CPU per GET,\nmore than either server, which bounded the throughput it measured)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments %q\n", fs.Args())
		return 2
	}
	for _, n := range strings.Split(loads, ",") {
		n = strings.TrimSpace(n)
		if n == rssLoadName {
			cfg.rss = true
			continue
		}
		i := slices.IndexFunc(compareLoads, func(l compareLoad) bool { return l.name == n })
		if i < 0 {
			fmt.Fprintf(stderr, "--loads: unknown load %q; want some of %s\n", n, strings.Join(names, ", "))
			return 2
		}
		if !slices.ContainsFunc(cfg.loads, func(l compareLoad) bool { return l.name == n }) {
			cfg.loads = append(cfg.loads, compareLoads[i])
		}
	}
	switch {
	case cfg.rounds < 1 || cfg.rounds > compareRoundsMax:
		fmt.Fprintf(stderr, "--rounds %d: want 1..%d\n", cfg.rounds, compareRoundsMax)
		return 2
	case cfg.duration < compareDurationMin || cfg.duration > compareDurationMax:
		fmt.Fprintf(stderr, "--duration %v: want %v..%v\n", cfg.duration, compareDurationMin, compareDurationMax)
		return 2
	case cfg.warmup < 0 || cfg.warmup > compareWarmupMax:
		fmt.Fprintf(stderr, "--warmup %v: want 0..%v\n", cfg.warmup, compareWarmupMax)
		return 2
	case cfg.keys < 1 || cfg.keys > compareKeysMax:
		fmt.Fprintf(stderr, "--keys %d: want 1..%d\n", cfg.keys, compareKeysMax)
		return 2
	case cfg.space < 10 || cfg.space > compareSpaceMax:
		fmt.Fprintf(stderr, "--space %d: want 10..%d\n", cfg.space, compareSpaceMax)
		return 2
	case cfg.valueBytes < 1 || cfg.valueBytes > compareValueBytesMax:
		fmt.Fprintf(stderr, "--value-bytes %d: want 1..%d\n", cfg.valueBytes, compareValueBytesMax)
		return 2
	case cfg.driver != driverGoroutines && (cfg.driver != driverEpoll || !epollDriverSupported):
		fmt.Fprintf(stderr, "--driver %q: want %s (epoll where it exists: Linux)\n", cfg.driver, driverGoroutines)
		return 2
	}
	cfg.redisBin, cfg.redisMiss = findRedis(redis)
	cfg.progress = stderr
	if _, err := compare(cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "bench compare: %v\n", err)
		return 1
	}
	return 0
}

// findRedis resolves --redis-server: the binary to run, or "" and why not.
func findRedis(flagValue string) (bin, missing string) {
	switch flagValue {
	case "none":
		return "", "left out by --redis-server none"
	case "":
		p, err := exec.LookPath("redis-server")
		if err != nil {
			return "", "redis-server is not installed (not in $PATH); install Debian's redis-server package (apt-get install -y redis-server) for the Redis column"
		}
		return p, ""
	default:
		return flagValue, ""
	}
}

// compareServer is one column: a server and the protocol spoken to it.
type compareServer struct {
	name  string
	addr  string
	pid   int
	proto wireProto
	skip  string // why this column is not measured; "" when it is
	// busy tells whether the server is doing background work its writes
	// set off (dkv: a snapshot; Redis: an AOF rewrite, in a child); nil
	// where there is no way to ask.
	busy func() (bool, error)
}

// windowResult is one server's figures for one load in one round.
type windowResult struct {
	ops, errors    int
	firstErr       string
	elapsed        time.Duration
	p50, p99, p999 time.Duration
	serverCPU      time.Duration // the server's (and its children's) user+system time in the window
	switches       int64         // the server's threads' context switches in the window (voluntary and not)
	faults         int64         // the server's minor page faults in the window
	genCPU         time.Duration // the load generator's, in the same window
	rssBytes       int64         // the server's VmRSS at the window's end
	// tailCPU is the server's CPU time from the window's end until its
	// background work was done (settleServer), counted in serverCPU too;
	// busyAfter: that work was running, or started, after the window.
	tailCPU   time.Duration
	busyAfter bool
}

func (w windowResult) rate() float64 { return float64(w.ops) / w.elapsed.Seconds() }

func perOpMicros(d time.Duration, ops int) float64 {
	if ops == 0 {
		return 0
	}
	return float64(d.Nanoseconds()) / 1000 / float64(ops)
}

// loadResult is every server's windows for one load, by server index.
type loadResult struct {
	load    compareLoad
	windows [][]windowResult
}

// medians are a server's figures for a load: the median of each over its rounds.
type medians struct {
	rate, p50, p99, p999, cpuPerOp, genPerOp, rss, switchesPerOp, faultsPerOp float64
	tailPerOp                                                                 float64 // µs, the part of cpuPerOp after the windows
	busyAfter                                                                 int     // windows after which background work ran
	errors                                                                    int
	firstErr                                                                  string
	rates                                                                     []float64
}

func (lr loadResult) medians(si int) (medians, bool) {
	ws := lr.windows[si]
	if len(ws) == 0 {
		return medians{}, false
	}
	var m medians
	col := func(f func(w windowResult) float64) float64 {
		v := make([]float64, len(ws))
		for i, w := range ws {
			v[i] = f(w)
		}
		return median(v)
	}
	m.rate = col(windowResult.rate)
	m.p50 = col(func(w windowResult) float64 { return float64(w.p50) })
	m.p99 = col(func(w windowResult) float64 { return float64(w.p99) })
	m.p999 = col(func(w windowResult) float64 { return float64(w.p999) })
	m.cpuPerOp = col(func(w windowResult) float64 { return perOpMicros(w.serverCPU, w.ops) })
	m.genPerOp = col(func(w windowResult) float64 { return perOpMicros(w.genCPU, w.ops) })
	m.tailPerOp = col(func(w windowResult) float64 { return perOpMicros(w.tailCPU, w.ops) })
	perOp := func(n int64, ops int) float64 {
		if ops == 0 {
			return 0
		}
		return float64(n) / float64(ops)
	}
	m.switchesPerOp = col(func(w windowResult) float64 { return perOp(w.switches, w.ops) })
	m.faultsPerOp = col(func(w windowResult) float64 { return perOp(w.faults, w.ops) })
	m.rss = col(func(w windowResult) float64 { return float64(w.rssBytes) })
	for _, w := range ws {
		m.errors += w.errors
		if w.busyAfter {
			m.busyAfter++
		}
		if m.firstErr == "" {
			m.firstErr = w.firstErr
		}
		m.rates = append(m.rates, w.rate())
	}
	return m, true
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rssResult is the RSS phase's figures for one server.
type rssResult struct {
	name           string
	empty, filled  int64 // VmRSS before the fill and after it settled
	peak           int64 // VmHWM
	fill           time.Duration
	keysHeld       int
	skip           string
	fillKeysPerSec float64
}

type compareResult struct {
	servers []string // column names, by server index
	skipped []string // why each is not measured ("" when it is)
	loads   []loadResult
	rss     []rssResult // dkv, redis; nil when the phase did not run
}

// Server indexes of the columns; the alt ones only with --alt-server-flags.
const (
	srvJSON = iota
	srvRESP
	srvRedis
	srvAltJSON
	srvAltRESP
)

// dkvColumns are the dkv columns that are compared with Redis.
func dkvColumns(servers int) []int {
	if servers > srvAltJSON {
		return []int{srvJSON, srvRESP, srvAltJSON, srvAltRESP}
	}
	return []int{srvJSON, srvRESP}
}

func compare(cfg compareConfig, out io.Writer) (*compareResult, error) {
	work, bin, err := workspace(cfg.dir, "dkv-bench-compare-", cfg.nodeBin, out)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	value := bytes.Repeat([]byte{'v'}, cfg.valueBytes)

	if unsafeNoFsync(cfg.serverFlags) || unsafeNoFsync(cfg.altFlags) {
		fmt.Fprintf(out, "compare: dkv (single node) against Redis with appendfsync always\n")
		fmt.Fprintf(out, "  WARNING: dkv runs with --unsafe-no-fsync (in --server-flags or --alt-server-flags): it never fsyncs, Redis does;\n"+
			"  the ratios are not the issue's figures and are not judged\n")
	} else {
		fmt.Fprintf(out, "compare: dkv (single node, durable: every acknowledged write fsync'd) against Redis with appendfsync always\n")
	}
	fmt.Fprintf(out, "  one load generator (this process) for every server; data directories under %s\n", work)
	if fs := memoryFS(work); fs != "" {
		fmt.Fprintf(out, "  WARNING: %s is on %s, in memory: an fsync costs nothing there, for dkv and Redis alike; give --dir on a disk\n", work, fs)
	}
	redisVersion := ""
	if cfg.redisBin != "" {
		v, err := exec.Command(cfg.redisBin, "--version").Output()
		if err != nil {
			return nil, fmt.Errorf("%s --version: %w", cfg.redisBin, err)
		}
		redisVersion = strings.TrimSpace(string(v))
		fmt.Fprintf(out, "  redis: %s\n", redisVersion)
		fmt.Fprintf(out, "  redis flags: --appendonly yes --appendfsync always --save '' (checked by CONFIG GET; no RDB snapshots; AOF rewrites at their defaults);\n")
		fmt.Fprintf(out, "    its CPU counts its AOF-rewrite children once they end (cutime+cstime)\n")
	} else {
		fmt.Fprintf(out, "  redis: skipped: %s\n", cfg.redisMiss)
	}
	fmt.Fprintf(out, "  dkv flags: %q\n", cfg.serverFlags)
	if cfg.altFlags != "" {
		fmt.Fprintf(out, "  alt: a second dkv process with flags %q\n", cfg.serverFlags+" "+cfg.altFlags)
	}
	fmt.Fprintf(out, "  machine: %d CPUs, shared by the servers and the load generator; %s\n", runtime.NumCPU(), loadAverage())

	res := &compareResult{servers: []string{"dkv JSON", "dkv RESP", "redis"}}
	if cfg.altFlags != "" {
		res.servers = append(res.servers, "alt JSON", "alt RESP")
	}
	res.skipped = make([]string, len(res.servers))
	if len(cfg.loads) > 0 {
		if err := compareLoadsPhase(cfg, bin, work, value, res, out); err != nil {
			return nil, err
		}
	}
	if cfg.rss {
		rss, err := rssPhase(cfg, bin, work, value, out)
		if err != nil {
			return nil, err
		}
		res.rss = rss
	}
	printCompareSummary(cfg, res, out)
	fmt.Fprintf(out, "machine at the end: %s\n", loadAverage())
	return res, nil
}

// loadAverage describes /proc/loadavg: how busy the shared machine was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if err != nil || len(f) < 3 {
		return "load average unknown"
	}
	return fmt.Sprintf("load average %s %s %s (1, 5, 15 min)", f[0], f[1], f[2])
}

// compareLoadsPhase starts one dkv node and one Redis, stores the key
// space in both, and runs every load's rounds.
func compareLoadsPhase(cfg compareConfig, bin, work string, value []byte, res *compareResult, out io.Writer) error {
	dkv, err := nodeproc.Start(bin, filepath.Join(work, "dkv-loads"), strings.Fields(cfg.serverFlags)...)
	if err != nil {
		return err
	}
	defer dkv.Kill()
	dkvBusy := func() (bool, error) { return dkvSnapshotting(dkv.Addr) }
	servers := []*compareServer{
		{name: "dkv JSON", addr: dkv.Addr, pid: dkv.Pid(), proto: jsonProto{}, busy: dkvBusy},
		{name: "dkv RESP", addr: dkv.Addr, pid: dkv.Pid(), proto: respProto{}, busy: dkvBusy},
		{name: "redis", proto: respProto{}, skip: cfg.redisMiss},
	}
	if why := probeRESP(dkv.Addr); why != "" {
		servers[srvRESP].skip = "dkv does not answer RESP on its port: " + why
	}
	if cfg.altFlags != "" {
		alt, err := nodeproc.Start(bin, filepath.Join(work, "dkv-alt-loads"), append(strings.Fields(cfg.serverFlags), strings.Fields(cfg.altFlags)...)...)
		if err != nil {
			return fmt.Errorf("alt: %w", err)
		}
		defer alt.Kill()
		altBusy := func() (bool, error) { return dkvSnapshotting(alt.Addr) }
		servers = append(servers,
			&compareServer{name: "alt JSON", addr: alt.Addr, pid: alt.Pid(), proto: jsonProto{}, busy: altBusy},
			&compareServer{name: "alt RESP", addr: alt.Addr, pid: alt.Pid(), proto: respProto{}, busy: altBusy})
		if why := probeRESP(alt.Addr); why != "" {
			servers[srvAltRESP].skip = "alt does not answer RESP on its port: " + why
		}
		fmt.Fprintf(out, "\nalt: dkv pid %d on %s", alt.Pid(), alt.Addr)
	}
	if cfg.redisBin != "" {
		rs, err := startRedis(cfg.redisBin, filepath.Join(work, "redis-loads"))
		if err != nil {
			return err
		}
		defer rs.stop()
		servers[srvRedis].addr, servers[srvRedis].pid = rs.addr, rs.pid()
		servers[srvRedis].busy = func() (bool, error) { return redisRewriting(rs.addr) }
	}
	fmt.Fprintf(out, "\nservers: dkv pid %d on %s (JSON and RESP on the same port, one process)", dkv.Pid(), dkv.Addr)
	if servers[srvRedis].skip == "" {
		fmt.Fprintf(out, "; redis pid %d on %s", servers[srvRedis].pid, servers[srvRedis].addr)
	}
	fmt.Fprintln(out)
	for i, s := range servers {
		res.skipped[i] = s.skip
		if s.skip != "" {
			fmt.Fprintf(out, "%s: skipped: %s\n", s.name, s.skip)
		}
	}

	// The key space, in each server once (dkv's JSON and RESP columns are
	// one server), so that GETs find their keys and SETs replace.
	fills := []int{srvJSON, srvRedis}
	if len(servers) > srvAltJSON {
		fills = append(fills, srvAltJSON)
	}
	for _, si := range fills {
		s := servers[si]
		if s.skip != "" {
			continue
		}
		took, err := fillKeys(s.addr, s.proto, cfg.space, value, fmt.Sprintf("%s: storing the %s-key space", serverProcessName(si), commas(int64(cfg.space))), cfg.progress)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintf(out, "%s: stored the %s-key space in %v\n", serverProcessName(si), commas(int64(cfg.space)), took.Round(time.Millisecond))
		// A snapshot or AOF rewrite the fill set off would run into the
		// first windows, the other servers' among them.
		if _, err := settleServer(s.busy); err != nil {
			return fmt.Errorf("%s after the fill: %w", s.name, err)
		}
	}

	var active []int
	for i, s := range servers {
		if s.skip == "" {
			active = append(active, i)
		}
	}
	windows := len(cfg.loads) * cfg.rounds * len(active)
	var done atomic.Int64
	var now atomic.Pointer[string]
	bar := progress.Start(cfg.progress, progress.Spec{
		Title: fmt.Sprintf("compare: %d loads × %d rounds × %d servers, %v each", len(cfg.loads), cfg.rounds, len(active), cfg.duration+cfg.warmup),
		Total: int64(windows), Unit: "windows", Count: done.Load,
		Detail: func() string {
			if p := now.Load(); p != nil {
				return *p
			}
			return ""
		},
	})
	defer bar.Finish()
	for li, load := range cfg.loads {
		lr := loadResult{load: load, windows: make([][]windowResult, len(servers))}
		for round := range cfg.rounds {
			// The order rotates every round, so that no server always
			// runs right after the same other one.
			for k := range active {
				si := active[(k+round)%len(active)]
				s := servers[si]
				d := fmt.Sprintf("%s, round %d/%d, %s", load.title, round+1, cfg.rounds, s.name)
				now.Store(&d)
				seed := uint64(li)<<32 | uint64(round)
				w, err := runWindow(s, load, cfg, value, seed)
				if err != nil {
					return fmt.Errorf("%s, %s, round %d: %w", load.title, s.name, round+1, err)
				}
				lr.windows[si] = append(lr.windows[si], w)
				done.Add(1)
			}
		}
		bar.Clear()
		printLoad(cfg, servers, lr, out)
		res.loads = append(res.loads, lr)
	}
	bar.Finish()
	return nil
}

// serverProcessName names the process behind a column.
func serverProcessName(si int) string {
	switch si {
	case srvRedis:
		return "redis"
	case srvAltJSON, srvAltRESP:
		return "alt"
	}
	return "dkv"
}

// runWindow runs one load against one server: its connections load it for
// the warmup, then for the measured window, in which the replies that
// arrive are counted and the server's CPU time is read at each end.
func runWindow(s *compareServer, load compareLoad, cfg compareConfig, value []byte, seed uint64) (windowResult, error) {
	conns := make([]net.Conn, load.clients)
	for i := range conns {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			return windowResult{}, err
		}
		defer c.Close()
		// A server that stops answering fails the window instead of
		// hanging the run.
		if err := c.SetDeadline(time.Now().Add(cfg.warmup + cfg.duration + compareReplyTimeout)); err != nil {
			return windowResult{}, err
		}
		conns[i] = c
	}
	var measuring, stop atomic.Bool
	results := make([]clientResult, len(conns))
	// failed is closed when a connection breaks: the window ends early.
	failed := make(chan struct{})
	var failOnce sync.Once
	var wg sync.WaitGroup
	var epollErr error
	if cfg.driver == driverEpoll {
		wg.Go(func() {
			epollErr = driveEpoll(conns, s.proto, load, cfg.space, value, seed, &measuring, &stop, results,
				time.Now().Add(cfg.warmup+cfg.duration+compareReplyTimeout))
			if epollErr != nil {
				failOnce.Do(func() { close(failed) })
			}
		})
	}
	for i, c := range conns {
		if cfg.driver == driverEpoll {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cr := &results[i]
			defer func() {
				if cr.err != nil {
					failOnce.Do(func() { close(failed) })
				}
			}()
			cr.err = driveConn(c, s.proto, load, cfg.space, value, rand.New(rand.NewPCG(seed, uint64(i))), &measuring, &stop, cr.add)
		}()
	}
	sleepUnless := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-failed:
		}
	}
	sleepUnless(cfg.warmup)
	st0, err0 := readProcStat(s.pid)
	sw0 := contextSwitches(s.pid)
	gen0, _ := processTreeCPU(os.Getpid())
	start := time.Now()
	measuring.Store(true)
	sleepUnless(cfg.duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	st1, err1 := readProcStat(s.pid)
	sw1 := contextSwitches(s.pid)
	gen1, _ := processTreeCPU(os.Getpid())
	rss, errRSS := procRSS(s.pid)
	stop.Store(true)
	wg.Wait()
	if epollErr != nil {
		return windowResult{}, epollErr
	}
	for i, cr := range results {
		if cr.err != nil {
			return windowResult{}, fmt.Errorf("connection %d: %w", i, cr.err)
		}
	}
	if err := errors.Join(err0, err1, errRSS); err != nil {
		return windowResult{}, fmt.Errorf("reading the server's /proc: %w", err)
	}
	w := windowResult{elapsed: elapsed, serverCPU: st1.treeCPU() - st0.treeCPU(), switches: sw1 - sw0, faults: st1.faults - st0.faults, genCPU: gen1 - gen0, rssBytes: rss}
	// The servers do not take turns while paused (as alternate's do): the
	// one measured next runs beside this one, which must then be idle.
	// Background work this window's writes set off (a dkv snapshot, a
	// Redis AOF rewrite) would otherwise run in the next server's window,
	// taking its CPU and its disk, and count in nobody's CPU per op (a
	// rewrite child's time reaches Redis's cutime only when reaped). It is
	// waited for here, and its CPU counted in this window's.
	busy, err := settleServer(s.busy)
	if err != nil {
		return windowResult{}, fmt.Errorf("waiting for the server's background work after the window: %w", err)
	}
	st2, err := readProcStat(s.pid)
	if err != nil {
		return windowResult{}, fmt.Errorf("reading the server's /proc: %w", err)
	}
	w.tailCPU, w.busyAfter = st2.treeCPU()-st1.treeCPU(), busy
	w.serverCPU += w.tailCPU
	var all latencies
	for _, cr := range results {
		all = append(all, cr.lat...)
		w.errors += cr.errors
		if w.firstErr == "" {
			w.firstErr = cr.firstErr
		}
	}
	w.ops = len(all)
	if p := all.percentiles(50, 99, 99.9); len(all) > 0 {
		w.p50, w.p99, w.p999 = p[0], p[1], p[2]
	}
	return w, nil
}

// clientResult is what one connection of a window saw.
type clientResult struct {
	lat      latencies
	errors   int
	firstErr string
	err      error
}

// add takes one reply: its latency if it was ok, else its error.
func (cr *clientResult) add(lat time.Duration, ok bool, errMsg string) {
	if !ok {
		cr.errors++
		if cr.firstErr == "" {
			cr.firstErr = errMsg
		}
		return
	}
	cr.lat = append(cr.lat, lat)
}

// driveConn is the load loop of one connection, the same for every server
// and protocol: write load.depth requests in one write, read their
// load.depth replies, and report each reply that arrives while measuring
// with its latency from the write. It returns when stop is set (after the
// batch in flight) or the connection fails.
func driveConn(c net.Conn, proto wireProto, load compareLoad, space int, value []byte, rng *rand.Rand,
	measuring, stop *atomic.Bool, report func(lat time.Duration, ok bool, errMsg string)) error {
	r := bufio.NewReaderSize(c, respLineBytesMax)
	keys := make([][]byte, max(load.pairs, 1))
	for i := range keys {
		keys[i] = make([]byte, 0, 16)
	}
	buf := make([]byte, 0, 4096)
	for !stop.Load() {
		buf = appendBatch(buf[:0], proto, load, space, value, rng, keys)
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			return err
		}
		for range load.depth {
			outcome, msg, err := proto.readReply(r, load.op)
			if err != nil {
				return err
			}
			if measuring.Load() {
				report(time.Since(t0), outcome == replyOK, msg)
			}
		}
	}
	return nil
}

// appendBatch appends one batch of load.depth requests to b, their keys
// drawn from rng into keys (one per pair of the load).
func appendBatch(b []byte, proto wireProto, load compareLoad, space int, value []byte, rng *rand.Rand, keys [][]byte) []byte {
	for range load.depth {
		switch load.op {
		case opSet:
			keys[0] = appendKey(keys[0][:0], rng.IntN(space))
			b = proto.appendSet(b, keys[0], value)
		case opGet:
			keys[0] = appendKey(keys[0][:0], rng.IntN(space))
			b = proto.appendGet(b, keys[0])
		case opMSet:
			for i := range keys {
				keys[i] = appendKey(keys[i][:0], rng.IntN(space))
			}
			b = proto.appendMSet(b, keys, value)
		}
	}
	return b
}

// appendKey appends key i as keyName spells it (key%08d), without
// allocating.
func appendKey(b []byte, i int) []byte {
	b = append(b, "key"...)
	var d [20]byte
	n := len(strconv.AppendInt(d[:0], int64(i), 10))
	for ; n < 8; n++ {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(i), 10)
}

// replyOutcome is what one reply said.
type replyOutcome int

const (
	replyOK   replyOutcome = iota
	replyMiss              // a GET of a key that is not there
	replyErr               // an error reply
)

// wireProto is one protocol's encoding of the loads' requests and its
// reading of their replies. Keys and values are plain ASCII letters and
// digits, so neither protocol needs to escape them.
type wireProto interface {
	appendSet(b, key, value []byte) []byte
	appendGet(b, key []byte) []byte
	appendMSet(b []byte, keys [][]byte, value []byte) []byte
	// readReply consumes one reply to a request of op; msg describes a
	// reply that is not replyOK.
	readReply(r *bufio.Reader, op compareOp) (outcome replyOutcome, msg string, err error)
}

// respProto speaks RESP2: each request an array of bulk strings.
type respProto struct{}

var (
	respSet  = []byte("SET")
	respGet  = []byte("GET")
	respMSet = []byte("MSET")
)

func (respProto) appendSet(b, key, value []byte) []byte {
	return appendRESPCommand(b, respSet, key, value)
}

func (respProto) appendGet(b, key []byte) []byte { return appendRESPCommand(b, respGet, key) }

func (respProto) appendMSet(b []byte, keys [][]byte, value []byte) []byte {
	b = appendRESPArrayHeader(b, 1+2*len(keys))
	b = appendRESPBulk(b, respMSet)
	for _, k := range keys {
		b = appendRESPBulk(b, k)
		b = appendRESPBulk(b, value)
	}
	return b
}

func (respProto) readReply(r *bufio.Reader, op compareOp) (replyOutcome, string, error) {
	kind, null, errMsg, err := skipRESP(r)
	switch {
	case err != nil:
		return replyErr, "", err
	case kind == '-':
		return replyErr, errMsg, nil
	case op == opGet && kind == '$' && null:
		return replyMiss, "GET of a missing key", nil
	case op == opGet && kind == '$':
		return replyOK, "", nil
	case op != opGet && kind == '+':
		return replyOK, "", nil
	}
	return replyErr, fmt.Sprintf("unexpected reply of type %q", kind), nil
}

// jsonProto speaks dkv's JSON lines, without ids: replies come in order.
type jsonProto struct{}

func (jsonProto) appendSet(b, key, value []byte) []byte {
	b = append(b, `{"op":"set","key":"`...)
	b = append(b, key...)
	b = append(b, `","value":"`...)
	b = append(b, value...)
	return append(b, "\"}\n"...)
}

func (jsonProto) appendGet(b, key []byte) []byte {
	b = append(b, `{"op":"get","key":"`...)
	b = append(b, key...)
	return append(b, "\"}\n"...)
}

func (jsonProto) appendMSet(b []byte, keys [][]byte, value []byte) []byte {
	b = append(b, `{"op":"bulk_set","items":[`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":"`...)
		b = append(b, k...)
		b = append(b, `","value":"`...)
		b = append(b, value...)
		b = append(b, `"}`...)
	}
	return append(b, "]}\n"...)
}

var (
	jsonOK       = []byte(`"ok":true`)
	jsonValue    = []byte(`"value":`)
	jsonNotFound = []byte(`"code":"not_found"`)
)

func (jsonProto) readReply(r *bufio.Reader, op compareOp) (replyOutcome, string, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return replyErr, "", fmt.Errorf("a reply line longer than %d bytes", r.Size())
	}
	if err != nil {
		return replyErr, "", unexpectedEOF(err)
	}
	// A string inside the reply cannot hold "ok":true unescaped, so the
	// field is found wherever it is.
	switch {
	case bytes.Contains(line, jsonOK) && (op != opGet || bytes.Contains(line, jsonValue)):
		return replyOK, "", nil
	case op == opGet && bytes.Contains(line, jsonNotFound):
		return replyMiss, "GET of a missing key", nil
	}
	return replyErr, strings.TrimSpace(string(line)), nil
}

// replySize is the length of the first complete reply in b, 0 while it is
// incomplete. JSON replies are lines; a RESP reply to the loads is a simple
// string, an error, an integer or a bulk string.
func replySize(b []byte, proto wireProto) (int, error) {
	_, isJSON := proto.(jsonProto)
	var line int
	if isJSON {
		line = bytes.IndexByte(b, '\n')
	} else {
		line = bytes.Index(b, []byte("\r\n"))
	}
	if line < 0 {
		if len(b) > respLineBytesMax { // as driveConn's bufio.Reader
			return 0, fmt.Errorf("a reply line longer than %d bytes", respLineBytesMax)
		}
		return 0, nil
	}
	if isJSON {
		return line + 1, nil
	}
	switch b[0] {
	case '+', '-', ':':
		return line + 2, nil
	case '$':
		n, err := parseRESPInt(b[1:line])
		if err != nil {
			return 0, err
		}
		if n < 0 {
			return line + 2, nil // the null bulk string
		}
		if size := line + 2 + int(n) + 2; size <= len(b) {
			return size, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("unexpected RESP reply of type %q", b[0])
}

// probeRESP tells whether the server at addr answers a RESP PING with
// PONG: "" if it does, else what happened instead.
func probeRESP(addr string) string {
	c, err := dialRESP(addr, 5*time.Second)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	if err := c.c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err.Error()
	}
	if _, err := c.c.Write(appendRESPCommand(nil, []byte("PING"))); err != nil {
		return "sending PING: " + err.Error()
	}
	// A server without RESP answers in its own protocol: say so plainly
	// rather than as a RESP framing error.
	if b, err := c.r.Peek(1); err != nil {
		return "no answer to a RESP PING: " + err.Error()
	} else if b[0] == '{' {
		line, _ := c.r.ReadSlice('\n')
		return fmt.Sprintf("it answered a RESP PING with a JSON line, %.70s", bytes.TrimSpace(line))
	}
	v, err := readRESP(c.r)
	switch {
	case err != nil:
		return "PING: " + err.Error()
	case v.kind != '+' || v.str != "PONG":
		return "PING answered " + v.String()
	}
	return ""
}

// fillKeys stores keys 0..n-1 with value at addr, through pipelined
// multi-key writes (bulk_set or MSET of fillBatchKeys keys, fillDepth deep
// on each of fillConns connections), showing its progress.
func fillKeys(addr string, proto wireProto, n int, value []byte, title string, progressOut io.Writer) (time.Duration, error) {
	var next, done atomic.Int64
	start := time.Now()
	bar := progress.Start(progressOut, progress.Spec{
		Title: title, Total: int64(n), Unit: "keys", Count: done.Load,
		Detail: func() string { return fmt.Sprintf("%.0f keys/s", float64(done.Load())/time.Since(start).Seconds()) },
	})
	defer bar.Finish()
	errs := make([]error, fillConns)
	var wg sync.WaitGroup
	for w := range fillConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = fillWorker(addr, proto, n, value, &next, &done)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("storing %d keys: %w", n, err)
	}
	return time.Since(start), nil
}

func fillWorker(addr string, proto wireProto, n int, value []byte, next, done *atomic.Int64) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReaderSize(c, respLineBytesMax)
	var buf []byte
	keys := make([][]byte, 0, fillBatchKeys)
	for {
		from := int(next.Add(fillBatchKeys*fillDepth)) - fillBatchKeys*fillDepth
		if from >= n {
			return nil
		}
		to := min(from+fillBatchKeys*fillDepth, n)
		buf = buf[:0]
		sent := 0
		for b := from; b < to; b += fillBatchKeys {
			keys = keys[:0]
			for i := b; i < min(b+fillBatchKeys, to); i++ {
				keys = append(keys, appendKey(nil, i))
			}
			buf = proto.appendMSet(buf, keys, value)
			sent++
		}
		if err := c.SetDeadline(time.Now().Add(compareReplyTimeout)); err != nil {
			return err
		}
		if _, err := c.Write(buf); err != nil {
			return err
		}
		for range sent {
			outcome, msg, err := proto.readReply(r, opMSet)
			if err != nil {
				return err
			}
			if outcome != replyOK {
				return fmt.Errorf("a multi-key write failed: %s", msg)
			}
		}
		done.Add(int64(to - from))
	}
}

// rssPhase starts a fresh dkv node and a fresh Redis, reads their RSS,
// stores cfg.keys keys in each, waits for each to settle (dkv's snapshot
// written, Redis's AOF rewrite done), and reads their RSS again.
func rssPhase(cfg compareConfig, bin, work string, value []byte, out io.Writer) ([]rssResult, error) {
	fmt.Fprintf(out, "\nRSS: fresh servers, each filled with %s keys (key%%08d) of %d-byte values by pipelined multi-key writes\n",
		commas(int64(cfg.keys)), cfg.valueBytes)
	fmt.Fprintf(out, "  (%d keys per bulk_set / MSET, %d deep on %d connections), then left to settle (no snapshot or AOF rewrite running)\n",
		fillBatchKeys, fillDepth, fillConns)
	results := []rssResult{{name: "dkv"}, {name: "redis", skip: cfg.redisMiss}}

	dkv, err := nodeproc.Start(bin, filepath.Join(work, "dkv-rss"), strings.Fields(cfg.serverFlags)...)
	if err != nil {
		return nil, err
	}
	err = measureRSS(&results[0], dkv.Pid(), dkv.Addr, jsonProto{}, cfg, value, func() (int, error) { return dkvSettled(dkv.Addr) })
	dkv.Kill()
	if err != nil {
		return nil, fmt.Errorf("dkv: %w", err)
	}
	os.RemoveAll(filepath.Join(work, "dkv-rss"))

	if cfg.redisBin != "" {
		rs, err := startRedis(cfg.redisBin, filepath.Join(work, "redis-rss"))
		if err != nil {
			return nil, err
		}
		err = measureRSS(&results[1], rs.pid(), rs.addr, respProto{}, cfg, value, func() (int, error) { return redisSettled(rs.addr) })
		rs.stop()
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
	}

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nserver\tkeys held\tfill time\tfill keys/s\tRSS empty\tRSS filled\tpeak RSS (VmHWM)\t")
	for _, r := range results {
		if r.skip != "" {
			fmt.Fprintf(tw, "%s\tskipped\t\t\t\t\t\t\n", r.name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2fs\t%s\t%s\t%s\t%s\t\n", r.name, commas(int64(r.keysHeld)), r.fill.Seconds(), commas(int64(r.fillKeysPerSec)),
			mib(r.empty), mib(r.filled), mib(r.peak))
	}
	tw.Flush()
	if results[1].skip == "" {
		d, rd := results[0], results[1]
		fmt.Fprintf(out, "dkv ÷ redis: RSS filled %.2f (target <= 1.2); growth from empty %.2f (%s against %s); fill rate %.2f\n",
			float64(d.filled)/float64(rd.filled), float64(d.filled-d.empty)/float64(rd.filled-rd.empty),
			mib(d.filled-d.empty), mib(rd.filled-rd.empty), d.fillKeysPerSec/rd.fillKeysPerSec)
	}
	return results, nil
}

// rssSettleTimeout bounds the wait for a server to finish its background
// work (a snapshot, an AOF rewrite) after the fill.
const rssSettleTimeout = 2 * time.Minute

func measureRSS(r *rssResult, pid int, addr string, proto wireProto, cfg compareConfig, value []byte, settled func() (int, error)) error {
	var err error
	if r.empty, err = procRSS(pid); err != nil {
		return err
	}
	if r.fill, err = fillKeys(addr, proto, cfg.keys, value, fmt.Sprintf("RSS: storing %s keys in %s", commas(int64(cfg.keys)), r.name), cfg.progress); err != nil {
		return err
	}
	r.fillKeysPerSec = float64(cfg.keys) / r.fill.Seconds()
	// Redis starts a rewrite the fill made due from its cron, up to
	// 100 ms later: asked at once, it would say none was running.
	time.Sleep(settleMin)
	deadline := time.Now().Add(rssSettleTimeout)
	for {
		n, err := settled()
		if err != nil && !errors.Is(err, errNotSettled) {
			return err
		}
		if err == nil {
			r.keysHeld = n
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still busy (snapshot or AOF rewrite) %v after the fill", rssSettleTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r.keysHeld != cfg.keys {
		return fmt.Errorf("holds %d keys after storing %d", r.keysHeld, cfg.keys)
	}
	// A moment for memory freed by the fill's buffers to be given back,
	// as it would be on a server that has been idle a second.
	time.Sleep(time.Second)
	if r.filled, err = procRSS(pid); err != nil {
		return err
	}
	r.peak, err = procStatusBytes(pid, "VmHWM")
	return err
}

var errNotSettled = errors.New("background work running")

// dkvSettled is the node's key count once no snapshot is being written.
func dkvSettled(addr string) (int, error) {
	c, err := client.Dial(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return 0, err
	}
	if st.Snapshotting {
		return 0, errNotSettled
	}
	return st.Keys, nil
}

// Waiting for a server's background work after a window (settleServer).
const (
	// settleMin is the least wait: Redis starts an AOF rewrite that a
	// window's writes made due from its serverCron, ten times a second,
	// so up to 100 ms after the window; and the load's last batches are
	// answered meanwhile.
	settleMin = 250 * time.Millisecond
	// settlePoll is how often busy is asked meanwhile.
	settlePoll = 20 * time.Millisecond
)

// settleServer waits at least settleMin and until busy says the server's
// background work is done (rssSettleTimeout at most); it tells whether
// busy said it was running at any time. A nil busy waits settleMin.
func settleServer(busy func() (bool, error)) (wasBusy bool, err error) {
	start := time.Now()
	for {
		b := false
		if busy != nil {
			if b, err = busy(); err != nil {
				return wasBusy, err
			}
		}
		wasBusy = wasBusy || b
		if !b && time.Since(start) >= settleMin {
			return wasBusy, nil
		}
		if time.Since(start) > rssSettleTimeout {
			return wasBusy, fmt.Errorf("still busy (snapshot or AOF rewrite) after %v", rssSettleTimeout)
		}
		time.Sleep(settlePoll)
	}
}

// dkvSnapshotting tells whether the node at addr is writing a snapshot.
func dkvSnapshotting(addr string) (bool, error) {
	_, err := dkvSettled(addr)
	if errors.Is(err, errNotSettled) {
		return true, nil
	}
	return false, err
}

// redisRewriting tells whether Redis at addr is rewriting its AOF, or has
// one scheduled.
func redisRewriting(addr string) (bool, error) {
	c, err := dialRESP(addr, 5*time.Second)
	if err != nil {
		return false, err
	}
	defer c.Close()
	info, err := c.do(10*time.Second, "INFO", "persistence")
	if err != nil {
		return false, err
	}
	return redisInfoRewriting(info.str), nil
}

// redisInfoRewriting reads INFO persistence: an AOF rewrite running or
// scheduled.
func redisInfoRewriting(info string) bool {
	return strings.Contains(info, "aof_rewrite_in_progress:1") || strings.Contains(info, "aof_rewrite_scheduled:1")
}

// redisSettled is Redis's key count once no AOF rewrite is running.
func redisSettled(addr string) (int, error) {
	c, err := dialRESP(addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	info, err := c.do(10*time.Second, "INFO", "persistence")
	if err != nil {
		return 0, err
	}
	if redisInfoRewriting(info.str) {
		return 0, errNotSettled
	}
	n, err := c.do(10*time.Second, "DBSIZE")
	if err != nil {
		return 0, err
	}
	return int(n.num), nil
}

// printLoad prints one load's table: each server's medians over the
// rounds, and dkv's as ratios of Redis's.
func printLoad(cfg compareConfig, servers []*compareServer, lr loadResult, out io.Writer) {
	fmt.Fprintf(out, "\n%s: %s\n", lr.load.title, lr.load.describe(cfg.space, cfg.valueBytes))
	fmt.Fprintf(out, "  medians over %d round(s) of %v (after %v of warmup each); CPU/op is the server's user+system time ÷ ops; gen = the load generator's\n",
		cfg.rounds, cfg.duration, cfg.warmup)
	fmt.Fprintf(out, "  latency: from a batch's write to each of its replies, in a closed loop (a connection sends its next batch once its replies are in),\n"+
		"  so a stall holds back the requests that would have come meanwhile: the percentiles are of the requests made, not of a steady arrival rate\n")
	fmt.Fprintf(out, "  after each window the server is left to finish its background work (snapshot, AOF rewrite) before the next one starts;\n"+
		"  \"of it after\" is its CPU in that time, counted in CPU/op (in brackets: the windows after which that work ran)\n")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tops/s\tp50\tp99\tp99.9\tCPU/op\tof it after\tcsw/op\tfaults/op\tgen CPU/op\tRSS\terrors\tops/s by round\t")
	meds := make([]medians, len(servers))
	have := make([]bool, len(servers))
	for si, s := range servers {
		meds[si], have[si] = lr.medians(si)
		if !have[si] {
			fmt.Fprintf(tw, "%s\tskipped\t\t\t\t\t\t\t\t\t\t\t\t\n", s.name)
			continue
		}
		m := meds[si]
		rounds := make([]string, len(m.rates))
		for i, r := range m.rates {
			rounds[i] = commas(int64(r))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1fµs\t%.1fµs (%d)\t%.2f\t%.3f\t%.1fµs\t%s\t%d\t%s\t\n", s.name, commas(int64(m.rate)),
			ms3(m.p50), ms3(m.p99), ms3(m.p999), m.cpuPerOp, m.tailPerOp, m.busyAfter, m.switchesPerOp, m.faultsPerOp, m.genPerOp, mib(int64(m.rss)), m.errors, strings.Join(rounds, " "))
	}
	if have[srvRedis] {
		rd := meds[srvRedis]
		for _, si := range dkvColumns(len(servers)) {
			if !have[si] {
				continue
			}
			m := meds[si]
			fmt.Fprintf(tw, "%s ÷ redis\t%.2f×\t%.2f×\t%.2f×\t%.2f×\t%.2f×\t\t%.2f×\t%s\t%.2f×\t%.2f×\t\t%s\t\n", servers[si].name,
				m.rate/rd.rate, m.p50/rd.p50, m.p99/rd.p99, m.p999/rd.p999, m.cpuPerOp/rd.cpuPerOp, m.switchesPerOp/rd.switchesPerOp, ratioOrDash(m.faultsPerOp, rd.faultsPerOp), m.genPerOp/rd.genPerOp, m.rss/rd.rss,
				roundRatios(lr.windows[si], lr.windows[srvRedis]))
		}
	}
	tw.Flush()
	for si, s := range servers {
		if have[si] && meds[si].errors > 0 {
			fmt.Fprintf(out, "  %s: %d error replies, the first: %s\n", s.name, meds[si].errors, meds[si].firstErr)
		}
	}
}

// ratioOrDash is a÷b as a table cell, or "–" where b is 0 (a server
// whose heap did not grow took no faults).
func ratioOrDash(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// roundRatios is each round's throughput ratio, for how much they spread.
func roundRatios(a, b []windowResult) string {
	var s []string
	for i := range min(len(a), len(b)) {
		s = append(s, fmt.Sprintf("%.2f", a[i].rate()/b[i].rate()))
	}
	return strings.Join(s, " ")
}

// roundRatioSpread is the median, least and greatest of load's per-round
// throughput ratios of column si against Redis: a comparison within each
// round, which the ratio of the medians, taken from different rounds,
// leaves out. ok is false where either has no rounds.
func roundRatioSpread(load string, si int, res *compareResult) (mid, lo, hi float64, ok bool) {
	i := slices.IndexFunc(res.loads, func(lr loadResult) bool { return lr.load.name == load })
	if i < 0 || si >= len(res.loads[i].windows) || srvRedis >= len(res.loads[i].windows) {
		return 0, 0, 0, false
	}
	a, b := res.loads[i].windows[si], res.loads[i].windows[srvRedis]
	var rs []float64
	for k := range min(len(a), len(b)) {
		if a[k].elapsed > 0 && b[k].elapsed > 0 && b[k].ops > 0 {
			rs = append(rs, a[k].rate()/b[k].rate())
		}
	}
	if len(rs) == 0 {
		return 0, 0, 0, false
	}
	return median(rs), slices.Min(rs), slices.Max(rs), true
}

// compareTarget is one figure of the issue with its target.
type compareTarget struct {
	figure string
	load   string  // the load it is read from; "" for RSS
	cpu    bool    // the CPU per op ratio, not throughput
	target float64 // ratio dkv ÷ Redis
	atMost bool    // the ratio must be at most target (else at least)
}

var compareTargets = []compareTarget{
	{figure: "SET c1 throughput", load: "set-c1", target: 1.0},
	{figure: "SET c50 throughput", load: "set-c50", target: 1.2},
	{figure: "SET c50 ×16 throughput", load: "set-c50x16", target: 1.0},
	{figure: "GET c50 throughput", load: "get-c50", target: 1.0},
	{figure: "GET c50 ×16 throughput", load: "get-c50x16", target: 0.8},
	{figure: "MSET of 10 throughput", load: "mset10"},
	{figure: "server CPU/op at SET c50", load: "set-c50", cpu: true, target: 1.0, atMost: true},
	{figure: "RSS with the keys stored", target: 1.2, atMost: true},
}

// printCompareSummary prints the figures, dkv ÷ Redis, against
// their targets.
func printCompareSummary(cfg compareConfig, res *compareResult, out io.Writer) {
	fmt.Fprintf(out, "\nsummary: dkv ÷ redis, medians over %d round(s); throughput higher is better, CPU/op and RSS lower\n", cfg.rounds)
	fmt.Fprintf(out, "  (in brackets, throughput round by round: the median and range of each round's own ratio, the servers\n"+
		"  having taken their turns in that round; the figure judged is the ratio of the medians)\n")
	if cfg.redisBin == "" {
		fmt.Fprintf(out, "  no ratios: redis skipped: %s\n", cfg.redisMiss)
	}
	if cfg.rounds < 3 {
		fmt.Fprintf(out, "  fewer than 3 rounds: the figures are not judged (the issue asks for medians over >= 3)\n")
	}
	unsafe := unsafeNoFsync(cfg.serverFlags) || unsafeNoFsync(cfg.altFlags)
	if unsafe {
		fmt.Fprintf(out, "  dkv with --unsafe-no-fsync: the figures are not judged (Redis fsyncs every write)\n")
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	cols := dkvColumns(len(res.servers))
	fmt.Fprint(tw, "figure\ttarget\t")
	for _, si := range cols {
		fmt.Fprintf(tw, "%s\t", res.servers[si])
	}
	fmt.Fprintln(tw)
	for _, t := range compareTargets {
		target := "none"
		if t.target > 0 {
			op := ">="
			if t.atMost {
				op = "<="
			}
			target = fmt.Sprintf("%s %.1f", op, t.target)
		}
		cells := make([]string, len(cols))
		for col, si := range cols {
			ratio, why := summaryRatio(t, si, res)
			errs := loadErrors(t.load, si, res)
			switch {
			case why != "":
				cells[col] = why
			case errs > 0:
				// Error replies are not ops: a server that errs is slower
				// for it, or its CPU per op counts the errors' work.
				cells[col] = fmt.Sprintf("%.2f (not judged: %d error replies)", ratio, errs)
			case t.target == 0:
				cells[col] = fmt.Sprintf("%.2f", ratio)
			case cfg.rounds < 3 || unsafe:
				cells[col] = fmt.Sprintf("%.2f (not judged)", ratio)
			case t.atMost && ratio <= t.target || !t.atMost && ratio >= t.target:
				cells[col] = fmt.Sprintf("%.2f met", ratio)
			default:
				cells[col] = fmt.Sprintf("%.2f NOT MET", ratio)
			}
		}
		if t.load != "" && !t.cpu {
			for col, si := range cols {
				if m, lo, hi, ok := roundRatioSpread(t.load, si, res); ok {
					cells[col] += fmt.Sprintf(" (%.2f, %.2f–%.2f)", m, lo, hi)
				}
			}
		}
		figure := t.figure
		if t.load == "" {
			figure = fmt.Sprintf("RSS with %s keys", commas(int64(cfg.keys)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", figure, target, strings.Join(cells, "\t"))
	}
	tw.Flush()
	if res.rss != nil {
		fmt.Fprintln(out, "  (RSS: one dkv process serves both protocols; it is filled through JSON bulk_set)")
	}
}

// unsafeNoFsync tells whether cmd/node flags turn fsync off: the flag
// package takes -unsafe-no-fsync and --unsafe-no-fsync, with =true or
// without a value (a boolean flag takes no separate one).
func unsafeNoFsync(flags string) bool {
	on := false
	for _, f := range strings.Fields(flags) {
		name, val, hasVal := strings.Cut(strings.TrimLeft(f, "-"), "=")
		if !strings.HasPrefix(f, "-") || name != "unsafe-no-fsync" {
			continue
		}
		on = !hasVal
		if hasVal {
			on, _ = strconv.ParseBool(val)
		}
	}
	return on
}

// loadErrors is the error replies in load's windows of column si and of
// Redis together; 0 for the RSS figure (load "").
func loadErrors(load string, si int, res *compareResult) int {
	i := slices.IndexFunc(res.loads, func(lr loadResult) bool { return lr.load.name == load })
	if load == "" || i < 0 {
		return 0
	}
	n := 0
	for _, sj := range []int{si, srvRedis} {
		if sj < len(res.loads[i].windows) {
			for _, w := range res.loads[i].windows[sj] {
				n += w.errors
			}
		}
	}
	return n
}

// summaryRatio is one figure's ratio for column si, or why there is none.
func summaryRatio(t compareTarget, si int, res *compareResult) (float64, string) {
	if t.load == "" {
		if res.rss == nil {
			return 0, "not run"
		}
		if res.rss[1].skip != "" {
			return 0, "no redis"
		}
		if si == srvRESP && res.skipped[srvRESP] != "" {
			return 0, "no RESP"
		}
		if si >= srvAltJSON {
			return 0, "not run" // the RSS phase runs the main dkv only
		}
		return float64(res.rss[0].filled) / float64(res.rss[1].filled), ""
	}
	i := slices.IndexFunc(res.loads, func(lr loadResult) bool { return lr.load.name == t.load })
	if i < 0 {
		return 0, "not run"
	}
	lr := res.loads[i]
	m, ok := lr.medians(si)
	if !ok {
		return 0, "skipped"
	}
	rd, ok := lr.medians(srvRedis)
	if !ok {
		return 0, "no redis"
	}
	if t.cpu {
		return m.cpuPerOp / rd.cpuPerOp, ""
	}
	return m.rate / rd.rate, ""
}

// redisServer is a redis-server child process in its own directory.
type redisServer struct {
	cmd     *exec.Cmd
	addr    string
	logPath string
	exited  chan struct{}
	waitErr error
}

// redisReadyTimeout bounds Redis's start on an empty directory.
const redisReadyTimeout = 20 * time.Second

// startRedis runs bin on a free loopback port with its data in dir:
// durable as dkv is (AOF, fsync before every reply), no RDB snapshots.
func startRedis(bin, dir string) (*redisServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := nodeproc.FreePort()
	if err != nil {
		return nil, err
	}
	s := &redisServer{addr: fmt.Sprintf("127.0.0.1:%d", port), logPath: filepath.Join(dir, "redis.log"), exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--logfile", s.logPath)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(redisReadyTimeout)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("redis-server exited before answering (%v); its log:\n%s", s.waitErr, s.log())
		default:
		}
		if probeRESP(s.addr) == "" {
			if err := checkRedisConfig(s.addr); err != nil {
				s.stop()
				return nil, err
			}
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("redis-server not answering PING after %v; its log:\n%s", redisReadyTimeout, s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisDurableConfig is the configuration the comparison needs of Redis:
// every write in the AOF and fsync'd before its reply, no RDB snapshots.
var redisDurableConfig = map[string]string{"appendonly": "yes", "appendfsync": "always", "save": ""}

// checkRedisConfig asks the running Redis for redisDurableConfig (CONFIG
// GET): the flags given are not taken on trust, since a binary that
// ignored one would be measured without its fsyncs.
func checkRedisConfig(addr string) error {
	c, err := dialRESP(addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, name := range slices.Sorted(maps.Keys(redisDurableConfig)) {
		v, err := c.do(10*time.Second, "CONFIG", "GET", name)
		if err != nil {
			return fmt.Errorf("redis CONFIG GET %s: %w", name, err)
		}
		if len(v.array) != 2 || v.array[1].str != redisDurableConfig[name] {
			return fmt.Errorf("redis CONFIG GET %s: %s, want %q", name, v, redisDurableConfig[name])
		}
	}
	return nil
}

func (s *redisServer) pid() int { return s.cmd.Process.Pid }

func (s *redisServer) log() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop asks Redis to shut down (SIGTERM) and kills it if it has not within
// a few seconds.
func (s *redisServer) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// procRSS is the resident set size of process pid, in bytes.
func procRSS(pid int) (int64, error) { return procStatusBytes(pid, "VmRSS") }

// procStatusBytes reads a "Name:  N kB" line of /proc/PID/status.
func procStatusBytes(pid int, name string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, name+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc/%d/status: %q", pid, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status: %q: %w", pid, line, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s line", pid, name)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// ms3 writes a latency in nanoseconds as milliseconds, with three decimals:
// Redis's GETs are answered in tens of microseconds.
func ms3(ns float64) string { return fmt.Sprintf("%.3fms", ns/1e6) }

// commas writes n with thousands separators.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out string
	for len(s) > 3 {
		out = "," + s[len(s)-3:] + out
		s = s[:len(s)-3]
	}
	if neg {
		s = "-" + s
	}
	return s + out
}

// contextSwitches is the context switches of the process's threads so far
// (voluntary and not), from /proc/PID/task/*/status; 0 where unreadable.
// Threads that exited are not counted; the Go runtime and Redis keep theirs.
func contextSwitches(pid int) int64 {
	dirs, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var n int64
	for _, d := range dirs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, d.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				v, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
				n += v
			} else if rest, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
				v, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
				n += v
			}
		}
	}
	return n
}
