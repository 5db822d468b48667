package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUP to a server with nothing to reload (no --auth-file, no TLS) is
// logged and changes nothing: its default action, which the server kept
// when it had nothing to reload, killed the process without a word.
func TestSIGHUPWithNothingToReloadKeepsServing(t *testing.T) {
	s := start(t, t.TempDir())
	s.signal(syscall.SIGHUP)
	const want = "SIGHUP: nothing to reload"
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(s.log(), want); {
		select {
		case <-s.exited:
			t.Fatalf("the server exited on SIGHUP (%v); stderr:\n%s", s.err, s.log())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", want, s.log())
		}
	}
	if resps := roundTrip(t, s.addr, `{"op":"ping"}`); !resps[0].OK {
		t.Fatalf("ping after SIGHUP: %+v", resps[0].Error)
	}
	s.signal(syscall.SIGTERM)
	if c := s.exitCode(); c != 0 {
		t.Fatalf("exit code after SIGTERM = %d; stderr:\n%s", c, s.log())
	}
}
