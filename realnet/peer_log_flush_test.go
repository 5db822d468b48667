package realnet

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startLogFlushPeer starts one transport (its peer down) whose rate limit
// on log lines has an interval of every.
func startLogFlushPeer(t *testing.T, every time.Duration) *testPeer {
	t.Helper()
	ln := listenLoopback(t)
	cfg, l := testPeerConfig(t, 0, []string{ln.Addr().String(), freeAddr(t)})
	tp := newTestPeer(t, cfg, l)
	tp.Peers.log.every = every
	tp.startOn(t, ln)
	return tp
}

// A flood of one kind of line gets its first line and then, once the
// interval has ended, the count of those held back, though no line of the
// kind comes after: the count went out only with the kind's next line,
// and a flood that stopped left it unsaid.
func TestPeerLogSaysWhatItHeldBackWhenTheFloodStops(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	tp := startLogFlushPeer(t, 50*time.Millisecond)
	for range 100 {
		tp.Send(7, []byte("to no one")) // node 7 is not a peer: logged, kind "send-unknown"
	}
	tp.log.waitFor(t, `99 more lines of the kind "send-unknown" were held back`)
	// The count is said once, and the kind's next line goes out without
	// one. (The lines of the kind "dial 1", the peer being down, are
	// left out.)
	time.Sleep(200 * time.Millisecond)
	tp.Send(7, []byte("to no one"))
	var got []string
	waitFor(t, "the kind's next line", func() bool {
		got = got[:0]
		for _, line := range strings.Split(tp.log.String(), "\n") {
			if strings.Contains(line, "send-unknown") || strings.Contains(line, "not a peer") {
				got = append(got, line)
			}
		}
		return len(got) >= 3
	})
	want := []string{
		"peers: dropped a message to node 7, which is not a peer of node 0",
		`peers: 99 more lines of the kind "send-unknown" were held back in the 50ms after the last one written`,
		"peers: dropped a message to node 7, which is not a peer of node 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines of the kind:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Nothing is written after Close, even a count held back whose interval
// ends later: a timer of its own once wrote it into a log handed back (a
// test's, after the test), a data race the race detector caught in CI.
func TestPeerLogWritesNothingAfterClose(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	ln := listenLoopback(t)
	cfg, _ := testPeerConfig(t, 0, []string{ln.Addr().String(), freeAddr(t)})
	var closed atomic.Bool
	var late atomic.Value
	cfg.Logf = func(format string, args ...any) {
		if closed.Load() {
			late.Store(fmt.Sprintf(format, args...))
		}
	}
	tp := newTestPeer(t, cfg, nil)
	const every = 100 * time.Millisecond
	tp.Peers.log.every = every
	tp.startOn(t, ln)
	for range 10 {
		tp.Send(7, []byte("to no one"))
	}
	tp.Close()
	closed.Store(true)
	time.Sleep(3 * every)
	if s := late.Load(); s != nil {
		t.Errorf("written after Close: %q", s)
	}
}
