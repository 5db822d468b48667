package main

import (
	"errors"
	"net"
	"strings"
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

// A trial bind of a fixed port works on the wildcard addresses too, and
// leaves the port free for the real listener. For a wildcard the runtime
// makes a dual-stack socket and hands the Control hook network "tcp6" with
// the address as given, "0.0.0.0:port"; resolving that as tcp6 failed
// ("no suitable address found"), so --host 0.0.0.0 never started.
func TestTrialBindOfWildcardAndLoopbackHosts(t *testing.T) {
	for _, host := range []string{"0.0.0.0", "::", "127.0.0.1", "::1", ""} {
		t.Run("host="+host, func(t *testing.T) {
			if strings.Contains(host, ":") && !ipv6Available() {
				t.Skipf("IPv6 is unavailable here (cannot listen on [::]:0): the %s case is not checked", host)
			}
			_, port, _ := net.SplitHostPort(freeLoopbackAddr(t))
			addr := net.JoinHostPort(host, port)
			if err := trialBind(addr); err != nil {
				t.Fatalf("trial bind of %s: %v", addr, err)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("listen on %s after the trial bind: %v", addr, err)
			}
			defer ln.Close()
			// Now taken: the trial says so.
			if err := trialBind(addr); !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("trial bind of %s while listened on: %v; want address already in use", addr, err)
			}
		})
	}
}

func ipv6Available() bool {
	ln, err := net.Listen("tcp6", "[::]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
