package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"dkv/client"
	"dkv/internal/nodeproc"
)

// A kill after no acknowledged write since the server started checks
// nothing: awaitAcked must refuse to let it pass, and let through a run
// whose writes are acknowledged.
func TestAwaitAckedRefusesARunWithoutAcknowledgedWrites(t *testing.T) {
	var acked atomic.Int64
	acked.Store(7) // acknowledged before the restart
	err := awaitAcked(&acked, 7, 20*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no write was acknowledged") {
		t.Fatalf("awaitAcked with no write since the restart = %v; want the no-write error", err)
	}
	go func() {
		time.Sleep(5 * time.Millisecond)
		acked.Add(1)
	}()
	if err := awaitAcked(&acked, 7, time.Minute); err != nil {
		t.Fatalf("awaitAcked after an acknowledged write = %v; want nil", err)
	}
}

// Flags that leave a writer no key or group to draw are refused with a
// usage error before any server starts; --groups 0 panicked in a writer
// (rand's IntN(0)) once the server was up.
func TestDurabilityRefusesEmptyKeySets(t *testing.T) {
	for _, args := range [][]string{
		{"--groups", "0"},
		{"--keys", "0"},
		{"--group-size", "0"},
		{"--run-min", "-1s"},
	} {
		var stdout, stderr strings.Builder
		args = append(args, "--kills", "1", "--node-bin", "/nonexistent/node", "--dir", t.TempDir())
		if code := runDurability(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "need --kills") {
			t.Errorf("durability %v = %d, stderr %q; want 2 and the usage error", args, code, stderr.String())
		}
	}
}

// verify counts a bulk set applied in part, on a real server: each key of
// the group holds a value its ledger allows (the old one, or the new one
// whose write failed), yet they differ, which no whole bulk set leaves.
func TestVerifyCountsAPartlyAppliedBulkSet(t *testing.T) {
	p, err := nodeproc.Start(testNodeBin(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	c, err := client.Dial(p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := durabilityConfig{writers: 1, groups: 2, groupSize: 3}
	led := &ledger{keys: map[string]*keyState{}}
	for g, held := range [][]string{{"new", "old", "old"}, {"new", "new", "new"}} {
		for i, k := range groupKeys(0, g, cfg.groupSize) {
			if err := c.Set(context.Background(), k, held[i]); err != nil {
				t.Fatal(err)
			}
			*led.state(k) = keyState{acked: "old", hasAcked: true, maybe: []string{"new"}}
		}
	}
	var out strings.Builder
	lost, partial, err := verify(p.Addr, cfg, led, &out)
	if err != nil || lost != 0 || partial != 1 || !strings.Contains(out.String(), "PARTIAL: group w0-g0") {
		t.Fatalf("verify = %d lost, %d partial, %v; want 0 lost and group w0-g0 partial\n%s", lost, partial, err, out.String())
	}
}
