package main

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
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
