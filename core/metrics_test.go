package core_test

import (
	"fmt"
	"strings"
	"testing"

	"dkv/core"
)

// The log's counters count each committed batch once, with its records in
// the bucket of its size, and the bytes the log grew by.
func TestMetricsCountBatchesBySize(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	before := h.node.Metrics().Log
	var want core.LogCounters
	for _, n := range []int{1, 2, 3, 4, 5, 8, 9, 100} {
		reqs := make([]*core.Request, n)
		for i := range reqs {
			reqs[i] = set(fmt.Sprint("k", i), "v")
		}
		if _, err := h.turn(reqs...); err != nil {
			t.Fatal(err)
		}
		want.Batches++
		want.Records += int64(n)
		// Bucket i holds batches of (2^(i-1), 2^i] records.
		b := 0
		for 1<<b < n {
			b++
		}
		want.BatchRecords[b]++
	}
	// A turn of reads alone commits no batch.
	if _, err := h.turn(get("k0"), get("k1")); err != nil {
		t.Fatal(err)
	}
	m := h.node.Metrics()
	got := m.Log
	if got.Batches-before.Batches != want.Batches || got.Records-before.Records != want.Records {
		t.Errorf("batches %d, records %d; want %d, %d", got.Batches-before.Batches, got.Records-before.Records, want.Batches, want.Records)
	}
	for i := range want.BatchRecords {
		if d := got.BatchRecords[i] - before.BatchRecords[i]; d != want.BatchRecords[i] {
			t.Errorf("bucket %d (<= %d records): %d batches, want %d", i, 1<<i, d, want.BatchRecords[i])
		}
	}
	// Every record holds at least its key and value.
	if grew := got.Bytes - before.Bytes; grew < want.Records*int64(len("k0v")) {
		t.Errorf("log bytes grew by %d for %d records", grew, want.Records)
	}
	if m.Status.Keys != 100 || m.Status.Mode != "single" {
		t.Errorf("status in metrics: %+v", m.Status)
	}
}

// Every snapshot that becomes durable is counted with its size and keys,
// and is logged when it starts and when it is written: one line each.
func TestMetricsCountSnapshots(t *testing.T) {
	h := newHarness(t, smallSnapshots())
	for i := range 300 {
		mustOK(t, h.do(set(fmt.Sprint("k", i%37), fmt.Sprint("v", i))))
		if i%50 == 0 {
			h.idle()
		}
	}
	h.idle()
	m := h.node.Metrics()
	s := m.Snapshots
	if s.Written == 0 || s.Failed != 0 {
		t.Fatalf("snapshots: %+v, want some written, none failed", s)
	}
	snap := snapshotFile(t, h)
	data, err := h.disk.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	if s.LastBytes != int64(len(data)) || s.LastKeys < 1 || s.LastKeys > 37 {
		t.Errorf("last snapshot: %d bytes, %d keys; %s has %d bytes, the store at most 37 keys", s.LastBytes, s.LastKeys, snap, len(data))
	}
	if s.LastNanos < 0 || s.Nanos < s.LastNanos {
		t.Errorf("durations: last %d ns, total %d ns", s.LastNanos, s.Nanos)
	}
	var started, written int64
	for _, l := range h.logs {
		switch {
		case strings.HasPrefix(l, "snapshot at index") && strings.Contains(l, " started ("):
			started++
		case strings.HasPrefix(l, "snapshot at index") && strings.Contains(l, " written ("):
			written++
		}
	}
	if started != s.Written || written != s.Written {
		t.Errorf("%d snapshots written, %d start lines, %d written lines:\n%s", s.Written, started, written, strings.Join(h.logs, "\n"))
	}
}
