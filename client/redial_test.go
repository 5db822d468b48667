package client

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Calls made at once on a client whose server has gone wait for one
// redial between them and, when it fails, fail with its error: "connection
// refused", not a context deadline after waiting in line while each caller
// in turn made the same dial, retries and backoff again (found by review:
// of 100 calls given 10 s, 37 said "connection refused" and 63 waited out
// their timeouts, each dial with the default retries taking 175 ms or
// more).
func TestCallsWaitingForAFailedRedialTakeItsError(t *testing.T) {
	srv := startNode(t)
	c := dialT(t, srv.Addr)
	if err := c.Set(ctxT(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	// Long enough for a few dials in turn, each of the default 4
	// attempts, and too short for 100 of them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const callers = 100
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Get(ctx, "k")
		}()
	}
	wg.Wait()
	refused, others := 0, 0
	for i, err := range errs {
		if errors.Is(err, syscall.ECONNREFUSED) {
			refused++
			continue
		}
		if others++; others <= 3 {
			t.Errorf("call %d: %v; want connection refused", i, err)
		}
	}
	if refused != callers {
		t.Fatalf("%d of %d calls failed with the server's connection refused", refused, callers)
	}
}
