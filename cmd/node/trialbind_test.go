package main

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A trial bind never listens: a client dialling all through a run of trial
// binds is refused every time, never accepted and then reset.
func TestTrialBindNeverAcceptsADial(t *testing.T) {
	addr := freeLoopbackAddr(t)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var dials, wrong atomic.Int64
	var firstWrong atomic.Value
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				nc, err := net.DialTimeout("tcp", addr, time.Second)
				dials.Add(1)
				if err == nil {
					nc.Close()
				}
				if !errors.Is(err, syscall.ECONNREFUSED) {
					if wrong.Add(1) == 1 {
						firstWrong.Store(err)
					}
				}
			}
		}()
	}
	for i := 0; i < 2000; i++ {
		if err := trialBind(addr); err != nil {
			t.Fatalf("trial bind %d of a free port: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d of %d dials were not refused; the first: %v", n, dials.Load(), firstWrong.Load())
	}
	// The port is left free for the real listener.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen after trial binds: %v", err)
	}
	ln.Close()
}

func TestTrialBindOfATakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = trialBind(ln.Addr().String())
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("trial bind of a taken port: %v; want address already in use", err)
	}
}
