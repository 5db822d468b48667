package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// compare runs end to end on a tiny load against a real dkv node, and
// Redis when it is installed, and reports every figure; the figures
// themselves are for people, not for a timed test.
func TestCompareReportsEveryFigure(t *testing.T) {
	bin := testNodeBin(t)
	redisBin, redisMiss := findRedis("")
	if redisBin == "" {
		t.Logf("redis-server is not installed: the Redis column is skipped (install Debian's redis-server package to test it)")
	}
	var out bytes.Buffer
	res, err := compare(compareConfig{
		loads: compareLoads, rss: true, rounds: 1, duration: 100 * time.Millisecond, warmup: 30 * time.Millisecond,
		dir: t.TempDir(), nodeBin: bin, redisBin: redisBin, redisMiss: redisMiss,
		keys: 3000, space: 500, valueBytes: 100, driver: defaultDriver(),
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	if len(res.loads) != len(compareLoads) {
		t.Fatalf("%d loads measured, want %d\n%s", len(res.loads), len(compareLoads), text)
	}
	// A window of 100 ms may hold no op on a loaded machine (CI, with the
	// simulator beside it: Redis's one client waited on an fsync for all
	// of it): each server must have done ops in most loads, not in each.
	measured := make([]int, len(res.servers))
	for _, lr := range res.loads {
		for si, name := range res.servers {
			ws := lr.windows[si]
			if res.skipped[si] != "" {
				if len(ws) != 0 {
					t.Errorf("%s: skipped %s measured", lr.load.title, name)
				}
				continue
			}
			if len(ws) != 1 || ws[0].errors != 0 || ws[0].rssBytes == 0 {
				t.Errorf("%s, %s: windows %+v", lr.load.title, name, ws)
				continue
			}
			if ws[0].ops > 0 {
				measured[si]++
			} else {
				t.Logf("%s, %s: no op in the window (a loaded machine): %+v", lr.load.title, name, ws[0])
			}
		}
		if !strings.Contains(text, "\n"+lr.load.title+": ") {
			t.Errorf("output lacks the table of %s:\n%s", lr.load.title, text)
		}
	}
	for si, name := range res.servers {
		if res.skipped[si] == "" && measured[si] < len(res.loads)/2+1 {
			t.Errorf("%s did ops in %d of %d loads", name, measured[si], len(res.loads))
		}
	}
	if res.skipped[srvJSON] != "" {
		t.Errorf("dkv JSON skipped: %s", res.skipped[srvJSON])
	}
	if len(res.rss) != 2 || res.rss[0].keysHeld != 3000 || res.rss[0].filled == 0 {
		t.Errorf("RSS phase: %+v", res.rss)
	}
	wants := []string{"summary:", "of it after", "SET c50 throughput", "server CPU/op at SET c50", "RSS with 3,000 keys", "fewer than 3 rounds"}
	if redisBin != "" {
		wants = append(wants, "dkv JSON ÷ redis", "redis flags: --appendonly yes --appendfsync always --save ''")
		if res.rss[1].keysHeld != 3000 || res.rss[1].filled == 0 {
			t.Errorf("Redis in the RSS phase: %+v", res.rss[1])
		}
	} else {
		wants = append(wants, "redis: skipped: redis-server is not installed", "apt-get install -y redis-server")
	}
	if res.skipped[srvRESP] != "" {
		wants = append(wants, "dkv RESP: skipped: dkv does not answer RESP")
	} else if redisBin != "" {
		wants = append(wants, "dkv RESP ÷ redis")
	}
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("output lacks %q:\n%s", w, text)
		}
	}
	if strings.ContainsAny(text, "\r\x1b") {
		t.Errorf("progress in the output:\n%q", text)
	}
}

func TestCompareFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--loads", "set-c1,nope"},
		{"--rounds", "0"},
		{"--rounds", "51"},
		{"--duration", "1ms"},
		{"--keys", "0"},
		{"--space", "5"},
		{"--value-bytes", "0"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(append([]string{"compare"}, args...), &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("compare %q: exit %d, stderr %q; want 2 and a message", args, code, errOut.String())
		}
	}
}

func TestFindRedis(t *testing.T) {
	if bin, why := findRedis("none"); bin != "" || !strings.Contains(why, "--redis-server none") {
		t.Errorf(`findRedis("none") = %q, %q`, bin, why)
	}
	bin, why := findRedis("")
	if _, err := exec.LookPath("redis-server"); err != nil {
		if bin != "" || !strings.Contains(why, "redis-server package") {
			t.Errorf(`findRedis("") without redis-server = %q, %q`, bin, why)
		}
	} else if bin == "" {
		t.Errorf(`findRedis("") = "", %q with redis-server installed`, why)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestCommas(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
}

// --alt-server-flags measures a second dkv process in the same rounds, as
// two more columns with their ratios and summary cells, and counts context
// switches for every column.
func TestCompareMeasuresAnAltServer(t *testing.T) {
	bin := testNodeBin(t)
	var out bytes.Buffer
	load := compareLoads[1] // SET c50
	res, err := compare(compareConfig{
		loads: []compareLoad{load}, rounds: 1, duration: 100 * time.Millisecond, warmup: 30 * time.Millisecond,
		dir: t.TempDir(), nodeBin: bin, redisMiss: "left out", altFlags: "--event-loops 0",
		keys: 1000, space: 500, valueBytes: 100, driver: driverGoroutines, // the other driver
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	if got := strings.Join(res.servers, ","); got != "dkv JSON,dkv RESP,redis,alt JSON,alt RESP" {
		t.Fatalf("columns %s", got)
	}
	for _, si := range []int{srvAltJSON, srvAltRESP} {
		ws := res.loads[0].windows[si]
		if len(ws) != 1 || ws[0].ops == 0 || ws[0].errors != 0 || ws[0].switches <= 0 {
			t.Errorf("%s: windows %+v", res.servers[si], ws)
		}
	}
	for _, w := range []string{`alt: a second dkv process with flags " --event-loops 0"`, "alt JSON", "csw/op"} {
		if !strings.Contains(text, w) {
			t.Errorf("output lacks %q:\n%s", w, text)
		}
	}
}

// The summary's bracket: each round's own ratio against Redis, its median
// and range; a round where Redis made no request is left out, and a load
// not run has none.
func TestRoundRatioSpread(t *testing.T) {
	w := func(ops int) windowResult { return windowResult{ops: ops, elapsed: time.Second} }
	windows := make([][]windowResult, srvRedis+1)
	windows[srvJSON] = []windowResult{w(300), w(100), w(200), w(500)}
	windows[srvRedis] = []windowResult{w(100), w(100), w(100), w(0)}
	res := &compareResult{loads: []loadResult{{load: compareLoad{name: "get-c50"}, windows: windows}}}
	mid, lo, hi, ok := roundRatioSpread("get-c50", srvJSON, res)
	if !ok || mid != 2 || lo != 1 || hi != 3 {
		t.Errorf("got %.2f, %.2f–%.2f, %v; want 2.00, 1.00–3.00, true", mid, lo, hi, ok)
	}
	if _, _, _, ok := roundRatioSpread("set-c1", srvJSON, res); ok {
		t.Error("a load not run has a spread")
	}
	if _, _, _, ok := roundRatioSpread("get-c50", srvRESP, res); ok {
		t.Error("a server without rounds has a spread")
	}
}

// settleServer waits out a server's background work after a window, and
// at least settleMin (a Redis rewrite starts from its cron, after the
// window's writes made it due), so that the next server's window does
// not run beside it.
func TestSettleServerWaitsOutBackgroundWork(t *testing.T) {
	start := time.Now()
	busyFor := settleMin + 100*time.Millisecond
	wasBusy, err := settleServer(func() (bool, error) { return time.Since(start) < busyFor, nil })
	if err != nil || !wasBusy || time.Since(start) < busyFor {
		t.Errorf("busy for %v: returned after %v, busy %v, %v", busyFor, time.Since(start), wasBusy, err)
	}
	start = time.Now()
	if wasBusy, err := settleServer(nil); err != nil || wasBusy || time.Since(start) < settleMin {
		t.Errorf("no busy: returned after %v, busy %v, %v; want settleMin %v", time.Since(start), wasBusy, err, settleMin)
	}
	// Work that starts only after the window (Redis's cron) is waited for.
	start = time.Now()
	wasBusy, err = settleServer(func() (bool, error) {
		d := time.Since(start)
		return d > 100*time.Millisecond && d < 400*time.Millisecond, nil
	})
	if err != nil || !wasBusy || time.Since(start) < 400*time.Millisecond {
		t.Errorf("late work: returned after %v, busy %v, %v", time.Since(start), wasBusy, err)
	}
	boom := errors.New("boom")
	if _, err := settleServer(func() (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("a failing probe: %v", err)
	}
}

func TestRedisInfoRewriting(t *testing.T) {
	for info, want := range map[string]bool{
		"# Persistence\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\n": false,
		"aof_rewrite_in_progress:1\r\naof_rewrite_scheduled:0\r\n":                  true,
		"aof_rewrite_in_progress:0\r\naof_rewrite_scheduled:1\r\n":                  true,
	} {
		if got := redisInfoRewriting(info); got != want {
			t.Errorf("%q: %v, want %v", info, got, want)
		}
	}
}

// A figure whose windows had error replies (GETs of missing keys, refused
// writes) is not judged: the summary said "met" beside them.
func TestCompareSummaryDoesNotJudgeErrors(t *testing.T) {
	w := func(ops, errs int) windowResult {
		return windowResult{ops: ops, errors: errs, elapsed: time.Second, serverCPU: time.Duration(ops) * 10 * time.Microsecond}
	}
	windows := func(json, redis windowResult) [][]windowResult {
		ws := make([][]windowResult, srvRedis+1)
		ws[srvJSON] = []windowResult{json, json, json}
		ws[srvRESP] = []windowResult{json, json, json}
		ws[srvRedis] = []windowResult{redis, redis, redis}
		return ws
	}
	res := &compareResult{
		servers: []string{"dkv JSON", "dkv RESP", "redis"}, skipped: make([]string, 3),
		loads: []loadResult{
			{load: compareLoads[1], windows: windows(w(200, 0), w(100, 0))},  // SET c50: clean
			{load: compareLoads[3], windows: windows(w(200, 50), w(100, 0))}, // GET c50: misses
		},
	}
	var out bytes.Buffer
	printCompareSummary(compareConfig{rounds: 3, keys: 10, redisBin: "redis-server"}, res, &out)
	for _, line := range strings.Split(out.String(), "\n") {
		switch {
		case strings.HasPrefix(line, "GET c50 throughput"):
			if strings.Contains(line, "met") || !strings.Contains(line, "not judged: 150 error replies") {
				t.Errorf("GET c50 with error replies: %q", line)
			}
		case strings.HasPrefix(line, "SET c50 throughput"):
			if !strings.Contains(line, "2.00 met") {
				t.Errorf("SET c50: %q", line)
			}
		}
	}
}

// startRedis checks that Redis runs with what the comparison needs, by
// CONFIG GET, not by the flags it was given: one started otherwise is
// refused.
func TestCheckRedisConfig(t *testing.T) {
	bin, why := findRedis("")
	if bin == "" {
		t.Skip(why)
	}
	rs, err := startRedis(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer rs.stop()
	if err := checkRedisConfig(rs.addr); err != nil {
		t.Fatalf("as started: %v", err)
	}
	c, err := dialRESP(rs.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.do(5*time.Second, "CONFIG", "SET", "appendfsync", "everysec"); err != nil {
		t.Fatal(err)
	}
	if err := checkRedisConfig(rs.addr); err == nil || !strings.Contains(err.Error(), "appendfsync") {
		t.Errorf("with appendfsync everysec: %v", err)
	}
}

// A dkv told not to fsync is not compared as if durable: the header said
// "durable" whatever --server-flags held.
func TestUnsafeNoFsync(t *testing.T) {
	for flags, want := range map[string]bool{
		"": false, "--event-loops 0": false, "--unsafe-no-fsync": true, "-unsafe-no-fsync": true,
		"--gc-percent 50 --unsafe-no-fsync=true": true, "--unsafe-no-fsync=false": false,
		"--unsafe-no-fsync --unsafe-no-fsync=0": false, "unsafe-no-fsync": false,
	} {
		if got := unsafeNoFsync(flags); got != want {
			t.Errorf("unsafeNoFsync(%q) = %v, want %v", flags, got, want)
		}
	}
	res := &compareResult{servers: []string{"dkv JSON", "dkv RESP", "redis"}, skipped: make([]string, 3),
		loads: []loadResult{{load: compareLoads[1], windows: [][]windowResult{
			{{ops: 300, elapsed: time.Second}}, {{ops: 300, elapsed: time.Second}}, {{ops: 100, elapsed: time.Second}}}}}}
	var out bytes.Buffer
	printCompareSummary(compareConfig{rounds: 3, keys: 10, redisBin: "redis-server", serverFlags: "--unsafe-no-fsync"}, res, &out)
	if strings.Contains(out.String(), "met") || !strings.Contains(out.String(), "3.00 (not judged)") {
		t.Errorf("summary of an unsafe dkv:\n%s", out.String())
	}
}
