package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"dkv/internal/nodeproc"
)

// TestMain lets this test binary serve as the benchmark's echo process,
// which the benchmark starts by running its own executable again, and
// keeps the cmd/node binary the tests share.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == echoServerCommand {
		os.Exit(runEchoServer(os.Args[2:]))
	}
	dir, err := os.MkdirTemp("", "dkv-bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	nodeBinDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The cmd/node binary the tests run, built once for all of them (each
// build links it again, a second or two) into nodeBinDir.
var (
	nodeBinDir  string
	nodeBinOnce sync.Once
	nodeBinPath string
	nodeBinErr  error
)

// testNodeBin returns the shared cmd/node binary, building it first if no
// test has.
func testNodeBin(t *testing.T) string {
	t.Helper()
	nodeBinOnce.Do(func() { nodeBinPath, nodeBinErr = nodeproc.Build(nodeBinDir) })
	if nodeBinErr != nil {
		t.Fatal(nodeBinErr)
	}
	return nodeBinPath
}

// shortRun is the load of the benchmark tests that alternate systems in
// slices: clients clients for a run cut to two short slices, over 1,000
// keys, with cmd/node built once for the package.
func shortRun(t *testing.T, clients int) clusterBenchConfig {
	return clusterBenchConfig{
		clients: clients, duration: 400 * time.Millisecond, warmup: 50 * time.Millisecond, slices: 2,
		valueBytes: 100, space: 1000, dir: t.TempDir(), nodeBin: testNodeBin(t),
	}
}

// The durability benchmark, cut short: real SIGKILLs of a real server, and
// every acknowledged write checked after each restart.
func TestDurabilityUnderSIGKILL(t *testing.T) {
	bin := testNodeBin(t)
	var out bytes.Buffer
	res, err := durability(durabilityConfig{
		kills: 8, writers: 4, keysPerWriter: 20, groups: 4, groupSize: 6,
		runMin: 20 * time.Millisecond, runMax: 150 * time.Millisecond, valueBytes: 100,
		dir: t.TempDir(), nodeBin: bin, seed: 1,
		serverFlags: "--snapshot-log-bytes=65536 --segment-bytes=16384",
		plotDir:     t.TempDir(),
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.kills != 8 || res.ackedWrites == 0 {
		t.Fatalf("ran %d kills with %d acknowledged writes\n%s", res.kills, res.ackedWrites, out.String())
	}
	if res.lost != 0 || res.partial != 0 {
		t.Fatalf("%d lost writes, %d partial bulk sets\n%s", res.lost, res.partial, out.String())
	}
	tl := res.timeline
	if len(tl.kills) != 8 || len(tl.restarts) != 8 || len(tl.acked) < 2 || tl.acked[len(tl.acked)-1].n != int64(res.ackedWrites) {
		t.Fatalf("timeline: %d kills, %d restarts, %d samples (last %v) for %d acknowledged writes",
			len(tl.kills), len(tl.restarts), len(tl.acked), tl.acked[len(tl.acked)-1], res.ackedWrites)
	}
	checkPlotsPrinted(t, out.String(), 1)
}

// A run whose writes are all refused has nothing to lose: it fails, rather
// than passing with 0 lost of 0 acknowledged (as it did, exit 0).
func TestDurabilityFailsWhenNothingIsAcknowledged(t *testing.T) {
	bin := testNodeBin(t)
	var out bytes.Buffer
	res, err := durability(durabilityConfig{
		kills: 2, writers: 2, keysPerWriter: 5, groups: 2, groupSize: 3,
		runMin: 20 * time.Millisecond, runMax: 50 * time.Millisecond, valueBytes: 100,
		dir: t.TempDir(), nodeBin: bin, seed: 1,
		serverFlags: "--max-value-bytes 10", // every 100-byte value refused
		ackWait:     time.Second,
	}, &out)
	if err == nil || !strings.Contains(err.Error(), "no write was acknowledged") || res.ackedWrites != 0 {
		t.Fatalf("err %v, %d acknowledged\n%s", err, res.ackedWrites, out.String())
	}
	if strings.Contains(out.String(), "PASS") {
		t.Errorf("a run that checked nothing passed:\n%s", out.String())
	}
	checkDataKept(t, out.String())
}

// checkDataKept checks that a failed durability run names the data
// directory it kept, and that it is there: a lost write's evidence.
func checkDataKept(t *testing.T, out string) {
	t.Helper()
	_, dir, ok := strings.Cut(out, "data directory kept for inspection: ")
	dir, _, _ = strings.Cut(dir, "\n")
	if !ok {
		t.Fatalf("a failed run names no kept data directory:\n%s", out)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("kept data directory %q: %v", dir, err)
	}
}

// checkPlotsPrinted checks that a benchmark's output names n plots, each a
// PNG, and carries no progress (that goes to stderr).
func checkPlotsPrinted(t *testing.T, out string, n int) {
	t.Helper()
	var paths []string
	for _, l := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(l, "plot: "); ok {
			paths = append(paths, p)
		}
	}
	if len(paths) != n {
		t.Fatalf("output names %d plots, want %d:\n%s", len(paths), n, out)
	}
	for _, p := range paths {
		decodePNG(t, p)
	}
	if strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("progress in the output:\n%q", out)
	}
}

// The throughput benchmark runs end to end and reports every figure; the
// figures themselves are for people, not for a timed test.
func TestThroughputReportsEveryFigure(t *testing.T) {
	bin := testNodeBin(t)
	var out bytes.Buffer
	err := throughput(throughputConfig{
		clients: 4, sizes: []int{0, 2000}, duration: 200 * time.Millisecond, warmup: 50 * time.Millisecond, slices: 2,
		valueBytes: 100, baselineTime: 100 * time.Millisecond, dir: t.TempDir(), nodeBin: bin, unsafeRef: true,
		plotDir: t.TempDir(), tls: true,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"baseline:", "group commit:", "cpu bound:", "store size:", "one client:", "restart:", "UNSAFE", "server CPU/op",
		"durable over TLS, 0 keys", "durable over TLS, 0 keys, goroutines", "TLS:          over TLS / plain, both on the default host (event loop) = ",
		"over TLS, event loop / goroutines (--event-loops 0) = "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	checkPlotsPrinted(t, out.String(), 2)
}

func TestClientCounts(t *testing.T) {
	for _, tc := range []struct {
		clients         int
		sweep           []int
		durable, unsafe string
	}{
		{50, nil, "[50 1]", "[50]"},                                // the default run
		{50, []int{20, 1, 5, 50, 5}, "[50 1 5 20]", "[50 1 5 20]"}, // --clients first, each once
		{1, []int{1}, "[1]", "[1]"},
	} {
		cfg := throughputConfig{clients: tc.clients, sweep: tc.sweep}
		if got := fmt.Sprint(cfg.clientCounts(true)); got != tc.durable {
			t.Errorf("clients %d, sweep %v: durable counts %s, want %s", tc.clients, tc.sweep, got, tc.durable)
		}
		if got := fmt.Sprint(cfg.clientCounts(false)); got != tc.unsafe {
			t.Errorf("clients %d, sweep %v: unsafe counts %s, want %s", tc.clients, tc.sweep, got, tc.unsafe)
		}
	}
}

// A server that acknowledges writes until its first restart and refuses
// every one after it (here a real node restarted with --max-value-bytes
// 10, by a wrapper) leaves the later kills nothing to check: the run
// fails before the second kill, rather than passing them all (as it did,
// exit 0, with 0 lost of the first run's writes).
func TestDurabilityFailsWhenWritesStopAfterARestart(t *testing.T) {
	bin := testNodeBin(t)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "node-refusing-after-restart")
	script := fmt.Sprintf(`#!/bin/sh
if [ -e %[1]q ]; then exec %[2]q "$@" --max-value-bytes 10; fi
touch %[1]q
exec %[2]q "$@"
`, filepath.Join(dir, "started"), bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := durability(durabilityConfig{
		kills: 3, writers: 2, keysPerWriter: 5, groups: 2, groupSize: 3,
		runMin: 20 * time.Millisecond, runMax: 50 * time.Millisecond, valueBytes: 100,
		dir: t.TempDir(), nodeBin: wrapper, seed: 1, ackWait: time.Second,
	}, &out)
	if err == nil || !strings.Contains(err.Error(), "before kill 2") || !strings.Contains(err.Error(), "no write was acknowledged") {
		t.Fatalf("err %v after %d kills, %d acknowledged; want a failure before kill 2\n%s", err, res.kills, res.ackedWrites, out.String())
	}
	if strings.Contains(out.String(), "PASS") {
		t.Errorf("a run whose later kills checked nothing passed:\n%s", out.String())
	}
}

// The benchmark sees a lost write: a real node whose data directory, at
// its third start, is rolled back to the copy taken at its second (by a
// wrapper, while no node runs) forgets what it acknowledged between the
// two, and the run must count those writes lost, fail, and keep the data.
func TestDurabilityCountsWritesARollbackLost(t *testing.T) {
	bin := testNodeBin(t)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "node-rolled-back")
	script := fmt.Sprintf(`#!/bin/sh
n=$(cat %[1]q 2>/dev/null || echo 0); n=$((n+1)); echo $n > %[1]q
data=""; prev=""
for a in "$@"; do [ "$prev" = --data-dir ] && data=$a; prev=$a; done
case $n in
2) cp -a "$data" %[2]q ;;
3) rm -rf "$data" && cp -a %[2]q "$data" ;;
esac
exec %[3]q "$@"
`, filepath.Join(dir, "starts"), filepath.Join(dir, "copy"), bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := durability(durabilityConfig{
		kills: 3, writers: 2, keysPerWriter: 5, groups: 2, groupSize: 3,
		runMin: 50 * time.Millisecond, runMax: 100 * time.Millisecond, valueBytes: 100,
		dir: t.TempDir(), nodeBin: wrapper, seed: 1,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.kills != 3 || res.lost == 0 {
		t.Fatalf("%d kills, %d lost writes; want 3 kills and the rollback's writes lost\n%s", res.kills, res.lost, out.String())
	}
	if !strings.Contains(out.String(), "FAIL: acknowledged data was lost") || strings.Contains(out.String(), "PASS") {
		t.Errorf("a run that lost writes did not fail:\n%s", out.String())
	}
	checkDataKept(t, out.String())
}
