package main

import (
	"fmt"
	"os"
	"path/filepath"
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

// A SIGHUP that comes while the server is still starting (loading word
// vectors, recovering) waits for it: it was caught only once recovery was
// done, and one that came earlier killed the node without a line.
func TestSIGHUPWhileStartingKeepsTheServer(t *testing.T) {
	// Word vectors that take a while to read, so that the signal comes
	// while they load.
	var b strings.Builder
	for i := range 60_000 {
		fmt.Fprintf(&b, "w%d", i)
		for d := range 50 {
			fmt.Fprintf(&b, " %.4f", float64((i*31+d*7)%1000)/1000-0.5)
		}
		b.WriteByte('\n')
	}
	vectors := filepath.Join(t.TempDir(), "vectors.txt")
	if err := os.WriteFile(vectors, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	s := launch(t, "--port", "0", "--data-dir", dir, "--enable-indexes", "--embeddings", vectors)
	time.Sleep(150 * time.Millisecond)
	if strings.Contains(s.log(), "serving") {
		t.Skip("the server was serving within 150 ms: the vectors loaded too fast for the signal to come while it started")
	}
	s.signal(syscall.SIGHUP)
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(s.log(), "SIGHUP: nothing to reload"); {
		select {
		case <-s.exited:
			t.Fatalf("the server exited on a SIGHUP while starting (%v); stderr:\n%s", s.err, s.log())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload line after 60 s:\n%s", s.log())
		}
	}
}

// A SIGHUP whose file never answers (--auth-file replaced by a FIFO that
// nothing writes) does not hold the server: a SIGTERM after it still
// shuts it down. The reload held the signal loop, and every later signal
// waited behind it for good.
func TestSIGTERMAfterAReloadThatHangs(t *testing.T) {
	authFile := filepath.Join(t.TempDir(), "dkv.pass")
	if err := os.WriteFile(authFile, []byte("a-password-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, t.TempDir(), "--auth-file", authFile)
	if err := os.Remove(authFile); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(authFile, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	s.signal(syscall.SIGHUP)
	time.Sleep(100 * time.Millisecond)
	s.signal(syscall.SIGHUP) // skipped: the first is still reading
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(s.log(), "this SIGHUP is skipped"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second SIGHUP was not said to be skipped:\n%s", s.log())
		}
	}
	s.signal(syscall.SIGTERM)
	if c := s.exitCode(); c != 0 {
		t.Fatalf("exit code after SIGTERM = %d; stderr:\n%s", c, s.log())
	}
}
