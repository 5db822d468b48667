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
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"dkv/client"
	"dkv/internal/certgen"
	"dkv/internal/nodeproc"
	"dkv/internal/progress"
)

type clusterBenchConfig struct {
	clients    int
	duration   time.Duration // measured time per system
	warmup     time.Duration
	slices     int
	valueBytes int
	space      int
	dir        string
	nodeBin    string
	compareBin string // a second cluster of this binary, for an A/B in one run
	peerTLS    bool   // also a cluster of each binary whose peer connections are TLS
	flags      string // more cmd/node flags, for both systems
	// values, when set, gives each Set its value (from the client's own
	// random stream); otherwise every value is valueBytes of "v".
	values func(r *rand.Rand) string
	// between, when set, runs after each slice, with every system's
	// clients idle and the paused ones stopped: the throughput benchmark
	// measures the disk alone there, in the same weather as the slice.
	between func(s *system) error
	// progress, when set, gets a progress bar (or lines) over the slices.
	progress io.Writer
}

// register adds the flags that every benchmark of alternating systems
// shares; clientsNote says how its clients spread over a system's nodes.
func (cfg *clusterBenchConfig) register(fs *flag.FlagSet, clientsNote string) {
	fs.IntVar(&cfg.clients, "clients", 50, "concurrent clients per system, one connection each "+clientsNote)
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time per system, cut in --slices alternating between them")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured time per system before the first slice")
	fs.IntVar(&cfg.slices, "slices", 10, "pieces each system's time is cut into; the systems take turns, so that all see the same weather")
	fs.IntVar(&cfg.space, "keys", 100_000, "key space the Sets draw from")
	fs.StringVar(&cfg.dir, "dir", ".", "directory (on the disk to test) for the data directories; removed afterwards")
	fs.StringVar(&cfg.nodeBin, "node-bin", "", "prebuilt cmd/node binary (default: build one)")
}

func runClusterBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg clusterBenchConfig
	cfg.register(fs, "(the cluster's: one per node they talk to)")
	fs.IntVar(&cfg.valueBytes, "value-bytes", 100, "bytes per value")
	fs.StringVar(&cfg.compareBin, "compare-bin", "", "another cmd/node binary: a second cluster of it takes turns with the others (an A/B of two builds in one run)")
	fs.StringVar(&cfg.flags, "server-flags", "", "extra cmd/node flags for every node of both systems (e.g. --unsafe-no-fsync, to see what the disk costs)")
	fs.BoolVar(&cfg.peerTLS, "peer-tls", false, "also a cluster (of each binary) whose peer connections are TLS (--peer-tls-cert, --peer-tls-key,\n--peer-tls-ca), taking turns with the others")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.clients < 1 || cfg.slices < 1 || cfg.duration <= 0 || cfg.space < 1 {
		fmt.Fprintln(stderr, "need --clients, --slices, --duration and --keys positive")
		return 2
	}
	cfg.progress = stderr
	if _, err := clusterBench(cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "bench cluster: %v\n", err)
		return 1
	}
	return 0
}

// system is one of the two stores the cluster benchmark compares, with
// its clients' Set.
type system struct {
	name  string
	sets  []func(ctx context.Context, key, value string) error
	space int      // keys its Sets draw from; 0: the config's
	pids  []int    // the server processes, whose CPU time the slices count
	roles []string // what each of pids is, for the per-process figures
	res   runResult
	// loaded is the time its clients were writing: the warmup, and each
	// slice with its lead-in and the wait for the calls in flight at its
	// end (more than the measured time, whose rates leave those out).
	loaded time.Duration
	// sliceRates: the system's successful Sets a second in each of its
	// slices, in order, for the spread that the totals hide.
	sliceRates []float64
	cpu        time.Duration   // server CPU time used in the measured slices
	cpus       []time.Duration // the same, per process of pids
	faults     int64           // the processes' minor page faults in the measured slices
	// pause: the processes are stopped (SIGSTOP) outside the system's own
	// turns, so that work a server defers to its idle time (an indexed
	// node's graph links and merges) runs in its own slices, on its own
	// clock, and not in the other system's, where it would take CPU from
	// that system and go uncounted in its own. Not for a cluster, whose
	// nodes would time out each other on waking.
	pause bool
	// procs are the processes of pids where the benchmark started them
	// itself (nil otherwise): a failed signal then says how one ended.
	procs []*nodeproc.Process
}

// signal sends sig to the system's processes, if it pauses.
func (s *system) signal(sig syscall.Signal) error {
	if !s.pause {
		return nil
	}
	for i, pid := range s.pids {
		if err := syscall.Kill(pid, sig); err != nil {
			err = fmt.Errorf("%s: signal %v to %d: %w", s.name, sig, pid, err)
			if i < len(s.procs) && s.procs[i].Exited() {
				exit := s.procs[i].Exit()
				err = fmt.Errorf("%w; the server exited (%v)%s, its log ends:\n%s", err, exit, hangupHint(exit), logTail(s.procs[i].Stderr(), logTailLines))
			}
			return err
		}
	}
	return nil
}

// hangupHint explains a server's death by SIGHUP. The kernel sends SIGHUP
// (then SIGCONT) to every process of a process group that becomes orphaned
// while one of them is stopped: the servers share the bench's group (so
// that a Ctrl-C reaches them), and a paused one is stopped, so the exit of
// the shell that started the bench in the background killed it. (This
// ended two runs of bench index in the thirteenth session, then
// unexplained.)
func hangupHint(exit error) string {
	var ee *exec.ExitError
	if !errors.As(exit, &ee) {
		return ""
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGHUP {
		return ""
	}
	return " (a hangup: the shell that started the bench exited while this paused server was stopped," +
		" which orphaned their process group; run the bench in the foreground, or under setsid or nohup)"
}

// logTailLines is how much of a dead server's log an error quotes.
const logTailLines = 30

// logTail is the last n lines of log.
func logTail(log string, n int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// resumeOnSignal wakes every paused system's processes when a signal
// comes, then hands the signal to raise; it returns at done.
func resumeOnSignal(systems []*system, sigs <-chan os.Signal, done <-chan struct{}, raise func(os.Signal)) {
	select {
	case sig := <-sigs:
		for _, s := range systems {
			s.signal(syscall.SIGCONT)
		}
		raise(sig)
	case <-done:
	}
}

// cpuPerOp is the server CPU time per acknowledged operation, all of the
// system's processes together.
func (s *system) cpuPerOp() time.Duration {
	if s.res.ops == 0 {
		return 0
	}
	return s.cpu / time.Duration(s.res.ops)
}

// faultsPerOp is the servers' minor page faults per acknowledged
// operation.
func (s *system) faultsPerOp() float64 {
	if s.res.ops == 0 {
		return 0
	}
	return float64(s.faults) / float64(s.res.ops)
}

type clusterBenchResult struct {
	single, cluster runResult
	compare         runResult // the cluster of compareBin, if any
}

// clusterBench measures durable Sets from cfg.clients clients into a single
// node and into a 3-node cluster (through its leader, which acknowledges a
// write once a majority has it on disk), in alternating slices of the same
// run, and reports the cluster's figures as ratios of the single node's.
// With cfg.compareBin, a second cluster of that binary takes its turns
// beside them: an A/B of two builds under the same weather.
func clusterBench(cfg clusterBenchConfig, out io.Writer) (*clusterBenchResult, error) {
	work, bin, err := workspace(cfg.dir, "dkv-bench-cluster-", cfg.nodeBin, out)
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
	systems := []*system{{name: "single node", pids: []int{single.Pid()}, roles: []string{"single"}}}
	type benchCluster struct {
		cl   *nodeproc.Cluster
		lead int
		term uint64
		sys  *system
	}
	var clusters []benchCluster
	type variant struct {
		bin   string
		flags []string
		what  string
	}
	variants := []variant{{bin, flags, ""}}
	if cfg.compareBin != "" {
		variants = append(variants, variant{cfg.compareBin, flags, ""})
	}
	if cfg.peerTLS {
		certs, err := certgen.Write(work, []string{"127.0.0.1", "localhost"}, 24*time.Hour)
		if err != nil {
			return nil, err
		}
		tlsFlags := append(slices.Clone(flags), "--peer-tls-cert", certs.Cert, "--peer-tls-key", certs.Key, "--peer-tls-ca", certs.CA)
		for _, v := range slices.Clone(variants) {
			variants = append(variants, variant{v.bin, tlsFlags, ", peer TLS"})
		}
	}
	for k, v := range variants {
		b := v.bin
		name, dir := "3-node cluster", "cluster"
		if len(variants) > 1 {
			name, dir = fmt.Sprintf("3-node cluster %c%s", 'A'+k, v.what), fmt.Sprintf("cluster-%c", 'a'+k)
		}
		cl, err := nodeproc.NewCluster(b, filepath.Join(work, dir), 3, v.flags...)
		if err != nil {
			return nil, err
		}
		defer cl.KillAll()
		if err := cl.StartAll(); err != nil {
			return nil, err
		}
		lead, st, err := cl.WaitLeader(30 * time.Second)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "%s (%s) on %s, node %d leads\n", name, b, strings.Join(cl.Addrs(), ","), lead)
		sys := &system{name: name}
		for i := range cl.Size() {
			sys.pids = append(sys.pids, cl.Node(i).Pid())
			role := fmt.Sprintf("follower %d", i)
			if i == lead {
				role = fmt.Sprintf("leader %d", i)
			}
			if len(variants) > 1 {
				role = fmt.Sprintf("%c %s", 'A'+k, role)
			}
			sys.roles = append(sys.roles, role)
		}
		systems = append(systems, sys)
		clusters = append(clusters, benchCluster{cl: cl, lead: lead, term: st.Term, sys: sys})
	}
	fmt.Fprintf(out, "single node on %s; server flags %q\n", single.Addr, cfg.flags)
	for _, s := range systems {
		s.cpus = make([]time.Duration, len(s.pids))
	}
	for range cfg.clients {
		c, err := client.Dial(single.Addr)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		systems[0].sets = append(systems[0].sets, c.Set)
		for _, bc := range clusters {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			kv, err := client.DialCluster(ctx, bc.cl.Addrs())
			cancel()
			if err != nil {
				return nil, err
			}
			defer kv.Close()
			bc.sys.sets = append(bc.sys.sets, kv.Set)
		}
	}

	fmt.Fprintf(out, "run: %d clients each, %d-byte values, %v per system in %d alternating slices, after %v of warmup each ...\n",
		cfg.clients, cfg.valueBytes, cfg.duration, cfg.slices, cfg.warmup)
	if err := alternate(systems, cfg); err != nil {
		return nil, err
	}
	for _, bc := range clusters {
		end, st, err := bc.cl.WaitLeader(30 * time.Second)
		if err != nil {
			return nil, err
		}
		// An election under load is worth knowing of even when the lead
		// came back to the same node.
		if end != bc.lead || st.Term != bc.term {
			fmt.Fprintf(out, "note: in %s the lead moved from node %d (term %d) to node %d (term %d) during the run\n", bc.sys.name, bc.lead, bc.term, end, st.Term)
		}
	}

	fmt.Fprintf(out, "\ncluster: durable Sets of %d-byte values, %d clients, %v per system (slices alternating)\n\n", cfg.valueBytes, cfg.clients, cfg.duration)
	printSystems(out, systems)
	sg := systems[0]
	for _, bc := range clusters {
		s, c := sg.res, bc.sys.res
		label := "cluster"
		if len(clusters) > 1 {
			label = strings.TrimPrefix(bc.sys.name, "3-node cluster ")[:1]
		}
		fmt.Fprintln(out)
		fmt.Fprintf(out, "throughput: %s / single = %.2f (target >= 0.5)\n", label, c.rate()/s.rate())
		fmt.Fprintf(out, "p99:        %s / single = %.2f (target <= 4)\n", label, float64(c.lat.percentile(99))/float64(s.lat.percentile(99)))
		fmt.Fprintf(out, "p50:        %s / single = %.2f\n", label, float64(c.lat.percentile(50))/float64(s.lat.percentile(50)))
		fmt.Fprintf(out, "CPU/op:     %s / single = %.2f (all three nodes' CPU time from /proc against the single node's)\n",
			label, float64(bc.sys.cpuPerOp())/float64(sg.cpuPerOp()))
	}
	res := &clusterBenchResult{single: sg.res, cluster: clusters[0].sys.res}
	if len(clusters) > 1 {
		res.compare = clusters[1].sys.res
	}
	return res, nil
}

// alternate runs every system's clients in turn: a warmup each, then
// cfg.slices rounds in which each system runs for one slice while the
// others' clients wait, the order rotating every round.
func alternate(systems []*system, cfg clusterBenchConfig) error {
	value := strings.Repeat("v", cfg.valueBytes)
	var active atomic.Int64 // index+1 of the system whose clients run; 0: none
	var measuring, stop atomic.Bool
	// The clients of the systems that are not active wait on switched,
	// parked: polling (a sleep of 1 ms and a look) woke the 50 clients of
	// every waiting system a thousand times a second each, CPU taken from
	// the slice of the system being measured.
	var switchMu sync.Mutex
	switched := sync.NewCond(&switchMu)
	setActive := func(v int64) {
		switchMu.Lock()
		active.Store(v)
		switched.Broadcast()
		switchMu.Unlock()
	}
	setStop := func() {
		switchMu.Lock()
		stop.Store(true)
		switched.Broadcast()
		switchMu.Unlock()
	}
	var busy atomic.Int64
	type clientRes struct {
		lat    latencies
		errors int
	}
	results := make([][]clientRes, len(systems))
	measured := make([]atomic.Int64, len(systems)) // successful Sets in measured slices
	var wg sync.WaitGroup
	for si, s := range systems {
		results[si] = make([]clientRes, len(s.sets))
		for ci, set := range s.sets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(si), uint64(ci)))
				space := cmp.Or(s.space, cfg.space)
				res := &results[si][ci]
				value := value
				res.lat = make(latencies, 0, 1<<14)
				for !stop.Load() {
					if active.Load() != int64(si+1) {
						switchMu.Lock()
						for active.Load() != int64(si+1) && !stop.Load() {
							switched.Wait()
						}
						switchMu.Unlock()
						continue
					}
					busy.Add(1)
					key := keyName(r.IntN(space))
					if cfg.values != nil {
						value = cfg.values(r)
					}
					t0 := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err := set(ctx, key, value)
					cancel()
					// Counted if it ended inside a measured slice of its
					// own system, as the throughput benchmark counts.
					counted := measuring.Load() && active.Load() == int64(si+1)
					if counted && err == nil {
						measured[si].Add(1) // before quiesce may see the call done
					}
					busy.Add(-1)
					if !counted {
						continue
					}
					if err != nil {
						res.errors++
						continue
					}
					res.lat = append(res.lat, time.Since(t0))
				}
			}()
		}
	}
	// quiesce switches every client off and waits for calls in flight.
	quiesce := func() {
		measuring.Store(false)
		setActive(0)
		for busy.Load() > 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	elapsed := make([]time.Duration, len(systems))
	defer func() {
		for _, s := range systems {
			s.signal(syscall.SIGCONT)
		}
	}()
	// A Ctrl-C reaches the servers too, in the bench's process group; a
	// stopped one would keep it pending, and stay stopped, once the bench
	// is gone. They are woken first, then the signal ends the bench.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	defer func() {
		signal.Stop(sigs)
		close(done)
	}()
	go resumeOnSignal(systems, sigs, done, func(sig os.Signal) {
		signal.Stop(sigs)
		syscall.Kill(os.Getpid(), sig.(syscall.Signal))
	})
	slice := cfg.duration / time.Duration(cfg.slices)
	var slicesDone atomic.Int64
	bar := progress.Start(cfg.progress, progress.Spec{
		Title: fmt.Sprintf("%d systems × %d slices of %v", len(systems), cfg.slices, slice),
		Total: int64(len(systems) * cfg.slices), Unit: "slices", Count: slicesDone.Load,
	})
	defer bar.Finish()
	for si, s := range systems {
		// Systems may share a server (loads of the throughput benchmark),
		// which the one before stopped.
		if err := s.signal(syscall.SIGCONT); err != nil {
			setStop()
			return err
		}
		from := time.Now()
		setActive(int64(si + 1))
		time.Sleep(cfg.warmup)
		quiesce()
		s.loaded += time.Since(from)
		if err := s.signal(syscall.SIGSTOP); err != nil {
			setStop()
			return err
		}
	}
	for k := range cfg.slices {
		// The order rotates every round (with two systems, it flips), so
		// that no system always follows the same one.
		order := make([]int, len(systems))
		for i := range order {
			order[i] = (i + k) % len(systems)
		}
		for _, si := range order {
			sys := systems[si]
			if err := sys.signal(syscall.SIGCONT); err != nil {
				setStop()
				return err
			}
			// A short unmeasured lead-in, so that the slice starts with
			// the system's pipeline full rather than empty.
			from := time.Now()
			setActive(int64(si + 1))
			time.Sleep(min(slice/10, 50*time.Millisecond))
			start, before, ops := time.Now(), processStats(sys.pids), measured[si].Load()
			measuring.Store(true)
			time.Sleep(slice)
			measuring.Store(false)
			took := time.Since(start)
			elapsed[si] += took
			for i, st := range processStats(sys.pids) {
				sys.cpus[i] += st.cpu - before[i].cpu
				sys.cpu += st.cpu - before[i].cpu
				sys.faults += st.faults - before[i].faults
			}
			quiesce() // a call counted in the slice may end here
			sys.loaded += time.Since(from)
			sys.sliceRates = append(sys.sliceRates, float64(measured[si].Load()-ops)/took.Seconds())
			if err := sys.signal(syscall.SIGSTOP); err != nil {
				setStop()
				return err
			}
			if cfg.between != nil {
				if err := cfg.between(sys); err != nil {
					setStop()
					return err
				}
			}
			slicesDone.Add(1)
		}
	}
	bar.Finish()
	setStop()
	wg.Wait()
	for si, s := range systems {
		s.res = runResult{name: s.name, clients: len(s.sets), elapsed: elapsed[si]}
		for _, cr := range results[si] {
			s.res.lat = append(s.res.lat, cr.lat...)
			s.res.errors += cr.errors
		}
		s.res.ops = len(s.res.lat)
	}
	return nil
}

// printSystems prints each system's figures, then each server process's
// CPU a write: where it goes (a leader's work against a follower's, say),
// which the system's sum hides.
func printSystems(out io.Writer, systems []*system) {
	printRates(out, "system", systems)
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tpid\tserver CPU/op\t")
	for _, s := range systems {
		for i, pid := range s.pids {
			perOp := 0.0
			if s.res.ops > 0 {
				perOp = float64(s.cpus[i].Nanoseconds()) / 1000 / float64(s.res.ops)
			}
			fmt.Fprintf(tw, "%s\t%d\t%.1fµs\t\n", s.roles[i], pid, perOp)
		}
	}
	tw.Flush()
}

// printRates prints a row for each system, its first column headed what:
// clients, Sets a second, latency, errors and server CPU a write.
func printRates(out io.Writer, what string, systems []*system) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tclients\tops/s\tp50\tp99\tp99.9\terrors\tserver CPU/op\t\n", what)
	for _, s := range systems {
		r := s.res
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t%.1fµs\t\n", s.name, r.clients, r.rate(),
			ms(r.lat.percentile(50)), ms(r.lat.percentile(99)), ms(r.lat.percentile(99.9)), r.errors,
			float64(s.cpuPerOp().Nanoseconds())/1000)
	}
	tw.Flush()
}
