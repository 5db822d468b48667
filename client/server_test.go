package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"dkv/core"
	"dkv/internal/nodeproc"
)

// startNode builds cmd/node and runs it on a free port with a fresh data
// directory, until the test ends.
func startNode(t *testing.T) *nodeproc.Process {
	t.Helper()
	bin, err := nodeproc.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := nodeproc.Start(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func TestRealServer(t *testing.T) {
	srv := startNode(t)
	c := dialT(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer func() {
		if t.Failed() {
			t.Logf("cmd/node stderr:\n%s", srv.Stderr())
		}
	}()

	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if _, err := c.Get(ctx, "hello"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: err = %v; want ErrNotFound", err)
	}
	if err := c.Set(ctx, "hello", "world"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if v, err := c.Get(ctx, "hello"); err != nil || v != "world" {
		t.Fatalf("Get(hello) = %q, %v; want world", v, err)
	}
	if err := c.Set(ctx, "hello", "again"); err != nil {
		t.Fatalf("Set (overwrite): %v", err)
	}
	if v, err := c.Get(ctx, "hello"); err != nil || v != "again" {
		t.Fatalf("Get(hello) = %q, %v; want again", v, err)
	}
	if err := c.Delete(ctx, "hello"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := c.Get(ctx, "hello"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v; want ErrNotFound", err)
	}
	if err := c.Delete(ctx, "never-there"); err != nil {
		t.Fatalf("Delete of a missing key: %v; want success", err)
	}
	if err := c.Set(ctx, "empty", ""); err != nil {
		t.Fatalf("Set of an empty value: %v", err)
	}
	if v, err := c.Get(ctx, "empty"); err != nil || v != "" {
		t.Fatalf("Get(empty) = %q, %v; want the empty value", v, err)
	}
	if err := c.Delete(ctx, "empty"); err != nil {
		t.Fatalf("Delete(empty): %v", err)
	}
	var se *ServerError
	err := c.Set(ctx, "big", strings.Repeat("v", 1<<20+1))
	if !errors.As(err, &se) || se.Code != "too_large" {
		t.Fatalf("Set of a value over 1 MiB: err = %v; want too_large", err)
	}
	if _, err := c.Do(ctx, &core.Request{Op: "frobnicate"}); !errors.As(err, &se) || se.Code != core.CodeUnknownOp {
		t.Fatalf("Do(frobnicate): err = %v; want unknown_op", err)
	}

	items := make([]KV, 100)
	for i := range items {
		items[i] = KV{Key: fmt.Sprintf("bulk-%03d", i), Value: fmt.Sprintf("value-%d", i)}
	}
	if err := c.BulkSet(ctx, items); err != nil {
		t.Fatalf("BulkSet: %v", err)
	}
	for _, kv := range items {
		if v, err := c.Get(ctx, kv.Key); err != nil || v != kv.Value {
			t.Fatalf("Get(%s) = %q, %v; want %q", kv.Key, v, err, kv.Value)
		}
	}
	vals, err := c.BulkGet(ctx, "bulk-000", "missing", "bulk-099")
	if err != nil || len(vals) != 3 || *vals[0] != "value-0" || vals[1] != nil || *vals[2] != "value-99" {
		t.Fatalf("BulkGet = %v, %v", vals, err)
	}
	if n, err := c.BulkDelete(ctx, "bulk-000", "missing", "bulk-001", "bulk-000"); err != nil || n != 2 {
		t.Fatalf("BulkDelete = %d, %v; want 2 deleted", n, err)
	}
	if vals, err := c.BulkGet(ctx, "bulk-000", "bulk-001", "bulk-002"); err != nil || vals[0] != nil || vals[1] != nil || vals[2] == nil {
		t.Fatalf("BulkGet after BulkDelete = %v, %v", vals, err)
	}

	// Pipelined from many goroutines, against the real host.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				k := fmt.Sprintf("p%d-%d", w, i)
				if err := c.Set(ctx, k, k); err != nil {
					errs <- err
					return
				}
				if v, err := c.Get(ctx, k); err != nil || v != k {
					errs <- fmt.Errorf("Get(%s) = %q, %v", k, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if want := len(items) - 2 + 16*20; st.Keys != want { // BulkDelete removed two
		t.Fatalf("Status.Keys = %d; want %d", st.Keys, want)
	}
}
