package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"dkv/internal/nodeproc"
)

// TestMain lets this test binary serve as the benchmark's echo process,
// which the benchmark starts by running its own executable again.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == echoServerCommand {
		os.Exit(runEchoServer(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// The durability benchmark, cut short: real SIGKILLs of a real server, and
// every acknowledged write checked after each restart.
func TestDurabilityUnderSIGKILL(t *testing.T) {
	bin, err := nodeproc.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := durability(durabilityConfig{
		kills: 8, writers: 4, keysPerWriter: 20, groups: 4, groupSize: 6,
		runMin: 20 * time.Millisecond, runMax: 150 * time.Millisecond, valueBytes: 100,
		dir: t.TempDir(), nodeBin: bin, seed: 1,
		serverFlags: "--snapshot-log-bytes=65536 --segment-bytes=16384",
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
}

// The throughput benchmark runs end to end and reports every figure; the
// figures themselves are for people, not for a timed test.
func TestThroughputReportsEveryFigure(t *testing.T) {
	bin, err := nodeproc.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = throughput(throughputConfig{
		clients: 4, sizes: []int{0, 2000}, duration: 200 * time.Millisecond, warmup: 50 * time.Millisecond,
		valueBytes: 100, baselineTime: 100 * time.Millisecond, dir: t.TempDir(), nodeBin: bin, unsafeRef: true,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"baseline:", "group commit:", "cpu bound:", "store size:", "one client:", "restart:", "UNSAFE"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
