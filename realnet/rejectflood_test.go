package realnet

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"dkv/core"
)

// A flood of connections past ConnsMax must not cost the server a
// goroutine and a descriptor each for the refusal's sniff and linger
// (most of a second each): --max-conns is what bounds them. The refusals
// once each had a goroutine of their own, without a limit: 3,000
// connections opened in half a second against --max-conns 10 held 3,000
// descriptors at once, and with a descriptor limit of 300 the node could
// not create its next log segment (found by review). Every refused
// connection still gets its too_many_connections line.
func TestRefusalsPastTheLimitAreBounded(t *testing.T) {
	const flood = 4 * rejectsMax
	cfg := testConfig()
	cfg.ConnsMax = 1
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startHost(t, newTestNode(t), cfg)
		held := dial(t, r.addr)
		held.send(`{"op":"ping"}` + "\n")
		held.recvCode("")
		before := runtime.NumGoroutine()
		var cs []*client
		for range flood {
			cs = append(cs, dial(t, r.addr))
		}
		// Each is accepted, and so refused, before its first line is
		// read: that line is the proof of the refusal.
		peak := 0
		for _, c := range cs {
			peak = max(peak, runtime.NumGoroutine()-before)
			c.recvCode(core.CodeTooManyConns)
		}
		if peak > rejectsMax+16 {
			t.Errorf("%d connections refused at once took %d goroutines; want at most about %d", flood, peak, rejectsMax)
		}
		for _, c := range cs {
			c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.br.ReadByte(); err == nil {
				t.Fatal("a refused connection sent more than its line")
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("a refused connection was left open")
			}
		}
	})
}

// A flood of refusals is logged a line now and then, with a count of the
// lines held back, not a line each (found by review: a flood flooded the
// log).
func TestRefusalsAreLoggedNowAndThen(t *testing.T) {
	const flood = 50
	cfg := testConfig()
	cfg.ConnsMax = 1
	var mu sync.Mutex
	var lines []string
	r := startHostOn(t, newTestNode(t), nil, cfg, func(h *Host) {
		h.refuseLog.out = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, fmt.Sprintf(format, args...))
		}
	})
	held := dial(t, r.addr)
	held.send(`{"op":"ping"}` + "\n")
	held.recvCode("")
	var cs []*client
	for range flood {
		cs = append(cs, dial(t, r.addr))
	}
	for _, c := range cs {
		c.recvCode(core.CodeTooManyConns)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 1 || !strings.Contains(lines[0], "refusing connection from") {
		t.Fatalf("%d refusals logged %d lines, want one: %q", flood, len(lines), lines)
	}
}
