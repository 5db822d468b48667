package clienttest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"dkv/client"
	"dkv/client/clienttest"
)

// The ops a client has beyond set, get and delete are served as the real
// server serves them (a search as one without --enable-indexes does).
// They were answered a bare ok: a bulk_delete deleted nothing, and
// BulkDelete said -1, a success; BulkGet, Scan and ScanAll failed in the
// client as protocol violations; a search was ok with no hits, which the
// client took for a protocol violation too (found by review).
func TestServerServesBulkOpsAndScans(t *testing.T) {
	srv := clienttest.NewServer(t)
	c, err := client.Dial(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	var items []client.KV
	for i := range 5 {
		items = append(items, client.KV{Key: fmt.Sprint("user:", i), Value: fmt.Sprint("v", i)})
	}
	items = append(items, client.KV{Key: "zz", Value: "other"})
	if err := c.BulkSet(ctx, items); err != nil {
		t.Fatal(err)
	}
	vals, err := c.BulkGet(ctx, "user:1", "nope", "zz")
	if err != nil || len(vals) != 3 || vals[0] == nil || *vals[0] != "v1" || vals[1] != nil || vals[2] == nil || *vals[2] != "other" {
		t.Fatalf("BulkGet = %v, %v", vals, err)
	}

	var keys []string
	for kv, err := range c.ScanAll(ctx, "user:", 2) {
		if err != nil {
			t.Fatalf("ScanAll: %v", err)
		}
		keys = append(keys, kv.Key)
	}
	if fmt.Sprint(keys) != "[user:0 user:1 user:2 user:3 user:4]" {
		t.Fatalf("ScanAll of user: = %v", keys)
	}
	page, more, err := c.ScanKeys(ctx, "", "user:3", 2)
	if err != nil || more || fmt.Sprint(page) != "[user:4 zz]" {
		t.Fatalf("ScanKeys after user:3 = %v, %v, %v; want [user:4 zz], no more", page, more, err)
	}

	n, err := c.BulkDelete(ctx, "user:0", "nope", "user:1", "user:0")
	if err != nil || n != 2 {
		t.Fatalf("BulkDelete = %d, %v; want 2 deleted", n, err)
	}
	if _, err := c.Get(ctx, "user:0"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get of a key BulkDelete deleted: %v; want ErrNotFound", err)
	}

	// A consistent walk reads every page at its first page's instant.
	keys = nil
	for kv, err := range c.ScanAll(ctx, "user:", 1, client.Consistent()) {
		if err != nil {
			t.Fatalf("consistent ScanAll: %v", err)
		}
		if keys = append(keys, kv.Key); len(keys) == 1 {
			if err := c.Set(ctx, "user:5", "new"); err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(ctx, "user:4"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if fmt.Sprint(keys) != "[user:2 user:3 user:4]" {
		t.Fatalf("consistent ScanAll of user: = %v; want the keys of its first page's instant", keys)
	}

	if _, err := c.Search(ctx, "v1"); !errors.Is(err, client.ErrIndexesDisabled) {
		t.Fatalf("Search: %v; want ErrIndexesDisabled, as from a server without indexes", err)
	}
}
