// Command sim runs the deterministic simulator over many seeds and reports
// every failure with the one command that replays it.
//
//	go run ./cmd/sim --seeds 2000                   # seeds 1..2000
//	go run ./cmd/sim --seeds 500 --start 90000 --workers 1
//	go run ./cmd/sim --seeds 200 --determinism      # every seed twice, hashes compared
//	go run ./cmd/sim --seeds 1 --start 7 --ops 10000  # one long history (porcupine figure)
//	go run ./cmd/sim --mutations                    # the kill table of the planted bugs
//	go run ./cmd/sim --mutation undo-skipped -v     # one planted bug, and the seeds that did not count
//
// Each seed is an independent, single-threaded run, so seeds are spread over
// --workers goroutines without changing any result.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"dkv/internal/progress"
	"dkv/sim"
)

func main() {
	seeds := flag.Int("seeds", 100, "number of seeds to run")
	start := flag.Uint64("start", 1, "first seed")
	mode := flag.String("mode", "single", "deployment to simulate: "+strings.Join(sim.Modes(), ", "))
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "seeds run in parallel")
	ops := flag.Int("ops", sim.DefaultOps, "client requests per seed")
	without := flag.String("without", "", "comma-separated kinds of fault to switch off: "+strings.Join(sim.FaultSwitches(), ", "))
	determinism := flag.Bool("determinism", false, "run every seed twice and compare the trace hashes")
	tail := flag.Int("tail", 40, "trace entries shown per failure")
	reports := flag.String("reports", "", "directory for porcupine reports (default: $TMPDIR/dkv-sim)")
	verbose := flag.Bool("v", false, "print a line per seed")
	mutations := flag.Bool("mutations", false, fmt.Sprintf("run every planted bug of the catalogue (seeds 1..%d each, %d ops, unless --seeds or --ops say otherwise) and print the kill table", sim.MutationSeeds, sim.MutationOps))
	mutation := flag.String("mutation", "", "run one planted bug of the catalogue, as --mutations does")
	indexes := flag.String("indexes", "drawn", "nodes run the full-text and similarity indexes: drawn (in 40% of seeds), on or off")
	flag.Parse()
	if *mutations || *mutation != "" {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		cc := sim.CatchConfig{Seeds: sim.MutationSeeds, Ops: sim.MutationOps}
		if set["seeds"] {
			cc.Seeds = *seeds
		}
		if set["ops"] {
			cc.Ops = *ops
		}
		os.Exit(runMutations(*mutation, cc, max(*workers, 1), *verbose))
	}
	if _, err := sim.LookupMode(*mode); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	choice, err := sim.ParseIndexChoice(*indexes)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	base := sim.Config{Mode: *mode, Ops: *ops, TraceTail: *tail, ReportDir: *reports, Indexes: choice}
	if *without != "" {
		base.Without = strings.Split(*without, ",")
	}
	if *workers < 1 {
		*workers = 1
	}
	os.Exit(run(base, *start, *seeds, *workers, *determinism, *verbose))
}

// stats are the figures of a whole invocation.
type stats struct {
	seeds, failures, ops, mismatches int
	busy                             time.Duration // summed over workers: ~one core's time
	checkMax, checkSum               time.Duration
	checkMaxSeed                     uint64
	historyMax                       int
	overwritten, collected           int
	jumped                           int           // mesh seeds with a clock jump
	outOfStep                        time.Duration // past the grace (sim.Result.MeshOutOfStep)
	wiped, stillRejoining, replaced  int
	dataBound, indexBound, storeFull int
	handOvers, handedOver            int
	indexed                          int // seeds whose nodes ran indexes
	settleMax                        time.Duration
	settleMaxSeed                    uint64
	// refused counts the runs in which a node rightly refused to start
	// from a disk damaged by a fault of synced data: not failures, and
	// not losses; refusedFirst is the first such seed and its refusal.
	refused      int
	refusedFirst string
}

func run(base sim.Config, start uint64, n, workers int, determinism, verbose bool) int {
	began := time.Now()
	var mu sync.Mutex
	var st stats
	var failed []*sim.Result
	next := make(chan uint64)
	bar := progress.Start(os.Stderr, progress.Spec{
		Title: "sim", Total: int64(n), Unit: "seeds",
		Count: func() int64 {
			mu.Lock()
			defer mu.Unlock()
			return int64(st.seeds)
		},
		Detail: func() string {
			mu.Lock()
			defer mu.Unlock()
			el := time.Since(began)
			return fmt.Sprintf("%d failed, %d ops, %.0f ops/s", st.failures, st.ops, float64(st.ops)/el.Seconds())
		},
	})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range next {
				t0 := time.Now()
				cfg := base
				cfg.Seed = seed
				r := sim.Run(cfg)
				mismatch := false
				if determinism {
					again := sim.Run(cfg)
					mismatch = again.Hash != r.Hash
				}
				busy := time.Since(t0)
				mu.Lock()
				st.seeds++
				st.ops += r.Ops
				st.busy += busy
				st.checkSum += r.CheckWall
				if r.CheckWall > st.checkMax {
					st.checkMax, st.checkMaxSeed = r.CheckWall, seed
				}
				st.historyMax = max(st.historyMax, r.Ops)
				st.overwritten += r.MeshOverwritten
				if r.MeshJumped {
					st.jumped++
				}
				st.outOfStep += r.MeshOutOfStep
				if r.Indexes {
					st.indexed++
				}
				st.collected += r.MeshCollected
				st.wiped += r.Wiped
				if r.IndexBound {
					st.indexBound++
				}
				if r.DataBound {
					st.dataBound++
				}
				st.storeFull += r.StoreFull
				st.handOvers += r.HandOvers
				st.handedOver += r.HandedOver
				st.stillRejoining += r.StillRejoining
				st.replaced += r.Replaced
				if r.Settle > st.settleMax {
					st.settleMax, st.settleMaxSeed = r.Settle, seed
				}
				if mismatch {
					st.mismatches++
					bar.Clear()
					fmt.Printf("NONDETERMINISTIC seed %d: two runs gave different trace hashes\n  replay: %s\n", seed, r.Replay())
				}
				if len(r.Refusals) > 0 && !r.Failed() {
					st.refused++
					if st.refusedFirst == "" {
						st.refusedFirst = fmt.Sprintf("seed %d: %s", seed, strings.SplitN(r.Refusals[0], "\n", 2)[0])
					}
				}
				if r.Failed() {
					st.failures++
					failed = append(failed, r)
					bar.Clear()
					fmt.Print(r.Report())
				} else if verbose {
					bar.Clear()
					fmt.Println(r.Summary())
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- start + uint64(i)
	}
	close(next)
	wg.Wait()
	bar.Finish()

	wall := time.Since(began)
	fmt.Printf("summary: %d seeds (%d..%d, mode %s, %d ops each), %d failed, %d client ops in %v with %d workers\n",
		st.seeds, start, start+uint64(n)-1, base.Mode, base.Ops, st.failures, st.ops, wall.Round(time.Millisecond), workers)
	fmt.Printf("speed: %.0f sim ops/s wall clock, %.0f ops/s per core (ops over summed worker time, checks included), %.1f seeds/s\n",
		float64(st.ops)/wall.Seconds(), float64(st.ops)/st.busy.Seconds(), float64(st.seeds)/wall.Seconds())
	if st.seeds > 0 {
		fmt.Printf("checks: mean %v, max %v (seed %d); longest history %d ops\n",
			(st.checkSum / time.Duration(st.seeds)).Round(time.Microsecond), st.checkMax.Round(time.Microsecond), st.checkMaxSeed, st.historyMax)
	}
	if st.seeds > 0 {
		fmt.Printf("settle: from the faults stopping to the last final read, max %v (seed %d) of virtual time\n",
			st.settleMax.Round(time.Millisecond), st.settleMaxSeed)
	}
	fmt.Printf("refusals: %d seeds ended with a node refusing, rightly, to start from a disk that a fault of synced data damaged (not counted as failures: no acknowledged write was served wrong)\n", st.refused)
	if st.refusedFirst != "" {
		fmt.Printf("  the first: %s\n", st.refusedFirst)
	}
	fmt.Printf("indexes: %d seeds ran with indexes, compared with a scan of each node's state after every recovery, every failed write, every 256 turns and at the end\n", st.indexed)
	if base.Mode == "mesh" {
		fmt.Printf("mesh: %d acknowledged writes replaced by a concurrent write with a higher stamp (last writer wins, by design); %d tombstones collected\n", st.overwritten, st.collected)
		fmt.Printf("clock jumps: %d seeds had a node's calendar jump beyond the max offset; nodes were out of step with both peers, past the grace, for %v of virtual time, and took no write then (clock-offset)\n", st.jumped, st.outOfStep.Round(time.Millisecond))
	}
	fmt.Printf("data bound: %d seeds bounded their nodes' data bytes, %d their indexes; %d writes refused with store_full, and every node's count recomputed at the end (data-bytes)\n", st.dataBound, st.indexBound, st.storeFull)
	if st.handOvers > 0 {
		fmt.Printf("hand-overs: %d leaders stopped gracefully, handing the office over first; %d of them no longer led, their writes answered, when they exited\n", st.handOvers, st.handedOver)
	}
	if st.wiped > 0 {
		fmt.Printf("wipes: %d disks lost and their nodes restarted empty, rejoining (no vote until every peer is heard and the committed log is back); %d still rejoining at the end\n", st.wiped, st.stillRejoining)
	}
	if st.replaced > 0 {
		fmt.Printf("replaced: %d damaged disks replaced while their cluster formed (its first leader waits for every node), their nodes restarted empty\n", st.replaced)
	}
	if determinism {
		fmt.Printf("determinism: %d of %d seeds replayed to the same trace hash\n", st.seeds-st.mismatches, st.seeds)
	}
	if st.failures == 0 && st.mismatches == 0 {
		return 0
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].Seed < failed[j].Seed })
	fmt.Printf("failures (%d):\n", len(failed))
	for _, r := range failed {
		first := ""
		if len(r.Findings) > 0 {
			first = strings.SplitN(r.Findings[0].String(), "\n", 2)[0]
		}
		fmt.Printf("  %s    # %s\n", r.Replay(), first)
	}
	return 1
}

// runMutations runs the planted bugs of the catalogue (or the one called
// only), each on its own worker, and prints the kill table: whether the
// simulator caught it within the seeds, at which seed, by which check.
func runMutations(only string, cc sim.CatchConfig, workers int, verbose bool) int {
	var list []sim.PlantedMutation
	for _, m := range sim.MutationCatalogue() {
		if only == "" || m.Name == only {
			list = append(list, m)
		}
	}
	if len(list) == 0 {
		var names []string
		for _, m := range sim.MutationCatalogue() {
			names = append(names, m.Name)
		}
		fmt.Fprintf(os.Stderr, "no mutation called %q; the catalogue: %s\n", only, strings.Join(names, ", "))
		return 2
	}
	began := time.Now()
	var mu sync.Mutex
	var st stats // seeds: run with a mutation; failures: mutations done
	catches := make([]sim.Catch, len(list))
	next := make(chan int)
	bar := progress.Start(os.Stderr, progress.Spec{
		Title: "planted bugs", Total: int64(len(list)), Unit: "mutations",
		Count: func() int64 {
			mu.Lock()
			defer mu.Unlock()
			return int64(st.failures)
		},
		Detail: func() string {
			mu.Lock()
			defer mu.Unlock()
			return fmt.Sprintf("%d seeds run", st.seeds)
		},
	})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c := cc
				c.OnSeed = func(uint64) {
					mu.Lock()
					st.seeds++
					mu.Unlock()
				}
				if verbose {
					name := list[i].Name
					c.Logf = func(format string, args ...any) {
						mu.Lock()
						bar.Clear()
						fmt.Printf("%s: %s\n", name, fmt.Sprintf(format, args...))
						mu.Unlock()
					}
				}
				catch := sim.CatchMutation(list[i], c)
				mu.Lock()
				catches[i] = catch
				st.failures++
				mu.Unlock()
			}
		}()
	}
	for i := range list {
		next <- i
	}
	close(next)
	wg.Wait()
	bar.Finish()

	fmt.Printf("%-28s %-8s %-6s %6s  %-16s %s\n", "mutation", "mode", "caught", "seeds", "check", "finding")
	var took []int
	missed := 0
	for _, c := range catches {
		if !c.Caught {
			missed++
			fmt.Printf("%-28s %-8s %-6s %6s  %-16s %s\n", c.Name, c.Mode, "NO", fmt.Sprintf(">%d", c.Seeds), "-", "")
			continue
		}
		took = append(took, int(c.Seed))
		finding := c.Finding
		if len(finding) > 100 {
			finding = finding[:100] + "…"
		}
		fmt.Printf("%-28s %-8s %-6s %6d  %-16s %s\n", c.Name, c.Mode, "yes", c.Seed, c.Check, finding)
	}
	sort.Ints(took)
	fmt.Printf("kill rate: %d of %d caught within %d seeds (%d ops each), in %v\n",
		len(took), len(catches), cc.Seeds, cc.Ops, time.Since(began).Round(time.Millisecond))
	if len(took) > 0 {
		fmt.Printf("seeds to catch: median %s, worst %d (of the caught)\n", median(took), took[len(took)-1])
	}
	if missed > 0 {
		return 1
	}
	return 0
}

// median of sorted values.
func median(v []int) string {
	if n := len(v); n%2 == 1 {
		return fmt.Sprint(v[n/2])
	} else if v[n/2-1] == v[n/2] {
		return fmt.Sprint(v[n/2])
	} else {
		return fmt.Sprintf("%.1f", float64(v[n/2-1]+v[n/2])/2)
	}
}
