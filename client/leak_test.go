package client

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// After Close, nothing of the client's runs on: not the goroutines that
// finish a large write or drain the answers of abandoned calls, nor a
// call. Checked against real servers stopped (SIGSTOP) with calls of
// every kind in flight, some given up on, some large enough to need a
// writer of their own, when the clients are closed.
func TestNoGoroutinesLeftAfterClose(t *testing.T) {
	srv := startNode(t)
	cl := startCluster(t)
	// Both servers are processes of their own: every goroutine counted
	// here is the test's or the clients'.
	before := runtime.NumGoroutine()
	// Long timeouts: only Close may end what is in flight.
	opts := []Option{WithRequestTimeout(time.Minute), WithAttemptTimeout(time.Minute)}
	c := dialT(t, srv.Addr, opts...)
	cc := dialClusterT(t, cl.Addrs(), opts...)
	big := strings.Repeat("v", 1<<20)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if i%4 == 0 {
				// Given up on at once: answers to drain.
				ctx, cancel = context.WithTimeout(context.Background(), time.Duration(i)*time.Microsecond)
			}
			defer cancel()
			k := fmt.Sprint("k", i)
			switch i % 3 {
			case 0:
				c.Set(ctx, k, big)
				cc.Set(ctx, k, big)
			case 1:
				c.Get(ctx, k)
				cc.Get(ctx, k)
			default:
				c.Incr(ctx, "n", 1)
				cc.Incr(ctx, "n", 1)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	// The servers stop (SIGSTOP): what is in flight stays in flight, a
	// large write half written, answers unread, until Close.
	srv.Signal(syscall.SIGSTOP)
	for i := range cl.Size() {
		cl.Process(i).Signal(syscall.SIGSTOP)
	}
	time.Sleep(50 * time.Millisecond)
	c.Close()
	cc.Close()
	ended := make(chan struct{})
	go func() { wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("calls still outstanding 10 s after Close:\n%s", buf[:runtime.Stack(buf, true)])
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines 10 s after Close; %d before the clients:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
