package sim

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	seedFlag    = flag.String("seed", "", "replay exactly this seed (prints its fault mix and trace tail)")
	seedsFlag   = flag.Int("seeds", 0, "number of fixed seeds to run (default: the CI budget)")
	opsFlag     = flag.Int("ops", 0, "client requests per seed (default: sim.DefaultOps)")
	tailFlag    = flag.Int("tail", 0, "trace entries to show for a replayed or failing seed")
	modeFlag    = flag.String("mode", "single", "deployment to simulate: "+strings.Join(Modes(), ", "))
	withoutFlag = flag.String("without", "", "comma-separated kinds of fault to switch off: "+strings.Join(FaultSwitches(), ", "))
	indexesFlag = flag.String("indexes", "drawn", "run the nodes with indexes: drawn (by the seed), on or off")
)

// baseConfig is the Config the flags describe.
func baseConfig() Config {
	cfg := Config{Mode: *modeFlag, Ops: *opsFlag, TraceTail: *tailFlag, ReportDir: "testdata/reports"}
	if *withoutFlag != "" {
		cfg.Without = strings.Split(*withoutFlag, ",")
	}
	choice, err := ParseIndexChoice(*indexesFlag)
	if err != nil {
		panic(err)
	}
	cfg.Indexes = choice
	return cfg
}

// ciSeeds is the CI budget: seeds 1..ciSeeds, plus ciRandomSeeds drawn
// afresh each run (and printed, so a failure can be replayed).
const (
	ciSeeds       = 2000
	ciRandomSeeds = 20
)

// TestSim runs the simulator: one seed with -seed=N, else the CI budget.
func TestSim(t *testing.T) {
	if *seedFlag != "" {
		seed, err := strconv.ParseUint(*seedFlag, 10, 64)
		if err != nil {
			t.Fatalf("-seed: %v", err)
		}
		replay(t, seed)
		return
	}
	n := ciSeeds
	if *seedsFlag > 0 {
		n = *seedsFlag
	}
	if testing.Short() {
		n = 50
	}
	var seeds []uint64
	for i := 1; i <= n; i++ {
		seeds = append(seeds, uint64(i))
	}
	var random []uint64
	for i := 0; i < ciRandomSeeds; i++ {
		random = append(random, rand.Uint64()%1_000_000_000)
	}
	t.Logf("seeds 1..%d and random seeds %v", n, random)
	seeds = append(seeds, random...)
	start := time.Now()
	results := runSeeds(seeds, baseConfig())
	ops, failed := 0, 0
	for _, r := range results {
		ops += r.Ops
		if r.Failed() {
			failed++
			t.Errorf("%s", r.Report())
		}
	}
	wall := time.Since(start)
	t.Logf("%d seeds, %d failed, %d client ops in %v (%.0f ops/s on %d workers)",
		len(seeds), failed, ops, wall.Round(time.Millisecond), float64(ops)/wall.Seconds(), runtime.GOMAXPROCS(0))
}

// replay runs one seed and shows everything about it.
func replay(t *testing.T, seed uint64) {
	cfg := baseConfig()
	cfg.Seed = seed
	if cfg.TraceTail == 0 {
		cfg.TraceTail = 60
	}
	r := Run(cfg)
	t.Logf("faults: %s", r.Mix)
	t.Logf("%s", r.Summary())
	if r.Failed() {
		t.Fatalf("%s", r.Report())
	}
	t.Logf("trace tail:")
	for _, l := range r.Tail {
		t.Logf("  %s", l)
	}
}

// runSeeds runs seeds on every core: each run is single-threaded and
// independent, so they parallelise without changing any result.
func runSeeds(seeds []uint64, base Config) []*Result {
	results := make([]*Result, len(seeds))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				cfg := base
				cfg.Seed = seeds[i]
				results[i] = Run(cfg)
			}
		}()
	}
	for i := range seeds {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

func ExampleReplayCommand() {
	fmt.Println(ReplayCommand(42))
	// Output: go test ./sim -run TestSim -seed=42 -v
}

// skipWhenReplaying keeps `go test ./sim -seed=N -v` about that one seed.
func skipWhenReplaying(t *testing.T) {
	t.Helper()
	if *seedFlag != "" {
		t.Skip("-seed replays one seed; other tests are skipped")
	}
}
