package clustertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"dkv/client"
)

// A consistent walk through ClusterKVClient reads the leader's state of
// its first page's instant, whatever is written meanwhile; when the leader
// that holds its view dies, the walk ends with ErrScanExpired (the new
// leader has no such view), and a new walk reads everything.
func TestClusterConsistentScan(t *testing.T) {
	c := startCluster(t)
	waitLeader(t, c)
	kv := dialCluster(t, c.Addrs())
	ctx, cancel := context.WithTimeout(context.Background(), waitMax)
	defer cancel()
	items := make([]client.KV, 300)
	for i := range items {
		items[i] = client.KV{Key: fmt.Sprintf("k%03d", i), Value: "before"}
	}
	if err := kv.BulkSet(ctx, items); err != nil {
		t.Fatal(err)
	}
	n := 0
	for got, err := range kv.ScanAll(ctx, "k", 50, client.Consistent()) {
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if err := kv.Set(ctx, "k250", "after"); err != nil {
				t.Fatal(err)
			}
		}
		if got != items[n] {
			t.Fatalf("key %d of the walk is %v, want %v", n, got, items[n])
		}
		n++
	}
	if n != len(items) {
		t.Fatalf("the walk read %d keys, want %d", n, len(items))
	}

	// The leader dies in the middle of a walk.
	n = 0
	var walkErr error
	for _, err := range kv.ScanAll(ctx, "k", 50, client.Consistent()) {
		if err != nil {
			walkErr = err
			break
		}
		if n++; n == 1 {
			lead, _ := waitLeader(t, c)
			c.Kill(lead)
			deadline := time.Now().Add(waitMax)
			for {
				if l, _ := waitLeader(t, c); l != lead {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no new leader")
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	if !errors.Is(walkErr, client.ErrScanExpired) {
		t.Fatalf("a walk whose leader died ended with %v after %d keys, want ErrScanExpired", walkErr, n)
	}
	n = 0
	for _, err := range kv.ScanAll(ctx, "k", 50, client.Consistent()) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != len(items) {
		t.Fatalf("a walk after the failover read %d keys, want %d", n, len(items))
	}
}
