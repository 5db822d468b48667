package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that the progress goroutine may write while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgressOffATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Fatal("a file taken for a terminal")
	}
	// Shorter than the line interval: nothing at all.
	var n atomic.Int64
	p := startProgress(f, progressSpec{title: "sim", total: 50, unit: "seeds", count: n.Load})
	for range 20 {
		n.Add(1)
		time.Sleep(5 * time.Millisecond)
	}
	p.finish()
	p.finish()
	if b, _ := os.ReadFile(f.Name()); len(b) != 0 {
		t.Fatalf("progress wrote %q off a terminal within %v", b, progressLineEvery)
	}

	// At the interval: plain whole lines.
	var out syncBuffer
	n.Store(30)
	p = startProgressOn(&out, false, 20*time.Millisecond, progressSpec{title: "sim", total: 120, unit: "seeds", count: n.Load,
		detail: func() string { return "0 failed" }})
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "\n") < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.finish()
	s := out.String()
	if strings.ContainsAny(s, "\r\x1b") || !strings.HasPrefix(s, "sim: 30/120 seeds (25%), 0 failed, ") {
		t.Fatalf("lines off a terminal: %q", s)
	}
}

func TestProgressBarOnATerminal(t *testing.T) {
	var out syncBuffer
	var n atomic.Int64
	n.Store(7)
	p := startProgressOn(&out, true, time.Hour, progressSpec{title: "sim", total: 10, unit: "seeds", count: n.Load,
		detail: func() string { return "1 failed" }})
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "7/10") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.clear() // as before a failure's report
	p.finish()
	s := out.String()
	if !strings.Contains(s, "sim (1 failed)") || !strings.Contains(s, "7/10") {
		t.Fatalf("no bar: %q", s)
	}
	segs := strings.Split(s, "\r")
	if len(segs) < 3 || segs[len(segs)-1] != "" || strings.Trim(segs[len(segs)-2], " ") != "" {
		t.Fatalf("bar left on the line after finish: %q", s)
	}
}
