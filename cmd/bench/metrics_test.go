package main

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// The metrics benchmark runs end to end against a real server with
// --metrics-addr, and reads back from its scrapes what the run did: the
// sets answered, and the shares of the loaded time its turns and its log
// fsyncs took, which must be shares (over 0, at most all of it).
func TestMetricsBenchReadsTheServersOwnFigures(t *testing.T) {
	var out bytes.Buffer
	res, err := metricsBench(metricsBenchConfig{
		clusterBenchConfig: shortRun(t, 4),
		scrapeEvery:        100 * time.Millisecond,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.on.res.ops == 0 || res.scrapes == 0 {
		t.Fatalf("%d ops measured with metrics, %d scrapes\n%s", res.on.res.ops, res.scrapes, out.String())
	}
	m := regexp.MustCompile(`its turns took (\d+)% of the time \(([0-9.]+) events a turn\), its log fsyncs (\d+)%`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no line on the server's turns and fsyncs:\n%s", out.String())
	}
	turns, _ := strconv.Atoi(m[1])
	events, _ := strconv.ParseFloat(m[2], 64)
	fsyncs, _ := strconv.Atoi(m[3])
	// Percentages round: a share under 0.5% prints 0, which 4 clients
	// writing durably for half a second do not leave.
	if turns < 1 || turns > 100 || events < 1 || fsyncs < 1 || fsyncs > 100 {
		t.Errorf("turns %d%%, %.1f events a turn, fsyncs %d%%\n%s", turns, events, fsyncs, out.String())
	}
}

// A scrape that cannot connect is a failed scrape: the report's "N (M
// failed)" counted only the ones that got an answer, so a server that
// refused every scrape showed 0 scrapes, 0 failed.
func TestScraperCountsRefusedScrapes(t *testing.T) {
	addr, err := freeAddr() // closed again: nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	sc := &scraper{url: "http://" + addr + "/metrics"}
	if _, err := sc.fetch(); err == nil {
		t.Fatal("a scrape of a closed port succeeded")
	}
	if scrapes, fails, _, _ := sc.stats(); scrapes != 1 || fails != 1 {
		t.Fatalf("after one refused scrape: %d scrapes, %d failed; want 1, 1", scrapes, fails)
	}
}
